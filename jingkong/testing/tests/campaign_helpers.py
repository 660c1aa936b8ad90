"""Test data for rounds and sites: a policy in force, buildings with residents in both streets, campaigns, sites."""

from __future__ import annotations

import datetime as dt
import itertools

from jingkong.conftest import T0

_serial = itertools.count(1)


def activate_policy(regions, code: str = "cn-8th-2021"):
    from jingkong.policy.selectors import profile_get
    from jingkong.policy.services import profile_activate, profile_install_builtin

    profile_install_builtin()
    return profile_activate(profile=profile_get(code=code), region=regions["district"], actor=None,
                            reason="tests", at=T0 - dt.timedelta(days=1))


def make_building(grid, code: str, lon: float | None = None, lat: float | None = None):
    from jingkong.geo.models import Building

    return Building.objects.create(code=code, grid=grid, address=f"{grid.name}{code}",
                                   lon=lon if lon is not None else grid.center_lon,
                                   lat=lat if lat is not None else grid.center_lat)


def make_residents(building, n: int, *, vulnerable: int = 0, industry: str = "", employer: str = "",
                   workplace=None) -> list:
    """``n`` persons living in ``building`` (one household), written directly."""
    from jingkong.people.models import Household, Person

    k = next(_serial)
    household = Household.objects.create(code=f"H-{building.code}-{k}", building=building, grid=building.grid)
    rows = [Person(id_hash=f"cmp{k:06d}{i:026d}", id_masked="3302**********0000", name=f"居民{k}-{i}", sex="M",
                   birth_date=dt.date(1970, 1, 1), grid=building.grid, building=building, household=household,
                   unit="1", room=f"{100 + i}", phone=f"1390000{k % 10000:04d}", vulnerable=vulnerable,
                   industry=industry, employer=employer, workplace=workplace, created_at=T0, updated_at=T0)
            for i in range(n)]
    Person.objects.bulk_create(rows)
    return list(Person.objects.filter(household=household).order_by("id"))


def make_town(regions, per_grid: int = 2, residents: int = 10) -> dict:
    """``per_grid`` buildings per grid (street A and B), each with ``residents`` persons."""
    out = {}
    for key in ("a1", "a2", "b1", "b2"):
        grid = regions[f"grid_{key}"]
        for i in range(per_grid):
            b = make_building(grid, f"B-{key}-{i}", lon=grid.min_lon + 0.002 + 0.002 * i, lat=grid.center_lat)
            out[b.code] = b
            make_residents(b, residents)
    return out


def make_campaign(region, code: str = "", *, status: str = "planned", starts_at: dt.datetime = T0,
                  hours: int = 12, pool_size: int = 10, mode: str = "street"):
    from jingkong.testing.models import Campaign

    return Campaign.objects.create(code=code or f"R-{next(_serial)}", name="全员核酸", region=region,
                                   region_code=region.code, starts_at=starts_at,
                                   deadline=starts_at + dt.timedelta(hours=hours), status=status, mode=mode,
                                   pool_size=pool_size, created_at=T0, updated_at=T0)


def make_site(region, code: str = "", *, campaign=None, capacity: int = 120, kind: str = "temporary",
              lon: float | None = None, lat: float | None = None, **extra):
    from jingkong.testing.models import SamplingSite

    return SamplingSite.objects.create(code=code or f"S-{next(_serial)}", name=f"采样点{code}", region=region,
                                       region_code=region.code, lon=lon if lon is not None else region.center_lon,
                                       lat=lat if lat is not None else region.center_lat, campaign=campaign,
                                       capacity_per_hour=capacity, kind=kind, opens_at=dt.time(0),
                                       closes_at=dt.time(0), **extra)


def make_lab(region, code: str = "", capacity: int = 500):
    from jingkong.testing.models import Lab

    return Lab.objects.create(code=code or f"LAB-{next(_serial)}", name="检测实验室", region=region,
                              region_code=region.code, capacity_per_hour=capacity)


def swab(persons, *, campaign=None, site=None, at: dt.datetime = T0, outcome: str = "", pool: int | None = None):
    """Put ``persons`` into one tube (pool = len(persons) by default) with the given outcome."""
    from jingkong.testing.models import Sample, Tube

    k = next(_serial)
    size = pool or max(1, len(persons))
    tube = Tube.objects.create(barcode=f"T{k:08d}", campaign=campaign, site=site,
                               region_code=persons[0].grid.code, capacity=size, member_count=len(persons),
                               status="resulted" if outcome else "sealed", opened_at=at, sealed_at=at,
                               outcome=outcome, resulted_at=at + dt.timedelta(hours=6) if outcome else None)
    Sample.objects.bulk_create([
        Sample(client_scan_id=f"scan-{k}-{i}", campaign=campaign, tube=tube, person=p, site=site,
               region_code=p.grid.code, position=i + 1, sampled_at=at, recorded_at=at)
        for i, p in enumerate(persons)])
    return tube


def mark_positive(person, at: dt.datetime):
    from jingkong.testing.models import PersonTestState

    PersonTestState.objects.update_or_create(person=person, defaults={
        "region_code": person.grid.code, "status": "positive", "positive_sampled_at": at, "last_sampled_at": at,
        "updated_at": at})
