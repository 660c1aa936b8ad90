"""/api/v1/codes/ routes of the health codes: a person's code, counts by colour per region with drill-down, lists of
restricted people, manual overrides and the full recompute.

Reads need CODES_VIEW (a person's code and the lists are person data: audited, masked ID numbers, names only for
PERSON_VIEW holders), overrides CODES_OVERRIDE, the recompute CODES_RECOMPUTE. Everything is scoped by the person's
grid (404 outside the caller's region).
"""

from __future__ import annotations

from ninja import Router, Status

from jingkong.access import audit
from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.codes import selectors, services
from jingkong.codes.schemas_codes import (
    CodeOut,
    CodePage,
    ColourFilterT,
    CountsOut,
    OverrideIn,
    OverrideOut,
    RegionCode,
    RevokeIn,
    override_out,
    reasons_out,
)
from jingkong.core import clock
from jingkong.core.schemas import JobOut

router = Router(tags=["codes"])

MAX_PAGE = 100_000


def _names(request) -> bool:
    return request.jk_user.has_role_perm(Perm.PERSON_VIEW)


@router.get("/people/{person_id}", response=CodeOut)
@require(Perm.CODES_VIEW)
def code_get(request, person_id: int):
    """A person's code: colour, every reason (with the day each stops applying) and the day it may turn green."""
    person, code = selectors.person_code(request.scope, person_id)
    audit.record(actor=request.jk_user, action="person.view", object_type="people.person", object_id=person.pk,
                 region_code=code["region_code"], request=request, detail={"view": "health_code"})
    return {**code, "reasons": reasons_out(code["reasons"]), "person_id": person.pk, "id_masked": person.id_masked,
            "name": person.name if _names(request) else None}


@router.get("/counts", response=CountsOut)
@require(Perm.CODES_VIEW)
def code_counts(request, region: RegionCode = ""):
    """Counts by colour of a region (default: yours) and of each child region; the region's counts are the sum of
    its children's and ``elsewhere``."""
    return selectors.counts(request.scope, region)


@router.get("/people", response=CodePage)
@require(Perm.CODES_VIEW)
def code_people(request, colour: ColourFilterT = "", region: RegionCode = "", page: int = 1, page_size: int = 50):
    """People with a code of ``colour`` (default: every colour but green) in your region, most restrictive first."""
    qs = selectors.people(request.scope, colour=colour, region=region)
    page, page_size = max(1, min(page, MAX_PAGE)), max(1, min(page_size, 500))
    count = qs.count()
    items = list(qs[(page - 1) * page_size: page * page_size])
    names = _names(request)
    audit.record(actor=request.jk_user, action="person.list", object_type="people.person",
                 region_code=region or request.scope.prefix or "", request=request,
                 detail={"list": "health_codes", "filters": {"colour": colour, "region": region}, "count": count,
                         "returned": len(items)})
    return {"count": count, "page": page, "page_size": page_size, "items": [{
        "person_id": h.person_id, "id_masked": h.person.id_masked, "name": h.person.name if names else None,
        "colour": h.colour, "rule_id": h.rule_id, "reasons": reasons_out(h.reasons), "green_on": h.green_on,
        "overridden": h.overridden, "region_code": h.region_code} for h in items]}


@router.get("/people/{person_id}/overrides", response=list[OverrideOut])
@require(Perm.CODES_VIEW)
def overrides_list(request, person_id: int):
    """Manual overrides of a person's code, newest first (active or not)."""
    person = selectors.person_get(request.scope, person_id)
    now = clock.now()
    return [override_out(o, now=now) for o in selectors.overrides_of(person)]


@router.post("/people/{person_id}/overrides", response={201: OverrideOut})
@require(Perm.CODES_OVERRIDE)
def overrides_create(request, person_id: int, payload: OverrideIn):
    """Set a person's colour by hand, with a reason, until ``expires_at`` (or until revoked). Audited."""
    row = services.override_create(actor=request.jk_user, scope=request.scope, person_id=person_id,
                                   colour=payload.colour, reason=payload.reason, expires_at=payload.expires_at,
                                   request=request)
    return Status(201, override_out(row, now=clock.now()))


@router.post("/overrides/{override_id}/revoke", response=OverrideOut)
@require(Perm.CODES_OVERRIDE)
def overrides_revoke(request, override_id: int, payload: RevokeIn):
    """End a manual override now; the rules decide the colour again. Audited."""
    row = services.override_revoke(actor=request.jk_user, scope=request.scope, override_id=override_id,
                                   reason=payload.reason, request=request)
    return override_out(row, now=clock.now())


@router.post("/recompute", response={202: JobOut})
@require(Perm.CODES_RECOMPUTE)
def recompute(request):
    """Recompute every person's code (a background job; progress at /api/v1/core/jobs/{id})."""
    return Status(202, services.recompute_start(actor=request.jk_user, scope=request.scope))
