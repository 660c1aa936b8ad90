"""The lab side of testing: labs and their technicians, transport batches (chain of custody), tube results (JSON
entry, CSV/FHIR upload), the pool-positive follow-up (retest tasks), turnaround and overdue tubes.

Permissions: reads TESTING_VIEW; labs and technicians TESTING_PLAN; packing and handing over TESTING_SAMPLE; receiving
and results TESTING_RESULT (a lab technician only for the labs listing them — enforced in the services); the
follow-up list names people: PERSON_VIEW, audited.
"""

from __future__ import annotations

import datetime as dt

from ninja import File, Router, Status
from ninja.files import UploadedFile

from jingkong.access import audit
from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.analytics import turnaround as ta
from jingkong.core.exceptions import NotFound, ValidationFailed
from jingkong.core.schemas import JobOut
from jingkong.people import idnumber
from jingkong.testing import custody, followup, results
from jingkong.testing import labs as lab_rules
from jingkong.testing.models import BatchStatus, ResultSource, SamplingSite, TubeResult
from jingkong.testing.schemas.labs import (
    BarcodesIn,
    BatchDetailOut,
    BatchOut,
    CustodyOut,
    HandOverIn,
    LabIn,
    LabOut,
    LabPatch,
    PackIn,
    PackOut,
    ReceiveIn,
    ResultPage,
    ResultReportOut,
    ResultsIn,
    RetestTaskPage,
)
from jingkong.testing.selectors import page_number

router = Router(tags=["testing: labs and results"])


def _lab(request, lab_id: int):
    return lab_rules.lab_get(scope=request.scope, lab_id=lab_id, actor=request.jk_user)


def _batch(request, batch_id: int):
    return custody.batch_get(scope=request.scope, actor=request.jk_user, batch_id=batch_id)


# --- labs --------------------------------------------------------------------------------------------------------------


@router.get("/labs", response=list[LabOut])
@require(Perm.TESTING_VIEW)
def labs_list(request, active: bool | None = None):
    """Labs in your area and the labs serving it (a district lab for a street)."""
    return list(lab_rules.lab_list(scope=request.scope, active=active, actor=request.jk_user)
                .prefetch_related("technicians"))


@router.post("/labs", response={201: LabOut})
@require(Perm.TESTING_PLAN)
def labs_create(request, payload: LabIn):
    """Register a lab inside your area, with its capacity, turnaround target and technicians."""
    lab = lab_rules.lab_create(actor=request.jk_user, scope=request.scope, request=request, **payload.dict())
    return Status(201, lab)


@router.get("/labs/{lab_id}", response=LabOut)
@require(Perm.TESTING_VIEW)
def labs_get(request, lab_id: int):
    return _lab(request, lab_id)


@router.patch("/labs/{lab_id}", response=LabOut)
@require(Perm.TESTING_PLAN)
def labs_update(request, lab_id: int, payload: LabPatch):
    """Change capacity, target, name, active, or the technicians (the full list) of a lab inside your area."""
    lab = _lab(request, lab_id)
    fields = payload.dict(exclude_unset=True)
    technicians = fields.pop("technicians", None)
    return lab_rules.lab_update(actor=request.jk_user, scope=request.scope, lab=lab, technicians=technicians,
                                request=request, **fields)


@router.get("/labs/{lab_id}/board", response=dict)
@require(Perm.TESTING_VIEW)
def labs_board(request, lab_id: int, transit_hours: float = ta.DEFAULT_TRANSIT_HOURS):
    """The lab board: receipts, backlog, throughput against capacity, outcomes today, turnaround (last 24 h of
    swabs), overdue tubes (of your area; all of the lab's for its technicians)."""
    if not (0 < transit_hours <= 72):
        raise ValidationFailed("transit_hours must be between 0 and 72", extra={"field": "transit_hours"})
    lab = _lab(request, lab_id)
    return followup.lab_board(lab=lab, scope=followup.board_scope(request.scope, request.jk_user, lab),
                              transit_hours=transit_hours)


@router.get("/labs/{lab_id}/results", response=ResultPage)
@require(Perm.TESTING_VIEW)
def labs_results(request, lab_id: int, outcome: str = "", page: int = 1, page_size: int = 100):
    """The lab's accepted results, newest first (tube barcodes and values; no person data): all of them for its
    technicians, otherwise the tubes of your area."""
    lab = _lab(request, lab_id)
    qs = TubeResult.objects.filter(lab=lab).select_related("tube").order_by("-recorded_at", "-id")
    if not lab_rules.works_for(request.jk_user, lab):
        qs = qs.filter(request.scope.q("tube__region_code"))
    if outcome:
        if outcome not in ("negative", "positive", "invalid"):
            raise ValidationFailed("outcome: negative, positive or invalid", extra={"field": "outcome"})
        qs = qs.filter(outcome=outcome)
    page, page_size = page_number(page), max(1, min(page_size, 1000))
    return {"count": qs.count(), "page": page, "page_size": page_size,
            "items": list(qs[(page - 1) * page_size: page * page_size])}


# --- results ------------------------------------------------------------------------------------------------------------


@router.post("/labs/{lab_id}/results", response=ResultReportOut)
@require(Perm.TESTING_RESULT)
def results_enter(request, lab_id: int, payload: ResultsIn):
    """Enter one or many tube results (up to 5,000; larger runs: upload a file). Every row is checked: the answer
    lists the accepted count, identical re-sends (unchanged) and each rejected row (index, field, reason)."""
    lab = _lab(request, lab_id)
    rows = [results.ResultRow(i, r.tube, r.outcome, dict(r.ct_values), r.instrument, r.operator, r.tested_at)
            for i, r in enumerate(payload.results)]
    report = results.results_apply(actor=request.jk_user, lab=lab, rows=rows, source=ResultSource.API,
                                   source_ref=payload.source_ref or "api", request=request)
    return report.as_dict()


@router.post("/labs/{lab_id}/results/upload", response={202: JobOut})
@require(Perm.TESTING_RESULT)
def results_upload(request, lab_id: int, file: UploadedFile = File(None), format: str = ""):  # noqa: B008
    """Upload a results file — CSV (UTF-8/GBK, English or Chinese headers) or a FHIR R4 Bundle (.json) — applied by a
    background job; the job's result holds the report and names the error file."""
    lab = _lab(request, lab_id)
    job = results.enqueue_upload(actor=request.jk_user, lab=lab, file=file, fmt=format)
    return Status(202, job)


# --- custody ------------------------------------------------------------------------------------------------------------


@router.post("/labs/{lab_id}/receive", response=CustodyOut)
@require(Perm.TESTING_RESULT)
def labs_receive(request, lab_id: int, payload: BarcodesIn):
    """Walk-in receipt: tubes that were never packed, or that turn up after their batch."""
    lab = _lab(request, lab_id)
    return custody.tubes_receive(actor=request.jk_user, lab=lab, barcodes=payload.barcodes, at=payload.at).as_dict()


@router.get("/batches", response=list[BatchOut])
@require(Perm.TESTING_VIEW)
def batches_list(request, lab_id: int | None = None, site_id: int | None = None, status: str = "",
                 limit: int = 200):
    """Transport batches sent from your area (and, for a lab technician, those addressed to your labs)."""
    if status and status not in BatchStatus.values:
        raise ValidationFailed(f"status: one of {BatchStatus.values}", extra={"field": "status"})
    return list(custody.batch_list(scope=request.scope, actor=request.jk_user, lab_id=lab_id, site_id=site_id,
                                   status=status, limit=max(1, min(limit, 1000))))


@router.post("/batches", response={201: PackOut})
@require(Perm.TESTING_SAMPLE)
def batches_pack(request, payload: PackIn):
    """Pack sealed tubes into a transport batch for a lab (all or nothing: each refused tube is named)."""
    lab = _lab(request, payload.lab_id)
    site = None
    if payload.site_id is not None:
        site = SamplingSite.objects.filter(pk=payload.site_id).first()
        if site is None or not request.scope.contains(site.region_code):
            raise NotFound("sampling site not found", extra={"field": "site_id"})
    batch, out = custody.batch_pack(actor=request.jk_user, scope=request.scope, lab=lab, site=site,
                                    barcodes=payload.barcodes, code=payload.code, at=payload.at)
    return Status(201, {"batch": batch, **out})


@router.get("/batches/{batch_id}", response=BatchDetailOut)
@require(Perm.TESTING_VIEW)
def batches_get(request, batch_id: int):
    """A batch with its tubes and every custody timestamp."""
    return _batch(request, batch_id)


@router.post("/batches/{batch_id}/handover", response=BatchOut)
@require(Perm.TESTING_SAMPLE)
def batches_hand_over(request, batch_id: int, payload: HandOverIn):
    """Hand the batch to a courier."""
    batch = _batch(request, batch_id)
    return custody.batch_hand_over(actor=request.jk_user, batch=batch, courier=payload.courier, at=payload.at)


@router.post("/batches/{batch_id}/receive", response=CustodyOut)
@require(Perm.TESTING_RESULT)
def batches_receive(request, batch_id: int, payload: ReceiveIn | None = None):
    """Receive a batch at its lab; with the barcodes scanned on arrival, missing and unexpected tubes are reported."""
    batch = _batch(request, batch_id)
    payload = payload or ReceiveIn()
    return custody.batch_receive(actor=request.jk_user, batch=batch, barcodes=payload.barcodes,
                                 at=payload.at).as_dict()


# --- follow-up, turnaround, overdue ----------------------------------------------------------------------------------


def retest_task_rows(tasks, *, show_phone: bool) -> list[dict]:
    states = followup.states_of(t.person_id for t in tasks)
    out = []
    for t in tasks:
        p, s = t.person, states.get(t.person_id)
        out.append({
            "id": t.pk, "status": t.status, "reason": t.reason, "region_code": t.region_code,
            "campaign": t.campaign.code if t.campaign_id else None, "source_tube": t.source_tube.barcode,
            "created_at": t.created_at, "resolved_at": t.resolved_at, "person_id": p.pk, "name": p.name,
            "id_masked": p.id_masked, "phone": p.phone if show_phone else idnumber.phone_mask(p.phone),
            "building": p.building.code if p.building_id else None,
            "address": p.building.address if p.building_id else "",
            "household": p.household.code if p.household_id else None, "unit": p.unit, "room": p.room,
            "test_status": s.status if s else None, "controlled_in_place": bool(s and s.controlled_in_place),
            "controlled_since": s.controlled_since if s else None,
        })
    return out


@router.get("/retest-tasks", response=RetestTaskPage)
@require(Perm.PERSON_VIEW)
def retest_tasks_list(request, region: str = "", status: str = "", reason: str = "", campaign_id: int | None = None,
                      building: str = "", open_only: bool = False, page: int = 1, page_size: int = 100):
    """Pool-positive follow-up: who must be retested (or resampled) door to door, by grid and building, with their
    control status. Names people: audited (one record per read)."""
    qs = followup.retest_task_list(scope=request.scope, region=region, status=status, reason=reason,
                                   campaign_id=campaign_id, building=building, open_only=open_only)
    page, page_size = page_number(page), max(1, min(page_size, 1000))
    count = qs.count()
    tasks = list(qs[(page - 1) * page_size: page * page_size])
    filters = {k: str(v) for k, v in dict(region=region, status=status, reason=reason, campaign_id=campaign_id,
                                           building=building, open_only=open_only).items() if v}
    audit.record(actor=request.jk_user, action="person.list", object_type="people.person",
                 region_code=region or request.scope.prefix or "", request=request,
                 detail={"list": "testing.retest_tasks", "filters": filters, "count": count, "page": page,
                         "returned": len(tasks)})
    rows = retest_task_rows(tasks, show_phone=request.jk_user.has_role_perm(Perm.PERSON_VIEW_PHONE))
    return {"count": count, "page": page, "page_size": page_size, "items": rows}


@router.get("/retest-summary", response=list[dict])
@require(Perm.TESTING_VIEW)
def retest_summary(request, region: str = "", campaign_id: int | None = None):
    """Per grid: retest tasks by status and reason, and how many people are controlled in place (counts only)."""
    return followup.followup_summary(scope=request.scope, region=region, campaign_id=campaign_id)


def _window(since: dt.datetime | None, until: dt.datetime | None):
    def aware(v, name):
        if v is None:
            return None
        if v.tzinfo is None:
            from zoneinfo import ZoneInfo

            from jingkong.core import clock

            v = v.replace(tzinfo=ZoneInfo(clock.local_time_zone()))
        try:
            return v.astimezone(dt.UTC)
        except OverflowError:
            raise ValidationFailed(f"{name}: out of range", extra={"field": name}) from None

    since, until = aware(since, "since"), aware(until, "until")
    if since and until and until <= since:
        raise ValidationFailed("until must be after since", extra={"field": "until"})
    return since, until


@router.get("/turnaround", response=dict)
@require(Perm.TESTING_VIEW)
def turnaround_get(request, campaign_id: int | None = None, since: dt.datetime | None = None,
                   until: dt.datetime | None = None, lab_id: int | None = None, site_id: int | None = None):
    """Turnaround percentiles (hours): sampling → receipt → result, overall, per site and per lab, for the tubes of
    your area (a campaign and/or a window by first swab; naive times are local)."""
    since, until = _window(since, until)
    return ta.turnaround(scope=request.scope, campaign_id=campaign_id, since=since, until=until, lab_id=lab_id,
                         site_id=site_id)


@router.get("/overdue", response=dict)
@require(Perm.TESTING_VIEW)
def overdue_get(request, lab_id: int | None = None, campaign_id: int | None = None, site_id: int | None = None,
                transit_hours: float = ta.DEFAULT_TRANSIT_HOURS, limit: int = 500):
    """Tubes of your area not resulted yet that are past their lab's target (or the policy's) or too long in
    transit, oldest first."""
    if not (0 < transit_hours <= 72):
        raise ValidationFailed("transit_hours must be between 0 and 72", extra={"field": "transit_hours"})
    return ta.overdue(scope=request.scope, lab_id=lab_id, campaign_id=campaign_id, site_id=site_id,
                      transit_hours=transit_hours, limit=max(1, min(limit, 5000)))
