"""Route-walk registrations of the facilities and orders API: objects in street B for every path parameter, bodies
for writes, street-B seeds for the list checks, and the writes whose body names street B.

Loaded by jingkong/access/tests/test_route_guard.py (factories, bodies, seeds) and test_scope_writes.py.
"""

from __future__ import annotations

import datetime as dt
import itertools

from jingkong.access.roles import Role
from jingkong.access.tests.test_route_guard import BODIES, SEEDS, factory

_serial = itertools.count(1)
ROOM_ROUTE = "/api/v1/isolation/facilities/{facility_id}/rooms/{room_id}"


def _facility_b(ctx):
    from jingkong.isolation.models import Facility

    if "_fac_facility" not in ctx.values:
        ctx.values["_fac_facility"] = Facility.objects.create(
            code=ctx.mark(f"FAC-OOS-B{next(_serial)}"), name=ctx.mark("越界隔离酒店"), kind="quarantine_hotel",
            region_code=ctx.street.code, lon=121.83, lat=29.91, address=ctx.mark("越界地址"))
    return ctx.values["_fac_facility"]


def _room_b(ctx):
    from jingkong.core import clock
    from jingkong.isolation.models import Facility, Room

    if "_fac_room" not in ctx.values:
        facility = Facility.objects.get(pk=ctx.value("facility_id"))
        ctx.values["_fac_room"] = Room.objects.create(facility=facility, number=f"9{next(_serial):02d}", floor=9,
                                                      kind="single", beds=1, state="free", state_since=clock.now())
    return ctx.values["_fac_room"]


def _person_b(ctx, name: str):
    from jingkong.core import clock
    from jingkong.people.models import Person

    now = clock.now()
    return Person.objects.create(id_hash=f"fac-oos-b{next(_serial):055d}", id_masked="3302**********0000",
                                 name=ctx.mark(name), sex="F", birth_date=dt.date(1985, 1, 1), grid=ctx.grid,
                                 created_at=now, updated_at=now)


def _order_b(ctx):
    from jingkong.core import clock
    from jingkong.isolation.models import IsolationOrder, RoomStay, SymptomCheck

    if "_fac_order" not in ctx.values:
        now = clock.now()
        person = _person_b(ctx, f"越界隔离者{next(_serial)}")
        today = now.date()
        order = IsolationOrder.objects.create(
            person=person, tier="close", mode="central", region_code=ctx.grid.code,
            counted_from=today - dt.timedelta(days=3), starts_on=today - dt.timedelta(days=2),
            ends_on=today + dt.timedelta(days=11), test_days=[1, 4, 7, 14], facility=_facility_b(ctx),
            note=ctx.mark("越界隔离备注"), created_at=now, updated_at=now)
        SymptomCheck.objects.create(order=order, day=2, checked_at=now, symptoms=["cough"],
                                    note=ctx.mark("越界症状"))
        RoomStay.objects.create(room=_room_b(ctx), person=person, tier="close", region_code=ctx.grid.code,
                                reserved_at=now, checked_in_at=now)
        ctx.values["_fac_order"] = order
    return ctx.values["_fac_order"]


factory("facility_id")(lambda ctx: _facility_b(ctx).pk)
factory("room_id", route=ROOM_ROUTE)(lambda ctx: _room_b(ctx).pk)
factory("order_id")(lambda ctx: _order_b(ctx).pk)


@SEEDS.append
def _facilities_in_b(ctx):
    _order_b(ctx)  # a facility in B with a room, a guest, an order and a check


BODIES.update({
    "PATCH /api/v1/isolation/facilities/{facility_id}": lambda ctx: {"name": "x"},
    "PUT /api/v1/isolation/facilities/{facility_id}/staff": lambda ctx: {"usernames": ["nobody"]},
    "POST /api/v1/isolation/facilities/{facility_id}/rooms": lambda ctx: {"floors": [1], "rooms_per_floor": 1},
    "PATCH " + ROOM_ROUTE: lambda ctx: {"state": "out_of_service"},
    "POST /api/v1/isolation/facilities/{facility_id}/assign": lambda ctx: {"person_ids": [1]},
    "POST /api/v1/isolation/facilities/{facility_id}/checkout": lambda ctx: {"person_ids": [1]},
    "POST /api/v1/isolation/orders/{order_id}/checks": lambda ctx: {"temperature": 36.5},
    "POST /api/v1/isolation/orders/{order_id}/release": lambda ctx: {},
    "POST /api/v1/isolation/orders/{order_id}/extend": lambda ctx: {"new_exposure": "2022-01-02", "reason": "x"},
    "POST /api/v1/isolation/orders/{order_id}/cancel": lambda ctx: {"reason": "x"},
})


def _resident_b(w):
    from jingkong.people.idnumber import id_hash
    from jingkong.people.models import Person

    return Person.objects.get(id_hash=id_hash(w["resident_b"]["id_number"]))


def _facility_in_b_for_writes(w):
    from jingkong.isolation.models import Facility

    f, _ = Facility.objects.get_or_create(code="FAC-WB", defaults={
        "name": "越界", "kind": "quarantine_hotel", "region_code": "330206004", "lon": 121.83, "lat": 29.91})
    return f.pk


WRITES_NAMING_B = {
    "POST /api/v1/isolation/facilities": (Role.FACILITY_MANAGER, lambda w: {
        "code": "FAC-NEW-B", "name": "越界", "kind": "quarantine_hotel", "region_code": "330206004", "lon": 121.83,
        "lat": 29.91}),
    "POST /api/v1/isolation/orders": (Role.FACILITY_MANAGER, lambda w: {
        "items": [{"person_id": _resident_b(w).pk, "mode": "home_quarantine"}]}),
    "POST /api/v1/isolation/orders/release-due": (Role.FACILITY_MANAGER, lambda w: {
        "facility_id": _facility_in_b_for_writes(w)}),
}
