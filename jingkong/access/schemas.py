from __future__ import annotations

import datetime as dt

from ninja import Field, Schema


class RegionRef(Schema):
    code: str = Field(description="Division code of the region.")
    name: str = Field(description="Name of the region.")
    level: str = Field(description="district, street, community or grid.")


class MeOut(Schema):
    id: int
    username: str
    display_name: str
    role: str = Field(description="Role identifier, e.g. street_officer.")
    role_label: str = Field(description="Role name in the user's language.")
    region: RegionRef | None = Field(description="The root of the user's region scope (null: platform-wide).")
    scope: str | None = Field(description="Region-code prefix of the scope: '' everything, null nothing.")
    permissions: list[str] = Field(description="Permissions the role holds, sorted.")
    auth: str = Field(description="How this request was authenticated: session or token.")


class UserOut(Schema):
    id: int
    username: str
    display_name: str
    role: str
    region_code: str | None
    is_active: bool


class TokenOut(Schema):
    id: int
    name: str
    prefix: str = Field(description="The token's first characters, to recognise it.")
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None


class TokenCreatedOut(TokenOut):
    token: str = Field(description="The bearer token. Shown only in this answer: store it now.")


class TokenCreateIn(Schema):
    name: str = Field(min_length=1, max_length=64, description="What uses the token (device, integration).")
    expires_in_days: int | None = Field(None, ge=1, le=3650, description="Lifetime in days; empty: no expiry.")


class AuditFilters(Schema):
    user: str = Field("", description="Username (exact).")
    action: str = Field("", description="Action, exact or a prefix ending in '.' or '*' (e.g. 'person.').")
    object: str = Field("", description="Object type, or type:id (e.g. people.person:42).")
    from_: str = Field("", alias="from", description="From this date (YYYY-MM-DD, local) or ISO date-time, inclusive.")
    to: str = Field("", description="Until this date (inclusive day) or ISO date-time (exclusive).")


class AuditOut(Schema):
    id: int
    at: dt.datetime
    username: str
    role: str
    action: str
    object_type: str
    object_id: str
    region_code: str
    ip: str | None
    user_agent: str
    detail: dict


class AuditPageOut(Schema):
    count: int = Field(description="Records matching the filters.")
    items: list[AuditOut]
