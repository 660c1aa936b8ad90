"""Request and response bodies of the lab-side API (/api/v1/testing/): labs, transport batches, results, retest
tasks, turnaround and overdue tubes."""

from __future__ import annotations

import datetime as dt

from ninja import Field, Schema


class LabIn(Schema):
    code: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=128)
    region_code: str = Field(min_length=6, max_length=32, description="Where the lab stands (inside your area).")
    capacity_per_hour: int = Field(500, ge=1, le=100_000, description="Tubes per hour.")
    target_hours: int = Field(12, ge=1, le=168, description="Turnaround target, first swab to result.")
    active: bool = True
    technicians: list[str] = Field(default_factory=list, description="Usernames of lab technicians (role "
                                                                     "lab_technician) who may work for this lab.")


class LabPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=128)
    capacity_per_hour: int | None = Field(None, ge=1, le=100_000)
    target_hours: int | None = Field(None, ge=1, le=168)
    active: bool | None = None
    technicians: list[str] | None = Field(None, description="The full list (replaces the current one).")


class LabOut(Schema):
    id: int
    code: str
    name: str
    region_code: str
    region_name: str
    capacity_per_hour: int
    target_hours: int
    active: bool
    technicians: list[str]

    @staticmethod
    def resolve_region_name(obj) -> str:
        return obj.region.name

    @staticmethod
    def resolve_technicians(obj) -> list[str]:
        return sorted(u.username for u in obj.technicians.all())


class ResultIn(Schema):
    tube: str = Field(min_length=1, max_length=40, description="Tube barcode.")
    outcome: str = Field(description="negative / positive / invalid (阴性 / 阳性 / 无效 accepted).")
    ct_values: dict[str, float | str | None] = Field(default_factory=dict,
                                                     description='Ct per target gene, e.g. {"ORF1ab": 31.2, "N": 29.8}')
    instrument: str = Field("", max_length=64)
    operator: str = Field("", max_length=64)
    tested_at: dt.datetime | None = Field(None, description="Naive times are local (Asia/Shanghai); empty: now.")


class ResultsIn(Schema):
    results: list[ResultIn] = Field(min_length=1, max_length=5000)
    source_ref: str = Field("", max_length=100, description="Your reference (run, plate), kept with each result.")


class RowErrorOut(Schema):
    row: int = Field(description="Index in the list (JSON), line (CSV) or entry index (FHIR).")
    field: str
    reason: str
    tube: str


class ResultReportOut(Schema):
    rows: int
    accepted: int
    unchanged: int = Field(description="Identical re-sends of results already accepted (nothing written).")
    rejected: int
    errors: list[RowErrorOut]
    tubes_negative: int
    tubes_pool_positive: int
    tubes_positive: int
    tubes_invalid: int
    persons_updated: int
    persons_controlled: int
    persons_positive: int
    persons_resample: int
    controls_lifted: int
    tasks_created: int
    tasks_resolved: int
    tasks_reopened: int


class TubeResultOut(Schema):
    tube: str
    outcome: str
    ct_values: dict
    instrument: str
    operator: str
    tested_at: dt.datetime
    recorded_at: dt.datetime
    source: str
    source_ref: str

    @staticmethod
    def resolve_tube(obj) -> str:
        return obj.tube.barcode


class ResultPage(Schema):
    count: int
    page: int
    page_size: int
    items: list[TubeResultOut]


class BarcodesIn(Schema):
    barcodes: list[str] = Field(min_length=1, max_length=5000)
    at: dt.datetime | None = Field(None, description="When it happened (default: now).")


class ReceiveIn(Schema):
    barcodes: list[str] | None = Field(None, max_length=5000, description="Tubes scanned on arrival; left out: every "
                                                                          "tube of the batch arrived.")
    at: dt.datetime | None = None


class PackIn(Schema):
    lab_id: int
    site_id: int | None = Field(None, description="The sampling site the tubes come from (required for samplers).")
    code: str = Field("", max_length=40, description="Batch code (box label); the same code again adds tubes while "
                                                     "the batch is at the site. Left out: generated.")
    barcodes: list[str] = Field(min_length=1, max_length=5000)
    at: dt.datetime | None = None


class HandOverIn(Schema):
    courier: str = Field(min_length=1, max_length=64)
    at: dt.datetime | None = None


class BatchTubeOut(Schema):
    barcode: str
    status: str
    member_count: int
    received_at: dt.datetime | None
    outcome: str


class BatchOut(Schema):
    id: int
    code: str
    lab: str
    site: str | None
    campaign: str | None
    region_code: str
    status: str
    tube_count: int
    courier: str
    packed_at: dt.datetime
    packed_by: str
    handed_over_at: dt.datetime | None
    received_at: dt.datetime | None
    received_by: str

    @staticmethod
    def resolve_lab(obj) -> str:
        return obj.lab.code

    @staticmethod
    def resolve_site(obj) -> str | None:
        return obj.site.code if obj.site_id else None

    @staticmethod
    def resolve_campaign(obj) -> str | None:
        return obj.campaign.code if obj.campaign_id else None

    @staticmethod
    def resolve_packed_by(obj) -> str:
        return obj.packed_by.username if obj.packed_by_id else ""

    @staticmethod
    def resolve_received_by(obj) -> str:
        return obj.received_by.username if obj.received_by_id else ""


class BatchDetailOut(BatchOut):
    tubes: list[BatchTubeOut]

    @staticmethod
    def resolve_tubes(obj) -> list:
        return list(obj.tubes.order_by("barcode"))


class PackOut(Schema):
    batch: BatchOut
    added: list[str]
    unchanged: list[str]


class CustodyErrorOut(Schema):
    row: int
    field: str
    tube: str
    reason: str


class CustodyOut(Schema):
    received: list[str]
    unchanged: list[str]
    missing: list[str] = Field(description="Tubes of the batch not scanned on arrival (still in transit).")
    errors: list[CustodyErrorOut]


class RetestTaskOut(Schema):
    id: int
    status: str
    reason: str
    region_code: str
    campaign: str | None
    source_tube: str
    created_at: dt.datetime
    resolved_at: dt.datetime | None
    person_id: int
    name: str
    id_masked: str
    phone: str
    building: str | None
    address: str
    household: str | None
    unit: str
    room: str
    test_status: str | None
    controlled_in_place: bool
    controlled_since: dt.datetime | None


class RetestTaskPage(Schema):
    count: int
    page: int
    page_size: int
    items: list[RetestTaskOut]
