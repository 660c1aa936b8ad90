"""Route-walk registrations of the services area: street-B objects for its path parameters, bodies for writes, the
public resident pages (declared public with the reason), writes naming street B.

Loaded by jingkong/access/tests/test_route_guard.py and test_scope_writes.py.
"""

from __future__ import annotations

import datetime as dt
import itertools

from jingkong.access.roles import Role
from jingkong.access.tests.test_route_guard import BODIES, PUBLIC_PAGES, UNSCOPED_ROUTES, factory

_serial = itertools.count(1)

PUBLIC_PAGES.update({
    "command:help_home": "暖服务 resident request form: residents have no account; identified by code token or ID "
                         "number + registry phone (same refusal for both, rate-limited per client address)",
    "command:help_status": "a requester follows their request by number + phone (rate-limited); answers only in the "
                           "session that looked it up",
    "command:help_done": "confirmation of a request just submitted, shown only to the session that submitted it",
})


def _person_b(ctx):
    from jingkong.core import clock
    from jingkong.people.models import Person

    now = clock.now()
    return Person.objects.create(id_hash=f"service-b{next(_serial):055d}", id_masked="3302**********0000",
                                 name=ctx.mark(f"越界求助{next(_serial)}"), sex="F", birth_date=dt.date(1950, 1, 1),
                                 grid=ctx.grid, created_at=now, updated_at=now)


@factory("service_request_id")
def _request_in_b(ctx):
    from jingkong.command.models import FieldWorker, ServiceRequest
    from jingkong.core import clock

    now = clock.now()
    # Assigned to a field worker linked to a street-B user: the worker's own routes (/services/mine/…) are then
    # reachable by that user and by nobody of street A.
    user_b = ctx.people.user(Role.STREET_OFFICER, "b")
    worker = FieldWorker.objects.filter(user=user_b).first() or FieldWorker.objects.create(
        name=ctx.mark(f"越界志愿者{next(_serial)}"), role="volunteer", region_code=ctx.grid.code, user=user_b)
    req = ServiceRequest.objects.create(
        ref=ctx.mark(f"FWOOS-{next(_serial):05d}"), person=_person_b(ctx), category="food",
        description=ctx.mark("out-of-scope-service-need"), region_code=ctx.grid.code, deadline=now,
        status="assigned", assignee=worker, submitted_at=now)
    return req.pk


def _depot(ctx):
    from jingkong.command.models import Depot

    if "_service_depot" not in ctx.values:
        ctx.values["_service_depot"] = Depot.objects.create(code=ctx.mark(f"DEPOT-OOS-{next(_serial)}"),
                                                            name=ctx.mark("越界仓库"), region_code=ctx.grid.code)
    return ctx.values["_service_depot"]


factory("depot_id")(lambda ctx: _depot(ctx).pk)


def _item_code(ctx) -> str:
    from jingkong.command.models import SupplyItem

    item, _ = SupplyItem.objects.get_or_create(code="ROUTE-WALK-KIT", defaults={
        "name": "route walk kit", "category": "test_kit", "unit": "box"})
    return item.code


UNSCOPED_ROUTES.update({
    "/api/v1/command/supplies/items/{item_id}": "the supply catalogue is district-wide (no region), like creating "
                                                "an item",
})


@factory("item_id")
def _item_id(ctx):
    from jingkong.command.models import SupplyItem

    return SupplyItem.objects.get(code=_item_code(ctx)).pk


BODIES.update({
    "PATCH /api/v1/command/supplies/depots/{depot_id}": lambda ctx: {"name": "改名"},
    "PATCH /api/v1/command/supplies/items/{item_id}": lambda ctx: {"name": "改名"},
    "POST /api/v1/command/services/requests/{service_request_id}/assign": lambda ctx: {"worker_id": 1},
    "POST /api/v1/command/services/requests/{service_request_id}/status": lambda ctx: {"status": "in_progress"},
    "POST /api/v1/command/services/mine/{service_request_id}/status": lambda ctx: {"status": "delivered"},
    "POST /api/v1/command/supplies/depots/{depot_id}/movements": lambda ctx: {
        "item": _item_code(ctx), "kind": "receipt", "quantity": 5},
    "POST /api/v1/command/supplies/depots/{depot_id}/thresholds": lambda ctx: {"item": _item_code(ctx),
                                                                               "threshold": 3},
})


WRITES_NAMING_B = {
    "POST /api/v1/command/services/requests": (
        Role.STREET_OFFICER, lambda w: {"id_number": w["resident_b"]["id_number"], "category": "food"}),
    "POST /api/v1/command/supplies/depots": (
        Role.STREET_OFFICER, lambda w: {"code": "DEPOT-NAMING-B", "name": "越界", "region_code": "330206004"}),
}
NOT_REGION_WRITES = {
    "POST /api/v1/command/supplies/items": "the supply catalogue is district-wide (no region)",
    "POST /api/v1/command/supplies/stock-counts": "multipart upload; rows naming another region's depot are refused "
                                                 "per row (jingkong/command/tests/test_supplies.py)",
}
