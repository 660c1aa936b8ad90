"""Request and response bodies of the campaign/site/planning API (/api/v1/testing/)."""

from __future__ import annotations

import datetime as dt

from ninja import Field, Schema


class CampaignIn(Schema):
    name: str = Field(min_length=1, max_length=128)
    region_code: str = Field(min_length=6, max_length=32, description="The region (subtree) the round covers.")
    starts_at: dt.datetime = Field(description="Naive times are local (Asia/Shanghai by default).")
    deadline: dt.datetime
    mode: str = Field("street", description="Default mode: building (扫楼), village (扫村), street (扫街), fixed.")
    pool_size: int | None = Field(None, description="Default swabs per tube; must be allowed by the policy in force "
                                                    "(left out: the largest allowed).")
    key_industry: str = Field("", description="A key-group round: only this industry's workers (port, cold_chain, …).")
    code: str = Field("", max_length=40, description="Left out: R<yyyymmdd>-<region code>.")
    note: str = Field("", max_length=5000)


class CampaignPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=128)
    starts_at: dt.datetime | None = None
    deadline: dt.datetime | None = None
    mode: str | None = None
    pool_size: int | None = None
    key_industry: str | None = None
    note: str | None = Field(None, max_length=5000)


class CloseIn(Schema):
    reason: str = Field("", max_length=500)


class CampaignOut(Schema):
    id: int
    code: str
    name: str
    region_code: str
    region_name: str
    key_industry: str
    mode: str
    pool_size: int
    starts_at: dt.datetime
    deadline: dt.datetime
    status: str
    policy_profile: str
    note: str
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime

    @staticmethod
    def resolve_region_name(obj) -> str:
        return obj.region.name

    @staticmethod
    def resolve_created_by(obj) -> str:
        return obj.created_by.username if obj.created_by_id else ""


class AreaIn(Schema):
    region_code: str = Field(min_length=6, max_length=32)
    mode: str | None = Field(None, description="Left out: the round's default mode.")
    pool_size: int | None = Field(None, description="Left out: the zone type's default, else the round's.")
    zone_type: str | None = Field(None, description="Zone type the area lies in (lockdown, control, …, per the "
                                                    "policy in force): gives the default pool size.")
    one_tube_per_household: bool = Field(False, description="Only where the policy allows it for the zone type.")
    reason: str = Field("", max_length=255)


class AreaOut(Schema):
    id: int
    region_code: str
    region_name: str
    mode: str
    pool_size: int
    one_tube_per_household: bool
    reason: str

    @staticmethod
    def resolve_region_name(obj) -> str:
        return obj.region.name


class SamplerOut(Schema):
    id: int
    username: str
    display_name: str = ""


class SiteIn(Schema):
    name: str = Field(min_length=1, max_length=128)
    region_code: str = Field(min_length=6, max_length=32, description="The region (usually the grid) it stands in.")
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    kind: str = Field("temporary", description="fixed, temporary or door_team.")
    desks: int = Field(1, ge=1, le=500)
    staff: int = Field(2, ge=0, le=5000)
    capacity_per_hour: int = Field(120, ge=1, le=100_000)
    opens_at: dt.time = Field(dt.time(7), description="Local time. Equal to closes_at: open around the clock.")
    closes_at: dt.time = Field(dt.time(21), description="Local time; earlier than opens_at: closes after midnight.")
    campaign_id: int | None = Field(None, description="A temporary site or team of one round; left out: serves all.")
    code: str = Field("", max_length=40)


class SitePatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=128)
    region_code: str | None = None
    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)
    kind: str | None = None
    desks: int | None = Field(None, ge=1, le=500)
    staff: int | None = Field(None, ge=0, le=5000)
    capacity_per_hour: int | None = Field(None, ge=1, le=100_000)
    opens_at: dt.time | None = None
    closes_at: dt.time | None = None
    active: bool | None = None


class SiteOut(Schema):
    id: int
    code: str
    name: str
    kind: str
    region_code: str
    region_name: str
    lon: float
    lat: float
    desks: int
    staff: int
    capacity_per_hour: int
    opens_at: dt.time
    closes_at: dt.time
    campaign_id: int | None
    campaign_code: str
    active: bool
    samplers: list[SamplerOut]

    @staticmethod
    def resolve_region_name(obj) -> str:
        return obj.region.name

    @staticmethod
    def resolve_campaign_code(obj) -> str:
        return obj.campaign.code if obj.campaign_id else ""

    @staticmethod
    def resolve_samplers(obj) -> list[dict]:
        return [{"id": u.pk, "username": u.username, "display_name": getattr(u, "display_name", "") or ""}
                for u in obj.samplers.all().order_by("username")]


class DeactivateIn(Schema):
    reason: str = Field("", max_length=500)


class RedoOut(Schema):
    campaign: str
    buildings: int


class DeactivateOut(Schema):
    site: SiteOut
    assignments_to_redo: list[RedoOut]


class SamplersIn(Schema):
    user_ids: list[int] = Field(max_length=500, description="The complete list of the site's samplers (replaces it).")


class AssignIn(Schema):
    slot_minutes: int = Field(30, ge=5, le=240, description="Length of a recommended time slot (错峰).")
    utilisation: float = Field(0.85, ge=0.05, le=1.0, description="Share of a site's capacity booked per slot: "
                                                                  "below 1 keeps the queue short.")
    neighbours: int = Field(8, ge=1, le=50, description="Nearest sites considered for each building.")


class AssignmentOut(Schema):
    building_id: int
    building_code: str
    address: str
    site_id: int
    site_code: str
    site_name: str
    region_code: str
    residents: int
    distance_m: int
    slot_start: dt.datetime
    slot_end: dt.datetime


class AssignmentPage(Schema):
    count: int
    page: int
    page_size: int
    items: list[AssignmentOut]


class PlanIn(Schema):
    tubes_available: int | None = Field(None, ge=0, description="Tubes in stock for the round; left out: not a limit.")
    transport_hours: float = Field(1.5, ge=0, le=72, description="From a tube's last swab to the lab.")
    assay_hours: float = Field(0.0, ge=0, le=72, description="From the lab taking a tube to its result, beyond the "
                                                             "labs' throughput.")
    desk_rate: float = Field(120.0, gt=0, le=2000, description="People one staffed desk swabs per hour.")
    staff_per_desk: float = Field(2.0, gt=0, le=20, description="Sampling staff one desk needs.")
    prevalence: float = Field(0.0, ge=0, lt=1, description="Expected share of positives (for retest numbers).")


class PoolPlanQuery(Schema):
    prevalence: float
    max_size: int = 20
    sensitivity: float = 1.0
    specificity: float = 1.0
