"""Review regressions: a scan id reused for another scan that would open a new tube, and the SQLite write turn."""

from __future__ import annotations

import fcntl
import os

import pytest
from django.db import connection, transaction

from jingkong.testing import sampling
from jingkong.testing.tests import sampling_helpers as h
from jingkong.testing.tests.test_sampling import post, samples, world  # noqa: F401 - the fixture


@pytest.mark.django_db
def test_a_scan_id_reused_for_a_scan_opening_a_new_tube_is_refused_at_once(client, world, monkeypatch):  # noqa: F811
    """The reused id names the field (was: four retries, then 'too many concurrent writes'); nothing is written."""
    sleeps = []
    monkeypatch.setattr(sampling.time, "sleep", sleeps.append)
    first = post(client, h.scan("TA", world["people"][0][1], "SITE-A1", client_scan_id="same"), world["auth"])
    assert first.status_code == 201
    r = post(client, h.scan("TB", world["people"][1][1], "SITE-A1", client_scan_id="same"), world["auth"])
    assert r.status_code == 409, r.content[:300]
    assert r.json()["extra"]["field"] == "client_scan_id"
    assert sleeps == []
    from jingkong.testing.models import Tube

    assert not Tube.objects.filter(barcode="TB").exists()
    assert samples().count() == 1 and samples().get().tube.barcode == "TA"


@pytest.mark.django_db
def test_a_reused_scan_id_for_a_new_tube_and_an_unknown_person_writes_no_provisional_person(client, world):  # noqa: F811
    from jingkong.people.models import Person

    post(client, h.scan("TA", world["people"][0][1], "SITE-A1", client_scan_id="same"), world["auth"])
    before = Person.objects.count()
    r = post(client, h.scan("TC", h.new_id(7), "SITE-A1", client_scan_id="same"), world["auth"])
    assert r.status_code == 409 and r.json()["extra"]["field"] == "client_scan_id"
    assert Person.objects.count() == before


@pytest.fixture
def file_db_name(tmp_path, monkeypatch):
    """Make write_turn believe the database is a file in tmp_path (the test database is in memory)."""
    if connection.vendor != "sqlite":
        pytest.skip("the write turn is SQLite's (PostgreSQL has row locks)")
    name = str(tmp_path / "db.sqlite3")
    monkeypatch.setattr(sampling, "_vendor", lambda: "sqlite")
    monkeypatch.setitem(connection.settings_dict, "NAME", name)
    return name + ".write-turn"


def _free(path: str) -> bool:
    """Whether another open file description (another process, in effect) could take the turn now."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


@pytest.mark.django_db(transaction=True)  # no test transaction around it: write_turn waits only outside one
def test_the_write_turn_is_held_inside_and_released_after_an_exception(file_db_name):
    with pytest.raises(ZeroDivisionError):
        with sampling.write_turn():
            assert not _free(file_db_name)
            1 / 0  # noqa: B018
    assert _free(file_db_name)
    with sampling.write_turn():
        assert not _free(file_db_name)
    assert _free(file_db_name)


@pytest.mark.django_db(transaction=True)
def test_no_write_turn_is_waited_for_inside_an_outer_transaction(file_db_name):
    """An outer transaction may already hold SQLite's write lock: waiting there for the turn would stall the holder of
    the turn (waiting for our lock) until its busy timeout. Nested use in the same thread must not hang either."""
    with transaction.atomic():
        with sampling.write_turn():
            assert _free(file_db_name)
    with sampling.write_turn():
        with sampling.write_turn():  # re-entered in the same thread: no self-deadlock on the thread lock
            assert not _free(file_db_name)
    assert _free(file_db_name)


@pytest.mark.django_db(transaction=True)
def test_without_a_lock_file_the_write_still_happens(tmp_path, monkeypatch):
    if connection.vendor != "sqlite":
        pytest.skip("the write turn is SQLite's (PostgreSQL has row locks)")
    monkeypatch.setattr(sampling, "_vendor", lambda: "sqlite")
    monkeypatch.setitem(connection.settings_dict, "NAME", str(tmp_path / "missing-dir" / "db.sqlite3"))
    with sampling.write_turn():
        pass
