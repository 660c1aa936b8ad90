"""Two uploads of the same tubes at the same time (threads with their own connections; PostgreSQL, see
test_sampling_concurrency.py for why not SQLite): exactly one result per tube is accepted, the other upload reports
it unchanged or a conflict, nothing is applied twice, and opposite upload orders do not deadlock."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection

from jingkong.conftest import T0
from jingkong.core import clock
from jingkong.testing.models import PersonTestState, RetestTask, TubeResult
from jingkong.testing.results import results_apply
from jingkong.testing.tests.labs_helpers import make_lab, make_persons, make_tube, row

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs a database with real concurrent writers"),
]
LATER = T0 + dt.timedelta(hours=6)


def test_concurrent_uploads_of_the_same_tubes(regions):
    lab = make_lab(regions["district"])
    people = make_persons(regions["grid_a1"], 40)
    barcodes = [f"C{i:02d}" for i in range(20)]
    for i, code in enumerate(barcodes):
        make_tube(code, people[i * 2:(i + 1) * 2], capacity=10)
    reports, errors = [], []
    start = threading.Barrier(2)

    def upload(order, outcome):
        try:
            start.wait()
            with clock.frozen(LATER):
                reports.append(results_apply(actor=None, lab=lab, rows=[row(b, outcome, n=i) for i, b in
                                                                        enumerate(order)], chunk_size=7))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=upload, args=(barcodes, "positive")),
               threading.Thread(target=upload, args=(list(reversed(barcodes)), "positive"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    # Each tube is accepted by exactly one upload; the other sees it unchanged (identical values).
    assert sum(r.accepted for r in reports) == 20 and sum(r.unchanged for r in reports) == 20
    assert all(not r.errors for r in reports)
    assert TubeResult.objects.count() == 20
    assert RetestTask.objects.count() == 40 and PersonTestState.objects.filter(status="pool_positive").count() == 40


def _lock_waiters() -> int:
    with connection.cursor() as c:
        c.execute("SELECT pg_stat_clear_snapshot()")  # the view is otherwise read once per transaction
        c.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid() "
                  "AND datname = current_database()")
        return c.fetchone()[0]


def test_two_uploads_touching_one_person_in_different_tubes_lose_nothing(regions, monkeypatch):
    """Regression: lab 1 applies a routine negative (tube B) and lab 2 a positive pool (tube A) holding the same
    person at the same time. Both chunks read the person's state before either wrote it; the negative's upsert then
    overwrote the pool-positive state: the person was no longer under control although their retest task was open.

    Made deterministic without timing: the negative upload, after reading the states, waits until either the other
    upload has committed (no serialisation: the lost update happens) or the other upload is waiting for a lock."""
    from jingkong.testing import results

    lab1, lab2 = make_lab(regions["district"], "LAB1"), make_lab(regions["district"], "LAB2")
    people = make_persons(regions["grid_a1"], 3)
    person = people[0]
    make_tube("A", [person, people[1]], capacity=10, sampled_at=T0)
    make_tube("B", [person, people[2]], capacity=10, sampled_at=T0 + dt.timedelta(hours=1))
    read_states, positive_done = threading.Event(), threading.Event()
    original = results._fetch_states
    errors = []

    def fetch_states(cursor):
        states = original(cursor)
        if threading.current_thread().name == "negative":
            read_states.set()
            for _ in range(3000):  # at most ~30 s: a safety net, not a timing assertion
                if positive_done.is_set() or _lock_waiters():
                    break
                threading.Event().wait(0.01)
            else:
                raise AssertionError("the other upload neither finished nor waited")
        return states

    monkeypatch.setattr(results, "_fetch_states", fetch_states)

    def upload(lab, barcode, outcome, after=None, done=None):
        try:
            if after is not None:
                assert after.wait(60)
            with clock.frozen(LATER):
                results_apply(actor=None, lab=lab, rows=[row(barcode, outcome)])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            if done is not None:
                done.set()
            connection.close()

    threads = [threading.Thread(target=upload, args=(lab1, "B", "negative"), name="negative"),
               threading.Thread(target=upload, args=(lab2, "A", "positive", read_states, positive_done),
                                name="positive")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    state = PersonTestState.objects.get(person=person)
    assert state.status == "pool_positive" and state.controlled_in_place
    assert state.last_sampled_at == T0 + dt.timedelta(hours=1)
    assert RetestTask.objects.filter(person=person, status="open").count() == 1
