"""Schemas of the coverage API (应检尽检): figures by region, totals, and the untested list for the sweep (扫楼)."""

from __future__ import annotations

import datetime as dt

from ninja import Schema
from pydantic import Field


class CampaignRef(Schema):
    id: int
    code: str
    name: str
    region_code: str
    key_industry: str
    status: str
    starts_at: dt.datetime
    deadline: dt.datetime


class AreaRef(Schema):
    code: str = Field(description="Division code of the region the figures cover.")
    name: str
    level: str


class CoverageCounts(Schema):
    target: int = Field(description="Persons who should be tested: residents (or the key group) of the region.")
    sampled: int = Field(description="Target persons swabbed at least once in the campaign (each counted once).")
    not_sampled: int = Field(description="Target persons not swabbed yet.")
    pending: int = Field(description="Sampled, no result yet.")
    negative: int = Field(description="Negative (including positive pools cleared by a negative retest).")
    pool_positive: int = Field(description="In a positive pooled tube, retest not resolved yet (controlled in place).")
    resample: int = Field(description="In an invalid tube and not swabbed again yet.")
    positive: int = Field(description="Individually positive (single tube or retest).")
    coverage_pct: float | None = Field(description="sampled / target × 100, one decimal; null when the target is 0.")


class CoverageRow(CoverageCounts):
    code: str
    name: str
    level: str
    unassigned: bool = Field(default=False, description="Persons attached to this region but to none of its "
                                                        "sub-regions of the requested level.")


class CoverageOut(Schema):
    campaign: CampaignRef
    area: AreaRef = Field(description="The region broken down (the campaign region narrowed to your scope and "
                                      "`parent`).")
    level: str
    as_of: dt.datetime
    totals: CoverageCounts
    rows: list[CoverageRow]


class CoverageSummaryOut(Schema):
    campaign: CampaignRef
    area: AreaRef
    as_of: dt.datetime
    totals: CoverageCounts
    unplaced_sampled: int | None = Field(
        default=None, description="Whole campaign only: persons swabbed whose residence is not recorded (provisional "
                                  "records to place); in no target until placed.")


class UntestedPerson(Schema):
    id: int
    id_masked: str
    name: str
    sex: str
    birth_year: int | None
    phone: str = Field(description="In full only for roles that may phone residents; masked otherwise.")
    vulnerable: list[str]
    door_visit: bool = Field(description="Limited mobility or bedridden: the door-to-door team samples at home.")
    state: str = Field(description="`not_sampled`, or `resample` (in an invalid tube, to be swabbed again).")
    provisional: bool = Field(description="Registered at a scan during the round; check the record.")
    grid: str
    employer: str = Field(description="Where a key-group member works (to find them there).")


class UntestedHousehold(Schema):
    household: str | None
    unit: str
    room: str
    persons: list[UntestedPerson]


class UntestedBuilding(Schema):
    building: str | None = Field(description="Building code; null for persons without a recorded building.")
    address: str
    grid: str
    not_sampled: int
    resample: int
    door_visits: int
    households: list[UntestedHousehold]


class UntestedOut(Schema):
    campaign: CampaignRef
    area: AreaRef
    as_of: dt.datetime
    totals: CoverageCounts = Field(description="The area's coverage figures.")
    persons: int = Field(description="Persons listed here.")
    truncated: bool = Field(description="More persons than `limit`: narrow the region.")
    buildings: list[UntestedBuilding]
