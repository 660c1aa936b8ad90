"""/api/v1/isolation/ routes of the clock area: the five-stage clock (五快) of a region and day.

ISOLATION_VIEW, scoped: ``region`` must lie inside the caller's region subtree (else 404); without it the caller's own
region. Figures are counts and hours; the overdue list names people by id only. See jingkong/analytics/clock.py for
the definitions.
"""

from __future__ import annotations

import datetime as dt

from ninja import Router

from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.isolation import views_clock as vc
from jingkong.isolation.schemas_clock import OverdueOut, RegionCode, StageT, SummaryOut

router = Router(tags=["isolation"])


@router.get("/clock/summary", response=SummaryOut)
@require(Perm.ISOLATION_VIEW)
def clock_summary(request, region: RegionCode = "", day: dt.date | None = None):
    """Per-stage median / p90 against the target for the day, the same by sub-region and by day (7 days), the slowest
    stage of the day and the number of overdue items."""
    data = vc.clock_data(request, region=region, day=day)
    return vc.named_summary(data)


@router.get("/clock/overdue", response=OverdueOut)
@require(Perm.ISOLATION_VIEW)
def clock_overdue(request, region: RegionCode = "", day: dt.date | None = None, stage: StageT = "",
                  limit: int = 500):
    """Stages begun and not ended past their target (as of the day's end, or now), most overdue first, with owners."""
    from jingkong.analytics import clock

    data = vc.clock_data(request, region=region, day=day)
    count, items = clock.overdue(data, stage=stage, limit=max(1, min(limit, 5000)))
    return {"count": count, "items": items}
