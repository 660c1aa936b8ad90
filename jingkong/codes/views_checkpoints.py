"""Checkpoint and venue-entry pages (mobile-friendly: officers use them on a phone at the barrier or the door).

* /codes/checkpoints/ — the checkpoints of the caller's region on a list and a map, with today's counts; a form to add
  one (CHECKPOINT_MANAGE).
* /codes/checkpoints/<code>/ — the board: crossings per hour, denials and their reasons, the latest crossings.
* /codes/checkpoints/<code>/verify/ — the officer's verify page: a code or ID number, or a vehicle (plate, driver,
  passengers, pass) → allow / refer / deny with the reasons; the crossing is logged.
* /codes/checkpoints/passes/ — passes (通行证): look up by plate, issue, revoke (CHECKPOINT_MANAGE).
* /codes/venues/ and /codes/venues/<code>/ — venue entry (测温+亮码+戴口罩).
* /codes/venues/referrals/ — fever-clinic referrals (CODES_VIEW; follow-up status: CHECKPOINT_MANAGE).

Every object is looked up through the scoped services/selectors (404 outside the user's region); every write goes
through jingkong/codes/checkpoints.py.
"""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from jingkong.access import audit
from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.codes import checkpoints as services
from jingkong.codes import selectors_checkpoints as selectors
from jingkong.codes.models import CheckpointKind, Decision, PassKind, ReferralStatus
from jingkong.core import clock
from jingkong.core.exceptions import ApplicationError

REASON_LABELS = {
    "code_colour": gettext_lazy("code colour"),
    "no_code": gettext_lazy("no code on record"),
    "token_expired": gettext_lazy("expired code"),
    "token_invalid": gettext_lazy("forged or unreadable code"),
    "unknown_person": gettext_lazy("not on the register"),
    "zone_exit": gettext_lazy("leaving a closed zone"),
    "origin_risk": gettext_lazy("from a risk area"),
    "no_negative_test": gettext_lazy("no recent negative test"),
    "no_driver": gettext_lazy("driver not checked"),
    "pass_invalid": gettext_lazy("pass not usable"),
    "pass_valid": gettext_lazy("pass"),
    "pass_driver_colour": gettext_lazy("driver's code stops the pass"),
    "pass_passengers": gettext_lazy("passengers the pass does not carry"),
    "fever": gettext_lazy("fever"),
    "no_mask": gettext_lazy("no mask"),
    "device_decision": gettext_lazy("decided on the device"),
}
COLOUR_LABELS = {"red": gettext_lazy("red"), "orange": gettext_lazy("orange"), "yellow": gettext_lazy("yellow"),
                 "green": gettext_lazy("green")}
DIRECTIONS = [("", gettext_lazy("not said")), ("in", gettext_lazy("inbound")), ("out", gettext_lazy("outbound"))]


def _tz() -> ZoneInfo:
    return ZoneInfo(clock.local_time_zone())


def _field(data, name: str, *, limit: int = 255) -> str:
    return (data.get(name) or "").replace("\x00", "").strip()[:limit]


def _day(request) -> dt.date:
    """The ``day`` asked for; today when it is missing, not a date (2022-02-30) or out of the supported range."""
    try:
        day = parse_date(_field(request.GET, "day", limit=10)) if request.GET.get("day") else None
    except ValueError:
        day = None
    if day is not None and not selectors.EARLIEST_DAY <= day <= selectors.LATEST_DAY:
        day = None
    return day or clock.now().astimezone(_tz()).date()


def _new_client_id() -> str:
    """A record id for the form being shown: submitting the same form twice logs one record (a replay)."""
    return "web:" + uuid.uuid4().hex


def _error(request, exc: ApplicationError) -> None:
    field = exc.extra.get("field") if exc.extra else None
    messages.error(request, f"{exc.message}" if not field or field in exc.message else f"{field}: {exc.message}")


def _render(request, template: str, context: dict):
    user = request.jk_user
    context.update(perms_manage=user.has_role_perm(Perm.CHECKPOINT_MANAGE), perms_codes=user.has_role_perm(Perm.CODES_VIEW))
    return render(request, template, context)


# --- checkpoints ------------------------------------------------------------------------------------------------------


def _map_config(request, checkpoints: list, counts: dict) -> dict:
    from jingkong.geo.models import Region

    regions = []
    prefix = request.scope.prefix
    if prefix is not None:
        qs = Region.objects.filter(level__in=["district", "street"]) if prefix == "" else \
            Region.objects.filter(code__startswith=prefix, level__in=["district", "street", "community"])
        for r in qs.order_by("code")[:60]:
            geom = r.geometry_simplified or r.geometry
            if geom:
                regions.append({"code": r.code, "name": r.name, "geometry": geom})
    return {
        "regions": regions,
        "checkpoints": [{"code": cp.code, "name": cp.name, "lon": cp.lon, "lat": cp.lat, "active": cp.active,
                         "kind": cp.get_kind_display(), "url": reverse("codes:checkpoint_board", args=[cp.code]),
                         **counts.get(cp.code, {"total": 0, "denied": 0, "referred": 0})} for cp in checkpoints],
        "labels": {"crossings": _("crossings today"), "denied": _("denied"), "referred": _("referred"),
                   "inactive": _("not in service")},
    }


@require(Perm.CHECKPOINT_VERIFY)
def checkpoint_list(request):
    kind = _field(request.GET, "kind")
    kind = kind if kind in {k.value for k in CheckpointKind} else ""
    q = _field(request.GET, "q", limit=100)
    checkpoints = list(selectors.checkpoint_list(scope=request.scope, actor=request.jk_user, kind=kind, q=q)[:500])
    start, end = selectors.day_window(_day(request))
    counts: dict[str, dict] = {}
    for row in selectors.hourly(scope=request.scope, start=start, end=end, actor=request.jk_user):
        c = counts.setdefault(row["checkpoint"], {"total": 0, "denied": 0, "referred": 0})
        for k in c:
            c[k] += row[k]
    rows = [{"cp": cp, **counts.get(cp.code, {"total": 0, "denied": 0, "referred": 0})} for cp in checkpoints]
    return _render(request, "codes/checkpoint_list.html", {
        "rows": rows, "kinds": CheckpointKind.choices, "kind": kind, "q": q, "day": _day(request),
        "can_manage": request.jk_user.has_role_perm(Perm.CHECKPOINT_MANAGE),
        "map_config": _map_config(request, checkpoints, counts),
    })


@require(Perm.CHECKPOINT_MANAGE)
@require_POST
def checkpoint_create(request):
    data = request.POST
    try:
        lon, lat = float(_field(data, "lon", limit=32)), float(_field(data, "lat", limit=32))
    except ValueError:
        messages.error(request, _("longitude and latitude are numbers, e.g. 121.81 and 29.91"))
        return redirect("codes:checkpoint_list")
    staff = [s for s in (_field(data, "staff", limit=2000).replace("，", ",").split(",")) if s.strip()]
    try:
        cp = services.checkpoint_create(
            actor=request.jk_user, scope=request.scope, code=_field(data, "code", limit=40),
            name=_field(data, "name") or _field(data, "code", limit=40), kind=_field(data, "kind"),
            region_code=_field(data, "region_code", limit=15), lon=lon, lat=lat,
            zone=_field(data, "zone", limit=32) or None, staff=[s.strip() for s in staff], request=request)
    except ApplicationError as exc:
        _error(request, exc)
        return redirect("codes:checkpoint_list")
    messages.success(request, _("Checkpoint %(code)s added.") % {"code": cp.code})
    return redirect("codes:checkpoint_board", cp.code)


@require(Perm.CHECKPOINT_VERIFY)
def checkpoint_board(request, code: str):
    cp = services.checkpoint_for_device(actor=request.jk_user, scope=request.scope, code=code)
    day = _day(request)
    start, end = selectors.day_window(day)
    hours = selectors.hourly(scope=request.scope, start=start, end=end, checkpoint=cp)
    decision = _field(request.GET, "decision")
    decision = decision if decision in {d.value for d in Decision} else ""
    recent = list(selectors.recent_crossings(scope=request.scope, checkpoint=cp, decision=decision, limit=50))
    peak = max((h["total"] for h in hours), default=0)
    denials = [(REASON_LABELS.get(code_, code_), n) for code_, n in
               selectors.denial_reasons(scope=request.scope, start=start, end=end, checkpoint=cp)]
    return _render(request, "codes/checkpoint_board.html", {
        "cp": cp, "day": day, "hours": hours, "totals": selectors.totals(hours), "peak": peak or 1,
        "recent": recent, "denials": denials, "decision": decision, "decisions": Decision.choices,
        "reason_labels": REASON_LABELS, "can_manage": request.jk_user.has_role_perm(Perm.CHECKPOINT_MANAGE),
        "staff": sorted(u.username for u in cp.staff.all()),
    })


def _whos(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").replace("，", "\n").splitlines() if line.strip()]


@require(Perm.CHECKPOINT_VERIFY)
def checkpoint_verify(request, code: str):
    cp = services.checkpoint_for_device(actor=request.jk_user, scope=request.scope, code=code)
    result, form = None, {"subject": "person", "direction": ""}
    if request.method == "POST":
        data = request.POST
        form = {k: _field(data, k, limit=2048) for k in ("subject", "who", "plate", "driver", "passengers",
                                                         "pass_number", "direction", "origin_code")}
        raw = {"subject": form["subject"] or "person", "direction": form["direction"],
               "origin_code": form["origin_code"], "client_id": _field(data, "client_id", limit=64) or None}
        if raw["subject"] == "vehicle":
            raw.update(plate=form["plate"], driver=form["driver"] or None, passengers=_whos(form["passengers"]),
                       pass_number=form["pass_number"])
        else:
            raw["person"] = form["who"]
        try:
            outcome, _created = services.verify_and_log(actor=request.jk_user, scope=request.scope,
                                                        checkpoint_code=cp.code, raw=raw, request=request)
            result = outcome.as_dict()
        except ApplicationError as exc:
            _error(request, exc)
        else:
            form = {"subject": raw["subject"], "direction": form["direction"], "origin_code": form["origin_code"]}
    return _render(request, "codes/checkpoint_verify.html", {
        "cp": cp, "result": result, "form": form, "directions": DIRECTIONS, "reason_labels": REASON_LABELS,
        "client_id": _new_client_id(),
    })


# --- passes -----------------------------------------------------------------------------------------------------------


@require(Perm.CHECKPOINT_MANAGE)
def passes(request):
    plate = _field(request.GET, "plate", limit=32)
    status = _field(request.GET, "status")
    status = status if status in ("valid", "revoked", "expired") else ""
    qs = selectors.pass_list(scope=request.scope, plate=plate, status=status)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    now = clock.now()
    return _render(request, "codes/checkpoint_passes.html", {
        "page": page, "rows": [{"p": p, "state": selectors.pass_state(p, now)} for p in page.object_list],
        "plate": plate, "status": status, "kinds": PassKind.choices,
        "default_until": (now + dt.timedelta(days=7)).astimezone(_tz()).strftime("%Y-%m-%dT%H:%M"),
        "default_region": request.scope.prefix or "",
    })


@require(Perm.CHECKPOINT_MANAGE)
@require_POST
def pass_issue(request):
    data = request.POST
    until_text = _field(data, "valid_until", limit=32)
    try:
        until = parse_datetime(until_text) if until_text else None
    except ValueError:  # well formed but impossible (2022-02-30)
        until = None
    if until is None:
        messages.error(request, _("valid until: a date and time, e.g. 2022-01-20 18:00"))
        return redirect("codes:passes")
    if until.tzinfo is None:
        until = until.replace(tzinfo=_tz())
    try:
        p = services.pass_issue(actor=request.jk_user, scope=request.scope, kind=_field(data, "kind"),
                                plate=_field(data, "plate", limit=32), holder=_field(data, "holder", limit=128),
                                organisation=_field(data, "organisation"), valid_from=None, valid_until=until,
                                region_code=_field(data, "region_code", limit=15), request=request)
    except ApplicationError as exc:
        _error(request, exc)
        return redirect("codes:passes")
    messages.success(request, _("Pass %(number)s issued for %(plate)s.") % {"number": p.number, "plate": p.plate})
    return redirect(reverse("codes:passes") + "?plate=" + p.plate)


@require(Perm.CHECKPOINT_MANAGE)
@require_POST
def pass_revoke(request, number: str):
    p = services.pass_revoke(actor=request.jk_user, scope=request.scope, number=number,
                             reason=_field(request.POST, "reason", limit=500), request=request)
    messages.success(request, _("Pass %(number)s revoked.") % {"number": p.number})
    return redirect("codes:passes")


# --- venues -----------------------------------------------------------------------------------------------------------


@require(Perm.CHECKPOINT_VERIFY)
def venue_list(request):
    from jingkong.geo.models import Venue

    q = _field(request.GET, "q", limit=100)
    qs = Venue.objects.filter(request.scope.q("grid__code")).order_by("code")
    if q:
        from django.db.models import Q

        qs = qs.filter(Q(code__icontains=q) | Q(name__icontains=q))
    exact = qs.filter(code=q).first() if q else None
    if exact is not None:
        return redirect("codes:venue_entry", exact.code)
    return _render(request, "codes/venue_list.html", {"venues": list(qs[:100]), "q": q})


@require(Perm.CHECKPOINT_VERIFY)
def venue_entry(request, venue_code: str):
    venue = services.venue_get(scope=request.scope, code=venue_code)
    result = None
    if request.method == "POST":
        data = request.POST
        masked = _field(data, "masked")
        raw = {"person": _field(data, "who", limit=2048), "temperature": _field(data, "temperature", limit=8) or None,
               "masked": {"yes": True, "no": False}.get(masked), "client_id": _field(data, "client_id", limit=64) or None}
        try:
            outcome, _created = services.venue_entry_record(actor=request.jk_user, scope=request.scope,
                                                            venue_code=venue.code, raw=raw, request=request)
            result = outcome.as_dict()
            result["colour_now_label"] = COLOUR_LABELS.get(result["colour_now"], result["colour_now"])
        except ApplicationError as exc:
            _error(request, exc)
    threshold = None
    try:
        threshold = services.rules_for(venue.grid.code, clock.now()).fever_threshold_celsius
    except ApplicationError:
        pass
    return _render(request, "codes/venue_entry.html", {
        "venue": venue, "result": result, "reason_labels": REASON_LABELS, "threshold": threshold,
        "client_id": _new_client_id(),
    })


@require(Perm.CODES_VIEW)
def referrals(request):
    status = _field(request.GET, "status")
    status = status if status in {s.value for s in ReferralStatus} else ""
    qs = selectors.referral_list(scope=request.scope, status=status)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    audit.record(actor=request.jk_user, action="person.list", object_type="people.person",
                 region_code=request.scope.prefix or "", request=request,
                 detail={"page": "fever_referrals", "status": status, "count": page.paginator.count})
    return _render(request, "codes/venue_referrals.html", {
        "page": page, "status": status, "statuses": ReferralStatus.choices,
        "can_follow_up": request.jk_user.has_role_perm(Perm.CHECKPOINT_MANAGE),
        "next_status": {s: sorted(n) for s, n in services.REFERRAL_NEXT.items()},
    })


@require(Perm.CHECKPOINT_MANAGE)
@require_POST
def referral_status(request, referral_id: int):
    try:
        ref = services.referral_set_status(actor=request.jk_user, scope=request.scope, referral_id=referral_id,
                                           status=_field(request.POST, "status", limit=16),
                                           note=_field(request.POST, "note", limit=1000), request=request)
    except ApplicationError as exc:
        if exc.status_code == 404:
            raise
        _error(request, exc)
    else:
        messages.success(request, _("Referral %(id)s: %(status)s.") % {"id": ref.pk, "status": ref.get_status_display()})
    return redirect("codes:referrals")

