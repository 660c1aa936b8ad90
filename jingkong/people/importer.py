"""The population import (人口底数导入): a persons CSV (the format in docs/district-format.md) into ``people``.

Pipeline, built for ~1 M rows in seconds:

1. read (pyarrow.csv, UTF-8 or GBK/GB18030, Chinese header aliases; see :mod:`jingkong.people.csvread`);
2. validate column-wise with numpy/pyarrow (ID format, birth date and MOD 11-2 check digit as array arithmetic;
   categorical fields through their few distinct values; codes through dict look-ups of the distinct codes); only
   the rows a vectorised test flags go through the exact per-row functions to word the reason;
3. assemble the valid rows column-wise (Arrow arrays; values with few distinct forms mapped once; ID numbers
   hashed with keyed BLAKE2b-128), never a Python loop building row tuples field by field;
4. write. Into an **empty** person table (a district's first load) :func:`fresh_load` does it in one transaction:
   drop the table's secondary and unique indexes, insert everything (one ``executemany``; PostgreSQL: one
   ``COPY`` of text formatted column-wise), rebuild the indexes, check the foreign keys. Otherwise the rows are
   upserted in chunks, each one transaction, keyed by ``id_hash``; an interrupted import leaves whole chunks
   behind and simply runs again. Audit: who, when, what, from where — one ``person.import`` record per grid and
   transaction whose ``detail["ids"]`` lists the id ranges written (plus the run id); see
   :func:`jingkong.people.selectors.person_audit` for "which records touched person X".

Rules decided here (documented for users in the error file): required fields are id_number, name, sex, birth_date
and a building_code — or a household_code of an existing household, whose building is then used. A household code
that does not exist yet is created from the row (household_code + building + unit + room); it is an error only when
the row gives no known building to create it in. Rows repeating an ID number are all rejected (each names the others).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import itertools
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from django.db import connection, transaction

from jingkong.core import bulk, clock
from jingkong.people import idnumber
from jingkong.people.csvread import read_csv
from jingkong.people.models import VULNERABLE_NAMES, Industry, Source

COLUMNS = [
    "id_number", "name", "sex", "birth_date", "phone", "household_code", "building_code", "unit", "room",
    "registered_address", "is_registered_local", "vulnerable", "industry", "employer", "workplace_venue_code",
]
HEADER_ALIASES = {c: c for c in COLUMNS} | {
    "身份证号": "id_number", "身份证号码": "id_number", "公民身份号码": "id_number",
    "姓名": "name", "性别": "sex", "出生日期": "birth_date",
    "手机号": "phone", "手机号码": "phone", "联系电话": "phone", "电话": "phone",
    "户编号": "household_code", "楼栋编号": "building_code", "单元": "unit", "房号": "room",
    "户籍地址": "registered_address", "本地户籍": "is_registered_local", "重点群体": "vulnerable",
    "重点行业": "industry", "工作单位": "employer", "工作场所码": "workplace_venue_code",
}
MAX_LENGTH = {"name": 64, "phone": 20, "unit": 16, "room": 16, "registered_address": 255, "employer": 255,
              "household_code": 48}
SEX_VALUES = {"m": "M", "male": "M", "男": "M", "f": "F", "female": "F", "女": "F"}
BOOL_VALUES = {"": True, "1": True, "0": False, "true": True, "false": False, "yes": True, "no": False,
               "y": True, "n": False, "是": True, "否": False}
INDUSTRY_VALUES = {c.value: c.value for c in Industry} | {
    "港口": "port", "冷链": "cold_chain", "机场": "airport", "医院": "hospital", "医疗机构": "hospital",
    "交通运输": "transport", "船员": "ship_crew", "无": "",
}
PERSON_TABLE = "people_person"
PERSON_COLUMNS = [
    "id_hash", "id_masked", "name", "sex", "birth_date", "phone", "household_id", "building_id", "grid_id", "unit",
    "room", "registered_address", "is_registered_local", "vulnerable", "industry", "employer", "workplace_id",
    "source", "needs_review", "created_at", "updated_at",
]
PERSON_UPDATE = [c for c in PERSON_COLUMNS if c not in ("id_hash", "created_at")]
KEYS_TABLE = "_jk_person_keys"


@dataclass
class RowError:
    line: int
    field: str
    reason: str
    value: str = ""


@dataclass
class ImportResult:
    rows: int = 0
    valid: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0  # valid rows identical to the stored person: not rewritten
    rejected: int = 0
    households_created: int = 0
    encoding: str = ""
    dry_run: bool = False
    seconds: float = 0.0
    error_file: str = ""
    errors: list[RowError] = field(default_factory=list)
    run: str = ""

    def summary(self) -> dict:
        out = asdict(self)
        out["errors"] = len(self.errors)
        out["errors_sample"] = [asdict(e) for e in self.errors[:20]]
        return out


class _Errors:
    def __init__(self, lines: np.ndarray):
        self.lines = lines
        self.bad = np.zeros(len(lines), dtype=bool)
        self.items: list[tuple[int, int, str, str, str]] = []  # (row index, order, field, reason, value)

    def add(self, row: int, field_name: str, reason: str, value: str = "") -> None:
        self.bad[row] = True
        self.items.append((row, len(self.items), field_name, reason, value))

    def result(self) -> list[RowError]:
        return [RowError(int(self.lines[r]), f, reason, v) for r, _, f, reason, v in sorted(self.items)]


# --- vectorised helpers ------------------------------------------------------------------------------------------


def _strip(arr: pa.Array) -> pa.Array:
    return pc.utf8_trim_whitespace(arr)


def _fixed_width(arr: pa.Array, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(n × width uint8 matrix, mask of rows whose byte length is exactly ``width``); other rows are zeros."""
    n = len(arr)
    ok = (pc.binary_length(arr).to_numpy(zero_copy_only=False) == width) if n else np.zeros(0, bool)
    if n == 0:
        return np.zeros((0, width), np.uint8), ok
    filled = pc.if_else(pa.array(ok), arr, pa.scalar("\0" * width))
    if isinstance(filled, pa.ChunkedArray):
        filled = filled.combine_chunks()
    _, offsets_buf, data_buf = filled.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)[filled.offset: filled.offset + n + 1]
    start = int(offsets[0])
    mat = np.frombuffer(data_buf, dtype=np.uint8)[start: start + width * n].reshape(n, width).copy()
    return mat, ok


def _categorical(arr: pa.Array, fn: Callable[[str], object]) -> tuple[list, np.ndarray, np.ndarray]:
    """Map each distinct value once: returns (mapped distinct values, per-row index into them, per-row error mask).

    ``fn`` returns the mapped value or raises ValueError (the row is then flagged).
    """
    encoded = arr.dictionary_encode()
    uniques = encoded.dictionary.to_pylist()
    mapped, failed = [], np.zeros(len(uniques), dtype=bool)
    for i, value in enumerate(uniques):
        try:
            mapped.append(fn(value))
        except ValueError:
            mapped.append(None)
            failed[i] = True
    idx = encoded.indices.to_numpy(zero_copy_only=False)
    return mapped, idx, failed[idx] if len(idx) else np.zeros(0, bool)


def _parse_sex(value: str):
    try:
        return SEX_VALUES[value.strip().lower()]
    except KeyError:
        raise ValueError(value) from None


def _parse_bool(value: str):
    try:
        return BOOL_VALUES[value.strip().lower()]
    except KeyError:
        raise ValueError(value) from None


def _parse_industry(value: str):
    try:
        return INDUSTRY_VALUES[value.strip().lower()]
    except KeyError:
        raise ValueError(value) from None


def parse_vulnerable(value: str) -> int:
    flags = 0
    for part in value.replace("；", ";").replace(",", ";").replace("，", ";").split(";"):
        part = part.strip().lower()
        if not part:
            continue
        if part not in VULNERABLE_NAMES:
            raise ValueError(part)
        flags |= int(VULNERABLE_NAMES[part])
    return flags


def _parse_date(value: str) -> dt.date:
    value = value.strip()
    for fmt in ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d"):
        try:
            return dt.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise ValueError(value)


# --- reference data -----------------------------------------------------------------------------------------------


def _buildings(scope_prefix: str) -> dict[str, tuple[int, int, str]]:
    """building code → (building id, grid id, grid code), limited to the importer's region scope."""
    with connection.cursor() as c:
        c.execute(
            "SELECT b.code, b.id, b.grid_id, g.code FROM geo_building b JOIN geo_region g ON g.id = b.grid_id"
            + (" WHERE g.code LIKE %s" if scope_prefix else ""),
            [scope_prefix + "%"] if scope_prefix else [],
        )
        return {code: (bid, gid, gcode) for code, bid, gid, gcode in c.fetchall()}


def _households(codes: list[str]) -> dict[str, tuple[int, int, int]]:
    """household code → (household id, building id, grid id) for the given codes."""
    out: dict[str, tuple[int, int, int]] = {}
    with connection.cursor() as c:
        if len(codes) > 20_000:  # most of a district: one scan beats hundreds of IN lists
            wanted = set(codes)
            c.execute("SELECT code, id, building_id, grid_id FROM people_household")
            return {code: (hid, bid, gid) for code, hid, bid, gid in c.fetchall() if code in wanted}
        for i in range(0, len(codes), 5000):
            part = codes[i: i + 5000]
            c.execute(
                f"SELECT code, id, building_id, grid_id FROM people_household WHERE code IN ({', '.join(['%s'] * len(part))})",
                part,
            )
            out.update({code: (hid, bid, gid) for code, hid, bid, gid in c.fetchall()})
    return out


REQUIRED_COLUMNS = ["id_number", "name", "sex", "birth_date"]


def _check_header(csvdata) -> None:
    """A file without the required columns fails as a whole, with one message (not an error on every row)."""
    if not csvdata.columns and not csvdata.table.num_rows:
        return  # an empty file: nothing to import
    missing = [c for c in REQUIRED_COLUMNS if c not in csvdata.columns]
    if "building_code" not in csvdata.columns and "household_code" not in csvdata.columns:
        missing.append("building_code or household_code")
    if missing:
        from jingkong.core.exceptions import ValidationFailed

        unknown = f"; columns not recognised: {', '.join(csvdata.unknown_columns)}" if csvdata.unknown_columns else ""
        raise ValidationFailed(f"line 1: the header lacks required columns: {', '.join(missing)}{unknown}",
                               extra={"line": 1, "missing": missing, "unknown": csvdata.unknown_columns})


def _reject_persons_outside(err: _Errors, mat: np.ndarray, scope_prefix: str) -> None:
    """Reject rows whose ID number belongs to a person already registered outside ``scope_prefix``."""
    rows = np.flatnonzero(~err.bad)
    if not len(rows):
        return
    hashes = idnumber.id_hash_many(mat[rows].view("S18").ravel().tolist())
    outside: set[str] = set()
    with connection.cursor() as c:
        for i in range(0, len(hashes), 5000):
            part = hashes[i: i + 5000]
            c.execute(
                "SELECT p.id_hash FROM people_person p LEFT JOIN geo_region g ON g.id = p.grid_id"
                f" WHERE p.id_hash IN ({', '.join(['%s'] * len(part))}) AND (g.code IS NULL OR g.code NOT LIKE %s)",
                [*part, scope_prefix + "%"],
            )
            outside.update(h for (h,) in c.fetchall())
    for r, h in zip(rows, hashes, strict=True):
        if h in outside:
            err.add(int(r), "id_number", "this person is registered outside your region (ask that region to move them)")


def _venues() -> dict[str, int]:
    return bulk.code_map("geo_venue")


# --- the import ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Const:
    """A column with the same value on every row."""

    value: object


@dataclass
class _Prepared:
    """The valid rows, column-wise (:data:`PERSON_COLUMNS` → Arrow array, list or :class:`Const`)."""

    columns: dict[str, object]
    lines: np.ndarray
    new_households: list[tuple]
    result: ImportResult
    household_codes: list[str] = field(default_factory=list)  # distinct household codes of the file
    household_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # per row, into the codes
    known_households: dict = field(default_factory=dict)  # code → (id, building id, grid id), before the import

    def __len__(self) -> int:
        return len(self.lines)

    def resolve_households(self, created: dict | None = None) -> None:
        """Fill the household_id column (existing households, plus ``created``: code → (id, …))."""
        ids = np.zeros(len(self.household_codes) + 1, np.int64)
        for i, code in enumerate(self.household_codes):
            hit = self.known_households.get(code) or (created or {}).get(code)
            ids[i] = hit[0] if hit else 0
        per_row = ids[self.household_index] if len(self.household_index) else np.zeros(0, np.int64)
        self.columns["household_id"] = pa.array(per_row, pa.int64(), mask=per_row == 0)

    def reorder(self, order: np.ndarray) -> None:
        """Put the rows in ``order`` (indices)."""
        idx = pa.array(order, pa.int64())
        for name, value in self.columns.items():
            if isinstance(value, pa.Array):
                self.columns[name] = value.take(idx)
            elif isinstance(value, list):
                self.columns[name] = np.asarray(value, dtype=object)[order].tolist()
        self.lines = self.lines[order]
        self.household_index = self.household_index[order]

    def rows(self, start: int = 0, stop: int | None = None, columns: list[str] | None = None):
        """The rows ``start:stop`` as an iterator of tuples of ``columns`` (default :data:`PERSON_COLUMNS`)."""
        stop = len(self) if stop is None else min(stop, len(self))
        return zip(*(_pylist(self.columns[c], start, stop) for c in columns or PERSON_COLUMNS), strict=False)

    def copy_text(self, start: int = 0, stop: int | None = None) -> pa.Buffer:
        """The rows ``start:stop`` in PostgreSQL COPY text format (built column-wise in Arrow)."""
        stop = len(self) if stop is None else min(stop, len(self))
        return copy_text([self.columns[c] for c in PERSON_COLUMNS], start, stop)


def _pylist(value, start: int, stop: int):
    """Python values of a column slice; repeated strings are converted once (dictionary-encoded)."""
    if isinstance(value, Const):
        return itertools.repeat(value.value, stop - start)
    if isinstance(value, list):
        return value[start:stop]
    part = value.slice(start, stop - start)
    if pa.types.is_string(part.type) and len(part) > 1000:
        enc = part.dictionary_encode()
        if len(enc.dictionary) * 4 < len(part):
            return np.asarray(enc.dictionary.to_pylist() + [None], dtype=object)[
                enc.indices.fill_null(len(enc.dictionary)).to_numpy(zero_copy_only=False)].tolist()
    return part.to_pylist()


def _sql_literal(value) -> str:
    """A constant of our own making (source, flag, timestamp) as an SQL literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool | int):
        return str(int(value))
    return "'" + str(value).replace("'", "''") + "'"


def _copy_escape(arr: pa.Array) -> pa.Array:
    for char, escaped in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
        arr = pc.replace_substring(arr, char, escaped)
    return arr


def copy_text(columns: list, start: int, stop: int) -> pa.Buffer:
    """Rows ``start:stop`` of ``columns`` (Arrow arrays, lists or :class:`Const`) as COPY text-format bytes."""
    n = stop - start
    parts = []
    for value in columns:
        if isinstance(value, Const):
            v = value.value
            text = "\\N" if v is None else "t" if v is True else "f" if v is False else _copy_escape(pa.array([str(v)]))[0].as_py()
            parts.append(pa.scalar(text, pa.string()))
            continue
        arr = pa.array(value[start:stop], pa.string()) if isinstance(value, list) else value.slice(start, n)
        if pa.types.is_boolean(arr.type):
            arr = pc.if_else(arr, "t", "f")
        elif not pa.types.is_string(arr.type):
            arr = pc.cast(arr, pa.string())
        else:
            arr = _copy_escape(arr)
        parts.append(pc.fill_null(arr, "\\N"))
    if n == 0:
        return pa.py_buffer(b"")
    if all(isinstance(p, pa.Scalar) for p in parts):
        parts[0] = pa.array([parts[0].as_py()] * n, pa.string())
    lines = pc.binary_join_element_wise(*parts, "\t")
    lines = pc.binary_join_element_wise(lines, pa.scalar(""), "\n")  # each line + "\n" + ""
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset: lines.offset + n + 1]
    return lines.buffers()[2][int(offsets[0]): int(offsets[-1])]


def prepare(data, *, today: dt.date, scope_prefix: str = "", now: dt.datetime | None = None,
            source: str = Source.IMPORT) -> _Prepared:
    """Parse and validate; returns the person rows ready for :data:`PERSON_COLUMNS` (without household ids resolved
    for households still to be created — those rows carry the household *code* in the household_id slot)."""
    now = now or clock.now()
    csvdata = read_csv(data, aliases=HEADER_ALIASES, expected=COLUMNS)
    _check_header(csvdata)
    t = csvdata.table
    n = t.num_rows
    result = ImportResult(rows=n + len(csvdata.malformed), encoding=csvdata.encoding)
    err = _Errors(csvdata.lines)
    col = {name: _strip(t.column(name).combine_chunks() if isinstance(t.column(name), pa.ChunkedArray) else t.column(name))
           for name in COLUMNS}

    # Required fields.
    for name in ("id_number", "name", "sex", "birth_date"):
        empty = (pc.binary_length(col[name]).to_numpy(zero_copy_only=False) == 0) if n else np.zeros(0, bool)
        for r in np.flatnonzero(empty):
            err.add(int(r), name, "required field is empty")
    for name, limit in MAX_LENGTH.items():
        too_long = (pc.utf8_length(col[name]).to_numpy(zero_copy_only=False) > limit) if n else np.zeros(0, bool)
        for r in np.flatnonzero(too_long):
            err.add(int(r), name, f"longer than {limit} characters", col[name][int(r)].as_py()[:40])

    # ID numbers: upper-case, upgrade legacy 15-digit numbers, then array checks of format, date and check digit.
    ids = pc.utf8_upper(col["id_number"])
    mat, ok18 = _fixed_width(ids, 18)
    lengths = pc.binary_length(ids).to_numpy(zero_copy_only=False) if n else np.zeros(0, np.int64)
    for r in np.flatnonzero(lengths == 15):
        try:
            mat[r] = np.frombuffer(idnumber.upgrade_15(ids[int(r)].as_py()).encode(), np.uint8)
            ok18[r] = True
        except idnumber.IdNumberError:
            pass
    digits = mat[:, :17].astype(np.int64) - 48
    last = mat[:, 17]
    fmt_ok = ok18 & (digits >= 0).all(axis=1) & (digits <= 9).all(axis=1) & (((last >= 48) & (last <= 57)) | (last == 88))
    year = digits[:, 6] * 1000 + digits[:, 7] * 100 + digits[:, 8] * 10 + digits[:, 9]
    month = digits[:, 10] * 10 + digits[:, 11]
    day = digits[:, 12] * 10 + digits[:, 13]
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    dim = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(month, 0, 12)] + ((month == 2) & leap)
    ymd = year * 10000 + month * 100 + day
    date_ok = (month >= 1) & (month <= 12) & (day >= 1) & (day <= dim) & (year >= idnumber.MIN_BIRTH_YEAR) & (
        ymd <= today.year * 10000 + today.month * 100 + today.day)
    check = np.frombuffer(idnumber.CHECK_CHARS.encode(), np.uint8)[(digits[:, :17] * np.array(idnumber.WEIGHTS)).sum(axis=1) % 11]
    id_ok = fmt_ok & date_ok & (check == last)
    has_id = lengths > 0
    for r in np.flatnonzero(~id_ok & has_id):
        raw = col["id_number"][int(r)].as_py()
        try:
            idnumber.validate(raw, today=today)
            reason = "invalid ID number"
        except idnumber.IdNumberError as exc:
            reason = exc.reason
        err.add(int(r), "id_number", reason, idnumber.id_mask(raw))

    # Duplicates within the file (among well-formed numbers): every row of a repeated number is rejected.
    if n:
        keys = mat.view("S18").ravel()
        enc = pa.array(keys.astype(object), pa.binary()).dictionary_encode()
        kidx = enc.indices.to_numpy(zero_copy_only=False)
        counts = np.bincount(kidx, minlength=len(enc.dictionary))
        dup_rows = np.flatnonzero((counts[kidx] > 1) & id_ok)
        groups: dict[int, list[int]] = defaultdict(list)
        for r in dup_rows:
            groups[int(kidx[r])].append(int(r))
        for rows in groups.values():
            for r in rows:
                others = ", ".join(str(int(csvdata.lines[o])) for o in rows if o != r)
                err.add(r, "id_number", f"duplicate ID number in the file (also on line {others})",
                        idnumber.id_mask(keys[r].decode()))

    # Birth date column must be a real date and agree with the number.
    bmat = np.empty((n, 10), np.uint8)
    bmat[:, 0:4], bmat[:, 4], bmat[:, 5:7], bmat[:, 7], bmat[:, 8:10] = mat[:, 6:10], 45, mat[:, 10:12], 45, mat[:, 12:14]
    given, given_ok = _fixed_width(col["birth_date"], 10)
    same = given_ok & (given == bmat).all(axis=1)
    for r in np.flatnonzero(~same & (pc.binary_length(col["birth_date"]).to_numpy(zero_copy_only=False) > 0) if n else []):
        raw = col["birth_date"][int(r)].as_py()
        try:
            born = _parse_date(raw)
        except ValueError:
            err.add(int(r), "birth_date", "not a real date (use YYYY-MM-DD)", raw)
            continue
        if id_ok[r] and born.strftime("%Y-%m-%d").encode() != bmat[r].tobytes():
            err.add(int(r), "birth_date", f"disagrees with the ID number ({bmat[r].tobytes().decode()})", raw)
        elif born > today or born.year < idnumber.MIN_BIRTH_YEAR:
            err.add(int(r), "birth_date", "impossible birth date", raw)

    # Categorical fields.
    sex_vals, sex_idx, sex_bad = _categorical(col["sex"], _parse_sex)
    for r in np.flatnonzero(sex_bad & (pc.binary_length(col["sex"]).to_numpy(zero_copy_only=False) > 0) if n else []):
        err.add(int(r), "sex", "unknown sex (use M or F)", col["sex"][int(r)].as_py())
    loc_vals, loc_idx, loc_bad = _categorical(col["is_registered_local"], _parse_bool)
    for r in np.flatnonzero(loc_bad):
        err.add(int(r), "is_registered_local", "use 1 or 0", col["is_registered_local"][int(r)].as_py())
    vul_vals, vul_idx, vul_bad = _categorical(col["vulnerable"], parse_vulnerable)
    for r in np.flatnonzero(vul_bad):
        raw = col["vulnerable"][int(r)].as_py()
        try:
            parse_vulnerable(raw)
        except ValueError as exc:
            err.add(int(r), "vulnerable", f"unknown vulnerable group {exc}", raw)
    ind_vals, ind_idx, ind_bad = _categorical(col["industry"], _parse_industry)
    for r in np.flatnonzero(ind_bad):
        err.add(int(r), "industry", "unknown key industry", col["industry"][int(r)].as_py())

    # Codes: buildings (within scope), households (existing or to create), workplace venues.
    buildings = _buildings(scope_prefix)
    b_enc = col["building_code"].dictionary_encode()
    b_codes = b_enc.dictionary.to_pylist()
    b_idx = b_enc.indices.to_numpy(zero_copy_only=False)
    b_known = np.array([c in buildings for c in b_codes], dtype=bool)
    b_empty = np.array([c == "" for c in b_codes], dtype=bool)
    b_id_u = np.array([buildings[c][0] if c in buildings else 0 for c in b_codes], dtype=np.int64)
    b_grid_u = np.array([buildings[c][1] if c in buildings else 0 for c in b_codes], dtype=np.int64)
    for r in np.flatnonzero(~b_known[b_idx] & ~b_empty[b_idx]) if n else []:
        err.add(int(r), "building_code", "unknown building code", b_codes[b_idx[r]])
    building_id = b_id_u[b_idx] if n else np.zeros(0, np.int64)
    grid_id = b_grid_u[b_idx] if n else np.zeros(0, np.int64)

    h_enc = col["household_code"].dictionary_encode()
    h_codes = h_enc.dictionary.to_pylist()
    h_idx = h_enc.indices.to_numpy(zero_copy_only=False)
    existing = _households([c for c in h_codes if c])
    h_exists = np.array([c in existing for c in h_codes], dtype=bool)
    h_empty = np.array([c == "" for c in h_codes], dtype=bool)
    row_h_exists = h_exists[h_idx] if n else np.zeros(0, bool)
    # No building given: take the existing household's building (if in scope).
    grid_codes = {gid: gcode for _, gid, gcode in buildings.values()}
    for r in np.flatnonzero(b_empty[b_idx] & row_h_exists) if n else []:
        hid, bid, gid = existing[h_codes[h_idx[r]]]
        if gid in grid_codes:
            building_id[r], grid_id[r] = bid, gid
    no_building = building_id == 0
    for r in np.flatnonzero(no_building & b_empty[b_idx] & ~h_exists[h_idx]) if n else []:
        if h_empty[h_idx[r]]:
            err.add(int(r), "building_code", "required field is empty (give building_code or household_code)")
        else:
            err.add(int(r), "household_code", "unknown household code and no building to create it in",
                    h_codes[h_idx[r]])
    for r in np.flatnonzero(no_building & b_empty[b_idx] & h_exists[h_idx]) if n else []:
        err.add(int(r), "household_code", "unknown household code", h_codes[h_idx[r]])

    venues = _venues()
    v_enc = col["workplace_venue_code"].dictionary_encode()
    v_codes = v_enc.dictionary.to_pylist()
    v_idx = v_enc.indices.to_numpy(zero_copy_only=False)
    v_id_u = [venues.get(c) for c in v_codes]
    for r in np.flatnonzero(np.array([c != "" and venues.get(c) is None for c in v_codes], bool)[v_idx]) if n else []:
        err.add(int(r), "workplace_venue_code", "unknown venue code", v_codes[v_idx[r]])

    # A scoped upload may name only households of its own region, and may not touch
    # persons registered outside its region (their ID numbers are rejected, not updated).
    if n:
        for r in np.flatnonzero(row_h_exists & ~err.bad):
            hid, bid, gid = existing[h_codes[h_idx[r]]]
            if gid not in grid_codes:
                err.add(int(r), "household_code", "household belongs to a region outside your scope", h_codes[h_idx[r]])
    if scope_prefix and n:
        _reject_persons_outside(err, mat, scope_prefix)

    # Assemble the good rows.
    good = ~err.bad
    g = np.flatnonzero(good)
    result.errors = [RowError(line, "", reason) for line, reason in csvdata.malformed] + err.result()
    result.errors.sort(key=lambda e: e.line)
    result.rejected = int(err.bad.sum()) + len(csvdata.malformed)
    result.valid = len(g)
    k = len(g)
    hashes = idnumber.id_hash_many(mat[g].view("S18").ravel().tolist())
    masked_mat = mat[g].copy()
    masked_mat[:, 6:14] = 42
    take = pa.array(g, pa.int64())

    def texts(name: str) -> pa.Array:
        return col[name].take(take)

    def decode(values: list, index: np.ndarray, kind: pa.DataType) -> pa.Array:
        """Per good row, the mapped value of its distinct raw value (each distinct value was mapped once)."""
        return pa.array(values, kind).take(pa.array(index[g] if n else np.zeros(0, np.int64)))

    # Households: existing ids resolved per distinct code; codes still to be created carry their representative
    # row (the first valid row naming the code) and are resolved by household_ids() after they are created.
    new_households: dict[str, tuple] = {}
    hg = h_idx[g] if n else np.zeros(0, np.int64)
    if k:
        uniq, first = np.unique(hg, return_index=True)
        is_new = ~h_exists[uniq] & ~h_empty[uniq]
        reps = g[first[is_new]]
        rep_take = pa.array(reps, pa.int64())
        units, rooms = col["unit"].take(rep_take).to_pylist(), col["room"].take(rep_take).to_pylist()
        for u, r, unit, room in zip(uniq[is_new].tolist(), reps.tolist(), units, rooms, strict=True):
            code = h_codes[u]
            new_households[code] = (code, int(building_id[r]), int(grid_id[r]), unit, room)
    false = 0 if connection.vendor == "sqlite" else False
    stamp = bulk.db_datetime(now)
    columns: dict[str, object] = {
        "id_hash": hashes,
        "id_masked": _fixed_strings(masked_mat, 18),
        "name": texts("name"),
        "sex": decode(sex_vals, sex_idx, pa.string()),
        "birth_date": _fixed_strings(bmat[g], 10),
        "phone": texts("phone"),
        "household_id": None,  # household_ids()
        "building_id": pa.array(building_id[g], pa.int64()),
        "grid_id": pa.array(grid_id[g], pa.int64()),
        "unit": texts("unit"),
        "room": texts("room"),
        "registered_address": texts("registered_address"),
        "is_registered_local": decode(loc_vals, loc_idx, pa.bool_()),
        "vulnerable": decode(vul_vals, vul_idx, pa.int64()),
        "industry": decode(ind_vals, ind_idx, pa.string()),
        "employer": texts("employer"),
        "workplace_id": decode(v_id_u, v_idx, pa.int64()),
        "source": Const(str(source)),
        "needs_review": Const(false),
        "created_at": Const(stamp),
        "updated_at": Const(stamp),
    }
    return _Prepared(columns, csvdata.lines[g], list(new_households.values()), result, h_codes, hg, existing)


def _fixed_strings(mat: np.ndarray, width: int) -> pa.Array:
    """An (n × width) ASCII byte matrix as an Arrow string array (no per-row Python)."""
    n = len(mat)
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(mat).tobytes()))


def write_error_file(path: str | Path, errors: list[RowError]) -> None:
    with open(path, "w", newline="", encoding="utf-8-sig") as fh:
        w = csv.writer(fh)
        w.writerow(["line", "field", "reason", "value"])
        for e in errors:
            w.writerow([e.line, e.field, e.reason, e.value])


def import_persons(
    path: str | Path,
    *,
    actor=None,
    error_file: str | Path | None = None,
    dry_run: bool = False,
    scope_prefix: str = "",
    chunk_size: int | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    refresh_counts: bool = True,
    source: str = Source.IMPORT,
    fail_after_chunks: int | None = None,
    fresh: bool = True,
) -> ImportResult:
    """Import a persons CSV; returns counts and the row errors (also written to ``error_file``, default FILE.errors.csv).

    ``scope_prefix`` limits the buildings rows may name to a region subtree (uploads by a street officer).
    ``fail_after_chunks`` is for tests: raise after that many committed chunks to simulate an interruption.
    ``fresh``: allow the fast path of :func:`fresh_load` when the person table is empty (default); False always
    upserts in chunks of ``chunk_size``, each its own transaction.
    """
    started = time.perf_counter()
    now = clock.now()
    prepared = prepare(Path(path), today=clock.today(), scope_prefix=scope_prefix, now=now, source=source)
    result = prepared.result
    result.dry_run = dry_run
    result.run = uuid.uuid4().hex
    error_path = Path(error_file) if error_file else Path(str(path) + ".errors.csv")
    if result.errors:
        write_error_file(error_path, result.errors)
        result.error_file = str(error_path)
    if dry_run:
        result.seconds = round(time.perf_counter() - started, 3)
        return result
    created_households = None
    if prepared.new_households:
        bulk_upsert_households(prepared.new_households)
        created_households = _households(sorted({h[0] for h in prepared.new_households}))
        result.households_created = len(prepared.new_households)
    prepared.resolve_households(created_households)
    size = chunk_size or (100_000 if connection.vendor == "postgresql" else 50_000)
    with _large_cache():
        if not (fresh and fail_after_chunks is None and fresh_load(prepared, result, actor=actor, now=now)):
            _write_chunks(prepared, size, result, actor=actor, now=now, progress=progress,
                          fail_after_chunks=fail_after_chunks)
    if progress:
        progress(len(prepared), len(prepared), "persons written")
    _finish(result, actor=actor, scope_prefix=scope_prefix, refresh_counts=refresh_counts, path=path)
    result.seconds = round(time.perf_counter() - started, 3)
    return result


@contextlib.contextmanager
def _large_cache(kib: int = 512 * 1024):
    """SQLite: a large page cache while bulk writing (random-order index inserts thrash the default 2 MB cache)."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as c:
        c.execute("PRAGMA cache_size")
        previous = c.fetchone()[0]
        c.execute(f"PRAGMA cache_size = -{int(kib)}")
    try:
        yield
    finally:
        with connection.cursor() as c:
            c.execute(f"PRAGMA cache_size = {int(previous)}")


def bulk_upsert_households(rows: list[tuple]) -> None:
    """Create missing households ``(code, building_id, grid_id, unit, room, size)``; existing codes are kept."""
    with transaction.atomic():
        bulk.bulk_upsert("people_household", ["code", "building_id", "grid_id", "unit", "room"], rows,
                         conflict_columns=["code"], update_columns=[])


# --- the fresh-load fast path -------------------------------------------------------------------------------------


class _NotEmpty(Exception):
    pass


def _table_is_empty() -> bool:
    with connection.cursor() as c:
        c.execute(f"SELECT 1 FROM {PERSON_TABLE} LIMIT 1")
        return c.fetchone() is None


def fresh_load(prepared: _Prepared, result: ImportResult, *, actor, now: dt.datetime) -> bool:
    """Load into an **empty** person table in one transaction, the fast way; returns False (nothing done) if the
    table is not empty — the caller then upserts in chunks.

    The table's secondary indexes (the unique ``id_hash`` index included) are dropped, all rows are inserted
    (one ``executemany`` on SQLite, one ``COPY`` of text built column-wise on PostgreSQL) and the indexes are
    rebuilt — building an index over loaded rows is one sort, far cheaper than a million random inserts.
    PostgreSQL: the foreign keys are dropped and re-added too (re-adding validates every row in one join instead
    of a queued trigger per row and key) under an ACCESS EXCLUSIVE lock. SQLite: foreign-key enforcement is off
    during the insert (when not inside an outer transaction) and ``PRAGMA foreign_key_check`` must then find
    nothing, or the load fails and rolls back. The rows are written grouped by grid; audit: one record per grid
    listing the id range(s) written. Interrupted: the transaction rolls back and the table is empty again.
    """
    if not len(prepared) or not _table_is_empty():
        return False
    grid = prepared.columns["grid_id"]
    grid_np = grid.to_numpy(zero_copy_only=False)
    if len(grid_np) > 1 and (np.diff(grid_np) < 0).any():
        prepared.reorder(np.argsort(grid_np, kind="stable"))
    try:
        if connection.vendor == "postgresql":
            _fresh_load_postgresql(prepared, actor=actor, now=now, run=result.run)
        else:
            _fresh_load_sqlite(prepared, actor=actor, now=now, run=result.run)
    except _NotEmpty:
        return False
    result.created += len(prepared)
    return True


def _audit_fresh(*, actor, now: dt.datetime, run: str) -> None:
    with connection.cursor() as c:
        c.execute(f"SELECT grid_id, MIN(id), MAX(id), COUNT(*) FROM {PERSON_TABLE} GROUP BY grid_id")
        groups = c.fetchall()
        grid_ids, spans = [], []
        for gid, lo, hi, count in groups:
            if hi - lo + 1 == count:
                spans.append([[lo, hi]])
            else:  # not contiguous (a file not grouped by grid): list the ranges
                where = "grid_id IS NULL" if gid is None else "grid_id = %s"
                c.execute(f"SELECT id FROM {PERSON_TABLE} WHERE {where} ORDER BY id", [] if gid is None else [gid])
                spans.append(id_ranges(np.array([r[0] for r in c.fetchall()], np.int64)))
            grid_ids.append(gid)
    _audit_written(actor=actor, now=now, run=run, grid_ids=grid_ids, spans=spans)


def _fresh_load_sqlite(prepared: _Prepared, *, actor, now: dt.datetime, run: str) -> None:
    with connection.cursor() as c:
        fk_switch = not connection.in_atomic_block  # PRAGMA foreign_keys is a no-op inside a transaction
        if fk_switch:
            c.execute("PRAGMA foreign_keys = OFF")
    try:
        with transaction.atomic(), connection.cursor() as c:
            c.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s AND sql IS NOT NULL",
                      [PERSON_TABLE])
            indexes = c.fetchall()
            for name, _ in indexes:
                c.execute(f'DROP INDEX "{name}"')  # takes the write lock: nobody can add rows from here on
            c.execute(f"SELECT 1 FROM {PERSON_TABLE} LIMIT 1")
            if c.fetchone() is not None:
                raise _NotEmpty
            # Columns with one value for every row are SQL literals, not 1 M bound parameters each.
            consts = {k: v.value for k, v in prepared.columns.items() if isinstance(v, Const)}
            varying = [k for k in PERSON_COLUMNS if k not in consts]
            cols = ", ".join(varying + list(consts))
            values = ", ".join(["%s"] * len(varying) + [_sql_literal(v) for v in consts.values()])
            c.executemany(f"INSERT INTO {PERSON_TABLE} ({cols}) VALUES ({values})", prepared.rows(columns=varying))
            c.execute("PRAGMA threads = 2")  # CREATE INDEX may sort with a helper thread
            for _, sql in indexes:
                c.execute(sql)
            c.execute("PRAGMA threads = 0")
            c.execute(f"PRAGMA foreign_key_check({PERSON_TABLE})")
            bad = c.fetchmany(5)
            if bad:
                from jingkong.core.exceptions import ValidationFailed

                raise ValidationFailed(
                    "persons refer to rows that do not exist (foreign key check): "
                    + "; ".join(f"person rowid {rowid} → {parent}" for _, rowid, parent, _ in bad)
                )
            _audit_fresh(actor=actor, now=now, run=run)
    finally:
        if fk_switch:
            with connection.cursor() as c:
                c.execute("PRAGMA foreign_keys = ON")


def _fresh_load_postgresql(prepared: _Prepared, *, actor, now: dt.datetime, run: str) -> None:
    with transaction.atomic(), connection.cursor() as c:
        c.execute(f"LOCK TABLE {PERSON_TABLE} IN ACCESS EXCLUSIVE MODE")
        c.execute(f"SELECT 1 FROM {PERSON_TABLE} LIMIT 1")
        if c.fetchone() is not None:
            raise _NotEmpty
        c.execute(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
            " WHERE x.indrelid = %s::regclass AND NOT EXISTS"
            " (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)", [PERSON_TABLE])
        indexes = c.fetchall()
        c.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass"
                  " AND contype = 'f'", [PERSON_TABLE])
        fkeys = c.fetchall()
        # Inside an outer transaction, deferred checks queued on the referenced tables would forbid ALTER TABLE:
        # run them now (the same checks, earlier), and defer again at the end (Django's FKs are all deferred).
        c.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for name, _ in fkeys:
            c.execute(f'ALTER TABLE {PERSON_TABLE} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            c.execute(f'DROP INDEX "{name}"')
        step = 200_000
        with c.cursor.copy(f"COPY {PERSON_TABLE} ({', '.join(PERSON_COLUMNS)}) FROM STDIN") as copy:
            for i in range(0, len(prepared), step):
                copy.write(prepared.copy_text(i, i + step))
        c.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for _, sql in indexes:
            c.execute(sql)
        for name, definition in fkeys:
            c.execute(f'ALTER TABLE {PERSON_TABLE} ADD CONSTRAINT "{name}" {definition}')
        c.execute("SET CONSTRAINTS ALL DEFERRED")
        c.execute(f"ANALYZE {PERSON_TABLE}")
        _audit_fresh(actor=actor, now=now, run=run)


# --- the chunked upsert (re-imports) ------------------------------------------------------------------------------


def _write_chunks(prepared: _Prepared, size, result, *, actor, now, progress, fail_after_chunks) -> None:
    total = len(prepared)
    for chunk_no, i in enumerate(range(0, total, size)):
        if fail_after_chunks is not None and chunk_no >= fail_after_chunks:
            raise RuntimeError(f"simulated interruption after {chunk_no} chunks")
        count = min(i + size, total) - i
        created_n, written_n = _write_chunk(prepared, i, i + size, actor=actor, now=now, run=result.run)
        result.created += created_n
        result.updated += written_n - created_n
        result.unchanged += count - written_n
        if progress:
            progress(min(i + size, total), total, "persons written")


def _write_chunk(prepared: _Prepared, start: int, stop: int, *, actor, now: dt.datetime, run: str) -> tuple[int, int]:
    """Upsert rows ``start:stop`` and audit the written ones (one record per grid), in one transaction.
    Returns (new, written): rows identical to the stored person are neither rewritten nor audited."""
    keys = prepared.columns["id_hash"][start:stop]
    with transaction.atomic(), connection.cursor() as c:
        bulk.temp_keys(KEYS_TABLE, ["id_hash"], ((k,) for k in keys))
        c.execute(f"SELECT COUNT(*) FROM {PERSON_TABLE} p JOIN {KEYS_TABLE} k ON k.id_hash = p.id_hash")
        created = len(keys) - c.fetchone()[0]
        if connection.vendor == "postgresql":
            _upsert_postgresql(c, prepared, start, stop)
        else:
            marks = ", ".join(["%s"] * len(PERSON_COLUMNS))
            action = ", ".join(f"{col} = excluded.{col}" for col in PERSON_UPDATE)
            c.executemany(
                f"INSERT INTO {PERSON_TABLE} ({', '.join(PERSON_COLUMNS)}) VALUES ({marks})"
                f" ON CONFLICT (id_hash) DO UPDATE SET {action} WHERE {_changed('excluded', 'IS NOT')}",
                prepared.rows(start, stop))
        # Written by this run (new, or changed): their updated_at is this run's stamp; unchanged rows keep theirs.
        c.execute(f"SELECT p.grid_id, p.id FROM {PERSON_TABLE} p JOIN {KEYS_TABLE} k ON k.id_hash = p.id_hash"
                  " WHERE p.updated_at = %s ORDER BY p.grid_id, p.id", [bulk.db_datetime(now)])
        written = c.fetchall()
        c.execute(f"DROP TABLE IF EXISTS {KEYS_TABLE}")
        grid_ids, spans = [], []
        for gid, members in itertools.groupby(written, key=lambda r: r[0]):
            grid_ids.append(gid)
            spans.append(id_ranges(np.array([r[1] for r in members], np.int64)))
        _audit_written(actor=actor, now=now, run=run, grid_ids=grid_ids, spans=spans)
    return created, len(written)


def _changed(new: str, differs: str) -> str:
    """SQL: some stored column differs from the incoming row (null-safe) — unchanged rows are not rewritten, so a
    re-run of the same file writes nothing and keeps ``updated_at``."""
    return "(" + " OR ".join(f"{PERSON_TABLE}.{col} {differs} {new}.{col}" for col in PERSON_UPDATE
                             if col != "updated_at") + ")"


def _upsert_postgresql(c, prepared: _Prepared, start: int, stop: int) -> None:
    stage = "_jk_stage_people_person"
    cols = ", ".join(PERSON_COLUMNS)
    c.execute(f"DROP TABLE IF EXISTS {stage}")
    c.execute(f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {cols} FROM {PERSON_TABLE} WITH NO DATA")
    with c.cursor.copy(f"COPY {stage} ({cols}) FROM STDIN") as copy:
        copy.write(prepared.copy_text(start, stop))
    action = ", ".join(f"{col} = EXCLUDED.{col}" for col in PERSON_UPDATE)
    c.execute(f"INSERT INTO {PERSON_TABLE} ({cols}) SELECT {cols} FROM {stage} ON CONFLICT (id_hash)"
              f" DO UPDATE SET {action} WHERE {_changed('EXCLUDED', 'IS DISTINCT FROM')}")
    c.execute(f"DROP TABLE {stage}")


# --- audit --------------------------------------------------------------------------------------------------------

IMPORT_ACTION = "person.import"


def id_ranges(ids: np.ndarray) -> list[list[int]]:
    """Sorted ids as inclusive ``[first, last]`` ranges of consecutive ids: ``[1, 2, 3, 7]`` → ``[[1, 3], [7, 7]]``."""
    if not len(ids):
        return []
    ids = np.sort(ids)
    breaks = np.flatnonzero(np.diff(ids) != 1)
    starts = np.concatenate(([ids[0]], ids[breaks + 1]))
    ends = np.concatenate((ids[breaks], [ids[-1]]))
    return [[int(a), int(b)] for a, b in zip(starts, ends, strict=True)]


def in_ranges(person_id: int, ranges: list) -> bool:
    return any(a <= person_id <= b for a, b in ranges)


def _audit_written(*, actor, now: dt.datetime, run: str, grid_ids: list, spans: list[list[list[int]]]) -> None:
    """One audit record per grid of the persons just written (who, when, what: the id ranges, from where: the
    import run). ``detail``: ``{"run", "ids": [[first, last], …], "first", "last", "count"}``; the region code
    is the grid's, so the record is visible in the same scopes as the persons."""
    from jingkong.access.models import AuditLog

    codes = bulk.code_map("geo_region", key="id", value="code")
    who = {"user_id": getattr(actor, "pk", None), "username": (getattr(actor, "username", "") or "system")[:150],
           "role": (getattr(actor, "role", "") or "")[:32]}
    records = [
        AuditLog(at=now, action=IMPORT_ACTION, object_type="people.person", object_id="",
                 region_code=codes.get(gid, "") if gid is not None else "", ip=None, user_agent="import",
                 detail={"run": run, "ids": ranges, "first": ranges[0][0], "last": ranges[-1][1],
                         "count": sum(b - a + 1 for a, b in ranges)}, **who)
        for gid, ranges in zip(grid_ids, spans, strict=True) if ranges
    ]
    AuditLog.objects.bulk_create(records, batch_size=2000)


def _finish(result: ImportResult, *, actor, scope_prefix: str, refresh_counts: bool, path) -> None:
    from jingkong.access import audit
    from jingkong.core.events import emit

    with transaction.atomic():
        if refresh_counts:
            from jingkong.geo.services import region_counts_refresh

            region_counts_refresh(actor=actor)
        counts = {"rows": result.rows, "created": result.created, "updated": result.updated,
                  "rejected": result.rejected, "households_created": result.households_created, "run": result.run}
        audit.record(actor=actor, action="people.import", object_type="people.person", region_code=scope_prefix,
                     detail=counts | {"file": Path(path).name}, source="import")
        emit("people.imported", region_code=scope_prefix, actor=actor, payload=counts)
