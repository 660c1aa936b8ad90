"""Pool deconvolution rules, tested without a database (jingkong.testing.deconvolution)."""

from __future__ import annotations

import itertools

import pytest

from jingkong.testing import deconvolution as dc
from jingkong.testing.deconvolution import Effect, PersonState, Task

KINDS = ("routine", "retest", "resample")
OUTCOMES = ("negative", "positive", "invalid")


def test_constants_match_the_model_choices():
    from jingkong.testing.models import Outcome, RetestReason, RetestStatus, TestStatus, TubeKind

    assert {dc.ROUTINE, dc.RETEST, dc.RESAMPLE_KIND} == set(TubeKind.values)
    assert set(dc.OUTCOMES) == set(Outcome.values)
    assert {dc.REASON_POOL_POSITIVE, dc.REASON_INVALID_TUBE} == set(RetestReason.values)
    assert {dc.TASK_OPEN, dc.TASK_SAMPLED, dc.TASK_NEGATIVE, dc.TASK_POSITIVE} <= set(RetestStatus.values)
    assert {dc.STATUS_NEGATIVE, dc.STATUS_POOL_POSITIVE, dc.STATUS_RESAMPLE, dc.STATUS_POSITIVE} == set(TestStatus.values)
    assert {e.value for e in Effect} - {"retest_negative"} == set(TestStatus.values)


# --- decide: every kind × capacity × members × outcome --------------------------------------------------------------

def _expected(kind, capacity, members, outcome):
    if outcome == "invalid":
        return Effect.RESAMPLE
    if outcome == "negative":
        return Effect.NEGATIVE if kind == "routine" else Effect.RETEST_NEGATIVE
    single = capacity == 1 if kind == "routine" else (members <= 1 or capacity == 1)
    return Effect.POSITIVE if single else Effect.POOL_POSITIVE


@pytest.mark.parametrize("kind,capacity,members,outcome", [
    (k, c, m, o) for k, c, m, o in itertools.product(KINDS, (1, 5, 10, 20), (1, 2, 10), OUTCOMES) if m <= c
])
def test_decide_covers_every_combination(kind, capacity, members, outcome):
    d = dc.decide(kind=kind, capacity=capacity, outcome=outcome, members=members)
    assert d.effect == _expected(kind, capacity, members, outcome)
    # What follows from the effect is always the same.
    assert d.individual_positive == (d.effect == Effect.POSITIVE)
    assert d.task_reason == {Effect.POOL_POSITIVE: "pool_positive", Effect.RESAMPLE: "invalid_tube"}.get(d.effect)
    assert d.tube_event == {Effect.POOL_POSITIVE: "testing.pool_positive",
                            Effect.RESAMPLE: "testing.tube_invalid"}.get(d.effect)
    if d.effect == Effect.POSITIVE:
        assert d.via == ("single_tube" if kind == "routine" else "retest")
    else:
        assert d.via is None


def test_a_ten_in_one_tube_sealed_with_one_swab_is_still_a_pool():
    d = dc.decide(kind="routine", capacity=10, outcome="positive", members=1)
    assert d.effect == Effect.POOL_POSITIVE and d.task_reason == "pool_positive"


@pytest.mark.parametrize("kwargs", [
    {"kind": "bogus", "capacity": 1, "outcome": "negative"},
    {"kind": "routine", "capacity": 1, "outcome": "maybe"},
    {"kind": "routine", "capacity": 0, "outcome": "negative"},
])
def test_decide_refuses_unknown_values(kwargs):
    with pytest.raises(ValueError):
        dc.decide(**kwargs)


# --- resolve_tasks ----------------------------------------------------------------------------------------------------

def _task(key, reason="pool_positive", status="open", source=10, linked=False):
    return Task(key, reason, status, source, linked)


@pytest.mark.parametrize("effect,reason,expected", [
    (Effect.POSITIVE, "pool_positive", "positive"),
    (Effect.POSITIVE, "invalid_tube", "positive"),
    (Effect.RETEST_NEGATIVE, "pool_positive", "negative"),
    (Effect.RETEST_NEGATIVE, "invalid_tube", "negative"),
    (Effect.NEGATIVE, "pool_positive", None),  # a routine negative never resolves a pool-positive retest
    (Effect.NEGATIVE, "invalid_tube", "negative"),
    (Effect.POOL_POSITIVE, "pool_positive", None),
    (Effect.POOL_POSITIVE, "invalid_tube", None),
])
def test_which_results_resolve_which_tasks(effect, reason, expected):
    out = dc.resolve_tasks([_task(1, reason)], effect, sampled_at=20, kind="routine" if effect == Effect.NEGATIVE else "retest")
    assert out.get(1) == expected


def test_an_older_swab_never_resolves_a_newer_task():
    tasks = [_task(1, source=30), _task(2, source=20), _task(3, source=None)]
    assert dc.resolve_tasks(tasks, Effect.RETEST_NEGATIVE, sampled_at=25, kind="retest") == {2: "negative"}


def test_a_linked_swab_resolves_its_task_whatever_the_times():
    tasks = [_task(1, source=30, linked=True), _task(2, source=None, linked=True)]
    assert dc.resolve_tasks(tasks, Effect.RETEST_NEGATIVE, sampled_at=25, kind="retest") == {1: "negative", 2: "negative"}


def test_closed_tasks_are_left_alone():
    tasks = [_task(1, status="negative"), _task(2, status="cancelled"), _task(3, status="sampled")]
    assert dc.resolve_tasks(tasks, Effect.POSITIVE, sampled_at=25, kind="retest") == {3: "positive"}


def test_an_invalid_retest_reopens_the_task_it_was_taken_for():
    """Regression: the invalid swab taken for task 3 also reopened task 1, sampled by another retest swab whose result
    was still to come (the door-to-door list showed the person as 'to be sampled' for it again)."""
    tasks = [_task(1, status="sampled"), _task(2, status="open"), _task(3, status="sampled", linked=True)]
    assert dc.resolve_tasks(tasks, Effect.RESAMPLE, sampled_at=25, kind="retest") == {3: dc.REOPEN}
    # A swab not linked to a task (a walk-in retest): the person's sampled tasks are reopened.
    unlinked = [_task(1, status="sampled"), _task(2, status="open")]
    assert dc.resolve_tasks(unlinked, Effect.RESAMPLE, sampled_at=25, kind="retest") == {1: dc.REOPEN}
    # An invalid routine pool reopens nothing: its members get a new resampling task.
    assert dc.resolve_tasks(tasks, Effect.RESAMPLE, sampled_at=25, kind="routine") == {}


def test_new_tasks():
    pool = dc.decide(kind="routine", capacity=10, outcome="positive", members=10)
    invalid = dc.decide(kind="routine", capacity=10, outcome="invalid", members=10)
    negative = dc.decide(kind="routine", capacity=10, outcome="negative", members=10)
    assert dc.needs_new_task(pool, 0) and dc.needs_new_task(pool, 1)
    assert dc.needs_new_task(invalid, 0) and not dc.needs_new_task(invalid, 1)
    assert not dc.needs_new_task(negative, 0)


# --- transition: every status × effect ----------------------------------------------------------------------------------

STATES = {
    None: None,
    "negative": PersonState("negative", False, None, 5, 5, None),
    "pool_positive": PersonState("pool_positive", True, 100, 5, None, None),
    "resample": PersonState("resample", False, None, 5, None, None),
    "positive": PersonState("positive", True, 100, 5, None, 5),
}
# (status before, effect) -> status after, for a swab taken after everything known (sampled_at 10)
TABLE = {
    (None, Effect.NEGATIVE): "negative", (None, Effect.RETEST_NEGATIVE): "negative",
    (None, Effect.POOL_POSITIVE): "pool_positive", (None, Effect.POSITIVE): "positive",
    (None, Effect.RESAMPLE): "resample",
    ("negative", Effect.NEGATIVE): "negative", ("negative", Effect.RETEST_NEGATIVE): "negative",
    ("negative", Effect.POOL_POSITIVE): "pool_positive", ("negative", Effect.POSITIVE): "positive",
    ("negative", Effect.RESAMPLE): "resample",
    ("pool_positive", Effect.NEGATIVE): "pool_positive",  # only the own retest lifts control
    ("pool_positive", Effect.RETEST_NEGATIVE): "negative",
    ("pool_positive", Effect.POOL_POSITIVE): "pool_positive", ("pool_positive", Effect.POSITIVE): "positive",
    ("pool_positive", Effect.RESAMPLE): "pool_positive",
    ("resample", Effect.NEGATIVE): "negative", ("resample", Effect.RETEST_NEGATIVE): "negative",
    ("resample", Effect.POOL_POSITIVE): "pool_positive", ("resample", Effect.POSITIVE): "positive",
    ("resample", Effect.RESAMPLE): "resample",
    **{("positive", e): "positive" for e in Effect},  # final for testing
}


@pytest.mark.parametrize("before,effect", sorted(TABLE, key=str))
def test_transition_table(before, effect):
    after = dc.transition(STATES[before], effect, sampled_at=10, at=200)
    assert after.status == TABLE[(before, effect)]
    assert after.last_sampled_at == 10  # always the latest swab with a result
    assert after.controlled_in_place == (after.status in ("pool_positive", "positive"))
    if after.controlled_in_place:
        # control keeps its original start; a new control starts when the result is applied
        assert after.controlled_since == (100 if STATES[before] and STATES[before].controlled_in_place else 200)
    else:
        assert after.controlled_since is None
    if after.status == "negative":
        assert after.last_negative_sampled_at == 10
    if after.status == "positive" and before != "positive":
        assert after.positive_sampled_at == 10


def test_a_later_negative_never_clears_an_individual_positive():
    s = dc.transition(None, Effect.POSITIVE, sampled_at=10, at=20)
    for effect in (Effect.NEGATIVE, Effect.RETEST_NEGATIVE, Effect.RESAMPLE, Effect.POOL_POSITIVE):
        s = dc.transition(s, effect, sampled_at=30, at=40)
    assert s.status == "positive" and s.controlled_in_place and s.controlled_since == 20
    assert s.positive_sampled_at == 10 and s.last_sampled_at == 30
    assert s.last_negative_sampled_at is None  # negatives after a positive do not count


def test_positive_keeps_the_earliest_positive_swab():
    s = dc.transition(None, Effect.POSITIVE, sampled_at=30, at=40)
    s = dc.transition(s, Effect.POSITIVE, sampled_at=10, at=50)
    assert s.positive_sampled_at == 10 and s.last_sampled_at == 30


def test_own_retest_does_not_lift_control_while_another_pool_task_is_open():
    s = STATES["pool_positive"]
    kept = dc.transition(s, Effect.RETEST_NEGATIVE, sampled_at=10, at=200, pool_tasks_open=True)
    assert kept.status == "pool_positive" and kept.controlled_in_place and kept.last_sampled_at == 10
    lifted = dc.transition(s, Effect.RETEST_NEGATIVE, sampled_at=10, at=200, pool_tasks_open=False)
    assert lifted.status == "negative" and not lifted.controlled_in_place and lifted.controlled_since is None


def test_a_stale_invalid_does_not_undo_a_newer_negative_and_vice_versa():
    negative = PersonState("negative", False, None, 50, 50, None)
    after = dc.transition(negative, Effect.RESAMPLE, sampled_at=40, at=60)
    assert after.status == "negative" and after.last_sampled_at == 50
    resample = PersonState("resample", False, None, 50, None, None)
    after = dc.transition(resample, Effect.NEGATIVE, sampled_at=40, at=60)
    assert after == resample  # the swab predates the invalid one: still to be resampled
    assert dc.transition(resample, Effect.NEGATIVE, sampled_at=50, at=60).status == "negative"


def test_fold_applies_in_sampling_order_and_severest_last_at_a_tie():
    # Delivered out of order: the pool positive (t=10) then its own retest (t=20) → negative, control lifted.
    s = dc.fold(None, [(Effect.RETEST_NEGATIVE, 20), (Effect.POOL_POSITIVE, 10)], at=100)
    assert s.status == "negative" and not s.controlled_in_place
    # Same swab time: the positive pool wins over a negative.
    s = dc.fold(None, [(Effect.POOL_POSITIVE, 10), (Effect.NEGATIVE, 10)], at=100)
    assert s.status == "pool_positive"


# --- settle_person: tasks and state together ----------------------------------------------------------------------------

def _member(kind, capacity, outcome, sampled_at, tube, members=1, sample=None, retest_of=None):
    return dc.MemberResult(dc.decide(kind=kind, capacity=capacity, outcome=outcome, members=members), sampled_at, kind,
                           tube, sample or tube * 100, retest_of)


def test_settle_pool_positive_opens_one_task_and_controls():
    s = dc.settle_person(None, [], [_member("routine", 10, "positive", 10, 1, members=10)], at=100)
    assert s.state.status == "pool_positive" and s.state.controlled_in_place and s.state.controlled_since == 100
    assert s.new_tasks == [dc.NewTask(1, "pool_positive", "open")] and s.task_updates == {}


def test_settle_retest_negative_resolves_the_linked_task_and_lifts_control():
    before = PersonState("pool_positive", True, 100, 10, None, None)
    tasks = [Task(7, "pool_positive", "sampled", 10)]
    s = dc.settle_person(before, tasks, [_member("retest", 1, "negative", 20, 2, sample=55, retest_of=7)], at=300)
    assert s.task_updates == {7: ("negative", 55)} and s.new_tasks == []
    assert s.state.status == "negative" and not s.state.controlled_in_place and s.state.last_negative_sampled_at == 20


def test_settle_two_positive_pools_one_retest_resolves_both():
    before = PersonState("pool_positive", True, 100, 10, None, None)
    tasks = [Task(7, "pool_positive", "open", 5), Task(8, "pool_positive", "open", 10)]
    s = dc.settle_person(before, tasks, [_member("retest", 1, "negative", 20, 2)], at=300)
    assert s.task_updates == {7: ("negative", 200), 8: ("negative", 200)}
    assert s.state.status == "negative"


def test_settle_a_retest_older_than_another_positive_pool_keeps_control():
    before = PersonState("pool_positive", True, 100, 30, None, None)
    tasks = [Task(7, "pool_positive", "open", 5), Task(8, "pool_positive", "open", 30)]
    s = dc.settle_person(before, tasks, [_member("retest", 1, "negative", 20, 2)], at=300)
    assert s.task_updates == {7: ("negative", 200)}  # task 8's pool was sampled after the retest
    assert s.state.status == "pool_positive" and s.state.controlled_in_place


def test_settle_pool_positive_and_its_retest_in_one_upload():
    s = dc.settle_person(None, [], [_member("retest", 1, "negative", 20, 2),
                                    _member("routine", 10, "positive", 10, 1, members=10)], at=300)
    assert s.new_tasks == [dc.NewTask(1, "pool_positive", "negative", 200)]
    assert s.state.status == "negative" and not s.state.controlled_in_place


def test_settle_invalid_retest_reopens_instead_of_a_new_task():
    before = PersonState("pool_positive", True, 100, 10, None, None)
    tasks = [Task(7, "pool_positive", "sampled", 10)]
    s = dc.settle_person(before, tasks, [_member("retest", 1, "invalid", 20, 2, retest_of=7)], at=300)
    assert s.task_updates == {7: (dc.REOPEN, None)} and s.new_tasks == []
    assert s.state.status == "pool_positive" and s.state.controlled_in_place


def test_settle_invalid_routine_tube_then_negative_resample():
    s = dc.settle_person(None, [], [_member("routine", 10, "invalid", 10, 1, members=10)], at=100)
    assert s.state.status == "resample" and s.new_tasks == [dc.NewTask(1, "invalid_tube", "open")]
    later = dc.settle_person(s.state, [Task(9, "invalid_tube", "sampled", 10)],
                             [_member("resample", 1, "negative", 30, 3, retest_of=9)], at=200)
    assert later.task_updates == {9: ("negative", 300)} and later.state.status == "negative"


def test_settle_individual_positive_closes_open_tasks_as_positive():
    tasks = [Task(7, "pool_positive", "sampled", 10), Task(8, "invalid_tube", "open", 5)]
    before = PersonState("pool_positive", True, 100, 10, None, None)
    s = dc.settle_person(before, tasks, [_member("retest", 1, "positive", 20, 2, retest_of=7)], at=300)
    assert s.task_updates == {7: ("positive", 200), 8: ("positive", 200)}
    assert s.state.status == "positive" and s.state.controlled_since == 100 and s.state.positive_sampled_at == 20


def test_restricts_or_releases():
    neg = STATES["negative"]
    assert not dc.restricts_or_releases(None, neg)
    assert not dc.restricts_or_releases(neg, PersonState("negative", False, None, 9, 9, None))
    assert dc.restricts_or_releases(neg, STATES["pool_positive"])
    assert dc.restricts_or_releases(None, STATES["resample"])
    assert dc.restricts_or_releases(STATES["pool_positive"], STATES["positive"])
    assert dc.restricts_or_releases(STATES["pool_positive"], neg)  # control lifted
    assert not dc.restricts_or_releases(STATES["pool_positive"], STATES["pool_positive"])
