"""Small fixture files for people tests: valid ID numbers, buildings in the conftest regions, persons CSVs."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

from jingkong.people.idnumber import check_char
from jingkong.people.importer import COLUMNS


def make_id(born: dt.date, seq: int, area: str = "330206") -> str:
    first17 = f"{area}{born:%Y%m%d}{seq % 1000:03d}"
    return first17 + check_char(first17)


def make_buildings(regions) -> dict[str, object]:
    """Two buildings per grid: B-<grid key>-1/2 (e.g. B-a1-1)."""
    from jingkong.geo.models import Building

    out = {}
    for key in ("a1", "a2", "b1", "b2"):
        grid = regions[f"grid_{key}"]
        for i in (1, 2):
            code = f"B-{key}-{i}"
            out[code] = Building.objects.create(code=code, grid=grid, address=f"{grid.name} {i}号楼",
                                                lon=grid.center_lon or 121.8, lat=grid.center_lat or 29.9)
    return out


def person_row(i: int, **overrides) -> dict:
    born = dt.date(1950, 1, 1) + dt.timedelta(days=97 * i)
    row = {
        "id_number": make_id(born, i), "name": f"居民{i}", "sex": "M" if i % 2 else "F",
        "birth_date": born.isoformat(), "phone": f"138{i:08d}", "household_code": f"H{i // 3:05d}",
        "building_code": "B-a1-1" if i % 2 else "B-b1-1", "unit": "1", "room": f"{100 + i}",
        "registered_address": "浙江省宁波市北仑区", "is_registered_local": "1", "vulnerable": "",
        "industry": "", "employer": "", "workplace_venue_code": "",
    }
    row.update(overrides)
    return row


def write_persons(path: Path, rows: list[dict], *, encoding: str = "utf-8", header: list[str] | None = None) -> Path:
    with open(path, "w", newline="", encoding=encoding) as fh:
        w = csv.writer(fh)
        w.writerow(header or COLUMNS)
        for r in rows:
            w.writerow([r.get(c, "") for c in COLUMNS])
    return path


def read_errors(path: Path) -> list[dict]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))
