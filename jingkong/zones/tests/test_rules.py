"""The pure zone rules: proposal units, compounds, frequent places, lifting and downgrading countdowns, upgrades."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from jingkong.policy.schema import RiskAreaDowngrade, ZoneLifting, ZoneRules
from jingkong.zones import rules
from jingkong.zones.rules import Place, Visit, ZoneClock

T = dt.datetime(2022, 1, 1, 0, 0, tzinfo=dt.UTC)
GRID = "330206002001001"
HOME = Place(kind="home", grid_code=GRID, building_id=7, household_id=70, entrance="2", compound="明州花园")


def days(n, hours=0):
    return T + dt.timedelta(days=n, hours=hours)


# --- compounds -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("address", "key"), [
    ("北仑区新碶街道明州花园12幢", "北仑区新碶街道明州花园"),
    ("明州花园 3号楼", "明州花园"),
    ("银杏苑3栋2单元", "银杏苑"),
    ("星海苑十二幢", "星海苑"),
    ("长江路12号", None),  # a road address: no compound
    ("明州大道88号", None),
    ("明州花园", None),  # no building number
    ("", None),
    (None, None),
])
def test_compound_key(address, key):
    assert rules.compound_key(address) == key


# --- lockdown units ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("smallest", "unit"), [
    ("household", ("household", 70)),
    ("entrance", ("entrance", 7, "2")),
    ("building", ("building", 7)),
    ("compound", ("compound", GRID, "明州花园")),
    ("grid", ("region", GRID)),
    ("community", ("region", GRID[:12])),
    ("street", ("region", GRID[:9])),
])
def test_lockdown_unit_at_each_level(smallest, unit):
    assert rules.lockdown_unit(HOME, smallest) == unit


def test_lockdown_unit_falls_back_to_what_the_place_has():
    work = Place(kind="workplace", grid_code=GRID, building_id=9)
    assert rules.lockdown_unit(work, "household") == ("building", 9)  # no household, no entrance
    assert rules.lockdown_unit(work, "compound") == ("region", GRID)  # compound not derivable: the grid
    no_entrance = Place(kind="home", grid_code=GRID, building_id=9, household_id=None, entrance="")
    assert rules.lockdown_unit(no_entrance, "entrance") == ("building", 9)
    venue_without_building = Place(kind="frequent", grid_code=GRID)
    assert rules.lockdown_unit(venue_without_building, "building") == ("region", GRID)


# --- frequent places ---------------------------------------------------------------------------------------------------


def test_frequent_venues_by_visits_or_hours_with_boundaries():
    visits = [Visit(1, days(0), days(0, 1)), Visit(1, days(1), days(1, 1)),  # 2 visits, 2 h
              Visit(2, days(0), days(0, 4)),  # 1 visit, exactly 4 h
              Visit(3, days(0), days(0, 3, )),  # 1 visit, 3 h
              Visit(4, days(1), days(0))]  # inverted: a visit of no time
    assert rules.frequent_venues(visits, min_visits=2, min_hours=4) == [1, 2]
    assert rules.frequent_venues(visits, min_visits=3, min_hours=None) == []
    assert rules.frequent_venues(visits, min_visits=None, min_hours=3) == [2, 3]
    assert rules.frequent_venues(visits, min_visits=1, min_hours=None) == [1, 2, 3, 4]
    assert rules.frequent_venues(visits, min_visits=None, min_hours=None) == []


# --- proposals ---------------------------------------------------------------------------------------------------------


def test_proposal_three_zones_entrance_ring_community_prevention_district():
    work = Place(kind="workplace", grid_code="330206004001002", building_id=11)
    p = rules.propose([HOME, work], scheme="three_zones", types=["lockdown", "control", "prevention"],
                      smallest_unit="entrance", control_ring="community", prevention_area="district")
    assert (p.lockdown_type, p.control_type, p.prevention_type) == ("lockdown", "control", "prevention")
    assert p.lockdown == [("entrance", 7, "2"), ("building", 11)]
    assert p.control == [("region", GRID[:12]), ("region", "330206004001")]
    assert p.prevention == [("region", "330206")]


def test_proposal_risk_areas_compound_and_defaults():
    p = rules.propose([HOME], scheme="risk_areas", types=["high_risk", "medium_risk", "low_risk"],
                      smallest_unit="compound", control_ring=None, prevention_area=None)
    assert p.lockdown == [("compound", GRID, "明州花园")]
    assert p.control == [("region", GRID)]  # default ring: the grid
    assert p.prevention == [("region", GRID[:9])]  # default prevention: the street


def test_proposal_ring_is_always_larger_than_the_lockdown():
    p = rules.propose([HOME], scheme="three_zones", types=["lockdown", "control", "prevention"],
                      smallest_unit="grid", control_ring="grid", prevention_area="street")
    assert p.lockdown == [("region", GRID)]
    assert p.control == [("region", GRID[:12])]  # bumped to the community
    assert p.prevention == [("region", GRID[:9])]
    p = rules.propose([HOME], scheme="three_zones", types=["lockdown", "control", "prevention"],
                      smallest_unit="street", control_ring="street", prevention_area="street")
    assert p.control == [("region", GRID[:6])] and p.prevention == [("region", GRID[:6])]


def test_proposal_only_types_in_use_and_dedup():
    p = rules.propose([HOME, HOME], scheme="three_zones", types=["lockdown"], smallest_unit="building",
                      control_ring="grid", prevention_area="street")
    assert p.lockdown == [("building", 7)] and p.control == [] and p.prevention == []
    assert p.control_type is None and p.prevention_type is None
    with pytest.raises(ValueError):
        rules.propose([], scheme="three_zones", types=["lockdown"], smallest_unit="building", control_ring=None,
                      prevention_area=None)


def test_common_region():
    assert rules.common_region([GRID, GRID]) == GRID
    assert rules.common_region([GRID, "330206002001002"]) == GRID[:12]
    assert rules.common_region([GRID, "330206004001001"]) == "330206"
    assert rules.common_region([]) == ""


def test_schema_checks_ring_and_prevention():
    base = {"scheme": "three_zones", "types": ["lockdown", "control", "prevention"], "smallest_control_unit": "entrance",
            "lifting": {"no_new_infection_days": 14, "last_exposure_days": 14, "screening_days_before_lift": 2}}
    ZoneRules.model_validate(base | {"control_ring": "community", "prevention_area": "district"})
    with pytest.raises(ValueError, match="larger than the control ring"):
        ZoneRules.model_validate(base | {"control_ring": "street", "prevention_area": "street"})
    with pytest.raises(ValueError, match="smallest control unit"):
        ZoneRules.model_validate(base | {"smallest_control_unit": "community", "control_ring": "community"})
    assert ZoneRules.model_validate(base).control_ring is None  # optional: stored versions predate it


# --- 三区 lifting (2021) -------------------------------------------------------------------------------------------------

L21 = {"no_new_infection_days": 14, "last_exposure_days": 14, "screening_days_before_lift": 2}


def lift(clock, at):
    return rules.lifting_three_zones(clock, at=at, **L21)


def test_three_zones_all_conditions_met_exactly_at_the_boundary():
    # Infection on day 0 = 2 Jan, exposure late on 3 Jan: 14 whole days after 3 Jan are over on 18 Jan 00:00.
    c = ZoneClock(type="lockdown", since=T, last_infection_at=days(1), last_exposure_at=days(2, hours=23),
                  last_screening_at=days(15))
    cd = lift(c, days(17))
    assert cd.ready and cd.due_at == days(17) and cd.blockers == [] and cd.action == "lift" and cd.to_type is None
    early = lift(c, days(17) - dt.timedelta(seconds=1))
    assert not early.ready
    assert [b.code for b in early.blockers] == ["last_exposure"]
    assert early.blockers[0].clears_at == days(17)


def test_three_zones_each_blocker_with_its_date():
    c = ZoneClock(type="control", since=T, last_infection_at=days(3), last_exposure_at=days(5), last_screening_at=None)
    cd = lift(c, days(10))
    codes = {b.code: b for b in cd.blockers}
    assert set(codes) == {"new_infection", "last_exposure", "screening"}
    assert codes["new_infection"].clears_at == days(18)
    assert codes["last_exposure"].clears_at == days(20)
    assert codes["screening"].clears_at is None  # needs a screening: no date by itself
    assert cd.due_at == days(20)


def test_three_zones_screening_window_boundaries():
    c = ZoneClock(type="lockdown", since=T, last_infection_at=T, last_exposure_at=None, last_screening_at=days(13))
    assert lift(c, days(15)).ready  # lifting on 16 Jan, screening on 14 Jan: 2 days before
    c_old = ZoneClock(type="lockdown", since=T, last_infection_at=T, last_screening_at=days(13) - dt.timedelta(seconds=1))
    assert [b.code for b in lift(c_old, days(15)).blockers] == ["screening"]  # 13 Jan: 3 days before
    # A screening that went stale while waiting: lifting on day 20 needs one from day 18 on.
    assert [b.code for b in lift(c, days(20)).blockers] == ["screening"]
    # A screening before the last infection does not count.
    c_before = ZoneClock(type="lockdown", since=T, last_infection_at=days(13), last_screening_at=days(12))
    assert "screening" in {b.code for b in lift(c_before, days(28)).blockers}


def test_three_zones_no_infection_inside_counts_from_the_zone_start():
    c = ZoneClock(type="lockdown", since=days(2, hours=20), last_screening_at=days(16))
    cd = lift(c, days(17))
    assert cd.ready and cd.due_at == days(17)
    assert not lift(c, days(17) - dt.timedelta(seconds=1)).ready


def test_days_are_calendar_days_of_the_command_centre():
    """The policy counts days: in Asia/Shanghai, the day of the infection is day 0 whatever its hour, and lifting is
    due at 00:00 local after the 14th whole day — never before 14 × 24 h (a 24-h count lifted mid-afternoon)."""
    sh = ZoneInfo("Asia/Shanghai")
    late = dt.datetime(2022, 1, 1, 23, 30, tzinfo=sh)  # 15:30 UTC
    after_midnight = dt.datetime(2022, 1, 2, 0, 30, tzinfo=sh)  # 16:30 UTC, the same UTC day
    for infection, due in ((late, dt.datetime(2022, 1, 16, tzinfo=sh)),
                           (after_midnight, dt.datetime(2022, 1, 17, tzinfo=sh))):
        c = ZoneClock(type="lockdown", since=infection, last_infection_at=infection,
                      last_screening_at=due - dt.timedelta(hours=20))
        cd = rules.lifting_three_zones(c, at=due, tz="Asia/Shanghai", **L21)
        assert cd.ready and cd.due_at == due
        assert cd.due_at >= infection + dt.timedelta(days=14)
        early = rules.lifting_three_zones(c, at=due - dt.timedelta(minutes=1), tz="Asia/Shanghai", **L21)
        assert [b.code for b in early.blockers] == ["new_infection"]
        assert infection.strftime("%Y-%m-%d %H:%M") in early.blockers[0].text  # shown in local time
    # 9th edition: a high-risk area from 23:30 local on 1 Jan: days 1-7 are 2-8 Jan, the day-7 screening on 8 Jan.
    h = ZoneClock(type="high_risk", since=late, last_screening_at=dt.datetime(2022, 1, 8, 0, 10, tzinfo=sh))
    cd = rules.downgrade_risk_areas(h, at=dt.datetime(2022, 1, 9, tzinfo=sh), tz="Asia/Shanghai", **D22)
    assert cd.ready and cd.due_at == dt.datetime(2022, 1, 9, tzinfo=sh)
    h_early = ZoneClock(type="high_risk", since=late, last_screening_at=dt.datetime(2022, 1, 7, 23, 50, tzinfo=sh))
    assert [b.code for b in rules.downgrade_risk_areas(h_early, at=dt.datetime(2022, 1, 9, tzinfo=sh),
                                                       tz="Asia/Shanghai", **D22).blockers] == ["screening"]


def test_prevention_lifted_when_no_higher_zone_is_left():
    c = ZoneClock(type="prevention", since=T, higher_zones_in_force=2)
    cd = lift(c, days(30))
    assert not cd.ready and cd.blockers[0].code == "higher_zones"
    assert lift(ZoneClock(type="prevention", since=T), days(1)).ready


# --- 9th edition downgrades (2022) ---------------------------------------------------------------------------------------

D22 = {"high_to_medium_days": 7, "medium_to_low_days": 7, "downgraded_high_to_low_days": 3, "screening_day": 7}


def down(clock, at):
    return rules.downgrade_risk_areas(clock, at=at, **D22)


def test_high_to_medium_after_7_days_and_day_7_screening():
    # Last infection on 2 Jan (day 0): days 1-7 are 3-9 Jan, due 10 Jan 00:00; the day-7 screening is on 9 Jan.
    c = ZoneClock(type="high_risk", since=T, last_infection_at=days(1), last_screening_at=days(8))
    cd = down(c, days(9))
    assert cd.ready and cd.action == "downgrade" and cd.to_type == "medium_risk" and cd.due_at == days(9)
    before = down(c, days(9) - dt.timedelta(seconds=1))
    assert [b.code for b in before.blockers] == ["new_infection"]
    # The screening must be on day 7 or later, not on day 6.
    early_screen = ZoneClock(type="high_risk", since=T, last_infection_at=days(1),
                             last_screening_at=days(8) - dt.timedelta(seconds=1))
    assert [b.code for b in down(early_screen, days(10)).blockers] == ["screening"]


def test_downgraded_high_goes_low_after_3_more_days_without_screening():
    c = ZoneClock(type="medium_risk", since=days(8), last_infection_at=days(1), downgraded_from_high=True)
    assert down(c, days(12)).ready and down(c, days(12)).to_type == "low_risk"
    assert not down(c, days(12) - dt.timedelta(seconds=1)).ready


def test_medium_to_low_needs_7_days_and_screening():
    c = ZoneClock(type="medium_risk", since=T, last_screening_at=None)
    cd = down(c, days(8))
    assert [b.code for b in cd.blockers] == ["screening"] and cd.due_at == days(8)
    c2 = ZoneClock(type="medium_risk", since=T, last_screening_at=days(7))
    assert down(c2, days(8)).ready


def test_new_infection_restarts_the_count():
    c = ZoneClock(type="high_risk", since=T, last_infection_at=days(5), last_screening_at=days(7))
    cd = down(c, days(8))
    assert cd.due_at == days(13)
    assert {b.code for b in cd.blockers} == {"new_infection", "screening"}


def test_countdown_dispatches_on_the_scheme():
    zr21 = ZoneRules(scheme="three_zones", types=["lockdown", "control", "prevention"],
                     smallest_control_unit="entrance", lifting=ZoneLifting(**L21))
    zr22 = ZoneRules(scheme="risk_areas", types=["high_risk", "medium_risk", "low_risk"],
                     smallest_control_unit="compound", downgrade=RiskAreaDowngrade(**D22))
    c = ZoneClock(type="lockdown", since=T, last_screening_at=days(14))
    assert rules.countdown(c, zr21, at=days(15)).ready
    assert not rules.countdown(c, zr21, at=days(15) - dt.timedelta(seconds=1)).ready
    assert rules.countdown(c, zr22, at=days(15)).blockers[0].code == "no_rules"
    h = ZoneClock(type="high_risk", since=T, last_screening_at=days(7))
    assert rules.countdown(h, zr22, at=days(8)).ready and rules.countdown(h, zr22, at=days(8)).to_type == "medium_risk"
    assert rules.countdown(h, zr21, at=days(7)).blockers[0].code == "no_rules"


# --- upgrade -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("types", "target"), [
    (["control"], "lockdown"),
    (["control", "prevention"], "lockdown"),
    (["lockdown", "control"], None),  # already in a lockdown
    (["prevention"], None),
    ([], None),
    (["medium_risk"], "high_risk"),
    (["high_risk"], None),
    (["low_risk"], None),
])
def test_upgrade_for_positive(types, target):
    assert rules.upgrade_for_positive(types) == target


def test_step_and_severity():
    assert rules.step("control", -1) == "lockdown" and rules.step("lockdown", -1) is None
    assert rules.step("high_risk", 1) == "medium_risk" and rules.step("low_risk", 1) is None
    assert rules.more_severe("prevention") == ["lockdown", "control"]
    assert rules.more_severe("high_risk") == []
