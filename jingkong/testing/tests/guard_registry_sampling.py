"""Route-walk registry of the sampling routes: objects in street B for their path parameters, and bodies naming
street B for the scan routes (see jingkong/access/tests/test_route_guard.py and test_scope_writes.py)."""

from __future__ import annotations

import itertools

from jingkong.access.roles import Role
from jingkong.access.tests.test_route_guard import OutOfScope, factory

_serial = itertools.count(1)


def _site_in_b(ctx: OutOfScope):
    from jingkong.testing.models import SamplingSite

    if "_sampling_site" not in ctx.values:
        ctx.values["_sampling_site"] = SamplingSite.objects.create(
            code=ctx.mark(f"SITE-OUT-OF-SCOPE-B{next(_serial)}"), name="out of scope", region=ctx.grid,
            region_code=ctx.grid.code, lon=121.825, lat=29.905)
    return ctx.values["_sampling_site"]


@factory("site_code")
def _site_code_in_b(ctx: OutOfScope):
    return _site_in_b(ctx).code


@factory("barcode")
def _tube_in_b(ctx: OutOfScope):
    from jingkong.core import clock
    from jingkong.testing.models import Tube

    site = _site_in_b(ctx)
    tube = Tube.objects.create(barcode=ctx.mark(f"TUBE-OUT-OF-SCOPE-B{next(_serial)}"), site=site,
                               region_code=site.region_code, capacity=10, member_count=0, opened_at=clock.now())
    return tube.barcode


def _scan_body_naming_b(w) -> dict:
    from jingkong.testing.models import SamplingSite

    region = w["regions"]["grid_b1"]
    SamplingSite.objects.get_or_create(code="SITE-B-WRITE", defaults=dict(
        name="street B", region=region, region_code=region.code, lon=121.825, lat=29.905))
    return {"tube": "TUBE-B-WRITE", "id_number": w["resident_b"]["id_number"], "site": "SITE-B-WRITE"}


def _batch_body_naming_b(w) -> dict:
    from jingkong.testing.tests.sampling_helpers import new_id

    scan = _scan_body_naming_b(w)
    # the second person is unknown: a provisional person would appear if the site check let the batch through
    return {"site": scan.pop("site"), "scans": [scan, {"tube": "TUBE-B-WRITE2", "id_number": new_id(77)}]}


WRITES_NAMING_B = {
    "POST /api/v1/testing/scans": (Role.ADMINISTRATOR, _scan_body_naming_b),
    "POST /api/v1/testing/scans/batch": (Role.ADMINISTRATOR, _batch_body_naming_b),
}
