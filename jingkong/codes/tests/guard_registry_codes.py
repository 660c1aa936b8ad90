"""Route-walk registrations of the health-code routes: objects in street B for every path parameter, bodies for
writes, a stored code in street B for the list checks.

Loaded by jingkong/access/tests/test_route_guard.py (factories, bodies, seeds) and test_scope_writes.py
(WRITES_NAMING_B, NOT_REGION_WRITES).
"""

from __future__ import annotations

import datetime as dt
import itertools

from jingkong.access.tests.test_route_guard import BODIES, SEEDS, factory

_serial = itertools.count(1)


def _person_b(ctx, name: str):
    from jingkong.core import clock
    from jingkong.people.models import Person

    now = clock.now()
    return Person.objects.create(id_hash=f"codes-b{next(_serial):057d}", id_masked="3302**********0000",
                                 name=ctx.mark(name), sex="F", birth_date=dt.date(1980, 1, 1), grid=ctx.grid,
                                 created_at=now, updated_at=now)


@factory("override_id")
def _override_in_b(ctx):
    from jingkong.codes.models import CodeOverride
    from jingkong.core import clock

    p = _person_b(ctx, f"越界改码{next(_serial)}")
    return CodeOverride.objects.create(person=p, colour="red", reason=ctx.mark("out-of-scope-override-reason"),
                                       region_code=ctx.grid.code, starts_at=clock.now()).pk


@SEEDS.append
def _code_in_b(ctx):
    from jingkong.codes.models import HealthCode
    from jingkong.core import clock

    p = _person_b(ctx, f"越界红码{next(_serial)}")
    now = clock.now()
    HealthCode.objects.create(person=p, colour="red", rule_id="confirmed_case", region_code=ctx.grid.code,
                              reasons=[{"rule": "confirmed_case", "colour": "red",
                                        "reason": ctx.mark("out-of-scope-code-reason"), "until": None}],
                              cites=" confirmed_case ", computed_at=now, changed_at=now)


BODIES.update({
    "POST /api/v1/codes/people/{person_id}/overrides": lambda ctx: {"colour": "red", "reason": "越界"},
    "POST /api/v1/codes/overrides/{override_id}/revoke": lambda ctx: {"reason": "越界"},
})

NOT_REGION_WRITES = {
    "POST /api/v1/codes/recompute": "recomputes every code from the rules in force; the caller chooses no data",
}
