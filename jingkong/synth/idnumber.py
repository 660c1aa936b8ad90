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


def build_ascii(area: np.ndarray, birth_ymd: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """An (n, 18) uint8 array of ASCII ID numbers from integer area codes, YYYYMMDD integers and sequences 0–999."""
    n = len(area)
    digits = np.empty((n, 17), dtype=np.uint8)
    for col, (values, width) in enumerate(((area, 6), (birth_ymd, 8), (seq, 3))):
        start = (0, 6, 14)[col]
        v = values.astype(np.int64)
        for k in range(width - 1, -1, -1):
            digits[:, start + k] = v % 10
            v = v // 10
    out = np.empty((n, 18), dtype=np.uint8)
    out[:, :17] = digits + ord("0")
    out[:, 17] = check_chars_ascii(digits)
    return out
