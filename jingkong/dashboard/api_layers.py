"""/api/v1/dashboard/layers/… — the map layers of the command screen (contract: docs/dashboard.md, "Layers").

Each layer declares its own permission, so the screen shows only the layers the user's role may read (403 for the
others): case points need TRACING_VIEW (they carry case numbers), sites TESTING_VIEW, routes and facilities
ISOLATION_VIEW, checkpoints DASHBOARD_VIEW, problems and service requests COMMAND_VIEW. Every layer takes ``region``
(inside the caller's region; default their own) and answers compact JSON; the selectors are in
:mod:`jingkong.dashboard.layers`.

The answers are built as plain lists and dicts and written with ``json.dumps`` (no pydantic validation of 10 k
points on the way out; the ``response=`` schemas document the shape in OpenAPI). The case points — the heaviest
layer (≈ 0.6 s at district level on the benchmark) — are also kept in the in-process cache
(:mod:`jingkong.dashboard.readcache`), keyed by the scope, the region, the versions of the ``cases`` and ``zones``
families and the newest case id, latest update and number of cases (a deletion), so a new or changed case shows at once.
The zones layer (the zones app's GeoJSON, ≈ 0.3 s for 1,000 zones) is cached the same way, keyed by a change mark of
the zones tables (see :func:`zones_body`) and the local hour.
"""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Count, Max, Subquery
from django.http import HttpResponse
from django.utils import translation
from ninja import Router

from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.dashboard import layers, readcache
from jingkong.dashboard.schemas_layers import CasesOut, FeatureCollectionOut, RegionCode

# The zones layer's cache is keyed by the local hour; the TTL of readcache.layers (60 s) bounds what the key does not
# see: a change of the policy in force (countdown rules), a countdown turning "ready" within the hour, and writes that
# move no mark (e.g. an earlier last exposure of a zone that is not the newest).

router = Router(tags=["dashboard"])


def compact(data: dict) -> HttpResponse:
    """Compact JSON (no spaces, UTF-8 as is): 20,000 case points stay well under a megabyte, and no per-item
    validation runs on the way out (the schemas document the shape)."""
    body = json.dumps(data, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)
    return HttpResponse(body, content_type="application/json")


@router.get("/layers/cases", response=CasesOut)
@require(Perm.TRACING_VIEW)
def layer_cases(request, region: RegionCode = ""):
    """Cases as points at their home building: ``[lat, lng, classification, found, case number]``, newest first,
    at most 20,000 (``truncated``); found = quarantine | control | community."""
    return HttpResponse(case_points_body(request.scope, region), content_type="application/json")


CASE_LAYER_FAMILIES = ("cases", "zones")


def case_points_body(scope, region: str) -> bytes:
    """The JSON text of the case points, from the cache when nothing it shows can have changed: the cases (newest
    id, latest update) and the figures of the families whose rules colour them (cases, zones)."""
    from jingkong.dashboard import refresher
    from jingkong.tracing.models import Case

    marks = readcache.family_marks(refresher.versions(), CASE_LAYER_FAMILIES, computed=False)
    newest = Case.objects.aggregate(last=Max("id"), at=Max("updated_at"), n=Count("pk"))
    key = ("cases", scope.prefix, region, marks, newest["last"], newest["at"], newest["n"])

    def build() -> bytes:
        return compact(layers.case_points(scope=scope, region=region)).content

    return readcache.cached(readcache.layers, key, build)


@router.get("/layers/zones", response=FeatureCollectionOut)
@require(Perm.ZONES_VIEW)
def layer_zones(request, region: RegionCode = "", proposed: bool = True):
    """Zones in force (and proposals with ``proposed``) under the region: the same FeatureCollection as
    ``GET /api/v1/zones/zones/geojson`` (the zones app's selector), kept in the in-process cache."""
    return HttpResponse(zones_body(request.scope, region, proposed=proposed), content_type="application/json")


def zones_mark() -> tuple:
    """A cheap change mark of the zones, in one aggregate query: number and newest id of the zones (created or
    deleted), their latest update and clock inputs, and the newest history row (approve, lift, regrade and residents
    write one even when their ``at`` is earlier than another zone's update). The ``zones`` family version is not
    used: it lags the change by up to a refresh."""
    from jingkong.zones.models import Zone, ZoneChange

    newest_change = ZoneChange.objects.order_by("-pk").values("pk")[:1]
    mark = Zone.objects.order_by().aggregate(
        n=Count("pk"), last=Max("pk"), at=Max("updated_at"), infection=Max("last_infection_at"),
        exposure=Max("last_exposure_at"), screening=Max("last_screening_at"), change=Max(Subquery(newest_change)))
    return tuple(mark[k] for k in ("n", "last", "at", "infection", "exposure", "screening", "change"))


def zones_body(scope, region: str, *, proposed: bool = True) -> bytes:
    """The JSON text of the zones layer, from the cache while the zones are unchanged within the same local hour
    (countdowns move with the clock) and language."""
    from jingkong.core import clock
    from jingkong.zones import selectors as zone_selectors

    narrowed, code = layers.layer_scope(scope, region)  # 422 / 404 like every layer
    local = clock.now().astimezone(ZoneInfo(clock.local_time_zone()))
    key = ("zones", scope.prefix, code, bool(proposed), translation.get_language(), local.date(), local.hour,
           zones_mark())

    def build() -> bytes:
        return compact(zone_selectors.geojson(scope=scope, include_proposed=bool(proposed), region=code)).content

    return readcache.cached(readcache.layers, key, build)


@router.get("/layers/sites", response=FeatureCollectionOut)
@require(Perm.TESTING_VIEW)
def layer_sites(request, region: RegionCode = ""):
    """Sampling sites of the running round(s): progress (sampled / target), queue, capacity, status."""
    return compact(layers.site_features(scope=request.scope, region=region))


@router.get("/layers/routes", response=FeatureCollectionOut)
@require(Perm.ISOLATION_VIEW)
def layer_routes(request, region: RegionCode = ""):
    """Transfer runs active today: route LineStrings and vehicle points (kind route | vehicle)."""
    return compact(layers.route_features(scope=request.scope, region=region))


@router.get("/layers/facilities", response=FeatureCollectionOut)
@require(Perm.ISOLATION_VIEW)
def layer_facilities(request, region: RegionCode = ""):
    """Active isolation facilities with rooms, occupied, free and occupancy."""
    return compact(layers.facility_features(scope=request.scope, region=region, user=request.jk_user))


@router.get("/layers/checkpoints", response=FeatureCollectionOut)
@require(Perm.DASHBOARD_VIEW)
def layer_checkpoints(request, region: RegionCode = ""):
    """Checkpoints with today's crossings, denials and referrals (Asia/Shanghai day)."""
    return compact(layers.checkpoint_features(scope=request.scope, region=region))


@router.get("/layers/problems", response=FeatureCollectionOut)
@require(Perm.COMMAND_VIEW)
def layer_problems(request, region: RegionCode = ""):
    """Open problems with urgency, status and whether they are overdue."""
    return compact(layers.problem_features(scope=request.scope, region=region))


@router.get("/layers/services", response=FeatureCollectionOut)
@require(Perm.COMMAND_VIEW)
def layer_services(request, region: RegionCode = ""):
    """Open service requests at the resident's building, with category, priority, status and overdue."""
    return compact(layers.service_features(scope=request.scope, region=region))
