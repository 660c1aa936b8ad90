"""Fixtures for the checkpoint and venue-entry tests: a policy in force, residents with codes and tokens, checkpoints,
venues, zones, risk areas."""

from __future__ import annotations

import datetime as dt
import itertools

from jingkong.people.idnumber import check_char, id_hash, id_mask

NOW = dt.datetime(2022, 1, 10, 2, 0, tzinfo=dt.UTC)  # 10:00 in Ningbo
_serial = itertools.count(1)


def make_id(born: dt.date, seq: int, area: str = "330206") -> str:
    first17 = f"{area}{born:%Y%m%d}{seq % 1000:03d}"
    return first17 + check_char(first17)


def new_id() -> str:
    n = next(_serial)
    return make_id(dt.date(1970, 1, 1) + dt.timedelta(days=n * 7), 500 + n)


def activate(code: str = "cn-8th-2021"):
    from jingkong.geo.models import Region
    from jingkong.policy.models import PolicyProfile
    from jingkong.policy.selectors import active_profile_cache_clear
    from jingkong.policy.services import profile_activate, profile_install_builtin

    if not PolicyProfile.objects.filter(code=code).exists():
        profile_install_builtin()
    profile = PolicyProfile.objects.filter(code=code).order_by("-version").first()
    activation = profile_activate(profile=profile, region=Region.objects.get(code="330206"), actor=None,
                                  reason="test", at=dt.datetime(2021, 12, 1, tzinfo=dt.UTC))
    active_profile_cache_clear()
    return activation


def resident(grid, *, name: str = "李四光", colour: str = "green", with_code: bool = True):
    """A person in ``grid`` (with a health code of ``colour``); returns ``(person, id_number)``."""
    from jingkong.codes.models import HealthCode
    from jingkong.people.models import Person

    number = new_id()
    person = Person.objects.create(id_hash=id_hash(number), id_masked=id_mask(number), name=name, sex="M",
                                   birth_date=dt.date(1980, 1, 1), grid=grid, created_at=NOW, updated_at=NOW)
    if with_code:
        HealthCode.objects.create(person=person, colour=colour, reasons=[], region_code=grid.code,
                                  computed_at=NOW, changed_at=NOW)
    return person, number


def token_of(person, *, at: dt.datetime = NOW) -> str:
    from jingkong.codes import tokens

    return tokens.issue(person, at=at)


def checkpoint(region, code: str = "CP-A1", *, kind: str = "road", zone=None, staff=(), active: bool = True):
    from jingkong.codes.models import Checkpoint

    cp = Checkpoint.objects.create(code=code, name=f"卡口 {code}", kind=kind, region_code=region.code, lon=121.81,
                                   lat=29.905, zone=zone, active=active, created_at=NOW)
    cp.staff.set(staff)
    return cp


def venue(grid, code: str = "V-A1"):
    from jingkong.geo.models import Venue

    return Venue.objects.create(code=code, name=f"超市 {code}", type="other", lon=121.805, lat=29.905, grid=grid)


def lockdown_zone(region, person, ref: str = "Z-2022-0001", zone_type: str = "lockdown"):
    from jingkong.zones.models import Zone, ZoneResident

    zone = Zone.objects.create(ref=ref, name="封控区", type=zone_type, status="approved", region_code=region.code,
                               proposed_at=NOW, approved_at=NOW, updated_at=NOW)
    ZoneResident.objects.create(zone=zone, person=person, zone_type=zone_type, region_code=region.code)
    return zone


def risk_area(code: str, level: str):
    from jingkong.zones.models import RiskArea

    return RiskArea.objects.create(source="imported", area_code=code, name=f"area {code}", level=level,
                                   published_at=NOW - dt.timedelta(days=1))


def negative_test(person, hours_ago: float):
    from jingkong.testing.models import PersonTestState

    PersonTestState.objects.update_or_create(person=person, defaults=dict(
        region_code=person.grid.code, status="negative",
        last_negative_sampled_at=NOW - dt.timedelta(hours=hours_ago),
        last_sampled_at=NOW - dt.timedelta(hours=hours_ago), updated_at=NOW))


def a_pass(plate: str, kind: str = "medical", *, region_code: str = "330206002", number: str = "TX-1",
           revoked: bool = False):
    from jingkong.codes.models import Pass

    return Pass.objects.create(number=number, kind=kind, plate=plate, holder="王师傅", region_code=region_code,
                               valid_from=NOW - dt.timedelta(days=1), valid_until=NOW + dt.timedelta(days=6),
                               revoked_at=NOW - dt.timedelta(hours=1) if revoked else None, created_at=NOW)
