"""Person tokens: a short, URL-safe, signed reference to a person, for QR codes (the health code shows it later).

A token is ``JK1.<person id, base 36>.<MAC>``, e.g. ``JK1.2n9c.x8Vd0pL3Qm1aT7yZ``. The MAC is the first 96 bits of
an HMAC-SHA256 over ``JK1.<id>``, keyed with a key derived from ``settings.ID_HASH_KEY`` (the stable key of the
resident-ID hash, so rotating the session secret does not invalidate printed codes) and separated from that hash's
own use by a fixed label. The token carries no name or ID number: a scanner learns only an internal record number,
and without the key nobody can make a token for another number. Verification is constant-time.

Pure functions, no database: :func:`resolve_token` says whether a token is genuine, not whether the person exists.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from django.utils.translation import gettext as _

PREFIX = "JK1."
MAC_BYTES = 12  # 96 bits: 16 URL-safe base64 characters
_LABEL = b"jingkong.person-token.v1\0"
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
MAX_LENGTH = 64


class InvalidToken(ValueError):
    """Not a genuine person token; ``reason`` is a short sentence for the user."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _key(key: str | bytes | None) -> bytes:
    if key is None:
        from django.conf import settings

        key = settings.ID_HASH_KEY
    raw = key.encode() if isinstance(key, str) else key
    return hashlib.sha256(_LABEL + raw).digest()


def _base36(n: int) -> str:
    out = []
    while True:
        n, r = divmod(n, 36)
        out.append(_DIGITS[r])
        if n == 0:
            return "".join(reversed(out))


def _mac(body: str, key: bytes) -> str:
    digest = hmac.new(key, body.encode("ascii"), hashlib.sha256).digest()[:MAC_BYTES]
    return base64.urlsafe_b64encode(digest).decode("ascii")  # 12 bytes: no padding


def person_token(person_id: int, *, key: str | bytes | None = None) -> str:
    """The token of a person (deterministic: the same person always gets the same token under the same key)."""
    if isinstance(person_id, bool) or not isinstance(person_id, int) or person_id <= 0:
        raise ValueError("a person id is a positive integer")
    body = PREFIX + _base36(person_id)
    return f"{body}.{_mac(body, _key(key))}"


def resolve_token(token: str, *, key: str | bytes | None = None) -> int:
    """The person id inside a genuine token; raises :class:`InvalidToken` saying what is wrong otherwise."""
    text = (token or "").strip()
    if not text:
        raise InvalidToken(_("the person code is missing"))
    if len(text) > MAX_LENGTH or not text.startswith(PREFIX):
        raise InvalidToken(_("not a person code of this platform"))
    body, sep, mac = text.rpartition(".")
    number = body[len(PREFIX):]
    if not sep or not number or len(mac) != 16 or any(c not in _DIGITS for c in number) or number[0] == "0":
        raise InvalidToken(_("malformed person code"))
    if not hmac.compare_digest(mac.encode("ascii", "replace"), _mac(body, _key(key)).encode("ascii")):
        raise InvalidToken(_("the person code is not genuine (wrong signature)"))
    return int(number, 36)


def looks_like_token(value: str) -> bool:
    """True when the text has the token's prefix (a scanner may send either an ID number or a token)."""
    return (value or "").strip().startswith(PREFIX)
