"""Reads of the base map, always through the user's region :class:`~jingkong.access.guard.Scope`.

Visibility rule: a user sees the regions of their subtree (their region and everything below it). The *ancestors* of a
visible region are disclosed only as context — code, name and level, no geometry or counts — in
:func:`region_ancestors` (the map's breadcrumb); asking for an ancestor itself answers 404 like any region outside
the subtree.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, QuerySet

from jingkong.access.guard import Scope
from jingkong.core.exceptions import NotFound, ValidationFailed
from jingkong.geo.models import Building, Region, Venue

MAX_FEATURES = 20_000


@dataclass(frozen=True)
class BBox:
    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    @classmethod
    def parse(cls, text: str | None) -> BBox | None:
        """``"min_lon,min_lat,max_lon,max_lat"`` → BBox; empty → None."""
        if not text:
            return None
        try:
            values = [float(v) for v in text.split(",")]
        except ValueError:
            values = []
        if len(values) != 4 or values[0] > values[2] or values[1] > values[3]:
            raise ValidationFailed("bbox must be min_lon,min_lat,max_lon,max_lat", extra={"field": "bbox"})
        return cls(*values)


def region_list(
    *, scope: Scope, level: str | None = None, parent_code: str | None = None, bbox: BBox | None = None
) -> QuerySet[Region]:
    """Regions in scope, optionally of one level, children of one parent, or intersecting a bounding box."""
    qs = scope.filter(Region.objects.select_related("parent"), "code")
    if level:
        qs = qs.filter(level=level)
    if parent_code:
        qs = qs.filter(parent__code=parent_code)
    if bbox:
        qs = qs.filter(
            min_lon__lte=bbox.max_lon, max_lon__gte=bbox.min_lon, min_lat__lte=bbox.max_lat, max_lat__gte=bbox.min_lat
        )
    return qs.order_by("code")


def region_roots(*, scope: Scope) -> QuerySet[Region]:
    """The top of what the user sees: their own region, or the parentless regions for platform-wide users."""
    qs = scope.filter(Region.objects.select_related("parent"), "code")
    if scope.is_everything:
        return qs.filter(parent__isnull=True).order_by("code")
    return qs.filter(code=scope.prefix)


def region_get(*, scope: Scope, code: str) -> Region:
    scope.check(code, "region")
    region = Region.objects.select_related("parent").filter(code=code).first()
    if region is None:
        raise NotFound("region not found")
    return region


def region_ancestors(*, scope: Scope, region: Region) -> list[dict]:
    """The chain from the top down to the region's parent: ``{code, name, level, in_scope}`` only."""
    chain: list[dict] = []
    parent_id = region.parent_id
    seen = set()
    while parent_id and parent_id not in seen:
        seen.add(parent_id)
        row = Region.objects.filter(pk=parent_id).values("code", "name", "level", "parent_id").first()
        if row is None:
            break
        chain.append({"code": row["code"], "name": row["name"], "level": row["level"],
                      "in_scope": scope.contains(row["code"])})
        parent_id = row["parent_id"]
    chain.reverse()
    return chain


def region_children(*, scope: Scope, region: Region) -> QuerySet[Region]:
    return scope.filter(Region.objects.select_related("parent").filter(parent=region), "code").order_by("code")


def _points_in(qs: QuerySet, bbox: BBox | None) -> QuerySet:
    if bbox:
        qs = qs.filter(lon__gte=bbox.min_lon, lon__lte=bbox.max_lon, lat__gte=bbox.min_lat, lat__lte=bbox.max_lat)
    return qs


def building_list(*, scope: Scope, region: Region, bbox: BBox | None = None) -> QuerySet[Building]:
    qs = Building.objects.select_related("grid").filter(grid__code__startswith=region.code)
    return _points_in(scope.filter(qs, "grid__code"), bbox).order_by("code")


def venue_list(*, scope: Scope, region: Region, bbox: BBox | None = None, type: str | None = None) -> QuerySet[Venue]:
    qs = Venue.objects.select_related("grid", "building").filter(grid__code__startswith=region.code)
    if type:
        qs = qs.filter(type=type)
    return _points_in(scope.filter(qs, "grid__code"), bbox).order_by("code")


def scope_has_synthetic(*, scope: Scope) -> bool:
    return scope.filter(Region.objects.filter(Q(synthetic=True)), "code").exists()
