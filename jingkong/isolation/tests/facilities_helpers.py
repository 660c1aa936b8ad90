"""Small worlds for the facilities and orders tests: people, households, facilities with rooms, samples with results."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest

SHANGHAI = ZoneInfo("Asia/Shanghai")
_serial = itertools.count(1)


def at(day: int, hour: int = 9, minute: int = 0, month: int = 1, year: int = 2022) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(dt.UTC)


def activate(code: str = "cn-8th-2021"):
    from jingkong.tracing.tests.helpers import activate as tracing_activate

    return tracing_activate(code)


def person(regions, name: str = "", *, side: str = "a", household=None, vulnerable: int = 0):
    from jingkong.core import clock
    from jingkong.people.models import Person

    n = next(_serial)
    now = clock.now()
    return Person.objects.create(id_hash=f"iso-fac-{n:056d}", id_masked="3302**********0000",
                                 name=name or f"隔离{n}", sex="M", birth_date=dt.date(1980, 1, 1),
                                 grid=regions[f"grid_{side}1"], household=household, vulnerable=vulnerable,
                                 created_at=now, updated_at=now)


def household(regions, *, side: str = "a"):
    from jingkong.geo.models import Building
    from jingkong.people.models import Household

    grid = regions[f"grid_{side}1"]
    building, _ = Building.objects.get_or_create(code=f"B-iso-{side}", defaults={"grid": grid, "lon": 121.805,
                                                                                 "lat": 29.905})
    return Household.objects.create(code=f"H-iso-{next(_serial)}", building=building, grid=grid)


def facility(regions, *, side: str = "a", kind: str = "quarantine_hotel", code: str | None = None,
             floors=(1, 2), per_floor: int = 5, family: int = 0, accessible: int = 0, mixing_forbidden=True):
    """A facility with ``per_floor`` single rooms on each floor, plus family (3 beds) and accessible rooms on floor 1."""
    from jingkong.core import clock
    from jingkong.isolation.models import Facility, Room

    now = clock.now()
    f = Facility.objects.create(code=code or f"F-{side}-{next(_serial)}", name=f"隔离酒店{side}", kind=kind,
                                region_code=regions[f"street_{side}"].code, lon=121.8, lat=29.9,
                                mixing_tiers_forbidden=mixing_forbidden)
    rooms = [Room(facility=f, number=f"{fl}{n:02d}", floor=fl, kind="single", beds=1, state="free", state_since=now)
             for fl in floors for n in range(1, per_floor + 1)]
    rooms += [Room(facility=f, number=f"1F{n}", floor=floors[0], kind="family", beds=3, state="free", state_since=now)
              for n in range(1, family + 1)]
    rooms += [Room(facility=f, number=f"1A{n}", floor=floors[0], kind="accessible", beds=1, state="free",
                   state_since=now) for n in range(1, accessible + 1)]
    Room.objects.bulk_create(rooms)
    return f


def contact(person, *, tier: str = "close", last_exposure: dt.datetime | None = None):
    from jingkong.core import clock
    from jingkong.tracing.models import Contact

    now = clock.now()
    return Contact.objects.create(person=person, tier=tier, region_code=person.grid.code,
                                  queue_region_code=person.grid.code[:9], last_exposure_at=last_exposure,
                                  first_identified_at=now, created_at=now, updated_at=now)


def sample(person, sampled_at: dt.datetime, outcome: str = "negative", *, capacity: int = 1, lab=None):
    """A single-tube (or pooled) sample of ``person`` with its tube's outcome ('' = at the lab)."""
    from jingkong.testing.models import Lab, Sample, Tube

    n = next(_serial)
    if lab is None:
        lab, _ = Lab.objects.get_or_create(code="LAB-ISO", defaults={"name": "lab", "region": person.grid,
                                                                     "region_code": person.grid.code})
    tube = Tube.objects.create(barcode=f"ISO{n:08d}", region_code=person.grid.code, kind="routine", capacity=capacity,
                               member_count=1, status="resulted" if outcome else "sealed", opened_at=sampled_at,
                               lab=lab, outcome=outcome, resulted_at=sampled_at + dt.timedelta(hours=6) if outcome
                               else None)
    return Sample.objects.create(client_scan_id=f"iso-{n}", tube=tube, person=person, region_code=person.grid.code,
                                 sampled_at=sampled_at, recorded_at=sampled_at)


@pytest.fixture(autouse=True)
def fresh_policy_cache():
    """Import into a test module (autouse there): the policy cache is cleared around each test."""
    from jingkong.policy.selectors import active_profile_cache_clear

    active_profile_cache_clear()
    yield
    active_profile_cache_clear()
