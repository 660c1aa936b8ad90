from __future__ import annotations

import datetime as dt
from typing import Literal

from ninja import Schema

from jingkong.geo.models import Region


class RegionProperties(Schema):
    code: str
    name: str
    level: str
    parent_code: str | None
    population: int
    households: int
    buildings: int
    synthetic: bool
    area_km2: float | None
    density: float | None  # persons per km²
    center: list[float] | None  # [lon, lat] label point
    bbox: list[float] | None  # [min_lon, min_lat, max_lon, max_lat]


class RegionFeature(Schema):
    type: Literal["Feature"] = "Feature"
    id: str
    geometry: dict | None
    properties: RegionProperties


class RegionCollection(Schema):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[RegionFeature]


class RegionRef(Schema):
    """An ancestor shown as context: no geometry, no counts. ``in_scope`` says whether the user may open it."""

    code: str
    name: str
    level: str
    in_scope: bool


class RegionDetail(Schema):
    type: Literal["Feature"] = "Feature"
    id: str
    geometry: dict | None
    properties: RegionProperties
    counts_updated_at: dt.datetime | None
    ancestors: list[RegionRef]
    children: list[RegionProperties]


class BuildingOut(Schema):
    code: str
    grid_code: str
    address: str
    lon: float
    lat: float
    units: int
    floors: int
    households: int


class VenueOut(Schema):
    code: str
    name: str
    type: str
    lon: float
    lat: float
    grid_code: str
    building_code: str | None


class BuildingPage(Schema):
    count: int
    page: int
    page_size: int
    items: list[BuildingOut]


class VenuePage(Schema):
    count: int
    page: int
    page_size: int
    items: list[VenueOut]


class ImportResult(Schema):
    total: int
    created: int
    updated: int
    unchanged: int
    deleted: int
    skipped: int
    problems: list[dict]


class ValidationResult(Schema):
    checked: int
    ok: bool
    counts: dict[str, int]
    problems: list[dict]


class CountsResult(Schema):
    regions: int
    population: int


def region_properties(r: Region) -> dict:
    density = round(r.population / r.area_km2, 1) if r.area_km2 else None
    return {
        "code": r.code,
        "name": r.name,
        "level": r.level,
        "parent_code": r.parent.code if r.parent_id else None,
        "population": r.population,
        "households": r.households,
        "buildings": r.buildings,
        "synthetic": r.synthetic,
        "area_km2": r.area_km2,
        "density": density,
        "center": [r.center_lon, r.center_lat] if r.center_lon is not None else None,
        "bbox": [r.min_lon, r.min_lat, r.max_lon, r.max_lat] if r.min_lon is not None else None,
    }


def region_feature(r: Region, *, full: bool = False) -> dict:
    geometry = r.geometry if full else (r.geometry_simplified or r.geometry)
    return {"type": "Feature", "id": r.code, "geometry": geometry, "properties": region_properties(r)}


def building_out(b) -> dict:
    return {"code": b.code, "grid_code": b.grid.code, "address": b.address, "lon": b.lon, "lat": b.lat,
            "units": b.units, "floors": b.floors, "households": b.household_count}


def venue_out(v) -> dict:
    return {"code": v.code, "name": v.name, "type": v.type, "lon": v.lon, "lat": v.lat, "grid_code": v.grid.code,
            "building_code": v.building.code if v.building_id else None}
