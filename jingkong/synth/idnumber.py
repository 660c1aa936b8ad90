"""Resident ID numbers (GB 11643-1999) for synthetic people: the ISO 7064 MOD 11-2 check character, vectorised.

An 18-character number = 6-digit area code + birth date YYYYMMDD + 3-digit sequence (odd: male, even: female) + check
character. jingkong.people.idnumber has the validator used on imports; this module only builds numbers.
"""

from __future__ import annotations

import numpy as np

WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
CHECK_CHARS = "10X98765432"
_CHECK_ASCII = np.frombuffer(CHECK_CHARS.encode("ascii"), dtype=np.uint8)


def check_char(first17: str) -> str:
    """The MOD 11-2 check character of 17 digits: sum(d_i * 2^(17-i) mod 11), mapped through ``10X98765432``."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("the check character is computed over exactly 17 digits")
    return CHECK_CHARS[int(sum(int(c) * int(w) for c, w in zip(first17, WEIGHTS, strict=True)) % 11)]


def is_valid(number: str) -> bool:
    """True when ``number`` has 17 digits followed by the right check character."""
    return len(number) == 18 and number[:17].isdigit() and check_char(number[:17]) == number[17]


def check_chars_ascii(digits: np.ndarray) -> np.ndarray:
    """Check characters (ASCII codes) for an (n, 17) array of digit values 0–9."""
    return _CHECK_ASCII[(digits.astype(np.int64) @ WEIGHTS) % 11]


def build_ascii(area: np.ndarray, birth_ymd: np.ndarray, seq: np.ndarray, chunk: int = 1 << 18) -> np.ndarray:
    """An (n, 18) uint8 array of ASCII ID numbers from integer area codes, YYYYMMDD integers and sequences 0–999.

    Built ``chunk`` rows at a time, with the check sum accumulated digit by digit, so the temporaries stay small."""
    n = len(area)
    out = np.empty((n, 18), dtype=np.uint8)
    weights = WEIGHTS.astype(np.int32)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        total = np.zeros(e - s, np.int32)
        for values, width, start in ((area, 6, 0), (birth_ymd, 8, 6), (seq, 3, 14)):
            v = values[s:e].astype(np.int64)
            for k in range(width - 1, -1, -1):
                digit = (v % 10).astype(np.int32)
                out[s:e, start + k] = digit + ord("0")
                total += digit * weights[start + k]
                v //= 10
        out[s:e, 17] = _CHECK_ASCII[total % 11]
    return out
