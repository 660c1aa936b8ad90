"""Contact finding on crafted lakes: exact findings per rule (venue overlap threshold, window edges, household,
workplace with and without check-ins, transport proximity, space-time companions)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from jingkong.analytics.contacts import Finding, IndexStay, IndexWindow, find_contacts
from jingkong.analytics.tests.lakes import World, at, write_checkins, write_pings, write_transport
from jingkong.tracing.lake import CheckinLake

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(regions):
    return World(regions)


@pytest.fixture
def lake(tmp_path):
    return CheckinLake(tmp_path / "lake")


def found(findings: list[Finding], kind: str | None = None) -> dict[int, Finding]:
    """person id → finding (asserting one finding per person and kind)."""
    out: dict[int, Finding] = {}
    for f in findings:
        if kind is None or f.kind == kind:
            assert f.person_id not in out, f"two {kind} findings for person {f.person_id}"
            out[f.person_id] = f
    return out


def window(world, who="index", start=None, end=None, key=1, stays=()):
    return IndexWindow(key=key, person_id=world[who], start=start or at(3, 0), end=end or at(5, 0),
                       stays=tuple(stays))


# ---------------------------------------------------------------------------------------------------------------------
# venue co-location


def _venue_world(world, lake):
    for name in ("index", "below", "exact", "before", "elsewhere", "seconds_short"):
        world.person(name)
    write_checkins(lake.root, [
        (world["index"], world.v("V1"), at(3, 10), at(3, 11)),
        (world["below"], world.v("V1"), at(3, 10, 46), at(3, 12)),  # 14 min overlap
        (world["exact"], world.v("V1"), at(3, 10, 45), at(3, 12)),  # 15 min
        (world["before"], world.v("V1"), at(3, 9), at(3, 10, 15)),  # 15 min, at the start of the index's stay
        (world["seconds_short"], world.v("V1"), at(3, 10, 45, 1), at(3, 11, 30)),  # 14 min 59 s
        (world["elsewhere"], world.v("V2"), at(3, 10), at(3, 11)),  # same time, another venue
    ])


def test_colocation_counts_an_overlap_of_at_least_the_threshold(world, lake):
    _venue_world(world, lake)
    findings = find_contacts([window(world)], overlap_minutes=15, lake=lake, kinds=["venue"])
    venue = found(findings, "venue")
    assert set(venue) == {world["exact"], world["before"]}
    exact = venue[world["exact"]]
    assert (exact.key, exact.start, exact.end) == (1, at(3, 10, 45), at(3, 11))
    assert exact.evidence["overlap_minutes"] == 15
    assert exact.evidence["venue_id"] == world.v("V1") and exact.evidence["venue_code"] == "V1"
    assert exact.evidence["venue_name"] == "场所V1"
    assert exact.evidence["index_stay"] == {"start": at(3, 10).isoformat(), "end": at(3, 11).isoformat(),
                                            "source": "checkin"}
    assert venue[world["before"]].start == at(3, 10) and venue[world["before"]].end == at(3, 10, 15)
    json.dumps([f.evidence for f in findings])  # JSON-able


def test_the_threshold_comes_from_the_caller(world, lake):
    _venue_world(world, lake)
    venue = found(find_contacts([window(world)], overlap_minutes=14, lake=lake, kinds=["venue"]), "venue")
    assert set(venue) == {world["exact"], world["before"], world["below"], world["seconds_short"]}


def test_the_index_is_never_its_own_contact(world, lake):
    world.person("index")
    write_checkins(lake.root, [
        (world["index"], world.v("V1"), at(3, 10), at(3, 11)),
        (world["index"], world.v("V1"), at(3, 10, 30), at(3, 11, 30)),  # scanned twice
    ])
    assert find_contacts([window(world)], overlap_minutes=15, lake=lake) == []


def test_window_edges_clip_the_index_stays(world, lake):
    _venue_world(world, lake)
    # The window starts at 10:30 on the 3rd: the index's stay counts from 10:30 only.
    w = window(world, start=at(3, 10, 30), end=at(3, 10, 50))
    venue = found(find_contacts([w], overlap_minutes=5, lake=lake, kinds=["venue"]), "venue")
    assert set(venue) == {world["exact"]}  # 10:45–10:50; "before" left at 10:15, the others came later
    assert venue[world["exact"]].start == at(3, 10, 45) and venue[world["exact"]].end == at(3, 10, 50)
    # A window that ends before the stay begins finds nothing; so does a window after it.
    assert find_contacts([window(world, start=at(3, 8), end=at(3, 10))], overlap_minutes=0, lake=lake,
                         kinds=["venue"]) == []
    assert find_contacts([window(world, start=at(3, 12), end=at(4, 0))], overlap_minutes=0, lake=lake,
                         kinds=["venue"]) == []


def test_a_stay_begun_the_evening_before_the_window_day_counts(world, lake):
    world.person("index")
    world.person("guest")
    write_checkins(lake.root, [
        (world["index"], world.v("H1"), at(2, 22), at(3, 8)),  # a hotel night, filed under the 2nd
        (world["guest"], world.v("H1"), at(3, 6), at(3, 9)),
    ])
    venue = found(find_contacts([window(world, start=at(3, 0))], overlap_minutes=15, lake=lake), "venue")
    assert venue[world["guest"]].start == at(3, 6) and venue[world["guest"]].end == at(3, 8)


def test_tracer_entered_stays_are_index_stays(world, lake):
    world.person("index")
    world.person("met")
    world.person("both")
    write_checkins(lake.root, [
        (world["met"], world.v("R1"), at(3, 18), at(3, 20)),  # the index did not scan at R1
        (world["index"], world.v("V1"), at(4, 9), at(4, 9, 20)),
        (world["both"], world.v("V1"), at(4, 9), at(4, 10)),
    ])
    stays = [IndexStay(at(3, 18, 30), at(3, 19, 30), venue_id=world.v("R1")),
             IndexStay(at(4, 9, 10), at(4, 9, 40), venue_id=world.v("V1"))]  # overlaps its own check-in
    venue = found(find_contacts([window(world, stays=stays)], overlap_minutes=15, lake=lake), "venue")
    assert venue[world["met"]].evidence["index_stay"]["source"] == "tracer"
    assert venue[world["met"]].evidence["overlap_minutes"] == 60
    both = venue[world["both"]]  # one merged stay 9:00–9:40, not two findings
    assert both.evidence["index_stay"] == {"start": at(4, 9).isoformat(), "end": at(4, 9, 40).isoformat(),
                                           "source": "checkin+tracer"}
    assert both.evidence["overlap_minutes"] == 40


def test_one_finding_per_stay(world, lake):
    world.person("index")
    world.person("regular")
    write_checkins(lake.root, [
        (world["index"], world.v("V1"), at(3, 10), at(3, 11)),
        (world["index"], world.v("V1"), at(4, 10), at(4, 11)),
        (world["regular"], world.v("V1"), at(3, 10), at(3, 11)),
        (world["regular"], world.v("V1"), at(4, 10, 30), at(4, 11)),
    ])
    findings = find_contacts([window(world)], overlap_minutes=15, lake=lake, kinds=["venue"])
    assert [(f.person_id, f.start, f.end) for f in findings] == [
        (world["regular"], at(3, 10), at(3, 11)), (world["regular"], at(4, 10, 30), at(4, 11))]


# ---------------------------------------------------------------------------------------------------------------------
# household and workplace


def test_household_members_over_the_whole_window(world, lake):
    world.person("index", household="H1")
    world.person("spouse", household="H1")
    world.person("child", household="H1")
    world.person("neighbour", household="H2")
    findings = find_contacts([window(world)], overlap_minutes=15, lake=lake)
    household = found(findings, "household")
    assert set(household) == {world["spouse"], world["child"]}
    assert household[world["spouse"]].start == at(3, 0) and household[world["spouse"]].end == at(5, 0)
    assert household[world["spouse"]].evidence == {"household_id": world.households["H1"].pk,
                                                   "household_code": "H1"}


def test_workplace_with_checkins_lists_coworkers_on_the_same_shift(world, lake):
    world.person("index", workplace="F1")
    world.person("same_shift", workplace="F1")
    world.person("short_overlap", workplace="F1")
    world.person("other_day", workplace="F1")
    world.person("never_scans", workplace="F1")
    world.person("visitor")
    factory = world.v("F1")
    write_checkins(lake.root, [
        (world["index"], factory, at(3, 8), at(3, 17)),
        (world["same_shift"], factory, at(3, 8, 5), at(3, 17, 30)),
        (world["short_overlap"], factory, at(3, 16, 55), at(3, 23)),  # 5 minutes: still the same shift
        (world["other_day"], factory, at(4, 8), at(4, 17)),
        (world["visitor"], factory, at(3, 10), at(3, 11)),
    ])
    # The same scans again from a second source (e.g. two scanning apps) change nothing.
    write_checkins(lake.root, [(world["same_shift"], factory, at(3, 8, 5), at(3, 17, 30))], name="src-copy.parquet")
    findings = find_contacts([window(world)], overlap_minutes=15, lake=lake)
    work = found(findings, "workplace")
    assert set(work) == {world["same_shift"], world["short_overlap"]}
    assert work[world["same_shift"]].evidence == {
        "basis": "checkins", "workplace_venue_id": factory, "workplace_venue_code": "F1",
        "workplace_venue_name": "场所F1", "overlap_minutes": 535, "shared_stays": 1}
    assert work[world["short_overlap"]].start == at(3, 16, 55) and work[world["short_overlap"]].end == at(3, 17)
    venue = found(findings, "venue")  # co-located ≥ 15 minutes, registered there or not
    assert set(venue) == {world["same_shift"], world["visitor"]}
    json.dumps([f.evidence for f in findings])  # JSON-able (no Decimal sums, no datetimes)


def test_workplace_without_checkins_lists_every_registered_coworker(world, lake):
    world.person("index", workplace="F2")
    world.person("colleague", workplace="F2")
    world.person("other_firm", workplace="F3")
    findings = find_contacts([window(world)], overlap_minutes=15, lake=lake)
    work = found(findings, "workplace")
    assert set(work) == {world["colleague"]}
    assert (work[world["colleague"]].start, work[world["colleague"]].end) == (at(3, 0), at(5, 0))
    assert work[world["colleague"]].evidence["basis"] == "registry"
    assert work[world["colleague"]].evidence["index_stays_entered"] is False
    # A stay the tracer entered at the workplace bounds the exposure.
    stays = [IndexStay(at(3, 8), at(3, 17), venue_id=world.v("F2"))]
    work = found(find_contacts([window(world, stays=stays)], overlap_minutes=15, lake=lake), "workplace")
    assert (work[world["colleague"]].start, work[world["colleague"]].end) == (at(3, 8), at(3, 17))
    assert work[world["colleague"]].evidence["index_stays_entered"] is True


def test_a_scanning_workplace_the_index_did_not_attend_gives_no_workplace_contacts(world, lake):
    world.person("index", workplace="F1")
    world.person("colleague", workplace="F1")
    world.person("night_shift", workplace="F1")
    write_checkins(lake.root, [(world["colleague"], world.v("F1"), at(3, 8), at(3, 17)),
                               (world["night_shift"], world.v("F1"), at(3, 20), at(4, 6))])
    assert found(find_contacts([window(world)], overlap_minutes=15, lake=lake), "workplace") == {}
    # The index forgot to scan; the tracer entered its day at work: the co-workers on that shift are found.
    stays = [IndexStay(at(3, 9), at(3, 17), venue_id=world.v("F1"))]
    work = found(find_contacts([window(world, stays=stays)], overlap_minutes=15, lake=lake), "workplace")
    assert set(work) == {world["colleague"]} and work[world["colleague"]].evidence["basis"] == "checkins"


# ---------------------------------------------------------------------------------------------------------------------
# transport


def _trip(mode, number="G1234", carriage=None, seat=None, day=3):
    t = {"mode": mode, "number": number, "date": f"2022-01-{day:02d}"}
    if carriage is not None:
        t["carriage"] = carriage
    if seat is not None:
        t["seat"] = seat
    return IndexStay(at(day, 9), at(day, 12), transport=t)


def test_train_passengers_in_the_same_carriage(world, lake):
    for name in ("index", "same", "other_car", "no_car", "other_train", "other_day"):
        world.person(name)
    d = dt.date(2022, 1, 3)
    write_transport(lake.root, [
        (world["index"], "train", "G1234", d, "5", "12F"),
        (world["same"], "train", "G1234", d, "5", "1A"),
        (world["other_car"], "train", "G1234", d, "6", "12F"),
        (world["no_car"], "train", "G1234", d, None, None),
        (world["other_train"], "train", "G1235", d, "5", "12F"),
        (world["other_day"], "train", "G1234", dt.date(2022, 1, 4), "5", "12F"),
    ])
    findings = find_contacts([window(world, stays=[_trip("高铁", "g 1234", carriage="05车")])], overlap_minutes=15,
                             lake=lake)
    trans = found(findings, "transport")
    assert set(trans) == {world["same"], world["no_car"]}
    assert trans[world["same"]].evidence["rule"] == "same carriage"
    assert trans[world["no_car"]].evidence["rule"] == "passenger carriage unknown"
    assert (trans[world["same"]].start, trans[world["same"]].end) == (at(3, 9), at(3, 12))
    # Without a carriage from the tracer, the index's own manifest record gives it.
    trans = found(find_contacts([window(world, stays=[_trip("train")])], overlap_minutes=15, lake=lake), "transport")
    assert set(trans) == {world["same"], world["no_car"]}
    assert trans[world["same"]].evidence["index_carriage"] == "5"


def test_flight_rows_around_the_index_and_whole_bus(world, lake):
    for name in ("index", "row9", "row15", "row8", "row16", "bus_mate"):
        world.person(name)
    d = dt.date(2022, 1, 3)
    write_transport(lake.root, [
        (world["row9"], "flight", "MU5101", d, None, "9A"),
        (world["row15"], "flight", "MU5101", d, None, "15C"),
        (world["row8"], "flight", "MU5101", d, None, "8F"),
        (world["row16"], "flight", "MU5101", d, None, "16A"),
        (world["bus_mate"], "bus", "K88", d, None, None),
    ])
    stays = [_trip("flight", "MU5101", seat="12C"), _trip("bus", "K88")]
    trans = found(find_contacts([window(world, stays=stays)], overlap_minutes=15, lake=lake), "transport")
    assert set(trans) == {world["row9"], world["row15"], world["bus_mate"]}
    assert trans[world["row9"]].evidence["flight_rows"] == 3
    assert trans[world["bus_mate"]].evidence["rule"] == "whole vehicle"
    # The seat unknown: the whole flight.
    trans = found(find_contacts([window(world, stays=[_trip("flight", "MU5101")])], overlap_minutes=15, lake=lake),
                  "transport")
    assert set(trans) == {world["row9"], world["row15"], world["row8"], world["row16"]}
    # A trip outside the exposure window is no exposure.
    late = IndexStay(at(6, 9), at(6, 12), transport={"mode": "bus", "number": "K88", "date": "2022-01-03"})
    assert find_contacts([window(world, stays=[late])], overlap_minutes=15, lake=lake) == []


# ---------------------------------------------------------------------------------------------------------------------
# space-time companions


def test_space_time_companions_share_a_cell_for_more_than_the_minutes(world, lake):
    for name in ("index", "companion", "brief", "next_cell"):
        world.person(name)
    lon, lat = 121.8003, 29.9003  # well inside one 800 m cell
    pings = []
    for minute in range(0, 41, 5):  # the index: 10:00–10:40 in the cell, then elsewhere at 10:45
        pings.append((world["index"], lon, lat, at(3, 10, minute)))
    pings.append((world["index"], 121.9, 29.95, at(3, 10, 45)))
    # 10:20–11:20 in the cell (pings at most 30 minutes apart): 25 minutes with the index (until 10:45)
    pings += [(world["companion"], lon + 0.001, lat, at(3, 10, 20)), (world["companion"], lon, lat, at(3, 10, 31)),
              (world["companion"], lon, lat, at(3, 10, 55)), (world["companion"], lon, lat, at(3, 11, 20))]
    pings += [(world["brief"], lon, lat, at(3, 10, 35)), (world["brief"], 121.7, 29.8, at(3, 10, 45))]  # 10 min
    pings += [(world["next_cell"], lon + 0.02, lat, at(3, 10, m)) for m in range(0, 41, 5)]
    write_pings(lake.root, pings)
    findings = find_contacts([window(world)], overlap_minutes=15, lake=lake, kinds=(), companion=(800, 10))
    comp = found(findings, "companion")
    assert set(comp) == {world["companion"]}
    assert (comp[world["companion"]].start, comp[world["companion"]].end) == (at(3, 10, 20), at(3, 10, 45))
    assert comp[world["companion"]].evidence["overlap_minutes"] == 25
    assert comp[world["companion"]].evidence["cell_metres"] == 800
    assert comp[world["companion"]].evidence["cell"].startswith("800m:")  # identifies the cell across re-runs
    # A ping after a long silence starts a new stay: the phone was off, the person may have left.
    write_pings(lake.root, pings + [(world["brief"], lon, lat, at(3, 9, 0))])
    comp = found(find_contacts([window(world)], overlap_minutes=15, lake=lake, kinds=(), companion=(800, 10)),
                 "companion")
    assert set(comp) == {world["companion"]}
    # Without the companion rule, no pings are read.
    assert find_contacts([window(world)], overlap_minutes=15, lake=lake, kinds=()) == []


# ---------------------------------------------------------------------------------------------------------------------
# batches and input


def test_a_batch_finds_what_each_window_finds_alone(world, lake):
    _venue_world(world, lake)
    world.person("second", household="H9")
    world.person("flatmate", household="H9")
    write_checkins(lake.root, [(world["second"], world.v("V2"), at(3, 10), at(3, 11))], name="src-more.parquet")
    one = window(world, key=1)
    two = window(world, who="second", key=2)
    both = find_contacts([one, two], overlap_minutes=15, lake=lake)
    alone = find_contacts([one], overlap_minutes=15, lake=lake) + find_contacts([two], overlap_minutes=15, lake=lake)
    assert both == alone
    assert {f.person_id for f in both if f.key == 2} == {world["flatmate"], world["elsewhere"]}


def test_an_empty_lake_still_gives_the_registry_contacts(world, lake):
    world.person("index", household="H1", workplace="F1")
    world.person("spouse", household="H1")
    findings = find_contacts([window(world)], overlap_minutes=15, lake=lake)
    assert [(f.kind, f.person_id) for f in findings] == [("household", world["spouse"])]


def test_bad_windows_are_refused_or_empty(world, lake):
    world.person("index")
    with pytest.raises(ValueError, match="aware"):
        find_contacts([IndexWindow(1, world["index"], dt.datetime(2022, 1, 3), at(5, 0))], overlap_minutes=15,
                      lake=lake)
    with pytest.raises(ValueError, match="same key"):
        find_contacts([window(world), window(world)], overlap_minutes=15, lake=lake)
    with pytest.raises(ValueError, match="unknown contact kind"):
        find_contacts([window(world)], overlap_minutes=15, lake=lake, kinds=["bus"])
    assert find_contacts([window(world, start=at(5, 0), end=at(3, 0))], overlap_minutes=15, lake=lake) == []


def test_carriage_and_seat_written_in_words_match_between_the_tracer_and_the_manifest(world, lake, tmp_path):
    """Regression: the loader stripped one suffix (``5号车厢`` → ``5号``) but a tracer's entry lost all of them
    (``5``): passengers of the index's own carriage were not found."""
    from jingkong.tracing.lake import transport_load

    for name in ("index", "same", "other_car"):
        world.person(name)
    n = world.numbers
    (tmp_path / "manifest").mkdir()
    (tmp_path / "manifest" / "g1234.csv").write_text(
        "身份证号,交通方式,车次,日期,车厢,座位\n"
        f"{n['same']},高铁,G1234,2022-01-03,5号车厢,12座号\n"
        f"{n['other_car']},高铁,G1234,2022-01-03,第6节车厢,12F\n", encoding="utf-8")
    assert transport_load(tmp_path / "manifest", lake=lake).loaded == 2
    for entered in ("5号车厢", "05车", "第5节车厢", "5"):
        trans = found(find_contacts([window(world, stays=[_trip("train", carriage=entered)])], overlap_minutes=15,
                                    lake=lake), "transport")
        assert set(trans) == {world["same"]}, entered
        assert trans[world["same"]].evidence["rule"] == "same carriage"
        assert trans[world["same"]].evidence["carriage"] == "5" and trans[world["same"]].evidence["seat"] == "12"
