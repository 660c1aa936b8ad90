from __future__ import annotations

import datetime as dt

from ninja import Field, Schema


class ProfileOut(Schema):
    id: int
    code: str
    version: int
    edition: str
    name_zh: str
    name_en: str
    issued_on: dt.date
    valid_from: dt.date
    origin: str
    note: str
    created_at: dt.datetime
    created_by: str = Field("", description="Username of the creator; empty for the system.")

    @staticmethod
    def resolve_created_by(obj) -> str:
        return obj.created_by.username if obj.created_by_id else ""


class ProfileDetailOut(ProfileOut):
    summary_zh: str
    summary_en: str
    content_hash: str
    rules: dict
    sources: dict = Field(description="Provenance per rule path: status S, SW, M or local, with a reference.")


class ActivationOut(Schema):
    id: int
    region_code: str
    region_name: str
    profile_code: str
    profile_version: int
    activated_at: dt.datetime
    activated_by: str
    reason: str
    recorded_at: dt.datetime

    @staticmethod
    def resolve_region_code(obj) -> str:
        return obj.region.code

    @staticmethod
    def resolve_region_name(obj) -> str:
        return obj.region.name

    @staticmethod
    def resolve_profile_code(obj) -> str:
        return obj.profile.code

    @staticmethod
    def resolve_profile_version(obj) -> int:
        return obj.profile.version

    @staticmethod
    def resolve_activated_by(obj) -> str:
        return obj.activated_by.username if obj.activated_by_id else ""


class ActiveOut(Schema):
    region_code: str = Field(description="The region asked about.")
    at: dt.datetime
    profile: ProfileDetailOut
    activation: ActivationOut


class RuleErrorOut(Schema):
    path: str = Field(description="JSON path of the offending value, e.g. 'quarantine.close_contact.central_days'.")
    reason: str


class ValidateIn(Schema):
    rules: dict = Field(description="A bare rule set, or a whole profile document (with code, name, ..., rules).")


class ValidateOut(Schema):
    valid: bool
    errors: list[RuleErrorOut]


class ProfileCreateIn(Schema):
    code: str = Field(description="Profile code; a known code gets its next version.")
    rules: dict
    note: str = Field("", max_length=1000, description="Why this version is created.")
    edition: str | None = None
    name_zh: str | None = None
    name_en: str | None = None
    summary_zh: str | None = None
    summary_en: str | None = None
    issued_on: dt.date | None = None
    valid_from: dt.date | None = None
    sources: dict | None = Field(None, description="Provenance per path; left out: kept for unchanged values.")


class ActivateIn(Schema):
    profile_code: str
    version: int | None = Field(None, description="Profile version; the latest when left out.")
    region_code: str = Field(description="The region (normally the district) the profile is put in force for.")
    reason: str = Field(min_length=1, max_length=2000)
