"""Rounds and sites: campaigns, areas, sampling sites and samplers, building assignments with time slots, the round
estimate, positivity with the recommended pool size per area, key-industry compliance, pool-size planning.

Reads need TESTING_VIEW, writes TESTING_PLAN, lists naming persons PERSON_VIEW (and are audited).
"""

from __future__ import annotations

from django.db.models import F
from ninja import Query, Router, Status

from jingkong.access import audit
from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.core import clock
from jingkong.core.exceptions import NotFound, ValidationFailed
from jingkong.people import idnumber
from jingkong.people.models import Industry
from jingkong.testing import industry, planning, pooling, positivity, selectors, services
from jingkong.testing.models import CampaignArea, CampaignStatus, SiteKind
from jingkong.testing.schemas.campaigns import (
    AreaIn,
    AreaOut,
    AssignIn,
    AssignmentPage,
    CampaignIn,
    CampaignOut,
    CampaignPatch,
    CloseIn,
    DeactivateIn,
    DeactivateOut,
    PlanIn,
    PoolPlanQuery,
    SamplersIn,
    SiteIn,
    SiteOut,
    SitePatch,
)

router = Router(tags=["testing: rounds and sites"])


def _campaign(request, campaign_id: int, for_write: bool = False):
    return selectors.campaign_get(scope=request.scope, campaign_id=campaign_id, for_write=for_write)


def _show_phone(request) -> bool:
    return request.jk_user.has_role_perm(Perm.PERSON_VIEW_PHONE)


def _choice(value: str, allowed, field: str) -> str:
    if value and value not in allowed:
        raise ValidationFailed(f"{field}: unknown value {value!r}; one of {list(allowed)}", extra={"field": field})
    return value


# --- campaigns -------------------------------------------------------------------------------------------------------


@router.get("/campaigns", response=list[CampaignOut])
@require(Perm.TESTING_VIEW)
def campaigns_list(request, status: str = "", q: str = ""):
    """Rounds in your area, and rounds covering it (a district-wide round for a street), newest first."""
    _choice(status, CampaignStatus.values, "status")
    return list(selectors.campaign_list(scope=request.scope, status=status, q=q)[:500])


@router.post("/campaigns", response={201: CampaignOut})
@require(Perm.TESTING_PLAN)
def campaigns_create(request, payload: CampaignIn):
    """Plan a round for a region inside your area (pool size checked against the policy in force)."""
    campaign = services.campaign_create(actor=request.jk_user, scope=request.scope, **payload.dict())
    return Status(201, campaign)


@router.get("/campaigns/{campaign_id}", response=CampaignOut)
@require(Perm.TESTING_VIEW)
def campaigns_get(request, campaign_id: int):
    return _campaign(request, campaign_id)


@router.patch("/campaigns/{campaign_id}", response=CampaignOut)
@require(Perm.TESTING_PLAN)
def campaigns_update(request, campaign_id: int, payload: CampaignPatch):
    """Change a round's settings (the start and the key group only before it starts)."""
    campaign = _campaign(request, campaign_id, for_write=True)
    return services.campaign_update(actor=request.jk_user, scope=request.scope, campaign=campaign,
                                    **payload.dict(exclude_unset=True))


@router.post("/campaigns/{campaign_id}/start", response=CampaignOut)
@require(Perm.TESTING_PLAN)
def campaigns_start(request, campaign_id: int):
    campaign = _campaign(request, campaign_id, for_write=True)
    return services.campaign_start(actor=request.jk_user, scope=request.scope, campaign=campaign)


@router.post("/campaigns/{campaign_id}/close", response=CampaignOut)
@require(Perm.TESTING_PLAN)
def campaigns_close(request, campaign_id: int, payload: CloseIn):
    campaign = _campaign(request, campaign_id, for_write=True)
    return services.campaign_close(actor=request.jk_user, scope=request.scope, campaign=campaign,
                                   reason=payload.reason)


# --- areas -----------------------------------------------------------------------------------------------------------


@router.get("/campaigns/{campaign_id}/areas", response=list[AreaOut])
@require(Perm.TESTING_VIEW)
def areas_list(request, campaign_id: int):
    """The round's per-area modes and pool sizes that concern your area (the most specific area wins)."""
    return selectors.area_list(scope=request.scope, campaign=_campaign(request, campaign_id))


@router.post("/campaigns/{campaign_id}/areas", response=AreaOut)
@require(Perm.TESTING_PLAN)
def areas_set(request, campaign_id: int, payload: AreaIn):
    """Set (create or replace) the mode and pool size of a sub-region inside your area."""
    campaign = _campaign(request, campaign_id)
    return services.area_set(actor=request.jk_user, scope=request.scope, campaign=campaign, **payload.dict())


@router.delete("/campaigns/{campaign_id}/areas/{area_id}", response={204: None})
@require(Perm.TESTING_PLAN)
def areas_delete(request, campaign_id: int, area_id: int):
    campaign = _campaign(request, campaign_id)
    area = CampaignArea.objects.filter(pk=area_id, campaign=campaign).first()
    if area is None or not request.scope.contains(area.region_code):
        raise NotFound("area not found")
    services.area_delete(actor=request.jk_user, scope=request.scope, campaign=campaign, area=area)
    return Status(204, None)


# --- planning --------------------------------------------------------------------------------------------------------


@router.post("/campaigns/{campaign_id}/plan", response=dict)
@require(Perm.TESTING_VIEW)
def campaigns_plan(request, campaign_id: int, payload: PlanIn):
    """Estimate the round (your part of it): when sampling and results finish, the peak lab backlog and the binding
    constraint (samplers, sites, tubes, labs) with the numbers behind it. Writes nothing."""
    campaign = _campaign(request, campaign_id)
    try:
        return selectors.campaign_estimate(scope=request.scope, campaign=campaign, **payload.dict())
    except planning.PlanningError as exc:
        raise ValidationFailed(str(exc), extra={"field": exc.field}) from None


@router.post("/campaigns/{campaign_id}/assign-buildings", response=dict)
@require(Perm.TESTING_PLAN)
def campaigns_assign(request, campaign_id: int, payload: AssignIn):
    """Assign every building (of your part of the round) to its site — nearest with capacity balancing — with a
    recommended time slot; replaces the previous assignment of that part."""
    campaign = _campaign(request, campaign_id)
    return services.buildings_assign(actor=request.jk_user, scope=request.scope, campaign=campaign, **payload.dict())


@router.get("/campaigns/{campaign_id}/assignments", response=AssignmentPage)
@require(Perm.TESTING_VIEW)
def assignments_list(request, campaign_id: int, site_id: int | None = None, region: str = "", page: int = 1,
                     page_size: int = 100):
    """Buildings with their site and time slot (filter by site or region), by site and slot."""
    campaign = _campaign(request, campaign_id)
    qs = selectors.assignment_list(scope=request.scope, campaign=campaign, site_id=site_id, region=region)
    page, page_size = selectors.page_number(page), max(1, min(page_size, 1000))
    count = qs.count()
    items = [{"building_id": a.building_id, "building_code": a.building.code, "address": a.building.address,
              "site_id": a.site_id, "site_code": a.site.code, "site_name": a.site.name, "region_code": a.region_code,
              "residents": a.residents, "distance_m": a.distance_m, "slot_start": a.slot_start,
              "slot_end": a.slot_end} for a in qs[(page - 1) * page_size: page * page_size]]
    return {"count": count, "page": page, "page_size": page_size, "items": items}


@router.get("/campaigns/{campaign_id}/site-board", response=list[dict])
@require(Perm.TESTING_VIEW)
def campaigns_site_board(request, campaign_id: int):
    """Per site: capacity, assigned buildings and residents, scans so far and in the last hour, expected arrivals in
    the coming hour, open and sealed tubes."""
    campaign = _campaign(request, campaign_id)
    rows = selectors.site_board(scope=request.scope, campaign=campaign)
    for row in rows:
        row.pop("site")
    return rows


def positivity_rows(request, campaign, level: str, days: int, min_tested: int = 200) -> dict:
    """Recent positivity per area of the round (your part of it) and the pool size it recommends."""
    _choice(level, positivity.LEVEL_LENGTH, "level")
    if not 1 <= days <= positivity.MAX_DAYS:
        raise ValidationFailed(f"days: must be from 1 to {positivity.MAX_DAYS}", extra={"field": "days"})
    if not 1 <= min_tested <= 1_000_000:
        raise ValidationFailed("min_tested: must be from 1 to 1,000,000", extra={"field": "min_tested"})
    prefix = selectors.campaign_prefix(scope=request.scope, campaign=campaign)
    rules = selectors.area_rules(campaign)
    profile, allowed = None, []
    try:
        found, testing, _zones = services.testing_rules(prefix)
        profile, allowed = services._profile_label(found), list(testing.pool_sizes_allowed)
    except ValidationFailed:
        pass  # no policy in force: positivity is still shown; the current sizes stay
    rows = positivity.area_positivity(prefix=prefix, level=level, days=days, now=clock.now(), allowed=allowed,
                                      current_size=lambda code: selectors.rule_for(rules, code).pool_size,
                                      min_tested=min_tested)
    return {"region_code": prefix, "level": level, "days": days, "min_tested": min_tested, "policy_profile": profile,
            "pool_sizes_allowed": allowed, "rows": rows}


@router.get("/campaigns/{campaign_id}/positivity", response=dict)
@require(Perm.TESTING_VIEW)
def campaigns_positivity(request, campaign_id: int, level: str = "community", days: int = 7, min_tested: int = 200):
    """Recent positivity per street/community/grid (individual positives / persons tested; pool positivity) and the
    pool size recommended for each area among the sizes the policy allows (areas with fewer than ``min_tested``
    people tested keep their current size)."""
    return positivity_rows(request, _campaign(request, campaign_id), level, days, min_tested)


def door_to_door_payload(request, campaign, building: str = "", only_unsampled: bool = False) -> list[dict]:
    persons = selectors.door_to_door_list(scope=request.scope, campaign=campaign, building=building,
                                          only_unsampled=only_unsampled)
    audit.record(actor=request.jk_user, action="person.list", object_type="people.person",
                 region_code=selectors.campaign_prefix(scope=request.scope, campaign=campaign), request=request,
                 detail={"list": "testing.door_to_door", "campaign": campaign.code, "building": building,
                         "only_unsampled": only_unsampled, "count": len(persons)})
    show = _show_phone(request)
    grouped: dict[str, dict] = {}
    for p in persons:
        key = p.building.code if p.building_id else ""
        entry = grouped.setdefault(key, {"building": key, "address": p.building.address if p.building_id else "",
                                         "grid": p.grid.code if p.grid_id else "", "persons": []})
        entry["persons"].append({"id": p.pk, "name": p.name, "id_masked": p.id_masked, "unit": p.unit,
                                 "room": p.room, "household": p.household.code if p.household_id else "",
                                 "phone": p.phone if show else idnumber.phone_mask(p.phone),
                                 "sampled": bool(p.sampled)})
    return list(grouped.values())


@router.get("/campaigns/{campaign_id}/door-to-door", response=list[dict])
@require(Perm.PERSON_VIEW)
def campaigns_door_to_door(request, campaign_id: int, building: str = "", only_unsampled: bool = False):
    """Bedridden and limited-mobility residents (not exempt: sampled at home), by building, unit and room, with
    whether each is already swabbed in this round — the door team's list. Audited."""
    return door_to_door_payload(request, _campaign(request, campaign_id), building, only_unsampled)


# --- sites -----------------------------------------------------------------------------------------------------------


@router.get("/sites", response=list[SiteOut])
@require(Perm.TESTING_VIEW)
def sites_list(request, campaign_id: int | None = None, active: bool | None = None, kind: str = "",
               region: str = ""):
    """Sampling sites and door teams in your area (with ``campaign_id``: those serving the round)."""
    _choice(kind, SiteKind.values, "kind")
    campaign = _campaign(request, campaign_id) if campaign_id else None
    qs = selectors.site_list(scope=request.scope, campaign=campaign, active=active, kind=kind, region=region)
    return list(qs.prefetch_related("samplers")[:2000])


@router.post("/sites", response={201: SiteOut})
@require(Perm.TESTING_PLAN)
def sites_create(request, payload: SiteIn):
    site = services.site_create(actor=request.jk_user, scope=request.scope, **payload.dict())
    return Status(201, site)


@router.get("/sites/{site_id}", response=SiteOut)
@require(Perm.TESTING_VIEW)
def sites_get(request, site_id: int):
    return selectors.site_get(scope=request.scope, site_id=site_id)


@router.patch("/sites/{site_id}", response=SiteOut)
@require(Perm.TESTING_PLAN)
def sites_update(request, site_id: int, payload: SitePatch):
    site = selectors.site_get(scope=request.scope, site_id=site_id)
    return services.site_update(actor=request.jk_user, scope=request.scope, site=site,
                                **payload.dict(exclude_unset=True))


@router.post("/sites/{site_id}/deactivate", response=DeactivateOut)
@require(Perm.TESTING_PLAN)
def sites_deactivate(request, site_id: int, payload: DeactivateIn):
    """Take a site out of service; the rounds whose building assignments must be re-run are listed."""
    site = selectors.site_get(scope=request.scope, site_id=site_id)
    return services.site_deactivate(actor=request.jk_user, scope=request.scope, site=site, reason=payload.reason)


@router.put("/sites/{site_id}/samplers", response=SiteOut)
@require(Perm.TESTING_PLAN)
def sites_samplers(request, site_id: int, payload: SamplersIn):
    """Replace the site's samplers (users in your area whose role may sample); samplers scan only at their sites."""
    site = selectors.site_get(scope=request.scope, site_id=site_id)
    return services.site_samplers_set(actor=request.jk_user, scope=request.scope, site=site, user_ids=payload.user_ids)


# --- key industries, pool sizes --------------------------------------------------------------------------------------


def _intervals(request):
    return industry.intervals_for(request.scope, clock.now())  # 404 without a profile, 422 without testing rules


@router.get("/key-industries/compliance", response=dict)
@require(Perm.TESTING_VIEW)
def key_industries_compliance(request, industry_code: str = Query("", alias="industry")):
    """Per employer and industry: workers compliant, due (within a day) and overdue for their periodic test, from the
    policy's intervals and each worker's last sample."""
    _choice(industry_code, [v for v in Industry.values if v], "industry")
    now = clock.now()
    intervals, profile = _intervals(request)
    rows = industry.compliance(scope=request.scope, now=now, intervals=intervals, industry=industry_code)
    totals = {k: sum(r[k] for r in rows) for k in ("workers", "compliant", "due", "overdue", "never_sampled")}
    return {"at": now, "policy_profile": profile, "interval_days": intervals, "totals": totals, "rows": rows}


@router.get("/key-industries/workers", response=dict)
@require(Perm.PERSON_VIEW)
def key_industries_workers(request, industry_code: str = Query("", alias="industry"), employer: str | None = None,
                           workplace: int | None = None, status: str = "", page: int = 1, page_size: int = 100):
    """The workers behind a compliance row (filter by industry, employer, workplace id — 0 for none — and status).
    Audited."""
    _choice(industry_code, [v for v in Industry.values if v], "industry")
    _choice(status, industry.STATUSES, "status")
    now = clock.now()
    intervals, profile = _intervals(request)
    qs = industry.workers(scope=request.scope, now=now, intervals=intervals, industry=industry_code,
                          employer=employer, workplace=workplace, status=status)
    qs = qs.select_related("grid", "building", "workplace").order_by(F("last_sampled").asc(nulls_first=True), "id")
    page, page_size = selectors.page_number(page), max(1, min(page_size, 1000))
    count = qs.count()
    items = list(qs[(page - 1) * page_size: page * page_size])
    audit.record(actor=request.jk_user, action="person.list", object_type="people.person",
                 region_code=request.scope.prefix or "", request=request,
                 detail={"list": "testing.key_industry_workers", "industry": industry_code, "employer": employer,
                         "workplace": workplace, "status": status, "count": count, "page": page,
                         "returned": len(items)})
    show = _show_phone(request)
    return {"at": now, "policy_profile": profile, "count": count, "page": page, "page_size": page_size, "items": [
        {"id": p.pk, "name": p.name, "id_masked": p.id_masked,
         "phone": p.phone if show else idnumber.phone_mask(p.phone), "industry": p.industry, "employer": p.employer,
         "workplace": p.workplace.name if p.workplace_id else "", "grid": p.grid.code if p.grid_id else "",
         "building": p.building.code if p.building_id else "", "last_sampled": p.last_sampled,
         "interval_days": intervals.get(p.industry), "status": p.status} for p in items]}


@router.get("/pools/plan", response=dict)
@require(Perm.TESTING_VIEW)
def pools_plan(request, params: Query[PoolPlanQuery]):
    """Dorfman two-stage pool-size planning: expected tests per person for each size, the optimal size and the best
    size the policy in force for your area allows."""
    allowed = None
    try:
        _found, testing, _ = services.testing_rules(request.scope.prefix or "")
        allowed = list(testing.pool_sizes_allowed)
    except ValidationFailed:
        pass
    try:
        return pooling.plan(params.prevalence, max_size=params.max_size, sensitivity=params.sensitivity,
                            specificity=params.specificity, allowed=allowed)
    except pooling.PoolingError as exc:
        raise ValidationFailed(str(exc), extra={"field": exc.field}) from None
