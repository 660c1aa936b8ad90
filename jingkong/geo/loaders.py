"""Bulk loaders for the base map's point data: ``buildings.csv`` and ``venues.csv`` (docs/district-format.md).

Both upsert by code (loading the same file twice gives the same rows) with :func:`jingkong.core.bulk.bulk_upsert`.
Rows naming an unknown grid (or an unknown venue type) are skipped and reported with their line number.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.db import transaction

from jingkong.core import bulk
from jingkong.geo.models import VenueType

BUILDING_COLUMNS = ["code", "grid_id", "address", "lon", "lat", "units", "floors", "household_count"]
VENUE_COLUMNS = ["code", "name", "type", "lon", "lat", "grid_id", "building_id"]


@dataclass
class LoadReport:
    rows: int = 0
    written: int = 0
    errors: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["errors"] = self.errors[:50]
        out["error_count"] = len(self.errors)
        return out


def _records(path: str | Path):
    """(line, dict) per record of a UTF-8 (BOM optional) or GB18030 CSV file."""
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("gb18030")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    previous = reader.line_num
    for record in reader:
        start, previous = previous + 1, reader.line_num
        yield start, {(k or "").strip(): (v or "").strip() for k, v in record.items()}


def _number(value: str, kind=float):
    return kind(value) if value != "" else None


def _grids() -> dict[str, int]:
    return bulk.code_map("geo_region", where="WHERE level = %s", params=["grid"])


@transaction.atomic
def buildings_load(path: str | Path, *, chunk_size: int = 20_000) -> LoadReport:
    """Upsert buildings from ``buildings.csv`` (building_code,grid_code,address,lon,lat,units,floors,households)."""
    grids = _grids()
    report = LoadReport()
    rows, seen = [], set()
    for line, r in _records(path):
        report.rows += 1
        code = r.get("building_code", "")
        try:
            if not code:
                raise ValueError("building_code: required field is empty")
            if code in seen:
                raise ValueError("building_code: duplicate code in the file")
            grid = grids.get(r.get("grid_code", ""))
            if grid is None:
                raise ValueError("grid_code: unknown grid code")
            row = (code, grid, r.get("address", "")[:255], float(r["lon"]), float(r["lat"]),
                   _number(r.get("units", ""), int) or 1, _number(r.get("floors", ""), int) or 1,
                   _number(r.get("households", ""), int) or 0)
        except (ValueError, KeyError, TypeError) as exc:
            report.errors.append({"line": line, "reason": str(exc)})
            continue
        seen.add(code)
        rows.append(row)
    for i in range(0, len(rows), chunk_size):
        report.written += bulk.bulk_upsert("geo_building", BUILDING_COLUMNS, rows[i: i + chunk_size],
                                           conflict_columns=["code"], update_columns=BUILDING_COLUMNS[1:])
    return report


@transaction.atomic
def venues_load(path: str | Path, *, chunk_size: int = 20_000) -> LoadReport:
    """Upsert venues from ``venues.csv`` (venue_code,name,type,lon,lat,grid_code,building_code)."""
    grids = _grids()
    buildings = bulk.code_map("geo_building")
    types = set(VenueType.values)
    report = LoadReport()
    rows, seen = [], set()
    for line, r in _records(path):
        report.rows += 1
        code = r.get("venue_code", "")
        try:
            if not code:
                raise ValueError("venue_code: required field is empty")
            if code in seen:
                raise ValueError("venue_code: duplicate code in the file")
            grid = grids.get(r.get("grid_code", ""))
            if grid is None:
                raise ValueError("grid_code: unknown grid code")
            vtype = r.get("type", "") or VenueType.OTHER
            if vtype not in types:
                raise ValueError(f"type: unknown venue type {vtype!r}")
            building = None
            if r.get("building_code"):
                building = buildings.get(r["building_code"])
                if building is None:
                    raise ValueError("building_code: unknown building code")
            row = (code, r.get("name", "")[:255] or code, vtype, float(r["lon"]), float(r["lat"]), grid, building)
        except (ValueError, KeyError, TypeError) as exc:
            report.errors.append({"line": line, "reason": str(exc)})
            continue
        seen.add(code)
        rows.append(row)
    for i in range(0, len(rows), chunk_size):
        report.written += bulk.bulk_upsert("geo_venue", VENUE_COLUMNS, rows[i: i + chunk_size],
                                           conflict_columns=["code"], update_columns=VENUE_COLUMNS[1:])
    return report
