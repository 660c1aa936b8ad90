"""/api/v1/dashboard/ routes of the screen: summary tiles, the drill-down by child region, the epidemic curve with
R(t), the five-stage clock and the alert feed (DASHBOARD_VIEW).

Every route takes ``region`` — a division code inside the caller's scope (404 outside it, like other apps; default the
caller's own region) — and reads aggregates only (:mod:`jingkong.dashboard.selectors`), never the source tables, so
the answers stay fast at city scale. The first read on a new installation computes the figures once.
"""

from __future__ import annotations

import datetime as dt

from ninja import Router

from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.dashboard import alerts, selectors
from jingkong.dashboard.schemas_screen import (
    AlertsOut,
    ClockOut,
    Days,
    EpiOut,
    Limit,
    RegionCode,
    RegionsOut,
    ScreenSummaryOut,
)

router = Router(tags=["dashboard"])


@router.get("/summary", response=ScreenSummaryOut)
@require(Perm.DASHBOARD_VIEW)
def summary(request, region: RegionCode = "", day: dt.date | None = None):
    """The tiles of a region for a reporting day (default today, Asia/Shanghai)."""
    return selectors.summary(scope=request.scope, region=region, day=day)


@router.get("/regions", response=RegionsOut)
@require(Perm.DASHBOARD_VIEW)
def regions(request, region: RegionCode = "", day: dt.date | None = None):
    """One row per child region (street → community → grid) and the remainder not located further; the rows plus
    the remainder add up to the summary's figures."""
    return selectors.regions(scope=request.scope, region=region, day=day)


@router.get("/epi", response=EpiOut)
@require(Perm.DASHBOARD_VIEW)
def epi(request, region: RegionCode = "", days: Days = 60):
    """Daily cases by onset and by report date, R(t) (Cori et al.) with its 95 % credible interval, doubling time."""
    return selectors.epi(scope=request.scope, region=region, days=days)


@router.get("/clock", response=ClockOut)
@require(Perm.DASHBOARD_VIEW)
def clock(request, region: RegionCode = ""):
    """The five-stage clock: median and 90th percentile hours per stage against the targets; the slowest stage."""
    return selectors.stage_clock(scope=request.scope, region=region)


@router.get("/alerts", response=AlertsOut)
@require(Perm.DASHBOARD_VIEW)
def alert_feed(request, region: RegionCode = "", limit: Limit = 50):
    """Recent events that need attention and current conditions, newest first; case numbers and links only for
    roles that may read them (an analyst sees "New case" and where)."""
    return alerts.alert_list(scope=request.scope, region=region, limit=limit, user=request.jk_user)
