"""Request and response shapes of the sampling API (/api/v1/testing/scans, /tubes, /sites/…/open-tubes)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from ninja import Field, Schema
from pydantic import BaseModel

from jingkong.testing.sampling import MAX_BATCH


class ScanIn(BaseModel):
    """One scan: a person (ID number or person code) swabbed into a tube at a site.

    (Plain pydantic models for the scan bodies: Ninja's Schema adds a Django attribute resolver to every
    validation, measurable on the hot path.)
    """

    client_scan_id: str | None = Field(
        None, max_length=64,
        description="Made by the device (e.g. a UUID) and kept with its offline queue: sending the same scan again "
                    "returns the original result. Absent: derived from tube and person.")
    tube: str = Field(min_length=1, max_length=40, description="Tube barcode.")
    id_number: str | None = Field(None, max_length=32, description="Resident ID number (18 characters, or 15 legacy).")
    person_token: str | None = Field(None, max_length=64, description="A person code (JK1.…) read from a QR code.")
    name: str | None = Field(None, max_length=64, description="Name, used only when the person is not registered yet.")
    pool_size: int | None = Field(None, ge=1, le=20, description="Capacity of a tube opened by this scan.")
    tube_kind: Literal["routine", "retest", "resample"] = "routine"
    sampled_at: dt.datetime | None = Field(None, description="ISO 8601; without offset: local time. Default: now.")
    site: str = Field(min_length=1, max_length=40, description="Sampling site code.")
    campaign: str | None = Field(None, max_length=40, description="Campaign code (default: chosen by the site).")
    device: str | None = Field(None, max_length=64)


class BatchScanIn(BaseModel):
    """One scan of a batch. Every field is checked per item: a bad item is rejected alone, the rest are kept.

    (A plain pydantic model: Ninja's Schema wraps every item in a Django attribute resolver, a fifth of a batch's cost.)
    """

    client_scan_id: str | int | None = None
    tube: str | int | None = None
    id_number: str | int | None = None
    person_token: str | None = None
    name: str | None = None
    pool_size: int | str | None = None
    tube_kind: str | None = None
    sampled_at: str | int | float | None = None
    site: str | None = Field(None, description="Default: the batch's site.")
    campaign: str | None = None
    device: str | None = None


class BatchIn(Schema):
    site: str | None = Field(None, max_length=40, description="Site of every scan that names none.")
    device: str | None = Field(None, max_length=64)
    campaign: str | None = Field(None, max_length=40, description="Campaign of every scan that names none.")
    scans: list[BatchScanIn] = Field(min_length=1, max_length=MAX_BATCH)


class TubeStateOut(Schema):
    barcode: str
    kind: str
    capacity: int
    member_count: int
    status: str


class ScanResultOut(Schema):
    index: int = Field(description="Position of the scan in the request (0 for a single scan).")
    status: Literal["recorded", "duplicate", "rejected"]
    tube: str
    client_scan_id: str
    field: str = Field(description="The field a rejection is about ('' otherwise).")
    reason: str
    provisional: bool = Field(description="The person was unknown and has been registered provisionally.")
    replayed: bool = Field(description="A retry of a scan already recorded: the original result, nothing new.")
    sample_id: int | None
    position: int | None = Field(description="Position of the swab in its tube.")
    retest_task: int | None = Field(description="The retest task this sample fulfils.")


class ScanOut(ScanResultOut):
    tube_state: TubeStateOut | None


class BatchCountsOut(Schema):
    recorded: int
    duplicate: int
    rejected: int
    provisional: int
    replayed: int


class BatchOut(Schema):
    counts: BatchCountsOut
    results: list[ScanResultOut]
    tubes: list[TubeStateOut] = Field(description="The state of every tube the batch named, after the batch.")


class TubeMemberOut(Schema):
    position: int
    person_id: int
    id_masked: str
    name: str
    region_code: str
    sampled_at: dt.datetime
    provisional: bool


class TubeOut(Schema):
    barcode: str
    kind: str
    capacity: int
    member_count: int
    status: str
    region_code: str
    site: str | None
    campaign: str | None
    opened_at: dt.datetime
    sealed_at: dt.datetime | None
    batch: str | None
    lab: str | None
    received_at: dt.datetime | None
    outcome: str | None
    resulted_at: dt.datetime | None
    members: list[TubeMemberOut] | None = Field(description="Only for roles that may see persons (audited).")


class OpenTubeOut(TubeStateOut):
    opened_at: dt.datetime


class SiteOpenTubesOut(Schema):
    site: str
    tubes: list[OpenTubeOut]
