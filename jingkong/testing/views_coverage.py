"""Coverage pages (应检尽检): the round's progress board (street → community → grid) and the printable untested list
of a grid or community for the sweep (扫楼). Figures from jingkong.analytics.coverage; the caller's region scope
limits everything (a region outside it answers 404); the untested list is audited person by person."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _

from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.analytics import coverage
from jingkong.core import clock
from jingkong.geo.models import Region
from jingkong.people.models import Industry
from jingkong.testing import selectors_coverage as sel

REFRESH_SECONDS = 30
# Stacked bar segments, in the order drawn (most advanced first); colours in coverage.css.
SEGMENTS = ("negative", "pending", "resample", "pool_positive", "positive")


def _labels() -> dict:
    return {
        "target": _("Target"), "sampled": _("Sampled"), "not_sampled": _("Not yet sampled"),
        "pending": _("Results pending"), "negative": _("Negative"), "pool_positive": _("Pool positive"),
        "resample": _("To resample"), "positive": _("Positive"), "coverage_pct": _("Coverage"),
    }


def _trail(area: coverage.Area, top: str) -> list[dict]:
    """The drill-down path from the top of what the caller may open (``top``) to the area."""
    lengths = [n for n in coverage.LEVEL_LENGTH.values() if len(top) <= n <= len(area.code)]
    codes = [area.code[:n] for n in lengths if area.code[:n].startswith(top)]
    names = dict(Region.objects.filter(code__in=codes).values_list("code", "name"))
    return [{"code": code, "name": names.get(code, code)} for code in codes]


def _key_industry_label(campaign) -> str:
    """The key group of a key-group round, in the reader's language (Campaign.key_industry has no choices itself)."""
    if not campaign.key_industry:
        return ""
    return str(dict(Industry.choices).get(campaign.key_industry, campaign.key_industry))


def _bars(row: dict) -> list[dict]:
    target = row["target"] or 0
    return [{"state": s, "pct": (100.0 * row[s] / target) if target else 0.0, "n": row[s]} for s in SEGMENTS]


@require(Perm.TESTING_VIEW)
def progress(request, campaign_id: int):
    """The round's progress for the caller's part of it, by street → community → grid: counts, stacked bars,
    coverage and the not-yet-sampled count per area; refreshed every ~30 s; a grid choropleth on demand."""
    campaign = sel.campaign_get(scope=request.scope, campaign_id=campaign_id)
    area = coverage.resolve_area(campaign, scope=request.scope, region=request.GET.get("parent") or None)
    level = coverage.level_for(area, request.GET.get("level") or None)
    rows, as_of = sel.area_rows(area, level)
    totals = coverage.totals(rows)
    sort = request.GET.get("sort", "")
    if sort == "coverage":
        rows.sort(key=lambda r: (r["coverage_pct"] is None, r["coverage_pct"] or 0.0, r["code"]))
    elif sort == "not_sampled":
        rows.sort(key=lambda r: (-r["not_sampled"], r["code"]))
    unplaced = coverage.unplaced_sampled(area) if area.whole else None
    can_see_persons = request.jk_user.has_role_perm(Perm.PERSON_VIEW)
    top = max([campaign.region_code, request.scope.prefix or ""], key=len)
    for row in rows:
        row["bars"] = _bars(row)
        row["drill"] = coverage.LEVEL_LENGTH.get(row["level"], 99) < coverage.LEVEL_LENGTH["grid"] \
            and not row.get("unassigned")
        row["untested_url"] = (reverse("testing:coverage_untested", args=[campaign.pk, row["code"]])
                               if can_see_persons and row["level"] in ("community", "grid") and row["not_sampled"]
                               + row["resample"] else "")
    config = {
        "refresh_seconds": REFRESH_SECONDS,
        "coverage_api": f"/api/v1/testing/campaigns/{campaign.pk}/coverage",
        "geo_api": "/api/v1/geo",
        "area": area.code,
        "labels": {"no_data": _("no data"), "coverage": _("Coverage"), "not_sampled": _("Not yet sampled"),
                   "loading": _("Loading…"), "load_error": _("Could not load the map.")},
    }
    return render(request, "testing/coverage_progress.html", {
        "campaign": campaign, "area": area, "level": level, "rows": rows, "totals": totals,
        "total_bars": _bars(totals), "unplaced": unplaced, "trail": _trail(area, top), "labels": _labels(),
        "levels": [(lvl, label) for lvl, label in (("street", _("streets")), ("community", _("communities")),
                                                    ("grid", _("grids")))
                   if coverage.LEVEL_LENGTH[lvl] > len(area.code)],
        "segments": SEGMENTS, "as_of": as_of, "refresh_seconds": REFRESH_SECONDS,
        "key_industry_label": _key_industry_label(campaign),
        "can_see_persons": can_see_persons, "map_config": config, "time_zone": settings.TIME_ZONE,
        "area_untested_url": (reverse("testing:coverage_untested", args=[campaign.pk, area.code])
                              if can_see_persons and area.level in ("community", "grid") else ""),
    })


@require(Perm.PERSON_VIEW)
def untested(request, campaign_id: int, region_code: str):
    """The printable sweep list of a grid or community: persons not yet sampled (and to be resampled) by building,
    unit/room and household, with tick boxes; limited-mobility residents marked for the door team. Audited."""
    campaign = sel.campaign_get(scope=request.scope, campaign_id=campaign_id)
    area = coverage.resolve_area(campaign, scope=request.scope, region=region_code)
    rows, truncated = sel.untested(area, user=request.jk_user, request=request, limit=sel.MAX_LIMIT)
    summary = coverage.area_summary(area)
    buildings = sel.group_by_building(rows, show_phone=sel.show_phone(request.jk_user))
    return render(request, "testing/coverage_untested.html", {
        "campaign": campaign, "area": area, "summary": summary, "buildings": buildings, "persons": len(rows),
        "truncated": truncated, "as_of": clock.now(), "key_industry_label": _key_industry_label(campaign),
        "door_visits": sum(b["door_visits"] for b in buildings),
        "csv_url": f"/api/v1/testing/campaigns/{campaign.pk}/untested.csv?region={area.code}",
        "progress_url": reverse("testing:coverage_progress", args=[campaign.pk]) + f"?parent={area.code}",
    })
