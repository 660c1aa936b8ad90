"""Pages of the clock area under /isolation/clock/…: the five-stage clock (五快) of a region and day.

* ``/isolation/clock/`` — per-stage median / p90 against the target, the slowest-stage banner, the table by
  sub-region (district → streets, street → communities, community → grids; each row links to its own page, whose
  totals equal the row), the per-day chart (plotly.js from the installed ``plotly`` package, served by
  :func:`plotly_js`), and the overdue list with owners.
* ``/isolation/clock/report/`` — the printable daily report; ``/isolation/clock/report.csv`` — the same as CSV.

All ISOLATION_VIEW, scoped by region (a region outside the caller's subtree is a 404).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

from django.http import FileResponse, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.analytics import clock
from jingkong.core.exceptions import NotFound, ValidationFailed

STAGE_LABELS = {
    "testing": gettext_lazy("Testing (快检测): first positive → case confirmed"),
    "investigation": gettext_lazy("Core investigation (快流调): confirmed → investigation done"),
    "tracing": gettext_lazy("Tracing (快流调): contact identified → located"),
    "grouping": gettext_lazy("Grouping (快编组): located → grouped"),
    "transfer": gettext_lazy("Transfer (快转运): grouped → arrived"),
    "isolation": gettext_lazy("Isolation (快隔离): arrived (home: grouped) → isolated"),
}
OWNER_LABELS = {
    "tracer": gettext_lazy("case tracer"), "queue": gettext_lazy("contact queue"),
    "dispatcher": gettext_lazy("dispatcher"), "facility": gettext_lazy("facility / home region"),
    "testing": gettext_lazy("testing"),
}


def _region(request, region: str) -> str:
    region = (region or "").strip()
    if region and (len(region) > 15 or not region.isdigit()):
        raise ValidationFailed(_("region: a division code of digits"), extra={"field": "region"})
    scope = request.scope
    if scope.prefix is None:
        raise NotFound("region not found")
    if not region:
        return scope.prefix
    if not scope.contains(region):
        raise NotFound("region not found")
    return region


def _day(value) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        day = value
    else:
        try:
            day = dt.date.fromisoformat(str(value)[:10])
        except ValueError:
            raise ValidationFailed(_("day: a date YYYY-MM-DD"), extra={"field": "day"}) from None
    if day.year < 2000:
        raise ValidationFailed(_("day: a date YYYY-MM-DD"), extra={"field": "day"})
    return day


def clock_data(request, *, region: str = "", day=None) -> clock.ClockData:
    region = _region(request, region)
    day = _day(day)
    try:
        return clock.compute(request.scope, region=region, day=day)
    except NotFound:
        raise
    except LookupError:  # no profile in force
        raise NotFound(_("no policy profile in force")) from None


def _names(codes) -> dict[str, str]:
    from jingkong.geo.models import Region

    return dict(Region.objects.filter(code__in=list(codes)).values_list("code", "name"))


def named_summary(data: clock.ClockData) -> dict:
    out = clock.summary(data)
    names = _names([r["region_code"] for r in out["by_region"]] + [data.prefix])
    for row in out["by_region"]:
        row["name"] = names.get(row["region_code"], "")
    out["region_name"] = names.get(data.prefix, "")
    return out


def _context(request) -> dict:
    data = clock_data(request, region=request.GET.get("region", ""), day=request.GET.get("day"))
    out = named_summary(data)
    count, items = clock.overdue(data, limit=200)
    for s in out["stages"]:
        s["label"] = STAGE_LABELS[s["stage"]]
    for i in items:
        i["stage_label"] = STAGE_LABELS[i["stage"]]
        i["owner_label"] = OWNER_LABELS.get(i["owner_kind"], i["owner_kind"])
    chart = {"days": [d["day"].isoformat() for d in out["by_day"]],
             "series": [{"stage": s, "label": str(STAGE_LABELS[s]).split(":")[0],
                         "p90": [next(x["p90"] for x in d["stages"] if x["stage"] == s) for d in out["by_day"]],
                         "median": [next(x["median"] for x in d["stages"] if x["stage"] == s)
                                    for d in out["by_day"]]} for s in clock.STAGE_KEYS]}
    parent = data.prefix[:max(len(data.prefix) - 3, 6)] if len(data.prefix) > 6 else ""
    if parent and not request.scope.contains(parent):
        parent = ""
    return {"summary": out, "overdue_count": count, "overdue": items, "chart": chart, "stage_keys": clock.STAGE_KEYS,
            "slowest_label": STAGE_LABELS[out["slowest"]["stage"]] if out["slowest"] else "", "parent": parent,
            "labels": STAGE_LABELS}


@require(Perm.ISOLATION_VIEW)
def clock_page(request):
    return render(request, "isolation/clock_page.html", _context(request))


@require(Perm.ISOLATION_VIEW)
def clock_report(request):
    return render(request, "isolation/clock_report.html", _context(request))


def report_rows(data: clock.ClockData) -> list[list]:
    """The daily report as rows: the region's stages, each sub-region's stages, then the overdue items."""
    out = named_summary(data)
    head = ["section", "region_code", "region_name", "stage", "target_hours", "begun", "done", "open", "overdue",
            "late", "median_hours", "p90_hours", "load_ratio"]
    rows: list[list] = [head]

    def stage_row(section, code, name, s):
        return [section, code, name, s["stage"], s["target_hours"], s["n"], s["done"], s["open"], s["overdue"],
                s["late"], s["median"], s["p90"], s["ratio"]]

    for s in out["stages"]:
        rows.append(stage_row("region", data.prefix, out["region_name"], s))
    for r in out["by_region"]:
        for s in r["stages"]:
            rows.append(stage_row("sub_region", r["region_code"], r["name"], s))
    rows.append([])
    rows.append(["overdue", "kind", "subject_id", "person_id", "stage", "region_code", "tier", "started_at",
                 "age_hours", "target_hours", "owner_kind", "owner"])
    _, items = clock.overdue(data, limit=100_000)
    for i in items:
        rows.append(["overdue", i["kind"], i["subject_id"], i["person_id"], i["stage"], i["region_code"], i["tier"],
                     i["started_at"].isoformat(), i["age_hours"], i["target_hours"], i["owner_kind"], i["owner"]])
    return rows


@require(Perm.ISOLATION_VIEW)
def clock_report_csv(request):
    data = clock_data(request, region=request.GET.get("region", ""), day=request.GET.get("day"))
    buf = io.StringIO()
    writer = csv.writer(buf)
    for row in report_rows(data):
        writer.writerow(["" if v is None else v for v in row])
    response = HttpResponse("\ufeff" + buf.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="clock-{data.prefix or "all"}-{data.day}.csv"'
    return response


@require(Perm.ISOLATION_VIEW)
def plotly_js(request):
    """plotly.min.js from the installed ``plotly`` package (no CDN)."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    response = FileResponse(path.open("rb"), content_type="text/javascript")
    response["Cache-Control"] = "private, max-age=86400"
    return response
