"""Several devices filling the same tubes at the same time: never over capacity, positions unique, nothing lost.

Threads with their own database connections (a transactional test database). No timing is asserted.

PostgreSQL only: the SQLite test database is an in-memory shared-cache database, whose table locks fail at once
("database table is locked") instead of waiting like the file database in WAL mode with its busy timeout. SQLite
writers are serialised by BEGIN IMMEDIATE anyway; benchmarks/bench_scans.py checks the same invariants after many
concurrent requests through real server workers on a SQLite file.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from jingkong.access.guard import Scope
from jingkong.conftest import make_user
from jingkong.testing import sampling
from jingkong.testing.tests import sampling_helpers as h

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs a database with real concurrent writers"),
]


@pytest.fixture
def world(regions):
    sampler = make_user("sampler_c", "sampler", regions["street_a"])
    h.campaign(regions["district"], "RC", pool_size=10)
    h.site(regions["grid_a1"], "SITE-C", samplers=[sampler])
    numbers = [h.person(regions["grid_a1"], i)[1] for i in range(1, 61)]
    return {"sampler": sampler, "scope": Scope(regions["street_a"].code), "numbers": numbers}


def _run_threads(targets):
    errors: list[BaseException] = []
    start = threading.Barrier(len(targets))

    def wrap(fn):
        def run():
            try:
                start.wait()
                fn()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                connection.close()
        return run

    threads = [threading.Thread(target=wrap(fn)) for fn in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


def _check_tube(barcode: str, capacity: int = 10):
    from jingkong.testing.models import Sample, Tube

    tube = Tube.objects.get(barcode=barcode)
    positions = sorted(Sample.objects.filter(tube=tube).values_list("position", flat=True))
    assert tube.member_count == len(positions) <= capacity
    assert positions == list(range(1, len(positions) + 1))
    return tube


def test_single_scans_from_four_devices_never_overfill_a_tube(world):
    from jingkong.core.exceptions import Conflict

    outcomes: list[str] = []
    lock = threading.Lock()

    def device(k):
        def run():
            for i in range(k, 40, 4):
                try:
                    sampling.scan_record(actor=world["sampler"], scope=world["scope"],
                                         raw=h.scan("CC", world["numbers"][i], "SITE-C", client_scan_id=f"d{k}-{i}"))
                    status = "recorded"
                except Conflict:
                    status = "refused"
                with lock:
                    outcomes.append(status)
        return run

    _run_threads([device(k) for k in range(4)])
    tube = _check_tube("CC")
    assert tube.member_count == 10 and tube.status == "sealed"
    assert outcomes.count("recorded") == 10 and outcomes.count("refused") == 30


def test_batches_from_three_devices_into_shared_tubes(world):
    results: list = []
    lock = threading.Lock()

    def device(k):
        def run():
            items = [{"tube": f"S{j}", "id_number": world["numbers"][20 * k + j], "client_scan_id": f"b{k}-{j}"}
                     for j in range(20)]
            out = sampling.scans_record(actor=world["sampler"], scope=world["scope"], items=items, site="SITE-C")
            with lock:
                results.extend(out.results)
        return run

    _run_threads([device(k) for k in range(3)])
    # 60 scans into 20 tubes (S0..S19), 3 per tube: all fit.
    assert sum(r.status == "recorded" for r in results) == 60
    for j in range(20):
        assert _check_tube(f"S{j}").member_count == 3


def test_the_same_batch_sent_twice_at_once_is_recorded_once(world):
    items = [{"tube": f"D{j // 10}", "id_number": world["numbers"][j], "client_scan_id": f"same-{j}"}
             for j in range(30)]
    outs = []

    def device():
        outs.append(sampling.scans_record(actor=world["sampler"], scope=world["scope"], items=items, site="SITE-C"))

    _run_threads([device, device])
    from jingkong.testing.models import Sample

    assert Sample.objects.count() == 30
    for j in range(3):
        assert _check_tube(f"D{j}").member_count == 10
    assert sorted(o.counts["replayed"] for o in outs) == [0, 30]
