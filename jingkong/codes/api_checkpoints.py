"""/api/v1/codes/ routes of the checkpoints area: checkpoints and staff, verification (online, one call verifies and
logs), offline batches, hourly counts, passes (通行证), venue entry (测温+亮码+戴口罩) and fever-clinic referrals.

Permissions: verifying, logging and venue scans need CHECKPOINT_VERIFY (a checkpoint officer only at the checkpoints
they staff); checkpoints, staff, passes and a referral's follow-up status need CHECKPOINT_MANAGE. The referral list needs
CODES_VIEW: it names people with a fever, person-level data that the roles holding CODES_VIEW (officers, grid workers,
tracers, commander) already see with the codes, while checkpoint officers — who see only a verification's answer —
do not hold it.
"""

from __future__ import annotations

import datetime as dt

from django.http import HttpResponse
from ninja import Router, Status

from jingkong.access import audit
from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.codes import checkpoints as services
from jingkong.codes import selectors_checkpoints as selectors
from jingkong.codes.schemas_checkpoints import (
    CheckpointIn,
    CheckpointOut,
    CheckpointUpdateIn,
    CrossingOut,
    CrossingResultOut,
    DecisionFilterT,
    EntriesIn,
    EntriesOut,
    EntryIn,
    EntryResultOut,
    HourlyOut,
    KindFilterT,
    PassIn,
    PassKindFilterT,
    PassOut,
    PassPage,
    PassStatusFilterT,
    ReferralOut,
    ReferralPage,
    ReferralStatusFilterT,
    ReferralStatusIn,
    RevokeIn,
    SyncIn,
    SyncOut,
    Text,
    VerifyIn,
    checkpoint_out,
    crossing_out,
    pass_out,
    referral_out,
)

router = Router(tags=["codes: checkpoints"])


def _json(data, status: int = 200) -> HttpResponse:
    import json

    from django.core.serializers.json import DjangoJSONEncoder

    return HttpResponse(json.dumps(data, ensure_ascii=False, cls=DjangoJSONEncoder, separators=(",", ":")),
                        status=status, content_type="application/json; charset=utf-8")


# --- checkpoints ------------------------------------------------------------------------------------------------------


@router.get("/checkpoints", response=list[CheckpointOut])
@require(Perm.CHECKPOINT_VERIFY)
def checkpoints_list(request, kind: KindFilterT = "", active: bool | None = None, q: Text = ""):
    """Checkpoints in the caller's region (a checkpoint officer: those they staff)."""
    qs = selectors.checkpoint_list(scope=request.scope, actor=request.jk_user, kind=kind, active=active, q=q[:100])
    return [checkpoint_out(cp) for cp in qs.prefetch_related("staff")[:2000]]


@router.post("/checkpoints", response={201: CheckpointOut})
@require(Perm.CHECKPOINT_MANAGE)
def checkpoints_create(request, payload: CheckpointIn):
    """A checkpoint (highway exit, road, zone boundary, port) in a region of yours, with its officers."""
    cp = services.checkpoint_create(actor=request.jk_user, scope=request.scope, request=request, **payload.dict())
    return Status(201, checkpoint_out(cp))


@router.get("/checkpoints/hourly", response=HourlyOut)
@require(Perm.CHECKPOINT_VERIFY)
def checkpoints_hourly(request, day: dt.date | None = None, hours: int = 24):
    """Crossings per checkpoint per hour (local time): total, allowed, referred, denied — of a local day, or of the
    last ``hours`` hours."""
    start, end = selectors.day_window(day, hours=hours)
    rows = selectors.hourly(scope=request.scope, start=start, end=end, actor=request.jk_user)
    return {"start": start, "end": end, "totals": selectors.totals(rows), "hours": rows}


@router.get("/checkpoints/{checkpoint_code}", response=CheckpointOut)
@require(Perm.CHECKPOINT_VERIFY)
def checkpoints_get(request, checkpoint_code: str):
    cp = services.checkpoint_for_device(actor=request.jk_user, scope=request.scope, code=checkpoint_code)
    return checkpoint_out(cp)


@router.patch("/checkpoints/{checkpoint_code}", response=CheckpointOut)
@require(Perm.CHECKPOINT_MANAGE)
def checkpoints_update(request, checkpoint_code: str, payload: CheckpointUpdateIn):
    """Change a checkpoint (fields sent), its guarded zone or its staff (the whole list)."""
    cp = services.checkpoint_update(actor=request.jk_user, scope=request.scope, code=checkpoint_code,
                                    changes=payload.dict(exclude_unset=True), request=request)
    return checkpoint_out(cp)


@router.post("/checkpoints/{checkpoint_code}/verify", response={200: CrossingResultOut, 201: CrossingResultOut})
@require(Perm.CHECKPOINT_VERIFY)
def checkpoints_verify(request, checkpoint_code: str, payload: VerifyIn):
    """Verify a person (token or ID number) or a vehicle (plate, driver, passengers, pass) and log the crossing in the
    same call. 201: logged; 200: the same ``client_id`` again (the stored result, nothing written). 409: the
    ``client_id`` was used for another crossing (the field that differs is named); 422: bad input (field named)."""
    result, created = services.verify_and_log(actor=request.jk_user, scope=request.scope,
                                              checkpoint_code=checkpoint_code, raw=payload.model_dump(),
                                              request=request)
    return _json(result.as_dict(), 201 if created else 200)


@router.post("/checkpoints/{checkpoint_code}/sync", response=SyncOut)
@require(Perm.CHECKPOINT_VERIFY)
def checkpoints_sync(request, checkpoint_code: str, payload: SyncIn):
    """Crossings decided offline by a device from the signed token alone (≤ 500 a request). Each gets a result:
    recorded, replayed (already stored: nothing written) or rejected (field and reason)."""
    outcome = services.crossings_sync(actor=request.jk_user, scope=request.scope, checkpoint_code=checkpoint_code,
                                      items=payload.crossings, device=payload.device or "", request=request)
    return _json(outcome.as_dict())


@router.get("/checkpoints/{checkpoint_code}/crossings", response=list[CrossingOut])
@require(Perm.CHECKPOINT_VERIFY)
def checkpoints_crossings(request, checkpoint_code: str, decision: DecisionFilterT = "", limit: int = 50):
    """The latest crossings of a checkpoint (no names: decision, colour and reasons)."""
    cp = services.checkpoint_for_device(actor=request.jk_user, scope=request.scope, code=checkpoint_code)
    return [crossing_out(c) for c in selectors.recent_crossings(scope=request.scope, checkpoint=cp,
                                                                decision=decision, limit=limit)]


@router.get("/checkpoints/{checkpoint_code}/hourly", response=HourlyOut)
@require(Perm.CHECKPOINT_VERIFY)
def checkpoints_hourly_one(request, checkpoint_code: str, day: dt.date | None = None, hours: int = 24):
    cp = services.checkpoint_for_device(actor=request.jk_user, scope=request.scope, code=checkpoint_code)
    start, end = selectors.day_window(day, hours=hours)
    rows = selectors.hourly(scope=request.scope, start=start, end=end, checkpoint=cp)
    return {"start": start, "end": end, "totals": selectors.totals(rows), "hours": rows}


# --- passes -----------------------------------------------------------------------------------------------------------


@router.get("/passes", response=PassPage)
@require(Perm.CHECKPOINT_MANAGE)
def passes_list(request, plate: Text = "", kind: PassKindFilterT = "", status: PassStatusFilterT = "",
                limit: int = 200):
    """Passes issued in the caller's region (look up by plate: a prefix)."""
    qs = selectors.pass_list(scope=request.scope, plate=plate[:32], kind=kind, status=status)
    items = list(qs[: max(1, min(limit, 1000))])
    return {"count": qs.count(), "items": [pass_out(p, selectors.pass_state(p)) for p in items]}


@router.post("/passes", response={201: PassOut})
@require(Perm.CHECKPOINT_MANAGE)
def passes_issue(request, payload: PassIn):
    """Issue a pass (通行证) for a medical, essential-supply, transfer or official vehicle."""
    p = services.pass_issue(actor=request.jk_user, scope=request.scope, request=request, **payload.dict())
    return Status(201, pass_out(p, selectors.pass_state(p)))


@router.post("/passes/{pass_number}/revoke", response=PassOut)
@require(Perm.CHECKPOINT_MANAGE)
def passes_revoke(request, pass_number: str, payload: RevokeIn):
    p = services.pass_revoke(actor=request.jk_user, scope=request.scope, number=pass_number, reason=payload.reason,
                             request=request)
    return pass_out(p, selectors.pass_state(p))


# --- venue entry ------------------------------------------------------------------------------------------------------


@router.post("/venues/{venue_code}/entries", response={200: EntryResultOut, 201: EntryResultOut})
@require(Perm.CHECKPOINT_VERIFY)
def venues_entry(request, venue_code: str, payload: EntryIn):
    """A venue scan: code (token or ID number), temperature, mask → decision. A fever (≥ the profile's threshold)
    refers the person to the fever clinic and turns their code yellow. 201: recorded (also a check-in for tracing);
    200: the same ``client_id`` again, or nobody to record (a bad code: the decision only)."""
    result, created = services.venue_entry_record(actor=request.jk_user, scope=request.scope, venue_code=venue_code,
                                                  raw=payload.model_dump(), request=request)
    return _json(result.as_dict(), 201 if created else 200)


@router.post("/venues/{venue_code}/entries/sync", response=EntriesOut)
@require(Perm.CHECKPOINT_VERIFY)
def venues_entries_sync(request, venue_code: str, payload: EntriesIn):
    """Venue scans recorded offline (≤ 500), idempotent by ``client_id``."""
    return _json(services.venue_entries_sync(actor=request.jk_user, scope=request.scope, venue_code=venue_code,
                                             items=payload.entries, request=request))


# --- fever-clinic referrals -------------------------------------------------------------------------------------------


@router.get("/referrals", response=ReferralPage)
@require(Perm.CODES_VIEW)
def referrals_list(request, status: ReferralStatusFilterT = "", venue: Text = "", page: int = 1, page_size: int = 50):
    """Fever-clinic referrals of people living in the caller's region, newest first (a person list: audited)."""
    qs = selectors.referral_list(scope=request.scope, status=status, venue=venue[:40])
    page, page_size = max(1, min(page, 100_000)), max(1, min(page_size, 500))
    count = qs.count()
    items = list(qs[(page - 1) * page_size: page * page_size])
    audit.record(actor=request.jk_user, action="person.list", object_type="people.person",
                 region_code=request.scope.prefix or "", request=request,
                 detail={"list": "fever_referrals", "status": status, "count": count, "returned": len(items)})
    return {"count": count, "page": page, "page_size": page_size, "items": [referral_out(r) for r in items]}


@router.post("/referrals/{referral_id}/status", response=ReferralOut)
@require(Perm.CHECKPOINT_MANAGE)
def referrals_status(request, referral_id: int, payload: ReferralStatusIn):
    """Follow a referral up: referred → visited (the fever clinic saw the person) → cleared; the code is recomputed."""
    ref = services.referral_set_status(actor=request.jk_user, scope=request.scope, referral_id=referral_id,
                                       status=payload.status, note=payload.note, request=request)
    return referral_out(selectors.referral_list(scope=request.scope).get(pk=ref.pk))
