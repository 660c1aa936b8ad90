"""Shapes of the screen's API (the contract in docs/dashboard.md: the page codes against these names)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from ninja import Schema
from pydantic import Field

# A division code inside the caller's scope; "" = the caller's own region (the top of the scope).
RegionCode = Annotated[str, Field(pattern=r"^[0-9]{0,32}$", max_length=32)]
Days = Annotated[int, Field(ge=7, le=365)]
Limit = Annotated[int, Field(ge=1, le=200)]


class ScreenRegionRef(Schema):
    code: str
    name: str
    level: str


class ScreenRegionOut(ScreenRegionRef):
    path: list[ScreenRegionRef]


class FamilyOut(Schema):
    refreshed_at: dt.datetime | None
    duration_ms: int
    version: int
    error: str


class CasesToday(Schema):
    total: int
    confirmed: int
    asymptomatic: int
    in_quarantine: int
    in_control: int
    in_community: int
    community_share: float | None
    previous_day_total: int


class ZoneTile(Schema):
    count: int
    population: int


class ZonesTile(Schema):
    lockdown: ZoneTile
    control: ZoneTile
    prevention: ZoneTile


class RoundTile(Schema):
    campaign_id: int
    name: str
    target: int
    sampled: int
    reported: int
    pending: int
    coverage: float | None
    untested: int


class RetestTile(Schema):
    pools_waiting: int
    persons_waiting: int


class ContactsTile(Schema):
    identified: int
    located: int
    transferred: int
    isolated: int
    identified_today: int
    close: int
    secondary: int


class TransferTile(Schema):
    waiting: int
    en_route: int
    oldest_wait_minutes: int | None


class FacilitiesTile(Schema):
    rooms: int
    occupied: int
    free: int
    occupancy: float | None
    reserve_days: float | None


class IsolationTile(Schema):
    active: int


class OpenOverdue(Schema):
    open: int
    overdue: int


class DirectivesTile(Schema):
    tasks: int
    done: int
    overdue: int
    completion: float | None


class CheckpointsTile(Schema):
    crossings_today: int
    denied_today: int
    referred_today: int


class Tiles(Schema):
    cases_today: CasesToday
    days_since_community_case: int | None
    cases_total: int
    zones: ZonesTile
    round: RoundTile | None
    retest: RetestTile
    contacts: ContactsTile
    transfer: TransferTile
    facilities: FacilitiesTile
    isolation: IsolationTile
    services: OpenOverdue
    problems: OpenOverdue
    directives: DirectivesTile
    checkpoints: CheckpointsTile


class ScreenSummaryOut(Schema):
    region: ScreenRegionOut
    day: dt.date
    as_of: dt.datetime | None
    stale: bool
    tiles: Tiles
    families: dict[str, FamilyOut]


class RowFigures(Schema):
    population: int
    cases_today: int
    cases_total: int
    cases_7d: int
    incidence_7d_per_100k: float | None
    community_today: int
    coverage: float | None
    untested: int
    contacts_identified: int
    zones_lockdown: int
    services_open: int
    problems_open: int
    tasks_done_share: float | None


class RegionRow(RowFigures):
    code: str
    name: str
    level: str


class RegionsOut(Schema):
    region: ScreenRegionOut
    child_level: str | None
    day: dt.date
    as_of: dt.datetime | None
    stale: bool
    rows: list[RegionRow]
    remainder: RowFigures | None


class SeriesPair(Schema):
    local: list[int]
    imported: list[int]


class RtOut(Schema):
    t_start: dt.date
    t_end: dt.date
    mean_r: float | None
    std_r: float | None
    q025: float | None
    q50: float | None
    q975: float | None
    incomplete: bool = Field(description="the window ends in the last incomplete days (reporting delay)")


class SerialInterval(Schema):
    mean: float
    sd: float
    source: str = Field(description="'profile' or 'default' (documented in jingkong/dashboard/selectors.py)")


class EpiOut(Schema):
    region: ScreenRegionOut
    dates: list[dt.date]
    onset: SeriesPair
    report: SeriesPair
    rt: list[RtOut]
    rt_min_cases: int
    doubling_time_days: float | None
    halving_time_days: float | None
    incomplete_days: int
    si: SerialInterval
    as_of: dt.datetime | None
    stale: bool


class ScreenStageOut(Schema):
    stage: str
    label: str
    n: int
    p50_h: float | None
    p90_h: float | None
    target_h: float | None
    on_target: float | None
    backlog: int
    overdue: int


class ClockOut(Schema):
    region: ScreenRegionOut
    stages: list[ScreenStageOut]
    slowest: str | None
    as_of: dt.datetime | None
    stale: bool


class AlertItem(Schema):
    id: str
    kind: str
    severity: int = Field(ge=1, le=4, description="1 = I (highest) … 4 = IV")
    title: str
    detail: str
    region_code: str
    region_name: str
    at: dt.datetime
    link: str


class AlertsOut(Schema):
    region: ScreenRegionOut
    items: list[AlertItem]
