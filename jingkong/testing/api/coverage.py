"""Coverage API (应检尽检): a campaign's figures by region, its totals, and the untested list for the sweep (扫楼).

Everything is limited to the caller's region: the figures cover the campaign region narrowed to the caller's scope
(rows of other regions never appear), and a region asked for outside the scope answers 404. The untested list names
persons: it needs PERSON_VIEW and every person listed is audited.
"""

from __future__ import annotations

import re

from django.http import HttpResponse
from ninja import Router

from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.analytics import coverage
from jingkong.core import clock
from jingkong.core.exceptions import ValidationFailed
from jingkong.testing import selectors_coverage as sel
from jingkong.testing.schemas.coverage import CoverageOut, CoverageSummaryOut, UntestedOut

router = Router(tags=["testing"])


@router.get("/campaigns/{campaign_id}/coverage", response=CoverageOut)
@require(Perm.TESTING_VIEW)
def coverage_by_region(request, campaign_id: int, level: str = "", parent: str = ""):
    """Coverage of the campaign by region: target population, sampled (each person once), not yet sampled, results
    pending, negative, pool-positive, to be resampled, positive and coverage % — one row per region of ``level``
    (street, community or grid; default: the level below ``parent``) under ``parent`` (default: the campaign region
    narrowed to your scope). ``totals`` is the sum of the rows."""
    campaign = sel.campaign_get(scope=request.scope, campaign_id=campaign_id)
    area = coverage.resolve_area(campaign, scope=request.scope, region=parent or None)
    level = coverage.level_for(area, level or None)
    rows, as_of = sel.area_rows(area, level)
    return {"campaign": sel.campaign_ref(campaign), "area": area.as_dict(), "level": level, "as_of": as_of,
            "totals": coverage.totals(rows), "rows": rows}


@router.get("/campaigns/{campaign_id}/coverage/summary", response=CoverageSummaryOut)
@require(Perm.TESTING_VIEW)
def coverage_summary(request, campaign_id: int, region: str = ""):
    """The campaign's totals for your region (or ``region`` inside it)."""
    campaign = sel.campaign_get(scope=request.scope, campaign_id=campaign_id)
    area = coverage.resolve_area(campaign, scope=request.scope, region=region or None)
    rows, as_of = sel.area_rows(area, None)
    unplaced = coverage.unplaced_sampled(area) if area.whole else None
    return {"campaign": sel.campaign_ref(campaign), "area": area.as_dict(), "as_of": as_of,
            "totals": coverage.totals(rows), "unplaced_sampled": unplaced}


def _limit(value: int, maximum: int) -> int:
    if value < 1 or value > maximum:
        raise ValidationFailed(f"limit must be between 1 and {maximum}", extra={"field": "limit"})
    return value


@router.get("/campaigns/{campaign_id}/untested", response=UntestedOut)
@require(Perm.PERSON_VIEW)
def untested_list(request, campaign_id: int, region: str = "", limit: int = sel.DEFAULT_LIMIT,
                  resample: bool = True):
    """The persons of ``region`` (a grid or community; default: your region) not yet sampled in the campaign — and,
    unless ``resample=false``, those in an invalid tube still to be swabbed again — grouped by building, then unit/room and
    household, with counts per building. ID numbers masked; phones in full only for roles that phone residents;
    ``door_visit`` marks limited-mobility persons (the door-to-door team samples them at home). Audited."""
    campaign = sel.campaign_get(scope=request.scope, campaign_id=campaign_id)
    area = coverage.resolve_area(campaign, scope=request.scope, region=region or None)
    rows, truncated = sel.untested(area, user=request.jk_user, request=request, limit=_limit(limit, sel.MAX_LIMIT),
                                   include_resample=resample)
    totals = coverage.area_summary(area)
    return {"campaign": sel.campaign_ref(campaign), "area": area.as_dict(), "as_of": clock.now(), "totals": totals,
            "persons": len(rows), "truncated": truncated,
            "buildings": sel.group_by_building(rows, show_phone=sel.show_phone(request.jk_user))}


@router.get("/campaigns/{campaign_id}/untested.csv")
@require(Perm.PERSON_VIEW)
def untested_csv(request, campaign_id: int, region: str = "", resample: bool = True):
    """The untested list of ``region`` as a CSV file for spreadsheets (UTF-8 with BOM, masked ID numbers, sweep
    order). Audited. At most 100,000 persons (header ``X-Truncated: true`` when cut)."""
    campaign = sel.campaign_get(scope=request.scope, campaign_id=campaign_id)
    area = coverage.resolve_area(campaign, scope=request.scope, region=region or None)
    rows, truncated = sel.untested(area, user=request.jk_user, request=request, limit=sel.EXPORT_LIMIT,
                                   action=sel.UNTESTED_EXPORT_ACTION, include_resample=resample)
    body = sel.csv_text(rows, show_phone=sel.show_phone(request.jk_user))
    response = HttpResponse(body.encode("utf-8"), content_type="text/csv; charset=utf-8")
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", f"untested-{campaign.code}-{area.code}")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    if truncated:
        response["X-Truncated"] = "true"
    return response
