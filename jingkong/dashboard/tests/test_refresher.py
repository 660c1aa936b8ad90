"""The refresher's robustness: a failing family neither stops the others nor is retried on every idle second, a
database error in one family leaves the connection usable for the next (PostgreSQL aborts the whole transaction
otherwise), a family claimed by another process is left alone, events arriving while a family computes are taken in
by the next pass, the local day's change makes a family due, and the idle pass — run every second by the worker and
every 2 s by each open screen — costs a handful of queries when nothing is due."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jingkong.core import clock
from jingkong.core.events import emit
from jingkong.dashboard import families as registry
from jingkong.dashboard import refresher
from jingkong.dashboard.models import RefreshState

pytestmark = pytest.mark.django_db


def _family(monkeypatch, name: str, compute, *, triggers=("test.refresher_",), min_interval: float = 2.0,
            marks=None) -> registry.Family:
    family = registry.Family(name=name, triggers=triggers, compute=compute, marks=marks, min_interval=min_interval)
    monkeypatch.setitem(registry._FAMILIES, name, family)
    return family


def _backdate(name: str, seconds: float) -> None:
    state = RefreshState.objects.get(family=name)
    state.refreshed_at -= dt.timedelta(seconds=seconds)
    state.save(update_fields=["refreshed_at"])


def test_a_failing_family_leaves_the_others_records_its_error_and_backs_off(monkeypatch):
    calls = []

    def boom(at):
        calls.append(at)
        raise RuntimeError("no such source")

    _family(monkeypatch, "t_boom", boom)
    _family(monkeypatch, "t_fine", lambda at: [])
    assert refresher.run_pending(only=["t_boom", "t_fine"]) == ["t_fine"]
    state = RefreshState.objects.get(family="t_boom")
    assert "no such source" in state.error
    assert state.refreshed_at is None
    # released — not held for the full claim (300 s) — but not retried on the next idle second either
    wait = (state.claimed_until - dt.datetime.now(dt.UTC)).total_seconds()
    assert 0 < wait <= refresher.ERROR_BACKOFF + 1
    assert refresher.run_pending(only=["t_boom"]) == []
    assert len(calls) == 1
    # once the back-off has passed it is tried again, and a success clears the error
    RefreshState.objects.filter(family="t_boom").update(claimed_until=dt.datetime.now(dt.UTC) - dt.timedelta(1))
    monkeypatch.setitem(registry._FAMILIES, "t_boom", registry.Family("t_boom", ("test.refresher_",), lambda at: []))
    assert refresher.run_pending(only=["t_boom"]) == ["t_boom"]
    state = RefreshState.objects.get(family="t_boom")
    assert state.error == "" and state.claimed_until is None and state.refreshed_at is not None


def test_a_database_error_in_one_family_does_not_break_the_next_one(monkeypatch):
    """Inside a transaction (the test's, or any caller's), a failed statement aborts it on PostgreSQL: each family
    runs in a savepoint so the next family's queries still work."""

    def bad_sql(at):
        with connection.cursor() as cursor:
            cursor.execute("SELECT no_such_column FROM dashboard_figure")
        return []

    def reads(at):
        assert RefreshState.objects.count() >= 0
        return []

    _family(monkeypatch, "t_a_bad", bad_sql)
    _family(monkeypatch, "t_b_good", reads)
    assert refresher.run_pending(only=["t_a_bad", "t_b_good"]) == ["t_b_good"]
    assert RefreshState.objects.get(family="t_a_bad").error
    assert RefreshState.objects.get(family="t_b_good").error == ""


def test_a_family_claimed_by_another_process_is_left_alone(monkeypatch):
    calls = []
    _family(monkeypatch, "t_claimed", lambda at: calls.append(at) or [])
    RefreshState.objects.create(family="t_claimed",
                                claimed_until=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60))
    assert refresher.run_pending(only=["t_claimed"]) == []
    assert refresher.run_pending(only=["t_claimed"], force=True) == []
    assert calls == []
    # a claim that expired (the other process died) is taken over
    RefreshState.objects.filter(family="t_claimed").update(claimed_until=dt.datetime.now(dt.UTC) - dt.timedelta(1))
    assert refresher.run_pending(only=["t_claimed"]) == ["t_claimed"]
    assert len(calls) == 1


def test_an_event_written_while_the_family_computes_makes_it_due_again(monkeypatch):
    def compute(at):
        emit("test.refresher_during")  # committed by someone else while we compute
        return []

    _family(monkeypatch, "t_during", compute)
    assert refresher.run_pending(only=["t_during"]) == ["t_during"]
    _family(monkeypatch, "t_during", lambda at: [])
    _backdate("t_during", 10)
    assert refresher.run_pending(only=["t_during"]) == ["t_during"]
    _backdate("t_during", 10)
    assert refresher.run_pending(only=["t_during"]) == []  # nothing new since


def test_only_events_of_its_triggers_make_a_family_due(monkeypatch):
    _family(monkeypatch, "t_one", lambda at: [], triggers=("test.one_",))
    _family(monkeypatch, "t_two", lambda at: [], triggers=("test.two_", "test.also"))
    assert sorted(refresher.run_pending(only=["t_one", "t_two"])) == ["t_one", "t_two"]
    emit("test.two_happened")
    _backdate("t_one", 10)
    _backdate("t_two", 10)
    assert refresher.run_pending(only=["t_one", "t_two"]) == ["t_two"]
    emit("test.also")
    emit("test.one_x")
    _backdate("t_one", 10)
    _backdate("t_two", 10)
    assert sorted(refresher.run_pending(only=["t_one", "t_two"])) == ["t_one", "t_two"]


def test_the_local_day_changing_makes_a_family_due(monkeypatch):
    _family(monkeypatch, "t_day", lambda at: [])
    # 23:59 local on 01-05 is 15:59 UTC; two minutes later it is 01-06 in Shanghai, still 01-05 in UTC
    before = dt.datetime(2022, 1, 5, 15, 59, tzinfo=dt.UTC)
    assert refresher.run_pending(at=before, only=["t_day"]) == ["t_day"]
    _backdate("t_day", 10)
    assert refresher.run_pending(at=before + dt.timedelta(seconds=30), only=["t_day"]) == []
    _backdate("t_day", 10)
    assert refresher.run_pending(at=before + dt.timedelta(minutes=2), only=["t_day"]) == ["t_day"]


def test_the_idle_pass_costs_a_few_queries_when_nothing_is_due():
    """All real families computed; then a pass inside their intervals reads the event head and the states only, and
    a pass after them adds one grouped event query and one MAX per distinct source mark (shared between families)."""
    registry.load_all()
    names = sorted(registry.all_families())
    with clock.frozen(dt.datetime(2022, 1, 5, 4, 0, tzinfo=dt.UTC)):
        assert sorted(refresher.run_pending(force=True)) == names
        # all just refreshed (a slow machine may have spent seconds on the pass)
        RefreshState.objects.update(refreshed_at=dt.datetime.now(dt.UTC))
        with CaptureQueriesContext(connection) as inside:
            assert refresher.run_pending() == []
        assert len(inside) <= 2, [q["sql"] for q in inside]
        RefreshState.objects.update(duration_ms=0)
        # each just past its interval, none past its max_age: due only if an event or a mark says so
        for name, family in registry.all_families().items():
            state = RefreshState.objects.get(family=name)
            state.refreshed_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=family.min_interval + 1)
            state.save(update_fields=["refreshed_at"])
        with registry.marks_pass():
            for family in registry.all_families().values():
                if family.marks:
                    family.marks()
            with CaptureQueriesContext(connection) as memo:
                for family in registry.all_families().values():
                    if family.marks:
                        family.marks()
        assert len(memo) == 0  # within a pass each source is read once
        with CaptureQueriesContext(connection) as after:
            assert refresher.run_pending() == []
        marks_sources = {q["sql"] for q in after if "MAX" in q["sql"].upper()}
        assert len(after) <= 3 + len(marks_sources), [q["sql"] for q in after]
        assert len(marks_sources) < sum(len(f.marks()) for f in registry.all_families().values() if f.marks)


@pytest.mark.django_db(transaction=True)
def test_the_computation_runs_outside_a_transaction_when_the_caller_has_none(monkeypatch):
    """The worker calls run_pending in autocommit: no transaction around the computation (on SQLite every transaction
    begins IMMEDIATE — the clock family would hold the only write lock for ten seconds, stalling every scan)."""
    seen = []
    _family(monkeypatch, "t_autocommit", lambda at: seen.append(connection.in_atomic_block) or [])
    assert refresher.run_pending(only=["t_autocommit"]) == ["t_autocommit"]
    assert seen == [False]


def test_a_family_refreshed_by_another_process_during_the_pass_is_not_recomputed(monkeypatch):
    """A pass reads every state first; when another process refreshes a family while this pass computes others, the
    stale "due" must not make it compute the same figures again right after."""
    computed = []
    _family(monkeypatch, "t_b_later", lambda at: computed.append("b") or [])

    def first(at):
        refresher.refresh_family("t_b_later")  # another process, meanwhile
        return []

    _family(monkeypatch, "t_a_first", first)
    assert refresher.run_pending(only=["t_a_first"]) == ["t_a_first"]
    refresher.refresh_family("t_b_later")
    computed.clear()
    _backdate("t_a_first", 10)
    _backdate("t_b_later", 10)
    emit("test.refresher_more")  # both due
    assert refresher.run_pending(only=["t_a_first", "t_b_later"]) == ["t_a_first"]
    assert computed == ["b"]  # once, by the "other process"


def test_a_moved_source_mark_or_max_age_makes_a_family_due_without_events(monkeypatch):
    mark = {"n": 1}
    family = _family(monkeypatch, "t_marks", lambda at: [], marks=lambda: {"n": mark["n"]})
    assert refresher.run_pending(only=["t_marks"]) == ["t_marks"]
    _backdate("t_marks", 10)
    assert refresher.run_pending(only=["t_marks"]) == []
    mark["n"] = 2  # a loader wrote rows without an event
    assert refresher.run_pending(only=["t_marks"]) == ["t_marks"]
    _backdate("t_marks", family.max_age - 1)
    assert refresher.run_pending(only=["t_marks"]) == []
    _backdate("t_marks", 2)  # older than max_age: "today" and overdue items move on their own
    assert refresher.run_pending(only=["t_marks"]) == ["t_marks"]


def test_a_slow_family_is_left_to_the_worker_when_a_stream_refreshes(monkeypatch):
    """A screen's stream passes ``max_duration_ms``: a family that took longer last time (the five-stage clock at city
    scale) is not computed in the stream's thread, so the screen's alerts keep flowing; the worker's pass takes it."""
    _family(monkeypatch, "t_slow", lambda at: [], min_interval=0)
    _family(monkeypatch, "t_fast", lambda at: [], min_interval=0)
    assert sorted(refresher.run_pending(only=["t_slow", "t_fast"])) == ["t_fast", "t_slow"]  # never computed: both
    RefreshState.objects.filter(family="t_slow").update(duration_ms=9_000)
    RefreshState.objects.filter(family="t_fast").update(duration_ms=40)
    for name in ("t_slow", "t_fast"):
        _backdate(name, 400)  # past max_age: due
    assert refresher.run_pending(only=["t_slow", "t_fast"], max_duration_ms=1500) == ["t_fast"]
    assert refresher.run_pending(only=["t_slow", "t_fast"]) == ["t_slow"]  # the worker's pass (no budget)
