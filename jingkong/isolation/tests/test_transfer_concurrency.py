"""Two dispatchers (streets A and B) plan at the same time and share the district's quarantine hotel (PostgreSQL: real
concurrent writers; SQLite serialises whole transactions). Regression: the free beds were read without a lock, so both
plans promised the same beds — 6 people sent to a hotel with 4 free beds.

Made deterministic without timing: plan A, after reading the free beds, waits until plan B has either committed (no
serialisation: the over-promise happens) or is waiting for a lock (the fix: B reads the beds after A committed)."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs a database with real concurrent writers"),
]


def _lock_waiters() -> int:
    with connection.cursor() as c:
        c.execute("SELECT pg_stat_clear_snapshot()")
        c.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid() "
                  "AND datname = current_database()")
        return c.fetchone()[0]


def test_two_plans_at_once_never_promise_the_same_beds(regions, monkeypatch):
    from jingkong.access.guard import scope_of
    from jingkong.conftest import make_user
    from jingkong.core import clock
    from jingkong.isolation import transfers
    from jingkong.isolation.grouping import group_waiting
    from jingkong.isolation.models import TransferBatch
    from jingkong.isolation.tests.transfer_world import NOW, TransferWorld, activate

    users = {side: make_user(f"dispatcher_{side}", "transfer_dispatcher", regions[f"street_{side}"])
             for side in "ab"}
    with clock.frozen(NOW):
        activate()
        w = TransferWorld(regions)
        for side in "ab":
            for name in ("父", "母", "子"):
                w.contact(w.person(f"{name}{side}", building=f"B{side}", household=f"H{side}", side=side))
            w.vehicle(f"V{side}", seats=6, side=side)
            group_waiting(actor=users[side], scope=scope_of(users[side]))
        hotel = w.facility("SHARED", rooms=4, region="330206")  # the district's hotel serves both streets
    assert transfers.facility_free([hotel.pk]) == {hotel.pk: 4}

    real = transfers.facility_free
    a_read, b_done = threading.Event(), threading.Event()

    def watched(ids):
        out = real(ids)
        if threading.current_thread().name == "plan-a":
            a_read.set()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not b_done.is_set() and _lock_waiters() == 0:
                time.sleep(0.05)
        return out

    monkeypatch.setattr(transfers, "facility_free", watched)
    results, errors = {}, []

    def plan(side):
        try:
            with clock.frozen(NOW):
                results[side] = transfers.plan_transfers(actor=users[side], scope=scope_of(users[side]),
                                                         time_limit_s=1.0)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            if side == "b":
                b_done.set()
            connection.close()

    ta = threading.Thread(target=plan, args=("a",), name="plan-a")
    tb = threading.Thread(target=plan, args=("b",), name="plan-b")
    ta.start()
    assert a_read.wait(60)
    tb.start()
    ta.join(120)
    tb.join(120)
    assert not errors, errors
    promised = sum(TransferBatch.objects.filter(facility=hotel, status="planned").values_list("size", flat=True))
    assert promised <= 4, f"{promised} people sent to 4 free beds"
    assert results["a"]["people_planned"] == 3
    assert results["b"]["people_planned"] == 0 and results["b"]["waiting_reasons"] == {"no_facility": 1}
