"""Isolation stages from the policy profile: dates, test days and the release decision. Pure: no database.

Day numbering (the same for every stage, stored on :class:`~jingkong.isolation.models.IsolationOrder`):

* ``counted_from`` is **day 0** of the stage. For the first stage it is the last exposure (末次暴露) when the profile
  counts ``quarantine.close_contact.counted_from = "last_exposure"`` and the exposure is known; otherwise the day
  before the person's first day, so day 1 is the day they arrive. Day *N* is ``counted_from + N days``; the stage's
  last day (``ends_on``) is day *length*: a 14-day quarantine after an exposure on 1 January ends on 15 January.
* ``starts_on`` is the first day actually spent in the stage: the arrival (a contact found late does not serve days
  already past; one taken in on the day of the exposure is in quarantine from that day, day 0 — their health code is
  red at once — and day 1 is the next day). Test days that fell before the arrival are not lost: they collapse into
  one entry test on the first day (its day number is stored). A contact arriving after the computed end still gets
  the entry test and a one-day stage (``ends_on = starts_on``): someone must decide with a result in hand.
* The next stage (close contacts: home health monitoring or home isolation, ``home_days``) counts from the day the
  previous stage ended, or from its release if that came later; its test days are those of the profile's home phase.
  It starts (``starts_on``) on the day of the release, its day 0: the person is under home monitoring from the
  moment they leave (the health code turns yellow at once, not the next morning).

Release (:func:`release_check`): every test day up to the end has a negative single-tube result and none is positive;
where the profile asks for 双采双检 the last test is two negative samples; a secondary contact whose profile ties the
release to the index close contact also needs that contact's first tests negative. The stage must have reached its
last day. The reasons it cannot be released are returned as codes (the UI translates them).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

CLOSE, SECONDARY, CASE, OTHER = "close", "secondary", "case", "other"
CENTRAL, HOME_QUARANTINE, HOME_MONITORING, HOSPITAL = "central", "home_quarantine", "home_monitoring", "hospital"

# Release blockers (codes; the pages translate them).
NOT_YET = "not_yet_due"
MISSING = "test_missing"
PENDING = "result_pending"
POSITIVE = "positive_result"
DOUBLE = "double_sampling_missing"
INDEX = "index_contact_tests"
NEGATIVE, POSITIVE_OUTCOME, INVALID = "negative", "positive", "invalid"


class NotManaged(ValueError):
    """The profile does not manage this tier (e.g. secondary contacts with mode 'none')."""


def _get(obj, name):
    return obj[name] if isinstance(obj, Mapping) else getattr(obj, name)


@dataclass(frozen=True)
class Stage:
    """One stage of an isolation: what an :class:`IsolationOrder` stores."""

    mode: str
    tier: str
    counted_from: dt.date  # day 0
    starts_on: dt.date
    ends_on: dt.date
    test_days: tuple[int, ...]  # day numbers (day N = counted_from + N days)
    double_sampling: bool = False  # 双采双检 on the last test day
    next_mode: str | None = None  # the stage that follows a release, if any
    next_days: int = 0
    next_test_days: tuple[int, ...] = ()

    @property
    def length(self) -> int:
        return (self.ends_on - self.counted_from).days

    def test_dates(self) -> list[dt.date]:
        return [self.counted_from + dt.timedelta(days=d) for d in self.test_days]

    def day_of(self, day: dt.date) -> int:
        return (day - self.counted_from).days


def _place(mode: str, tier: str, *, day_zero: dt.date, length: int, test_days: Sequence[int], arrival: dt.date,
           double: bool = False, next_mode: str | None = None, next_days: int = 0,
           next_test_days: Sequence[int] = ()) -> Stage:
    starts = max(arrival, day_zero)  # taken in on the day of the exposure: in quarantine from that day (day 0)
    ends = max(day_zero + dt.timedelta(days=length), starts)
    first = (starts - day_zero).days
    kept = [d for d in test_days if d >= first and d <= (ends - day_zero).days]
    if len(kept) < len(test_days) and first not in kept:
        kept.insert(0, first)  # tests due before the arrival: one entry test on the first day
    if not kept and test_days:
        kept = [first]
    return Stage(mode=mode, tier=tier, counted_from=day_zero, starts_on=starts, ends_on=ends,
                 test_days=tuple(sorted(set(kept))), double_sampling=double, next_mode=next_mode,
                 next_days=next_days, next_test_days=tuple(next_test_days))


def _home_mode(close_rules) -> str:
    return HOME_QUARANTINE if _get(close_rules, "home_mode") == "home_isolation" else HOME_MONITORING


def first_stage(quarantine, *, tier: str, arrival: dt.date, last_exposure: dt.date | None = None,
                mode: str | None = None, hospital_review_days: int | None = None) -> Stage:
    """The first stage for a person of ``tier`` arriving (or ordered home) on ``arrival``.

    ``quarantine`` is the profile's ``quarantine`` section (model or dict). ``mode`` overrides the profile's mode
    (e.g. a close contact ordered into home quarantine because they cannot be moved): dates and tests stay the
    profile's for the tier. Cases go to a designated hospital (``hospital_review_days`` gives the review date).
    """
    if tier == CASE or mode == HOSPITAL:
        if not hospital_review_days:
            raise NotManaged("a hospital order needs isolation.hospital_review_days")
        return _place(HOSPITAL, tier, day_zero=arrival - dt.timedelta(days=1), length=hospital_review_days,
                      test_days=(), arrival=arrival)
    close = _get(quarantine, "close_contact")
    counted = _get(close, "counted_from")
    day_zero = (last_exposure if (counted == "last_exposure" and last_exposure is not None and last_exposure <= arrival)
                else arrival - dt.timedelta(days=1))
    if tier == SECONDARY:
        sec = _get(quarantine, "secondary_contact")
        if _get(sec, "mode") == "none":
            raise NotManaged("the profile does not manage secondary contacts")
        own = CENTRAL if _get(sec, "mode") == "central" else HOME_QUARANTINE
        return _place(mode or own, tier, day_zero=day_zero, length=_get(sec, "days"),
                      test_days=_get(sec, "test_days"), arrival=arrival)
    central_days = _get(close, "central_days")
    home_days = _get(close, "home_days")
    home = _home_mode(close)
    if central_days == 0:  # only a home phase
        return _place(mode or home, tier, day_zero=day_zero, length=home_days, test_days=_get(close, "home_test_days"),
                      arrival=arrival)
    return _place(mode or CENTRAL, tier, day_zero=day_zero, length=central_days,
                  test_days=_get(close, "central_test_days"), arrival=arrival,
                  double=bool(_get(close, "release_double_sampling")),
                  next_mode=home if home_days else None, next_days=home_days,
                  next_test_days=_get(close, "home_test_days") if home_days else ())


def next_stage(stage: Stage, *, released_on: dt.date) -> Stage | None:
    """The stage after ``stage`` is released on ``released_on`` (None: nothing follows)."""
    if not stage.next_mode or not stage.next_days:
        return None
    day_zero = max(stage.ends_on, released_on)
    follow = _place(stage.next_mode, stage.tier, day_zero=day_zero, length=stage.next_days,
                    test_days=stage.next_test_days, arrival=day_zero + dt.timedelta(days=1))
    # The person is in the next stage from the moment of the release (their health code must say so that day),
    # on its day 0: the days are still counted from the end of the previous stage.
    return dataclasses.replace(follow, starts_on=released_on)


def restart(stage: Stage, *, new_exposure: dt.date, original_length: int, original_test_days: Sequence[int],
            today: dt.date) -> Stage:
    """The same stage counted again from a new last exposure (a room mate or household member became positive).

    The stage never gets shorter; tests already past keep their day numbers, the profile's test days are laid over
    the new count, and today's date is the earliest a new test can be due.
    """
    if new_exposure <= stage.counted_from:
        return stage
    ends = max(stage.ends_on, new_exposure + dt.timedelta(days=original_length))
    new_zero = new_exposure
    past = [d for d in stage.test_days if stage.counted_from + dt.timedelta(days=d) < today]
    future_dates = {new_zero + dt.timedelta(days=d) for d in original_test_days}
    future_dates = {d for d in future_dates if today <= d <= ends}
    if not future_dates:
        future_dates = {max(today, stage.starts_on)}
    dates = {stage.counted_from + dt.timedelta(days=d) for d in past} | future_dates
    days = tuple(sorted((d - stage.counted_from).days for d in dates))
    return Stage(mode=stage.mode, tier=stage.tier, counted_from=stage.counted_from, starts_on=stage.starts_on,
                 ends_on=ends, test_days=days, double_sampling=stage.double_sampling, next_mode=stage.next_mode,
                 next_days=stage.next_days, next_test_days=stage.next_test_days)


# --- tests and release ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """One quarantine test: the local date it was sampled and the tube's outcome ("" while at the lab)."""

    sampled_on: dt.date
    outcome: str = ""
    lab: str = ""


@dataclass
class TestDay:
    __test__ = False  # not a pytest class

    day: int
    date: dt.date
    results: list[Result] = field(default_factory=list)

    @property
    def status(self) -> str:
        """'positive', 'negative', 'pending' (sampled, no result), 'missing' (not sampled) or 'invalid'."""
        outcomes = [r.outcome for r in self.results]
        if POSITIVE_OUTCOME in outcomes:
            return POSITIVE_OUTCOME
        if "" in outcomes:
            return "pending"  # a result still at the lab could be positive: wait for it
        if NEGATIVE in outcomes:
            return NEGATIVE
        if INVALID in outcomes:
            return INVALID
        return "missing"

    @property
    def negatives(self) -> int:
        return sum(1 for r in self.results if r.outcome == NEGATIVE)


def test_days_with_results(stage: Stage, results: Sequence[Result]) -> list[TestDay]:
    """Each test day with the samples that count for it: those taken on that date or later, before the next test
    day (a late test still counts; an early one does not). Samples before the first test day count for nothing."""
    days = [TestDay(day=d, date=stage.counted_from + dt.timedelta(days=d)) for d in stage.test_days]
    for r in sorted(results, key=lambda r: r.sampled_on):
        slot = None
        for td in days:
            if r.sampled_on >= td.date:
                slot = td
        if slot is not None:
            slot.results.append(r)
    return days


def due_on(stage: Stage, day: dt.date, results: Sequence[Result] = ()) -> bool:
    """Whether a test falls due on ``day`` and has not been sampled yet."""
    for td in test_days_with_results(stage, results):
        if td.date == day:
            return not td.results
    return False


def release_check(stage: Stage, results: Sequence[Result], *, today: dt.date,
                  index_first_outcomes: Sequence[str] | None = None,
                  index_tests_required: int = 0) -> list[str]:
    """Why the stage cannot be released today (an empty list: it can)."""
    problems: list[str] = []
    if today < stage.ends_on:
        problems.append(NOT_YET)
    days = test_days_with_results(stage, results)
    for td in days:
        status = td.status
        if status == POSITIVE_OUTCOME:
            problems.append(POSITIVE)
        elif status == "pending":
            problems.append(PENDING)
        elif status in ("missing", INVALID):
            problems.append(MISSING)
    if stage.double_sampling and days and days[-1].status == NEGATIVE and days[-1].negatives < 2:
        problems.append(DOUBLE)
    if index_tests_required and index_first_outcomes is not None:
        first = list(index_first_outcomes)[:index_tests_required]
        if len(first) < index_tests_required or any(o != NEGATIVE for o in first):
            problems.append(INDEX)
    return list(dict.fromkeys(problems))
