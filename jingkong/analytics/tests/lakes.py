"""Crafted small lakes for tests: a few persons, households and venues in the database, and normalized lake files
written directly with pyarrow (the layout of jingkong.tracing.lake)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq

from jingkong.tracing.lake import CHECKIN_SCHEMA, PING_SCHEMA, TRANSPORT_SCHEMA, local_date

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    """2022-01-<day> hour:minute Shanghai time, as an aware UTC datetime."""
    return dt.datetime(2022, 1, day, hour, minute, second, tzinfo=SHANGHAI).astimezone(dt.UTC)


def _write_by_day(root: Path, table: str, schema: pa.Schema, rows: list[tuple], time_index: int,
                  name: str = "src-test.parquet") -> None:
    by_day: dict[dt.date, list[tuple]] = {}
    for r in rows:
        by_day.setdefault(local_date(r[time_index]), []).append(r)
    for day, part in by_day.items():
        directory = root / table / f"day={day.isoformat()}"
        directory.mkdir(parents=True, exist_ok=True)
        columns = list(zip(*part, strict=True))
        pq.write_table(pa.table([pa.array(c, f.type) for c, f in zip(columns, schema, strict=True)], schema=schema),
                       directory / name)


def write_checkins(root: Path, rows: list[tuple[int, int, dt.datetime, dt.datetime]], **kw) -> None:
    """(person_id, venue_id, checkin_at, checkout_at) rows."""
    _write_by_day(root, "checkins", CHECKIN_SCHEMA, rows, 2, **kw)


def write_pings(root: Path, rows: list[tuple[int, float, float, dt.datetime]]) -> None:
    """(person_id, lon, lat, at) rows."""
    _write_by_day(root, "pings", PING_SCHEMA, rows, 3)


def write_transport(root: Path, rows: list[tuple]) -> None:
    """(person_id, mode, number, date, carriage, seat) rows."""
    directory = root / "transport"
    directory.mkdir(parents=True, exist_ok=True)
    columns = list(zip(*rows, strict=True))
    pq.write_table(pa.table([pa.array(c, f.type) for c, f in zip(columns, TRANSPORT_SCHEMA, strict=True)],
                            schema=TRANSPORT_SCHEMA), directory / "src-test.parquet")


class World:
    """Persons, households and venues in the conftest regions. ``person(name, household=, workplace=)``."""

    def __init__(self, regions):
        from jingkong.geo.models import Building

        self.regions = regions
        self.grid = regions["grid_a1"]
        self.building = Building.objects.create(code="B-W-1", grid=self.grid, lon=121.805, lat=29.905)
        self.households: dict[str, object] = {}
        self.venues: dict[str, object] = {}
        self.people: dict[str, object] = {}
        self.numbers: dict[str, str] = {}

    def household(self, code: str):
        from jingkong.people.models import Household

        if code not in self.households:
            self.households[code] = Household.objects.create(code=code, building=self.building, grid=self.grid)
        return self.households[code]

    def venue(self, code: str, name: str | None = None, type: str = "supermarket"):
        from jingkong.geo.models import Venue

        if code not in self.venues:
            self.venues[code] = Venue.objects.create(code=code, name=name or f"场所{code}", type=type, lon=121.805,
                                                     lat=29.905, grid=self.grid)
        return self.venues[code]

    def person(self, name: str, *, household: str | None = None, workplace: str | None = None, seq: int | None = None):
        from jingkong.core import clock
        from jingkong.people.idnumber import id_hash, id_mask
        from jingkong.people.models import Person
        from jingkong.people.tests.helpers import make_id

        n = seq if seq is not None else len(self.people) + 1
        number = make_id(dt.date(1960, 1, 1) + dt.timedelta(days=331 * n), n)
        now = clock.now()
        p = Person.objects.create(
            id_hash=id_hash(number), id_masked=id_mask(number), name=name, sex="M" if n % 2 else "F",
            birth_date=dt.date(1960, 1, 1), grid=self.grid, building=self.building,
            household=self.household(household) if household else None,
            workplace=self.venue(workplace, type="factory") if workplace else None, created_at=now, updated_at=now,
        )
        self.people[name] = p
        self.numbers[name] = number
        return p

    def __getitem__(self, name: str) -> int:
        return self.people[name].pk

    def v(self, code: str) -> int:
        return self.venue(code).pk
