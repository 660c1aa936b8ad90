"""Resident identity numbers (GB 11643-1999 公民身份号码): validation, keyed hash, masks. Pure functions, no DB.

An 18-character number is 6 digits of address code, 8 digits of birth date (YYYYMMDD), 3 digits of sequence (odd for
men, even for women) and one ISO 7064 MOD 11-2 check character (0-9 or X).

Legacy 15-digit numbers (issued before 1999: address, YYMMDD, sequence, no check digit) are **converted** to the
18-character form — insert "19" before the year and compute the check character — because every 15-digit number was
issued to someone born in the 1900s and the conversion is the official, lossless one. The platform only ever stores
and hashes the 18-character form, so a person found by either form is the same person.
"""

from __future__ import annotations

import datetime as dt
import hashlib

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"  # index = (weighted sum mod 11)
MIN_BIRTH_YEAR = 1900


class IdNumberError(ValueError):
    """The number is not a valid resident identity number; ``reason`` is a short, user-facing sentence."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def normalize(number: str) -> str:
    """Strip blanks and upper-case the check character (``x`` → ``X``)."""
    return "".join((number or "").split()).upper()


def check_char(first17: str) -> str:
    """The MOD 11-2 check character for the first 17 digits."""
    return CHECK_CHARS[sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True)) % 11]


def upgrade_15(number: str) -> str:
    """Convert a legacy 15-digit number to its 18-character form."""
    if len(number) != 15 or not number.isdigit():
        raise IdNumberError("a legacy ID number has exactly 15 digits")
    first17 = number[:6] + "19" + number[6:]
    return first17 + check_char(first17)


def birth_date_of(number: str) -> dt.date:
    """The birth date encoded in an 18-character number (raises IdNumberError if it is no real date)."""
    try:
        return dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise IdNumberError("the birth date inside the ID number is not a real date") from None


def sex_of(number: str) -> str:
    """``"M"`` or ``"F"`` from the sequence digit (odd: male)."""
    return "M" if int(number[16]) % 2 else "F"


def validate(number: str, *, today: dt.date | None = None) -> str:
    """Return the normalised 18-character number, or raise :class:`IdNumberError` saying what is wrong.

    ``today`` bounds the birth date (no births in the future); pass it in (the caller's clock), default: no bound.
    """
    value = normalize(number)
    if not value:
        raise IdNumberError("the ID number is missing")
    if len(value) == 15:
        if not value.isdigit():
            raise IdNumberError("a legacy 15-digit ID number must contain only digits")
        value = upgrade_15(value)
    if len(value) != 18:
        raise IdNumberError(f"an ID number has 18 characters, not {len(value)}")
    if not value[:17].isdigit() or not (value[17].isdigit() or value[17] == "X"):
        raise IdNumberError("an ID number is 17 digits followed by a digit or X")
    born = birth_date_of(value)
    if born.year < MIN_BIRTH_YEAR:
        raise IdNumberError(f"the birth date inside the ID number is before {MIN_BIRTH_YEAR}")
    if today is not None and born > today:
        raise IdNumberError("the birth date inside the ID number is in the future")
    if check_char(value[:17]) != value[17]:
        raise IdNumberError("the check digit is wrong (mistyped ID number)")
    return value


def is_valid(number: str, *, today: dt.date | None = None) -> bool:
    try:
        validate(number, today=today)
    except IdNumberError:
        return False
    return True


HASH_BYTES = 16  # 128-bit lookup key: 32 hex characters


def _key(key: str | bytes | None) -> bytes:
    if key is None:
        from django.conf import settings

        key = settings.ID_HASH_KEY
    k = key.encode() if isinstance(key, str) else key
    # BLAKE2b takes keys of at most 64 bytes; a longer secret is first condensed (keyless BLAKE2b-512).
    return k if len(k) <= 64 else hashlib.blake2b(k, digest_size=64).digest()


def _hasher(key: str | bytes | None):
    return hashlib.blake2b(key=_key(key), digest_size=HASH_BYTES)


def id_hash(number: str, *, key: str | bytes | None = None) -> str:
    """Keyed BLAKE2b-128 (32 hex characters) of the normalised number, keyed with ``settings.ID_HASH_KEY``.

    This is the lookup key in the database (a keyed hash: without the key, numbers cannot be confirmed by trying
    them; 128 bits make collisions among even billions of numbers negligible). Pass numbers through
    :func:`validate` first where a legacy 15-digit form may occur, so both forms hash alike.
    """
    h = _hasher(key)
    h.update(normalize(number).encode())
    return h.hexdigest()


def id_hash_many(numbers, *, key: str | bytes | None = None) -> list[str]:
    """:func:`id_hash` for already-normalised numbers (``str`` or ASCII ``bytes``), in bulk (keys once)."""
    fresh = _hasher(key).copy
    out = []
    append = out.append
    for n in numbers:
        h = fresh()
        h.update(n.encode() if isinstance(n, str) else n)
        append(h.hexdigest())
    return out


def id_mask(number: str) -> str:
    """Display form: first 6 and last 4 characters visible, e.g. ``330206********123X``."""
    value = normalize(number)
    if len(value) <= 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def phone_mask(phone: str) -> str:
    """Display form of a phone number: ``138****1234`` (first 3, last 4 visible; short numbers show the last 2)."""
    value = "".join((phone or "").split())
    if not value:
        return ""
    if len(value) >= 8:
        return value[:3] + "*" * (len(value) - 7) + value[-4:]
    return "*" * max(0, len(value) - 2) + value[-2:]
