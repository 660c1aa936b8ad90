"""Route-walk registrations of the zones API: a zone in street B for ``zone_id``, bodies for writes, and the write
routes without path parameters (loaded by jingkong/access/tests/test_route_guard.py and test_scope_writes.py)."""

from __future__ import annotations

import itertools

from jingkong.access.roles import Role
from jingkong.access.tests.test_route_guard import BODIES, QUERIES, SEEDS, factory

_serial = itertools.count(1)


def _zone(ctx, status: str = "proposed"):
    from jingkong.core import clock
    from jingkong.zones.models import Zone, ZoneUnit

    now = clock.now()
    n = next(_serial)
    zone = Zone.objects.create(ref=ctx.mark(f"ZN-OOS-{n:04d}"), name=ctx.mark(f"越界封控区{n}"), type="lockdown",
                               status=status, region_code=ctx.grid.code, proposed_at=now, updated_at=now)
    ZoneUnit.objects.create(zone=zone, kind="grid", region=ctx.grid)
    return zone


factory("zone_id")(lambda ctx: _zone(ctx).pk)


@SEEDS.append
def _zones_in_b(ctx):
    from jingkong.core import clock
    from jingkong.zones.models import RiskArea

    _zone(ctx, "approved")
    RiskArea.objects.create(source="district", area_code=ctx.grid.code, name=ctx.mark("越界风险区"), level="high",
                            published_at=clock.now())


BODIES.update({
    "PATCH /api/v1/zones/zones/{zone_id}": lambda ctx: {"name": "x"},
    "POST /api/v1/zones/zones/{zone_id}/approve": lambda ctx: {},
    "POST /api/v1/zones/zones/{zone_id}/reject": lambda ctx: {"reason": "x"},
    "POST /api/v1/zones/zones/{zone_id}/upgrade": lambda ctx: {"reason": "x"},
    "POST /api/v1/zones/zones/{zone_id}/downgrade": lambda ctx: {"reason": "x"},
    "POST /api/v1/zones/zones/{zone_id}/lift": lambda ctx: {"reason": "x"},
})
QUERIES.update({"GET /api/v1/zones/risk-areas/level": "code=330206002"})


def _case_in_b(w):
    from jingkong.core import clock
    from jingkong.people.idnumber import id_hash
    from jingkong.people.models import Person
    from jingkong.tracing.models import Case

    resident = Person.objects.get(id_hash=id_hash(w["resident_b"]["id_number"]))
    now = clock.now()
    case = Case.objects.create(ref="ZB-2022-0001", person=resident, first_positive_at=now,
                               region_code=resident.grid.code, created_at=now, updated_at=now)
    return {"case_ref": case.ref}


WRITES_NAMING_B = {
    "POST /api/v1/zones/zones/propose": (Role.STREET_OFFICER, _case_in_b),
}
NOT_REGION_WRITES = {
    "POST /api/v1/zones/risk-areas/import": "multipart upload of another place's risk-area list (not region data); "
                                            "tested in zones/tests/test_api.py",
}
