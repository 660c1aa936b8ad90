"""Rows for sampling tests, created directly with the ORM (campaigns, sites, persons, retest tasks)."""

from __future__ import annotations

import datetime as dt
import itertools

from jingkong.conftest import T0
from jingkong.people import idnumber
from jingkong.people.tests.helpers import make_id

_serial = itertools.count(1)


def person(region, i: int | None = None, *, name: str | None = None, born: dt.date | None = None):
    """A registered person living in ``region`` (a grid); returns (person, ID number)."""
    from jingkong.core import clock
    from jingkong.people.models import Person

    i = next(_serial) if i is None else i
    born = born or dt.date(1960, 1, 1) + dt.timedelta(days=37 * i)
    number = make_id(born, i)
    now = clock.now()
    p = Person.objects.create(id_hash=idnumber.id_hash(number), id_masked=idnumber.id_mask(number),
                              name=name or f"居民{i}", sex=idnumber.sex_of(number), birth_date=born, grid=region,
                              created_at=now, updated_at=now)
    return p, number


def new_id(i: int) -> str:
    """A valid ID number nobody is registered with (born 2001)."""
    return make_id(dt.date(2001, 2, 3) + dt.timedelta(days=i), 500 + i % 400)


def campaign(region, code: str | None = None, *, status: str = "running", pool_size: int = 10, key_industry: str = "",
             starts: dt.datetime | None = None, deadline: dt.datetime | None = None, areas: dict | None = None):
    from jingkong.testing.models import Campaign, CampaignArea

    starts = starts or T0 - dt.timedelta(hours=2)
    c = Campaign.objects.create(code=code or f"R{next(_serial)}", name="第一轮全员核酸", region=region,
                                region_code=region.code, pool_size=pool_size, starts_at=starts,
                                deadline=deadline or starts + dt.timedelta(days=1), status=status,
                                key_industry=key_industry, created_at=T0, updated_at=T0)
    for area, size in (areas or {}).items():
        CampaignArea.objects.create(campaign=c, region=area, region_code=area.code, mode="street", pool_size=size)
    return c


def site(region, code: str | None = None, *, samplers=(), kind: str = "temporary", active: bool = True,
         campaign=None):
    from jingkong.testing.models import SamplingSite

    s = SamplingSite.objects.create(code=code or f"S{next(_serial)}", name="采样点", kind=kind, region=region,
                                    region_code=region.code, lon=121.8, lat=29.9, active=active, campaign=campaign)
    if samplers:
        s.samplers.add(*samplers)
    return s


def retest_task(person, *, reason: str = "pool_positive", campaign=None, barcode: str | None = None,
                created: dt.datetime | None = None):
    """An open retest task of ``person`` from a (positive) source tube."""
    from jingkong.testing.models import RetestTask, Tube

    tube = Tube.objects.create(barcode=barcode or f"SRC{next(_serial)}", region_code=person.grid.code, capacity=10,
                               member_count=0, status="resulted", opened_at=T0 - dt.timedelta(days=1),
                               outcome="positive")
    return RetestTask.objects.create(person=person, campaign=campaign, source_tube=tube, reason=reason,
                                     region_code=person.grid.code, created_at=created or T0 - dt.timedelta(hours=3))


def scan(tube: str, number: str, site_code: str, **extra) -> dict:
    return {"tube": tube, "id_number": number, "site": site_code, **extra}
