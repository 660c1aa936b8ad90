"""The signed health-code token (the QR code of the 亮码 page), verifiable offline with the published public keys.

Format (ASCII, QR byte mode, ~250 characters)::

    JKC1.<kid>.<payload base64url>.<signature base64url>

* ``JKC1`` — format and version; ``kid`` — the signing key (see :mod:`jingkong.codes.keys`);
* payload — compact UTF-8 JSON: ``p`` person id, ``c`` colour (``g``/``y``/``o``/``r``), ``g`` the date the code may
  turn green (``YYYY-MM-DD`` or null), ``r`` the ids of the rules that apply (the profile's rule ids), ``n`` the masked
  name and ``i`` the masked ID number (the officer compares them with the ID card), ``t`` issued-at and ``e`` expires-at
  (Unix seconds, UTC);
* signature — Ed25519 over the ASCII bytes of ``JKC1.<kid>.<payload>`` (header and payload: any changed byte fails).

The validity (``e - t``) is ``health_codes.token_minutes`` of the profile in force for the person's region; a profile
without it raises :class:`~jingkong.policy.schema.RulesIncomplete` (there is no default in code).

:func:`verify` needs no database when given ``public_keys`` (the document of ``GET /api/v1/codes/keys``, a list of its
entries or a ``{kid: key}`` mapping): that is what a checkpoint or venue device does offline. Without it, the server's
in-process cached key set is used. Failures raise :class:`InvalidToken` with a machine ``reason``:

``malformed`` (not a token of this format, unreadable, too long), ``unknown_key`` (no published key with that id, or the
key was not valid then), ``bad_signature`` (forged or altered), ``expired``, ``not_yet_valid`` (issued in the future
beyond the clock-skew allowance).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature

from jingkong.codes import keys as keyring
from jingkong.core import clock

PREFIX = "JKC1"
MAX_TOKEN_CHARS = 2048
MAX_VALIDITY = dt.timedelta(minutes=1440)  # the schema's bound of token_minutes; longer is malformed
_KID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_COLOUR_TO = {"green": "g", "yellow": "y", "orange": "o", "red": "r"}
_COLOUR_FROM = {v: k for k, v in _COLOUR_TO.items()}
_PAYLOAD_KEYS = frozenset("pcgrnite")
_RULE_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

REASONS = ("malformed", "bad_signature", "unknown_key", "expired", "not_yet_valid")


class InvalidToken(ValueError):
    """The token is not valid; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str = "", token: VerifiedToken | None = None):
        assert reason in REASONS, reason
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        # For "expired" and "not_yet_valid": what the (genuinely signed) token says, e.g. to show whose it is.
        self.token = token


@dataclass(frozen=True)
class VerifiedToken:
    person_id: int
    colour: str
    issued_at: dt.datetime
    expires_at: dt.datetime
    kid: str
    green_on: dt.date | None
    reasons: tuple[str, ...]  # rule ids
    name_masked: str
    id_masked: str


def mask_name(name: str) -> str:
    """A name as shown on the code: the first character, and for names of three or more the last (张*, 张*明, 欧**明)."""
    name = "".join((name or "").split())
    if len(name) <= 1:
        return "*" if name else ""
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def _unix(t: dt.datetime) -> int:
    return int((t - _EPOCH).total_seconds())


def _from_unix(s: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(seconds=s)


def encode(payload: dict, *, kid: str, private_key) -> str:
    """Sign a payload (the dict of the format above) with a private key: the low-level half of :func:`issue`."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    signed = f"{PREFIX}.{kid}.{keyring.b64e(body)}"
    return f"{signed}.{keyring.b64e(private_key.sign(signed.encode('ascii')))}"


def token_minutes(region_code: str, *, at: dt.datetime) -> int:
    """``health_codes.token_minutes`` of the profile in force for the region (RulesIncomplete if it has none)."""
    from jingkong.policy.schema import RulesIncomplete
    from jingkong.policy.selectors import active_profile

    minutes = active_profile(region_code=region_code or None, at=at).rules.health_codes.token_minutes
    if minutes is None:
        raise RulesIncomplete(
            "the active policy profile has no 'health_codes.token_minutes' (how long a signed code token is valid); "
            "install and activate a newer version (jingkong policy install; jingkong policy activate CODE ...)")
    return minutes


def _health_code(person_id: int, at: dt.datetime):
    from jingkong.codes.models import HealthCode

    code = HealthCode.objects.filter(person_id=person_id).first()
    if code is None:  # never computed for this person (e.g. registered a minute ago): compute it now
        from jingkong.codes import engine

        engine.recompute_people([person_id], at=at)
        code = HealthCode.objects.filter(person_id=person_id).first()
    if code is None:
        from jingkong.core.exceptions import NotFound

        raise NotFound("no health code has been computed for this person", code="code_not_computed")
    return code


def issue(person, *, at: dt.datetime | None = None) -> str:
    """A signed token of the person's current health code, valid for the profile's ``token_minutes`` from ``at``.

    ``person`` is a :class:`~jingkong.people.models.Person` (its name and masked ID go into the token).
    """
    at = at or clock.now()
    code = _health_code(person.pk, at)
    minutes = token_minutes(code.region_code, at=at)
    issued = at.replace(microsecond=0)
    kid, private_key = keyring.signing_key(at=at)
    payload = {
        "p": int(person.pk),
        "c": _COLOUR_TO[code.colour],
        "g": code.green_on.isoformat() if code.green_on else None,
        "r": [r["rule"] for r in (code.reasons or []) if isinstance(r, dict) and _RULE_RE.match(str(r.get("rule", "")))],
        "n": mask_name(person.name),
        "i": person.id_masked or "",
        "t": _unix(issued),
        "e": _unix(issued + dt.timedelta(minutes=minutes)),
    }
    return encode(payload, kid=kid, private_key=private_key)


def _malformed(detail: str) -> InvalidToken:
    return InvalidToken("malformed", detail)


def _parse_payload(body: bytes) -> dict:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _malformed("payload is not JSON") from None
    if not isinstance(data, dict) or set(data) != _PAYLOAD_KEYS:
        raise _malformed("payload fields")
    p, c, g, r, n, i, t, e = (data[k] for k in "pcgrnite")
    ints = all(type(v) is int for v in (p, t, e))  # noqa: E721 - bool is not a valid id or time
    if not ints or p <= 0 or c not in _COLOUR_FROM or not isinstance(n, str) or not isinstance(i, str):
        raise _malformed("payload values")
    if not isinstance(r, list) or not all(isinstance(x, str) and _RULE_RE.match(x) for x in r):
        raise _malformed("reasons")
    if not (0 < t < e and e - t <= MAX_VALIDITY.total_seconds()) or e > 2**40:
        raise _malformed("validity")
    green_on = None
    if g is not None:
        try:
            green_on = dt.date.fromisoformat(g) if isinstance(g, str) and len(g) == 10 else None
        except ValueError:
            green_on = None
        if green_on is None:
            raise _malformed("green_on")
    return {"p": p, "c": _COLOUR_FROM[c], "g": green_on, "r": tuple(r), "n": n, "i": i, "t": t, "e": e}


def verify(token: str, *, at: dt.datetime | None = None, public_keys=None) -> VerifiedToken:
    """Check a token's format, key, signature and validity at ``at`` (default now); see the module docstring."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        raise _malformed("not a token")
    parts = token.strip().split(".")
    if len(parts) != 4 or parts[0] != PREFIX or not _KID_RE.match(parts[1]):
        raise _malformed("not a JKC1 token")
    kid = parts[1]
    try:
        body = keyring.b64d(parts[2])
        signature = keyring.b64d(parts[3])
    except ValueError:
        raise _malformed("not base64url") from None
    if len(signature) != 64 or not body:
        raise _malformed("signature length")
    key_map = keyring.key_set(kid=kid) if public_keys is None else keyring.key_map(public_keys)
    key = key_map.get(kid)
    if key is None:
        raise InvalidToken("unknown_key", kid)
    try:
        key.key.verify(signature, f"{PREFIX}.{kid}.{parts[2]}".encode("ascii"))
    except InvalidSignature:
        raise InvalidToken("bad_signature") from None
    data = _parse_payload(body)
    at = at or clock.now()
    issued_at, expires_at = _from_unix(data["t"]), _from_unix(data["e"])
    if issued_at < key.not_before - keyring.CLOCK_SKEW:
        raise InvalidToken("unknown_key", f"{kid} did not exist when the token says it was issued")
    verified = VerifiedToken(person_id=data["p"], colour=data["c"], issued_at=issued_at, expires_at=expires_at, kid=kid,
                             green_on=data["g"], reasons=data["r"], name_masked=data["n"], id_masked=data["i"])
    if expires_at <= at:
        raise InvalidToken("expired", expires_at.isoformat(), verified)
    if issued_at > at + keyring.CLOCK_SKEW:
        raise InvalidToken("not_yet_valid", issued_at.isoformat(), verified)
    if not key.valid_at(at):
        raise InvalidToken("unknown_key", f"{kid} is not valid at this time")
    return verified


def reason_of(token: str, *, at: dt.datetime | None = None, public_keys=None) -> str | None:
    """None if the token verifies, else the reason code (for callers that only need the verdict)."""
    try:
        verify(token, at=at, public_keys=public_keys)
    except InvalidToken as exc:
        return exc.reason
    return None
