"""Schemas of the five-stage clock API (/api/v1/isolation/clock/…)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from ninja import Schema
from pydantic import Field

RegionCode = Annotated[str, Field(pattern=r"^[0-9]{0,15}$")]
StageT = Literal["", "testing", "investigation", "tracing", "grouping", "transfer", "isolation"]


class StageOut(Schema):
    stage: str
    target_hours: float | None
    n: int  # stages begun
    done: int
    open: int
    overdue: int  # open and older than the target
    late: int  # ended after the target
    median: float | None  # hours, of the ended stages
    p90: float | None
    ratio: float | None  # p90 of durations and open ages ÷ target (the slowest-stage measure)


class SlowestOut(Schema):
    stage: str
    ratio: float


class RegionRowOut(Schema):
    region_code: str
    name: str
    stages: list[StageOut]


class DayRowOut(Schema):
    day: dt.date
    stages: list[StageOut]


class SummaryOut(Schema):
    region_code: str
    day: dt.date
    as_of: dt.datetime
    targets: dict[str, float]
    stages: list[StageOut]
    slowest: SlowestOut | None
    by_region: list[RegionRowOut]
    by_day: list[DayRowOut]
    overdue_count: int


class OverdueItemOut(Schema):
    kind: str  # case / contact
    subject_id: int
    person_id: int
    stage: str
    region_code: str
    tier: str
    started_at: dt.datetime
    age_hours: float
    target_hours: float
    over_hours: float
    owner_kind: str  # tracer / queue / dispatcher / facility / testing
    owner: str


class OverdueOut(Schema):
    count: int
    items: list[OverdueItemOut]
