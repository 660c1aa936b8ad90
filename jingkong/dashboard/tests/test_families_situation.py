"""The situation families (cases, contacts, zones, clock): their figures equal the counts declared next to each record
of a hand-built world (and independent ORM counts), a region's additive figure is the sum of its drill-down, the
five-stage clock's figures at every level equal :mod:`jingkong.analytics.clock`'s own summary for that region, a
recompute is idempotent, and ``run_pending`` notices a change — an event or a source mark — once ``min_interval`` has
passed, and not before."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from django.db.models import Count

from jingkong.access.guard import Scope
from jingkong.analytics import clock as five
from jingkong.core import clock
from jingkong.core.events import emit
from jingkong.dashboard import refresher
from jingkong.dashboard.families import get as family
from jingkong.dashboard.models import Figure, RefreshState
from jingkong.dashboard.tests import factories_situation as world
from jingkong.dashboard.tests.factories_situation import NOW, backdate, figures, level, total

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_caches():
    from jingkong.policy.selectors import active_profile_cache_clear

    active_profile_cache_clear()
    five.cache_clear()
    yield
    active_profile_cache_clear()
    five.cache_clear()


def _refresh(name: str, at: dt.datetime = NOW) -> dict:
    with clock.frozen(at):
        refresher.refresh_family(name)
    return figures(name)


def _additive(figs: dict) -> dict:
    return {k: v for k, v in figs.items() if v}


def _drill_down_adds_up(figs: dict, regions: dict, metrics: list[str]) -> None:
    keys = {(m, k, d) for (m, k, _c, d) in figs if m in metrics}
    for metric, key, day in keys:
        district = total(figs, metric, regions["district"].code, key=key, day=day)
        streets = [total(figs, metric, regions[f"street_{s}"].code, key=key, day=day) for s in "ab"]
        assert district == sum(streets), (metric, key, day)
        for s in "ab":
            assert streets["ab".index(s)] == total(figs, metric, regions[f"community_{s}"].code, key=key, day=day)
            assert total(figs, metric, regions[f"community_{s}"].code, key=key, day=day) == sum(
                total(figs, metric, regions[f"grid_{s}{i}"].code, key=key, day=day) for i in (1, 2))


# --- cases ----------------------------------------------------------------------------------------------------------------


def test_cases_classification_days_and_origin_follow_the_documented_rules(regions):
    from jingkong.tracing.models import Case

    w = world.cases_world(regions)
    figs = _refresh("cases")
    grid_of = dict(Case.objects.values_list("pk", "region_code"))
    expected: Counter = Counter()
    for case_id, (new_key, report_day, onset_day, origin) in w["expected"].items():
        code = grid_of[case_id]
        expected[("cases.new", new_key, code, report_day)] += 1
        expected[("cases.report", origin, code, report_day)] += 1
        expected[("cases.onset", origin, code, onset_day)] += 1
    for row in Case.objects.values("region_code").annotate(n=Count("id")).order_by():
        expected[("cases.total", "", row["region_code"], None)] += row["n"]
    assert _additive(figs) == dict(expected)
    # the found-in-community share the screen shows: every case is classified exactly once
    assert total(figs, "cases.new") == total(figs, "cases.total") == Case.objects.count()


def test_found_in_control_through_household_building_and_entrance_units(regions):
    """The unit kinds the zones services materialise residents from, matched at the case's creation (no resident
    rows here: the zones may have been lifted or re-drawn since)."""
    from jingkong.dashboard.families.situation import control_case_ids

    g = regions["grid_a1"]
    before = world.at(-1, 0)
    b1, b2, b3 = world.building(g), world.building(g), world.building(g)
    home = world.household(b1)
    world.unit_zone("lockdown", approved=before, household=home)
    world.unit_zone("control", approved=before, building=b2)
    world.unit_zone("medium_risk", approved=before, building=b3, entrance="2")
    inside = [world.resident(b1, hh=home), world.resident(b2, unit="9"), world.resident(b3, unit="2"),
              world.resident(b3, hh=world.household(b3, unit="2"))]
    outside = [world.resident(b1), world.resident(b3, unit="1"), world.resident(b3, hh=world.household(b3, unit="1"))]
    late = world.resident(b2)  # created before the zone was approved
    cases_in = [world.case(g, p=p, created=world.at(0, 1)) for p in inside]
    cases_out = [world.case(g, p=p, created=world.at(0, 1)) for p in outside]
    cases_out.append(world.case(g, p=late, created=world.at(-2, 0)))
    assert control_case_ids() == {c.pk for c in cases_in}
    figs = _refresh("cases")
    assert total(figs, "cases.new", key="asymptomatic:control") == len(cases_in)
    assert total(figs, "cases.new", key="asymptomatic:community") == len(cases_out)


def test_found_in_control_through_region_units_of_every_level(regions):
    """Region units are matched by code prefix at each of their lengths (a street unit and a grid unit at once); a
    person attached to a street itself (no grid) is inside that street's unit, and a neighbouring street's people are
    not."""
    from jingkong.dashboard.families.situation import control_case_ids

    before = world.at(-1, 0)
    world.zone("lockdown", regions["street_a"], approved=before)
    world.zone("control", regions["grid_b1"], approved=before)
    inside = [world.case(regions[g], created=world.at(0, 1)) for g in ("grid_a1", "grid_a2", "street_a", "grid_b1")]
    outside = [world.case(regions[g], created=world.at(0, 1)) for g in ("grid_b2", "street_b", "community_b")]
    assert control_case_ids() == {c.pk for c in inside}
    assert not {c.pk for c in outside} & control_case_ids()


@pytest.mark.parametrize("utc", [
    dt.datetime(2022, 1, 5, 15, 59, 59, 999999, tzinfo=dt.UTC),  # 23:59:59.999999 local on 01-05
    dt.datetime(2022, 1, 5, 16, 0, tzinfo=dt.UTC),  # 00:00 local on 01-06
    dt.datetime(2022, 1, 5, 15, 30, tzinfo=dt.UTC),  # 23:30 local: 01-05, not the UTC day's neighbour
    dt.datetime(2021, 12, 31, 23, 0, tzinfo=dt.UTC),  # 07:00 local on 2022-01-01 (year boundary)
    dt.datetime(2022, 7, 1, 2, 0, tzinfo=dt.UTC),  # summer: no daylight saving in Shanghai
])
def test_local_day_in_sql_is_the_shanghai_day(regions, utc):
    """The families' SQL day (a fast built-in on SQLite) is the Asia/Shanghai calendar day of the instant."""
    from zoneinfo import ZoneInfo

    from jingkong.dashboard.families.situation import _as_date, _day, _fetch

    c = world.case(regions["grid_a1"], created=utc)
    sql, params = _day("c.created_at")
    (day,) = _fetch(f"SELECT {sql} FROM tracing_case c WHERE c.id = %s", [*params, c.pk])[0]
    assert _as_date(day) == utc.astimezone(ZoneInfo("Asia/Shanghai")).date()


def test_a_zone_with_daylight_saving_falls_back_to_djangos_conversion(settings):
    from jingkong.dashboard.families.situation import fixed_offset_minutes

    assert fixed_offset_minutes("Asia/Shanghai") == 480
    assert fixed_offset_minutes("Europe/Berlin") is None


def test_cases_drill_down_adds_up_and_rerun_is_idempotent(regions):
    world.cases_world(regions)
    first = _refresh("cases")
    _drill_down_adds_up(first, regions, ["cases.new", "cases.report", "cases.onset", "cases.total"])
    rows = Figure.objects.filter(family="cases").count()
    assert _refresh("cases") == first
    assert Figure.objects.filter(family="cases").count() == rows == RefreshState.objects.get(family="cases").rows


def test_a_new_case_is_picked_up_by_its_event_or_its_mark_after_min_interval(regions):
    from jingkong.tracing.models import Case

    world.cases_world(regions)
    with clock.frozen(NOW):
        assert refresher.run_pending(only=["cases"]) == ["cases"]  # never computed
        version = RefreshState.objects.get(family="cases").version
        assert refresher.run_pending(only=["cases"]) == []  # nothing changed
        c = world.case(regions["grid_a2"], created=NOW)
        emit("tracing.case_created", subject_type="tracing.case", subject_id=c.pk, region_code=c.region_code,
             payload={"ref": c.ref})
        assert refresher.run_pending(only=["cases"]) == []  # within min_interval
        backdate("cases", family("cases").min_interval + 1)
        assert refresher.run_pending(only=["cases"]) == ["cases"]
        figs = figures("cases")
        assert total(figs, "cases.total") == Case.objects.count()
        # the new case lives in grid a2, inside the lockdown approved at 10:00 local (before it): found in control
        assert total(figs, "cases.new", regions["grid_a2"].code, key="asymptomatic:control", day=NOW.date()) == 1
        # an event alone (no row changed) is a reason too
        backdate("cases", family("cases").min_interval + 1)
        emit("tracing.case_updated", subject_type="tracing.case", subject_id=c.pk, region_code=c.region_code)
        assert refresher.run_pending(only=["cases"]) == ["cases"]
        # a write without an event moves the marks (updated_at)
        backdate("cases", family("cases").min_interval + 1)
        assert refresher.run_pending(only=["cases"]) == []
        Case.objects.filter(pk=c.pk).update(classification="confirmed", updated_at=NOW + dt.timedelta(seconds=1))
        backdate("cases", family("cases").min_interval + 1)
        assert refresher.run_pending(only=["cases"]) == ["cases"]
        assert RefreshState.objects.get(family="cases").version == version + 3
        assert total(figures("cases"), "cases.new", regions["grid_a2"].code, key="confirmed:control") == 1


# --- contacts -------------------------------------------------------------------------------------------------------------


def test_contacts_counted_once_per_metric_on_their_first_day(regions):
    from jingkong.tracing.models import Contact

    w = world.contacts_world(regions)
    figs = _refresh("contacts")
    assert _additive(figs) == dict(w["expected"])
    # independent count: every close or secondary contact is identified once
    assert total(figs, "contacts.identified") == Contact.objects.filter(tier__in=["close", "secondary"]).count()
    _drill_down_adds_up(figs, regions, ["contacts.identified", "contacts.located", "contacts.transferred",
                                        "contacts.isolated"])
    assert _refresh("contacts") == figs


# --- zones ----------------------------------------------------------------------------------------------------------------


def test_zones_in_force_by_severity_and_distinct_residents(regions):
    from jingkong.zones.models import ZoneResident

    w = world.zones_world(regions)
    figs = _refresh("zones")
    assert {(k, c): v for (m, k, c, _d), v in figs.items() if m == "zones.count"} == dict(w["count"])
    assert {(k, c): v for (m, k, c, _d), v in figs.items() if m == "zones.population"} == w["population"]
    # independent: the residents of zones in force, distinct people
    in_force = ZoneResident.objects.filter(zone__status="approved")
    severity = {"lockdown": "lockdown", "high_risk": "lockdown", "control": "control", "medium_risk": "control",
                "prevention": "prevention", "low_risk": "prevention"}
    people = {(severity[t], p) for p, t in in_force.values_list("person_id", "zone_type")}
    assert total(figs, "zones.population") == len(people) < in_force.count()
    assert total(figs, "zones.population", regions["district"].code, key="control") == 3
    _drill_down_adds_up(figs, regions, ["zones.population"])


# --- the five-stage clock -------------------------------------------------------------------------------------------------


@pytest.fixture
def clock_world(regions):
    from jingkong.isolation.tests.clock_world import activate, build

    activate("cn-9th-2022")
    return build(regions)


def _region_codes(regions) -> list[str]:
    return [r.code for r in regions.values()]


def test_clock_figures_equal_the_clock_summary_of_every_region(regions, clock_world):
    from jingkong.isolation.tests.clock_world import NOW as CLOCK_NOW

    figs = _refresh("clock", CLOCK_NOW)
    stored_regions = {c for (_m, _k, c, _d) in figs}
    assert regions["district"].code in stored_regions
    for code in _region_codes(regions):
        data = five.compute(Scope(""), region=code, at=CLOCK_NOW)
        summary = five.summary(data)
        if code not in stored_regions:  # no item there: the clock has nothing either
            assert not any(s["n"] for s in summary["stages"]) and not (data.rows["end"].isna().any())
            continue
        for s in summary["stages"]:
            stage = s["stage"]
            assert level(figs, "clock.n", code, stage) == s["done"], (code, stage)
            assert level(figs, "clock.p50_h", code, stage) == s["median"], (code, stage)
            assert level(figs, "clock.p90_h", code, stage) == s["p90"], (code, stage)
            assert level(figs, "clock.ratio", code, stage) == s["ratio"], (code, stage)
            assert level(figs, "clock.target_h", code, stage) == s["target_hours"], (code, stage)
            on_target = (s["done"] - s["late"]) / s["done"] if s["done"] else None
            assert level(figs, "clock.on_target", code, stage) == on_target, (code, stage)
            open_rows = data.rows[data.rows["end"].isna() & (data.rows["stage"] == stage)]
            assert level(figs, "clock.backlog", code, stage) == len(open_rows), (code, stage)
            assert level(figs, "clock.overdue", code, stage) == five.overdue(data, stage=stage)[0], (code, stage)
        assert sum(level(figs, "clock.overdue", code, s) for s in five.STAGE_KEYS) == summary["overdue_count"]
        slowest = max(five.STAGE_KEYS, key=lambda s: (level(figs, "clock.ratio", code, s) or -1,
                                                      -five.STAGE_KEYS.index(s)))
        if summary["slowest"]:
            assert slowest == summary["slowest"]["stage"]
    # the world has items in both streets, so the drill-down is not vacuous
    assert {regions["street_a"].code, regions["street_b"].code, regions["grid_a1"].code} <= stored_regions


def test_clock_rerun_is_idempotent_and_the_family_waits_between_refreshes(regions, clock_world):
    from jingkong.isolation.tests.clock_world import NOW as CLOCK_NOW

    first = _refresh("clock", CLOCK_NOW)
    assert first and _refresh("clock", CLOCK_NOW) == first
    assert family("clock").min_interval >= 20
    w = clock_world["world"]
    w.contact(identified=CLOCK_NOW - dt.timedelta(minutes=5))
    with clock.frozen(CLOCK_NOW):
        emit("tracing.contacts_identified", subject_type="tracing.contact", region_code=regions["grid_a1"].code)
        assert refresher.run_pending(only=["clock"]) == []
        backdate("clock", family("clock").min_interval + 1)
        assert refresher.run_pending(only=["clock"]) == ["clock"]
    figs = figures("clock")
    assert level(figs, "clock.backlog", regions["district"].code, "tracing") == \
        first[("clock.backlog", "tracing", regions["district"].code, None)] + 1


def test_clock_of_a_quiet_district_and_of_one_without_a_profile(regions):
    from jingkong.isolation.tests.clock_world import activate

    assert _refresh("clock") == {}  # no profile in force: the clock page has nothing either, no error
    assert RefreshState.objects.get(family="clock").error == ""
    activate("cn-9th-2022")
    figs = _refresh("clock")
    district = regions["district"].code
    assert {c for (_m, _k, c, _d) in figs} == {district}
    for stage in five.STAGE_KEYS:
        assert level(figs, "clock.n", district, stage) == level(figs, "clock.backlog", district, stage) == 0
        assert level(figs, "clock.p90_h", district, stage) is None
        assert level(figs, "clock.target_h", district, stage) > 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_grouped_percentiles_are_the_clocks_to_the_last_bit(seed):
    """Groups stacked by size give what the clock's own ``_pct`` gives on each group alone (values on a grid of
    seconds, as durations are, so that rounding ties occur)."""
    import numpy as np

    from jingkong.analytics.clock import _pct
    from jingkong.dashboard.families.situation import _group_percentiles

    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 40, size=300)
    group = np.repeat(np.arange(len(sizes)) * 7, sizes)  # sparse group ids, as region × stage are
    values = rng.integers(0, 48 * 3600 // 450, size=len(group)) * 450 / 3600.0  # multiples of 0.125 h
    shuffle = rng.permutation(len(group))
    got = _group_percentiles(group[shuffle], values[shuffle], (50, 90))
    assert len(got) == len(sizes)
    for g, vals in got.items():
        own = values[group == g]
        assert vals == [_pct(own, 50), _pct(own, 90)], g
