"""schedule.py against both shipped profiles (read from the JSON files, validated by the schema; no database)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from jingkong.isolation import schedule as s
from jingkong.policy.schema import ProfileDocument

PROFILES = Path(__file__).resolve().parents[2] / "policy" / "profiles"
D = dt.date


def rules(code: str):
    return ProfileDocument.model_validate(json.loads((PROFILES / f"{code}.json").read_text())).rules


Q21 = rules("cn-8th-2021").quarantine
Q22 = rules("cn-9th-2022").quarantine


def dates(stage):
    return [d.isoformat() for d in stage.test_dates()]


def test_2021_close_contact_14_days_central_tests_1_4_7_14_then_7_home_tests_2_7():
    stage = s.first_stage(Q21, tier="close", last_exposure=D(2022, 1, 1), arrival=D(2022, 1, 2))
    assert (stage.mode, stage.counted_from, stage.starts_on, stage.ends_on) == ("central", D(2022, 1, 1),
                                                                                D(2022, 1, 2), D(2022, 1, 15))
    assert stage.test_days == (1, 4, 7, 14)
    assert dates(stage) == ["2022-01-02", "2022-01-05", "2022-01-08", "2022-01-15"]
    assert stage.double_sampling is True
    home = s.next_stage(stage, released_on=D(2022, 1, 15))
    # Home monitoring from the release (its day 0, the code turns yellow at once); days counted from day 14.
    assert (home.mode, home.counted_from, home.starts_on, home.ends_on, home.test_days) == (
        "home_monitoring", D(2022, 1, 15), D(2022, 1, 15), D(2022, 1, 22), (2, 7))
    assert dates(home) == ["2022-01-17", "2022-01-22"]
    assert s.next_stage(home, released_on=D(2022, 1, 22)) is None


def test_2022_close_contact_7_plus_3_tests_1_2_3_5_7_and_home_day_3_without_double_sampling():
    stage = s.first_stage(Q22, tier="close", last_exposure=D(2022, 7, 1), arrival=D(2022, 7, 2))
    assert (stage.mode, stage.ends_on, stage.test_days, stage.double_sampling) == ("central", D(2022, 7, 8),
                                                                                   (1, 2, 3, 5, 7), False)
    home = s.next_stage(stage, released_on=D(2022, 7, 8))
    assert (home.mode, home.starts_on, home.ends_on, home.test_days) == ("home_monitoring", D(2022, 7, 8),
                                                                          D(2022, 7, 11), (3,))
    late = s.next_stage(stage, released_on=D(2022, 7, 10))  # released late: counted from the release
    assert (late.counted_from, late.starts_on, late.ends_on) == (D(2022, 7, 10), D(2022, 7, 10), D(2022, 7, 13))


def test_secondary_contacts_2021_central_7_days_2022_home_7_days_tests_1_4_7_nothing_after():
    a = s.first_stage(Q21, tier="secondary", last_exposure=D(2022, 1, 3), arrival=D(2022, 1, 4))
    b = s.first_stage(Q22, tier="secondary", last_exposure=D(2022, 7, 3), arrival=D(2022, 7, 4))
    assert (a.mode, a.ends_on, a.test_days, a.next_mode) == ("central", D(2022, 1, 10), (1, 4, 7), None)
    assert (b.mode, b.ends_on, b.test_days, b.next_mode) == ("home_quarantine", D(2022, 7, 10), (1, 4, 7), None)


@pytest.mark.parametrize("q", [Q21, Q22], ids=["2021", "2022"])
@pytest.mark.parametrize("tier", ["close", "secondary"])
@pytest.mark.parametrize("late", range(-1, 20))  # -1: taken in on the day of the exposure (day 0)
def test_every_arrival_delay_keeps_the_end_and_collapses_missed_tests_into_one_entry_test(q, tier, late):
    exposure = D(2022, 1, 1)
    arrival = exposure + dt.timedelta(days=1 + late)
    stage = s.first_stage(q, tier=tier, last_exposure=exposure, arrival=arrival)
    profile_days = (q.close_contact.central_test_days if tier == "close" else q.secondary_contact.test_days)
    length = q.close_contact.central_days if tier == "close" else q.secondary_contact.days
    assert stage.counted_from == exposure
    assert stage.starts_on == arrival
    assert stage.ends_on == max(exposure + dt.timedelta(days=length), arrival)
    first = stage.day_of(arrival)
    expected = [d for d in profile_days if first <= d <= stage.length]
    if len(expected) < len(profile_days) and first not in expected:
        expected = [first, *expected]
    assert list(stage.test_days) == (expected or [first])
    assert all(stage.starts_on <= d <= stage.ends_on for d in stage.test_dates())


@pytest.mark.parametrize("q", [Q21, Q22], ids=["2021", "2022"])
def test_unknown_exposure_counts_from_the_arrival(q):
    stage = s.first_stage(q, tier="close", last_exposure=None, arrival=D(2022, 1, 10))
    assert stage.counted_from == D(2022, 1, 9) and stage.starts_on == D(2022, 1, 10)
    assert stage.test_days == tuple(q.close_contact.central_test_days)
    future = s.first_stage(q, tier="close", last_exposure=D(2022, 1, 12), arrival=D(2022, 1, 10))
    assert future.counted_from == D(2022, 1, 9)  # an exposure after the arrival is bad data: not used


def test_counted_from_quarantine_start_ignores_the_exposure():
    q = Q22.model_copy(update={"close_contact": Q22.close_contact.model_copy(update={"counted_from": "quarantine_start"})})
    stage = s.first_stage(q, tier="close", last_exposure=D(2022, 7, 1), arrival=D(2022, 7, 5))
    assert stage.starts_on == D(2022, 7, 5) and stage.ends_on == D(2022, 7, 11)


def test_a_mode_override_keeps_the_profile_dates_and_hospital_needs_its_review_days():
    stage = s.first_stage(Q21, tier="close", last_exposure=D(2022, 1, 1), arrival=D(2022, 1, 2), mode="home_quarantine")
    assert stage.mode == "home_quarantine" and stage.ends_on == D(2022, 1, 15)
    h = s.first_stage(Q21, tier="case", arrival=D(2022, 1, 2), hospital_review_days=14)
    assert (h.mode, h.starts_on, h.ends_on, h.test_days) == ("hospital", D(2022, 1, 2), D(2022, 1, 15), ())
    with pytest.raises(s.NotManaged):
        s.first_stage(Q21, tier="case", arrival=D(2022, 1, 2))


def test_secondary_contacts_not_managed():
    q = Q22.model_copy(update={"secondary_contact": Q22.secondary_contact.model_copy(
        update={"mode": "none", "days": 0, "test_days": []})})
    with pytest.raises(s.NotManaged):
        s.first_stage(q, tier="secondary", last_exposure=D(2022, 7, 1), arrival=D(2022, 7, 2))


def _neg(day, n=1, lab="L1"):
    return [s.Result(sampled_on=day, outcome="negative", lab=f"{lab}{i}") for i in range(n)]


def test_release_2021_needs_every_test_negative_and_two_samples_on_the_last_day():
    stage = s.first_stage(Q21, tier="close", last_exposure=D(2022, 1, 1), arrival=D(2022, 1, 2))
    ok = [r for d in stage.test_dates()[:-1] for r in _neg(d)]
    last = stage.test_dates()[-1]
    assert s.release_check(stage, ok + _neg(last, 2), today=stage.ends_on) == []
    assert s.release_check(stage, ok + _neg(last, 1), today=stage.ends_on) == [s.DOUBLE]
    assert s.NOT_YET in s.release_check(stage, ok + _neg(last, 2), today=stage.ends_on - dt.timedelta(days=1))
    assert s.MISSING in s.release_check(stage, ok[1:] + _neg(last, 2), today=stage.ends_on)
    pending = ok + [s.Result(sampled_on=last, outcome="")]
    assert s.PENDING in s.release_check(stage, pending, today=stage.ends_on)
    positive = ok + [s.Result(sampled_on=stage.test_dates()[1], outcome="positive")] + _neg(last, 2)
    assert s.POSITIVE in s.release_check(stage, positive, today=stage.ends_on)


def test_release_2022_single_samples_suffice_and_late_tests_count_early_ones_do_not():
    stage = s.first_stage(Q22, tier="close", last_exposure=D(2022, 7, 1), arrival=D(2022, 7, 2))
    tests = stage.test_dates()
    late = [r for d in tests for r in _neg(d)]
    late[3] = s.Result(sampled_on=tests[3] + dt.timedelta(days=1), outcome="negative")  # day 5 sampled on day 6
    assert s.release_check(stage, late, today=stage.ends_on) == []
    early = [r for d in tests for r in _neg(d)]
    early[0] = s.Result(sampled_on=tests[0] - dt.timedelta(days=1), outcome="negative")
    assert s.release_check(stage, early, today=stage.ends_on) == [s.MISSING]


def test_secondary_release_waits_for_the_index_contacts_first_two_tests():
    stage = s.first_stage(Q22, tier="secondary", last_exposure=D(2022, 7, 1), arrival=D(2022, 7, 2))
    ok = [r for d in stage.test_dates() for r in _neg(d)]
    need = Q22.secondary_contact.release_requires_index_negative_tests
    assert s.release_check(stage, ok, today=stage.ends_on, index_first_outcomes=["negative", "negative"],
                           index_tests_required=need) == []
    assert s.release_check(stage, ok, today=stage.ends_on, index_first_outcomes=["negative"],
                           index_tests_required=need) == [s.INDEX]


def test_due_today_only_when_not_yet_sampled():
    stage = s.first_stage(Q22, tier="close", last_exposure=D(2022, 7, 1), arrival=D(2022, 7, 2))
    assert s.due_on(stage, D(2022, 7, 2)) is True
    assert s.due_on(stage, D(2022, 7, 2), _neg(D(2022, 7, 2))) is False
    assert s.due_on(stage, D(2022, 7, 5)) is False  # day 4 is no test day in 2022


@pytest.mark.parametrize("q", [Q21, Q22], ids=["2021", "2022"])
def test_restart_from_a_new_exposure_never_shortens_and_keeps_past_tests(q):
    stage = s.first_stage(q, tier="close", last_exposure=D(2022, 1, 1), arrival=D(2022, 1, 2))
    cc = q.close_contact
    for shift in range(0, cc.central_days + 2):
        new = D(2022, 1, 1) + dt.timedelta(days=shift)
        today = max(new, stage.starts_on)
        again = s.restart(stage, new_exposure=new, original_length=cc.central_days,
                          original_test_days=cc.central_test_days, today=today)
        assert again.ends_on == max(stage.ends_on, new + dt.timedelta(days=cc.central_days))
        assert again.counted_from == stage.counted_from and again.starts_on == stage.starts_on
        assert [d for d in stage.test_days if stage.counted_from + dt.timedelta(days=d) < today] == \
            [d for d in again.test_days if stage.counted_from + dt.timedelta(days=d) < today]
        future = {new + dt.timedelta(days=d) for d in cc.central_test_days}
        assert {d for d in future if today <= d <= again.ends_on} <= set(again.test_dates())
