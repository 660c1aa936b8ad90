"""Pages of the facilities area under /isolation/facilities/… and /isolation/orders/….

* Facility list with the reserve panel (ISOLATION_VIEW); a facility's board — occupancy by floor, the room grid by
  state (ISOLATION_VIEW; the names in the rooms and the actions only for FACILITY_EDIT, audited).
* Orders per facility or region with today's worklist — tests due, tests missed, releases due, symptom checks
  overdue (PERSON_VIEW, audited); an order's page with its schedule, tests and checks, release/extend/check forms
  (ISOLATION_EDIT). Small POST actions go through the services; a refusal comes back as a message on the page.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from jingkong.access import audit
from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.core import clock
from jingkong.core.exceptions import ApplicationError, NotFound, ValidationFailed
from jingkong.isolation import facilities, orders, reserve
from jingkong.isolation import selectors_facilities as sel
from jingkong.isolation.models import (
    FacilityKind,
    IsolationMode,
    MemberRole,
    OrderStatus,
    RoomKind,
    RoomState,
)
from jingkong.people.models import Person

REASONS = {
    "case_needs_hospital": gettext_lazy("a case goes to a designated hospital"),
    "contact_not_to_hospital": gettext_lazy("contacts do not go to a designated hospital"),
    "no_room": gettext_lazy("no free room"),
    "no_accessible_room": gettext_lazy("no free accessible room"),
    "no_floor_for_tier": gettext_lazy("no floor free for this tier (tiers are not mixed on a floor)"),
    "already_elsewhere": gettext_lazy("already in a room at another facility"),
    "unknown_person": gettext_lazy("unknown person"),
    "not_yet_due": gettext_lazy("last day not reached"),
    "test_missing": gettext_lazy("a test day without a sample"),
    "result_pending": gettext_lazy("a result is still at the lab"),
    "positive_result": gettext_lazy("a positive result"),
    "double_sampling_missing": gettext_lazy("the last test needs two samples (双采双检)"),
    "index_contact_tests": gettext_lazy("the index close contact's first tests are not all negative yet"),
    "already_active": gettext_lazy("an order of this kind is already active"),
    "no_policy": gettext_lazy("no policy profile in force"),
    "not_managed": gettext_lazy("the profile does not manage this tier"),
}
SYMPTOM_LABELS = {
    "fever": gettext_lazy("fever"), "cough": gettext_lazy("cough"), "sore_throat": gettext_lazy("sore throat"),
    "fatigue": gettext_lazy("fatigue"), "loss_of_smell": gettext_lazy("loss of smell or taste"),
    "diarrhoea": gettext_lazy("diarrhoea"), "shortness_of_breath": gettext_lazy("shortness of breath"),
    "muscle_pain": gettext_lazy("muscle pain"), "other": gettext_lazy("other"),
}


def _field(data, name: str, *, choices=None, limit: int = 200) -> str:
    value = (data.get(name) or "").replace("\x00", "").strip()[:limit]
    if choices is not None and value not in {c[0] for c in choices}:
        return ""
    return value


def _int(data, name: str) -> int | None:
    value = _field(data, name, limit=20)
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        raise ValidationFailed(_("%(field)s: not a number") % {"field": name}, extra={"field": name}) from None
    if not 0 <= number < 2**63:
        raise ValidationFailed(_("%(field)s: out of range") % {"field": name}, extra={"field": name})
    return number


def _can(request, perm: str) -> bool:
    return request.jk_user.has_role_perm(perm)


def _today() -> dt.date:
    return orders.local_date(clock.now())


def _reason(code: str) -> str:
    return str(REASONS.get(code, code))


# --- facilities -------------------------------------------------------------------------------------------------------


@require(Perm.ISOLATION_VIEW)
def facility_list(request):
    items = list(sel.facility_list(scope=request.scope, user=request.jk_user).prefetch_related("staff")[:500])
    caps = {c.facility_id: c for c in reserve.facility_capacity(items)}
    districts = sorted({f.region_code[:6] for f in items if f.kind != FacilityKind.DESIGNATED_HOSPITAL and f.active})
    return render(request, "isolation/facility_list.html", {
        "rows": [(f, caps.get(f.pk)) for f in items],
        "districts": [reserve.district_capacity(d, facilities=items) for d in districts],
        "can_edit": _can(request, Perm.FACILITY_EDIT), "kinds": FacilityKind.choices,
        "region_default": request.scope.prefix or "",
    })


@require(Perm.FACILITY_EDIT)
@require_POST
def facility_create(request):
    try:
        f = facilities.facility_create(
            actor=request.jk_user, scope=request.scope, request=request, code=_field(request.POST, "code", limit=32),
            name=_field(request.POST, "name", limit=255), kind=_field(request.POST, "kind", choices=FacilityKind.choices),
            region_code=_field(request.POST, "region_code", limit=32), lon=_float(request.POST, "lon"),
            lat=_float(request.POST, "lat"), address=_field(request.POST, "address", limit=255),
            mixing_tiers_forbidden=request.POST.get("mixing_tiers_forbidden") == "on")
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("isolation:facility_list")
    messages.success(request, _("Facility %(code)s registered.") % {"code": f.code})
    return redirect("isolation:facility_board", code=f.code)


def _float(data, name: str) -> float:
    try:
        return float(_field(data, name, limit=30))
    except ValueError:
        raise ValidationFailed(_("%(field)s: not a number") % {"field": name}, extra={"field": name}) from None


@require(Perm.ISOLATION_VIEW)
def facility_board(request, code: str):
    f = sel.facility_get_by_code(scope=request.scope, user=request.jk_user, code=code[:32])
    data = sel.board(f)
    tier_labels, kind_labels = dict(MemberRole.choices), dict(RoomKind.choices)
    for fl in data["floors"]:  # labels, not codes: the page is translated
        fl["tier_labels"] = [(t, tier_labels.get(t, t)) for t in fl["tiers"]]
        for r in fl["rooms"]:
            r["kind_label"] = kind_labels.get(r["kind"], r["kind"])
    can_edit = _can(request, Perm.FACILITY_EDIT)
    if can_edit:
        people = [(o["person_id"], "") for fl in data["floors"] for r in fl["rooms"] for o in r["occupants"]]
        if people:
            audit.record_many(actor=request.jk_user, action="person.view", object_type="people.person",
                              request=request, items=people, detail={"facility": f.code, "via": "board"})
    capacity = reserve.facility_capacity([f])[0]
    return render(request, "isolation/facility_board.html", {
        "facility": f, "board": data, "capacity": capacity, "can_edit": can_edit,
        "states": RoomState.choices, "room_kinds": RoomKind.choices,
        "state_counts": [(v, label, data["counts"].get(v, 0)) for v, label in RoomState.choices],
        "can_orders": _can(request, Perm.PERSON_VIEW),
    })


def _back_to_board(f):
    return redirect(reverse("isolation:facility_board", args=[f.code]))


@require(Perm.FACILITY_EDIT)
@require_POST
def facility_rooms_create(request, code: str):
    f = sel.facility_get_by_code(scope=request.scope, user=request.jk_user, code=code[:32])
    try:
        low, high = _int(request.POST, "floor_from"), _int(request.POST, "floor_to")
        if low is None or high is None or high < low or high - low > 200:
            raise ValidationFailed(_("floors: give the first and the last floor"), extra={"field": "floors"})
        report = facilities.rooms_bulk_create(
            actor=request.jk_user, facility=f, floors=list(range(low, high + 1)),
            rooms_per_floor=_int(request.POST, "rooms_per_floor") or 0,
            kind=_field(request.POST, "kind", choices=RoomKind.choices) or "single",
            beds=_int(request.POST, "beds") or 1, first_number=_int(request.POST, "first_number") or 1,
            request=request)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return _back_to_board(f)
    messages.success(request, _("%(n)s rooms created (%(m)s existed already).") % {"n": report.created,
                                                                                 "m": report.existing})
    return _back_to_board(f)


@require(Perm.FACILITY_EDIT)
@require_POST
def facility_room_state(request, code: str, room_id: int):
    f = sel.facility_get_by_code(scope=request.scope, user=request.jk_user, code=code[:32])
    room = sel.room_get(facility=f, room_id=room_id)
    try:
        facilities.room_state_set(actor=request.jk_user, room=room,
                                  state=_field(request.POST, "state", choices=RoomState.choices), request=request)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return _back_to_board(f)


@require(Perm.FACILITY_EDIT)
@require_POST
def facility_assign(request, code: str):
    """Manual assignment: person ids (one per line or comma-separated), reserve or check in."""
    f = sel.facility_get_by_code(scope=request.scope, user=request.jk_user, code=code[:32])
    raw = _field(request.POST, "person_ids", limit=100_000).replace(",", " ").split()
    try:
        ids = []
        for token in raw[:5000]:
            if not token.isdigit() or not 0 < int(token) < 2**63:
                raise ValidationFailed(_("person ids: %(v)s is not an id") % {"v": token[:20]},
                                       extra={"field": "person_ids"})
            ids.append(int(token))
        if not ids:
            raise ValidationFailed(_("person ids: none given"), extra={"field": "person_ids"})
        found = set(Person.objects.filter(pk__in=ids).filter(request.scope.q("grid__code"))
                    .values_list("pk", flat=True))
        missing = [p for p in ids if p not in found]
        if missing:
            raise NotFound(_("person %(id)s not found") % {"id": missing[0]})
        report = facilities.assign(facility=f, person_ids=ids, actor=request.jk_user,
                                   check_in=request.POST.get("check_in") == "on", request=request)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return _back_to_board(f)
    messages.success(request, _("%(n)s people given rooms, %(c)s checked in.") % {
        "n": len(report.assigned), "c": len(report.checked_in)})
    for pid, code_ in sorted(report.unassigned.items())[:20]:
        messages.warning(request, _("Person %(id)s: %(reason)s") % {"id": pid, "reason": _reason(code_)})
    return _back_to_board(f)


@require(Perm.ISOLATION_VIEW)
def reserve_page(request):
    items = list(sel.facility_list(scope=request.scope, user=request.jk_user, active_only=True))
    caps = reserve.facility_capacity(items)
    districts = sorted({f.region_code[:6] for f in items if f.kind != FacilityKind.DESIGNATED_HOSPITAL})
    return render(request, "isolation/facility_reserve.html", {
        "districts": [reserve.district_capacity(d, facilities=items) for d in districts],
        "facilities": [c for c in caps if c.kind != FacilityKind.DESIGNATED_HOSPITAL],
        "hospitals": [c for c in caps if c.kind == FacilityKind.DESIGNATED_HOSPITAL],
    })


# --- orders -----------------------------------------------------------------------------------------------------------


@require(Perm.PERSON_VIEW)
def order_list(request):
    code = _field(request.GET, "facility", limit=32)
    facility = sel.facility_get_by_code(scope=request.scope, user=request.jk_user, code=code) if code else None
    region = _field(request.GET, "region", limit=15)
    if region and (not region.isdigit() or not request.scope.contains(region)):
        region = ""
    status = _field(request.GET, "status", choices=OrderStatus.choices)
    mode = _field(request.GET, "mode", choices=IsolationMode.choices)
    qs = sel.order_list(scope=request.scope, user=request.jk_user, facility=facility, region=region, status=status,
                        mode=mode)
    page = Paginator(qs, 100).get_page(request.GET.get("page"))
    today = _today()
    work = sel.worklist(sel.order_list(scope=request.scope, user=request.jk_user, facility=facility, region=region),
                        today=today)
    people = {e["order"].person_id for key in ("due_tests", "missed_tests", "releases_due", "checks_overdue")
              for e in work[key]} | {o.person_id for o in page.object_list}
    rooms = sel.rooms_of(people)
    for key in ("due_tests", "missed_tests", "releases_due", "checks_overdue", "checks_today"):
        for e in work[key]:
            e["room"] = rooms.get(e["order"].person_id)
            e["reasons"] = [_reason(p) for p in e.get("problems", [])]
    audit.record(actor=request.jk_user, action="person.list", object_type="people.person",
                 region_code=region or request.scope.prefix or "", request=request,
                 detail={"page": "isolation.orders", "facility": code, "count": len(people)})
    return render(request, "isolation/order_list.html", {
        "page": page, "work": work, "today": today, "facility": facility, "region": region, "status": status,
        "mode": mode, "statuses": OrderStatus.choices, "modes": IsolationMode.choices,
        "rows": [(o, rooms.get(o.person_id)) for o in page.object_list],
        "flagged": sel.flagged_checks(qs, since=today - dt.timedelta(days=1)),
        "can_edit": _can(request, Perm.ISOLATION_EDIT),
        "facilities": list(sel.facility_list(scope=request.scope, user=request.jk_user, active_only=True)[:200]),
    })


@require(Perm.PERSON_VIEW)
def order_detail(request, order_id: int):
    order = sel.order_get(scope=request.scope, user=request.jk_user, order_id=order_id)
    audit.record(actor=request.jk_user, action="person.view", object_type="people.person", object_id=order.person_id,
                 region_code=order.region_code, request=request, detail={"order": order.pk, "via": "page"})
    today = _today()
    detail = sel.order_detail(order, today=today)
    ev = detail["evaluation"]
    return render(request, "isolation/order_detail.html", {
        "order": order, "ev": ev, "detail": detail, "today": today,
        "problems": [_reason(p) for p in ev.problems],
        "checks": [(c, flagged, [str(SYMPTOM_LABELS.get(s, s)) for s in c.symptoms]) for c, flagged in detail["checks"]],
        "symptoms": list(SYMPTOM_LABELS.items()), "can_edit": _can(request, Perm.ISOLATION_EDIT),
        "today_day": (today - order.counted_from).days,
    })


def _back_to_order(order_id: int):
    return redirect(reverse("isolation:order_detail", args=[order_id]))


@require(Perm.ISOLATION_EDIT)
@require_POST
def order_check(request, order_id: int):
    order = sel.order_get(scope=request.scope, user=request.jk_user, order_id=order_id)
    temperature = _field(request.POST, "temperature", limit=10) or None
    symptoms = [s for s in request.POST.getlist("symptoms") if s in SYMPTOM_LABELS]
    try:
        _check, flagged = orders.symptom_check_record(actor=request.jk_user, order=order, temperature=temperature,
                                                      symptoms=symptoms, note=_field(request.POST, "note", limit=2000),
                                                      request=request)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return _back_to_order(order.pk)
    if flagged:
        messages.warning(request, _("Check recorded: fever or symptoms — arrange a test and a doctor's review."))
    else:
        messages.success(request, _("Check recorded."))
    return _back_to_order(order.pk)


@require(Perm.ISOLATION_EDIT)
@require_POST
def order_release(request, order_id: int):
    order = sel.order_get(scope=request.scope, user=request.jk_user, order_id=order_id)
    try:
        report = orders.orders_release([order], actor=request.jk_user,
                                       override_note=_field(request.POST, "override_note", limit=500), request=request)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return _back_to_order(order.pk)
    if report.released:
        messages.success(request, _("Released; the next stage has started.") if report.next_orders.get(order.pk)
                         else _("Released."))
    else:
        messages.error(request, _("Not released: %(why)s") % {
            "why": ", ".join(_reason(p) for p in report.blocked.get(order.pk, ["not_yet_due"]))})
    return _back_to_order(order.pk)


@require(Perm.ISOLATION_EDIT)
@require_POST
def order_extend(request, order_id: int):
    order = sel.order_get(scope=request.scope, user=request.jk_user, order_id=order_id)
    try:
        new = dt.date.fromisoformat(_field(request.POST, "new_exposure", limit=10))
    except ValueError:
        messages.error(request, _("new exposure: not a date (YYYY-MM-DD)"))
        return _back_to_order(order.pk)
    try:
        orders.order_extend(actor=request.jk_user, order=order, new_exposure=new,
                            reason=_field(request.POST, "reason", limit=200), request=request)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return _back_to_order(order.pk)
    messages.success(request, _("Order extended."))
    return _back_to_order(order.pk)


@require(Perm.ISOLATION_EDIT)
@require_POST
def orders_release_due(request):
    code = _field(request.POST, "facility", limit=32)
    facility = sel.facility_get_by_code(scope=request.scope, user=request.jk_user, code=code) if code else None
    qs = sel.order_list(scope=request.scope, user=request.jk_user, facility=facility, status=OrderStatus.ACTIVE)
    due = list(qs.filter(ends_on__lte=_today())[:5000])
    report = orders.orders_release(due, actor=request.jk_user, request=request)
    messages.success(request, _("%(n)s released, %(m)s still blocked.") % {"n": len(report.released),
                                                                          "m": len(report.blocked)})
    target = reverse("isolation:order_list") + (f"?facility={facility.code}" if facility else "")
    return redirect(target)
