"""In/Out schemas of the health-code routes (/api/v1/codes/people…, /counts, /overrides…, /recompute)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from ninja import Schema
from pydantic import AfterValidator, Field

ColourT = Literal["green", "yellow", "orange", "red"]
ColourFilterT = Literal["", "green", "yellow", "orange", "red"]
RegionCode = Annotated[str, Field(pattern=r"^[0-9]{0,15}$")]


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]


class ReasonOut(Schema):
    rule: str
    colour: str
    reason: str
    until: dt.date | None = None


class CodeOut(Schema):
    person_id: int
    id_masked: str
    name: str | None
    colour: str
    rule_id: str
    reasons: list[ReasonOut]
    green_on: dt.date | None
    overridden: bool
    region_code: str
    computed_at: dt.datetime | None
    changed_at: dt.datetime | None


class CodeRowOut(Schema):
    person_id: int
    id_masked: str
    name: str | None
    colour: str
    rule_id: str
    reasons: list[ReasonOut]
    green_on: dt.date | None
    overridden: bool
    region_code: str


class CodePage(Schema):
    count: int
    page: int
    page_size: int
    items: list[CodeRowOut]


class ColourCounts(Schema):
    green: int = 0
    yellow: int = 0
    orange: int = 0
    red: int = 0
    total: int = 0


class RegionCounts(Schema):
    code: str
    name: str
    level: str
    counts: ColourCounts


class CountsOut(Schema):
    region: dict
    counts: ColourCounts
    children: list[RegionCounts]
    elsewhere: ColourCounts


class OverrideIn(Schema):
    colour: ColourT
    reason: Text = Field(min_length=1, max_length=1000)
    expires_at: dt.datetime | None = None


class RevokeIn(Schema):
    reason: Text = Field(default="", max_length=1000)


class OverrideOut(Schema):
    id: int
    person_id: int
    colour: str
    reason: str
    starts_at: dt.datetime
    expires_at: dt.datetime | None
    created_by: str | None
    revoked_at: dt.datetime | None
    revoked_by: str | None
    active: bool


def reasons_out(reasons: list[dict]) -> list[dict]:
    return [{"rule": r.get("rule", ""), "colour": r.get("colour", ""), "reason": r.get("reason", ""),
             "until": r.get("until")} for r in reasons or []]


def override_out(row, *, now: dt.datetime) -> dict:
    return {
        "id": row.pk, "person_id": row.person_id, "colour": row.colour, "reason": row.reason,
        "starts_at": row.starts_at, "expires_at": row.expires_at,
        "created_by": row.created_by.username if row.created_by_id else None,
        "revoked_at": row.revoked_at, "revoked_by": row.revoked_by.username if row.revoked_by_id else None,
        "active": row.revoked_at is None and row.starts_at <= now and (row.expires_at is None or row.expires_at > now),
    }
