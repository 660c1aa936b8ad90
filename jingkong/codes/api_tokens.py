"""/api/v1/codes/ routes of the tokens area: the published keys, key rotation, and the lookup API for devices.

* ``GET /keys`` — public (``guard.public``): the JWKS-like key set devices verify offline with; cacheable (ETag).
* ``POST /keys/rotate`` — CODES_RECOMPUTE, district-wide users: a new signing key (the old ones keep verifying).
* ``POST /lookup`` — CHECKPOINT_VERIFY: verify a scanned token and give the current colour. Not region-limited (the
  holder presents the token). The hot path: the guard as everywhere, but its bearer-token lookup cached in-process for
  a few seconds (:class:`CachedTokenAuth`); the keys from the in-process key set; one indexed SELECT of the current
  code; no session, no write. Stateless, so any number of processes behind a load balancer answer alike.
* ``POST /lookup/id-number`` — CHECKPOINT_VERIFY: the same answer for an ID number, inside the caller's region only
  (404 outside); audited as a person read.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import time

from django.db import connection
from django.db.models.signals import post_save
from django.http import HttpResponse, HttpResponseNotModified
from ninja import Router

from jingkong.access import audit
from jingkong.access.auth import SessionUserAuth, TokenAuth, hash_token
from jingkong.access.guard import check_required_perm, public, require
from jingkong.access.roles import Perm
from jingkong.codes import keys as keyring
from jingkong.codes import tokens
from jingkong.codes.schemas_tokens import IdLookupIn, KeySetOut, LookupOut, RotateOut, TokenLookupIn
from jingkong.core import clock
from jingkong.core.exceptions import NotFound, PermissionDenied, ValidationFailed
from jingkong.people import idnumber

router = Router(tags=["codes"])

KEYS_MAX_AGE = 300  # seconds a device (or a proxy) may keep the key set before asking again (with If-None-Match)
AUTH_CACHE_SECONDS = 5.0  # a device token's check is reused this long in-process (revocation takes effect within it)


class CachedTokenAuth(TokenAuth):
    """The platform's bearer-token check (:class:`jingkong.access.auth.TokenAuth`), its result reused in-process for
    :data:`AUTH_CACHE_SECONDS` per token — the lookup route's only saving on authentication.

    Nothing is skipped: a hit still sets ``request.user``/``request.jk_token`` and runs the guard's
    ``check_required_perm``; ``guard.require`` on the handler checks again and sets the scope. A revoked or expired
    token, or a deactivated user, is refused at most :data:`AUTH_CACHE_SECONDS` later in every process, and at once in
    the process that saved the change (saving an ``ApiToken`` or a user empties the cache: :func:`_forget_cached_checks`).
    Failed checks are not cached.
    """

    def __init__(self):
        super().__init__()
        self._hits: dict[str, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._hits.clear()

    def authenticate(self, request, token: str):
        key = hash_token(token)
        hit = self._hits.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            row = hit[1]
            if row.expires_at is None or row.expires_at > clock.now():
                request.user = row.user
                request.jk_token = row
                check_required_perm(request, row.user)
                return row.user
        user = super().authenticate(request, token)
        if user is not None:
            with self._lock:
                if len(self._hits) > 10_000:
                    self._hits.clear()
                self._hits[key] = (now + AUTH_CACHE_SECONDS, request.jk_token)
        return user


LOOKUP_AUTH = CachedTokenAuth()


def _forget_cached_checks(sender, **kwargs) -> None:
    """A token revoked or a user deactivated (or their role changed) in this process: no cached check survives it."""
    LOOKUP_AUTH.clear()


post_save.connect(_forget_cached_checks, sender="access.ApiToken", dispatch_uid="codes.lookup_auth.token")
post_save.connect(_forget_cached_checks, sender="access.User", dispatch_uid="codes.lookup_auth.user")


# --- keys ---------------------------------------------------------------------------------------------------------------


def _key_document(at: dt.datetime) -> dict:
    return {"keys": [keyring.public_key_from(r).as_dict() for r in keyring.published(at=at)],
            "format": f"{tokens.PREFIX}.<kid>.<payload b64url>.<Ed25519 signature b64url>",
            "cache_seconds": KEYS_MAX_AGE}


@router.get("/keys", response=KeySetOut, auth=None)
@public
def keys_list(request):
    """The public keys that verify health-code tokens (deliberately public: devices fetch it to verify offline).

    Keys still signing have ``verify_until: null``; retired ones are listed until their ``verify_until``. Cache it for
    ``cache_seconds``; send ``If-None-Match`` with the ``ETag`` to get 304 when nothing changed. If no key exists yet,
    the first is made now, so a device can be set up before the first code is shown.
    """
    now = clock.now()
    if not keyring.published(at=now):
        keyring.signing_key(at=now)
    body = json.dumps(_key_document(now), separators=(",", ":")).encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        response = HttpResponseNotModified()
    else:
        response = HttpResponse(body, content_type="application/json")
    response["ETag"] = etag
    response["Cache-Control"] = f"public, max-age={KEYS_MAX_AGE}"
    return response


def _district_wide(scope) -> bool:
    from jingkong.geo.models import Region

    if scope.is_everything:
        return True
    return bool(scope.prefix) and Region.objects.filter(code=scope.prefix, parent__isnull=True).exists()


@router.post("/keys/rotate", response=RotateOut)
@require(Perm.CODES_RECOMPUTE)
def keys_rotate(request):
    """Make a new signing key now. The previous keys stop signing and keep verifying until every token they signed has
    expired (``verify_until``). District-wide users only: the keys serve the whole platform. Audited."""
    if not _district_wide(request.scope):
        raise PermissionDenied("only district-wide users may rotate the signing keys")
    rotation = keyring.rotate(actor=request.jk_user, request=request, source="api")
    return {"kid": rotation.key.kid, "created_at": rotation.key.created_at,
            "retired": [keyring.public_key_from(r).as_dict() for r in rotation.retired]}


# --- lookup -------------------------------------------------------------------------------------------------------------

_CODE_SQL: str | None = None


def _current_code(person_id: int) -> tuple[str, list, dt.date | None] | None:
    """(colour, reasons, green_on) of the person's health code: one SELECT by primary key, no ORM."""
    global _CODE_SQL
    if _CODE_SQL is None:
        from jingkong.codes.models import HealthCode

        qn = connection.ops.quote_name
        _CODE_SQL = (f"SELECT {qn('colour')}, {qn('reasons')}, {qn('green_on')} FROM {qn(HealthCode._meta.db_table)}"
                     f" WHERE {qn('person_id')} = %s")
    with connection.cursor() as cursor:
        cursor.execute(_CODE_SQL, [person_id])
        row = cursor.fetchone()
    if row is None:
        return None
    colour, reasons, green_on = row
    if isinstance(reasons, str | bytes):  # SQLite gives the JSON text, psycopg the parsed value
        reasons = json.loads(reasons)
    if isinstance(green_on, str):
        green_on = dt.date.fromisoformat(green_on)
    return colour, reasons or [], green_on


def _reasons_out(reasons: list) -> list[dict]:
    out = []
    for r in reasons:
        if isinstance(r, dict):
            out.append({"rule": str(r.get("rule", "")), "colour": str(r.get("colour", "")),
                        "reason": str(r.get("reason", "")), "until": r.get("until") or None})
    return out


def lookup_answer(verified: tokens.VerifiedToken | None, *, valid: bool, reason_code: str | None) -> dict:
    answer = {"source": "token", "valid": valid, "reason_code": reason_code, "person_id": None, "colour": None,
              "token_colour": None, "green_on": None, "reasons": [], "token_reasons": [], "name_masked": "",
              "id_masked": "", "issued_at": None, "expires_at": None, "kid": None}
    if verified is None:
        return answer
    answer.update(person_id=verified.person_id, token_colour=verified.colour, token_reasons=list(verified.reasons),
                  name_masked=verified.name_masked, id_masked=verified.id_masked, issued_at=verified.issued_at,
                  expires_at=verified.expires_at, kid=verified.kid, green_on=verified.green_on)
    current = _current_code(verified.person_id)
    if current is not None:
        answer["colour"], reasons, answer["green_on"] = current
        answer["reasons"] = _reasons_out(reasons)
    return answer


@router.post("/lookup", response=LookupOut, auth=[LOOKUP_AUTH, SessionUserAuth()])
@require(Perm.CHECKPOINT_VERIFY)
def lookup(request, payload: TokenLookupIn):
    """Verify a scanned code token and answer the person's current colour beside the colour the token carries.

    Not region-limited: the holder presents the token. An invalid token answers ``valid: false`` with its
    ``reason_code``; for an expired (or not yet valid) but genuine token the person's data is still given, so the
    officer can ask for a fresh code. Not audited per request (the holder shows the code; the crossing log records
    the check) — see docs/code-tokens.md.
    """
    try:
        verified = tokens.verify(payload.token)
    except tokens.InvalidToken as exc:
        return lookup_answer(exc.token, valid=False, reason_code=exc.reason)
    return lookup_answer(verified, valid=True, reason_code=None)


@router.post("/lookup/id-number", response=LookupOut)
@require(Perm.CHECKPOINT_VERIFY)
def lookup_id_number(request, payload: IdLookupIn):
    """The current code of a person by ID number (someone without a phone), inside the caller's region only (404
    outside or unknown). Audited as a person read."""
    from jingkong.codes.models import HealthCode
    from jingkong.people.models import Person

    if "\x00" in payload.id_number:
        raise ValidationFailed("id_number: contains a NUL character", extra={"field": "id_number"})
    try:
        number = idnumber.validate(payload.id_number, today=clock.now().date())
    except idnumber.IdNumberError as exc:
        raise ValidationFailed(f"id_number: {exc.reason}", extra={"field": "id_number"}) from None
    person = Person.objects.select_related("grid").filter(id_hash=idnumber.id_hash(number)).first()
    if person is None:
        raise NotFound("person not found")
    request.scope.check(person.grid.code if person.grid else None, "person")
    code = HealthCode.objects.filter(person_id=person.pk).first()
    audit.record(actor=request.jk_user, action="codes.lookup", object_type="people.person", object_id=person.pk,
                 region_code=person.grid.code if person.grid else "", request=request, detail={"by": "id_number"})
    return {"source": "id_number", "valid": code is not None, "reason_code": None, "person_id": person.pk,
            "colour": code.colour if code else None, "token_colour": None, "green_on": code.green_on if code else None,
            "reasons": _reasons_out(code.reasons if code else []), "token_reasons": [],
            "name_masked": tokens.mask_name(person.name), "id_masked": person.id_masked}
