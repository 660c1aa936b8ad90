"""Small worlds for the operations families' tests (transfer, facilities, orders, checkpoints) and figure readers.

The testing world is the coverage tests' hand-counted round (``jingkong.testing.tests.coverage_helpers``); the
command world is made through the command services like the roll-up tests do. The rows built here are written
directly, each with the state the docstring names, so the expected figures are known from the fixture itself.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict

_serial = itertools.count(1)


# --- reading figures ----------------------------------------------------------------------------------------------------


def figures(family: str) -> dict[tuple, float]:
    """``{(metric, key, region_code, day): value}`` of one family's stored rows."""
    from jingkong.dashboard.models import Figure

    return {(f.metric, f.key, f.region_code, f.day): f.value for f in Figure.objects.filter(family=family)}


def total(figs: dict[tuple, float], metric: str, prefix: str = "", *, key: str | None = None, day=None) -> float:
    """A region's additive figure as the screen reads it: the sum over the codes starting with ``prefix``."""
    return sum(v for (m, k, code, d), v in figs.items()
               if m == metric and code.startswith(prefix) and (key is None or k == key) and (day is None or d == day))


def by_region(figs: dict[tuple, float], metric: str, *, key: str | None = None) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for (m, k, code, _d), v in figs.items():
        if m == metric and (key is None or k == key):
            out[code] += v
    return dict(out)


def backdate(family: str, seconds: float) -> None:
    """Pretend the family was refreshed ``seconds`` ago (``min_interval`` counts wall time since the refresh)."""
    from jingkong.dashboard.models import RefreshState

    state = RefreshState.objects.get(family=family)
    state.refreshed_at = state.refreshed_at - dt.timedelta(seconds=seconds)
    state.save(update_fields=["refreshed_at"])


# --- people -----------------------------------------------------------------------------------------------------------


def person(grid, name: str = ""):
    from jingkong.core import clock
    from jingkong.people.models import Person

    n = next(_serial)
    now = clock.now()
    return Person.objects.create(id_hash=f"dash-ops-{n:054d}", id_masked=f"330206********{n % 10000:04d}",
                                 name=name or f"人{n}", sex="F", birth_date=dt.date(1980, 1, 1), grid=grid,
                                 created_at=now, updated_at=now)


# --- transfer ---------------------------------------------------------------------------------------------------------


def batch(grid, status: str, *, created_at: dt.datetime, destination: str = "central", members=(), facility=None):
    """A batch at ``grid`` with ``members``: ``(person, picked_up_at, arrived_at, removed_at)`` tuples."""
    from jingkong.isolation.models import BatchMember, TransferBatch

    live = [m for m in members if m[3] is None]
    b = TransferBatch.objects.create(ref=f"TB-T-{next(_serial):05d}", region_code=grid.code, pickup_lon=121.805,
                                     pickup_lat=29.905, destination_type=destination, status=status, size=len(live),
                                     facility=facility, created_at=created_at, updated_at=created_at)
    for p, picked, arrived, removed in members:
        BatchMember.objects.create(batch=b, person=p, role="close", region_code=grid.code, picked_up_at=picked,
                                   arrived_at=arrived, removed_at=removed)
    return b


def transfer_world(regions, now: dt.datetime) -> dict:
    """Batches in every state; returns the expected waiting / en-route people and oldest grouping time per grid.

    ====  ==========  ====  =====================================================  ===================
    grid  batch       made  members                                                counts
    ====  ==========  ====  =====================================================  ===================
    a1    waiting     −3 h  3, one taken out of the batch                          2 waiting
    a1    planned     −1 h  2 not picked up                                        2 waiting
    a2    in_transit  −2 h  1 picked up (en route), 1 not yet (next stop)          1 en route, 1 waiting
    b1    in_transit  −4 h  2 picked up and arrived (stop done), 1 on board        1 en route
    b1    delivered   −5 h  2 arrived                                              —
    b2    delivered   −1 h  home quarantine: no vehicle, never picked up           —
    b2    cancelled   −6 h  2 (the batch was cancelled)                            —
    ====  ==========  ====  =====================================================  ===================
    """
    h = dt.timedelta(hours=1)
    g = {k: regions[f"grid_{k}"] for k in ("a1", "a2", "b1", "b2")}

    def people(grid, n):
        return [person(grid) for _ in range(n)]

    a1 = people(g["a1"], 3)
    batch(g["a1"], "waiting", created_at=now - 3 * h,
          members=[(a1[0], None, None, None), (a1[1], None, None, None), (a1[2], None, None, now - 2 * h)])
    batch(g["a1"], "planned", created_at=now - h, members=[(p, None, None, None) for p in people(g["a1"], 2)])
    a2 = people(g["a2"], 2)
    batch(g["a2"], "in_transit", created_at=now - 2 * h,
          members=[(a2[0], now - h / 2, None, None), (a2[1], None, None, None)])
    b1 = people(g["b1"], 3)
    batch(g["b1"], "in_transit", created_at=now - 4 * h,
          members=[(b1[0], now - 2 * h, now - h, None), (b1[1], now - 2 * h, now - h, None),
                   (b1[2], now - h / 2, None, None)])
    batch(g["b1"], "delivered", created_at=now - 5 * h,
          members=[(p, now - 4 * h, now - 3 * h, None) for p in people(g["b1"], 2)])
    batch(g["b2"], "delivered", created_at=now - h, destination="home",
          members=[(p, None, None, None) for p in people(g["b2"], 1)])
    batch(g["b2"], "cancelled", created_at=now - 6 * h, members=[(p, None, None, None) for p in people(g["b2"], 2)])
    return {
        "waiting": {g["a1"].code: 4, g["a2"].code: 1},
        "en_route": {g["a2"].code: 1, g["b1"].code: 1},
        "oldest": {g["a1"].code: (now - 3 * h).timestamp(), g["a2"].code: (now - 2 * h).timestamp()},
    }


# --- facilities and orders ----------------------------------------------------------------------------------------------


def facility(region_code: str, states: dict[str, int], *, kind: str = "quarantine_hotel", active: bool = True,
             beds: int = 1, code: str = ""):
    """A facility with ``states`` rooms per room state (e.g. ``{"free": 5, "occupied": 2}``)."""
    from jingkong.core import clock
    from jingkong.isolation.models import Facility, Room

    f = Facility.objects.create(code=code or f"F-T-{next(_serial)}", name="隔离点", kind=kind, region_code=region_code,
                                lon=121.81, lat=29.91, active=active)
    rooms = []
    for state, n in states.items():
        rooms += [Room(facility=f, number=f"{state[:3]}{i:03d}", floor=1, kind="single", beds=beds, state=state,
                       state_since=clock.now()) for i in range(n)]
    Room.objects.bulk_create(rooms)
    return f


def stay(f, p, *, checked_in_at: dt.datetime, checked_out_at: dt.datetime | None = None):
    """A stay in one of the facility's occupied rooms (arrivals of the reserve forecast)."""
    from jingkong.isolation.models import Room, RoomStay

    room = Room.objects.filter(facility=f, state="occupied").order_by("pk").first()
    return RoomStay.objects.create(room=room, person=p, tier="close", region_code=p.grid.code,
                                   reserved_at=checked_in_at, checked_in_at=checked_in_at,
                                   checked_out_at=checked_out_at)


def order(p, mode: str, status: str = "active"):
    from jingkong.core import clock
    from jingkong.isolation.models import IsolationOrder

    now = clock.now()
    today = clock.today()
    return IsolationOrder.objects.create(person=p, tier="close", mode=mode, status=status, region_code=p.grid.code,
                                         counted_from=today - dt.timedelta(days=1), starts_on=today,
                                         ends_on=today + dt.timedelta(days=7), created_at=now, updated_at=now)


# --- checkpoints ------------------------------------------------------------------------------------------------------


def checkpoint(region, code: str = ""):
    from jingkong.codes.models import Checkpoint
    from jingkong.core import clock

    return Checkpoint.objects.create(code=code or f"CP-T-{next(_serial)}", name="卡口", kind="road",
                                     region_code=region.code, lon=121.81, lat=29.905, created_at=clock.now())


def crossing(cp, at: dt.datetime, decision: str = "allow"):
    from jingkong.codes.models import Crossing

    return Crossing.objects.create(client_id=f"dash-ops-{next(_serial)}", checkpoint=cp, region_code=cp.region_code,
                                   at=at, subject="person", decision=decision, received_at=at)


def past_min_interval(family: str) -> None:
    """Move the family's last refresh just past its ``min_interval``."""
    from jingkong.dashboard import families

    backdate(family, families.get(family).min_interval + 1)
