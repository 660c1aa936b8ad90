"""Signing keys of the health-code tokens: creation, rotation, the published key set, and an in-process cache.

* Ed25519 (``cryptography``). The public key is stored in clear (base64url of the 32 raw bytes) and published at
  ``GET /api/v1/codes/keys`` so that checkpoint and venue devices verify tokens offline. The private key is stored
  encrypted with AES-256-GCM under a key derived from Django's ``SECRET_KEY`` with HKDF-SHA256 (the key id is the
  associated data, so an encrypted key cannot be moved to another row). Changing ``SECRET_KEY`` makes the stored
  private keys unusable: :func:`signing_key` then says so and ``jingkong codes rotate-key`` makes a new one (the old
  public keys keep verifying the tokens in flight).
* The newest key that has not been retired signs. :func:`rotate` creates a new key and retires every other signing key:
  a retired key stops signing at once but keeps verifying until ``verify_until`` = rotation time + the longest token
  validity of any profile in force by then (+ the clock-skew allowance), so tokens already shown stay valid to their
  expiry. A key past ``verify_until`` is no longer published and no longer verifies.
* If no key exists, the first token issued creates one (:func:`signing_key`); ``jingkong codes rotate-key`` or the
  API creates one explicitly.
* :func:`key_set` is what the verifier uses on the server: the published keys, cached in-process for
  :data:`CACHE_SECONDS` (a rotation made by another process is picked up within that time, or at once when a token
  names a key id the cache does not know). Verification itself never needs the database (see tokens.verify).
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import secrets
import threading
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.db import transaction

from jingkong.core import clock
from jingkong.core.exceptions import ApplicationError

ALGORITHM = "Ed25519"
KID_BYTES = 6  # 8 base64url characters: short (it is in every QR code), unique enough for a handful of keys a year
CACHE_SECONDS = 30.0  # the in-process key set is re-read after this long
MISS_RELOAD_SECONDS = 1.0  # the same unknown key id reloads the set at most this often
MIN_RELOAD_INTERVAL = 0.05  # and no reload for an unknown key id sooner than this after the previous one
# Technical tolerance for device clocks (not a rule value): a token "issued" up to this far in the future is accepted,
# and a retired key is published this much longer than its last token can live.
CLOCK_SKEW = dt.timedelta(seconds=60)
_ENCRYPTION_VERSION = "v1"
_HKDF_INFO = b"jingkong.codes.signing-key.v1"


class KeyUnavailable(ApplicationError):
    """No usable signing key (the stored private key cannot be decrypted with the current secret key)."""

    status_code = 503
    code = "signing_key_unavailable"


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    """Strict base64url without padding (raises ValueError on anything else)."""
    if not isinstance(text, str) or not text.isascii() or "=" in text or len(text) % 4 == 1:
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64e(data) != text:  # non-canonical trailing bits
        raise ValueError("not canonical base64url")
    return data


# --- encryption of the private key ------------------------------------------------------------------------------------


def _wrapping_key(secret: str | bytes | None = None) -> bytes:
    if secret is None:
        from django.conf import settings

        secret = settings.SECRET_KEY
    material = secret.encode() if isinstance(secret, str) else secret
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(material)


def encrypt_private_key(raw: bytes, *, kid: str, secret: str | bytes | None = None) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(_wrapping_key(secret)).encrypt(nonce, raw, kid.encode())
    return f"{_ENCRYPTION_VERSION}.{b64e(nonce + sealed)}"


def decrypt_private_key(stored: str, *, kid: str, secret: str | bytes | None = None) -> bytes:
    try:
        version, body = stored.split(".", 1)
        if version != _ENCRYPTION_VERSION:
            raise ValueError(version)
        data = b64d(body)
        return AESGCM(_wrapping_key(secret)).decrypt(data[:12], data[12:], kid.encode())
    except (ValueError, InvalidTag):
        raise KeyUnavailable(
            f"signing key {kid} cannot be decrypted with the current secret key (was JINGKONG_SECRET_KEY changed?); "
            "make a new one: jingkong codes rotate-key"
        ) from None


# --- the published key set ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicKey:
    kid: str
    alg: str
    public_key: str  # base64url of the raw 32 bytes
    not_before: dt.datetime
    verify_until: dt.datetime | None  # None: still signing
    key: Ed25519PublicKey

    def valid_at(self, at: dt.datetime) -> bool:
        return self.not_before - CLOCK_SKEW <= at and (self.verify_until is None or at <= self.verify_until)

    def as_dict(self) -> dict:
        return {"kid": self.kid, "alg": self.alg, "public_key": self.public_key,
                "not_before": self.not_before.isoformat(),
                "verify_until": self.verify_until.isoformat() if self.verify_until else None}


def _parse_time(value) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    parsed = dt.datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        raise ValueError("key times must carry a UTC offset")
    return parsed


def public_key_from(entry) -> PublicKey:
    """One key of a published set: a :class:`PublicKey`, a SigningKey row, or a dict as served by the keys endpoint."""
    if isinstance(entry, PublicKey):
        return entry
    if isinstance(entry, dict):
        kid, alg, raw = entry["kid"], entry.get("alg", ALGORITHM), entry["public_key"]
        not_before, verify_until = _parse_time(entry["not_before"]), _parse_time(entry.get("verify_until"))
    else:  # a SigningKey row
        kid, alg, raw = entry.kid, entry.algorithm, entry.public_key
        not_before, verify_until = entry.created_at, entry.verify_until
    if alg != ALGORITHM:
        raise ValueError(f"unsupported algorithm {alg!r}")
    key = Ed25519PublicKey.from_public_bytes(b64d(raw))
    return PublicKey(kid=kid, alg=alg, public_key=raw, not_before=not_before, verify_until=verify_until, key=key)


def key_map(public_keys) -> dict[str, PublicKey]:
    """``{kid: PublicKey}`` from what a device holds: the endpoint's document (``{"keys": [...]}``), a list of its
    entries, or a mapping already keyed by kid."""
    if isinstance(public_keys, dict) and "keys" in public_keys:
        public_keys = public_keys["keys"]
    if isinstance(public_keys, dict):
        public_keys = public_keys.values()
    out = {}
    for entry in public_keys:
        pk = public_key_from(entry)
        out[pk.kid] = pk
    return out


def published(*, at: dt.datetime | None = None) -> list:
    """SigningKey rows still verifying at ``at`` (signing ones first, newest first)."""
    from jingkong.codes.models import SigningKey

    at = at or clock.now()
    rows = SigningKey.objects.filter(created_at__lte=at + CLOCK_SKEW).order_by("-created_at", "-id")
    return [r for r in rows if r.verify_until is None or r.verify_until >= at]


class _Cache:
    def __init__(self):
        self.lock = threading.Lock()
        self.keys: dict[str, PublicKey] | None = None
        self.loaded = 0.0
        self.private: dict[str, Ed25519PrivateKey] = {}
        self.missed: dict[str, float] = {}

    def clear(self) -> None:
        with self.lock:
            self.keys = None
            self.loaded = 0.0
            self.private.clear()
            self.missed.clear()


_cache = _Cache()


def cache_clear() -> None:
    """Forget the cached key set and private keys (rotation in this process calls it; tests too)."""
    _cache.clear()


def key_set(*, kid: str | None = None) -> dict[str, PublicKey]:
    """The published keys (``{kid: PublicKey}``), cached in-process for :data:`CACHE_SECONDS`.

    With ``kid``: if the cached set does not know it, the set is re-read at once — so a key made by another process
    verifies immediately — unless that kid already missed within :data:`MISS_RELOAD_SECONDS` or another reload happened
    within :data:`MIN_RELOAD_INTERVAL` (tokens with made-up key ids cost at most a few reads per second). Keys past
    ``verify_until`` stay in the set; the verifier refuses them.
    """
    now = time.monotonic()
    keys, loaded = _cache.keys, _cache.loaded
    reload = keys is None or now - loaded > CACHE_SECONDS
    if not reload and kid is not None and kid not in keys:
        missed = _cache.missed.get(kid)
        reload = (missed is None or now - missed > MISS_RELOAD_SECONDS) and now - loaded > MIN_RELOAD_INTERVAL
        with _cache.lock:
            if len(_cache.missed) > 1000:
                _cache.missed.clear()
            _cache.missed[kid] = now
    if reload:
        from jingkong.codes.models import SigningKey

        rows = SigningKey.objects.only("kid", "algorithm", "public_key", "created_at", "verify_until")
        keys = {r.kid: public_key_from(r) for r in rows}
        with _cache.lock:
            _cache.keys, _cache.loaded = keys, now
    return keys


# --- creating, choosing and rotating keys ------------------------------------------------------------------------------


def _new_kid() -> str:
    from jingkong.codes.models import SigningKey

    while True:
        kid = b64e(secrets.token_bytes(KID_BYTES))
        if "." not in kid and not SigningKey.objects.filter(kid=kid).exists():
            return kid


def _create(at: dt.datetime):
    from jingkong.codes.models import SigningKey

    private = Ed25519PrivateKey.generate()
    raw_private = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                        serialization.NoEncryption())
    raw_public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    kid = _new_kid()
    row = SigningKey.objects.create(kid=kid, algorithm=ALGORITHM, public_key=b64e(raw_public),
                                    private_key=encrypt_private_key(raw_private, kid=kid), created_at=at)
    cache_clear()  # this process sees the new key at once (others: on their first token naming it)
    return row


def max_token_validity(*, at: dt.datetime) -> dt.timedelta:
    """The longest token validity (``health_codes.token_minutes``) of any profile version put in force at or before
    ``at`` — an upper bound for every token issued so far. Zero if none has the field (no token could be issued)."""
    from jingkong.policy.models import PolicyActivation
    from jingkong.policy.selectors import profile_rules

    minutes = 0
    seen = set()
    for activation in PolicyActivation.objects.filter(activated_at__lte=at).select_related("profile"):
        if activation.profile_id in seen:
            continue
        seen.add(activation.profile_id)
        value = profile_rules(activation.profile).health_codes.token_minutes
        minutes = max(minutes, value or 0)
    return dt.timedelta(minutes=minutes)


def _signing_row():
    from jingkong.codes.models import SigningKey

    return SigningKey.objects.filter(retired_at__isnull=True).order_by("-created_at", "-id").first()


def signing_key(*, at: dt.datetime | None = None) -> tuple[str, Ed25519PrivateKey]:
    """``(kid, private key)`` of the key that signs now; creates the first key if there is none."""
    row = _signing_row()
    if row is None:
        with transaction.atomic():
            row = _signing_row() or _create(at or clock.now())
            _audit_created(row, actor=None, request=None, source="first use")
    cached = _cache.private.get(row.kid)
    if cached is None:
        cached = Ed25519PrivateKey.from_private_bytes(decrypt_private_key(row.private_key, kid=row.kid))
        with _cache.lock:
            _cache.private[row.kid] = cached
    return row.kid, cached


def _audit_created(row, *, actor, request, source: str, retired: list[str] | None = None) -> None:
    from jingkong.access import audit
    from jingkong.core import events

    detail = {"kid": row.kid, "algorithm": row.algorithm, "retired": retired or [], "source": source}
    audit.record(actor=actor, action="codes.key_rotate" if retired is not None else "codes.key_create",
                 object_type="codes.signingkey", object_id=row.kid, request=request, detail=detail,
                 source="" if request is not None else source)
    events.emit("codes.key_rotated", subject=row, actor=actor, payload=detail)


@dataclass(frozen=True)
class Rotation:
    key: object  # the new SigningKey
    retired: list  # SigningKey rows that stopped signing


def rotate(*, actor=None, at: dt.datetime | None = None, request=None, source: str = "") -> Rotation:
    """Make a new signing key; every other key stops signing now and keeps verifying until ``verify_until``.

    One transaction with an audit record and a ``codes.key_rotated`` event (payload: kid, retired kids).
    """
    from jingkong.codes.models import SigningKey

    at = at or clock.now()
    until = at + max_token_validity(at=at) + CLOCK_SKEW
    with transaction.atomic():
        signing = list(SigningKey.objects.select_for_update().filter(retired_at__isnull=True))
        for row in signing:
            row.retired_at = at
            row.verify_until = until
        if signing:
            SigningKey.objects.bulk_update(signing, ["retired_at", "verify_until"])
        new = _create(at)
        _audit_created(new, actor=actor, request=request, source=source, retired=[r.kid for r in signing])
    transaction.on_commit(cache_clear)
    return Rotation(key=new, retired=signing)
