"""Reading the dashboard's figures for a region of the caller's scope.

Everything here reads :class:`~jingkong.dashboard.models.Figure` rows written by the families (never the source
tables), so every call is a handful of small GROUP BY queries whatever the size of the district. The metric's
aggregation (:data:`jingkong.dashboard.metrics.METRICS`) decides how a region's value is made:

* ``sum`` — SUM over the rows whose region code starts with the region's code (counts are stored at the deepest
  region a record is located to);
* ``min`` / ``max`` — MIN / MAX over the same rows;
* ``level`` — the row stored at the region itself (quantiles cannot be added up).

The drill-down (:func:`regions`) groups the same rows by the child's code (the region code cut to the child's
length), so a child's value is computed exactly like the parent's, and rows that belong to the region but to none of
its children (a zone drawn over a whole community, a facility at street level, a record with an unknown grid) form
the ``remainder``: rows + remainder == the summary figure for every additive field, by construction.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db.models import Max, Min, Q, Sum
from django.db.models.functions import Substr
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from jingkong.access.guard import Scope
from jingkong.core import clock
from jingkong.core.exceptions import NotFound, ValidationFailed
from jingkong.dashboard.metrics import METRICS
from jingkong.dashboard.metrics import metric as metric_spec
from jingkong.dashboard.models import Figure

REGION_PATTERN = re.compile(r"^[0-9]{6,32}$")
NEXT_LEVEL = {"district": "street", "street": "community", "community": "grid"}
EARLIEST_DAY = dt.date(2000, 1, 1)
ZONE_TYPES = ("lockdown", "control", "prevention")
KeyMatch = str | Callable[[str], bool] | None

# Families each screen read depends on ("as of" is the oldest of them).
SUMMARY_FAMILIES = ("cases", "contacts", "zones", "testing", "isolation", "command", "checkpoints")
REGION_FAMILIES = ("cases", "contacts", "zones", "testing", "command")
EPI_FAMILIES = ("cases",)
CLOCK_FAMILIES = ("clock",)

# The same texts as the clock page (jingkong/isolation/views_clock.py), so their translations apply here too.
STAGE_LABELS = {
    "testing": gettext_lazy("Testing (快检测): first positive → case confirmed"),
    "investigation": gettext_lazy("Core investigation (快流调): confirmed → investigation done"),
    "tracing": gettext_lazy("Tracing (快流调): contact identified → located"),
    "grouping": gettext_lazy("Grouping (快编组): located → grouped"),
    "transfer": gettext_lazy("Transfer (快转运): grouped → arrived"),
    "isolation": gettext_lazy("Isolation (快隔离): arrived (home: grouped) → isolated"),
}


# --- regions ---------------------------------------------------------------------------------------------------------


def _region_model():
    from jingkong.geo.models import Region

    return Region


def region_of(scope: Scope, region: str = "") -> dict:
    """The region a screen looks at: ``region`` (inside the scope; 404 otherwise, like other apps) or the top of the
    caller's scope. ``path`` runs from the top of the scope down to the region (every entry may be asked for)."""
    Region = _region_model()
    region = (region or "").strip()
    if region and not REGION_PATTERN.match(region):
        raise ValidationFailed(_("region: a division code (6 or more digits)"), extra={"field": "region"})
    if scope.prefix is None:
        raise NotFound(_("region not found"))
    if region:
        scope.check(region, "region")
        code = region
    elif scope.is_everything:
        code = Region.objects.filter(parent__isnull=True).order_by("code").values_list("code", flat=True).first()
    else:
        code = scope.prefix
    if not code:
        raise NotFound(_("region not found"))
    ancestors = [code[:n] for n in range(1, len(code) + 1) if scope.contains(code[:n])]
    rows = {r["code"]: r for r in Region.objects.filter(code__in=ancestors).values("code", "name", "level",
                                                                                      "population")}
    if code not in rows:
        raise NotFound(_("region not found"))
    path = [{"code": c, "name": rows[c]["name"], "level": rows[c]["level"]} for c in sorted(rows, key=len)]
    row = rows[code]
    return {"code": code, "name": row["name"], "level": row["level"], "path": path, "population": row["population"]}


def public_region(region: dict) -> dict:
    return {k: region[k] for k in ("code", "name", "level", "path")}


def region_names(codes: Iterable[str]) -> dict[str, str]:
    """For each code the name of the region itself or its nearest known ancestor (one query)."""
    codes = {c for c in codes if c}
    candidates = {c[:n] for c in codes for n in range(6, len(c) + 1)}
    if not candidates:
        return {}
    known = dict(_region_model().objects.filter(code__in=candidates).values_list("code", "name"))
    out = {}
    for c in codes:
        for n in range(len(c), 5, -1):
            if c[:n] in known:
                out[c] = known[c[:n]]
                break
        else:
            out[c] = c
    return out


# --- parameters -------------------------------------------------------------------------------------------------------


def check_day(day: dt.date | None) -> dt.date:
    """The reporting day asked for (default today, Asia/Shanghai); 422 naming ``day`` outside 2000-01-01 … today."""
    today = clock.today()
    if day is None:
        return today
    if day > today:
        raise ValidationFailed(_("day: in the future (today is %(today)s)") % {"today": today.isoformat()},
                               extra={"field": "day"})
    if day < EARLIEST_DAY:
        raise ValidationFailed(_("day: before %(min)s") % {"min": EARLIEST_DAY.isoformat()}, extra={"field": "day"})
    return day


# --- reading figures --------------------------------------------------------------------------------------------------


@dataclass
class Agg:
    """One (metric, key) of one region: the sums over days that the screen needs, and min/max."""

    total: float = 0.0  # all rows up to and including the day (undated metrics: all rows)
    today: float = 0.0
    previous: float = 0.0  # the day before
    week: float = 0.0  # the day and the six before it
    lo: float | None = None
    hi: float | None = None
    last_day: dt.date | None = None  # latest day with a positive value (dated metrics)


@dataclass
class Bucket:
    """The figures of one region (or of one child, or of the remainder), by (metric, key)."""

    values: dict[tuple[str, str], Agg] = field(default_factory=dict)

    def _matching(self, metric: str, key: KeyMatch) -> list[Agg]:
        out = []
        for (m, k), agg in self.values.items():
            if m != metric:
                continue
            if key is None or (callable(key) and key(k)) or (isinstance(key, str) and k == key):
                out.append(agg)
        return out

    def sum(self, metric: str, part: str = "total", key: KeyMatch = None) -> int:
        """A count: the additive figure over the matching keys (``part``: total, today, previous, week)."""
        return int(round(sum(getattr(a, part) for a in self._matching(metric, key))))

    def total(self, metric: str, key: KeyMatch = None) -> float | None:
        """The unrounded sum over all rows (None: no row at all) — for rates such as a net intake per day."""
        found = self._matching(metric, key)
        return sum(a.total for a in found) if found else None

    def min(self, metric: str, key: KeyMatch = None) -> float | None:
        values = [a.lo for a in self._matching(metric, key) if a.lo is not None]
        return min(values) if values else None

    def max(self, metric: str, key: KeyMatch = None) -> float | None:
        values = [a.hi for a in self._matching(metric, key) if a.hi is not None]
        return max(values) if values else None

    def last_day(self, metric: str, key: KeyMatch = None) -> dt.date | None:
        days = [a.last_day for a in self._matching(metric, key) if a.last_day is not None]
        return max(days) if days else None

    def keys(self, metric: str) -> list[str]:
        return sorted({k for (m, k) in self.values if m == metric})

    def add(self, other: Bucket) -> None:
        for mk, a in other.values.items():
            mine = self.values.setdefault(mk, Agg())
            mine.total += a.total
            mine.today += a.today
            mine.previous += a.previous
            mine.week += a.week
            mine.lo = a.lo if mine.lo is None else (mine.lo if a.lo is None else min(mine.lo, a.lo))
            mine.hi = a.hi if mine.hi is None else (mine.hi if a.hi is None else max(mine.hi, a.hi))
            if a.last_day and (mine.last_day is None or a.last_day > mine.last_day):
                mine.last_day = a.last_day


def _additive(metrics: Iterable[str]) -> list[str]:
    out = []
    for name in metrics:
        spec = metric_spec(name)
        if spec.agg == "level":
            raise ValueError(f"metric {name!r} is read at its own region (agg=level), not summed")
        out.append(name)
    return out


def aggregate(prefix: str, metrics: Iterable[str], day: dt.date, *, child_length: int | None = None
              ) -> dict[str | None, Bucket]:
    """One GROUP BY over the figures under ``prefix`` (up to ``day``): per (metric, key, day) — and per child code when
    ``child_length`` is given — SUM, MIN and MAX; folded here into the sums of the day, the day before, the last 7 days
    and everything up to the day. (Plain aggregates grouped by day are cheaper for the database than one filtered
    aggregate per part, and the groups are few: metrics × keys × days.)

    Returns ``{None: bucket}`` without ``child_length``, else ``{child code: bucket}`` where the code is the region
    code cut to ``child_length`` (codes shorter than that come back as themselves: the caller's remainder)."""
    names = _additive(metrics)
    qs = Figure.objects.filter(Q(day__isnull=True) | Q(day__lte=day), metric__in=names,
                               region_code__startswith=prefix)
    group = ["metric", "key", "day"]
    if child_length:
        qs = qs.annotate(child=Substr("region_code", 1, child_length))
        group.append("child")
    rows = qs.values_list(*group).order_by().annotate(s=Sum("value"), lo=Min("value"), hi=Max("value"))
    previous, week_start = day - dt.timedelta(days=1), day - dt.timedelta(days=6)
    out: dict[str | None, Bucket] = {}
    for row in rows:
        metric, key, d = row[0], row[1], row[2]
        child = row[3] if child_length else None
        total, lo, hi = row[-3] or 0.0, row[-2], row[-1]
        bucket = out.get(child)
        if bucket is None:
            bucket = out[child] = Bucket()
        agg = bucket.values.get((metric, key))
        if agg is None:
            agg = bucket.values[(metric, key)] = Agg()
        agg.total += total
        if d is not None:
            if d == day:
                agg.today += total
            elif d == previous:
                agg.previous += total
            if week_start <= d <= day:
                agg.week += total
            if total > 0 and (agg.last_day is None or d > agg.last_day):
                agg.last_day = d
        if lo is not None:
            agg.lo = lo if agg.lo is None else min(agg.lo, lo)
        if hi is not None:
            agg.hi = hi if agg.hi is None else max(agg.hi, hi)
    return out


def merged(buckets: Iterable[Bucket]) -> Bucket:
    out = Bucket()
    for b in buckets:
        out.add(b)
    return out


def figure(metric: str, prefix: str, key: str | None = None,
           day: dt.date | tuple[dt.date, dt.date] | None = None) -> float | None:
    """One figure of a region, with the metric's own aggregation: ``sum`` over the codes under ``prefix`` (of one
    ``day`` or an inclusive ``(first, last)`` range, for dated metrics), ``min``/``max`` likewise, ``level`` the value
    stored at the region itself. ``key=None``: all keys. ``None`` when there is no row (``sum``: 0)."""
    spec = metric_spec(metric)
    qs = Figure.objects.filter(metric=metric)
    qs = qs.filter(region_code=prefix) if spec.agg == "level" else qs.filter(region_code__startswith=prefix)
    if key is not None:
        qs = qs.filter(key=key)
    if isinstance(day, tuple):
        qs = qs.filter(day__gte=day[0], day__lte=day[1])
    elif day is not None:
        qs = qs.filter(day=day)
    if spec.agg == "sum":
        return qs.aggregate(v=Sum("value"))["v"] or 0.0
    if spec.agg == "min":
        return qs.aggregate(v=Min("value"))["v"]
    if spec.agg == "max":
        return qs.aggregate(v=Max("value"))["v"]
    values = list(qs.values_list("value", flat=True)[:2])
    if len(values) > 1 and key is None:
        raise ValueError(f"metric {metric!r} has several keys: ask for one")
    return values[0] if values else None


def level_figures(prefix: str, metrics: Iterable[str]) -> dict[tuple[str, str], float]:
    """The ``level`` figures stored at the region itself: {(metric, key): value}."""
    return {(m, k): v for m, k, v in Figure.objects.filter(metric__in=list(metrics), region_code=prefix)
            .values_list("metric", "key", "value")}


def daily(prefix: str, metrics: Iterable[str], first: dt.date, last: dt.date) -> dict[tuple[str, str, dt.date], float]:
    """Sums of dated additive metrics per (metric, key, day) under ``prefix`` for ``first`` … ``last``."""
    names = _additive(metrics)
    rows = (Figure.objects.filter(metric__in=names, region_code__startswith=prefix, day__gte=first, day__lte=last)
            .values("metric", "key", "day").order_by().annotate(v=Sum("value")))
    return {(r["metric"], r["key"], r["day"]): r["v"] or 0.0 for r in rows}


# --- families: as of, stale -------------------------------------------------------------------------------------------


def ensure_fresh(names: Iterable[str]) -> None:
    """A new installation computes the families once, on the first read (later reads never wait for a refresh)."""
    from jingkong.dashboard import refresher

    refresher.ensure_fresh(list(names))


def families_state(names: Iterable[str], states: dict[str, dict] | None = None
                   ) -> tuple[dict, dt.datetime | None, bool]:
    """(``families`` of the answer, ``as_of`` = the oldest refresh of the families used, ``stale``). ``states``:
    :func:`refresher.versions` if the caller has read it already (the cached reads do: one query per request)."""
    from jingkong.dashboard import families as registry
    from jingkong.dashboard import refresher

    registry.load_all()
    known = registry.all_families()
    states = refresher.versions() if states is None else states
    wall = dt.datetime.now(dt.UTC)  # refreshed_at is wall time (how fresh the figures are), like the refresher's
    out, oldest, stale = {}, None, False
    for name in names:
        state = states.get(name)
        family = known.get(name)
        if state is None:
            if family is not None:
                stale = True  # registered but never computed
            continue
        at = state["refreshed_at"]
        out[name] = {"refreshed_at": at, "duration_ms": state["duration_ms"], "version": state["version"],
                     "error": state["error"] or ""}
        if at is None:
            stale = stale or family is not None
            continue
        described = state.get("as_of") or at  # the platform-clock instant (a demo replays January 2022)
        oldest = described if oldest is None or described < oldest else oldest
        max_age = family.max_age if family is not None else 300.0
        if state["error"] or (wall - at).total_seconds() > 2 * max_age + 60:
            stale = True
    return out, oldest, stale


# --- summary ----------------------------------------------------------------------------------------------------------

SUMMARY_METRICS = [
    "cases.new", "cases.total",
    "contacts.identified", "contacts.located", "contacts.transferred", "contacts.isolated",
    "zones.count", "zones.population",
    "round.target", "round.sampled", "round.reported",
    "retest.pools_waiting", "retest.persons_waiting",
    "transfer.waiting", "transfer.en_route", "transfer.oldest_wait",
    "facilities.rooms", "facilities.occupied", "facilities.free", "facilities.reserve_days",
    "facilities.reserve_free_beds", "facilities.reserve_net_per_day",
    "isolation.active",
    "tasks.total", "tasks.done", "tasks.overdue",
    "problems.open", "problems.overdue", "services.open", "services.overdue",
    "crossings.total", "crossings.denied", "crossings.referred",
]
assert all(m in METRICS for m in SUMMARY_METRICS)


def _share(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _found(where: str) -> Callable[[str], bool]:
    return lambda k: k.endswith(":" + where)


def _classified(cls: str) -> Callable[[str], bool]:
    return lambda k: k.startswith(cls + ":")


def current_campaign(bucket: Bucket) -> dict | None:
    """The round the tiles show: of the campaigns with figures in the region, the running one that started last
    (else the one that started last)."""
    from jingkong.testing.models import Campaign

    ids = []
    for k in bucket.keys("round.target") + bucket.keys("round.sampled"):
        try:
            ids.append(int(k))
        except ValueError:
            continue
    if not ids:
        return None
    found = list(Campaign.objects.filter(pk__in=set(ids)).values("id", "name", "status", "starts_at"))
    if not found:
        return {"id": max(ids), "name": ""}
    found.sort(key=lambda c: (c["status"] == "running", c["starts_at"], c["id"]))
    best = found[-1]
    return {"id": best["id"], "name": best["name"]}


def untested_by_code(prefix: str, campaign: dict | None) -> dict[str, int]:
    """Persons of the round's target not sampled yet, per stored region code (a grid, or a region without grids),
    clamped there at 0. A grid can show more swabs than target (people swabbed there but counted in no target there:
    visitors, a register not yet updated), and a plain target − sampled over a whole street would let one grid's
    surplus hide another grid's untested residents — or go negative. Clamped per grid, the figure stays honest and
    additive (rows + remainder = the region's figure). One small grouped query (two metrics × the region's grids)."""
    if campaign is None:
        return {}
    per_code: dict[str, float] = {}
    for code, metric, value in (Figure.objects.filter(metric__in=("round.target", "round.sampled"),
                                                      key=str(campaign["id"]), region_code__startswith=prefix)
                                .values_list("region_code", "metric").order_by().annotate(v=Sum("value"))):
        per_code[code] = per_code.get(code, 0.0) + (value or 0.0) * (1 if metric == "round.target" else -1)
    return {code: max(0, int(round(v))) for code, v in per_code.items()}


def reserve_days(bucket: Bucket) -> float | None:
    """Days the region's reserve of quarantine beds lasts: its free beds ÷ its net intake per day (the reserve
    board's district forecast; None when the net intake is not positive: not running out). Figures computed before
    those two metrics existed: the first facility to run out (``facilities.reserve_days``, MIN)."""
    free, net = bucket.total("facilities.reserve_free_beds"), bucket.total("facilities.reserve_net_per_day")
    if free is None and net is None:
        return bucket.min("facilities.reserve_days")
    if not net or net <= 0:
        return None
    return (free or 0.0) / net


def tiles(bucket: Bucket, day: dt.date, *, campaign: dict | None, now: dt.datetime, untested: int | None = None
          ) -> dict:
    """The summary tiles of one region from its figures (``untested``: :func:`untested_by_code`, summed)."""
    s = bucket.sum
    total = s("cases.new", "today")
    in_community = s("cases.new", "today", _found("community"))
    last_community = bucket.last_day("cases.new", _found("community"))
    round_tile = None
    if campaign is not None:
        key = str(campaign["id"])
        target, sampled, reported = s("round.target", key=key), s("round.sampled", key=key), s("round.reported",
                                                                                               key=key)
        round_tile = {"campaign_id": campaign["id"], "name": campaign["name"], "target": target, "sampled": sampled,
                      "reported": reported, "pending": sampled - reported, "coverage": _share(sampled, target),
                      "untested": untested if untested is not None else max(0, target - sampled)}
    oldest = bucket.min("transfer.oldest_wait")
    rooms, occupied = s("facilities.rooms"), s("facilities.occupied")
    reserve = reserve_days(bucket)
    tasks, done = s("tasks.total"), s("tasks.done")
    return {
        "cases_today": {"total": total, "confirmed": s("cases.new", "today", _classified("confirmed")),
                        "asymptomatic": s("cases.new", "today", _classified("asymptomatic")),
                        "in_quarantine": s("cases.new", "today", _found("quarantine")),
                        "in_control": s("cases.new", "today", _found("control")),
                        "in_community": in_community, "community_share": _share(in_community, total),
                        "previous_day_total": s("cases.new", "previous")},
        "days_since_community_case": (day - last_community).days if last_community else None,
        "cases_total": s("cases.total"),
        "zones": {t: {"count": s("zones.count", key=t), "population": s("zones.population", key=t)}
                  for t in ZONE_TYPES},
        "round": round_tile,
        "retest": {"pools_waiting": s("retest.pools_waiting"), "persons_waiting": s("retest.persons_waiting")},
        "contacts": {"identified": s("contacts.identified"), "located": s("contacts.located"),
                     "transferred": s("contacts.transferred"), "isolated": s("contacts.isolated"),
                     "identified_today": s("contacts.identified", "today"),
                     "close": s("contacts.identified", key="close"),
                     "secondary": s("contacts.identified", key="secondary")},
        "transfer": {"waiting": s("transfer.waiting"), "en_route": s("transfer.en_route"),
                     "oldest_wait_minutes": max(0, int((now.timestamp() - oldest) // 60)) if oldest is not None
                     else None},
        "facilities": {"rooms": rooms, "occupied": occupied, "free": s("facilities.free"),
                       "occupancy": _share(occupied, rooms),
                       "reserve_days": round(reserve, 1) if reserve is not None else None},
        "isolation": {"active": s("isolation.active")},
        "services": {"open": s("services.open"), "overdue": s("services.overdue")},
        "problems": {"open": s("problems.open"), "overdue": s("problems.overdue")},
        "directives": {"tasks": tasks, "done": done, "overdue": s("tasks.overdue"), "completion": _share(done, tasks)},
        "checkpoints": {"crossings_today": s("crossings.total", "today"), "denied_today": s("crossings.denied", "today"),
                        "referred_today": s("crossings.referred", "today")},
    }


def summary(*, scope: Scope, region: str = "", day: dt.date | None = None) -> dict:
    """``GET /summary``: the tiles of a region for a reporting day."""
    top = region_of(scope, region)
    day = check_day(day)
    ensure_fresh(SUMMARY_FAMILIES)
    now = clock.now()
    bucket = aggregate(top["code"], SUMMARY_METRICS, day).get(None, Bucket())
    campaign = current_campaign(bucket)
    untested = sum(untested_by_code(top["code"], campaign).values())
    families, as_of, stale = families_state(SUMMARY_FAMILIES)
    return {"region": public_region(top), "day": day.isoformat(), "as_of": as_of, "stale": stale,
            "tiles": tiles(bucket, day, campaign=campaign, now=now, untested=untested), "families": families}


# --- drill-down -------------------------------------------------------------------------------------------------------

REGION_METRICS = ["cases.new", "cases.total", "round.target", "round.sampled", "contacts.identified", "zones.count",
                  "services.open", "problems.open", "tasks.total", "tasks.done"]
ROW_FIELDS = ("population", "cases_today", "cases_total", "cases_7d", "incidence_7d_per_100k", "community_today",
              "coverage", "untested", "contacts_identified", "zones_lockdown", "services_open", "problems_open",
              "tasks_done_share")
# Fields that are counts: the rows plus the remainder add up to the region's own figure.
ADDITIVE_ROW_FIELDS = ("population", "cases_today", "cases_total", "cases_7d", "community_today", "untested",
                       "contacts_identified", "zones_lockdown", "services_open", "problems_open")


def row_figures(bucket: Bucket, population: int, *, campaign: dict | None, untested: int = 0) -> dict:
    s = bucket.sum
    key = str(campaign["id"]) if campaign else None
    target = s("round.target", key=key) if key else 0
    sampled = s("round.sampled", key=key) if key else 0
    week = s("cases.new", "week")
    return {"population": population, "cases_today": s("cases.new", "today"), "cases_total": s("cases.total"),
            "cases_7d": week,
            "incidence_7d_per_100k": round(week * 100_000 / population, 1) if population > 0 else None,
            "community_today": s("cases.new", "today", _found("community")),
            "coverage": _share(sampled, target) if key else None, "untested": untested,
            "contacts_identified": s("contacts.identified"), "zones_lockdown": s("zones.count", key="lockdown"),
            "services_open": s("services.open"), "problems_open": s("problems.open"),
            "tasks_done_share": _share(s("tasks.done"), s("tasks.total"))}


def regions(*, scope: Scope, region: str = "", day: dt.date | None = None) -> dict:
    """``GET /regions``: one row per child region, and the remainder of what is located to the region but to no child
    ("not located further"); rows + remainder == the summary figure for every count."""
    Region = _region_model()
    top = region_of(scope, region)
    day = check_day(day)
    ensure_fresh(REGION_FAMILIES)
    child_level = NEXT_LEVEL.get(top["level"])
    children = list(Region.objects.filter(parent__code=top["code"]).order_by("code")
                    .values("code", "name", "level", "population")) if child_level else []
    children = [c for c in children if c["code"].startswith(top["code"]) and scope.contains(c["code"])]
    lengths = sorted({len(c["code"]) for c in children})
    buckets: dict[str, Bucket] = {}
    whole = None
    for length in lengths:  # one query per child code length (one in practice); its groups add up to the whole
        grouped = aggregate(top["code"], REGION_METRICS, day, child_length=length)
        whole = whole or merged(grouped.values())
        buckets.update({k: b for k, b in grouped.items() if k is not None and len(k) == length})
    if whole is None:
        whole = aggregate(top["code"], REGION_METRICS, day).get(None, Bucket())
    campaign = current_campaign(whole)
    untested: dict[str, int] = {}
    child_codes = {c["code"] for c in children}
    for code, n in untested_by_code(top["code"], campaign).items():
        owner = next((code[:n_] for n_ in lengths if code[:n_] in child_codes), "")  # "" = the remainder
        untested[owner] = untested.get(owner, 0) + n
    rows, located = [], Bucket()
    for c in children:
        bucket = buckets.get(c["code"], Bucket())
        located.add(bucket)
        rows.append({"code": c["code"], "name": c["name"], "level": c["level"],
                     **row_figures(bucket, c["population"], campaign=campaign, untested=untested.get(c["code"], 0))})
    remainder = None
    if children or whole.values:
        rest = Bucket()
        rest.values = {mk: _minus(a, located.values.get(mk)) for mk, a in whole.values.items()}
        rest_population = top["population"] - sum(c["population"] for c in children)
        remainder = row_figures(rest, rest_population, campaign=campaign, untested=untested.get("", 0))
    families, as_of, stale = families_state(REGION_FAMILIES)
    return {"region": public_region(top), "child_level": child_level, "day": day.isoformat(), "as_of": as_of,
            "stale": stale, "rows": rows, "remainder": remainder}


def _minus(a: Agg, b: Agg | None) -> Agg:
    if b is None:
        return Agg(a.total, a.today, a.previous, a.week, a.lo, a.hi, a.last_day)
    return Agg(total=a.total - b.total, today=a.today - b.today, previous=a.previous - b.previous,
               week=a.week - b.week, lo=None, hi=None, last_day=None)


# --- five-stage clock -------------------------------------------------------------------------------------------------

CLOCK_METRICS = ("clock.n", "clock.p50_h", "clock.p90_h", "clock.on_target", "clock.backlog", "clock.overdue",
                 "clock.ratio", "clock.target_h")


def stage_order() -> tuple[str, ...]:
    from jingkong.analytics.clock import STAGE_KEYS

    return STAGE_KEYS


def stage_targets(code: str, at: dt.datetime) -> dict[str, float | None]:
    """Target hours per stage under the profile in force (none: no profile)."""
    from jingkong.analytics import clock as clock_analytics

    try:
        targets = clock_analytics.targets_for(code, at)
    except Exception:  # noqa: BLE001 - no profile in force / no clock_targets section: the screen shows no target
        return dict.fromkeys(stage_order())
    return {s: targets.of(s) for s in stage_order()}


def _num(v: float | None, digits: int = 1) -> float | None:
    return round(v, digits) if v is not None else None


def clock_stages(code: str, at: dt.datetime) -> tuple[list[dict], str | None]:
    """The stages of a region in loop order, and the slowest: the highest of the clock's load ratio (``clock.ratio``,
    as the clock page names it: open ages count too), else of p90 ÷ target; ties go to the earlier stage."""
    values = level_figures(code, CLOCK_METRICS)
    profile_targets = None
    stages, slowest, worst = [], None, None
    for stage in stage_order():
        p90 = values.get(("clock.p90_h", stage))
        target = values.get(("clock.target_h", stage))
        if target is None:
            profile_targets = profile_targets if profile_targets is not None else stage_targets(code, at)
            target = profile_targets.get(stage)
        stages.append({"stage": stage, "label": str(STAGE_LABELS.get(stage, stage)),
                       "n": int(values.get(("clock.n", stage)) or 0),
                       "p50_h": _num(values.get(("clock.p50_h", stage))), "p90_h": _num(p90),
                       "target_h": _num(target), "on_target": _num(values.get(("clock.on_target", stage)), 3),
                       "backlog": int(values.get(("clock.backlog", stage)) or 0),
                       "overdue": int(values.get(("clock.overdue", stage)) or 0)})
        ratio = values.get(("clock.ratio", stage))
        if ratio is None and p90 is not None and target:
            ratio = p90 / target
        if ratio is not None and (worst is None or ratio > worst):
            worst, slowest = ratio, stage
    return stages, slowest


def stage_clock(*, scope: Scope, region: str = "") -> dict:
    """``GET /clock``: median and 90th percentile per stage against the targets, in loop order; the slowest stage
    (highest p90 ÷ target)."""
    top = region_of(scope, region)
    ensure_fresh(CLOCK_FAMILIES)
    stages, slowest = clock_stages(top["code"], clock.now())
    _families, as_of, stale = families_state(CLOCK_FAMILIES)
    return {"region": public_region(top), "stages": stages, "slowest": slowest, "as_of": as_of, "stale": stale}


# --- epidemic curve and R(t) ------------------------------------------------------------------------------------------

# Serial interval when the policy profile has none (it has no such field yet: see the report to the lead): the
# platform's documented default, jingkong.analytics.rt.DEFAULT_SI_MEAN / DEFAULT_SI_SD — SARS-CoV-2, Nishiura, Linton
# & Akhmetzhanov, Int J Infect Dis 2020;93:284-286 (mean 4.7 d, sd 2.9 d). Omicron's is shorter (Backer et al., Euro
# Surveill. 2022;27(6):2200042: household mean 3.5 d vs 4.1 d for Delta), which is why the profile should carry it.
DEFAULT_SI_MEAN = 4.7
DEFAULT_SI_SD = 2.9
DEFAULT_RT_MIN_CASES = 11  # Cori et al. 2013: ≥ 11 cases in the window for a posterior CV below 0.3 (prior 5/5)
INCOMPLETE_DAYS = 3  # the last days are still filling up (reporting delay): shown, but marked
RT_WINDOW = 7
RT_HISTORY_DAYS = 30  # earlier days read so the first shown windows know their infectors


def serial_interval(code: str, at: dt.datetime) -> dict:
    """Mean and SD (days) of the serial interval: the profile's (``transmission.serial_interval_mean_days`` /
    ``serial_interval_sd_days`` if a profile carries them), else the documented defaults above."""
    from jingkong.policy.selectors import active_profile

    try:
        section = active_profile(region_code=code[:6] or None, at=at).rules.transmission
    except Exception:  # noqa: BLE001 - no profile in force
        section = None
    mean = getattr(section, "serial_interval_mean_days", None) if section is not None else None
    sd = getattr(section, "serial_interval_sd_days", None) if section is not None else None
    if mean and sd:
        return {"mean": float(mean), "sd": float(sd), "source": "profile"}
    rt = _rt_module()
    return {"mean": float(getattr(rt, "DEFAULT_SI_MEAN", DEFAULT_SI_MEAN)),
            "sd": float(getattr(rt, "DEFAULT_SI_SD", DEFAULT_SI_SD)), "source": "default"}


def _rt_module():
    try:
        from jingkong.analytics import rt
    except ModuleNotFoundError as exc:  # being written: the curve is served without R(t) until it lands
        if exc.name != "jingkong.analytics.rt":
            raise
        return None
    return rt


def _min_cases(rt) -> int:
    fn = getattr(rt, "min_cases", None)
    if fn is None:
        return DEFAULT_RT_MIN_CASES
    try:
        return int(fn())
    except TypeError:
        return DEFAULT_RT_MIN_CASES


def _growth(counts: list[int]) -> tuple[float | None, float | None]:
    """Doubling / halving time over the last complete week (the incomplete days are skipped)."""
    try:
        from jingkong.analytics import epi as epi_analytics
    except ModuleNotFoundError as exc:
        if exc.name != "jingkong.analytics.epi":
            raise
        return None, None
    doubling = epi_analytics.doubling_time(counts, window=RT_WINDOW, skip_last=INCOMPLETE_DAYS)
    halving = epi_analytics.halving_time(counts, window=RT_WINDOW, skip_last=INCOMPLETE_DAYS)
    return (_num(doubling, 2) if doubling is not None else None, _num(halving, 2) if halving is not None else None)


def rt_series(local: list[int], imported: list[int], dates: list[dt.date], *, si: dict, shown_from: int
              ) -> tuple[list[dict], int]:
    """R(t) windows (Cori et al. 2013) ending on a shown day, only where the window has ≥ ``min_cases`` local cases."""
    rt = _rt_module()
    if rt is None or not dates:
        return [], DEFAULT_RT_MIN_CASES
    min_cases = _min_cases(rt)
    distr = rt.discretise_si(si["mean"], si["sd"])
    windows = rt.estimate(local, imported, si=distr, window=RT_WINDOW, mean_prior=5.0, std_prior=5.0)
    last_complete = len(dates) - 1 - INCOMPLETE_DAYS
    out = []
    for w in windows:
        if w.end < shown_from or w.end >= len(dates):
            continue
        if sum(local[w.start:w.end + 1]) < min_cases:
            continue
        out.append({"t_start": dates[w.start].isoformat(), "t_end": dates[w.end].isoformat(),
                    "mean_r": _num(w.mean_r, 3), "std_r": _num(w.std_r, 3), "q025": _num(w.q025, 3),
                    "q50": _num(w.q50, 3), "q975": _num(w.q975, 3), "incomplete": w.end > last_complete})
    return out, min_cases


def epi(*, scope: Scope, region: str = "", days: int = 60) -> dict:
    """``GET /epi``: daily cases by onset and by report date (local / imported) for the last ``days`` days, R(t) with
    its credible interval, doubling or halving time. The last :data:`INCOMPLETE_DAYS` days are incomplete."""
    top = region_of(scope, region)
    if not 7 <= days <= 365:
        raise ValidationFailed(_("days: between 7 and 365"), extra={"field": "days"})
    ensure_fresh(EPI_FAMILIES)
    today = clock.today()
    first = today - dt.timedelta(days=days - 1)
    start = first - dt.timedelta(days=RT_HISTORY_DAYS)
    all_dates = [start + dt.timedelta(days=i) for i in range((today - start).days + 1)]
    values = daily(top["code"], ["cases.onset", "cases.report"], start, today)

    def series(metric: str, key: str) -> list[int]:
        return [max(0, int(round(values.get((metric, key, d), 0.0)))) for d in all_dates]

    shown_from = RT_HISTORY_DAYS
    onset_local, onset_imported = series("cases.onset", "local"), series("cases.onset", "imported")
    si = serial_interval(top["code"], clock.now())
    rt_rows, min_cases = rt_series(onset_local, onset_imported, all_dates, si=si, shown_from=shown_from)
    doubling, halving = _growth(onset_local)  # local transmission (imported cases do not grow the outbreak)
    _families, as_of, stale = families_state(EPI_FAMILIES)

    def shown(xs: list[int]) -> list[int]:
        return xs[shown_from:]

    return {"region": public_region(top), "dates": [d.isoformat() for d in all_dates[shown_from:]],
            "onset": {"local": shown(onset_local), "imported": shown(onset_imported)},
            "report": {"local": shown(series("cases.report", "local")),
                       "imported": shown(series("cases.report", "imported"))},
            "rt": rt_rows, "rt_min_cases": min_cases, "doubling_time_days": doubling, "halving_time_days": halving,
            "incomplete_days": INCOMPLETE_DAYS, "si": si, "as_of": as_of, "stale": stale}
