"""In/Out schemas of the token routes: the published keys, key rotation, and the lookup API for devices."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from ninja import Schema
from pydantic import Field

# A token is ASCII of at most 2,048 characters (tokens.MAX_TOKEN_CHARS); anything else cannot verify, but is answered
# as "malformed" rather than a 422 so that a device gets one verdict shape for every string it scanned.
TOKEN_MAX = 4096


class PublicKeyOut(Schema):
    kid: str
    alg: str
    public_key: str = Field(description="Ed25519 public key, base64url of the 32 raw bytes (no padding).")
    not_before: dt.datetime
    verify_until: dt.datetime | None = Field(description="null while the key signs; then the end of its verification.")


class KeySetOut(Schema):
    keys: list[PublicKeyOut]
    format: str = Field(description="Token format: JKC1.<kid>.<payload b64url>.<Ed25519 signature b64url>.")
    cache_seconds: int = Field(description="How long a device may keep this document before fetching it again.")


class RotateOut(Schema):
    kid: str
    created_at: dt.datetime
    retired: list[PublicKeyOut]


class TokenLookupIn(Schema):
    token: str = Field(max_length=TOKEN_MAX, description="The scanned QR code text.")


class IdLookupIn(Schema):
    id_number: str = Field(max_length=64, description="Resident ID number (18 characters, or a legacy 15-digit one).")


class CodeReasonOut(Schema):
    rule: str
    colour: str
    reason: str
    until: dt.date | None = None


class LookupOut(Schema):
    source: Literal["token", "id_number"]
    valid: bool = Field(description="Token lookups: the token verified. ID lookups: true when the person has a code.")
    reason_code: str | None = Field(
        description="Why a token is not valid: malformed, bad_signature, unknown_key, expired, not_yet_valid.")
    person_id: int | None = None
    colour: str | None = Field(description="The current colour (the health-code table), null if none is computed.")
    token_colour: str | None = Field(description="The colour the token carries (as shown on the person's phone).")
    green_on: dt.date | None = Field(description="The date the current code may turn green.")
    reasons: list[CodeReasonOut] = Field(description="The current reasons (every matching rule).")
    token_reasons: list[str] = Field(description="The rule ids the token carries.")
    name_masked: str = ""
    id_masked: str = ""
    issued_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    kid: str | None = None
