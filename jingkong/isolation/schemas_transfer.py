"""Input and output shapes of the transfer API (/api/v1/isolation/: batches, vehicles, runs, the route map)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from ninja import Schema
from pydantic import AfterValidator, Field

from jingkong.people.idnumber import phone_mask


def _no_nul(value: str) -> str:
    """PostgreSQL text cannot hold NUL characters (a DataError, i.e. a 500): refused at the door."""
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
RegionCode = Annotated[str, Field(pattern=r"^[0-9]{0,15}$")]
DbId = Annotated[int, Field(ge=1, le=2**62)]
BatchStatusT = Literal["", "waiting", "planned", "in_transit", "delivered", "cancelled"]
DestinationT = Literal["", "hospital", "central", "home", "separate_site"]
TransferStatusFilterT = Literal["", "planned", "dispatched", "at_pickup", "picked_up", "arrived", "cancelled"]
VehicleTypeT = Literal["bus", "minibus", "ambulance", "car"]
DisinfectionT = Literal["clean", "due"]
Lon = Annotated[float, Field(ge=73.0, le=136.0)]  # China's extent: a swapped lon/lat is refused
Lat = Annotated[float, Field(ge=3.0, le=54.0)]
Code = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.\-]+$")]
Plate = Annotated[str, Field(min_length=1, max_length=16), AfterValidator(_no_nul)]
Short = Annotated[str, Field(max_length=255), AfterValidator(_no_nul)]
Name = Annotated[str, Field(max_length=64), AfterValidator(_no_nul)]
Phone = Annotated[str, Field(max_length=20, pattern=r"^[0-9+\- ]*$")]


class GroupIn(Schema):
    region: RegionCode = Field("", description="Only people under this region code (default: the caller's region).")


class GroupOut(Schema):
    batches: int
    people: int
    by_destination: dict[str, int]
    skipped_count: int
    skipped: list[dict]
    contacts_handed_over: int
    refs: list[str]


class BatchOut(Schema):
    id: int
    ref: str
    region_code: str
    status: str
    destination_type: str
    priority: int
    size: int
    needs_accessible: bool
    needs_carer: bool
    pickup_label: str
    pickup_lon: float
    pickup_lat: float
    facility: str | None
    due_at: dt.datetime | None
    wait_reason: str
    created_at: dt.datetime


class BatchPage(Schema):
    count: int
    page: int
    page_size: int
    items: list[BatchOut]


class MemberOut(Schema):
    person_id: int
    name: str
    id_masked: str
    phone: str
    role: str
    household_id: int | None
    picked_up_at: dt.datetime | None
    arrived_at: dt.datetime | None
    removed_at: dt.datetime | None = None


class BatchDetailOut(BatchOut):
    members: list[MemberOut]


def batch_out(b) -> dict:
    return {"id": b.pk, "ref": b.ref, "region_code": b.region_code, "status": b.status,
            "destination_type": b.destination_type, "priority": b.priority, "size": b.size,
            "needs_accessible": b.needs_accessible, "needs_carer": b.needs_carer, "pickup_label": b.pickup_label,
            "pickup_lon": b.pickup_lon, "pickup_lat": b.pickup_lat,
            "facility": b.facility.code if b.facility_id else None, "due_at": b.due_at, "wait_reason": b.wait_reason,
            "created_at": b.created_at}


def member_out(m, *, show_phone: bool) -> dict:
    p = m.person
    return {"person_id": m.person_id, "name": p.name, "id_masked": p.id_masked,
            "phone": p.phone if show_phone else phone_mask(p.phone), "role": m.role, "household_id": m.household_id,
            "picked_up_at": m.picked_up_at, "arrived_at": m.arrived_at, "removed_at": m.removed_at}


class VehicleIn(Schema):
    code: Code
    plate: Plate
    type: VehicleTypeT
    seats: int = Field(ge=1, le=80)
    accessible: bool = False
    depot_lon: Lon
    depot_lat: Lat
    depot_label: Short = ""
    driver_name: Name = ""
    driver_phone: Phone = ""
    region_code: RegionCode
    disinfection: DisinfectionT = "clean"
    available: bool = True


class VehiclePatch(Schema):
    code: Code | None = None
    plate: Plate | None = None
    type: VehicleTypeT | None = None
    seats: int | None = Field(None, ge=1, le=80)
    accessible: bool | None = None
    depot_lon: Lon | None = None
    depot_lat: Lat | None = None
    depot_label: Short | None = None
    driver_name: Name | None = None
    driver_phone: Phone | None = None
    region_code: RegionCode | None = None
    disinfection: DisinfectionT | None = None
    available: bool | None = None


class VehicleOut(Schema):
    id: int
    code: str
    plate: str
    type: str
    seats: int
    accessible: bool
    depot_lon: float
    depot_lat: float
    depot_label: str
    driver_name: str
    driver_phone: str
    region_code: str
    disinfection: str
    available: bool


def vehicle_out(v, *, show_phone: bool = True) -> dict:
    out = {f: getattr(v, f) for f in VehicleOut.model_fields if f != "id"}
    out["id"] = v.pk
    if not show_phone:
        out["driver_phone"] = phone_mask(v.driver_phone)
    return out


class PlanIn(Schema):
    region: RegionCode = ""
    vehicle_ids: list[DbId] | None = Field(None, max_length=1000)
    time_limit_s: float = Field(20.0, ge=1.0, le=60.0, description="Search time limit of the optimiser.")
    background: bool = Field(False, description="Run as a background job (large regions always do).")


class PlanOut(Schema):
    plan_id: str
    transfers: int
    batches_planned: int
    people_planned: int
    batches_waiting: int
    waiting_reasons: dict[str, int]
    distance_m: int
    late_batches: int
    solver: str
    seconds: float
    baseline: dict | None
    refs: list[str]


class StopOut(Schema):
    id: int
    seq: int
    kind: str
    batch_id: int
    batch_ref: str
    people: int
    facility: str | None
    lon: float
    lat: float
    eta: dt.datetime | None
    arrived_at: dt.datetime | None
    done_at: dt.datetime | None


class TransferOut(Schema):
    id: int
    ref: str
    status: str
    region_code: str
    vehicle_id: int
    vehicle: str
    seats: int
    plan_id: str
    distance_m: int
    planned_start: dt.datetime | None
    planned_end: dt.datetime | None
    dispatched_at: dt.datetime | None
    arrived_at: dt.datetime | None
    created_at: dt.datetime


class TransferPage(Schema):
    count: int
    page: int
    page_size: int
    items: list[TransferOut]


class TransferDetailOut(TransferOut):
    route: dict | None
    stops: list[StopOut]


def transfer_out(t) -> dict:
    return {"id": t.pk, "ref": t.ref, "status": t.status, "region_code": t.region_code, "vehicle_id": t.vehicle_id,
            "vehicle": t.vehicle.code, "seats": t.vehicle.seats, "plan_id": t.plan_id, "distance_m": t.distance_m,
            "planned_start": t.planned_start, "planned_end": t.planned_end, "dispatched_at": t.dispatched_at,
            "arrived_at": t.arrived_at, "created_at": t.created_at}


def stop_out(s) -> dict:
    return {"id": s.pk, "seq": s.seq, "kind": s.kind, "batch_id": s.batch_id, "batch_ref": s.batch.ref,
            "people": s.batch.size, "facility": s.facility.code if s.facility_id else None, "lon": s.lon, "lat": s.lat,
            "eta": s.eta, "arrived_at": s.arrived_at, "done_at": s.done_at}


class StatusIn(Schema):
    status: Literal["dispatched", "at_pickup", "picked_up", "arrived"]
    stop_id: DbId | None = Field(None, description="The stop (default: the next open stop of the right kind).")
    at: dt.datetime | None = Field(None, description="When it happened (default: now); a device may send later.")


class ReorderIn(Schema):
    stop_ids: list[DbId] = Field(min_length=1, max_length=500)


class MoveIn(Schema):
    batch_id: DbId
    to_vehicle_id: DbId


class MemberRemoveIn(Schema):
    person_id: DbId
    reason: Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_no_nul)]


class CancelIn(Schema):
    reason: Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_no_nul)]


class ManifestStopOut(Schema):
    seq: int
    kind: str
    batch_ref: str
    label: str
    facility: str | None
    eta: dt.datetime | None
    people: list[MemberOut]


class ManifestOut(Schema):
    transfer: TransferOut
    vehicle_plate: str
    driver_name: str
    stops: list[ManifestStopOut]
