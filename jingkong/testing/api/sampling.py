"""Sampling routes: scans from field devices (one by one or in batches), sealing tubes, reading tubes.

Device routes are kept lean: the guard authenticates the bearer token, the service does the rest in one short
transaction (jingkong.testing.sampling); nothing else runs per request. The two scan routes render their answer
themselves (plain values, already in the documented shape — tests validate them against the schemas) instead of
having Ninja validate it again: for a batch that validation cost more than recording the scans.
"""

from __future__ import annotations

import json

from django.http import HttpResponse
from ninja import Router

from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.testing import sampling
from jingkong.testing.schemas.sampling import (
    BatchIn,
    BatchOut,
    ScanIn,
    ScanOut,
    SiteOpenTubesOut,
    TubeOut,
)

router = Router(tags=["testing: sampling"])


def _json(data, status: int = 200) -> HttpResponse:
    return HttpResponse(json.dumps(data, ensure_ascii=False, separators=(",", ":")), status=status,
                        content_type="application/json; charset=utf-8")


@router.post("/scans", response={200: ScanOut, 201: ScanOut})
@require(Perm.TESTING_SAMPLE)
def scans_create(request, payload: ScanIn):
    """Record one scan. 201: recorded; 200: a duplicate or a retry (``replayed``), nothing new was written.
    422: bad input (field, reason); 409: the tube refuses the scan (full, sealed, another kind/site/campaign), with the
    tube's state; 404/403: the site is not yours to scan at. A refused scan writes nothing."""
    outcome = sampling.scan_record(actor=request.jk_user, scope=request.scope, raw=payload.model_dump(), request=request)
    body = dict(vars(outcome.result))
    body["tube_state"] = dict(vars(outcome.tube)) if outcome.tube is not None else None
    return _json(body, 201 if outcome.created else 200)


@router.post("/scans/batch", response=BatchOut)
@require(Perm.TESTING_SAMPLE)
def scans_batch(request, payload: BatchIn):
    """Record up to 500 scans (a device flushing its offline queue) in one transaction. Every scan gets a result:
    recorded, duplicate or rejected (with field and reason); bad scans never spoil the others. ``tubes``: the state of
    every tube named, after the batch."""
    outcome = sampling.scans_record(
        actor=request.jk_user, scope=request.scope, items=[item.model_dump() for item in payload.scans],
        site=payload.site or "", device=payload.device or "", campaign=payload.campaign or "", request=request)
    return _json(outcome.as_dict())


@router.post("/tubes/{barcode}/seal", response=TubeOut)
@require(Perm.TESTING_SAMPLE)
def tubes_seal(request, barcode: str):
    """Seal a tube by hand before it is full (sealing a sealed tube again changes nothing)."""
    return sampling.tube_seal(actor=request.jk_user, scope=request.scope, barcode=barcode, request=request)


@router.get("/tubes/{barcode}", response=TubeOut)
@require(Perm.TESTING_VIEW)
def tubes_get(request, barcode: str):
    """A tube: kind, capacity, swabs, status, custody and result. Its members (ID numbers masked) only for roles that
    may see persons; that read is audited."""
    members = request.jk_user.has_role_perm(Perm.PERSON_VIEW)
    return sampling.tube_detail(scope=request.scope, barcode=barcode, members=members, actor=request.jk_user,
                                request=request)


@router.get("/sites/{site_code}/open-tubes", response=SiteOpenTubesOut)
@require(Perm.TESTING_VIEW)
def sites_open_tubes(request, site_code: str):
    """The open tubes of a site, oldest first (a device that restarts continues them)."""
    return sampling.site_open_tubes(scope=request.scope, site_code=site_code)
