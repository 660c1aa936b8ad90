"""Helpers for the health-code engine tests: people in the test district, and the facts the engine reads."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

NOW = dt.datetime(2022, 1, 10, 4, 0, tzinfo=dt.UTC)  # 12:00 in Shanghai, 10 January 2022
_serial = itertools.count(1)


def activate(code: str = "cn-8th-2021", *, region_code: str = "330206", when: dt.datetime | None = None):
    from jingkong.geo.models import Region
    from jingkong.policy.models import PolicyProfile
    from jingkong.policy.selectors import active_profile_cache_clear
    from jingkong.policy.services import profile_activate, profile_install_builtin

    if not PolicyProfile.objects.filter(code=code).exists():
        profile_install_builtin()
    profile = PolicyProfile.objects.filter(code=code).order_by("-version").first()
    activation = profile_activate(profile=profile, region=Region.objects.get(code=region_code), actor=None,
                                  reason="test", at=when or dt.datetime(2021, 12, 1, tzinfo=dt.UTC))
    active_profile_cache_clear()
    return activation


@pytest.fixture
def now():
    from jingkong.core import clock
    from jingkong.policy.selectors import active_profile_cache_clear

    active_profile_cache_clear()
    with clock.frozen(NOW) as at:
        yield at
    active_profile_cache_clear()


@pytest.fixture
def district(regions, now):
    activate()
    return regions


def person(grid, name: str = "", *, industry: str = ""):
    from jingkong.core import clock
    from jingkong.people.models import Person

    n = next(_serial)
    t = clock.now()
    return Person.objects.create(id_hash=f"codes-test-{n:052d}", id_masked=f"3302**********{n % 10000:04d}",
                                 name=name or f"居民{n}", sex="M" if n % 2 else "F", birth_date=dt.date(1980, 1, 1),
                                 grid=grid, industry=industry, created_at=t, updated_at=t)


def case(p, classification: str = "confirmed", status: str = "investigating"):
    from jingkong.core import clock
    from jingkong.tracing.models import Case

    t = clock.now()
    return Case.objects.create(ref=f"TC-2022-{next(_serial):05d}", person=p, classification=classification,
                               status=status, first_positive_at=t - dt.timedelta(days=1),
                               region_code=p.grid.code, created_at=t, updated_at=t)


def contact(p, tier: str = "close", *, exposure: dt.datetime | None = None, status: str = "identified"):
    from jingkong.core import clock
    from jingkong.tracing.models import Contact

    t = clock.now()
    return Contact.objects.create(person=p, tier=tier, status=status, region_code=p.grid.code,
                                  queue_region_code=p.grid.code, last_exposure_at=exposure,
                                  first_identified_at=t, created_at=t, updated_at=t)


def set_test_state(p, status: str, *, controlled: bool = False):
    from jingkong.core import clock
    from jingkong.testing.models import PersonTestState

    return PersonTestState.objects.update_or_create(
        person=p, defaults={"region_code": p.grid.code, "status": status, "controlled_in_place": controlled,
                            "controlled_since": clock.now() if controlled else None, "updated_at": clock.now()})[0]


def order(p, mode: str = "central", *, tier: str = "close", starts: dt.date, ends: dt.date, status: str = "active"):
    from jingkong.core import clock
    from jingkong.isolation.models import IsolationOrder

    t = clock.now()
    return IsolationOrder.objects.create(person=p, tier=tier, mode=mode, status=status, region_code=p.grid.code,
                                         counted_from=starts, starts_on=starts, ends_on=ends, created_at=t,
                                         updated_at=t)


def zone(type_: str, people, *, region_code: str = "330206002"):
    from jingkong.core import clock
    from jingkong.zones.models import Zone, ZoneResident

    t = clock.now()
    z = Zone.objects.create(ref=f"Z-{next(_serial):05d}", name="测试区", type=type_, status="approved",
                            region_code=region_code, proposed_at=t, approved_at=t, updated_at=t)
    ZoneResident.objects.bulk_create([ZoneResident(zone=z, person=p, zone_type=type_, region_code=p.grid.code)
                                      for p in people])
    return z


def risk_area(code: str, level: str = "medium"):
    from jingkong.core import clock
    from jingkong.zones.models import RiskArea

    return RiskArea.objects.create(source="imported", area_code=code, name=f"风险区{code}", level=level,
                                   published_at=clock.now() - dt.timedelta(days=30))


def arrival(p, origin: str, *, days_ago: float):
    from jingkong.codes.models import Arrival
    from jingkong.core import clock

    t = clock.now()
    return Arrival.objects.create(person=p, origin_code=origin, arrived_at=t - dt.timedelta(days=days_ago),
                                  source="declaration", region_code=p.grid.code, created_at=t)


def referral(p, status: str = "referred"):
    from decimal import Decimal

    from jingkong.codes.models import FeverReferral
    from jingkong.core import clock

    return FeverReferral.objects.create(person=p, temperature=Decimal("37.8"), measured_at=clock.now(), status=status,
                                        region_code=p.grid.code)


def code_of(p):
    from jingkong.codes.models import HealthCode

    return HealthCode.objects.filter(person_id=p.pk).first()
