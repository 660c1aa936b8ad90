"""Request and response shapes of the checkpoints area (/api/v1/codes/checkpoints…, /passes…, /venues/…, /referrals…).

The device bodies (verification, offline batches, venue scans) are loosely typed on purpose: the service checks every
field itself and names it (a batch item with a bad field is rejected alone, the rest are kept). Times are ISO 8601
(without an offset: local time, Asia/Shanghai); answers are in UTC.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from ninja import Field, Schema
from pydantic import AfterValidator, BaseModel

from jingkong.codes.checkpoints import MAX_BATCH


def _no_nul(value: str) -> str:
    """PostgreSQL text cannot hold NUL characters: refused at the door (422 naming the field)."""
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
KindT = Literal["highway_exit", "road", "zone_boundary", "port"]
PassKindT = Literal["medical", "essential_supply", "transfer", "official"]
KindFilterT = Literal["", "highway_exit", "road", "zone_boundary", "port"]
PassKindFilterT = Literal["", "medical", "essential_supply", "transfer", "official"]
PassStatusFilterT = Literal["", "valid", "revoked", "expired"]
ReferralStatusT = Literal["referred", "visited", "cleared"]
ReferralStatusFilterT = Literal["", "referred", "visited", "cleared"]
DecisionFilterT = Literal["", "allow", "refer", "deny"]
WhoT = dict | str | None


# --- checkpoints ------------------------------------------------------------------------------------------------------


class CheckpointIn(Schema):
    code: Text = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")
    name: Text = Field(min_length=1, max_length=255)
    kind: KindT
    region_code: Text = Field(pattern=r"^[0-9]{2,15}$", description="The region the checkpoint belongs to.")
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    zone: Text | None = Field(None, max_length=32, description="Reference of the zone it guards (a zone boundary).")
    staff: list[Annotated[Text, Field(max_length=150)]] = Field(default_factory=list, max_length=200,
                                                                 description="Usernames of its officers.")
    active: bool = True


class CheckpointUpdateIn(Schema):
    name: Text | None = Field(None, min_length=1, max_length=255)
    kind: KindT | None = None
    region_code: Text | None = Field(None, pattern=r"^[0-9]{2,15}$")
    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)
    zone: Text | None = Field(None, max_length=32, description="Empty string: guards no zone.")
    staff: list[Annotated[Text, Field(max_length=150)]] | None = Field(None, max_length=200)
    active: bool | None = None


class CheckpointOut(Schema):
    code: str
    name: str
    kind: str
    region_code: str
    lon: float
    lat: float
    zone: str | None
    staff: list[str]
    active: bool
    created_at: dt.datetime


def checkpoint_out(cp) -> dict:
    return {"code": cp.code, "name": cp.name, "kind": cp.kind, "region_code": cp.region_code, "lon": cp.lon,
            "lat": cp.lat, "zone": cp.zone.ref if cp.zone_id else None,
            "staff": sorted(u.username for u in cp.staff.all()), "active": cp.active, "created_at": cp.created_at}


# --- verification and crossings -------------------------------------------------------------------------------------


class VerifyIn(BaseModel):
    """A person (``token`` or ``id_number``, or ``person``) or a vehicle (``plate``, ``driver``, ``passengers``, each a
    token or ID number, optional ``pass_number``)."""

    client_id: str | None = Field(None, description="Made by the device; sending the same record again returns the "
                                                     "stored result. Absent: derived from the record.")
    subject: str | None = Field(None, description="person (default) or vehicle (default when a plate is given).")
    at: str | None = Field(None, description="ISO 8601; default now.")
    direction: str | None = Field(None, description="in, out or empty.")
    origin_code: str | None = Field(None, description="Division code of where the person or vehicle comes from.")
    token: str | None = None
    id_number: str | None = None
    person: WhoT = None
    plate: str | None = None
    driver: WhoT = None
    passengers: list[WhoT] | None = None
    pass_number: str | None = None


class SyncItemIn(VerifyIn):
    decision: str | None = Field(None, description="What the device decided (allow/refer/deny); required without a "
                                                   "scanned code.")


class SyncIn(BaseModel):
    device: str | None = Field(None, max_length=64)
    crossings: list[dict] = Field(min_length=1, max_length=MAX_BATCH)


class PersonSeenOut(Schema):
    who: str
    id_masked: str
    name_masked: str
    colour: str
    found: bool


class CrossingResultOut(Schema):
    index: int
    status: str
    client_id: str
    decision: str
    colour: str
    reasons: list[dict]
    crossing_id: int | None
    field: str
    reason: str
    people: list[PersonSeenOut]
    pass_number: str | None
    arrivals: int


class SyncOut(Schema):
    counts: dict[str, int]
    results: list[CrossingResultOut]


class CrossingOut(Schema):
    id: int
    client_id: str
    at: dt.datetime
    direction: str
    subject: str
    plate: str
    passengers: int
    pass_number: str | None
    origin_code: str
    colour: str
    decision: str
    reasons: list[dict]
    offline: bool


def crossing_out(c) -> dict:
    return {"id": c.pk, "client_id": c.client_id, "at": c.at, "direction": c.direction, "subject": c.subject,
            "plate": c.plate, "passengers": c.passengers, "pass_number": c.pass_used.number if c.pass_used_id else None,
            "origin_code": c.origin_code, "colour": c.colour, "decision": c.decision, "reasons": c.reasons or [],
            "offline": c.offline}


class HourOut(Schema):
    checkpoint: str
    name: str
    hour: dt.datetime
    total: int
    allowed: int
    referred: int
    denied: int
    vehicles: int
    offline: int


class HourlyOut(Schema):
    start: dt.datetime
    end: dt.datetime
    totals: dict[str, int]
    hours: list[HourOut]


# --- passes -----------------------------------------------------------------------------------------------------------


class PassIn(Schema):
    kind: PassKindT
    plate: Text = Field(min_length=2, max_length=32)
    holder: Text = Field(min_length=1, max_length=128)
    organisation: Text = Field("", max_length=255)
    region_code: Text = Field("", pattern=r"^([0-9]{2,15})?$", description="Issuing region (default: yours).")
    number: Text = Field("", max_length=40, pattern=r"^([A-Za-z0-9_.-]+)?$", description="Default: generated.")
    valid_from: dt.datetime | None = None
    valid_until: dt.datetime


class RevokeIn(Schema):
    reason: Text = Field("", max_length=500)


class PassOut(Schema):
    number: str
    kind: str
    plate: str
    holder: str
    organisation: str
    region_code: str
    valid_from: dt.datetime
    valid_until: dt.datetime
    revoked_at: dt.datetime | None
    state: str


def pass_out(p, state: str) -> dict:
    return {"number": p.number, "kind": p.kind, "plate": p.plate, "holder": p.holder, "organisation": p.organisation,
            "region_code": p.region_code, "valid_from": p.valid_from, "valid_until": p.valid_until,
            "revoked_at": p.revoked_at, "state": state}


class PassPage(Schema):
    count: int
    items: list[PassOut]


# --- venue entry and referrals ----------------------------------------------------------------------------------------


class EntryIn(BaseModel):
    client_id: str | None = None
    token: str | None = None
    id_number: str | None = None
    person: WhoT = None
    temperature: float | str | None = Field(None, description="°C, e.g. 36.6")
    masked: bool | None = None
    at: str | None = None


class EntriesIn(BaseModel):
    entries: list[dict] = Field(min_length=1, max_length=MAX_BATCH)


class EntryResultOut(Schema):
    index: int
    status: str
    client_id: str
    decision: str
    colour: str
    reasons: list[dict]
    entry_id: int | None
    referral_id: int | None
    colour_now: str
    id_masked: str
    name_masked: str
    field: str
    reason: str


class EntriesOut(Schema):
    counts: dict[str, int]
    results: list[EntryResultOut]


class ReferralStatusIn(Schema):
    status: ReferralStatusT
    note: Text = Field("", max_length=1000)


class ReferralOut(Schema):
    id: int
    person_id: int
    name: str
    id_masked: str
    temperature: float
    measured_at: dt.datetime
    venue: str | None
    venue_name: str | None
    checkpoint: str | None
    status: str
    region_code: str
    closed_at: dt.datetime | None
    note: str


def referral_out(r) -> dict:
    return {"id": r.pk, "person_id": r.person_id, "name": r.person.name, "id_masked": r.person.id_masked,
            "temperature": float(r.temperature), "measured_at": r.measured_at,
            "venue": r.venue.code if r.venue_id else None, "venue_name": r.venue.name if r.venue_id else None,
            "checkpoint": r.checkpoint.code if r.checkpoint_id else None, "status": r.status,
            "region_code": r.region_code, "closed_at": r.closed_at, "note": r.note}


class ReferralPage(Schema):
    count: int
    page: int
    page_size: int
    items: list[ReferralOut]
