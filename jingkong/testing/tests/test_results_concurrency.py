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
