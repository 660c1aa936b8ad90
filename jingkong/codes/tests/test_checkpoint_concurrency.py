"""Two devices sending the same records at the same moment (PostgreSQL: real concurrent transactions): each record is
stored once, and both answers carry its result."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from jingkong.access.guard import EVERYTHING
from jingkong.codes import checkpoints
from jingkong.codes.models import Crossing, FeverReferral, VenueEntry
from jingkong.codes.tests.checkpoint_helpers import NOW, activate, checkpoint, resident, token_of, venue
from jingkong.core import clock

pytestmark = pytest.mark.django_db(transaction=True)


def _in_threads(fn, n=4):
    errors, out = [], []
    barrier = threading.Barrier(n)

    def run():
        try:
            barrier.wait()
            out.append(fn())
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return out


def test_the_same_offline_batch_from_two_devices_is_stored_once(regions, tmp_path, settings):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers")
    settings.DATA_DIR = tmp_path
    with clock.frozen(NOW):
        activate()
        checkpoint(regions["street_a"])
        venue(regions["grid_a1"])
        people = [resident(regions["grid_a1"]) for _ in range(5)]
        items = [{"client_id": f"c-{i}", "token": token_of(p)} for i, (p, _) in enumerate(people)]
        entries = [{"client_id": f"e-{i}", "id_number": n, "temperature": 38.0} for i, (_, n) in enumerate(people)]

        def sync():
            return checkpoints.crossings_sync(actor=None, scope=EVERYTHING, checkpoint_code="CP-A1", items=items)

        def scan():
            return checkpoints.venue_entries_sync(actor=None, scope=EVERYTHING, venue_code="V-A1", items=entries)

        outs = _in_threads(sync)
        assert Crossing.objects.count() == 5
        assert sum(o.counts["recorded"] for o in outs) == 5
        assert all(o.counts["rejected"] == 0 for o in outs)
        outs = _in_threads(scan)
        assert VenueEntry.objects.count() == 5 and FeverReferral.objects.count() == 5
        assert sum(o["counts"]["recorded"] for o in outs) == 5
        assert all(o["counts"]["rejected"] == 0 for o in outs)
