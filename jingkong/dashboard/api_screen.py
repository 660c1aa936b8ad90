"""/api/v1/dashboard/ routes of the screen: summary tiles, the drill-down by child region, the epidemic curve with
R(t), the five-stage clock and the alert feed (DASHBOARD_VIEW).

Every route takes ``region`` — a division code inside the caller's scope (404 outside it, like other apps; default the
caller's own region) — and reads aggregates only (:mod:`jingkong.dashboard.selectors`), never the source tables, so
the answers stay fast at city scale. The first read on a new installation computes the figures once.

Summary, regions, epi and clock are kept in an in-process cache (:mod:`jingkong.dashboard.readcache`) keyed by
the scope prefix, the parameters, the language, the local day and the version of every family read: a repeated read
with no new figures costs one query. Alerts follow live events and are never cached.
"""

from __future__ import annotations

import datetime as dt

from django.utils import translation
from ninja import Router

from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.core import clock as platform_clock
from jingkong.dashboard import alerts, readcache, selectors
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


def cached_read(request, route: str, families: tuple[str, ...], params: tuple, compute) -> dict:
    """The answer of a screen read, from the cache when no family it reads has changed since.

    The key holds everything the answer depends on: the route, the caller's scope prefix (the selectors read
    nothing else of the user), the parameters, the language (labels), today's local day, and (version, refreshed
    at) of each family. ``stale``, ``as_of`` and ``families`` are re-derived from the same refresh states on every
    read, so they move with the clock even on a hit."""
    from jingkong.dashboard import refresher

    states = refresher.versions()
    marks = readcache.family_marks(states, families)
    key = None
    if marks is not None:
        key = (route, request.scope.prefix, params, translation.get_language(), platform_clock.today(), marks)
    answer = readcache.cached(readcache.screen, key, compute)
    if key is None:
        return answer
    fams, as_of, stale = selectors.families_state(families, states=states)
    answer = dict(answer)  # the cached dict itself is never changed
    answer["as_of"], answer["stale"] = as_of, stale
    if "families" in answer:
        answer["families"] = fams
    return answer


@router.get("/summary", response=ScreenSummaryOut)
@require(Perm.DASHBOARD_VIEW)
def summary(request, region: RegionCode = "", day: dt.date | None = None):
    """The tiles of a region for a reporting day (default today, Asia/Shanghai)."""
    day = selectors.check_day(day)
    return cached_read(request, "summary", selectors.SUMMARY_FAMILIES, (region, day),
                       lambda: selectors.summary(scope=request.scope, region=region, day=day))


@router.get("/regions", response=RegionsOut)
@require(Perm.DASHBOARD_VIEW)
def regions(request, region: RegionCode = "", day: dt.date | None = None):
    """One row per child region (street → community → grid) and the remainder not located further; the rows plus
    the remainder add up to the summary's figures."""
    day = selectors.check_day(day)
    return cached_read(request, "regions", selectors.REGION_FAMILIES, (region, day),
                       lambda: selectors.regions(scope=request.scope, region=region, day=day))


@router.get("/epi", response=EpiOut)
@require(Perm.DASHBOARD_VIEW)
def epi(request, region: RegionCode = "", days: Days = 60):
    """Daily cases by onset and by report date, R(t) (Cori et al.) with its 95 % credible interval, doubling time."""
    return cached_read(request, "epi", selectors.EPI_FAMILIES, (region, days),
                       lambda: selectors.epi(scope=request.scope, region=region, days=days))


@router.get("/clock", response=ClockOut)
@require(Perm.DASHBOARD_VIEW)
def clock(request, region: RegionCode = ""):
    """The five-stage clock: median and 90th percentile hours per stage against the targets; the slowest stage."""
    return cached_read(request, "clock", selectors.CLOCK_FAMILIES, (region,),
                       lambda: selectors.stage_clock(scope=request.scope, region=region))


@router.get("/alerts", response=AlertsOut)
@require(Perm.DASHBOARD_VIEW)
def alert_feed(request, region: RegionCode = "", limit: Limit = 50):
    """Recent events that need attention and current conditions, newest first; case numbers and links only for
    roles that may read them (an analyst sees "New case" and where)."""
    return alerts.alert_list(scope=request.scope, region=region, limit=limit, user=request.jk_user)
