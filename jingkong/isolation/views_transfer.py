"""Pages of the transfer area under /isolation/: the isolation board (landing page), batches and runs, one run with
its live status and the dispatcher's edits, the printable driver's manifest and the route map.

Boards, runs and the map need ISOLATION_VIEW (no person data on them); the manifest and every POST action
TRANSFER_EDIT. Objects are looked up through the scoped selectors (404 outside the user's region); writes go through
the services.
"""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from jingkong.access import audit
from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.core.exceptions import ApplicationError
from jingkong.isolation import grouping, transfers
from jingkong.isolation import selectors_transfer as selectors
from jingkong.isolation.models import BatchStatus, Destination, Disinfection, TransferStatus
from jingkong.people.idnumber import phone_mask
from jingkong.policy.selectors import PolicyNotActive

WAIT_REASONS = {
    "no_facility": gettext_lazy("no facility of the right kind has room"),
    "no_vehicle": gettext_lazy("no vehicle could take it"),
    "home": gettext_lazy("stays at home: no vehicle needed"),
    "cancelled_run": gettext_lazy("its run was cancelled"),
}


def _field(data, name: str, limit: int = 500) -> str:
    return (data.get(name) or "").replace("\x00", "").strip()[:limit]


def _int(data, name: str) -> int | None:
    value = _field(data, name, 20)
    return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else None  # "²".isdigit() too


def _can_edit(request) -> bool:
    return request.jk_user.has_role_perm(Perm.TRANSFER_EDIT)


def _other_pages() -> list[tuple[str, str]]:
    """Links to the facilities and clock pages when those areas have them (their URL names are theirs)."""
    out = []
    for names, label in ((("facility_list", "facilities"), _("Facilities and rooms")),
                         (("facility_reserve", "reserve"), _("Reserve capacity")),
                         (("order_list", "orders"), _("Isolation orders")),
                         (("clock", "clock_index", "clock_board", "clock_report", "five_fast"), _("Five-stage clock"))):
        for name in names:
            try:
                out.append((reverse(f"isolation:{name}"), label))
                break
            except NoReverseMatch:
                continue
    return out


@require(Perm.ISOLATION_VIEW)
def index(request):
    counts = transfers.board_counts(request.scope)
    waiting = [(label, counts["waiting"].get(value, {"batches": 0, "people": 0}))
               for value, label in Destination.choices]
    runs = [(label, counts["runs"].get(value, 0)) for value, label in TransferStatus.choices]
    return render(request, "isolation/index.html", {
        "waiting": waiting, "runs": runs, "vehicles": counts["vehicles"],
        "vehicles_available": counts["vehicles_available"], "other_pages": _other_pages(),
        "active_runs": list(selectors.transfer_list(scope=request.scope, active=True)[:20]),
    })


@require(Perm.ISOLATION_VIEW)
def transfer_list(request):
    batches = list(selectors.batch_list(scope=request.scope, status=BatchStatus.WAITING)[:300])
    for b in batches:
        b.reason_text = WAIT_REASONS.get(b.wait_reason, "")
    runs = list(selectors.transfer_list(scope=request.scope)[:200])
    return render(request, "isolation/transfer_list.html", {
        "batches": batches, "runs": runs, "can_edit": _can_edit(request),
        "vehicles": list(selectors.vehicle_list(scope=request.scope)[:300]),
    })


@require(Perm.ISOLATION_VIEW)
def transfer_detail(request, transfer_id: int):
    t = selectors.transfer_get(scope=request.scope, transfer_id=transfer_id)
    stops = selectors.transfer_stops(t.pk)
    can_edit = _can_edit(request)
    return render(request, "isolation/transfer_detail.html", {
        "t": t, "stops": stops, "can_edit": can_edit,
        "next_statuses": _next_statuses(t, stops),
        "editable": t.status == TransferStatus.PLANNED,
        "vehicles": list(selectors.vehicle_list(scope=request.scope, available=True)
                         .filter(disinfection=Disinfection.CLEAN).exclude(pk=t.vehicle_id)[:300]) if can_edit else [],
    })


def _next_statuses(t, stops) -> list[tuple[str, str]]:
    labels = dict(TransferStatus.choices)
    if t.status == TransferStatus.PLANNED:
        return [(TransferStatus.DISPATCHED, labels[TransferStatus.DISPATCHED])]
    if t.status in (TransferStatus.ARRIVED, TransferStatus.CANCELLED):
        return []
    out = []
    if any(s.kind == "pickup" and s.done_at is None for s in stops):
        out += [(TransferStatus.AT_PICKUP, labels[TransferStatus.AT_PICKUP]),
                (TransferStatus.PICKED_UP, labels[TransferStatus.PICKED_UP])]
    if any(s.kind == "dropoff" and s.done_at is None for s in stops):
        out.append((TransferStatus.ARRIVED, labels[TransferStatus.ARRIVED]))
    return out


@require(Perm.TRANSFER_EDIT)
def transfer_manifest(request, transfer_id: int):
    t = selectors.transfer_get(scope=request.scope, transfer_id=transfer_id)
    rows = selectors.manifest(t)
    show_phone = request.jk_user.has_role_perm(Perm.PERSON_VIEW_PHONE)
    people = [m for r in rows for m in r["members"]]
    for m in people:
        m.phone_shown = m.person.phone if show_phone else phone_mask(m.person.phone)
    audit.record_many(actor=request.jk_user, action="person.list", object_type="people.person",
                      items=((m.person_id, m.region_code) for m in people), request=request,
                      detail={"list": "transfer manifest", "transfer": t.ref, "via": "page"})
    removable = t.status not in (TransferStatus.ARRIVED, TransferStatus.CANCELLED)
    return render(request, "isolation/transfer_manifest.html", {"t": t, "rows": rows, "total": len(people),
                                                                 "removable": removable})


@require(Perm.ISOLATION_VIEW)
def transfer_map(request):
    return render(request, "isolation/transfer_map.html", {
        "map_config": {"url": "/api/v1/isolation/transfers/map", "center": [121.85, 29.9]},
    })


def _back(request, default: str):
    target = _field(request.POST, "next", 300)
    if target.startswith("/isolation/") and "//" not in target:
        return redirect(target)
    return redirect(default)


@require(Perm.TRANSFER_EDIT)
@require_POST
def transfer_group(request):
    try:
        out = grouping.group_waiting(actor=request.jk_user, scope=request.scope, request=request)
        messages.success(request, _("%(people)s people grouped into %(batches)s batches.") % out)
    except (ApplicationError, PolicyNotActive) as exc:
        messages.error(request, exc.message)
    return redirect("isolation:transfer_list")


@require(Perm.TRANSFER_EDIT)
@require_POST
def transfer_plan(request):
    try:
        if transfers.waiting_batch_count(request.scope) > transfers.SYNC_PLAN_LIMIT:
            job = transfers.enqueue_plan(actor=request.jk_user, scope=request.scope)
            messages.success(request, _("Planning runs in the background (job %(id)s).") % {"id": job.pk})
        else:
            out = transfers.plan_transfers(actor=request.jk_user, scope=request.scope, request=request)
            messages.success(request, _("%(transfers)s runs planned for %(people_planned)s people; "
                                        "%(batches_waiting)s batches still waiting.") % out)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("isolation:transfer_list")


@require(Perm.TRANSFER_EDIT)
@require_POST
def transfer_status(request, transfer_id: int):
    t = selectors.transfer_get(scope=request.scope, transfer_id=transfer_id)
    try:
        transfers.transfer_status(actor=request.jk_user, transfer=t, status=_field(request.POST, "status", 20),
                                  stop_id=_int(request.POST, "stop_id"), request=request)
        messages.success(request, _("Status recorded."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return _back(request, reverse("isolation:transfer_detail", args=[t.pk]))


@require(Perm.TRANSFER_EDIT)
@require_POST
def transfer_cancel(request, transfer_id: int):
    t = selectors.transfer_get(scope=request.scope, transfer_id=transfer_id)
    try:
        transfers.transfer_cancel(actor=request.jk_user, transfer=t, reason=_field(request.POST, "reason"),
                                  request=request)
        messages.success(request, _("Run cancelled; its batches wait for the next plan."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("isolation:transfer_detail", t.pk)


@require(Perm.TRANSFER_EDIT)
@require_POST
def transfer_move(request, transfer_id: int):
    t = selectors.transfer_get(scope=request.scope, transfer_id=transfer_id)
    batch_id, vehicle_id = _int(request.POST, "batch_id"), _int(request.POST, "to_vehicle_id")
    try:
        if batch_id is None or vehicle_id is None:
            raise ApplicationError(_("choose a batch and a vehicle"))
        target = transfers.batch_move(actor=request.jk_user, scope=request.scope, transfer=t, batch_id=batch_id,
                                      to_vehicle_id=vehicle_id, request=request)
        messages.success(request, _("Batch moved to run %(ref)s.") % {"ref": target.ref})
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("isolation:transfer_detail", t.pk)


@require(Perm.TRANSFER_EDIT)
@require_POST
def transfer_reorder(request, transfer_id: int):
    """Move one stop of a planned run up or down (the service refuses an order breaking seats or pickup-first)."""
    t = selectors.transfer_get(scope=request.scope, transfer_id=transfer_id)
    stop_id, direction = _int(request.POST, "stop_id"), _field(request.POST, "direction", 8)
    try:
        ids = [s.pk for s in selectors.transfer_stops(t.pk)]
        if stop_id not in ids or direction not in ("up", "down"):
            raise ApplicationError(_("choose a stop of this run and a direction"))
        i = ids.index(stop_id)
        j = i - 1 if direction == "up" else i + 1
        if not 0 <= j < len(ids):
            raise ApplicationError(_("the stop is already at that end of the run"))
        ids[i], ids[j] = ids[j], ids[i]
        transfers.transfer_reorder(actor=request.jk_user, transfer=t, stop_ids=ids, request=request)
        messages.success(request, _("Stops reordered; times and route recomputed."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("isolation:transfer_detail", t.pk)


@require(Perm.TRANSFER_EDIT)
@require_POST
def transfer_member_remove(request, transfer_id: int):
    """Take a person who has not boarded out of their batch (from the driver's manifest)."""
    t = selectors.transfer_get(scope=request.scope, transfer_id=transfer_id)
    batch_id, person_id = _int(request.POST, "batch_id"), _int(request.POST, "person_id")
    try:
        if batch_id is None or person_id is None or not any(
                s.batch_id == batch_id for s in selectors.transfer_stops(t.pk)):
            raise ApplicationError(_("choose a person of this run"))
        batch = selectors.batch_get(scope=request.scope, batch_id=batch_id)
        transfers.member_remove(actor=request.jk_user, batch=batch, person_id=person_id,
                                reason=_field(request.POST, "reason"), request=request)
        messages.success(request, _("Taken out of batch %(ref)s.") % {"ref": batch.ref})
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("isolation:transfer_manifest", t.pk)
