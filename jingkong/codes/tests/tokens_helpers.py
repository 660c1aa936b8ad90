"""Small fixtures for the token, key, 亮码 page and lookup tests: a policy in force, residents with codes."""

from __future__ import annotations

import datetime as dt
import itertools

from jingkong.people.idnumber import check_char, id_hash, id_mask

NOW = dt.datetime(2022, 1, 10, 2, 0, tzinfo=dt.UTC)  # 10:00 in Ningbo
_serial = itertools.count(1)


def make_id(born: dt.date, seq: int, area: str = "330206") -> str:
    first17 = f"{area}{born:%Y%m%d}{seq % 1000:03d}"
    return first17 + check_char(first17)


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


def resident(grid, *, name: str = "张三丰", phone: str = "13800001234", colour: str = "green",
             reasons: list | None = None, green_on: dt.date | None = None, id_number: str | None = None):
    """A person in ``grid`` with a computed health code; returns ``(person, id_number)``."""
    from jingkong.codes.models import HealthCode
    from jingkong.people.models import Person

    n = next(_serial)
    number = id_number or make_id(dt.date(1980, 1, 1) + dt.timedelta(days=n), 100 + n)
    person = Person.objects.create(id_hash=id_hash(number), id_masked=id_mask(number), name=name, sex="M",
                                   birth_date=dt.date(1980, 1, 1), phone=phone, grid=grid, created_at=NOW,
                                   updated_at=NOW)
    HealthCode.objects.create(person=person, colour=colour, reasons=reasons or [], green_on=green_on,
                              region_code=grid.code, rule_id=(reasons or [{}])[0].get("rule", ""),
                              computed_at=NOW, changed_at=NOW)
    return person, number


RED_REASONS = [{"rule": "close_contact_central", "colour": "red", "reason": "Close contact in centralised quarantine",
                "until": "2022-01-20"},
               {"rule": "lockdown_zone_resident", "colour": "red", "reason": "Lives in a lockdown zone",
                "until": None}]
