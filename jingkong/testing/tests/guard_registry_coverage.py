"""Route-walk registrations for the coverage routes: a round in street B with residents, one of them swabbed, so that
the street-B reader's answer carries real figures and names (and the street-A reader's 404 hides them)."""

from __future__ import annotations

import itertools

from jingkong.access.tests.test_route_guard import OutOfScope, factory

_serial = itertools.count(1)
COVERAGE_ROUTES = (
    "/api/v1/testing/campaigns/{campaign_id}/coverage",
    "/api/v1/testing/campaigns/{campaign_id}/coverage/summary",
    "/api/v1/testing/campaigns/{campaign_id}/untested",
    "/api/v1/testing/campaigns/{campaign_id}/untested.csv",
)


def _round_in_b(ctx: OutOfScope):
    from jingkong.testing.tests.coverage_helpers import campaign, person, tube

    n = next(_serial)
    c = campaign(ctx.street, ctx.mark(f"COV-OUT-OF-SCOPE-B{n}"))
    swabbed = person(ctx.grid, f"oosb{n}s")
    untested = person(ctx.grid, f"oosb{n}u")
    untested.name = ctx.mark(f"越界未检{n}")
    untested.save(update_fields=["name"])
    tube(c, [swabbed], outcome="negative")
    return c.pk


for _route in COVERAGE_ROUTES:
    factory("campaign_id", route=_route)(_round_in_b)
