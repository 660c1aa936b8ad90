"""/api/v1/isolation/ routes of the transfer area: batches (编组), vehicles, planning, runs (转运), live status, the
driver's manifest and the route map's GeoJSON.

Aggregates and the map (no person data) need ISOLATION_VIEW; everything naming people, and every write,
TRANSFER_EDIT (the dispatcher's role also holds PERSON_VIEW; reads of people are audited).
"""

from __future__ import annotations

from ninja import Router, Status

from jingkong.access import audit
from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.core.schemas import JobOut
from jingkong.isolation import grouping, transfers
from jingkong.isolation import selectors_transfer as selectors
from jingkong.isolation.schemas_transfer import (
    BatchDetailOut,
    BatchPage,
    BatchStatusT,
    CancelIn,
    DestinationT,
    GroupIn,
    GroupOut,
    ManifestOut,
    MemberRemoveIn,
    MoveIn,
    PlanIn,
    PlanOut,
    RegionCode,
    ReorderIn,
    StatusIn,
    TransferDetailOut,
    TransferOut,
    TransferPage,
    TransferStatusFilterT,
    VehicleIn,
    VehicleOut,
    VehiclePatch,
    batch_out,
    member_out,
    stop_out,
    transfer_out,
    vehicle_out,
)

router = Router(tags=["isolation"])
MAX_PAGE = 100_000


def _page(page: int, page_size: int) -> tuple[int, int]:
    return max(1, min(page, MAX_PAGE)), max(1, min(page_size, 500))


def _show_phone(request) -> bool:
    return request.jk_user.has_role_perm(Perm.PERSON_VIEW_PHONE)


# --- batches ------------------------------------------------------------------------------------------------------


@router.get("/batches", response=BatchPage)
@require(Perm.ISOLATION_VIEW)
def batches_list(request, status: BatchStatusT = "", destination: DestinationT = "", region: RegionCode = "",
                 page: int = 1, page_size: int = 50):
    """Transfer batches in the caller's region (sizes and pickup points; no names), most urgent first."""
    qs = selectors.batch_list(scope=request.scope, status=status, destination=destination, region=region)
    page, page_size = _page(page, page_size)
    return {"count": qs.count(), "page": page, "page_size": page_size,
            "items": [batch_out(b) for b in qs[(page - 1) * page_size: page * page_size]]}


@router.post("/batches/group", response=GroupOut)
@require(Perm.TRANSFER_EDIT)
def batches_group(request, payload: GroupIn):
    """Group everyone waiting for transfer (located contacts, cases not yet in hospital) into batches."""
    if payload.region:
        request.scope.check(payload.region, "region")
    return grouping.group_waiting(actor=request.jk_user, scope=request.scope, region_code=payload.region,
                                  request=request)


@router.get("/batches/{batch_id}", response=BatchDetailOut)
@require(Perm.TRANSFER_EDIT)
def batch_detail(request, batch_id: int):
    batch = selectors.batch_get(scope=request.scope, batch_id=batch_id)
    members = list(selectors.batch_members(batch.pk))
    audit.record_many(actor=request.jk_user, action="person.view", object_type="people.person",
                      items=((m.person_id, m.region_code) for m in members), request=request,
                      detail={"batch": batch.ref})
    show = _show_phone(request)
    return {**batch_out(batch), "members": [member_out(m, show_phone=show) for m in members]}


@router.post("/batches/{batch_id}/remove", response=BatchDetailOut)
@require(Perm.TRANSFER_EDIT)
def batch_member_remove(request, batch_id: int, payload: MemberRemoveIn):
    """Take a person who has not boarded out of the batch (they wait for grouping again unless the contact is
    closed); an emptied batch is cancelled and leaves its run."""
    batch = selectors.batch_get(scope=request.scope, batch_id=batch_id)
    batch = transfers.member_remove(actor=request.jk_user, batch=batch, person_id=payload.person_id,
                                    reason=payload.reason, request=request)
    batch = selectors.batch_get(scope=request.scope, batch_id=batch.pk)
    members = list(selectors.batch_members(batch.pk))
    audit.record_many(actor=request.jk_user, action="person.view", object_type="people.person",
                      items=((m.person_id, m.region_code) for m in members), request=request,
                      detail={"batch": batch.ref})
    show = _show_phone(request)
    return {**batch_out(batch), "members": [member_out(m, show_phone=show) for m in members]}


# --- vehicles -----------------------------------------------------------------------------------------------------


@router.get("/vehicles", response=list[VehicleOut])
@require(Perm.TRANSFER_EDIT)
def vehicles_list(request, available: bool | None = None):
    return [vehicle_out(v) for v in selectors.vehicle_list(scope=request.scope, available=available)[:2000]]


@router.post("/vehicles", response={201: VehicleOut})
@require(Perm.TRANSFER_EDIT)
def vehicles_create(request, payload: VehicleIn):
    vehicle = transfers.vehicle_save(actor=request.jk_user, scope=request.scope, request=request, **payload.dict())
    return Status(201, vehicle_out(vehicle))


@router.get("/vehicles/{vehicle_id}", response=VehicleOut)
@require(Perm.TRANSFER_EDIT)
def vehicle_detail(request, vehicle_id: int):
    return vehicle_out(selectors.vehicle_get(scope=request.scope, vehicle_id=vehicle_id))


@router.patch("/vehicles/{vehicle_id}", response=VehicleOut)
@require(Perm.TRANSFER_EDIT)
def vehicle_update(request, vehicle_id: int, payload: VehiclePatch):
    vehicle = selectors.vehicle_get(scope=request.scope, vehicle_id=vehicle_id)
    vehicle = transfers.vehicle_save(actor=request.jk_user, scope=request.scope, vehicle=vehicle, request=request,
                                     **payload.dict(exclude_unset=True))
    return vehicle_out(vehicle)


@router.delete("/vehicles/{vehicle_id}", response={204: None})
@require(Perm.TRANSFER_EDIT)
def vehicle_delete(request, vehicle_id: int):
    vehicle = selectors.vehicle_get(scope=request.scope, vehicle_id=vehicle_id)
    transfers.vehicle_delete(actor=request.jk_user, vehicle=vehicle, request=request)
    return Status(204, None)


# --- planning and runs --------------------------------------------------------------------------------------------


@router.post("/transfers/plan", response={200: PlanOut, 202: JobOut})
@require(Perm.TRANSFER_EDIT)
def transfers_plan(request, payload: PlanIn):
    """Plan runs for the waiting batches (OR-Tools; a background job for large regions or when asked)."""
    if payload.region:
        request.scope.check(payload.region, "region")
    if payload.background or transfers.waiting_batch_count(request.scope, payload.region) > transfers.SYNC_PLAN_LIMIT:
        job = transfers.enqueue_plan(actor=request.jk_user, scope=request.scope, region_code=payload.region,
                                     vehicle_ids=payload.vehicle_ids, time_limit_s=payload.time_limit_s)
        return Status(202, job)
    return transfers.plan_transfers(actor=request.jk_user, scope=request.scope, region_code=payload.region,
                                    vehicle_ids=payload.vehicle_ids, time_limit_s=payload.time_limit_s,
                                    request=request)


@router.get("/transfers", response=TransferPage)
@require(Perm.ISOLATION_VIEW)
def transfers_list(request, status: TransferStatusFilterT = "", active: bool = False, page: int = 1,
                   page_size: int = 50):
    qs = selectors.transfer_list(scope=request.scope, status=status, active=active)
    page, page_size = _page(page, page_size)
    return {"count": qs.count(), "page": page, "page_size": page_size,
            "items": [transfer_out(t) for t in qs[(page - 1) * page_size: page * page_size]]}


@router.get("/transfers/map", response=dict)
@require(Perm.ISOLATION_VIEW)
def transfers_map(request, include_done: bool = False):
    """GeoJSON FeatureCollection of routes, vehicles, pickups, waiting batches and facilities (layer property)."""
    return selectors.map_geojson(scope=request.scope, include_done=include_done)


@router.get("/transfers/{transfer_id}", response=TransferDetailOut)
@require(Perm.ISOLATION_VIEW)
def transfer_detail(request, transfer_id: int):
    t = selectors.transfer_get(scope=request.scope, transfer_id=transfer_id)
    return {**transfer_out(t), "route": t.route, "stops": [stop_out(s) for s in selectors.transfer_stops(t.pk)]}


def _detail(t):
    t.refresh_from_db()
    return {**transfer_out(t), "route": t.route, "stops": [stop_out(s) for s in selectors.transfer_stops(t.pk)]}


@router.post("/transfers/{transfer_id}/status", response=TransferDetailOut)
@require(Perm.TRANSFER_EDIT)
def transfer_status(request, transfer_id: int, payload: StatusIn):
    """Live status: dispatched → at pickup → picked up → arrived (per stop; each handover timestamped)."""
    t = selectors.transfer_get(scope=request.scope, transfer_id=transfer_id)
    t = transfers.transfer_status(actor=request.jk_user, transfer=t, status=payload.status, stop_id=payload.stop_id,
                                  at=payload.at, request=request)
    return _detail(t)


@router.post("/transfers/{transfer_id}/reorder", response=TransferDetailOut)
@require(Perm.TRANSFER_EDIT)
def transfer_reorder(request, transfer_id: int, payload: ReorderIn):
    t = selectors.transfer_get(scope=request.scope, transfer_id=transfer_id)
    t = transfers.transfer_reorder(actor=request.jk_user, transfer=t, stop_ids=payload.stop_ids, request=request)
    return _detail(t)


@router.post("/transfers/{transfer_id}/move", response=TransferDetailOut)
@require(Perm.TRANSFER_EDIT)
def transfer_move(request, transfer_id: int, payload: MoveIn):
    """Move one batch of this planned run to another vehicle; answers the receiving run."""
    t = selectors.transfer_get(scope=request.scope, transfer_id=transfer_id)
    target = transfers.batch_move(actor=request.jk_user, scope=request.scope, transfer=t, batch_id=payload.batch_id,
                                  to_vehicle_id=payload.to_vehicle_id, request=request)
    return _detail(target)


@router.post("/transfers/{transfer_id}/cancel", response=TransferOut)
@require(Perm.TRANSFER_EDIT)
def transfer_cancel(request, transfer_id: int, payload: CancelIn):
    t = selectors.transfer_get(scope=request.scope, transfer_id=transfer_id)
    t = transfers.transfer_cancel(actor=request.jk_user, transfer=t, reason=payload.reason, request=request)
    return transfer_out(t)


@router.get("/transfers/{transfer_id}/manifest", response=ManifestOut)
@require(Perm.TRANSFER_EDIT)
def transfer_manifest(request, transfer_id: int):
    """The driver's manifest: stops in order with the people to pick up (masked ID numbers)."""
    t = selectors.transfer_get(scope=request.scope, transfer_id=transfer_id)
    rows = selectors.manifest(t)
    people = [m for r in rows for m in r["members"]]
    audit.record_many(actor=request.jk_user, action="person.list", object_type="people.person",
                      items=((m.person_id, m.region_code) for m in people), request=request,
                      detail={"list": "transfer manifest", "transfer": t.ref})
    show = _show_phone(request)
    return {"transfer": transfer_out(t), "vehicle_plate": t.vehicle.plate, "driver_name": t.vehicle.driver_name,
            "stops": [{"seq": r["stop"].seq, "kind": r["stop"].kind, "batch_ref": r["stop"].batch.ref,
                       "label": r["stop"].batch.pickup_label if r["stop"].kind == "pickup" else
                       (r["stop"].facility.name if r["stop"].facility_id else ""),
                       "facility": r["stop"].facility.code if r["stop"].facility_id else None, "eta": r["stop"].eta,
                       "people": [member_out(m, show_phone=show) for m in r["members"]]} for r in rows]}
