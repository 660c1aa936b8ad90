"""/api/v1/zones/ — thin routes over services and selectors (every route declares its permission via the guard).

Reads need ZONES_VIEW (zone maps and counts are aggregates); proposing and editing proposals ZONES_EDIT; approving,
rejecting, upgrading, downgrading and lifting ZONES_APPROVE (commanders); a zone's residents list PERSON_VIEW (audited).
A zone outside the caller's region answers 404.
"""

from __future__ import annotations

import datetime as dt

from django.utils.translation import gettext as _
from ninja import File, Router, Status
from ninja.files import UploadedFile

from jingkong.access import audit
from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.core import clock
from jingkong.core.exceptions import ValidationFailed
from jingkong.zones import selectors, services
from jingkong.zones.schemas import (
    ApproveIn,
    DivisionCode,
    ImportOut,
    ProposeIn,
    ReasonIn,
    ResidentPage,
    RiskAreaPage,
    RiskLevelOut,
    SourceFilterT,
    Text,
    ZoneDetailOut,
    ZoneEditIn,
    ZoneOut,
    ZonePage,
    ZoneStatusFilterT,
    ZoneTypeFilterT,
    risk_area_out,
    zone_out,
)

router = Router(tags=["zones"])
MAX_UPLOAD = 5 * 1024 * 1024


def detail(zone, *, at: dt.datetime | None = None) -> dict:
    at = at or clock.now()
    out = zone_out(zone, selectors.countdown_of(zone, at=at))
    out["units"] = selectors.units_of(zone)
    out["history"] = [{"at": c.at, "actor": c.actor.username if c.actor_id else None, "action": c.action,
                       "from_type": c.from_type, "to_type": c.to_type, "reason": c.reason, "detail": c.detail}
                      for c in selectors.history_of(zone)]
    out["geometry"] = zone.geometry
    out["policy_profile"] = f"{zone.profile.code} v{zone.profile.version}" if zone.profile_id else None
    return out


@router.get("/zones", response=ZonePage)
@require(Perm.ZONES_VIEW)
def zones_list(request, status: ZoneStatusFilterT = "", type: ZoneTypeFilterT = "", limit: int = 200):
    """Zones in the caller's region, newest first, each with its countdown."""
    qs = selectors.zone_list(scope=request.scope, status=status, type=type)
    count = qs.count()
    zones = list(qs[: max(1, min(limit, 1000))])
    countdowns = selectors.countdowns_of(zones, at=clock.now())
    items = [zone_out(z, countdowns[z.pk]) for z in zones]
    return {"count": count, "items": items}


@router.get("/zones/geojson")
@require(Perm.ZONES_VIEW)
def zones_geojson(request, proposed: bool = True, region: str = ""):
    """Zones in force (and proposals) in the caller's region as GeoJSON, for maps; ``region`` (a division code inside
    your region) keeps the zones lying under it."""
    region = selectors.region_scope(request.scope, region)
    return selectors.geojson(scope=request.scope, include_proposed=proposed, region=region)


@router.post("/zones/propose", response={201: list[ZoneOut]})
@require(Perm.ZONES_EDIT)
def zones_propose(request, payload: ProposeIn):
    """Propose lockdown / control / prevention zones from a case (its home, workplace and frequent places)."""
    from jingkong.tracing.selectors import case_get_by_ref

    case = case_get_by_ref(scope=request.scope, ref=payload.case_ref.strip())
    zones = services.propose_from_case(case, actor=request.jk_user, request=request)
    return Status(201, [zone_out(z) for z in zones])


@router.get("/zones/{zone_id}", response=ZoneDetailOut)
@require(Perm.ZONES_VIEW)
def zones_get(request, zone_id: int):
    """One zone: units, counts, countdown with what blocks it, history."""
    return detail(selectors.zone_get(scope=request.scope, zone_id=zone_id))


@router.patch("/zones/{zone_id}", response=ZoneDetailOut)
@require(Perm.ZONES_EDIT)
def zones_edit(request, zone_id: int, payload: ZoneEditIn):
    """Edit a proposal (name, type, units added or removed); a zone in force only by a commander."""
    zone = selectors.zone_get(scope=request.scope, zone_id=zone_id)
    units = [services.UnitIn(**u.dict()) for u in payload.add_units]
    zone = services.zone_edit(zone, actor=request.jk_user, scope=request.scope, name=payload.name,
                              type=payload.type, add_units=units, remove_unit_ids=payload.remove_unit_ids,
                              reason=payload.reason, request=request)
    return detail(zone)


def _act(request, zone_id: int, fn, **kwargs):
    zone = selectors.zone_get(scope=request.scope, zone_id=zone_id)
    return detail(fn(zone, actor=request.jk_user, request=request, **kwargs))


@router.post("/zones/{zone_id}/approve", response=ZoneDetailOut)
@require(Perm.ZONES_APPROVE)
def zones_approve(request, zone_id: int, payload: ApproveIn):
    """Approve a proposal: it is in force, residents are listed, risk areas published."""
    return _act(request, zone_id, services.zone_approve, reason=payload.reason)


@router.post("/zones/{zone_id}/reject", response=ZoneDetailOut)
@require(Perm.ZONES_APPROVE)
def zones_reject(request, zone_id: int, payload: ReasonIn):
    return _act(request, zone_id, services.zone_reject, reason=payload.reason)


@router.post("/zones/{zone_id}/upgrade", response=ZoneDetailOut)
@require(Perm.ZONES_APPROVE)
def zones_upgrade(request, zone_id: int, payload: ReasonIn):
    """One level more severe (control → lockdown; medium → high risk)."""
    return _act(request, zone_id, services.zone_regrade, direction=-1, reason=payload.reason)


@router.post("/zones/{zone_id}/downgrade", response=ZoneDetailOut)
@require(Perm.ZONES_APPROVE)
def zones_downgrade(request, zone_id: int, payload: ReasonIn):
    """One level less severe (lockdown → control; high → medium → low risk)."""
    return _act(request, zone_id, services.zone_regrade, direction=1, reason=payload.reason)


@router.post("/zones/{zone_id}/lift", response=ZoneDetailOut)
@require(Perm.ZONES_APPROVE)
def zones_lift(request, zone_id: int, payload: ReasonIn):
    """Lift a zone in force: residents released, published risk areas withdrawn."""
    return _act(request, zone_id, services.zone_lift, reason=payload.reason)


@router.get("/zones/{zone_id}/residents", response=ResidentPage)
@require(Perm.PERSON_VIEW)
def zones_residents(request, zone_id: int, page: int = 1, page_size: int = 100):
    """The people living inside a zone in force (audited)."""
    zone = selectors.zone_get(scope=request.scope, zone_id=zone_id)
    page, page_size = max(1, min(page, 100_000)), max(1, min(page_size, 500))
    qs = selectors.residents_of(zone)
    count = qs.count()
    rows = list(qs[(page - 1) * page_size: page * page_size])
    audit.record(actor=request.jk_user, action="person.list", object_type="people.person",
                 region_code=zone.region_code, request=request,
                 detail={"list": "zone_residents", "zone": zone.ref, "count": count, "returned": len(rows)})
    return {"count": count, "page": page, "page_size": page_size, "items": [
        {"person_id": r.person_id, "name": r.person.name, "id_masked": r.person.id_masked,
         "region_code": r.region_code, "household": r.person.household.code if r.person.household_id else None,
         "vulnerable": r.person.vulnerable} for r in rows]}


# --- risk areas --------------------------------------------------------------------------------------------------------


@router.get("/risk-areas", response=RiskAreaPage)
@require(Perm.ZONES_VIEW)
def risk_areas_list(request, source: SourceFilterT = "", in_force: bool = True, limit: int = 500):
    """Risk areas published by the district (inside the caller's region) and imported lists of other places."""
    qs = selectors.risk_area_list(scope=request.scope, source=source, in_force_at=clock.now() if in_force else None)
    count = qs.count()
    return {"count": count, "items": [risk_area_out(a) for a in qs[: max(1, min(limit, 5000))]]}


@router.get("/risk-areas/level", response=RiskLevelOut)
@require(Perm.ZONES_VIEW)
def risk_areas_level(request, code: DivisionCode, at: dt.datetime | None = None):
    """The risk level of a division code (prefix match over the areas in force): high, medium or null."""
    at = at or clock.now()
    if at.tzinfo is None:
        raise ValidationFailed(_("at: give a time zone"), extra={"field": "at"})
    try:
        at = at.astimezone(dt.UTC)
    except OverflowError:  # 0001-01-01T00:00+14:00: no UTC instant (was a 500)
        raise ValidationFailed(_("at: out of range"), extra={"field": "at"}) from None
    return {"code": code, "at": at, "level": selectors.risk_level_of(code, at)}


@router.post("/risk-areas/import", response=ImportOut)
@require(Perm.ZONES_EDIT)
def risk_areas_import(request, file: UploadedFile = File(...), list_name: Text = ""):  # noqa: B008
    """Upload another place's list (CSV code,name,level[,published_at]; UTF-8 or GBK). Bad rows are reported by line
    and field; good rows are kept; the same file again changes nothing."""
    if file.size and file.size > MAX_UPLOAD:
        raise ValidationFailed(_("file: at most 5 MB"), extra={"field": "file"})
    data = file.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise ValidationFailed(_("file: at most 5 MB"), extra={"field": "file"})
    return services.risk_areas_import(data, actor=request.jk_user, list_name=list_name or (file.name or "")[:128],
                                      request=request)
