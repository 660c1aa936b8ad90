"""The screen's API: figures read with their aggregation, within the caller's scope, and a drill-down that adds up.

The figures here are written by the test itself (the families have their own tests): that tests the reader —
aggregation, scope, the remainder, the drill-down sums — against expectations computed from the fixture list, not
from the API's output.
"""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.db.models import F
from django.utils import translation

from jingkong.core import clock
from jingkong.dashboard import readcache
from jingkong.dashboard.metrics import METRICS
from jingkong.dashboard.models import Figure, RefreshState

pytestmark = pytest.mark.django_db

API = "/api/v1/dashboard"
NOW = dt.datetime(2022, 4, 10, 4, 0, tzinfo=dt.UTC)  # 12:00 in Shanghai
TODAY = dt.date(2022, 4, 10)
FAMILIES = ("cases", "contacts", "zones", "clock", "testing", "isolation", "command", "checkpoints")


@pytest.fixture(autouse=True)
def now():
    with clock.frozen(NOW) as moment:
        yield moment


@pytest.fixture(autouse=True)
def fresh_cache():
    """Each test starts with an empty read cache (the process keeps it between tests)."""
    readcache.clear()
    yield
    readcache.clear()


@pytest.fixture(autouse=True)
def computed():
    """Every family counts as computed, so the reads never recompute (and replace) the figures written here."""
    for name in FAMILIES:
        RefreshState.objects.create(family=name, refreshed_at=dt.datetime.now(dt.UTC), version=1)


def fig(metric: str, code: str, value: float, key: str = "", day: dt.date | None = None) -> tuple:
    spec = METRICS[metric]
    Figure.objects.create(family=spec.family, metric=metric, key=key, region_code=code, day=day, value=value)
    # As a refresh does when it replaces a family's rows: the new version is what tells cached reads to re-read.
    RefreshState.objects.filter(family=spec.family).update(version=F("version") + 1)
    return (metric, key, code, day, value)


def expected(rows: list[tuple], metric: str, prefix: str, *, key=None, day=None, days=None) -> int:
    """The sum a region should show, computed from the rows the test wrote."""
    total = 0.0
    for m, k, code, d, v in rows:
        if m != metric or not code.startswith(prefix):
            continue
        if key is not None and not (key(k) if callable(key) else k == key):
            continue
        if day is not None and d != day:
            continue
        if days is not None and not (d is not None and days[0] <= d <= days[1]):
            continue
        if d is not None and d > TODAY:
            continue
        total += v
    return int(round(total))


# --- a varied district of figures ---------------------------------------------------------------------------------------

CASE_KEYS = [f"{c}:{w}" for c in ("confirmed", "asymptomatic") for w in ("quarantine", "control", "community")]


@pytest.fixture
def campaign(regions):
    from jingkong.testing.models import Campaign

    return Campaign.objects.create(code="R1", name="第一轮", region=regions["district"], region_code="330206",
                                   starts_at=NOW - dt.timedelta(days=1), deadline=NOW + dt.timedelta(days=1),
                                   status="running", created_at=NOW, updated_at=NOW)


@pytest.fixture
def district(regions, campaign):
    """Figures at grids of both streets, and at community, street and district level (records not located further,
    a zone drawn over a community, a facility at street level), plus an unknown grid code under community A."""
    rnd = random.Random(8)
    populations = {"grid_a1": 1200, "grid_a2": 800, "grid_b1": 1000, "grid_b2": 500}
    for name, pop in populations.items():
        regions[name].population = pop
        regions[name].save()
    for name, pop in (("community_a", 2100), ("community_b", 1500), ("street_a", 2150), ("street_b", 1500),
                      ("district", 3700)):
        regions[name].population = pop
        regions[name].save()
    codes = [regions[n].code for n in ("grid_a1", "grid_a2", "grid_b1", "grid_b2")]
    codes += [regions["community_a"].code, regions["street_a"].code, "330206", regions["community_a"].code + "009"]
    rows = []
    cid = str(campaign.pk)
    for code in codes:
        for offset in range(0, 9):
            day = TODAY - dt.timedelta(days=offset)
            for key in rnd.sample(CASE_KEYS, 3):
                rows.append(fig("cases.new", code, rnd.randint(1, 4), key, day))
            rows.append(fig("contacts.identified", code, rnd.randint(0, 9), rnd.choice(["close", "secondary"]), day))
        rows.append(fig("cases.new", code, 50, "confirmed:community", TODAY + dt.timedelta(days=1)))  # after the day
        rows.append(fig("cases.total", code, rnd.randint(5, 40)))
        rows.append(fig("round.target", code, rnd.randint(50, 90), cid))
        rows.append(fig("round.sampled", code, rnd.randint(10, 40), cid))
        rows.append(fig("round.reported", code, rnd.randint(0, 10), cid))
        rows.append(fig("zones.count", code, rnd.randint(0, 2), "lockdown"))
        rows.append(fig("zones.population", code, rnd.randint(0, 200), "lockdown"))
        rows.append(fig("services.open", code, rnd.randint(0, 5), "food"))
        rows.append(fig("services.overdue", code, rnd.randint(0, 2), "food"))
        rows.append(fig("problems.open", code, rnd.randint(0, 3), "supplies"))
        rows.append(fig("tasks.total", code, 10))
        rows.append(fig("tasks.done", code, rnd.randint(0, 10)))
        rows.append(fig("facilities.reserve_days", code, rnd.uniform(2, 9)))
        rows.append(fig("facilities.rooms", code, 20, "central"))
        rows.append(fig("facilities.occupied", code, rnd.randint(0, 20), "central"))
    return rows


# --- summary ------------------------------------------------------------------------------------------------------------


def test_summary_tiles_follow_each_metrics_aggregation(regions, commander, client_for, district):
    resp = client_for(commander).get(f"{API}/summary")
    assert resp.status_code == 200, resp.content
    data = resp.json()
    assert data["region"]["code"] == "330206" and data["day"] == TODAY.isoformat()
    t = data["tiles"]
    rows = district
    today_total = expected(rows, "cases.new", "330206", day=TODAY)
    community = expected(rows, "cases.new", "330206", day=TODAY, key=lambda k: k.endswith(":community"))
    assert t["cases_today"]["total"] == today_total
    assert t["cases_today"]["confirmed"] + t["cases_today"]["asymptomatic"] == today_total
    assert t["cases_today"]["in_quarantine"] + t["cases_today"]["in_control"] + t["cases_today"]["in_community"] \
        == today_total
    assert t["cases_today"]["in_community"] == community
    assert t["cases_today"]["community_share"] == pytest.approx(community / today_total, abs=1e-4)
    assert t["cases_today"]["previous_day_total"] == expected(rows, "cases.new", "330206",
                                                              day=TODAY - dt.timedelta(days=1))
    assert t["cases_total"] == expected(rows, "cases.total", "330206")
    # contacts: cumulative up to the day (a figure dated after the day is not counted), and today's
    assert t["contacts"]["identified"] == expected(rows, "contacts.identified", "330206")
    assert t["contacts"]["close"] + t["contacts"]["secondary"] == t["contacts"]["identified"]
    assert t["contacts"]["identified_today"] == expected(rows, "contacts.identified", "330206", day=TODAY)
    # min: the reserve is the lowest of the region's facilities
    lowest = min(v for m, _k, _c, _d, v in rows if m == "facilities.reserve_days")
    assert t["facilities"]["reserve_days"] == pytest.approx(round(lowest, 1))
    assert t["facilities"]["occupancy"] == pytest.approx(
        expected(rows, "facilities.occupied", "330206") / expected(rows, "facilities.rooms", "330206"), abs=1e-4)
    r = t["round"]
    assert r["name"] == "第一轮" and r["target"] == expected(rows, "round.target", "330206")
    assert r["untested"] == r["target"] - r["sampled"] and r["pending"] == r["sampled"] - r["reported"]
    assert t["zones"]["lockdown"]["count"] == expected(rows, "zones.count", "330206", key="lockdown")
    assert t["zones"]["control"] == {"count": 0, "population": 0}
    assert t["directives"]["completion"] == pytest.approx(
        expected(rows, "tasks.done", "330206") / expected(rows, "tasks.total", "330206"), abs=1e-4)
    assert t["days_since_community_case"] == 0
    assert set(data["families"]) >= {"cases", "contacts", "testing"} and data["stale"] is False


def test_summary_of_a_past_day(regions, commander, client_for, district):
    day = TODAY - dt.timedelta(days=3)
    data = client_for(commander).get(f"{API}/summary", {"day": day.isoformat(), "region": "330206002"}).json()
    assert data["day"] == day.isoformat()
    assert data["tiles"]["cases_today"]["total"] == expected(district, "cases.new", "330206002", day=day)


def test_days_since_community_case_and_transfer_wait(regions, commander, client_for):
    fig("cases.new", regions["grid_a1"].code, 2, "confirmed:community", TODAY - dt.timedelta(days=4))
    fig("cases.new", regions["grid_a1"].code, 3, "confirmed:quarantine", TODAY)
    fig("cases.new", regions["grid_a1"].code, 0, "confirmed:community", TODAY - dt.timedelta(days=1))
    fig("transfer.oldest_wait", regions["grid_a1"].code, NOW.timestamp() - 90 * 60)
    fig("transfer.oldest_wait", regions["grid_b1"].code, NOW.timestamp() - 30 * 60)
    t = client_for(commander).get(f"{API}/summary").json()["tiles"]
    assert t["days_since_community_case"] == 4
    assert t["cases_today"]["community_share"] == 0
    assert t["transfer"]["oldest_wait_minutes"] == 90
    assert t["round"] is None and t["facilities"]["reserve_days"] is None


# --- drill-down ---------------------------------------------------------------------------------------------------------

# /regions field → where the same count is on /summary
SUMMARY_OF = {
    "cases_today": ("cases_today", "total"), "cases_total": ("cases_total",),
    "community_today": ("cases_today", "in_community"), "untested": ("round", "untested"),
    "contacts_identified": ("contacts", "identified"), "zones_lockdown": ("zones", "lockdown", "count"),
    "services_open": ("services", "open"), "problems_open": ("problems", "open"),
}


def _dig(data, path):
    for p in path:
        data = data[p]
    return data


@pytest.mark.parametrize("region", ["330206", "330206002", "330206002001", "330206002001001"])
def test_rows_plus_remainder_equal_the_summary(regions, commander, client_for, district, region):
    from jingkong.dashboard.selectors import ADDITIVE_ROW_FIELDS

    c = client_for(commander)
    summary = c.get(f"{API}/summary", {"region": region}).json()["tiles"]
    drill = c.get(f"{API}/regions", {"region": region}).json()
    assert drill["region"]["code"] == region
    rows, rest = drill["rows"], drill["remainder"]
    assert rest is not None
    for f, path in SUMMARY_OF.items():
        assert sum(r[f] for r in rows) + rest[f] == _dig(summary, path), f
    for f in ADDITIVE_ROW_FIELDS:  # and every count is what the fixture holds under the region
        assert isinstance(sum(r[f] for r in rows) + rest[f], int)
    week = (TODAY - dt.timedelta(days=6), TODAY)
    assert sum(r["cases_7d"] for r in rows) + rest["cases_7d"] == expected(district, "cases.new", region, days=week)
    assert sum(r["population"] for r in rows) + rest["population"] == regions_population(regions, region)
    for r in rows:  # each child's own figure equals its own summary
        assert r["cases_today"] == expected(district, "cases.new", r["code"], day=TODAY)
        assert r["code"].startswith(region) and len(r["code"]) > len(region)


def regions_population(regions, code):
    return next(r.population for r in regions.values() if r.code == code)


def test_drill_down_levels_and_the_remainder(regions, commander, client_for, district):
    c = client_for(commander)
    d = c.get(f"{API}/regions").json()
    assert d["child_level"] == "street" and [r["code"] for r in d["rows"]] == ["330206002", "330206004"]
    # the district-level rows are "not located further"
    assert d["remainder"]["cases_today"] == expected(district, "cases.new", "330206", day=TODAY) - sum(
        expected(district, "cases.new", s, day=TODAY) for s in ("330206002", "330206004"))
    comm = c.get(f"{API}/regions", {"region": "330206002001"}).json()
    assert comm["child_level"] == "grid"
    # the unknown grid code under community A is not a child: it lands in the remainder with the community's own rows
    unknown = "330206002001009"
    assert unknown not in {r["code"] for r in comm["rows"]}
    assert comm["remainder"]["cases_total"] == expected(district, "cases.total", "330206002001") - sum(
        expected(district, "cases.total", g) for g in ("330206002001001", "330206002001002"))
    grid = c.get(f"{API}/regions", {"region": "330206002001001"}).json()
    assert grid["child_level"] is None and grid["rows"] == []
    row = d["rows"][0]
    assert row["incidence_7d_per_100k"] == pytest.approx(
        round(row["cases_7d"] * 100_000 / row["population"], 1))
    assert 0 <= row["coverage"] <= 1 and 0 <= row["tasks_done_share"] <= 1


# --- scope ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["summary", "regions", "epi", "clock", "alerts"])
def test_street_officer_cannot_ask_for_another_street(regions, officer_a, client_for, district, route):
    c = client_for(officer_a)
    assert c.get(f"{API}/{route}", {"region": "330206004"}).status_code == 404
    assert c.get(f"{API}/{route}", {"region": "330206"}).status_code == 404
    mine = c.get(f"{API}/{route}")
    assert mine.status_code == 200
    assert mine.json()["region"]["code"] == "330206002"
    assert [p["code"] for p in mine.json()["region"]["path"]] == ["330206002"]  # the breadcrumb starts at the scope


def test_grid_worker_sees_only_their_grid(regions, grid_worker_a, client_for, district):
    c = client_for(grid_worker_a)
    own = regions["grid_a1"].code
    data = c.get(f"{API}/summary").json()
    assert data["region"]["code"] == own
    assert data["tiles"]["cases_today"]["total"] == expected(district, "cases.new", own, day=TODAY)
    assert data["tiles"]["cases_total"] == expected(district, "cases.total", own)
    assert c.get(f"{API}/summary", {"region": regions["grid_a2"].code}).status_code == 404
    assert c.get(f"{API}/regions", {"region": regions["community_a"].code}).status_code == 404
    drill = c.get(f"{API}/regions").json()
    assert drill["rows"] == [] and drill["remainder"]["cases_total"] == expected(district, "cases.total", own)


def test_a_role_without_the_permission_gets_403(regions, volunteer_a, client_for):
    c = client_for(volunteer_a)
    for route in ("summary", "regions", "epi", "clock", "alerts"):
        assert c.get(f"{API}/{route}").status_code == 403, route


def test_unknown_region_inside_the_scope_is_404(regions, commander, client_for):
    assert client_for(commander).get(f"{API}/summary", {"region": "330206002999"}).status_code == 404


# --- bad input --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("route", "params", "field"), [
    ("summary", {"region": "abc"}, "region"),
    ("summary", {"region": "12"}, "region"),
    ("regions", {"region": "3302060' OR 1=1"}, "region"),
    ("summary", {"day": "2022-13-01"}, "day"),
    ("regions", {"day": "yesterday"}, "day"),
    ("summary", {"day": (TODAY + dt.timedelta(days=1)).isoformat()}, "day"),
    ("summary", {"day": "1900-01-01"}, "day"),
    ("epi", {"days": "3"}, "days"),
    ("epi", {"days": "100000"}, "days"),
    ("epi", {"days": "many"}, "days"),
    ("alerts", {"limit": "0"}, "limit"),
    ("clock", {"region": "x" * 40}, "region"),
])
def test_bad_parameters_answer_4xx_naming_the_field(regions, commander, client_for, route, params, field):
    client = client_for(commander)
    client.cookies["django_language"] = "en"  # the request's own language (the UI default is zh-hans)
    with translation.override("en"):
        resp = client.get(f"{API}/{route}", params)
    assert 400 <= resp.status_code < 500 and resp.status_code != 404, resp.content
    assert field in resp.json()["message"]


# --- clock ------------------------------------------------------------------------------------------------------------------


def test_clock_reads_the_regions_own_quantiles_in_loop_order(regions, commander, client_for):
    from jingkong.analytics.clock import STAGE_KEYS

    code = "330206002"
    fig("clock.n", code, 12, "tracing")
    fig("clock.p50_h", code, 5.0, "tracing")
    fig("clock.p90_h", code, 30.0, "tracing")
    fig("clock.overdue", code, 3, "tracing")
    fig("clock.backlog", code, 7, "tracing")
    fig("clock.p90_h", code, 2.0, "testing")
    fig("clock.p90_h", regions["grid_a1"].code, 999.0, "testing")  # a grid's quantile is not the street's
    data = client_for(commander).get(f"{API}/clock", {"region": code}).json()
    assert [s["stage"] for s in data["stages"]] == list(STAGE_KEYS)
    tracing = next(s for s in data["stages"] if s["stage"] == "tracing")
    assert (tracing["n"], tracing["p50_h"], tracing["p90_h"], tracing["overdue"], tracing["backlog"]) == \
        (12, 5.0, 30.0, 3, 7)
    testing = next(s for s in data["stages"] if s["stage"] == "testing")
    assert testing["p90_h"] == 2.0 and testing["label"]
    if tracing["target_h"] and testing["target_h"]:
        assert data["slowest"] == ("tracing" if 30 / tracing["target_h"] >= 2 / testing["target_h"] else "testing")
    else:
        assert data["slowest"] is None  # no profile in force: no target, no ratio


def test_clock_slowest_against_the_profiles_targets(regions, commander, client_for):
    from jingkong.tracing.tests.helpers import activate

    activate()
    code = "330206"
    targets = {}
    data = client_for(commander).get(f"{API}/clock").json()
    for s in data["stages"]:
        targets[s["stage"]] = s["target_h"]
    assert all(targets.values())
    fig("clock.p90_h", code, targets["grouping"] * 3, "grouping")
    fig("clock.p90_h", code, targets["testing"] * 2, "testing")
    data = client_for(commander).get(f"{API}/clock").json()
    assert data["slowest"] == "grouping"


# --- epidemic curve --------------------------------------------------------------------------------------------------------


def test_epi_series_are_aligned_on_dates(regions, commander, client_for):
    code = regions["grid_a1"].code
    counts = {}
    for offset in range(0, 20):
        day = TODAY - dt.timedelta(days=offset)
        counts[day] = offset % 5 + 1
        fig("cases.onset", code, counts[day], "local", day)
        fig("cases.report", code, counts[day] + 1, "local", day)
    fig("cases.onset", regions["grid_b1"].code, 4, "imported", TODAY)
    data = client_for(commander).get(f"{API}/epi", {"days": 14}).json()
    assert len(data["dates"]) == 14 and data["dates"][-1] == TODAY.isoformat()
    for i, d in enumerate(data["dates"]):
        day = dt.date.fromisoformat(d)
        assert data["onset"]["local"][i] == counts[day]
        assert data["report"]["local"][i] == counts[day] + 1
    assert data["onset"]["imported"][-1] == 4 and sum(data["onset"]["imported"]) == 4
    assert data["incomplete_days"] == 3
    assert data["si"]["mean"] > 1 and data["si"]["sd"] > 0
    street_a = client_for(commander).get(f"{API}/epi", {"days": 14, "region": "330206002"}).json()
    assert sum(street_a["onset"]["imported"]) == 0


def test_epi_rt_only_where_the_window_has_enough_local_cases(regions, commander, client_for, monkeypatch):
    """R(t) of an outbreak: windows with fewer local cases than rt.min_cases() are left out; windows ending in the last
    three days are marked incomplete. Checked against the estimator itself, called on the same series."""
    from jingkong.analytics import rt

    code = regions["grid_a1"].code
    series = {}
    for offset in range(0, 40):
        day = TODAY - dt.timedelta(days=offset)
        series[day] = 0 if offset > 30 else (1 if offset > 20 else 3 + (30 - offset) // 3)
        if series[day]:
            fig("cases.onset", code, series[day], "local", day)
    fig("cases.onset", code, 2, "imported", TODAY - dt.timedelta(days=30))
    data = client_for(commander).get(f"{API}/epi", {"days": 30}).json()
    minimum = rt.min_cases()
    assert data["rt_min_cases"] == minimum
    assert data["rt"], "an outbreak of this size has R(t) windows"
    first = dt.date.fromisoformat(data["dates"][0])
    for w in data["rt"]:
        start, end = dt.date.fromisoformat(w["t_start"]), dt.date.fromisoformat(w["t_end"])
        assert (end - start).days == 6 and end >= first
        local = sum(series.get(start + dt.timedelta(days=i), 0) for i in range(7))
        assert local >= minimum
        assert w["q025"] <= w["q50"] <= w["q975"]
        assert w["incomplete"] == ((TODAY - end).days < 3)
    ends = {w["t_end"] for w in data["rt"]}
    assert TODAY.isoformat() in ends  # incomplete days are kept, and say so
    # the same numbers as the estimator on the same series (the shown windows are a subset of its windows)
    start = TODAY - dt.timedelta(days=59)
    days = [start + dt.timedelta(days=i) for i in range(60)]
    local = [series.get(d, 0) for d in days]
    imported = [2 if d == TODAY - dt.timedelta(days=30) else 0 for d in days]
    windows = rt.estimate(local, imported, si=rt.discretise_si(data["si"]["mean"], data["si"]["sd"]))
    by_end = {days[w.end].isoformat(): w for w in windows}
    for w in data["rt"]:
        assert w["mean_r"] == pytest.approx(by_end[w["t_end"]].mean_r, abs=1e-3)


def test_epi_without_cases(regions, commander, client_for):
    data = client_for(commander).get(f"{API}/epi").json()
    assert len(data["dates"]) == 60 and data["rt"] == [] and sum(data["onset"]["local"]) == 0
    assert data["doubling_time_days"] is None and data["halving_time_days"] is None


def test_doubling_time_of_a_growing_outbreak(regions, commander, client_for):
    from jingkong.analytics import epi

    code = regions["grid_a1"].code
    counts = []
    for offset in range(59, -1, -1):
        day = TODAY - dt.timedelta(days=offset)
        n = int(2 ** ((60 - offset) / 5)) if offset < 25 else 0
        counts.append(n)
        if n:
            fig("cases.onset", code, n, "local", day)
    data = client_for(commander).get(f"{API}/epi").json()
    want = epi.doubling_time(counts, window=7, skip_last=3)
    assert want is not None and data["doubling_time_days"] == pytest.approx(want, abs=0.01)
    assert data["halving_time_days"] is None


def test_clock_slowest_follows_the_familys_load_ratio(regions, commander, client_for):
    """The clock family's ratio (open ages included, as the clock page) names the slowest stage, not p90 alone."""
    code = "330206"
    fig("clock.p90_h", code, 40.0, "testing")
    fig("clock.target_h", code, 4.0, "testing")
    fig("clock.ratio", code, 10.0, "testing")
    fig("clock.p90_h", code, 1.0, "transfer")
    fig("clock.target_h", code, 4.0, "transfer")
    fig("clock.ratio", code, 12.5, "transfer")  # many open transfers waiting long
    data = client_for(commander).get(f"{API}/clock").json()
    assert data["slowest"] == "transfer"
    assert next(s for s in data["stages"] if s["stage"] == "testing")["target_h"] == 4.0


# --- end to end: the real families -----------------------------------------------------------------------------------------


def test_end_to_end_with_the_situation_families(regions, commander, officer_a, client_for):
    """Records → the families (computed on the first read) → the screen: counts equal the records, and the drill-down
    adds up, with a case located only to its street in the remainder."""
    from jingkong.dashboard.tests import factories_situation as f
    from jingkong.tracing.tests.helpers import activate

    RefreshState.objects.all().delete()  # a new installation: the first read computes
    with clock.frozen(f.NOW):
        activate()
        a1, a2, b1 = regions["grid_a1"], regions["grid_a2"], regions["grid_b1"]
        f.case(a1, created=f.at(0, 1), classification="confirmed")
        f.case(a1, created=f.at(0, 2))
        f.case(a2, created=f.at(-1, 3))  # yesterday
        f.case(b1, created=f.at(0, 1))
        f.case(regions["street_a"], created=f.at(0, 2))  # located to the street only
        c = client_for(commander)
        summary = c.get(f"{API}/summary").json()
        assert summary["day"] == f.D.isoformat()
        assert summary["tiles"]["cases_today"]["total"] == 4
        assert summary["tiles"]["cases_today"]["confirmed"] == 1
        assert summary["tiles"]["cases_today"]["previous_day_total"] == 1
        assert summary["tiles"]["cases_total"] == 5
        assert summary["families"]["cases"]["version"] >= 1 and summary["as_of"]
        street = client_for(officer_a).get(f"{API}/regions").json()
        assert [r["code"] for r in street["rows"]] == [regions["community_a"].code]
        assert street["rows"][0]["cases_today"] == 2 and street["remainder"]["cases_today"] == 1
        assert street["rows"][0]["cases_total"] + street["remainder"]["cases_total"] == 4
        mine = client_for(officer_a).get(f"{API}/summary").json()["tiles"]
        assert mine["cases_today"]["total"] == 3 and mine["cases_total"] == 4
        epi = c.get(f"{API}/epi", {"days": 7}).json()
        assert sum(epi["report"]["local"]) + sum(epi["report"]["imported"]) == 5


# --- jingkong dashboard refresh ----------------------------------------------------------------------------------------------


def test_refresh_command_prints_each_familys_rows_and_duration(regions):
    from io import StringIO

    from django.core.management import CommandError, call_command

    from jingkong.dashboard.tests import factories_situation as f

    with clock.frozen(f.NOW):
        f.case(regions["grid_a1"], created=f.at(0, 1))
        f.case(regions["grid_b1"], created=f.at(0, 1))
        before = RefreshState.objects.get(family="cases").version
        out = StringIO()
        call_command("dashboard_refresh", "--family", "cases", "--force", stdout=out)
    line = next(x for x in out.getvalue().splitlines() if x.startswith("cases"))
    state = RefreshState.objects.get(family="cases")
    assert state.version == before + 1 and "refreshed" in line
    assert f"{state.rows:,} rows" in line and " ms" in line
    assert Figure.objects.filter(family="cases", metric="cases.total").count() == 2  # one row per grid
    with pytest.raises(CommandError, match="unknown family"):
        call_command("dashboard_refresh", "--family", "nonsense", stdout=StringIO())


@pytest.mark.parametrize(("route", "most"), [("summary", 12), ("regions", 12), ("epi", 10), ("clock", 10),
                                              ("alerts", 16)])
def test_a_bounded_number_of_queries(regions, commander, client_for, district, django_assert_max_num_queries,
                                     route, most):
    """Reads are a few GROUP BYs whatever the number of regions or rows (no query per region or per figure)."""
    c = client_for(commander)
    c.get(f"{API}/{route}")  # warm: session, profile cache
    with django_assert_max_num_queries(most):
        assert c.get(f"{API}/{route}").status_code == 200


def test_figure_reads_one_metric_with_its_aggregation(regions, district):
    from jingkong.dashboard.selectors import figure

    street = "330206002"
    assert figure("cases.total", street) == expected(district, "cases.total", street)
    assert figure("cases.new", street, day=TODAY) == expected(district, "cases.new", street, day=TODAY)
    week = (TODAY - dt.timedelta(days=6), TODAY)
    assert figure("cases.new", street, key="confirmed:community", day=week) == expected(
        district, "cases.new", street, key="confirmed:community", days=week)
    lowest = min(v for m, _k, c, _d, v in district if m == "facilities.reserve_days" and c.startswith(street))
    assert figure("facilities.reserve_days", street) == pytest.approx(lowest)
    fig("clock.p90_h", street, 7.5, "tracing")
    fig("clock.p90_h", regions["grid_a1"].code, 99.0, "tracing")
    assert figure("clock.p90_h", street, key="tracing") == 7.5  # level: the region's own row, not its grids'
    assert figure("clock.p90_h", "330206", key="tracing") is None
    with pytest.raises(KeyError):
        figure("no.such.metric", street)


def test_untested_never_negative_and_a_surplus_grid_hides_no_other(regions, commander, client_for, campaign):
    """A grid with more swabs than target (visitors swabbed there) counts 0 untested, not minus: otherwise it would
    hide the untested residents of the next grid in the street's figure, or make it negative."""
    cid = str(campaign.pk)
    plan = {"grid_a1": (10, 14), "grid_a2": (10, 3), "grid_b1": (5, 9)}  # (target, sampled)
    for name, (target, sampled) in plan.items():
        fig("round.target", regions[name].code, target, cid)
        fig("round.sampled", regions[name].code, sampled, cid)
    want = {name: max(0, t - s) for name, (t, s) in plan.items()}
    c = client_for(commander)
    for region, names in (("330206", list(plan)), (regions["street_a"].code, ["grid_a1", "grid_a2"]),
                          (regions["community_b"].code, ["grid_b1"])):
        tile = c.get(f"{API}/summary", {"region": region}).json()["tiles"]["round"]
        assert tile["untested"] == sum(want[n] for n in names), region
    rows = {r["code"]: r for r in c.get(f"{API}/regions", {"region": regions["community_a"].code}).json()["rows"]}
    assert rows[regions["grid_a1"].code]["untested"] == 0 and rows[regions["grid_a2"].code]["untested"] == 7
    drill = c.get(f"{API}/regions", {"region": "330206"}).json()
    assert all(r["untested"] >= 0 for r in drill["rows"]) and drill["remainder"]["untested"] >= 0


@pytest.mark.parametrize(("route", "params", "field"), [
    ("summary", {"region": "3302%"}, "region"),
    ("regions", {"region": "_"}, "region"),
    ("epi", {"region": "330206%"}, "region"),
    ("epi", {"days": "0"}, "days"),
    ("alerts", {"limit": "-1"}, "limit"),
    ("alerts", {"limit": "100000"}, "limit"),
    ("summary", {"day": "9999-12-31"}, "day"),
])
def test_odd_values_answer_4xx_naming_the_field(regions, commander, client_for, route, params, field):
    client = client_for(commander)
    client.cookies["django_language"] = "en"  # the request's own language (the UI default is zh-hans)
    with translation.override("en"):
        resp = client.get(f"{API}/{route}", params)
    assert 400 <= resp.status_code < 500 and resp.status_code != 404, resp.content
    assert field in resp.json()["message"]


def test_empty_region_means_the_callers_own(regions, officer_a, client_for):
    data = client_for(officer_a).get(f"{API}/summary", {"region": ""}).json()
    assert data["region"]["code"] == regions["street_a"].code


def test_reserve_days_are_the_regions_own_forecast(regions, commander, client_for):
    """The tile shows how long the region's reserve lasts (its free beds ÷ its net intake, as the reserve board's
    district forecast), not the first facility to fill; no forecast when the net intake is not positive."""
    a1, a2, b1 = regions["grid_a1"].code, regions["grid_a2"].code, regions["grid_b1"].code
    for code, free, net, first in ((a1, 30, 4.0, 2.0), (a2, 10, 1.5, 6.0), (b1, 50, -2.0, 9.0)):
        fig("facilities.reserve_free_beds", code, free)
        fig("facilities.reserve_net_per_day", code, net)
        fig("facilities.reserve_days", code, first)
    c = client_for(commander)

    def tile(region):
        return c.get(f"{API}/summary", {"region": region}).json()["tiles"]["facilities"]["reserve_days"]

    assert tile(regions["street_a"].code) == round((30 + 10) / (4.0 + 1.5), 1)
    assert tile("330206") == round((30 + 10 + 50) / (4.0 + 1.5 - 2.0), 1)
    assert tile(regions["street_b"].code) is None  # net intake negative: not running out


def test_today_is_the_shanghai_day_after_1600_utc(regions, commander, client_for):
    """At 01:00 in Shanghai (17:00 UTC the day before) "today" is the Shanghai date: its cases count today and that
    day may be asked for (it is not "in the future")."""
    shanghai_today = TODAY + dt.timedelta(days=1)
    fig("cases.new", regions["grid_a1"].code, 3, "confirmed:community", shanghai_today)
    fig("cases.new", regions["grid_a1"].code, 5, "confirmed:community", TODAY)
    with clock.frozen(dt.datetime(2022, 4, 10, 17, 0, tzinfo=dt.UTC)):
        c = client_for(commander)
        data = c.get(f"{API}/summary").json()
        assert data["day"] == shanghai_today.isoformat()
        assert data["tiles"]["cases_today"]["total"] == 3 and data["tiles"]["cases_today"]["previous_day_total"] == 5
        assert c.get(f"{API}/summary", {"day": shanghai_today.isoformat()}).status_code == 200
        assert c.get(f"{API}/epi").json()["dates"][-1] == shanghai_today.isoformat()
