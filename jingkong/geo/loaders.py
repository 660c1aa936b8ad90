"""Bulk loaders for the base map's point data: ``buildings.csv`` and ``venues.csv`` (docs/district-format.md).

Both upsert by code (loading the same file twice gives the same rows) with :func:`jingkong.core.bulk.bulk_upsert`.
Rows naming an unknown grid (or an unknown venue type), or with coordinates that are not a WGS-84 point, are skipped
and reported with their line number. Points that lie outside every grid polygon, or in another grid than the row
states, are loaded as stated and reported as warnings (the bulk locator checks every point).
"""

from __future__ import annotations

import csv
import io
import math
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
    warnings: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["errors"] = self.errors[:50]
        out["error_count"] = len(self.errors)
        out["warnings"] = self.warnings[:50]
        out["warning_count"] = len(self.warnings)
        return out


def _coordinate(record: dict) -> tuple[float, float]:
    """(lon, lat) of a record, or ValueError naming the field."""
    values = []
    for name, limit in (("lon", 180.0), ("lat", 90.0)):
        raw = record.get(name, "")
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{name}: {raw!r} is not a number") from None
        if not math.isfinite(value) or abs(value) > limit:
            raise ValueError(f"{name}: {raw!r} is outside the WGS-84 range ±{limit:g}")
        values.append(value)
    return values[0], values[1]


def check_points(report: LoadReport, points: list[tuple[int, str, float, float, str]]) -> None:
    """Warn about points (line, code, lon, lat, stated grid code) outside every grid or inside another grid."""
    if not points:
        return
    import numpy as np

    from jingkong.geo.locator import grid_locator_from_db

    locator = grid_locator_from_db()
    if not len(locator.codes):
        return
    found = locator.codes_for(np.array([p[2] for p in points]), np.array([p[3] for p in points]))
    for (line, code, lon, lat, stated), actual in zip(points, found, strict=True):
        if not actual:
            report.warnings.append({"line": line, "code": code,
                                    "reason": f"lon/lat: ({lon}, {lat}) lies outside every grid"})
        elif actual != stated:
            report.warnings.append({"line": line, "code": code,
                                    "reason": f"lon/lat: the point lies in grid {actual}, not in the stated grid {stated}"})


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


def _load_points(path, *, table: str, columns: list[str], code_field: str, make_row, chunk_size: int) -> LoadReport:
    """The shared loop of the point loaders: code present and unique in the file, grid known, coordinates valid;
    ``make_row(record, code, grid_id, lon, lat)`` builds the table row (raising ValueError naming the field)."""
    grids = _grids()
    report = LoadReport()
    rows, seen, points = [], set(), []
    for line, r in _records(path):
        report.rows += 1
        code = r.get(code_field, "")
        try:
            if not code:
                raise ValueError(f"{code_field}: required field is empty")
            if code in seen:
                raise ValueError(f"{code_field}: duplicate code in the file")
            grid = grids.get(r.get("grid_code", ""))
            if grid is None:
                raise ValueError("grid_code: unknown grid code")
            lon, lat = _coordinate(r)
            row = make_row(r, code, grid, lon, lat)
        except (ValueError, KeyError, TypeError) as exc:
            report.errors.append({"line": line, "reason": str(exc)})
            continue
        seen.add(code)
        rows.append(row)
        points.append((line, code, lon, lat, r["grid_code"]))
    check_points(report, points)
    for i in range(0, len(rows), chunk_size):
        report.written += bulk.bulk_upsert(table, columns, rows[i: i + chunk_size],
                                           conflict_columns=["code"], update_columns=columns[1:])
    return report


@transaction.atomic
def buildings_load(path: str | Path, *, chunk_size: int = 20_000) -> LoadReport:
    """Upsert buildings from ``buildings.csv`` (building_code,grid_code,address,lon,lat,units,floors,households)."""

    def make_row(r, code, grid, lon, lat):
        return (code, grid, r.get("address", "")[:255], lon, lat, _number(r.get("units", ""), int) or 1,
                _number(r.get("floors", ""), int) or 1, _number(r.get("households", ""), int) or 0)

    return _load_points(path, table="geo_building", columns=BUILDING_COLUMNS, code_field="building_code",
                        make_row=make_row, chunk_size=chunk_size)


@transaction.atomic
def venues_load(path: str | Path, *, chunk_size: int = 20_000) -> LoadReport:
    """Upsert venues from ``venues.csv`` (venue_code,name,type,lon,lat,grid_code,building_code)."""
    buildings = bulk.code_map("geo_building")
    types = set(VenueType.values)

    def make_row(r, code, grid, lon, lat):
        vtype = r.get("type", "") or VenueType.OTHER
        if vtype not in types:
            raise ValueError(f"type: unknown venue type {vtype!r}")
        building = None
        if r.get("building_code"):
            building = buildings.get(r["building_code"])
            if building is None:
                raise ValueError("building_code: unknown building code")
        return (code, r.get("name", "")[:255] or code, vtype, lon, lat, grid, building)

    return _load_points(path, table="geo_venue", columns=VENUE_COLUMNS, code_field="venue_code",
                        make_row=make_row, chunk_size=chunk_size)
