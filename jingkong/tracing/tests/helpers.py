"""A small traced world for tests: persons, households and venues in the conftest regions (street A and B), the 2021
policy profile in force, a check-in lake in a temporary directory, and cases made the way testing makes them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """2022-01-<day> hour:minute Shanghai time, as an aware UTC datetime."""
    return dt.datetime(2022, 1, day, hour, minute, tzinfo=SHANGHAI).astimezone(dt.UTC)


NOW = at(5, 12)  # the frozen "now" of most tests


def activate(code: str = "cn-8th-2021", *, region=None, when: dt.datetime | None = None):
    from jingkong.geo.models import Region
    from jingkong.policy.models import PolicyProfile
    from jingkong.policy.selectors import active_profile_cache_clear
    from jingkong.policy.services import profile_activate, profile_install_builtin

    if not PolicyProfile.objects.filter(code=code).exists():
        profile_install_builtin()
    profile = PolicyProfile.objects.filter(code=code).order_by("-version").first()
    region = region or Region.objects.get(code="330206")
    activation = profile_activate(profile=profile, region=region, actor=None, reason="test",
                                  at=when or dt.datetime(2021, 12, 1, tzinfo=dt.UTC))
    active_profile_cache_clear()
    return activation


class World:
    """``person(name, side="a", household=..., workplace=...)``; ``venue(code, side=..., type=...)``."""

    def __init__(self, regions):
        from jingkong.geo.models import Building

        self.regions = regions
        self.buildings = {
            side: Building.objects.create(code=f"B-T-{side}", grid=regions[f"grid_{side}1"],
                                          address=f"{regions[f'grid_{side}1'].name} 8号楼", lon=121.805, lat=29.905)
            for side in ("a", "b")
        }
        self.households: dict[str, object] = {}
        self.venues: dict[str, object] = {}
        self.people: dict[str, object] = {}
        self.numbers: dict[str, str] = {}

    def household(self, code: str, side: str = "a"):
        from jingkong.people.models import Household

        if code not in self.households:
            b = self.buildings[side]
            self.households[code] = Household.objects.create(code=code, building=b, grid=b.grid, unit="1",
                                                             room=f"{100 + len(self.households)}")
        return self.households[code]

    def venue(self, code: str, *, side: str = "a", type: str = "supermarket", name: str | None = None):
        from jingkong.geo.models import Venue

        if code not in self.venues:
            grid = self.regions[f"grid_{side}1"]
            self.venues[code] = Venue.objects.create(code=code, name=name or f"{code}超市", type=type, lon=121.805,
                                                     lat=29.905, grid=grid)
        return self.venues[code]

    def person(self, name: str, *, side: str = "a", household: str | None = None, workplace: str | None = None,
               grid=True):
        from jingkong.core import clock
        from jingkong.people.idnumber import id_hash, id_mask
        from jingkong.people.models import Person
        from jingkong.people.tests.helpers import make_id

        n = len(self.people) + 1
        number = make_id(dt.date(1970, 1, 1) + dt.timedelta(days=331 * n), n)
        now = clock.now()
        b = self.buildings[side]
        p = Person.objects.create(
            id_hash=id_hash(number), id_masked=id_mask(number), name=name, sex="M" if n % 2 else "F",
            birth_date=dt.date(1970, 1, 1) + dt.timedelta(days=331 * n), phone=f"1390000{n:04d}",
            grid=b.grid if grid else None, building=b if grid else None,
            household=self.household(household, side) if household else None,
            workplace=self.venue(workplace, side=side, type="factory", name=f"{workplace}厂") if workplace else None,
            created_at=now, updated_at=now,
        )
        self.people[name] = p
        self.numbers[name] = number
        return p

    def __getitem__(self, name: str):
        return self.people[name]


def write_checkins(root: Path, rows: list[tuple], name: str = "src-test.parquet") -> None:
    """(person, venue, checkin_at, checkout_at) rows (persons/venues as objects or ids) into a lake at ``root``."""
    from jingkong.tracing.lake import CHECKIN_SCHEMA, local_date

    by_day: dict[dt.date, list[tuple]] = {}
    for person, venue, start, end in rows:
        by_day.setdefault(local_date(start), []).append((getattr(person, "pk", person), getattr(venue, "pk", venue),
                                                         start, end))
    for day, part in by_day.items():
        directory = root / "checkins" / f"day={day.isoformat()}"
        directory.mkdir(parents=True, exist_ok=True)
        columns = list(zip(*part, strict=True))
        pq.write_table(pa.table([pa.array(c, f.type) for c, f in zip(columns, CHECKIN_SCHEMA, strict=True)],
                                schema=CHECKIN_SCHEMA), directory / name)


def positive(person, *, sampled_at: dt.datetime, campaign: str = "R1", via: str = "single_tube") -> dict:
    """The keyword arguments of the testing feature's individual-positive event for ``person``."""
    return {
        "type": "testing.individual_positive", "subject_type": "people.person", "subject_id": person.pk,
        "region_code": person.grid.code if person.grid_id else "",
        "payload": {"sample_id": None, "tube": "T-1", "campaign": campaign, "sampled_at": sampled_at.isoformat(),
                    "resulted_at": (sampled_at + dt.timedelta(hours=8)).isoformat(), "lab": "LAB-1",
                    "ct_values": {"N": 28.1}, "via": via},
    }


def make_cases(*people_and_times) -> list:
    """Cases from individual-positive events, as testing emits them: ``make_cases((person, sampled_at), ...)``."""
    from django.db import transaction

    from jingkong.core.events import emit_many
    from jingkong.tracing.models import Case

    with transaction.atomic():
        emit_many([positive(p, sampled_at=t) for p, t in people_and_times])
    return [Case.objects.get(person=p) for p, _ in people_and_times]
