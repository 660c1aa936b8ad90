"""In/Out schemas of the facilities and orders API (dates are local calendar days, times ISO 8601 UTC)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from ninja import Schema
from pydantic import AfterValidator, Field

FacilityKindT = Literal["quarantine_hotel", "designated_hospital", "shelter"]
RoomKindT = Literal["single", "family", "accessible"]
RoomStateT = Literal["free", "reserved", "occupied", "cleaning", "out_of_service"]
TierT = Literal["close", "secondary", "case", "carer", "other"]
ModeT = Literal["central", "home_quarantine", "home_monitoring", "hospital"]
OrderStatusFilterT = Literal["", "active", "released", "converted", "cancelled"]
ModeFilterT = Literal["", "central", "home_quarantine", "home_monitoring", "hospital"]
FacilityKindFilterT = Literal["", "quarantine_hotel", "designated_hospital", "shelter"]
SymptomT = Literal["fever", "cough", "sore_throat", "fatigue", "loss_of_smell", "diarrhoea", "shortness_of_breath",
                   "muscle_pain", "other"]
Id = Annotated[int, Field(gt=0, lt=2**63)]


def _no_nul(value: str) -> str:
    """PostgreSQL text cannot hold NUL characters: refused at the door (422 naming the field)."""
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
RegionCode = Annotated[str, Field(pattern=r"^[0-9]{0,15}$")]


# --- facilities -------------------------------------------------------------------------------------------------------


class FacilityIn(Schema):
    code: Annotated[Text, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
    name: Annotated[Text, Field(min_length=1, max_length=255)]
    kind: FacilityKindT
    region_code: Annotated[str, Field(pattern=r"^[0-9]{6,15}$")]
    lon: Annotated[float, Field(ge=-180, le=180)]
    lat: Annotated[float, Field(ge=-90, le=90)]
    address: Annotated[Text, Field(max_length=255)] = ""
    mixing_tiers_forbidden: bool = True


class FacilityUpdateIn(Schema):
    name: Annotated[Text, Field(min_length=1, max_length=255)] | None = None
    kind: FacilityKindT | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    address: Annotated[Text, Field(max_length=255)] | None = None
    mixing_tiers_forbidden: bool | None = None
    active: bool | None = None


class StaffIn(Schema):
    usernames: list[Annotated[Text, Field(min_length=1, max_length=150)]] = Field(max_length=200)


class CapacityOut(Schema):
    key: str
    name: str
    region_code: str
    kind: str
    facility_id: int | None
    rooms: int
    usable_rooms: int
    free_rooms: int
    free_beds: int
    occupied_rooms: int
    reserved_rooms: int
    cleaning_rooms: int
    out_of_service_rooms: int
    people: int
    arrivals_per_day: float
    departures_per_day: float
    net_per_day: float
    days_left: float | None
    runs_out_on: dt.date | None
    alert: bool
    residents: int | None
    target_rooms: int | None
    target_beds: int | None
    below_target: bool


class FacilityOut(Schema):
    id: int
    code: str
    name: str
    kind: str
    region_code: str
    lon: float
    lat: float
    address: str
    mixing_tiers_forbidden: bool
    active: bool
    staff: list[str]
    capacity: CapacityOut | None = None


class RoomsBulkIn(Schema):
    floors: list[Annotated[int, Field(ge=-5, le=300)]] = Field(min_length=1, max_length=200)
    rooms_per_floor: Annotated[int, Field(ge=1, le=200)]
    kind: RoomKindT = "single"
    beds: Annotated[int, Field(ge=1, le=12)] = 1
    first_number: Annotated[int, Field(ge=0, le=900)] = 1


class RoomsBulkOut(Schema):
    created: int
    existing: int
    numbers: list[str]


class RoomStateIn(Schema):
    state: RoomStateT


class OccupantOut(Schema):
    person_id: int
    name: str
    tier: str
    checked_in_at: dt.datetime | None


class RoomOut(Schema):
    id: int
    number: str
    floor: int
    kind: str
    beds: int
    state: str
    state_since: dt.datetime
    occupants: list[OccupantOut] = []


class FloorCountOut(Schema):
    floor: int
    rooms: int
    beds: int
    people: int
    occupancy: int
    tiers: list[str]
    counts: dict[str, int]


class BoardOut(Schema):
    facility: FacilityOut
    rooms: int
    people: int
    counts: dict[str, int]
    floors: list[FloorCountOut]


class RoomGridOut(Schema):
    facility_id: int
    floors: dict[str, list[RoomOut]]


class AssignIn(Schema):
    person_ids: list[Id] = Field(min_length=1, max_length=5000)
    check_in: bool = False  # False: reserve rooms (the people are on their way); True: they are here
    tiers: dict[str, TierT] = Field(default_factory=dict, max_length=5000)  # person id -> tier (else from tracing)


class AssignOut(Schema):
    assigned: int
    checked_in: int
    unassigned: list[dict]
    rooms: dict[str, int]
    flags: dict[str, str]


class CheckoutIn(Schema):
    person_ids: list[Id] = Field(min_length=1, max_length=5000)
    reason: Annotated[Text, Field(max_length=64)] = "checked_out"


class CheckoutOut(Schema):
    checked_out: int


class ReserveOut(Schema):
    districts: list[CapacityOut]
    facilities: list[CapacityOut]
    hospitals: list[CapacityOut]


# --- orders -----------------------------------------------------------------------------------------------------------


class OrderItemIn(Schema):
    person_id: Id
    tier: TierT | None = None
    mode: ModeT | None = None
    last_exposure: dt.date | None = None
    start: dt.date | None = None
    facility_id: Id | None = None
    note: Annotated[Text, Field(max_length=2000)] = ""


class OrdersIn(Schema):
    items: list[OrderItemIn] = Field(min_length=1, max_length=5000)


class OrdersStartOut(Schema):
    created: list[int]
    skipped: list[dict]
    replaced: list[int]


class OrderOut(Schema):
    id: int
    person_id: int
    name: str
    id_masked: str
    tier: str
    mode: str
    status: str
    region_code: str
    counted_from: dt.date
    starts_on: dt.date
    ends_on: dt.date
    test_days: list[int]
    test_dates: list[dt.date]
    facility: str | None
    previous_id: int | None
    released_at: dt.datetime | None
    extended_days: int
    note: str


class OrderPage(Schema):
    count: int
    page: int
    page_size: int
    items: list[OrderOut]


class TestDayOut(Schema):
    day: int
    date: dt.date
    status: str
    samples: int
    negatives: int


class CheckOut(Schema):
    day: int
    checked_at: dt.datetime
    temperature: float | None
    symptoms: list[str]
    note: str
    flagged: bool


class OrderDetailOut(OrderOut):
    tests: list[TestDayOut]
    checks: list[CheckOut]
    release_problems: list[str]
    releasable: bool
    double_sampling: bool
    next_order_id: int | None
    room: str | None


class CheckIn(Schema):
    temperature: Annotated[float, Field(ge=30, le=45)] | None = None
    symptoms: list[SymptomT] = Field(default_factory=list, max_length=9)
    note: Annotated[Text, Field(max_length=2000)] = ""
    day: Annotated[int, Field(ge=0, le=120)] | None = None


class CheckResultOut(Schema):
    order_id: int
    day: int
    flagged: bool


class ReleaseIn(Schema):
    override_note: Annotated[Text, Field(max_length=500)] = ""


class ReleaseOut(Schema):
    released: list[int]
    next_orders: dict[str, int | None]
    blocked: list[dict]


class ReleaseDueIn(Schema):
    facility_id: Id | None = None
    region: RegionCode = ""


class ExtendIn(Schema):
    new_exposure: dt.date
    reason: Annotated[Text, Field(min_length=1, max_length=200)]


class CancelIn(Schema):
    reason: Annotated[Text, Field(min_length=1, max_length=500)]


class WorkItemOut(Schema):
    order_id: int
    person_id: int
    name: str
    facility: str | None
    room: str | None
    mode: str
    day: int | None = None
    date: dt.date | None = None
    double_sampling: bool = False
    problems: list[str] = []
    days: list[int] = []


class WorklistOut(Schema):
    today: dt.date
    active: int
    truncated: bool
    due_tests: list[WorkItemOut]
    missed_tests: list[WorkItemOut]
    releases_due: list[WorkItemOut]
    checks_overdue: list[WorkItemOut]
    checks_today: list[WorkItemOut]
