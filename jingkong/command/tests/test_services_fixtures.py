"""Shared fixtures of the services tests (no tests here): a district with an active profile, residents with a
building, phone and vulnerable groups, field workers; imported by the test_service*/test_supplies*/test_help* modules.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

NOW = dt.datetime(2022, 1, 3, 2, 0, tzinfo=dt.UTC)  # 10:00 in Ningbo
_serial = itertools.count(1)


def activate(code: str = "cn-8th-2021"):
    from jingkong.geo.models import Region
    from jingkong.policy.models import PolicyProfile
    from jingkong.policy.selectors import active_profile_cache_clear
    from jingkong.policy.services import profile_activate, profile_install_builtin

    if not PolicyProfile.objects.filter(code=code).exists():
        profile_install_builtin()
    profile = PolicyProfile.objects.filter(code=code).order_by("-version").first()
    profile_activate(profile=profile, region=Region.objects.get(code="330206"), actor=None, reason="test",
                     at=dt.datetime(2021, 12, 1, tzinfo=dt.UTC))
    active_profile_cache_clear()


def make_resident(grid, *, vulnerable: int = 0, phone: str | None = None, building=None, name: str = ""):
    """A resident with a valid ID number; returns (person, id_number)."""
    from jingkong.geo.models import Building
    from jingkong.people.idnumber import id_hash, id_mask
    from jingkong.people.models import Person
    from jingkong.people.tests.helpers import make_id

    n = next(_serial)
    # Birth dates spread over 1950–2018 and unique per n (373 and 25,000 are coprime): never in the future, however
    # many residents the earlier test modules made (the counter is per process).
    number = make_id(dt.date(1950, 1, 1) + dt.timedelta(days=(373 * n) % 25_000), n)
    if building is None:
        building = Building.objects.filter(grid=grid).first() or Building.objects.create(
            code=f"SV-B-{grid.code}-{n}", grid=grid, address=f"{grid.name} {n}号楼", lon=121.8, lat=29.9)
    person = Person.objects.create(
        id_hash=id_hash(number), id_masked=id_mask(number), name=name or f"居民{n}号", sex="M",
        birth_date=dt.date(1950, 1, 1), phone=phone if phone is not None else f"1390000{n:04d}", grid=grid,
        building=building, unit="1", room=f"{100 + n}", vulnerable=vulnerable, created_at=NOW, updated_at=NOW)
    return person, number


def make_worker(region_code: str, *, role: str = "grid_worker", user=None, name: str = "", buildings=()):
    from jingkong.command.models import FieldWorker

    worker = FieldWorker.objects.create(name=name or f"网格员{next(_serial)}", phone="13800000000", role=role,
                                        region_code=region_code, user=user)
    if buildings:
        worker.buildings.set(buildings)
    return worker


@pytest.fixture
def sv_now():
    from jingkong.core import clock

    with clock.frozen(NOW) as at:
        yield at


@pytest.fixture
def sv_world(regions, sv_now):
    """Profile cn-8th-2021 in force district-wide; a grid worker in grid A1 and in grid B1."""
    from jingkong.policy.selectors import active_profile_cache_clear

    active_profile_cache_clear()
    activate()
    return {"regions": regions, "worker_a1": make_worker(regions["grid_a1"].code, name="网格员甲"),
            "worker_b1": make_worker(regions["grid_b1"].code, name="网格员乙")}
