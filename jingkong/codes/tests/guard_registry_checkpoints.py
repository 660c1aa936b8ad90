"""Route-walk registry of the checkpoints area: objects in street B for its path parameters, bodies for its writes,
street-B data for the list checks, and bodies naming street B for its parameter-free writes (see
jingkong/access/tests/test_route_guard.py and test_scope_writes.py)."""

from __future__ import annotations

import datetime as dt
import itertools

from jingkong.access.roles import Role
from jingkong.access.tests.test_route_guard import BODIES, SEEDS, OutOfScope, factory

_serial = itertools.count(1)


def _checkpoint_in_b(ctx: OutOfScope):
    from jingkong.codes.models import Checkpoint
    from jingkong.core import clock

    if "_checkpoint" not in ctx.values:
        ctx.values["_checkpoint"] = Checkpoint.objects.create(
            code=ctx.mark(f"CP-OUT-OF-SCOPE-B{next(_serial)}"), name=ctx.mark("越界卡口"), kind="road",
            region_code=ctx.street.code, lon=121.825, lat=29.905, created_at=clock.now())
    return ctx.values["_checkpoint"]


factory("checkpoint_code")(lambda ctx: _checkpoint_in_b(ctx).code)


@factory("pass_number")
def _pass_in_b(ctx: OutOfScope):
    from jingkong.codes.models import Pass
    from jingkong.core import clock

    now = clock.now()
    p = Pass.objects.create(number=ctx.mark(f"TX-OUT-OF-SCOPE-B{next(_serial)}"), kind="medical",
                            plate=f"浙B9{next(_serial):04d}", holder=ctx.mark("越界司机"), region_code=ctx.street.code,
                            valid_from=now - dt.timedelta(days=1), valid_until=now + dt.timedelta(days=3),
                            created_at=now)
    return p.number


def _person_b(ctx: OutOfScope):
    from jingkong.core import clock
    from jingkong.people.models import Person

    now = clock.now()
    return Person.objects.create(id_hash=f"checkpoint-b{next(_serial):052d}", id_masked="3302**********0000",
                                 name=ctx.mark(f"越界发热{next(_serial)}"), sex="F", birth_date=dt.date(1985, 1, 1),
                                 grid=ctx.grid, created_at=now, updated_at=now)


@factory("referral_id")
def _referral_in_b(ctx: OutOfScope):
    from decimal import Decimal

    from jingkong.codes.models import FeverReferral
    from jingkong.core import clock

    return FeverReferral.objects.create(person=_person_b(ctx), temperature=Decimal("38.2"), measured_at=clock.now(),
                                        region_code=ctx.grid.code, note=ctx.mark("越界转诊")).pk


@SEEDS.append
def _crossings_in_b(ctx: OutOfScope):
    from jingkong.codes.models import Crossing
    from jingkong.core import clock

    cp = _checkpoint_in_b(ctx)
    now = clock.now()
    Crossing.objects.create(client_id=ctx.mark(f"out-of-scope-crossing-{next(_serial)}"), checkpoint=cp,
                            region_code=cp.region_code, at=now - dt.timedelta(minutes=5), subject="vehicle",
                            plate="浙B77777", decision="deny", origin_code=ctx.mark("310115"),
                            reasons=[{"code": "code_colour", "text": ctx.mark("out-of-scope-reason"),
                                      "verdict": "deny"}], received_at=now)
    ctx.value("pass_number")
    ctx.value("referral_id")


BODIES.update({
    "POST /api/v1/codes/checkpoints/{checkpoint_code}/sync": lambda ctx: {"crossings": [{"client_id": "oos-1"}]},
    "POST /api/v1/codes/venues/{venue_code}/entries/sync": lambda ctx: {"entries": [{"client_id": "oos-1"}]},
    "POST /api/v1/codes/referrals/{referral_id}/status": lambda ctx: {"status": "visited"},
})


def _checkpoint_naming_b(w) -> dict:
    return {"code": "CP-NAMING-B", "name": "越界", "kind": "road", "region_code": "330206004", "lon": 121.82,
            "lat": 29.9}


def _pass_naming_b(w) -> dict:
    return {"kind": "medical", "plate": "浙B55555", "holder": "越界", "region_code": "330206004",
            "valid_until": "2030-01-01T00:00:00+08:00"}


WRITES_NAMING_B = {
    "POST /api/v1/codes/checkpoints": (Role.STREET_OFFICER, _checkpoint_naming_b),
    "POST /api/v1/codes/passes": (Role.STREET_OFFICER, _pass_naming_b),
}
