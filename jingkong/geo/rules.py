"""Pure geometry rules of the base map: preparing region geometry for storage and validating a region tree.

No database here: functions take plain values (GeoJSON dicts, shapely geometries, :class:`RegionItem`) so they are
tested without Django.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

import shapely
from shapely.geometry import mapping, shape

LEVELS = ("district", "street", "community", "grid")
LEVEL_DEPTH = {name: i for i, name in enumerate(LEVELS)}
# Division code length per level: district 6, street 9, community 12, grid = community + 3 digits.
CODE_LENGTH = {"district": 6, "street": 9, "community": 12, "grid": 15}
# Simplification tolerance (degrees; 0.0001° ≈ 10 m) for the map's display geometry, per level.
SIMPLIFY_TOLERANCE = {"district": 0.0005, "street": 0.0002, "community": 0.0001, "grid": 0.00003}
COORD_DECIMALS = 6  # ~0.1 m
# Validation tolerances, relative to the smaller area involved (shared borders digitised by different sources
# rarely coincide exactly; slivers below these shares are not reported).
OVERLAP_TOLERANCE = 0.001  # sibling overlap above 0.1 % of the smaller sibling's area
OUTSIDE_TOLERANCE = 0.01  # more than 1 % of a child's area outside its parent
KM_PER_DEGREE = 111.32


@dataclass(frozen=True)
class PreparedGeometry:
    geometry: dict
    simplified: dict
    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float
    center_lon: float
    center_lat: float
    area_km2: float


@dataclass
class Problem:
    """One finding of the validation: ``kind`` is a stable identifier, ``message`` a human explanation."""

    kind: str
    code: str
    message: str
    other_code: str = ""
    detail: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class RegionItem:
    """What the validation needs to know about one region."""

    code: str
    level: str
    parent_code: str | None
    geometry: dict | None


def to_shape(geometry: dict | None):
    """A shapely geometry for a GeoJSON geometry dict, or None when absent or unreadable."""
    if not geometry:
        return None
    try:
        geom = shape(geometry)
    except Exception:  # noqa: BLE001 - malformed GeoJSON is reported by the caller, not raised
        return None
    return None if geom.is_empty else geom


def round_coords(geom):
    return shapely.set_precision(geom, 10 ** -COORD_DECIMALS, mode="pointwise")


def area_km2(geom) -> float:
    """Approximate area in km² (equirectangular at the geometry's mean latitude; fine at district scale)."""
    if geom is None or geom.is_empty:
        return 0.0
    lat = (geom.bounds[1] + geom.bounds[3]) / 2
    return abs(geom.area) * KM_PER_DEGREE * KM_PER_DEGREE * math.cos(math.radians(lat))


def prepare_geometry(geometry: dict, level: str) -> PreparedGeometry | None:
    """Bounding box, label point, area and simplified display geometry of a region's GeoJSON geometry.

    Works on invalid polygons too (they are reported by :func:`validate`, never rejected here).
    """
    geom = to_shape(geometry)
    if geom is None:
        return None
    tolerance = SIMPLIFY_TOLERANCE.get(level, 0.0001)
    try:
        simple = shapely.simplify(geom, tolerance, preserve_topology=True)
        if simple.is_empty:
            simple = geom
        simple = round_coords(simple)
    except shapely.errors.GEOSException:
        simple = geom
    try:
        valid = geom if geom.is_valid else shapely.make_valid(geom)
        centre = valid.centroid
        if not valid.contains(centre):  # concave shapes: put the label inside the region
            centre = valid.representative_point()
    except shapely.errors.GEOSException:
        centre = geom.envelope.centroid
    min_lon, min_lat, max_lon, max_lat = geom.bounds
    return PreparedGeometry(
        geometry=geometry,
        simplified=as_geojson(simple) if not simple.is_empty else geometry,
        min_lon=min_lon,
        min_lat=min_lat,
        max_lon=max_lon,
        max_lat=max_lat,
        center_lon=round(centre.x, COORD_DECIMALS),
        center_lat=round(centre.y, COORD_DECIMALS),
        area_km2=round(area_km2(valid if geom.is_valid else geom), 6),
    )


def as_geojson(geom) -> dict:
    """A plain-JSON GeoJSON dict (lists, not tuples) for a shapely geometry, comparable with stored JSON."""
    return json.loads(json.dumps(mapping(geom)))


def validate(items: Sequence[RegionItem]) -> list[Problem]:
    """All findings about a region tree; never raises on bad geometry.

    Kinds: ``invalid_geometry`` (self-intersections etc., with shapely's explanation), ``missing_geometry``,
    ``unknown_level``, ``missing_parent``, ``level_mismatch`` (child not one level below its parent), ``bad_code``
    (code does not extend the parent's code, or has the wrong length for its level), ``sibling_overlap``,
    ``outside_parent``.
    """
    problems: list[Problem] = []
    by_code = {item.code: item for item in items}
    shapes: dict[str, object] = {}
    for item in items:
        if item.level not in LEVEL_DEPTH:
            problems.append(Problem("unknown_level", item.code, f"unknown level {item.level!r}"))
        geom = to_shape(item.geometry)
        if geom is None:
            problems.append(Problem("missing_geometry", item.code, f"{item.level} {item.code} has no polygon"))
            continue
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            problems.append(Problem("invalid_geometry", item.code, f"geometry is a {geom.geom_type}, not a polygon"))
            continue
        if not geom.is_valid:
            reason = shapely.is_valid_reason(geom)
            problems.append(Problem("invalid_geometry", item.code, f"invalid polygon: {reason}", detail={"reason": reason}))
            geom = shapely.make_valid(geom)
        shapes[item.code] = geom

    children: dict[str | None, list[RegionItem]] = defaultdict(list)
    for item in items:
        parent_code = item.parent_code or None
        children[parent_code].append(item)
        if item.level == "district" and not parent_code:
            pass
        elif not parent_code:
            problems.append(Problem("missing_parent", item.code, f"{item.level} {item.code} has no parent"))
        elif parent_code not in by_code:
            problems.append(
                Problem("missing_parent", item.code, f"parent {parent_code} of {item.code} does not exist", parent_code)
            )
        else:
            parent = by_code[parent_code]
            if item.level in LEVEL_DEPTH and parent.level in LEVEL_DEPTH:
                if LEVEL_DEPTH[item.level] != LEVEL_DEPTH[parent.level] + 1:
                    problems.append(
                        Problem("level_mismatch", item.code, f"a {item.level} under a {parent.level}", parent_code)
                    )
            if not item.code.startswith(parent_code) or item.code == parent_code:
                problems.append(
                    Problem("bad_code", item.code, f"code {item.code} does not extend its parent's code {parent_code}",
                            parent_code)
                )
        expected = CODE_LENGTH.get(item.level)
        if expected and (len(item.code) != expected or not item.code.isdigit()):
            problems.append(
                Problem("bad_code", item.code, f"a {item.level} code has {expected} digits; got {item.code!r}")
            )
        if parent_code in shapes and item.code in shapes:
            child, parent_geom = shapes[item.code], shapes[parent_code]
            try:
                outside = child.difference(parent_geom).area
            except shapely.errors.GEOSException:
                outside = 0.0
            if child.area > 0 and outside > OUTSIDE_TOLERANCE * child.area:
                share = outside / child.area
                problems.append(
                    Problem("outside_parent", item.code, f"{share:.1%} of {item.code} lies outside its parent {parent_code}",
                            parent_code, {"share_outside": round(share, 4)})
                )
    for siblings in children.values():
        problems.extend(_sibling_overlaps([s.code for s in siblings if s.code in shapes], shapes))
    return problems


def _sibling_overlaps(codes: list[str], shapes: dict) -> Iterable[Problem]:
    if len(codes) < 2:
        return []
    geoms = [shapes[c] for c in codes]
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    found = []
    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        if i >= j:
            continue
        a, b = geoms[i], geoms[j]
        try:
            overlap = a.intersection(b).area
        except shapely.errors.GEOSException:
            continue
        smaller = min(a.area, b.area)
        if smaller > 0 and overlap > OVERLAP_TOLERANCE * smaller:
            found.append(
                Problem("sibling_overlap", codes[i], f"{codes[i]} and {codes[j]} overlap ({overlap / smaller:.1%} of the smaller)",
                        codes[j], {"share": round(overlap / smaller, 4)})
            )
    return found
