"""One person arriving at two facilities at the same moment (PostgreSQL: real concurrent writers). Each assignment
locks only its own facility, so both read "no open stay"; the one-open-stay-per-person constraint must turn the
second into a clean conflict (409), never a 500 nor two rooms.

Deterministic without timing: A assigns and, before committing, waits until B is blocked on the unique index."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

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


def test_one_person_at_two_facilities_at_once_gets_one_room_and_a_clean_conflict(regions):
    from jingkong.core.exceptions import Conflict
    from jingkong.isolation import facilities
    from jingkong.isolation.models import RoomStay
    from jingkong.isolation.tests import facilities_helpers as h

    h.activate("cn-9th-2022")
    f1, f2 = h.facility(regions), h.facility(regions)
    p = h.person(regions)
    h.contact(p)
    a_inserted, outcome = threading.Event(), {}

    def run_a():
        try:
            with transaction.atomic():
                facilities.assign(facility=f1, person_ids=[p.pk], check_in=True, alert=False)
                a_inserted.set()
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and _lock_waiters() == 0:
                    time.sleep(0.05)
            outcome["a"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported below
            outcome["a"] = repr(exc)
        finally:
            a_inserted.set()
            connection.close()

    def run_b():
        a_inserted.wait(30)
        try:
            facilities.assign(facility=f2, person_ids=[p.pk], check_in=True, alert=False)
            outcome["b"] = "ok"
        except Conflict:
            outcome["b"] = "conflict"
        except Exception as exc:  # noqa: BLE001 - a 500 in a request
            outcome["b"] = repr(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run_a), threading.Thread(target=run_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert outcome == {"a": "ok", "b": "conflict"}
    stays = list(RoomStay.objects.filter(person=p, checked_out_at__isnull=True).values_list("room__facility_id",
                                                                                           flat=True))
    assert stays == [f1.pk]


def test_a_room_taken_out_of_service_during_an_assignment_is_not_given_away(regions, monkeypatch):
    from jingkong.core.exceptions import Conflict
    from jingkong.isolation import assignment, facilities
    from jingkong.isolation.models import Room, RoomStay
    from jingkong.isolation.tests import facilities_helpers as h

    h.activate("cn-9th-2022")
    f = h.facility(regions, floors=(1,), per_floor=1)
    room = Room.objects.get(facility=f)
    p = h.person(regions)
    h.contact(p)
    real = assignment.assign
    a_read, outcome = threading.Event(), {}

    def watched(*args, **kwargs):
        out = real(*args, **kwargs)
        if threading.current_thread().name == "assign":
            a_read.set()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and "b" not in outcome and _lock_waiters() == 0:
                time.sleep(0.05)
        return out

    monkeypatch.setattr(assignment, "assign", watched)

    def run_a():
        try:
            facilities.assign(facility=f, person_ids=[p.pk], check_in=True, alert=False)
            outcome["a"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported below
            outcome["a"] = repr(exc)
        finally:
            a_read.set()
            connection.close()

    def run_b():
        a_read.wait(30)
        try:
            facilities.room_state_set(actor=None, room=room, state="out_of_service")
            outcome["b"] = "ok"
        except Conflict:
            outcome["b"] = "conflict"
        except Exception as exc:  # noqa: BLE001
            outcome["b"] = repr(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run_a, name="assign"), threading.Thread(target=run_b, name="state")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    room.refresh_from_db()
    stays = RoomStay.objects.filter(person=p, checked_out_at__isnull=True).count()
    # Either the room went out of service and nobody is in it, or the person is in it and it is occupied.
    assert (room.state, stays) in (("out_of_service", 0), ("occupied", 1)), (room.state, stays, outcome)
    assert outcome in ({"a": "ok", "b": "conflict"},), outcome
