"""The base map API (/api/v1/geo/). Regions come as GeoJSON; everything is limited to the user's region subtree
(ancestors appear only as name/code context in a region's ``ancestors``; see jingkong.geo.selectors)."""

from __future__ import annotations

from ninja import Body, Router

from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.core.exceptions import NotFound, PermissionDenied, ValidationFailed
from jingkong.geo import selectors, services
from jingkong.geo.models import Level
from jingkong.geo.schemas import (
    BuildingPage,
    CountsResult,
    ImportResult,
    RegionCollection,
    RegionDetail,
    RegionFeature,
    RegionRef,
    ValidationResult,
    VenuePage,
    building_out,
    region_feature,
    region_properties,
    venue_out,
)

router = Router(tags=["geo"])
MAX_PAGE_SIZE = 1000
_GEOJSON_BODY = Body(...)


def _collection(regions, *, full: bool = False) -> dict:
    return {"type": "FeatureCollection", "features": [region_feature(r, full=full) for r in regions]}


def _page(qs, page: int, page_size: int, to_out) -> dict:
    page = max(1, page)
    page_size = max(1, min(page_size, MAX_PAGE_SIZE))
    start = (page - 1) * page_size
    return {"count": qs.count(), "page": page, "page_size": page_size,
            "items": [to_out(o) for o in qs[start:start + page_size]]}


@router.get("/regions", response=RegionCollection)
@require(Perm.MAP_VIEW)
def regions_list(request, level: str = "", parent: str = "", bbox: str = "", full: bool = False):
    """Regions in the user's subtree as a FeatureCollection, filtered by ``level``, ``parent`` (code) and ``bbox``
    (``min_lon,min_lat,max_lon,max_lat``). Geometry is simplified for display unless ``full=true``."""
    if level and level not in Level.values:
        raise ValidationFailed(f"level must be one of {', '.join(Level.values)}", extra={"field": "level"})
    qs = selectors.region_list(
        scope=request.scope, level=level or None, parent_code=parent or None, bbox=selectors.BBox.parse(bbox)
    )
    return _collection(qs[: selectors.MAX_FEATURES], full=full)


@router.get("/regions/roots", response=RegionCollection)
@require(Perm.MAP_VIEW)
def regions_roots(request, full: bool = False):
    """The top of the user's map: their own region (or the district(s) for platform-wide users)."""
    return _collection(selectors.region_roots(scope=request.scope), full=full)


@router.post("/regions/import", response=ImportResult)
@require(Perm.MAP_EDIT)
def regions_import(request, collection: dict = _GEOJSON_BODY, replace: bool = False):
    """Upsert regions from a GeoJSON FeatureCollection; only codes inside the user's subtree may be written."""
    features = collection.get("features") if isinstance(collection, dict) else None
    scope = request.scope
    for f in features or []:
        props = (f or {}).get("properties") or {}
        code = str(props.get("code") or "")
        parent = str(props.get("parent_code") or "")
        if code and not scope.contains(code):
            raise PermissionDenied(f"region {code} is outside your region", extra={"code": code})
        # The parent must be inside the scope too, or the scope's own ancestor (a new top region of the scope).
        if code and not parent and not scope.is_everything:
            raise PermissionDenied(f"region {code} needs a parent_code: only platform-wide users import top regions",
                                   extra={"code": code})
        if parent and not (scope.contains(parent) or (scope.prefix and scope.prefix.startswith(parent))):
            raise PermissionDenied(f"region {code} cannot be placed under {parent}, outside your region",
                                   extra={"code": code, "parent_code": parent})
    if replace and not request.scope.is_everything:
        raise PermissionDenied("only platform-wide users may replace the whole region tree")
    return services.regions_import_geojson(collection, actor=request.jk_user, replace=replace).as_dict()


@router.post("/regions/validate", response=ValidationResult)
@require(Perm.MAP_EDIT)
def regions_validate(request):
    """Check the region tree of the user's subtree: invalid polygons, overlaps, children outside parents, bad codes."""
    if request.scope.prefix is None:
        raise NotFound("region not found")
    return services.regions_validate(actor=request.jk_user, root_code=request.scope.prefix or None).as_dict()


@router.post("/counts/refresh", response=CountsResult)
@require(Perm.MAP_EDIT)
def counts_refresh(request):
    """Recompute population / households / buildings on every region (platform-wide users only)."""
    if not request.scope.is_everything:
        raise PermissionDenied("only platform-wide users may refresh all region counts")
    return services.region_counts_refresh(actor=request.jk_user)


@router.get("/regions/{code}", response=RegionDetail)
@require(Perm.MAP_VIEW)
def regions_get(request, code: str, full: bool = False):
    """One region with its geometry, its ancestors (context only) and its children's properties."""
    region = selectors.region_get(scope=request.scope, code=code)
    out = region_feature(region, full=full)
    out["counts_updated_at"] = region.counts_updated_at
    out["ancestors"] = selectors.region_ancestors(scope=request.scope, region=region)
    out["children"] = [region_properties(c) for c in selectors.region_children(scope=request.scope, region=region)]
    return out


@router.get("/regions/{code}/ancestors", response=list[RegionRef])
@require(Perm.MAP_VIEW)
def regions_ancestors(request, code: str):
    """The chain above a region, top first (code, name, level and whether the user may open it)."""
    region = selectors.region_get(scope=request.scope, code=code)
    return selectors.region_ancestors(scope=request.scope, region=region)


@router.get("/regions/{code}/children", response=RegionCollection)
@require(Perm.MAP_VIEW)
def regions_children(request, code: str, full: bool = False):
    """The region's children as a FeatureCollection."""
    region = selectors.region_get(scope=request.scope, code=code)
    return _collection(selectors.region_children(scope=request.scope, region=region), full=full)


@router.get("/regions/{code}/feature", response=RegionFeature)
@require(Perm.MAP_VIEW)
def regions_feature(request, code: str, full: bool = False):
    """The region alone as a GeoJSON Feature."""
    return region_feature(selectors.region_get(scope=request.scope, code=code), full=full)


@router.get("/regions/{code}/buildings", response=BuildingPage)
@require(Perm.MAP_VIEW)
def regions_buildings(request, code: str, bbox: str = "", page: int = 1, page_size: int = 200):
    """Buildings inside the region (paginated, optional ``bbox``)."""
    region = selectors.region_get(scope=request.scope, code=code)
    qs = selectors.building_list(scope=request.scope, region=region, bbox=selectors.BBox.parse(bbox))
    return _page(qs, page, page_size, building_out)


@router.get("/regions/{code}/venues", response=VenuePage)
@require(Perm.MAP_VIEW)
def regions_venues(request, code: str, bbox: str = "", type: str = "", page: int = 1, page_size: int = 200):
    """Venues (场所) inside the region (paginated, optional ``bbox`` and ``type``)."""
    region = selectors.region_get(scope=request.scope, code=code)
    qs = selectors.venue_list(scope=request.scope, region=region, bbox=selectors.BBox.parse(bbox), type=type or None)
    return _page(qs, page, page_size, venue_out)
