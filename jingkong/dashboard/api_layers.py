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
"""

from __future__ import annotations

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Count, Max
from django.http import HttpResponse
from ninja import Router

from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.dashboard import layers, readcache
from jingkong.dashboard.schemas_layers import CasesOut, FeatureCollectionOut, RegionCode

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
