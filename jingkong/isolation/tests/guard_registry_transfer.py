"""Route-walk registrations of the transfer API: a vehicle, a waiting batch (with a member) and a planned run in
street B for the path parameters, bodies for the writes, and the writes whose body names street B.

Loaded by jingkong/access/tests/test_route_guard.py (factories, bodies) and test_scope_writes.py (WRITES_NAMING_B).
"""

from __future__ import annotations

import datetime as dt
import itertools

from jingkong.access.roles import Role
from jingkong.access.tests.test_route_guard import BODIES, factory

_serial = itertools.count(1)


def _vehicle(ctx):
    from jingkong.isolation.models import Vehicle

    if "_transfer_vehicle" not in ctx.values:
        n = next(_serial)
        ctx.values["_transfer_vehicle"] = Vehicle.objects.create(
            code=ctx.mark(f"OOSVEH{n:04d}"), plate=ctx.mark(f"越界{n:03d}"), type="minibus", seats=10,
            depot_lon=121.825, depot_lat=29.905, depot_label=ctx.mark("越界车场"), driver_name=ctx.mark("越界司机"),
            region_code=ctx.street.code)
    return ctx.values["_transfer_vehicle"]


def _batch(ctx):
    from jingkong.core import clock
    from jingkong.isolation.models import BatchMember, TransferBatch
    from jingkong.people.models import Person

    if "_transfer_batch" not in ctx.values:
        now = clock.now()
        n = next(_serial)
        person = Person.objects.create(id_hash=f"transfer-b{n:054d}", id_masked="3302**********0000",
                                       name=ctx.mark(f"越界转运{n}"), sex="F", birth_date=dt.date(1985, 1, 1),
                                       grid=ctx.grid, created_at=now, updated_at=now)
        batch = TransferBatch.objects.create(
            ref=ctx.mark(f"TB-OOS-{n:04d}"), region_code=ctx.grid.code, pickup_lon=121.825, pickup_lat=29.905,
            pickup_label=ctx.mark("越界上车点"), destination_type="central", size=1, created_at=now, updated_at=now)
        BatchMember.objects.create(batch=batch, person=person, role="close", region_code=ctx.grid.code)
        ctx.values["_transfer_batch"] = batch
    return ctx.values["_transfer_batch"]


@factory("transfer_id")
def _transfer_in_b(ctx):
    from jingkong.core import clock
    from jingkong.isolation.models import Transfer, TransferStop

    now = clock.now()
    vehicle = _vehicle(ctx)
    batch = _batch(ctx)
    t = Transfer.objects.create(ref=ctx.mark(f"TR-OOS-{next(_serial):04d}"), vehicle=vehicle,
                                region_code=vehicle.region_code, plan_id="PL-OOS", planned_start=now,
                                route={"type": "LineString", "coordinates": [[121.825, 29.905], [121.83, 29.91]]},
                                created_at=now, updated_at=now)
    TransferStop.objects.create(transfer=t, seq=1, kind="pickup", batch=batch, lon=121.825, lat=29.905, eta=now)
    TransferStop.objects.create(transfer=t, seq=2, kind="dropoff", batch=batch, lon=121.83, lat=29.91, eta=now)
    return t.pk


factory("vehicle_id")(lambda ctx: _vehicle(ctx).pk)
# "batch_id" is also the testing API's transport batches: ours only for our route
factory("batch_id", route="/api/v1/isolation/batches/{batch_id}")(lambda ctx: _batch(ctx).pk)
factory("batch_id", route="/api/v1/isolation/batches/{batch_id}/remove")(lambda ctx: _batch(ctx).pk)


BODIES.update({
    "POST /api/v1/isolation/transfers/{transfer_id}/status": lambda ctx: {"status": "dispatched"},
    "POST /api/v1/isolation/transfers/{transfer_id}/reorder": lambda ctx: {"stop_ids": [1, 2]},
    "POST /api/v1/isolation/transfers/{transfer_id}/move": lambda ctx: {"batch_id": 1, "to_vehicle_id": 1},
    "POST /api/v1/isolation/transfers/{transfer_id}/cancel": lambda ctx: {"reason": "越界"},
    "PATCH /api/v1/isolation/vehicles/{vehicle_id}": lambda ctx: {"seats": 12},
    "POST /api/v1/isolation/batches/{batch_id}/remove": lambda ctx: {
        "person_id": _batch(ctx).members.values_list("person_id", flat=True).first(), "reason": "越界"},
})


WRITES_NAMING_B = {
    "POST /api/v1/isolation/batches/group": (Role.TRANSFER_DISPATCHER, lambda w: {"region": "330206004"}),
    "POST /api/v1/isolation/transfers/plan": (Role.TRANSFER_DISPATCHER, lambda w: {"region": "330206004"}),
    "POST /api/v1/isolation/vehicles": (Role.TRANSFER_DISPATCHER, lambda w: {
        "code": "OOS1", "plate": "越界", "type": "bus", "seats": 20, "depot_lon": 121.825, "depot_lat": 29.905,
        "region_code": "330206004"}),
}
