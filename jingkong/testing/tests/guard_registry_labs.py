"""Route-walk registry of the lab-side routes (labs, batches, results, follow-up, turnaround): objects in street B for
their path parameters, bodies for the write routes, and street-B data for the list checks (see
jingkong/access/tests/test_route_guard.py and test_scope_writes.py)."""

from __future__ import annotations

import datetime as dt
import itertools

from jingkong.access.roles import Role
from jingkong.access.tests.test_route_guard import BODIES, SEEDS, OutOfScope, factory

_serial = itertools.count(1)


def _lab_in_b(ctx: OutOfScope):
    from jingkong.testing.models import Lab

    if "_lab_b" not in ctx.values:
        ctx.values["_lab_b"] = Lab.objects.create(code=ctx.mark(f"LAB-OUT-OF-SCOPE-B{next(_serial)}"),
                                                  name="out of scope lab", region=ctx.street,
                                                  region_code=ctx.street.code)
    return ctx.values["_lab_b"]


def _site_in_b(ctx: OutOfScope):
    from jingkong.testing.models import SamplingSite

    if "_lab_site_b" not in ctx.values:
        ctx.values["_lab_site_b"] = SamplingSite.objects.create(
            code=ctx.mark(f"LABSITE-OUT-OF-SCOPE-B{next(_serial)}"), name="out of scope", region=ctx.grid,
            region_code=ctx.grid.code, lon=121.825, lat=29.905)
    return ctx.values["_lab_site_b"]


def _tube_in_b(ctx: OutOfScope, *, hours_ago: float = 30, **fields):
    from jingkong.core import clock
    from jingkong.testing.models import Tube

    site = _site_in_b(ctx)
    opened = clock.now() - dt.timedelta(hours=hours_ago)
    values = dict(site=site, region_code=site.region_code, capacity=1, member_count=1, status="sealed",
                  opened_at=opened, sealed_at=opened)
    values.update(fields)
    return Tube.objects.create(barcode=ctx.mark(f"LABTUBE-OUT-OF-SCOPE-B{next(_serial)}"), **values)


@factory("lab_id")
def _lab_id_in_b(ctx: OutOfScope):
    return _lab_in_b(ctx).pk


@factory("batch_id")
def _batch_in_b(ctx: OutOfScope):
    from jingkong.core import clock
    from jingkong.testing.models import TransportBatch

    batch = TransportBatch.objects.create(code=ctx.mark(f"BATCH-OUT-OF-SCOPE-B{next(_serial)}"), lab=_lab_in_b(ctx),
                                          site=_site_in_b(ctx), region_code=ctx.grid.code, status="handed_over",
                                          courier=ctx.mark("越界快递"), packed_at=clock.now() - dt.timedelta(hours=9),
                                          handed_over_at=clock.now() - dt.timedelta(hours=8), tube_count=1)
    _tube_in_b(ctx, batch=batch, status="in_transit")  # also overdue: in transit for 8 hours
    return batch.pk


@SEEDS.append
def _lab_data_in_b(ctx: OutOfScope):
    """A resulted tube (turnaround), a pool-positive follow-up task and a controlled person, all in street B."""
    from jingkong.core import clock
    from jingkong.people.models import Person
    from jingkong.testing.models import PersonTestState, RetestTask, Sample

    now = clock.now()
    lab = _lab_in_b(ctx)
    resulted = _tube_in_b(ctx, status="resulted", lab=lab, received_at=now - dt.timedelta(hours=20),
                          resulted_at=now - dt.timedelta(hours=10), outcome="positive", capacity=10)
    person = Person.objects.get(pk=ctx.value("person_id"))
    Sample.objects.create(client_scan_id=ctx.mark(f"scan-out-of-scope-{next(_serial)}"), tube=resulted,
                          person=person, region_code=ctx.grid.code, sampled_at=resulted.opened_at,
                          recorded_at=resulted.opened_at)
    RetestTask.objects.create(person=person, source_tube=resulted, reason="pool_positive", status="open",
                              region_code=ctx.grid.code, created_at=now)
    PersonTestState.objects.create(person=person, region_code=ctx.grid.code, status="pool_positive",
                                   controlled_in_place=True, controlled_since=now, updated_at=now)


BODIES.update({
    "POST /api/v1/testing/labs/{lab_id}/results": lambda ctx: {"results": [{"tube": "X", "outcome": "negative"}]},
    "POST /api/v1/testing/labs/{lab_id}/receive": lambda ctx: {"barcodes": ["X"]},
    "POST /api/v1/testing/batches/{batch_id}/handover": lambda ctx: {"courier": "out of scope"},
    "POST /api/v1/testing/batches/{batch_id}/receive": lambda ctx: {},
})


def _lab_body_naming_b(w) -> dict:
    return {"code": "LAB-B-WRITE", "name": "越界实验室", "region_code": "330206004"}


def _pack_body_naming_b(w) -> dict:
    from jingkong.core import clock
    from jingkong.testing.models import Lab, SamplingSite, Tube

    street, grid = w["regions"]["street_b"], w["regions"]["grid_b1"]
    lab, _ = Lab.objects.get_or_create(code="LAB-B-PACK", defaults=dict(name="b", region=street,
                                                                        region_code=street.code))
    site, _ = SamplingSite.objects.get_or_create(code="SITE-B-PACK", defaults=dict(
        name="b", region=grid, region_code=grid.code, lon=121.825, lat=29.905))
    Tube.objects.get_or_create(barcode="TUBE-B-PACK", defaults=dict(
        site=site, region_code=grid.code, capacity=1, member_count=1, status="sealed", opened_at=clock.now()))
    return {"lab_id": lab.pk, "site_id": site.pk, "barcodes": ["TUBE-B-PACK"]}


WRITES_NAMING_B = {
    "POST /api/v1/testing/labs": (Role.STREET_OFFICER, _lab_body_naming_b),
    "POST /api/v1/testing/batches": (Role.ADMINISTRATOR, _pack_body_naming_b),
}
