"""In/Out schemas of the services API (/api/v1/command/services/…, /api/v1/command/supplies/…). Times are ISO 8601
with a time zone (stored and answered in UTC). Persons appear masked: the name and ID number always, the phone unless
the caller's role may see phone numbers; the delivery address (building, unit, room) in full."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from ninja import Schema
from pydantic import AfterValidator, Field

from jingkong.command.models import ServiceRequest, StockLevel, StockMovement
from jingkong.command.service_rules import groups_of
from jingkong.people.idnumber import phone_mask


def _no_nul(value: str) -> str:
    """PostgreSQL text cannot hold NUL characters: refused at the door (422 naming the field)."""
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
RegionCode = Annotated[str, Field(pattern=r"^[0-9]{0,15}$")]
CategoryT = Literal["medicine", "medical_visit", "food", "garbage", "psychological", "other"]
CategoryFilterT = Literal["", "medicine", "medical_visit", "food", "garbage", "psychological", "other"]
StatusFilterT = Literal["", "submitted", "assigned", "in_progress", "delivered", "confirmed", "cancelled"]
StaffStatusT = Literal["in_progress", "delivered", "cancelled"]
WorkerStatusT = Literal["in_progress", "delivered"]
ViaT = Literal["hotline", "relative", "staff", "resident"]
MovementKindT = Literal["receipt", "consumption", "transfer", "adjustment"]
SupplyCategoryT = Literal["test_kit", "tube", "protective", "food", "medicine", "other"]
DepotKindT = Literal["depot", "site"]


def name_mask(name: str) -> str:
    """张三 → 张*, 张小明 → 张*明, Zhang Xiaoming → Z*************g."""
    name = (name or "").strip()
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


# --- service requests -------------------------------------------------------------------------------------------------


class RequestCreateIn(Schema):
    person_id: int | None = Field(None, ge=1, le=2**62,
                                  description="The person (of the caller's region), or give id_number.")
    id_number: Text = Field("", max_length=32, description="Resident ID number (GB 11643), instead of person_id.")
    category: CategoryT
    subcategory: Text = Field("", max_length=32, description="A subcategory the policy in force offers, or empty.")
    description: Text = Field("", max_length=2000)
    via: ViaT = Field("hotline", description="Who asked: the hotline, a relative, staff, the resident.")
    contact_phone: Text = Field("", max_length=20, description="Phone to call back (default: the registry phone).")
    client_key: Text = Field("", max_length=64, description="Submission key: the same key twice makes one request.")


class AssignIn(Schema):
    worker_id: int = Field(ge=1, le=2**62)
    note: Text = Field("", max_length=1000)


class StatusIn(Schema):
    status: StaffStatusT
    note: Text = Field("", max_length=1000, description="Required when cancelling.")


class WorkerStatusIn(Schema):
    status: WorkerStatusT
    note: Text = Field("", max_length=1000)


class UpdateOut(Schema):
    at: dt.datetime
    status: str
    by: str
    note: str


class RequestOut(Schema):
    id: int
    ref: str
    person_id: int
    name_masked: str
    id_masked: str
    phone: str
    address: str
    vulnerable_groups: list[str]
    category: str
    subcategory: str
    description: str
    submitted_via: str
    region_code: str
    priority: int
    deadline: dt.datetime
    overdue: bool
    status: str
    assignee_id: int | None
    assignee: str
    escort_requested: bool
    submitted_at: dt.datetime
    delivered_at: dt.datetime | None
    confirmed_at: dt.datetime | None
    satisfaction: int | None


class RequestDetailOut(RequestOut):
    history: list[UpdateOut]
    created: bool = False


class RequestPage(Schema):
    count: int
    page: int
    page_size: int
    items: list[RequestOut]


def address_of(person) -> str:
    building = getattr(person, "building", None)
    parts = [building.address or building.code] if building is not None else []
    parts += [p for p in (person.unit, person.room) if p]
    return " ".join(parts)


def request_out(req: ServiceRequest, *, show_phone: bool, now: dt.datetime) -> dict:
    person = req.person
    phone = req.contact_phone or person.phone
    return {
        "id": req.pk, "ref": req.ref, "person_id": req.person_id, "name_masked": name_mask(person.name),
        "id_masked": person.id_masked, "phone": phone if show_phone else phone_mask(phone),
        "address": address_of(person), "vulnerable_groups": list(groups_of(req.vulnerable)),
        "category": req.category, "subcategory": req.subcategory, "description": req.description,
        "submitted_via": req.submitted_via, "region_code": req.region_code, "priority": req.priority,
        "deadline": req.deadline, "overdue": req.status in ("submitted", "assigned", "in_progress") and
        req.deadline < now, "status": req.status, "assignee_id": req.assignee_id,
        "assignee": req.assignee.name if req.assignee_id else "", "escort_requested": req.escort_requested,
        "submitted_at": req.submitted_at, "delivered_at": req.delivered_at, "confirmed_at": req.confirmed_at,
        "satisfaction": req.satisfaction,
    }


def update_out(u) -> dict:
    return {"at": u.at, "status": u.status, "by": u.by.username if u.by_id else "", "note": u.note}


class RegionCountOut(Schema):
    region_code: str
    name: str
    count: int
    overdue: int
    drill: str


class CountsOut(Schema):
    region: str
    total: int
    overdue: int
    by_region: list[RegionCountOut]
    by_category: dict[str, int]
    by_status: dict[str, int]


# --- supplies ---------------------------------------------------------------------------------------------------------


class ItemIn(Schema):
    code: Text = Field(min_length=1, max_length=32)
    name: Text = Field(min_length=1, max_length=128)
    category: SupplyCategoryT
    unit: Text = Field(min_length=1, max_length=16)


class ItemOut(Schema):
    id: int
    code: str
    name: str
    category: str
    unit: str
    active: bool


class ItemUpdateIn(Schema):
    """Only the fields given change; the code stays (movements and files name it)."""

    name: Text | None = Field(None, min_length=1, max_length=128)
    category: SupplyCategoryT | None = None
    unit: Text | None = Field(None, min_length=1, max_length=16)
    active: bool | None = Field(None, description="false: no more receipts; stock and history stay.")


class DepotIn(Schema):
    code: Text = Field(min_length=1, max_length=32)
    name: Text = Field(min_length=1, max_length=128)
    region_code: RegionCode = ""
    kind: DepotKindT = "depot"
    sampling_site_id: int | None = Field(None, ge=1, le=2**62)
    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)


class DepotOut(Schema):
    id: int
    code: str
    name: str
    kind: str
    region_code: str
    sampling_site_id: int | None
    lon: float | None
    lat: float | None
    active: bool


class DepotUpdateIn(Schema):
    """Only the fields given change; the code and region stay."""

    name: Text | None = Field(None, min_length=1, max_length=128)
    kind: DepotKindT | None = None
    active: bool | None = Field(None, description="false: the depot receives nothing; what is left can leave.")
    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)


class LevelOut(Schema):
    depot: str
    depot_name: str
    item: str
    item_name: str
    unit: str
    quantity: int
    low_threshold: int
    low: bool
    updated_at: dt.datetime


def level_out(level: StockLevel) -> dict:
    return {"depot": level.depot.code, "depot_name": level.depot.name, "item": level.item.code,
            "item_name": level.item.name, "unit": level.item.unit, "quantity": level.quantity,
            "low_threshold": level.low_threshold,
            "low": level.low_threshold > 0 and level.quantity <= level.low_threshold, "updated_at": level.updated_at}


class DepotDetailOut(DepotOut):
    stock: list[LevelOut]
    movements: list[MovementOut]


class MovementIn(Schema):
    item: Text = Field(min_length=1, max_length=32, description="Item code.")
    kind: MovementKindT
    quantity: int | None = Field(None, ge=1, le=10_000_000, description="Units (receipt, consumption, transfer).")
    counted: int | None = Field(None, ge=0, le=10_000_000, description="Counted stock (adjustment).")
    to_depot: Text = Field("", max_length=32, description="Receiving depot code (transfer).")
    client_key: Text = Field("", max_length=64, description="Submission key: a resend returns the first answer.")
    note: Text = Field("", max_length=1000)


class MovementOut(Schema):
    id: int
    depot: str
    item: str
    kind: str
    quantity: int
    at: dt.datetime
    client_key: str
    note: str
    pair_id: int | None


def movement_out(m: StockMovement) -> dict:
    return {"id": m.pk, "depot": m.depot.code, "item": m.item.code, "kind": m.kind, "quantity": m.quantity,
            "at": m.at, "client_key": m.client_key, "note": m.note, "pair_id": m.pair_id}


DepotDetailOut.model_rebuild()


class MovementResultOut(Schema):
    created: bool
    movement: MovementOut
    stock: list[LevelOut]


class ThresholdIn(Schema):
    item: Text = Field(min_length=1, max_length=32)
    threshold: int = Field(ge=0, le=10_000_000)


class TotalOut(Schema):
    item: str
    name: str
    unit: str
    quantity: int
    depots: int
    low: int


class ConsumptionOut(Schema):
    day: dt.date
    item: str
    name: str
    quantity: int


class ImportOut(Schema):
    rows: int
    applied: int
    unchanged: int
    errors: list[dict]
