"""Five-stage clock: milestones per case and contact, stages (incl. skipped ones), statistics against hand-computed
values, overdue items with owners, the slowest stage, and drill-down totals."""

from __future__ import annotations

import datetime as dt

import pytest

from jingkong.access.guard import Scope
from jingkong.analytics import clock
from jingkong.analytics.clock import cache_clear as clock_cache_clear
from jingkong.isolation.tests.clock_world import DAY, NOW, activate, build, h

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_clock_cache():
    clock_cache_clear()
    yield
    clock_cache_clear()
STREET_A, STREET_B, DISTRICT = "330206002", "330206004", "330206"


@pytest.fixture
def world(regions):
    from jingkong.conftest import make_user

    activate("cn-9th-2022")
    return build(regions, tracer_x=make_user("tracer_x", "tracer", regions["street_a"]),
                 tracer_y=make_user("tracer_y", "tracer", regions["street_a"]))


def _timelines(prefix=STREET_A):
    cases, contacts = clock.load(prefix, since=NOW - dt.timedelta(days=10), at=NOW)
    return {(t["kind"], t["subject_id"]): t for t in clock.timeline_rows(cases, contacts)}


def _data(prefix=STREET_A, scope=None):
    return clock.compute(scope or Scope(prefix), region=prefix, day=DAY, at=NOW)


def _stage(summary, name):
    return next(s for s in summary["stages"] if s["stage"] == name)


def test_milestones_of_each_source(world):
    t = _timelines()
    c1 = t[("case", world["c1"].pk)]
    assert (c1["detected"], c1["confirmed"], c1["investigated"]) == (h(-2), h(0), h(3))
    assert (c1["grouped"], c1["transfer_started"], c1["arrived"], c1["isolated"]) == (h(1), h(1.5), h(2), h(2.5))
    assert c1["contacts_identified"] == h(0.5)
    # a contact of several cases: counted for each case, one timeline of its own
    assert t[("case", world["c2"].pk)]["contacts_identified"] == h(0.2)
    k1 = t[("contact", world["k1"].pk)]
    assert (k1["identified"], k1["located"], k1["grouped"], k1["transfer_started"], k1["arrived"]) == (
        h(0.5), h(1), h(1.5), h(2), h(3))
    assert k1["isolated"] == h(3)  # in_quarantine_at before the room check-in at 3.25
    assert sum(1 for key in t if key == ("contact", world["k1"].pk)) == 1
    k2 = t[("contact", world["k2"].pk)]
    assert k2["transfer_started"] is None and k2["arrived"] is None and k2["isolated"] == h(2.5)  # home order
    assert ("contact", world["k6"].pk) not in t  # street B


def test_milestones_after_as_of_are_not_reached(world):
    cases, contacts = clock.load(STREET_A, since=NOW - dt.timedelta(days=10), at=h(2.2))
    t = {(x["kind"], x["subject_id"]): x for x in clock.timeline_rows(cases, contacts)}
    assert t[("contact", world["k1"].pk)]["arrived"] is None
    assert t[("case", world["c1"].pk)]["investigated"] is None


def test_stage_figures_hand_computed(world):
    s = clock.summary(_data())
    tracing = _stage(s, "tracing")  # K1 0.5, K2 2, K4 1 (K3 began the day before, K5 closed)
    assert (tracing["n"], tracing["done"], tracing["open"]) == (3, 3, 0)
    assert tracing["median"] == 1.0 and tracing["p90"] == pytest.approx(1.8)
    grouping = _stage(s, "grouping")  # C1 1, K1/K2/K4 0.5; C2 skipped (isolated without a batch)
    assert (grouping["n"], grouping["median"], grouping["p90"]) == (4, 0.5, pytest.approx(0.85))
    transfer = _stage(s, "transfer")  # C1 1, K1 1.5, K4 open (2.5 h old); K2 at home: none
    assert (transfer["n"], transfer["done"], transfer["open"], transfer["overdue"]) == (3, 2, 1, 0)
    assert transfer["median"] == 1.25 and transfer["p90"] == pytest.approx(1.45)
    assert transfer["ratio"] == pytest.approx(2.3 / 8, abs=1e-3)
    isolation = _stage(s, "isolation")  # C1 0.5, C2 1 (from confirmed), K1 0, K2 0; K4 travelling: not begun
    assert (isolation["n"], isolation["median"], isolation["p90"]) == (4, 0.25, pytest.approx(0.85))
    investigation = _stage(s, "investigation")  # C1 3 h; C2 open 5 h > 4 h
    assert (investigation["done"], investigation["overdue"], investigation["ratio"]) == (1, 1, pytest.approx(1.2))
    testing = _stage(s, "testing")  # C1 only (C2 has no first positive)
    assert (testing["n"], testing["median"], testing["target_hours"]) == (1, 2.0, 12)
    assert s["slowest"] == {"stage": "investigation", "ratio": pytest.approx(1.2)}


def test_overdue_items_and_owners(world):
    count, items = clock.overdue(_data())
    assert count == 2
    first, second = items
    assert (first["kind"], first["subject_id"], first["stage"]) == ("contact", world["k3"].pk, "tracing")
    assert (first["owner_kind"], first["owner"], first["age_hours"]) == ("queue", STREET_A, 14.0)
    assert (second["kind"], second["stage"], second["owner_kind"], second["owner"]) == (
        "case", "investigation", "tracer", "tracer_y")


def test_late_transfer_is_overdue_with_dispatcher(world):
    data = clock.compute(Scope(STREET_A), region=STREET_A, day=DAY, at=h(10))
    _, items = clock.overdue(data, stage="transfer")
    assert [i["subject_id"] for i in items] == [world["k4"].pk]
    assert items[0]["owner_kind"] == "dispatcher" and items[0]["target_hours"] == 8


def test_secondary_transfer_has_its_own_target(world):
    from jingkong.isolation.tests.clock_world import ClockWorld

    w = ClockWorld(world["world"].regions)
    k = w.contact(tier="secondary", identified=h(0), located=h(0.5))
    w.group(k.person, at=h(1), role="secondary", contact=k)
    _, items = clock.overdue(clock.compute(Scope(STREET_A), region=STREET_A, day=DAY, at=h(10)), stage="transfer")
    assert {i["subject_id"] for i in items} == {world["k4"].pk}  # 9 h: past the close target (8), not 12
    _, items = clock.overdue(clock.compute(Scope(STREET_A), region=STREET_A, day=DAY, at=h(13.5)), stage="transfer")
    assert {i["subject_id"] for i in items} == {world["k4"].pk, k.pk}


def test_by_region_counts_equal_the_drill_down(world):
    district = clock.summary(_data(DISTRICT, Scope(DISTRICT)))
    rows = {r["region_code"]: r for r in district["by_region"]}
    assert set(rows) == {STREET_A, STREET_B}
    for stage in clock.STAGE_KEYS:
        total = _stage(district, stage)["n"]
        assert total == sum(next(s["n"] for s in r["stages"] if s["stage"] == stage) for r in rows.values())
        street = clock.summary(_data(STREET_A))
        assert next(s["n"] for s in rows[STREET_A]["stages"] if s["stage"] == stage) == _stage(street, stage)["n"]
        assert _stage(street, stage)["n"] == sum(next(s["n"] for s in r["stages"] if s["stage"] == stage)
                                                 for r in street["by_region"])
    assert _stage(district, "tracing")["n"] == 4  # K6 in street B


def test_by_day_and_the_previous_day(world):
    s = clock.summary(_data())
    days = {d["day"]: d for d in s["by_day"]}
    assert len(days) == 7 and max(days) == DAY
    prev = next(x for x in days[DAY - dt.timedelta(days=1)]["stages"] if x["stage"] == "tracing")
    assert (prev["n"], prev["open"], prev["overdue"]) == (1, 1, 1)  # K3


def test_scope_outside_sees_nothing(world):
    data = clock.compute(Scope(STREET_B), region=STREET_A, day=DAY, at=NOW)
    assert len(data.rows) == 0


def test_slowest_rules():
    assert clock.slowest([{"stage": "a", "ratio": None}]) is None
    assert clock.slowest([{"stage": "a", "ratio": 2.0}, {"stage": "b", "ratio": 2.0}])["stage"] == "a"
    assert clock.slowest([{"stage": "a", "ratio": 1.0}, {"stage": "b", "ratio": 2.5}])["stage"] == "b"


def test_targets_fall_back_to_the_main_fields():
    class Section:
        testing, tracing, grouping, transfer, isolation = 12, 24, 4, 12, 24

    t = clock.targets_from(Section())
    assert (t.investigation, t.transfer_close, t.transfer_secondary) == (24, 12, 12)


def test_live_figures_are_reused_until_the_data_change(world):
    from jingkong.core import clock as core_clock
    from jingkong.isolation.tests.clock_world import ClockWorld

    with core_clock.frozen(NOW):
        first = clock.compute(Scope(STREET_A), region=STREET_A)
        assert clock.compute(Scope(STREET_A), region=STREET_A) is first
        ClockWorld(world["world"].regions).contact(identified=h(1))
        again = clock.compute(Scope(STREET_A), region=STREET_A)
    assert again is not first
    assert clock.summary(again)["stages"][2]["n"] == clock.summary(first)["stages"][2]["n"] + 1


def test_detected_falls_back_to_the_positive_sample(world):
    from jingkong.isolation.tests.clock_world import ClockWorld
    from jingkong.testing.models import Sample, Tube

    case = ClockWorld(world["world"].regions).case(confirmed=h(1))
    tube = Tube.objects.create(barcode="CLOCK-TUBE-1", region_code=case.region_code, opened_at=h(-3), capacity=1)
    sample = Sample.objects.create(client_scan_id="clock-scan-1", tube=tube, person=case.person,
                                   region_code=case.region_code, sampled_at=h(-3), recorded_at=h(-3))
    case.source_sample_id = sample.pk
    case.save(update_fields=["source_sample"])
    assert _timelines()[("case", case.pk)]["detected"] == h(-3)
