from __future__ import annotations

import datetime as dt

from ninja import Field, Schema


class JobOut(Schema):
    id: int
    kind: str
    status: str
    progress: int
    total: int | None
    message: str
    result: dict
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


class EventOut(Schema):
    id: int
    type: str
    subject_type: str
    subject_id: str
    region_code: str
    occurred_at: dt.datetime
    payload: dict


class DistrictJobIn(Schema):
    population: int = Field(100_000, ge=1_000, le=10_000_000, description="Synthetic residents.")
    seed: int = Field(20220101, ge=0, description="Generator seed (same seed, same district).")
    days: int = Field(14, ge=0, le=60, description="Days of venue check-ins.")


class DistrictJobsOut(Schema):
    directory: str
    generate: JobOut
    load: JobOut
