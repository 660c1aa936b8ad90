"""Zones pages under /zones/: the zones list with a map (zones coloured by type, countdowns), a zone's detail (units,
counts, countdown and blockers, history, actions), proposing zones from a case, risk areas (published and imported,
with the import form).

Reads need ZONES_VIEW; proposing and editing proposals ZONES_EDIT; approve/reject/upgrade/downgrade/lift
ZONES_APPROVE. Every object goes through the scoped selectors (404 outside the user's region), every write through the
services.
"""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.core import clock
from jingkong.core.exceptions import ApplicationError, NotFound, ValidationFailed
from jingkong.zones import rules, selectors, services
from jingkong.zones.models import RiskAreaSource, UnitKind, ZoneStatus, ZoneType

ACTIONS = {"approve": 0, "reject": 0, "upgrade": -1, "downgrade": 1, "lift": 0}
TYPE_COLOURS = {"lockdown": "#c0392b", "high_risk": "#c0392b", "control": "#e67e22", "medium_risk": "#e67e22",
                "prevention": "#f1c40f", "low_risk": "#f1c40f"}


def _field(data, name: str, *, limit: int = 1000) -> str:
    return (data.get(name) or "").replace("\x00", "").strip()[:limit]


@require(Perm.ZONES_VIEW)
def zone_list(request):
    status = _field(request.GET, "status")
    if status not in ZoneStatus.values:
        status = ""
    now = clock.now()
    zones = list(selectors.zone_list(scope=request.scope, status=status, active_only=not status)[:500])
    rows = [{"zone": z, "countdown": selectors.countdown_of(z, at=now)} for z in zones]
    return render(request, "zones/zone_list.html", {
        "rows": rows, "status": status, "statuses": ZoneStatus.choices, "colours": TYPE_COLOURS,
        "map_config": {"geojson": "/api/v1/zones/zones/geojson", "colours": TYPE_COLOURS,
                       "detail": reverse("zones:zone_detail", args=["REF"]),
                       "labels": {k: str(v) for k, v in ZoneType.choices}},
        "can_edit": request.jk_user.has_role_perm(Perm.ZONES_EDIT),
    })


# History actions in the reader's language (ZoneChange.action holds the identifier).
ACTION_LABELS = {
    "propose": gettext_lazy("proposed"), "propose_upgrade": gettext_lazy("upgrade proposed (a positive inside)"),
    "edit": gettext_lazy("edited"), "approve": gettext_lazy("approved"), "reject": gettext_lazy("rejected"),
    "upgrade": gettext_lazy("upgraded"), "downgrade": gettext_lazy("downgraded"), "lift": gettext_lazy("lifted"),
    "infection_inside": gettext_lazy("new infection inside"), "residents": gettext_lazy("residents moved in or out"),
}


def _history(zone) -> list[dict]:
    types = dict(ZoneType.choices)
    return [{"at": c.at, "actor": c.actor.username if c.actor_id else None,
             "action": ACTION_LABELS.get(c.action, c.action), "from_type": types.get(c.from_type, c.from_type),
             "to_type": types.get(c.to_type, c.to_type), "reason": c.reason} for c in selectors.history_of(zone)]


def _detail_context(request, zone) -> dict:
    now = clock.now()
    user = request.jk_user
    approved = zone.status == ZoneStatus.APPROVED
    return {
        "zone": zone, "countdown": selectors.countdown_of(zone, at=now),
        "units": [u | {"kind_label": dict(UnitKind.choices).get(u["kind"], u["kind"])} for u in selectors.units_of(zone)],
        "history": _history(zone), "colours": TYPE_COLOURS,
        "can_edit": zone.status in (ZoneStatus.PROPOSED, ZoneStatus.APPROVED) and user.has_role_perm(
            Perm.ZONES_APPROVE if approved else Perm.ZONES_EDIT),
        "can_approve": user.has_role_perm(Perm.ZONES_APPROVE),
        "up": rules.step(zone.type, -1) if approved else None, "down": rules.step(zone.type, 1) if approved else None,
        "types": [(t, label) for t, label in ZoneType.choices if rules.scheme_of(t) == rules.scheme_of(zone.type)],
        "unit_kinds": UnitKind.choices,
        "map_config": {"geometry": zone.geometry, "colour": TYPE_COLOURS.get(zone.type, "#888")},
    }


@require(Perm.ZONES_VIEW)
def zone_detail(request, ref: str):
    zone = selectors.zone_get_by_ref(scope=request.scope, ref=ref)
    return render(request, "zones/zone_detail.html", _detail_context(request, zone))


def _int(value: str, name: str) -> int | None:
    if not value:
        return None
    try:
        n = int(value)
    except ValueError:
        raise ValidationFailed(_("%(field)s: not a number") % {"field": name}) from None
    if not 0 < n < 2**62:
        raise ValidationFailed(_("%(field)s: out of range") % {"field": name})
    return n


@require(Perm.ZONES_EDIT)
@require_POST
def zone_edit(request, ref: str):
    zone = selectors.zone_get_by_ref(scope=request.scope, ref=ref)
    data = request.POST
    units = []
    kind = _field(data, "unit_kind", limit=16)
    target = _field(data, "unit_target", limit=40)
    if kind and target:
        unit = services.UnitIn(kind=kind, entrance=_field(data, "unit_entrance", limit=16))
        if kind == "household":
            unit.household_id = _int(target, "household")
        elif kind in ("building", "entrance", "compound"):
            unit.building_id = _int(target, "building")
        else:
            unit.region_code = target
        units.append(unit)
    remove = [_int(v, "remove") for v in data.getlist("remove") if v]
    type_ = _field(data, "type", limit=16) or None
    try:
        services.zone_edit(zone, actor=request.jk_user, scope=request.scope, name=_field(data, "name", limit=255) or None,
                           type=type_ if type_ != zone.type else None, add_units=units, remove_unit_ids=remove,
                           reason=_field(data, "reason", limit=2000), request=request)
    except ValidationFailed as exc:
        messages.error(request, exc.message)
        context = _detail_context(request, zone)
        return render(request, "zones/zone_detail.html", context, status=422)
    messages.success(request, _("Zone %(ref)s changed.") % {"ref": zone.ref})
    return redirect("zones:zone_detail", ref=zone.ref)


@require(Perm.ZONES_APPROVE)
@require_POST
def zone_action(request, ref: str, action: str):
    if action not in ACTIONS:
        raise NotFound(_("no such action"))
    zone = selectors.zone_get_by_ref(scope=request.scope, ref=ref)
    reason = _field(request.POST, "reason", limit=2000)
    kwargs = {"actor": request.jk_user, "reason": reason, "request": request}
    try:
        if action == "approve":
            services.zone_approve(zone, **kwargs)
        elif action == "reject":
            services.zone_reject(zone, **kwargs)
        elif action == "lift":
            services.zone_lift(zone, **kwargs)
        else:
            services.zone_regrade(zone, direction=ACTIONS[action], **kwargs)
    except ApplicationError as exc:
        if exc.status_code == 404:
            raise
        messages.error(request, exc.message)
        return render(request, "zones/zone_detail.html", _detail_context(request, zone), status=exc.status_code)
    messages.success(request, _("Zone %(ref)s: done.") % {"ref": zone.ref})
    return redirect("zones:zone_detail", ref=zone.ref)


@require(Perm.ZONES_EDIT)
def propose(request):
    case_ref = _field(request.POST if request.method == "POST" else request.GET, "case", limit=32)
    if request.method == "POST":
        from jingkong.tracing.selectors import case_get_by_ref

        try:
            case = case_get_by_ref(scope=request.scope, ref=case_ref)
            zones = services.propose_from_case(case, actor=request.jk_user, request=request)
        except ApplicationError as exc:
            return render(request, "zones/propose.html", {"case_ref": case_ref, "error": exc.message},
                          status=exc.status_code if exc.status_code in (404, 409, 422) else 400)
        messages.success(request, _("Proposed: %(refs)s") % {"refs": ", ".join(z.ref for z in zones)})
        return redirect("zones:zone_detail", ref=zones[0].ref)
    return render(request, "zones/propose.html", {"case_ref": case_ref})


@require(Perm.ZONES_VIEW)
def risk_areas(request, *, result=None, status: int = 200):
    now = clock.now()
    areas = list(selectors.risk_area_list(scope=request.scope, in_force_at=now)[:2000])
    return render(request, "zones/risk_areas.html", {
        "district": [a for a in areas if a.source == RiskAreaSource.DISTRICT],
        "imported": [a for a in areas if a.source == RiskAreaSource.IMPORTED],
        "can_import": request.jk_user.has_role_perm(Perm.ZONES_EDIT), "result": result,
    }, status=status)


@require(Perm.ZONES_EDIT)
@require_POST
def risk_import(request):
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, _("Choose a CSV file."))
        return risk_areas.__wrapped__(request, status=422)
    if upload.size > 5 * 1024 * 1024:
        messages.error(request, _("The file is larger than 5 MB."))
        return risk_areas.__wrapped__(request, status=422)
    try:
        result = services.risk_areas_import(upload.read(), actor=request.jk_user,
                                            list_name=_field(request.POST, "list_name", limit=128)
                                            or (upload.name or "")[:128].replace("\x00", ""), request=request)
    except ValidationFailed as exc:
        messages.error(request, exc.message)
        return risk_areas.__wrapped__(request, status=422)
    return risk_areas.__wrapped__(request, result=result, status=200)
