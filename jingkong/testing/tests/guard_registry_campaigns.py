"""Route-walk registrations for the rounds-and-sites routes: objects in street B for each path parameter, bodies for
writes, and body-scope checks for writes without path parameters. Other testing areas use ``campaign_id`` too."""

from __future__ import annotations

import datetime as dt
import itertools

from jingkong.access.roles import Role
from jingkong.access.tests.test_route_guard import BODIES, QUERIES, SEEDS, OutOfScope, factory

_serial = itertools.count(1)


@factory("campaign_id")
def _campaign_in_b(ctx: OutOfScope):
    from jingkong.core import clock
    from jingkong.testing.models import Campaign

    now = clock.now()
    c = Campaign.objects.create(code=ctx.mark(f"R-OUT-OF-SCOPE-B{next(_serial)}"), name=ctx.mark("越界轮次"),
                                region=ctx.street, region_code=ctx.street.code, starts_at=now,
                                deadline=now + dt.timedelta(days=1), created_at=now, updated_at=now)
    return c.pk


@factory("site_id")
def _site_in_b(ctx: OutOfScope):
    from jingkong.testing.models import SamplingSite

    s = SamplingSite.objects.create(code=ctx.mark(f"S-OUT-OF-SCOPE-B{next(_serial)}"), name=ctx.mark("越界点位"),
                                    region=ctx.grid, region_code=ctx.grid.code, lon=121.825, lat=29.905)
    return s.pk


@factory("area_id")
def _area_in_b(ctx: OutOfScope):
    from jingkong.testing.models import CampaignArea

    area = CampaignArea.objects.create(campaign_id=ctx.value("campaign_id"), region=ctx.grid, region_code=ctx.grid.code,
                                       mode="building", pool_size=1, reason=ctx.mark("越界区域"))
    return area.pk


@SEEDS.append
def _key_industry_worker_in_b(ctx: OutOfScope):
    """A policy in force (so compliance lists answer) and a port worker living in street B."""
    from jingkong.core import clock
    from jingkong.people.models import Person
    from jingkong.policy.models import PolicyActivation
    from jingkong.policy.selectors import profile_get
    from jingkong.policy.services import profile_activate, profile_install_builtin

    if not PolicyActivation.objects.exists():
        profile_install_builtin()
        profile_activate(profile=profile_get(code="cn-8th-2021"), region=ctx.regions["district"], actor=None,
                         reason="route walk")
    now = clock.now()
    Person.objects.create(id_hash=f"out-of-scope-port-b{next(_serial):040d}", id_masked="3302**********0001",
                          name=ctx.mark("越界码头工"), sex="M", birth_date=dt.date(1980, 1, 1), grid=ctx.grid,
                          industry="port", employer=ctx.mark("越界码头公司"), created_at=now, updated_at=now)


BODIES.update({
    "POST /api/v1/testing/campaigns/{campaign_id}/areas": lambda ctx: {"region_code": ctx.grid.code},
    "PUT /api/v1/testing/sites/{site_id}/samplers": lambda ctx: {"user_ids": []},
})
QUERIES.update({
    "GET /api/v1/testing/pools/plan": "prevalence=0.01",
})

_STREET_B = "330206004"
_GRID_B = "330206004001001"
WRITES_NAMING_B = {
    "POST /api/v1/testing/campaigns": (
        Role.STREET_OFFICER,
        lambda w: {"name": "越界轮次", "region_code": _STREET_B, "starts_at": "2022-01-02T08:00:00+08:00",
                   "deadline": "2022-01-02T20:00:00+08:00", "pool_size": 10},
    ),
    "POST /api/v1/testing/sites": (
        Role.STREET_OFFICER,
        lambda w: {"name": "越界点位", "region_code": _GRID_B, "lon": 121.825, "lat": 29.905},
    ),
}
