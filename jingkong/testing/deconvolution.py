"""Pool deconvolution (混采拆分): pure rules, no database.

Three questions, each a small function tested directly (jingkong/testing/tests/test_deconvolution.py); the set-based
application to thousands of tubes lives in :mod:`jingkong.testing.results`.

1. **What does a tube result mean for each swab in it?** :func:`decide` maps (tube kind, pool size, swabs, outcome)
   to one :class:`Effect` shared by every member, plus what follows for the tube (a retest/resample task per member,
   a tube event, an individual-positive event per member):

   ======================================  ==========================  =========================================
   tube                                    outcome                     each member
   ======================================  ==========================  =========================================
   routine, pooled (capacity > 1)          negative                    ``NEGATIVE`` for the round
   routine, single (capacity 1)            negative                    ``NEGATIVE``
   retest / resample tube (any size)       negative                    ``RETEST_NEGATIVE``: own retest negative —
                                                                       resolves their retest tasks, lifts control
   pooled (capacity > 1, or a retest tube  positive                    ``POOL_POSITIVE``: controlled in place
   holding several swabs)                                              (就地管控) + one single-tube retest task
   single (routine capacity 1, or a        positive                    ``POSITIVE``: individual positive (event
   retest/resample tube with one swab)                                 ``testing.individual_positive``)
   any                                     invalid                     ``RESAMPLE``: a resampling task each (a
                                                                       retest that came back invalid reopens the
                                                                       retest task instead)
   ======================================  ==========================  =========================================

   A routine tube of capacity 10 that was sealed early with one swab is still a pool (capacity > 1): it is treated
   like any positive pool (control in place and a single-tube retest), the conservative reading.

2. **Which open retest tasks does a member's result resolve?** :func:`resolve_tasks`. A task is only resolved by a
   swab taken at or after the swab of the pool that created it (a late-arriving older result never closes a newer
   task). An individual positive resolves every open task of the person as positive; an own retest negative resolves
   them all as negative; a routine negative resolves only resampling tasks (an invalid tube), never a pool-positive
   retest; an invalid retest reopens the task it was sampled for.

3. **How does a person's testing state evolve?** :func:`transition` (one effect) and :func:`fold` (several results
   arriving together, applied in sampling order). The rules:

   * an individual ``positive`` is final for testing: later negatives never clear it (case management does);
   * ``pool_positive`` (controlled in place) is cleared only by the person's own negative retest, and only once no
     pool-positive retest task of theirs is still open; a routine negative pool meanwhile changes nothing;
   * ``resample`` (invalid tube) is cleared by a negative from a swab taken at or after the invalid one;
   * a negative counts (``last_negative_sampled_at``) only when it leaves the person ``negative``;
   * ``last_sampled_at`` is the latest sampling time of any result applied.

Times are any totally ordered values (aware datetimes in the application, plain numbers in some tests).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

# Model value strings are repeated here (not imported) so that this module stays free of Django; a test checks that
# they equal jingkong.testing.models' choices.
ROUTINE, RETEST, RESAMPLE_KIND = "routine", "retest", "resample"
OUTCOMES = ("negative", "positive", "invalid")
REASON_POOL_POSITIVE, REASON_INVALID_TUBE = "pool_positive", "invalid_tube"
TASK_OPEN, TASK_SAMPLED, TASK_NEGATIVE, TASK_POSITIVE = "open", "sampled", "negative", "positive"
STATUS_NEGATIVE, STATUS_POOL_POSITIVE, STATUS_RESAMPLE, STATUS_POSITIVE = "negative", "pool_positive", "resample", "positive"

EVENT_POOL_POSITIVE = "testing.pool_positive"
EVENT_TUBE_INVALID = "testing.tube_invalid"
EVENT_INDIVIDUAL_POSITIVE = "testing.individual_positive"


class Effect(enum.StrEnum):
    """What a tube result means for one member."""

    NEGATIVE = "negative"  # negative for the round (routine tube)
    RETEST_NEGATIVE = "retest_negative"  # own retest/resample negative: resolves retests, lifts control in place
    POOL_POSITIVE = "pool_positive"  # positive pool: control in place + single-tube retest
    POSITIVE = "positive"  # individual positive
    RESAMPLE = "resample"  # invalid tube: to be sampled again


# At equal sampling times the more severe effect is applied last, so it wins.
SEVERITY = {Effect.NEGATIVE: 0, Effect.RETEST_NEGATIVE: 1, Effect.RESAMPLE: 2, Effect.POOL_POSITIVE: 3,
            Effect.POSITIVE: 4}


@dataclass(frozen=True)
class TubeDecision:
    effect: Effect
    task_reason: str | None  # a new retest/resample task per member with this reason (None: no task)
    tube_event: str | None  # testing.pool_positive / testing.tube_invalid for the tube, or None
    individual_positive: bool  # emit testing.individual_positive per member
    via: str | None  # "single_tube" | "retest" for individual positives


def is_single(*, kind: str, capacity: int, members: int) -> bool:
    """A tube whose positive result identifies its person: a routine tube of capacity 1, or a retest/resample tube
    holding one swab. A retest tube holding several swabs is a pool."""
    if kind == ROUTINE:
        return capacity == 1
    return members <= 1 or capacity == 1


@functools.lru_cache(maxsize=512)
def decide(*, kind: str, capacity: int, outcome: str, members: int = 1) -> TubeDecision:
    """What a tube's result means for each of its ``members`` swabs (see the table in the module docstring)."""
    if kind not in (ROUTINE, RETEST, RESAMPLE_KIND):
        raise ValueError(f"unknown tube kind {kind!r}")
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    if capacity < 1:
        raise ValueError(f"capacity must be at least 1, got {capacity}")
    if outcome == "invalid":
        return TubeDecision(Effect.RESAMPLE, REASON_INVALID_TUBE, EVENT_TUBE_INVALID, False, None)
    if outcome == "negative":
        effect = Effect.NEGATIVE if kind == ROUTINE else Effect.RETEST_NEGATIVE
        return TubeDecision(effect, None, None, False, None)
    if is_single(kind=kind, capacity=capacity, members=members):
        return TubeDecision(Effect.POSITIVE, None, None, True, "single_tube" if kind == ROUTINE else "retest")
    return TubeDecision(Effect.POOL_POSITIVE, REASON_POOL_POSITIVE, EVENT_POOL_POSITIVE, False, None)


# --- retest tasks ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """An open (or sampled) retest task of the person, as seen by :func:`resolve_tasks`."""

    key: Any  # the task's id (or any key the caller uses)
    reason: str  # pool_positive | invalid_tube
    status: str  # open | sampled
    source_sampled_at: Any  # when the person's swab in the task's source tube was taken (None: unknown)
    linked: bool = False  # the resolving swab was taken for this very task (Sample.retest_of)


REOPEN = "reopen"


def resolve_tasks(tasks: Iterable[Task], effect: Effect, *, sampled_at: Any, kind: str) -> dict[Any, str]:
    """Which tasks a member's result resolves: ``{task key: new status}`` (``REOPEN``: back to "to be sampled").

    Only open/sampled tasks whose source swab was taken at or before this swab (or that the swab was taken for) are
    considered. ``kind`` is the kind of the resolving tube.
    """
    out: dict[Any, str] = {}
    tasks = list(tasks)
    # A swab taken for a known task (Sample.retest_of) that comes back invalid reopens that task only; another task
    # of the person sampled by a different swab still waits for that swab's result.
    swab_linked = any(t.linked for t in tasks)
    for task in tasks:
        if task.status not in (TASK_OPEN, TASK_SAMPLED):
            continue
        if not task.linked and (task.source_sampled_at is None or sampled_at is None
                                or task.source_sampled_at > sampled_at):
            continue
        if effect == Effect.POSITIVE:
            out[task.key] = TASK_POSITIVE
        elif effect == Effect.RETEST_NEGATIVE:
            out[task.key] = TASK_NEGATIVE
        elif effect == Effect.NEGATIVE:
            if task.reason == REASON_INVALID_TUBE:
                out[task.key] = TASK_NEGATIVE
        elif effect == Effect.RESAMPLE:
            # An invalid retest/resample swab: the task it was taken for must be sampled again.
            if kind != ROUTINE and (task.linked or (not swab_linked and task.status == TASK_SAMPLED)):
                out[task.key] = REOPEN
    return out


def needs_new_task(decision: TubeDecision, reopened: int) -> bool:
    """Whether a member gets a new task: pool positives always (one per positive pool); invalid tubes unless the
    member's invalid swab was a retest whose task was reopened instead."""
    if decision.task_reason is None:
        return False
    if decision.effect == Effect.RESAMPLE:
        return reopened == 0
    return True


# --- person state ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonState:
    """The testing state of one person (mirrors jingkong.testing.models.PersonTestState)."""

    status: str | None = None  # None: no result yet
    controlled_in_place: bool = False
    controlled_since: Any = None
    last_sampled_at: Any = None
    last_negative_sampled_at: Any = None
    positive_sampled_at: Any = None


def _max(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a if a >= b else b


def _min(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a if a <= b else b


def transition(state: PersonState | None, effect: Effect, *, sampled_at: Any, at: Any,
               pool_tasks_open: bool = False) -> PersonState:
    """The person's state after one member effect.

    ``sampled_at``: when the person's swab was taken; ``at``: when the result is applied (starts control in place);
    ``pool_tasks_open``: after this upload the person still has an open pool-positive retest task (then an own
    negative retest does not lift control yet).
    """
    s = state or PersonState()
    last_sampled = _max(s.last_sampled_at, sampled_at)
    if s.status == STATUS_POSITIVE:  # final for testing
        positive_at = _min(s.positive_sampled_at, sampled_at) if effect == Effect.POSITIVE else s.positive_sampled_at
        return replace(s, last_sampled_at=last_sampled, positive_sampled_at=positive_at)
    since = s.controlled_since if s.controlled_in_place and s.controlled_since is not None else at
    if effect == Effect.POSITIVE:
        return PersonState(STATUS_POSITIVE, True, since, last_sampled, s.last_negative_sampled_at, sampled_at)
    if effect == Effect.POOL_POSITIVE:
        return PersonState(STATUS_POOL_POSITIVE, True, since, last_sampled, s.last_negative_sampled_at, None)
    if effect in (Effect.NEGATIVE, Effect.RETEST_NEGATIVE):
        if s.status == STATUS_POOL_POSITIVE and (effect == Effect.NEGATIVE or pool_tasks_open):
            return replace(s, last_sampled_at=last_sampled)  # only the own retest lifts control
        if s.status == STATUS_RESAMPLE and s.last_sampled_at is not None and sampled_at < s.last_sampled_at:
            return s  # a swab older than the invalid one: still to be resampled
        return PersonState(STATUS_NEGATIVE, False, None, last_sampled, _max(s.last_negative_sampled_at, sampled_at),
                           None)
    if effect == Effect.RESAMPLE:
        if s.status == STATUS_POOL_POSITIVE:
            return replace(s, last_sampled_at=last_sampled)
        if s.status == STATUS_NEGATIVE and s.last_negative_sampled_at is not None \
                and s.last_negative_sampled_at >= sampled_at:
            return replace(s, last_sampled_at=last_sampled)  # a newer negative already counts
        return PersonState(STATUS_RESAMPLE, False, None, last_sampled, s.last_negative_sampled_at, None)
    raise ValueError(f"unknown effect {effect!r}")


def fold(state: PersonState | None, effects: Iterable[tuple[Effect, Any]], *, at: Any,
         pool_tasks_open: bool = False) -> PersonState | None:
    """Apply several ``(effect, sampled_at)`` of one person at once, in sampling order (severest last at a tie)."""
    ordered = sorted(effects, key=lambda e: (e[1], SEVERITY[e[0]]))
    for effect, sampled_at in ordered:
        state = transition(state, effect, sampled_at=sampled_at, at=at, pool_tasks_open=pool_tasks_open)
    return state


# --- one person, several results at once ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberResult:
    """One swab of the person in a tube whose result is being applied."""

    decision: TubeDecision
    sampled_at: Any
    kind: str  # the tube's kind
    tube: Any  # the tube's key (id)
    sample: Any = None  # the swab's key (id)
    retest_of: Any = None  # the task key this swab was taken for (Sample.retest_of), if known


@dataclass(frozen=True)
class NewTask:
    source_tube: Any
    reason: str
    status: str  # open, or already resolved by a later swab in the same upload
    sample: Any = None  # the resolving swab when resolved


@dataclass
class Settlement:
    state: PersonState | None
    task_updates: dict  # existing task key -> (new status | REOPEN, resolving sample key)
    new_tasks: list  # NewTask


def settle_person(state: PersonState | None, tasks: Iterable[Task], results: Iterable[MemberResult], *,
                  at: Any) -> Settlement:
    """Apply all results of one person in an upload, in sampling order (the severest last at a tie).

    For each swab: resolve the open tasks it can resolve (:func:`resolve_tasks`), open a new task when the tube asks
    for one (:func:`needs_new_task`), then move the state (:func:`transition`) knowing whether a pool-positive task
    is still open. Tasks created earlier in the same upload can be resolved by a later swab of the same upload.
    """
    running: dict = {}
    for t in tasks:
        running[("old", t.key)] = t
    updates: dict = {}
    new: dict = {}  # ("new", tube) -> NewTask
    ordered = sorted(results, key=lambda r: (r.sampled_at, SEVERITY[r.decision.effect]))
    for r in ordered:
        view = [replace(t, key=k, linked=(k[0] == "old" and r.retest_of is not None and k[1] == r.retest_of))
                for k, t in running.items()]
        resolved = resolve_tasks(view, r.decision.effect, sampled_at=r.sampled_at, kind=r.kind)
        reopened = 0
        for key, status in resolved.items():
            task = running[key]
            if status == REOPEN:
                reopened += 1
                running[key] = replace(task, status=TASK_OPEN)
            else:
                running[key] = replace(task, status=status)
            if key[0] == "old":
                updates[key[1]] = (status, None if status == REOPEN else r.sample)
            else:
                new[key] = NewTask(key[1], task.reason, TASK_OPEN if status == REOPEN else status,
                                   None if status == REOPEN else r.sample)
        if needs_new_task(r.decision, reopened):
            key = ("new", r.tube)
            if key not in running:
                running[key] = Task(key=key, reason=r.decision.task_reason, status=TASK_OPEN,
                                    source_sampled_at=r.sampled_at)
                new[key] = NewTask(r.tube, r.decision.task_reason, TASK_OPEN)
        pool_open = any(t.reason == REASON_POOL_POSITIVE and t.status in (TASK_OPEN, TASK_SAMPLED)
                        for t in running.values())
        state = transition(state, r.decision.effect, sampled_at=r.sampled_at, at=at, pool_tasks_open=pool_open)
    return Settlement(state, updates, list(new.values()))


def restricts_or_releases(before: PersonState | None, after: PersonState | None) -> bool:
    """A change an officer must be able to trace per person (audited one record each): control in place started or
    lifted, an individual positive, or a resampling order. Routine negatives are audited per grid."""
    b_status = before.status if before else None
    a_status = after.status if after else None
    if b_status == a_status and bool(before and before.controlled_in_place) == bool(after and after.controlled_in_place):
        return False
    return a_status in (STATUS_POOL_POSITIVE, STATUS_POSITIVE, STATUS_RESAMPLE) or (
        bool(before and before.controlled_in_place) and not (after and after.controlled_in_place))
