"""Test data for the lab side: persons, labs, sites, campaigns and filled tubes, written directly with the ORM
(the sampling service is not needed to test results, custody and turnaround)."""

from __future__ import annotations

import datetime as dt
import itertools

from jingkong.conftest import T0

_serial = itertools.count(1)


def make_persons(grid, n: int, *, prefix: str = "P") -> list:
    from jingkong.people.models import Person

    now = T0
    start = next(_serial) * 100_000
    rows = [Person(id_hash=f"{prefix}{start + i:030d}", id_masked="3302**********0000", name=f"居民{start + i}",
                   sex="F" if i % 2 else "M", birth_date=dt.date(1980, 1, 1), grid=grid, created_at=now,
                   updated_at=now) for i in range(n)]
    Person.objects.bulk_create(rows)
    return list(Person.objects.filter(id_hash__in=[r.id_hash for r in rows]).order_by("id"))


def make_lab(region, code: str = "LAB1", *, technicians=(), target_hours: int = 12, capacity: int = 500):
    from jingkong.testing.models import Lab

    lab = Lab.objects.create(code=code, name=f"实验室 {code}", region=region, region_code=region.code,
                             capacity_per_hour=capacity, target_hours=target_hours)
    if technicians:
        lab.technicians.set(technicians)
    return lab


def make_campaign(region, code: str = "R1", *, starts_at: dt.datetime = T0):
    from jingkong.testing.models import Campaign, CampaignStatus

    return Campaign.objects.create(code=code, name=f"第{code}轮", region=region, region_code=region.code,
                                   starts_at=starts_at, deadline=starts_at + dt.timedelta(days=1),
                                   status=CampaignStatus.RUNNING, created_at=starts_at, updated_at=starts_at)


def make_site(region, code: str = "S1", *, campaign=None, samplers=()):
    from jingkong.testing.models import SamplingSite

    site = SamplingSite.objects.create(code=code, name=f"采样点 {code}", region=region, region_code=region.code,
                                       lon=121.81, lat=29.905, campaign=campaign)
    if samplers:
        site.samplers.set(samplers)
    return site


def make_tube(barcode: str, persons, *, capacity: int | None = None, kind: str = "routine", campaign=None, site=None,
              status: str = "sealed", sampled_at: dt.datetime = T0, region_code: str | None = None, lab=None,
              batch=None, received_at=None, retest_of=None, sampled_step: dt.timedelta = dt.timedelta(minutes=1)):
    """A tube holding one swab of each person (sampled one minute apart from ``sampled_at``)."""
    from jingkong.testing.models import Sample, Tube

    persons = list(persons)
    capacity = capacity or max(1, len(persons))
    region = region_code or (site.region_code if site else (persons[0].grid.code if persons else ""))
    tube = Tube.objects.create(
        barcode=barcode, campaign=campaign, site=site, region_code=region, kind=kind, capacity=capacity,
        member_count=len(persons), status=status, opened_at=sampled_at,
        sealed_at=(sampled_at + sampled_step * len(persons)) if status != "open" else None,
        lab=lab, batch=batch, received_at=received_at)
    Sample.objects.bulk_create([
        Sample(client_scan_id=f"{barcode}:{p.pk}", campaign=campaign, tube=tube, person=p, site=site,
               region_code=p.grid.code if p.grid_id else region, position=i + 1, sampled_at=sampled_at + sampled_step * i,
               recorded_at=sampled_at + sampled_step * i,
               retest_of=(retest_of.get(p.pk) if isinstance(retest_of, dict) else retest_of))
        for i, p in enumerate(persons)
    ])
    return tube


def row(tube: str, outcome: str, *, n: int = 1, ct=None, tested_at=None, instrument: str = "", operator: str = ""):
    from jingkong.testing.results import ResultRow

    return ResultRow(n, tube, outcome, dict(ct or {}), instrument, operator, tested_at)


def state_of(person):
    from jingkong.testing.models import PersonTestState

    return PersonTestState.objects.filter(person=person).first()
