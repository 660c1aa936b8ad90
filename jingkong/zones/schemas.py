"""In/Out schemas of the zones API. Times are ISO 8601 with a time zone (stored and answered in UTC)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from ninja import Schema
from pydantic import AfterValidator, Field

ZoneTypeT = Literal["lockdown", "control", "prevention", "high_risk", "medium_risk", "low_risk"]
ZoneTypeFilterT = Literal["", "lockdown", "control", "prevention", "high_risk", "medium_risk", "low_risk"]
ZoneStatusFilterT = Literal["", "proposed", "approved", "rejected", "lifted"]
UnitKindT = Literal["household", "entrance", "building", "compound", "grid", "community", "street"]
SourceFilterT = Literal["", "district", "imported"]


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
DivisionCode = Annotated[str, Field(pattern=r"^[0-9]{2,15}$")]


class ProposeIn(Schema):
    case_ref: Text = Field(min_length=1, max_length=32, description="Case number, e.g. BL-2022-0001.")


class UnitIn(Schema):
    kind: UnitKindT
    household_id: int | None = Field(None, ge=1, le=2**62)
    building_id: int | None = Field(None, ge=1, le=2**62)
    entrance: Text = Field("", max_length=16)
    region_code: Text = Field("", max_length=32)


class ZoneEditIn(Schema):
    name: Text | None = Field(None, max_length=255)
    type: ZoneTypeT | None = None
    add_units: list[UnitIn] = Field(default_factory=list, max_length=500)
    remove_unit_ids: list[Annotated[int, Field(ge=1, le=2**62)]] = Field(default_factory=list, max_length=500)
    reason: Text = Field("", max_length=2000)


class ReasonIn(Schema):
    reason: Text = Field(min_length=1, max_length=2000)


class ApproveIn(Schema):
    reason: Text = Field("", max_length=2000)


class BlockerOut(Schema):
    code: str
    text: str
    clears_at: dt.datetime | None


class CountdownOut(Schema):
    action: str
    to_type: str | None
    due_at: dt.datetime | None
    ready: bool
    blockers: list[BlockerOut]


class ZoneOut(Schema):
    id: int
    ref: str
    name: str
    type: str
    status: str
    region_code: str
    case_ref: str | None
    around_ref: str | None
    people: int
    households: int
    vulnerable: int
    last_infection_at: dt.datetime | None
    last_exposure_at: dt.datetime | None
    last_screening_at: dt.datetime | None
    type_since: dt.datetime | None
    proposed_at: dt.datetime
    approved_at: dt.datetime | None
    lifted_at: dt.datetime | None
    countdown: CountdownOut | None


class UnitOut(Schema):
    id: int
    kind: str
    label: str
    region_code: str
    household_id: int | None
    building_id: int | None
    entrance: str


class ChangeOut(Schema):
    at: dt.datetime
    actor: str | None
    action: str
    from_type: str
    to_type: str
    reason: str
    detail: dict


class ZoneDetailOut(ZoneOut):
    units: list[UnitOut]
    history: list[ChangeOut]
    geometry: dict | None
    policy_profile: str | None


class ZonePage(Schema):
    count: int
    items: list[ZoneOut]


class ResidentOut(Schema):
    person_id: int
    name: str
    id_masked: str
    region_code: str
    household: str | None
    vulnerable: int


class ResidentPage(Schema):
    count: int
    page: int
    page_size: int
    items: list[ResidentOut]


class RiskAreaOut(Schema):
    id: int
    source: str
    area_code: str
    name: str
    level: str
    zone_ref: str | None
    list_name: str
    published_at: dt.datetime
    withdrawn_at: dt.datetime | None


class RiskAreaPage(Schema):
    count: int
    items: list[RiskAreaOut]


class RiskLevelOut(Schema):
    code: str
    at: dt.datetime
    level: str | None


class ImportOut(Schema):
    rows: int
    created: int
    updated: int
    unchanged: int
    rejected: int
    encoding: str
    errors: int
    errors_sample: list[dict]
    error_file: str


def zone_out(zone, countdown=None) -> dict:
    return {
        "id": zone.pk, "ref": zone.ref, "name": zone.name, "type": zone.type, "status": zone.status,
        "region_code": zone.region_code, "case_ref": zone.case.ref if zone.case_id else None,
        "around_ref": zone.around.ref if zone.around_id else None, "people": zone.people,
        "households": zone.households, "vulnerable": zone.vulnerable, "last_infection_at": zone.last_infection_at,
        "last_exposure_at": zone.last_exposure_at, "last_screening_at": zone.last_screening_at,
        "type_since": zone.type_since, "proposed_at": zone.proposed_at, "approved_at": zone.approved_at,
        "lifted_at": zone.lifted_at, "countdown": countdown.as_dict() if countdown else None,
    }


def risk_area_out(area) -> dict:
    return {"id": area.pk, "source": area.source, "area_code": area.area_code, "name": area.name, "level": area.level,
            "zone_ref": area.zone.ref if area.zone_id else None, "list_name": area.list_name,
            "published_at": area.published_at, "withdrawn_at": area.withdrawn_at}
