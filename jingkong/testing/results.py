"""Tube results (检测结果): parsing, validation and set-based application with pool deconvolution.

Entry points

* :func:`results_apply` — apply validated result rows of one lab (JSON entry, CSV, FHIR all end here);
* :func:`parse_csv` — a lab's CSV export (UTF-8/GBK/GB18030, English or Chinese headers, Ct columns per gene);
* :func:`load_results_file` and the job ``testing.load_results`` — a file (``.csv`` or FHIR ``.json``) end to end,
  with an error CSV; ``jingkong testing load-results FILE --lab CODE`` runs it from the command line.

What is checked, row by row (every problem is reported with the row, the field and the reason; good rows are kept):
unknown tube; a tube received by (or addressed to) another lab; a tube without any recorded swab (the sampling data
has not arrived yet: send the result again later); a result time in the future or before the tube's first swab; a
tube already resulted with a *different* outcome, Ct values, test time, instrument or operator (a conflict: the
stored result stays, the row is reported); the same tube twice in one upload with different values (all its rows are
rejected — a file contradicting itself decides nothing). An identical re-send is ``unchanged`` and writes nothing, so
re-running an upload is harmless.

Application (per chunk of tubes, one transaction each; a chunk commits whole or not at all): TubeResult rows, the
tubes' outcome/status/resulted time, then deconvolution (:mod:`jingkong.testing.deconvolution`) for every swab —
PersonTestState upserts, retest/resample tasks created and resolved — with executemany/COPY, never per-person ORM
saves. ``Tube.resulted_at`` is the time the platform recorded the result (the "result out" moment of the turnaround);
the lab's own test time is ``TubeResult.tested_at``.

Events (inside the transaction): ``testing.pool_positive`` and ``testing.tube_invalid`` per tube,
``testing.individual_positive`` per positive person (the tracing feature subscribes to it; payload in
:func:`_positive_event`), and one ``testing.results_applied`` summary per upload. Audit: every person whose control
status changes (control in place started or lifted, individual positive, resampling ordered) gets one record;
routine negatives are audited as one record per grid and chunk listing the person id ranges.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import math
import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from itertools import repeat
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from django.db import connection, transaction

from jingkong.access import audit
from jingkong.core import bulk, clock, jobs
from jingkong.core.events import emit, emit_many
from jingkong.core.exceptions import ValidationFailed
from jingkong.testing import deconvolution as dc
from jingkong.testing import labs as lab_rules
from jingkong.testing.models import Lab, ResultSource

MAX_JSON_ROWS = 5_000  # larger uploads go through the file upload (a background job)
CHUNK_TUBES = 20_000
FUTURE_TOLERANCE = dt.timedelta(minutes=10)  # device clocks drift a little
CT_MIN, CT_MAX = 0.0, 50.0

# --- vocabulary --------------------------------------------------------------------------------------------------

TUBE_ALIASES = ("tube", "barcode", "tube_barcode", "tube_code", "管码", "样本管编号", "采样管编号", "采样管条码",
                "样本编号", "样本条码", "条码", "管号")
HEADER_ALIASES: dict[str, str] = {a.lower(): "tube" for a in TUBE_ALIASES} | {
    "outcome": "outcome", "result": "outcome", "结果": "outcome", "检测结果": "outcome", "核酸结果": "outcome",
    "instrument": "instrument", "device": "instrument", "仪器": "instrument", "检测仪器": "instrument",
    "仪器编号": "instrument",
    "operator": "operator", "technician": "operator", "检测人": "operator", "检测人员": "operator",
    "检验者": "operator", "操作员": "operator",
    "tested_at": "tested_at", "test_time": "tested_at", "检测时间": "tested_at", "检测日期时间": "tested_at",
    "检验时间": "tested_at",
}
OUTCOME_WORDS = {
    "negative": "negative", "neg": "negative", "-": "negative", "阴性": "negative", "阴": "negative",
    "未检出": "negative", "not detected": "negative", "not_detected": "negative",
    "positive": "positive", "pos": "positive", "+": "positive", "阳性": "positive", "阳": "positive",
    "检出": "positive", "detected": "positive",
    "invalid": "invalid", "inv": "invalid", "无效": "invalid", "样本无效": "invalid",
}
# Target genes of SARS-CoV-2 RT-PCR kits, keyed by a normalised spelling.
GENES = {"orf1ab": "ORF1ab", "orf1a": "ORF1ab", "orf1": "ORF1ab", "orf": "ORF1ab", "n": "N", "e": "E",
         "rdrp": "RdRp", "s": "S", "ic": "IC", "内标": "IC"}
NO_CT = {"", "-", "/", "n/a", "na", "none", "undetermined", "undet", "no ct", "noct", "未检出", "无", "无ct", ">40",
         "阴性"}
_GENE_CLEAN = re.compile(r"[\s_\-()（）\[\]:：]|ct值|ct|基因|值|gene|target", re.IGNORECASE)


def parse_outcome(value: str) -> str:
    word = (value or "").strip().lower()
    if word in OUTCOME_WORDS:
        return OUTCOME_WORDS[word]
    raise ValueError(f"unknown result {value!r}: use negative/positive/invalid (阴性/阳性/无效)")


def gene_name(header: str, *, ct_column: bool = False) -> str | None:
    """The canonical target gene of a header or code text (``ct_orf1ab``, ``ORF1ab``, ``N基因``, ``Ct值(E)``).

    ``ct_column``: the name must say it is a Ct (ct_…, …Ct值) or be a known gene name by itself.
    """
    raw = (header or "").strip()
    if not raw:
        return None
    cleaned = _GENE_CLEAN.sub("", raw.lower())
    if cleaned in GENES:
        return GENES[cleaned]
    if not ct_column and re.fullmatch(r"[a-z0-9]{1,12}", cleaned):
        return cleaned.upper()
    return None


def parse_ct(value) -> float | None:
    """A Ct value: a number in (0, 50], or an empty / "undetermined" / "未检出" marker (no amplification: None)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("a Ct value must be a number")
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip()
        if text.lower() in NO_CT:
            return None
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a Ct value (a number up to {CT_MAX:g}, or empty)") from None
    if not math.isfinite(number) or not (CT_MIN < number <= CT_MAX):
        raise ValueError(f"Ct {number:g} is outside ({CT_MIN:g}, {CT_MAX:g}]")
    return round(number, 2)


def parse_time(value, *, tz: str | None = None) -> dt.datetime | None:
    """A test time: ISO 8601 or ``YYYY-MM-DD HH:MM[:SS]`` / ``YYYY/MM/DD HH:MM``; local time (Asia/Shanghai by
    default) unless an offset is given. Empty: None."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        moment = value
    else:
        text = str(value).strip()
        if not text:
            return None
        text = text.replace("/", "-").replace("Z", "+00:00").replace("z", "+00:00")
        if re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", text):
            raise ValueError(f"{value!r} has no time of day")
        m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})([ T])(\d{1,2}):(\d{2})(.*)", text)
        if m:  # pad single-digit month/day/hour (lab exports write 2022-1-5 8:30)
            y, mo, d, sep, h, mi, rest = m.groups()
            text = f"{y}-{int(mo):02d}-{int(d):02d}{sep}{int(h):02d}:{mi}{rest}"
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is not a date and time (use 2022-01-05 08:30 or ISO 8601)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(tz or clock.local_time_zone()))
    return _utc(moment, value)


def _utc(moment: dt.datetime, value=None) -> dt.datetime:
    """``moment`` in UTC; a time at the very edge of the calendar (year 1, year 9999) that cannot be moved to UTC is
    a ValueError naming the value (an OverflowError would be a 500)."""
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError(f"{value if value is not None else moment.isoformat()!r} is out of range") from None


def safe_text(value) -> str:
    """Text for reports, events and job results: a NUL character shown as ``\\x00`` (PostgreSQL refuses NUL in text
    and JSON, so a report naming a bad value would fail to be stored)."""
    return str(value).replace("\x00", "\\x00")


# --- rows, errors, report -----------------------------------------------------------------------------------------


@dataclass
class ResultRow:
    """One tube result as entered: ``row`` names it in error reports (CSV line, FHIR entry index, list index)."""

    row: int
    tube: str
    outcome: str
    ct_values: dict = field(default_factory=dict)
    instrument: str = ""
    operator: str = ""
    tested_at: dt.datetime | None = None
    # False when the row gave no test time (the time of the upload stands in): a re-send of such a row is compared
    # without its time, so re-running the same file is "unchanged", not a conflict.
    time_given: bool = True


@dataclass
class RowError:
    row: int
    field: str
    reason: str
    tube: str = ""


@dataclass
class ResultReport:
    rows: int = 0
    accepted: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    tubes_negative: int = 0
    tubes_pool_positive: int = 0
    tubes_positive: int = 0
    tubes_invalid: int = 0
    persons_updated: int = 0
    persons_controlled: int = 0
    persons_positive: int = 0
    persons_resample: int = 0
    controls_lifted: int = 0
    tasks_created: int = 0
    tasks_resolved: int = 0
    tasks_reopened: int = 0
    source: str = ""
    source_ref: str = ""
    encoding: str = ""
    error_file: str = ""
    seconds: float = 0.0

    @property
    def rejected_rows(self) -> int:
        return len({e.row for e in self.errors})

    def error(self, row, field_name: str, reason: str, tube: str = "") -> None:
        self.errors.append(RowError(row, field_name, reason, tube))

    def as_dict(self, *, max_errors: int | None = None) -> dict:
        out = asdict(self)
        errors = sorted(self.errors, key=lambda e: (e.row, e.field))
        out["errors"] = [{"row": e.row, "field": safe_text(e.field), "reason": safe_text(e.reason),
                          "tube": safe_text(e.tube)} for e in (errors if max_errors is None else errors[:max_errors])]
        out["error_count"] = len(self.errors)
        out["rejected"] = self.rejected_rows
        return out

    def summary(self) -> dict:
        """For job results and events: counts and the first errors."""
        return self.as_dict(max_errors=20)


def _cell(value) -> str:
    """Neutralise spreadsheet formulas in free text (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(("=", "+", "-", "@", "\t", "\r")) else text


def _error_records(errors: Sequence[RowError], row_label: str):
    yield [row_label, "tube", "field", "reason"]
    for e in sorted(errors, key=lambda e: (e.row, e.field)):
        yield [e.row, _cell(safe_text(e.tube)), safe_text(e.field), _cell(safe_text(e.reason))]


def write_error_file(path: str | Path, errors: Sequence[RowError], *, row_label: str = "row") -> None:
    with open(path, "w", newline="", encoding="utf-8-sig") as fh:
        csv.writer(fh).writerows(_error_records(errors, row_label))


def error_csv_text(errors: Sequence[RowError], *, row_label: str = "row") -> str:
    """The rejected rows as CSV text (the same columns as the error file)."""
    import io

    buf = io.StringIO()
    csv.writer(buf).writerows(_error_records(errors, row_label))
    return buf.getvalue()


# --- CSV ---------------------------------------------------------------------------------------------------------


def parse_csv(data: bytes) -> tuple[list[ResultRow], list[RowError], str]:
    """Rows of a lab's CSV export: ``(rows, errors, encoding)``; rows are numbered by their physical line.

    Columns (English or Chinese headers): tube (管码/样本管编号), outcome (结果: 阴性/阳性/无效), one column per target
    gene for Ct values (ct_orf1ab, ct_n, ct_e, ORF1ab, N基因, …), instrument (仪器), operator (检测人), tested_at
    (检测时间, local time unless an offset is given; empty: the time of the upload). A file without a tube column, or
    that is not text CSV at all, is refused as a whole with one error.
    """
    from jingkong.people.csvread import canonical_header, decode_bytes, read_csv

    if not data or not data.strip():
        raise ValidationFailed("the file is empty", extra={"field": "file"})
    if b"\x00" in data[:4096]:
        raise ValidationFailed("the file is not a CSV text file (binary content)", extra={"field": "file"})
    try:
        text, encoding = decode_bytes(data)
    except ValueError as exc:
        raise ValidationFailed(str(exc), extra={"field": "file"}) from None
    first = text.split(b"\n", 1)[0].decode("utf-8", errors="replace").rstrip("\r")
    try:
        header = next(csv.reader([first]))
    except csv.Error:
        header = []
    aliases = dict(HEADER_ALIASES)
    ct_columns: dict[str, str] = {}
    for raw in header:
        key = raw.strip().lstrip("\ufeff").strip().lower()
        if key in aliases:
            continue
        gene = gene_name(raw, ct_column=True)
        if gene:
            canonical = f"ct:{gene}"
            if canonical in ct_columns.values():
                raise ValidationFailed(f"line 1: two columns give the Ct of {gene}", extra={"line": 1, "field": raw})
            aliases[key] = canonical
            ct_columns[key] = canonical
    names, _unknown = canonical_header(header, aliases)
    if "tube" not in names:
        raise ValidationFailed(
            "line 1: no tube column (tube / 管码 / 样本管编号) in the header"
            + (f" {header[:8]}" if header else "") + ": is this a lab results CSV?",
            extra={"line": 1, "field": "tube"})
    if "outcome" not in names:
        raise ValidationFailed("line 1: no result column (outcome / 结果) in the header", extra={"line": 1,
                                                                                          "field": "outcome"})
    expected = ["tube", "outcome", "instrument", "operator", "tested_at", *ct_columns.values()]
    table = read_csv(data, aliases=aliases, expected=expected)
    errors = [RowError(line, "record", reason) for line, reason in table.malformed]
    cols = {name: table.table.column(name).to_pylist() for name in expected}
    lines = table.lines.tolist()
    rows: list[ResultRow] = []
    ct_items = [(c, c[3:]) for c in ct_columns.values()]
    tz = clock.local_time_zone()
    for i, line in enumerate(lines):
        tube = cols["tube"][i].strip()
        bad = False
        if not tube:
            errors.append(RowError(line, "tube", "empty tube barcode"))
            bad = True
        try:
            outcome = parse_outcome(cols["outcome"][i])
        except ValueError as exc:
            errors.append(RowError(line, "outcome", str(exc), tube))
            bad, outcome = True, ""
        ct: dict[str, float] = {}
        for column, gene in ct_items:
            try:
                value = parse_ct(cols[column][i])
            except ValueError as exc:
                errors.append(RowError(line, f"ct_{gene}", str(exc), tube))
                bad = True
                continue
            if value is not None:
                ct[gene] = value
        try:
            tested_at = parse_time(cols["tested_at"][i], tz=tz)
        except ValueError as exc:
            errors.append(RowError(line, "tested_at", str(exc), tube))
            bad, tested_at = True, None
        if bad:
            continue
        rows.append(ResultRow(line, tube, outcome, ct, cols["instrument"][i].strip(), cols["operator"][i].strip(),
                              tested_at))
    return rows, errors, encoding


# --- validation of rows of any origin ------------------------------------------------------------------------------


def _check_row(row: ResultRow, report: ResultReport, now: dt.datetime) -> ResultRow | None:
    ok = True
    tube = str(row.tube or "").strip()
    if not tube:
        report.error(row.row, "tube", "empty tube barcode")
        ok = False
    elif "\x00" in tube:
        report.error(row.row, "tube", "the tube barcode contains a NUL character", tube[:40])
        ok = False
    elif len(tube) > 40:
        report.error(row.row, "tube", "a tube barcode has at most 40 characters", tube[:40])
        ok = False
    try:
        outcome = parse_outcome(row.outcome)
    except ValueError as exc:
        report.error(row.row, "outcome", str(exc), tube)
        ok, outcome = False, ""
    ct: dict[str, float] = {}
    if not isinstance(row.ct_values, dict):
        report.error(row.row, "ct_values", "Ct values must be an object {gene: value}", tube)
        ok = False
    else:
        for key, value in row.ct_values.items():
            gene = gene_name(str(key))
            if gene is None or len(gene) > 16:
                report.error(row.row, f"ct_values.{key}", "not a target gene name", tube)
                ok = False
                continue
            try:
                number = parse_ct(value)
            except ValueError as exc:
                report.error(row.row, f"ct_values.{key}", str(exc), tube)
                ok = False
                continue
            if number is not None:
                ct[gene] = number
    texts = {}
    for name in ("instrument", "operator"):
        value = str(getattr(row, name) or "").strip()
        if len(value) > 64:
            report.error(row.row, name, "at most 64 characters", tube)
            ok = False
        elif "\x00" in value:
            report.error(row.row, name, "contains a NUL character", tube)
            ok = False
        texts[name] = value
    tested_at = row.tested_at
    time_given = tested_at is not None
    if tested_at is None:
        tested_at = now
    elif tested_at.tzinfo is None:
        tested_at = tested_at.replace(tzinfo=ZoneInfo(clock.local_time_zone()))
    try:
        tested_at = _utc(tested_at)
    except ValueError as exc:
        report.error(row.row, "tested_at", str(exc), tube)
        return None
    if tested_at > now + FUTURE_TOLERANCE:
        report.error(row.row, "tested_at", f"{tested_at.isoformat()} is in the future", tube)
        ok = False
    if not ok:
        return None
    return ResultRow(row.row, tube, outcome, ct, texts["instrument"], texts["operator"], tested_at, time_given)


def _same_ct(a: dict, b: dict) -> bool:
    if set(a) != set(b):
        return False
    return all(abs(float(a[k]) - float(b[k])) < 0.005 for k in a)


def _differences(stored: dict, new: ResultRow) -> list[str]:
    """Fields in which a re-sent result differs from the stored one (empty: identical)."""
    out = []
    if stored["outcome"] != new.outcome:
        out.append(f"outcome {stored['outcome']} ≠ {new.outcome}")
    if not _same_ct(stored["ct_values"] or {}, new.ct_values):
        out.append(f"Ct {json.dumps(stored['ct_values'] or {}, sort_keys=True)} ≠ {json.dumps(new.ct_values, sort_keys=True)}")
    if stored["tested_at"] is not None and new.time_given and stored.get("time_given", True) \
            and abs((stored["tested_at"] - new.tested_at).total_seconds()) >= 1:
        out.append(f"tested_at {stored['tested_at'].isoformat()} ≠ {new.tested_at.isoformat()}")
    for name in ("instrument", "operator"):
        if stored[name] and getattr(new, name) and stored[name] != getattr(new, name):
            out.append(f"{name} {stored[name]!r} ≠ {getattr(new, name)!r}")
    return out


def _dedupe(rows: list[ResultRow], report: ResultReport) -> list[ResultRow]:
    """One row per tube. Identical repeats count as unchanged; contradicting repeats reject every row of the tube."""
    by_tube: dict[str, list[ResultRow]] = defaultdict(list)
    for r in rows:
        by_tube[r.tube].append(r)
    out = []
    for tube, group in by_tube.items():
        if len(group) == 1:
            out.append(group[0])
            continue
        group.sort(key=lambda r: not r.time_given)  # keep a row that gives the test time
        first = group[0]
        as_stored = {"outcome": first.outcome, "ct_values": first.ct_values, "tested_at": first.tested_at,
                     "instrument": first.instrument, "operator": first.operator, "time_given": first.time_given}
        if all(not _differences(as_stored, r) for r in group[1:]):
            out.append(first)
            report.unchanged += len(group) - 1
            continue
        rows_named = ", ".join(str(r.row) for r in group)
        for r in group:
            report.error(r.row, "tube", f"tube {tube} appears on rows {rows_named} with different results: none "
                                        "of them is applied", tube)
    return out


# --- database helpers ----------------------------------------------------------------------------------------------

UTC = dt.UTC


def _is_pg() -> bool:
    return connection.vendor == "postgresql"


def _dt_expr(column: str) -> str:
    """Select a datetime column as text, read by :func:`_read_dt` (C-level ``fromisoformat``) only when needed:
    SQLite gives its stored text (no regex converter per value); PostgreSQL ISO text in UTC (:func:`_pg_session`),
    which COPY takes back as is."""
    return f"({column})::text" if _is_pg() else f"({column} || '')"


def _pg_session(cursor) -> None:
    """PostgreSQL: datetimes as ISO text in UTC for this transaction (what _dt_expr and _stored_form rely on)."""
    if _is_pg():
        cursor.execute("SET LOCAL datestyle = 'ISO, YMD'")
        cursor.execute("SET LOCAL timezone = 'UTC'")


def _read_dt(value):
    if value is None or isinstance(value, dt.datetime):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value
    moment = dt.datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _db_dt(value):
    """A UTC datetime in the form the backend stores (SQLite: naive ISO text, PostgreSQL: the datetime)."""
    if value is None or _is_pg():
        return value
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")


def _temp_table(cursor, name: str, columns: Sequence[tuple[str, str]], rows: Iterable[Sequence]) -> None:
    """(Re)create a typed temporary table holding ``rows`` (dropped at commit on PostgreSQL)."""
    q = connection.ops.quote_name
    cursor.execute(f"DROP TABLE IF EXISTS {q(name)}")
    cols = ", ".join(f"{q(c)} {t}" for c, t in columns)
    if _is_pg():
        cursor.execute(f"CREATE TEMP TABLE {q(name)} ({cols}) ON COMMIT DROP")
        bulk.copy_rows(cursor.cursor, name, [c for c, _ in columns], rows)
    else:
        cursor.execute(f"CREATE TEMP TABLE {q(name)} ({cols})")
        marks = ", ".join(["%s"] * len(columns))
        cursor.executemany(f"INSERT INTO {q(name)} VALUES ({marks})", list(rows))
    cursor.execute(f"ANALYZE {q(name)}")


@contextlib.contextmanager
def _sqlite_cache(kib: int = 256 * 1024):
    """SQLite: a large page cache and in-memory temporary tables while applying (the swabs of a large upload are
    read by tube, in random order; the 2 MB default cache would re-read pages from disk)."""
    if _is_pg():
        yield
        return
    outside = not connection.in_atomic_block  # temp_store cannot change inside a transaction
    with connection.cursor() as c:
        c.execute("PRAGMA cache_size")
        cache = c.fetchone()[0]
        c.execute(f"PRAGMA cache_size = -{int(kib)}")
        if outside:
            c.execute("PRAGMA temp_store")
            temp = c.fetchone()[0]
            c.execute("PRAGMA temp_store = MEMORY")
    try:
        yield
    finally:
        with connection.cursor() as c:
            c.execute(f"PRAGMA cache_size = {int(cache)}")
            if outside:
                c.execute(f"PRAGMA temp_store = {int(temp)}")


def _drop(cursor, *names: str) -> None:
    for name in names:
        cursor.execute(f"DROP TABLE IF EXISTS {connection.ops.quote_name(name)}")


# --- application -----------------------------------------------------------------------------------------------------


@dataclass
class _Tube:
    id: int
    barcode: str
    kind: str
    capacity: int
    status: str
    lab_id: int | None
    batch_lab_id: int | None
    region_code: str
    campaign_id: int | None
    campaign_code: str | None
    opened_at: dt.datetime | None
    stored: dict | None  # the accepted result, if any


def results_apply(*, actor, lab: Lab, rows: Iterable[ResultRow], source: str = ResultSource.API, source_ref: str = "",
                  errors: Iterable[RowError] = (), request=None, now: dt.datetime | None = None,
                  chunk_size: int = CHUNK_TUBES, progress: Callable | None = None) -> ResultReport:
    """Apply tube results of ``lab``: returns the report (accepted, unchanged, errors [{row, field, reason}]).

    ``errors``: problems the parser already found (they are part of the report). The actor must be allowed to work
    for the lab (:func:`jingkong.testing.labs.ensure_can_operate`). Chunks of ``chunk_size`` tubes are applied in
    one transaction each; a re-run after an interruption finds the committed chunks unchanged.
    """
    started = time.perf_counter()
    lab_rules.ensure_can_operate(actor, lab)
    if "\x00" in (source_ref or ""):
        raise ValidationFailed("source_ref: contains a NUL character", extra={"field": "source_ref"})
    now = now or clock.now()
    report = ResultReport(source=str(source), source_ref=source_ref[:128])
    report.errors.extend(errors)
    rows = list(rows)
    report.rows = len(rows) + len({e.row for e in report.errors})
    checked = [r for r in (_check_row(r, report, now) for r in rows) if r is not None]
    unique = _dedupe(checked, report)
    run = uuid.uuid4().hex
    total = len(unique)
    with _sqlite_cache():
        for start in range(0, total, chunk_size):
            chunk = unique[start:start + chunk_size]
            with transaction.atomic():
                _apply_chunk(chunk, lab=lab, actor=actor, now=now, report=report, source=str(source),
                             source_ref=source_ref, run=run, request=request)
            if progress:
                progress(min(start + chunk_size, total), total, "tubes applied")
    with transaction.atomic():
        emit("testing.results_applied", subject=lab, region_code=lab.region_code, actor=actor, at=now,
             payload={k: v for k, v in report.summary().items() if k not in ("errors", "seconds")} | {"run": run})
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _fetch_tubes(cursor, barcodes: list[str]) -> dict[str, _Tube]:
    _temp_table(cursor, "_jk_res_barcodes", [("barcode", "varchar(40)")], ([b] for b in barcodes))
    if _is_pg():
        # Lock the tubes first (in barcode order, as the sampling service does: no deadlock), then read them and
        # their results in a new statement: under READ COMMITTED a statement that waited for a lock still sees the
        # other transaction's new TubeResult rows as absent, so locking and reading must be two statements.
        cursor.execute("SELECT t.id FROM _jk_res_barcodes k JOIN testing_tube t ON t.barcode = k.barcode "
                       "ORDER BY t.barcode FOR UPDATE OF t")
    cursor.execute(
        "SELECT t.id, t.barcode, t.kind, t.capacity, t.status, t.lab_id, b.lab_id, t.region_code, t.campaign_id, "
        f"c.code, {_dt_expr('t.opened_at')}, r.outcome, r.ct_values, r.instrument, r.operator, "
        f"{_dt_expr('r.tested_at')}, r.lab_id "
        "FROM _jk_res_barcodes k JOIN testing_tube t ON t.barcode = k.barcode "
        "LEFT JOIN testing_transportbatch b ON b.id = t.batch_id "
        "LEFT JOIN testing_campaign c ON c.id = t.campaign_id "
        "LEFT JOIN testing_tuberesult r ON r.tube_id = t.id")
    out = {}
    for (tid, barcode, kind, capacity, status, lab_id, batch_lab, region, campaign_id, campaign_code, opened,
         r_outcome, r_ct, r_instrument, r_operator, r_tested, r_lab) in cursor.fetchall():
        stored = None
        if r_outcome is not None:
            ct = json.loads(r_ct) if isinstance(r_ct, str) else (r_ct or {})
            stored = {"outcome": r_outcome, "ct_values": ct, "instrument": r_instrument or "",
                      "operator": r_operator or "", "tested_at": _read_dt(r_tested), "lab_id": r_lab}
        out[barcode] = _Tube(tid, barcode, kind, capacity, status, lab_id, batch_lab, region, campaign_id,
                             campaign_code, _read_dt(opened), stored)
    return out


# PostgreSQL: one transaction-level advisory lock serialises the application of result chunks (any lab, any upload).
# Two uploads touching the same person in different tubes (a routine pool here, a retest there) would otherwise
# both read the person's state before either writes it, and the later upsert would silently undo the other (a
# person under control back to "negative"). Row locks cannot cover persons without a state row yet, and locking
# hundreds of thousands of person rows per chunk costs more than waiting: a chunk takes seconds. SQLite serialises
# writers already (BEGIN IMMEDIATE).
APPLY_LOCK = 0x6A6B_7265_7375_6C74  # "jkresult"


def _serialise(cursor) -> None:
    if _is_pg():
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [APPLY_LOCK])


def _apply_chunk(rows: list[ResultRow], *, lab: Lab, actor, now: dt.datetime, report: ResultReport, source: str,
                 source_ref: str, run: str, request) -> None:
    with connection.cursor() as cursor:
        _pg_session(cursor)
        _serialise(cursor)
        tubes = _fetch_tubes(cursor, [r.tube for r in rows])
        candidates: list[tuple[ResultRow, _Tube]] = []
        for r in rows:
            tube = tubes.get(r.tube)
            if tube is None:
                report.error(r.row, "tube", f"unknown tube {r.tube}: no swab was ever scanned into it", r.tube)
                continue
            if tube.stored is not None:
                diffs = _differences(tube.stored, r)
                if not diffs:
                    report.unchanged += 1
                elif tube.stored["lab_id"] != lab.pk:
                    report.error(r.row, "tube", f"tube {r.tube} was already resulted by another lab", r.tube)
                else:
                    report.error(r.row, "outcome" if diffs[0].startswith("outcome") else "result",
                                 "conflicts with the result accepted earlier (" + "; ".join(diffs)
                                 + "): the accepted result stays; correct it through the lab supervisor", r.tube)
                continue
            if tube.lab_id is not None and tube.lab_id != lab.pk:
                report.error(r.row, "tube", f"tube {r.tube} was received by another lab", r.tube)
                continue
            if tube.lab_id is None and tube.batch_lab_id is not None and tube.batch_lab_id != lab.pk:
                report.error(r.row, "tube", f"tube {r.tube} is in a transport batch addressed to another lab", r.tube)
                continue
            if tube.opened_at is not None and r.tested_at < tube.opened_at - FUTURE_TOLERANCE:
                report.error(r.row, "tested_at", f"{r.tested_at.isoformat()} is before the tube's first swab "
                                                 f"({tube.opened_at.isoformat()})", r.tube)
                continue
            candidates.append((r, tube))
        if not candidates:
            _drop(cursor, "_jk_res_barcodes")
            return
        members = _fetch_members(cursor, [t.id for _, t in candidates])
        accepted: list[tuple[ResultRow, _Tube]] = []
        for r, tube in candidates:
            if not members.count.get(tube.id):
                report.error(r.row, "tube", f"no swab is recorded in tube {r.tube} yet (sampling data not synchronised?):"
                                            " send this result again once it is", r.tube)
                continue
            accepted.append((r, tube))
        if accepted:
            _write_results(cursor, accepted, lab=lab, actor=actor, now=now, source=source, source_ref=source_ref)
            report.accepted += len(accepted)
            _deconvolve(cursor, accepted, members, lab=lab, actor=actor, now=now, report=report, run=run,
                        source_ref=source_ref, request=request)
        _drop(cursor, "_jk_res_barcodes", "_jk_res_tubes", "_jk_res_members")


@dataclass
class _Members:
    """The swabs of a chunk's tubes, as columns (one entry per swab)."""

    tube: list
    sample: list
    person: list
    sampled: list  # as the database gives it (SQLite: text in storage form), see _stored_form / _read_dt
    region: list
    retest_of: list
    count: Counter  # swabs per tube


def _fetch_members(cursor, tube_ids: list[int]) -> _Members:
    """The swabs of the tubes, read once into a temporary table (states and tasks are then looked up from it, not
    by joining the sample table again)."""
    _temp_table(cursor, "_jk_res_tubes", [("id", "bigint primary key")], ([i] for i in tube_ids))
    cursor.execute("DROP TABLE IF EXISTS _jk_res_members")
    cursor.execute(
        f"CREATE TEMP TABLE _jk_res_members {'ON COMMIT DROP ' if _is_pg() else ''}AS "
        f"SELECT s.tube_id, s.id, s.person_id, {_dt_expr('s.sampled_at')} AS sampled_at, s.region_code, "
        "s.retest_of_id FROM _jk_res_tubes k JOIN testing_sample s ON s.tube_id = k.id")
    cursor.execute("CREATE INDEX _jk_res_members_person ON _jk_res_members (person_id)")
    cursor.execute("ANALYZE _jk_res_members")
    cursor.execute("SELECT tube_id, id, person_id, sampled_at, region_code, retest_of_id FROM _jk_res_members")
    rows = cursor.fetchall()
    columns = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in range(6)]
    del rows
    return _Members(*columns, count=Counter(columns[0]))


def _write_results(cursor, accepted, *, lab: Lab, actor, now, source, source_ref) -> None:
    actor_id = actor.pk if getattr(actor, "pk", None) else None
    ref = (source_ref or "")[:100]
    fmt = _dt_formatter()
    now_db = fmt(now)
    rows = [(t.id, lab.pk, r.outcome, json.dumps(r.ct_values, sort_keys=True), r.instrument, r.operator,
             fmt(r.tested_at), now_db, source, f"{ref}#{r.row}"[:128] if ref else str(r.row), actor_id)
            for r, t in accepted]
    bulk.bulk_insert("testing_tuberesult", ["tube_id", "lab_id", "outcome", "ct_values", "instrument", "operator",
                                           "tested_at", "recorded_at", "source", "source_ref", "entered_by_id"], rows)
    # Tubes: outcome, resulted; the lab that tested them (when they were never formally received); sealed if the
    # sampling site never sealed them by hand: the lab had the closed tube at the latest when it received it, else
    # when it tested it (never later than now). A resulted tube takes no further swab.
    _temp_table(cursor, "_jk_res_outcomes", [("id", "bigint primary key"), ("outcome", "varchar(16)"),
                                             ("tested_at", "timestamptz" if _is_pg() else "varchar(32)")],
                ([t.id, r.outcome, fmt(min(r.tested_at, now))] for r, t in accepted))
    params = [_db_dt(now), lab.pk]
    if _is_pg():
        cursor.execute(
            "UPDATE testing_tube AS t SET outcome = o.outcome, status = 'resulted', resulted_at = %s, "
            "lab_id = COALESCE(t.lab_id, %s), sealed_at = COALESCE(t.sealed_at, t.received_at, o.tested_at) "
            "FROM _jk_res_outcomes o WHERE t.id = o.id", params)
    else:
        cursor.execute(
            "UPDATE testing_tube SET outcome = (SELECT o.outcome FROM _jk_res_outcomes o WHERE o.id = testing_tube.id), "
            "status = 'resulted', resulted_at = %s, lab_id = COALESCE(lab_id, %s), sealed_at = COALESCE(sealed_at, "
            "received_at, (SELECT o.tested_at FROM _jk_res_outcomes o WHERE o.id = testing_tube.id)) "
            "WHERE id IN (SELECT id FROM _jk_res_outcomes)", params)
    _drop(cursor, "_jk_res_outcomes")


STATE_COLUMNS = ["person_id", "region_code", "status", "controlled_in_place", "controlled_since", "last_sampled_at",
                 "last_negative_sampled_at", "positive_sampled_at", "updated_at"]


_PERSONS_OF_TUBES = "SELECT m.person_id FROM _jk_res_members m"


def _fetch_states(cursor) -> dict[int, tuple]:
    """``{person: (status, controlled, since, last, last_negative, positive, region)}``, times as read (text)."""
    cursor.execute(
        f"SELECT s.person_id, s.status, s.controlled_in_place, {_dt_expr('s.controlled_since')}, "
        f"{_dt_expr('s.last_sampled_at')}, {_dt_expr('s.last_negative_sampled_at')}, "
        f"{_dt_expr('s.positive_sampled_at')}, s.region_code "
        f"FROM testing_personteststate s WHERE s.person_id IN ({_PERSONS_OF_TUBES})")
    return {row[0]: row[1:] for row in cursor.fetchall()}


def _state(raw: tuple) -> tuple[dc.PersonState, str]:
    status, controlled, since, last, last_neg, pos, region = raw
    read = _read_dt
    return dc.PersonState(status, bool(controlled), read(since), read(last), read(last_neg), read(pos)), region


def _fetch_tasks(cursor) -> dict[int, list[dc.Task]]:
    """Open/sampled tasks of the chunk's persons. PostgreSQL: locked, in the order the sampling service claims them
    (created_at, id: no deadlock), so a door-to-door scan claiming a task waits for this chunk instead of being
    overwritten by it, and this chunk sees a task the scan claimed."""
    cursor.execute(
        f"SELECT t.id, t.person_id, t.reason, t.status, {_dt_expr('src.sampled_at')} "
        "FROM testing_retesttask t "
        "LEFT JOIN testing_sample src ON src.tube_id = t.source_tube_id AND src.person_id = t.person_id "
        f"WHERE t.status IN ('open', 'sampled') AND t.person_id IN ({_PERSONS_OF_TUBES})"
        + (" ORDER BY t.created_at, t.id FOR UPDATE OF t" if _is_pg() else ""))
    out: dict[int, list[dc.Task]] = defaultdict(list)
    for tid, pid, reason, status, src_sampled in cursor.fetchall():
        out[pid].append(dc.Task(tid, reason, status, _read_dt(src_sampled)))
    return out


def _fetch_replays(cursor, per_person: dict[int, list[tuple]]) -> dict[int, list[dc.MemberResult]]:
    """Negative swabs applied in earlier uploads that are newer than a pool-positive or invalid swab of this chunk.

    Results are meant to act in sampling order whatever order they arrive in. A pool result arriving after the
    person's own (newer) negative retest, or an invalid tube arriving after a newer negative, would otherwise open
    a task that the newer swab should already have resolved — and a late positive pool would put a person whose
    single-tube retest came back negative under control again. The person's latest earlier negative of each kind
    (own retest/resample tube; routine tube) newer than the chunk's first task-opening swab is replayed through
    :func:`jingkong.testing.deconvolution.settle_person` (it re-applies as it was: no event, no count; it only
    resolves the tasks it would have resolved had it arrived last)."""
    since: dict[int, dt.datetime] = {}
    for pid, entries in per_person.items():
        times = [e[1] for e in entries if e[0].task_reason is not None and e[1] is not None]
        if times:
            since[pid] = min(times)
    if not since:
        return {}
    _temp_table(cursor, "_jk_res_replay", [("person_id", "bigint primary key")], ([p] for p in since))
    cursor.execute(
        f"SELECT s.person_id, s.id, s.tube_id, t.kind, t.capacity, t.member_count, {_dt_expr('s.sampled_at')} "
        "FROM _jk_res_replay k JOIN testing_sample s ON s.person_id = k.person_id "
        "JOIN testing_tube t ON t.id = s.tube_id "
        "WHERE t.outcome = 'negative' AND s.tube_id NOT IN (SELECT id FROM _jk_res_tubes)")
    latest: dict[tuple[int, bool], tuple] = {}
    for pid, sid, tid, kind, capacity, count, raw in cursor.fetchall():
        sampled = _read_dt(raw)
        if sampled is None or sampled < since[pid]:
            continue
        key = (pid, kind == dc.ROUTINE)
        if key not in latest or sampled > latest[key][0]:
            latest[key] = (sampled, sid, tid, kind, capacity, count)
    _drop(cursor, "_jk_res_replay")
    out: dict[int, list[dc.MemberResult]] = defaultdict(list)
    for (pid, _routine), (sampled, sid, tid, kind, capacity, count) in latest.items():
        decision = dc.decide(kind=kind, capacity=capacity, outcome="negative", members=count)
        out[pid].append(dc.MemberResult(decision, sampled, kind, ("replay", tid), sid))
    return out


def _stored_form():
    """Sampling times as read (see _Members) → the form to write back: SQLite text in Django's storage form is kept
    as is (most of an upload is never parsed); anything else is parsed and formatted. PostgreSQL: the ISO text
    (a timestamptz literal)."""
    if _is_pg():
        return lambda v: v

    def form(raw):
        if raw is None or (len(raw) in (19, 26) and raw[10] == " "):
            return raw
        return _read_dt(raw).astimezone(UTC).replace(tzinfo=None).isoformat(" ")

    return form


def _dt_formatter():
    """A fast converter of UTC datetimes to the backend's storage form (called for every state row)."""
    if _is_pg():
        return lambda v: v
    return lambda v: None if v is None else v.replace(tzinfo=None).isoformat(" ")


def _deconvolve(cursor, accepted, members: _Members, *, lab: Lab, actor, now, report: ResultReport, run: str,
                source_ref: str, request) -> None:
    """Every swab's effect → person states, retest tasks, events and audit (see the module docstring).

    Most swabs of a round are a person's only swab in the upload, in a negative routine tube, with no open task and
    either no state yet or a plain negative one: these are handled column-wise (numpy masks, C-level zips). The rest
    — positives, invalid tubes, retests, persons under control or with several swabs — go person by person through
    :func:`jingkong.testing.deconvolution.settle_person`.
    """
    tube_info: dict[int, tuple[ResultRow, _Tube, dc.TubeDecision]] = {}
    tube_events = []
    negative_routine = []
    for r, tube in accepted:
        count = members.count[tube.id]
        decision = dc.decide(kind=tube.kind, capacity=tube.capacity, outcome=r.outcome, members=count)
        tube_info[tube.id] = (r, tube, decision)
        if decision.effect is dc.Effect.NEGATIVE:
            negative_routine.append(tube.id)
        if decision.effect == dc.Effect.NEGATIVE or decision.effect == dc.Effect.RETEST_NEGATIVE:
            report.tubes_negative += 1
        elif decision.effect == dc.Effect.POOL_POSITIVE:
            report.tubes_pool_positive += 1
        elif decision.effect == dc.Effect.POSITIVE:
            report.tubes_positive += 1
        else:
            report.tubes_invalid += 1
        if decision.tube_event:
            tube_events.append({
                "type": decision.tube_event, "subject_type": "testing.tube", "subject_id": tube.id,
                "region_code": tube.region_code, "at": now,
                "payload": {"barcode": tube.barcode, "campaign": tube.campaign_code, "member_count": count,
                            "lab": lab.code, "kind": tube.kind, "capacity": tube.capacity,
                            "ct_values": r.ct_values},
            })

    states = _fetch_states(cursor)
    tasks = _fetch_tasks(cursor)
    fmt, form = _dt_formatter(), _stored_form()
    now_db = fmt(now)
    false, true = bulk.db_bool(False), bulk.db_bool(True)
    NEGATIVE = dc.STATUS_NEGATIVE
    state_rows: list[tuple] = []
    routine: dict[tuple, list[int]] = defaultdict(list)  # (grid, status) -> person ids (no change of control)

    # Column-wise masks over the swabs.
    person = np.array(members.person, dtype=np.int64)
    _, inverse, counts = np.unique(person, return_inverse=True, return_counts=True)
    simple = (counts[inverse] == 1) & np.isin(np.array(members.tube, dtype=np.int64), negative_routine)
    if tasks:
        simple &= ~np.isin(person, np.fromiter(tasks, dtype=np.int64, count=len(tasks)))
    plain = [pid for pid, st in states.items() if st[0] == NEGATIVE and not st[1]]
    has_state = np.isin(person, np.fromiter(states, dtype=np.int64, count=len(states))) if states else \
        np.zeros(len(person), dtype=bool)
    first = simple & ~has_state
    again = simple & np.isin(person, np.array(plain, dtype=np.int64)) if plain else np.zeros(len(person), dtype=bool)
    sampled = np.array(members.sampled, dtype=object)
    region = np.array(members.region, dtype=object)

    # (1) a first result, negative: the new state is the swab itself.
    idx = np.flatnonzero(first)
    if len(idx):
        pids, regions = person[idx].tolist(), region[idx].tolist()
        stamps = [form(v) for v in sampled[idx].tolist()]
        state_rows.extend(zip(pids, regions, repeat(NEGATIVE), repeat(false), repeat(None), stamps, stamps,
                              repeat(None), repeat(now_db), strict=False))
        for grid, pid in zip(regions, pids, strict=True):
            routine[(grid, NEGATIVE)].append(pid)
    # (2) negative again: latest swab and latest negative move forward (a stale swab changes nothing). The times are
    # compared as read: one text form per backend (SQLite's storage form, PostgreSQL's ISO text in UTC), in which
    # text order is time order.
    idx = np.flatnonzero(again)
    for pid, raw, grid in zip(person[idx].tolist(), sampled[idx].tolist(), region[idx].tolist(), strict=True):
        _, _, _, last_before, negative_before, _, stored_region = states[pid]
        at = form(raw)
        last_before, negative_before = form(last_before), form(negative_before)
        last = last_before if last_before is not None and last_before >= at else at
        last_negative = negative_before if negative_before is not None and negative_before >= at else at
        if last == last_before and last_negative == negative_before and grid == stored_region:
            continue
        state_rows.append((pid, grid, NEGATIVE, false, None, last, last_negative, None, now_db))
        if last != last_before or last_negative != negative_before:
            routine[(grid, NEGATIVE)].append(pid)

    # (3) everyone else, person by person.
    per_person: dict[int, list[tuple]] = {}
    tube_ids, sample_ids, retest_of = members.tube, members.sample, members.retest_of
    for i in np.flatnonzero(~(first | again)).tolist():
        tid = tube_ids[i]
        decision = tube_info[tid][2]
        entry = (decision, _read_dt(members.sampled[i]), tube_info[tid][1].kind, tid, sample_ids[i], retest_of[i],
                 members.region[i])
        per_person.setdefault(members.person[i], []).append(entry)

    replays = _fetch_replays(cursor, per_person)

    task_updates: list[tuple] = []  # (status, resolved_at, sample_id, task id)
    new_tasks: list[tuple] = []
    restricting: dict[tuple, list] = defaultdict(list)  # (from, to) -> [(person id, region)]
    positives: list[tuple[int, tuple]] = []  # (person id, member entry)
    EMPTY = dc.PersonState()
    member = dc.MemberResult
    for pid, entries in per_person.items():
        before, stored_region = _state(states[pid]) if pid in states else (None, None)
        grid = max(entries, key=lambda e: e[1])[6]
        results = [member(e[0], e[1], e[2], e[3], e[4], e[5]) for e in entries] + replays.get(pid, [])
        settled = dc.settle_person(before, tasks.get(pid, []), results, at=now)
        after = settled.state
        for task_id, (status, sample_id) in settled.task_updates.items():
            if status == dc.REOPEN:
                task_updates.append(("open", None, None, task_id))
                report.tasks_reopened += 1
            else:
                task_updates.append((status, now_db, sample_id, task_id))
                report.tasks_resolved += 1
        for nt in settled.new_tasks:
            _, src_tube, _ = tube_info[nt.source_tube]
            resolved = nt.status not in (dc.TASK_OPEN, dc.TASK_SAMPLED)
            new_tasks.append((pid, src_tube.campaign_id, nt.source_tube, nt.reason, nt.status, grid, now_db,
                              nt.sample if resolved else None, now_db if resolved else None))
            report.tasks_created += 1
            if resolved:
                report.tasks_resolved += 1
        for e in entries:
            if e[0].individual_positive:
                positives.append((pid, e))
        if after == before and stored_region == grid:
            continue
        state_rows.append((pid, grid, after.status, true if after.controlled_in_place else false,
                           fmt(after.controlled_since), fmt(after.last_sampled_at),
                           fmt(after.last_negative_sampled_at), fmt(after.positive_sampled_at), now_db))
        if after == before:
            continue
        if dc.restricts_or_releases(before, after):
            b = before or EMPTY
            restricting[(b.status or "", after.status or "", bool(b.controlled_in_place),
                         bool(after.controlled_in_place))].append((pid, grid))
            if after.status == dc.STATUS_POOL_POSITIVE and not b.controlled_in_place:
                report.persons_controlled += 1
            elif after.status == dc.STATUS_POSITIVE and b.status != dc.STATUS_POSITIVE:
                report.persons_positive += 1
            elif after.status == dc.STATUS_RESAMPLE:
                report.persons_resample += 1
            if b.controlled_in_place and not after.controlled_in_place:
                report.controls_lifted += 1
        else:
            routine[(grid, after.status)].append(pid)
    report.persons_updated += sum(len(v) for v in routine.values()) + sum(len(v) for v in restricting.values())

    if new_tasks:
        bulk.bulk_upsert("testing_retesttask", ["person_id", "campaign_id", "source_tube_id", "reason", "status",
                                                "region_code", "created_at", "sample_id", "resolved_at"],
                         new_tasks, conflict_columns=["person_id", "source_tube_id"])
    if task_updates:
        cursor.executemany("UPDATE testing_retesttask SET status = %s, resolved_at = %s, sample_id = %s WHERE id = %s",
                           task_updates)
    if state_rows:
        if _is_pg():
            _copy_upsert_states(cursor, state_rows)
        else:
            bulk.bulk_upsert("testing_personteststate", STATE_COLUMNS, state_rows, conflict_columns=["person_id"],
                             update_columns=STATE_COLUMNS[1:])

    # Events: per tube (pool positive, invalid), per individual positive, inside this transaction.
    events = list(tube_events)
    for pid, entry in positives:
        events.append(_positive_event(pid, entry, tube_info, lab=lab, now=now))
    if events:
        emit_many(events, actor=actor)
    # Audit: per person for control decisions; per grid (id ranges) for routine negatives.
    for (b_status, a_status, b_ctl, a_ctl), items in restricting.items():
        audit.record_many(actor=actor, action="testing.person_status", object_type="people.person",
                          items=items, request=request,
                          detail={"from": b_status or None, "to": a_status, "controlled_before": b_ctl,
                                  "controlled_after": a_ctl, "lab": lab.code, "source": source_ref[:100], "run": run})
    if routine:
        from jingkong.people.importer import id_ranges

        for (grid, status), ids in routine.items():
            audit.record(actor=actor, action="testing.person_status", object_type="people.person", region_code=grid,
                         request=request,
                         detail={"to": status, "count": len(ids),
                                 "ids": id_ranges(np.fromiter(ids, dtype=np.int64, count=len(ids))),
                                 "lab": lab.code, "source": source_ref[:100], "run": run})


def _copy_text(value) -> str:
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, dt.datetime):
        return value.isoformat(" ")
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _copy_upsert_states(cursor, rows: list[tuple]) -> None:
    """PostgreSQL: the state rows as COPY text written in blocks (psycopg's per-row COPY adaptation cost more than
    everything else of a 1 M-swab upload), then one INSERT … ON CONFLICT (person_id) DO UPDATE."""
    cols = ", ".join(STATE_COLUMNS)
    cursor.execute("DROP TABLE IF EXISTS _jk_res_states")
    cursor.execute(f"CREATE TEMP TABLE _jk_res_states ON COMMIT DROP AS SELECT {cols} FROM testing_personteststate "
                   "WITH NO DATA")
    text = _copy_text
    with cursor.cursor.copy(f"COPY _jk_res_states ({cols}) FROM STDIN") as copy:
        for start in range(0, len(rows), 50_000):
            copy.write("".join("\t".join([text(v) for v in row]) + "\n" for row in rows[start:start + 50_000]))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in STATE_COLUMNS[1:])
    cursor.execute(f"INSERT INTO testing_personteststate ({cols}) SELECT {cols} FROM _jk_res_states "
                   f"ON CONFLICT (person_id) DO UPDATE SET {updates}")
    cursor.execute("DROP TABLE _jk_res_states")


def _positive_event(pid: int, entry: tuple, tube_info: dict, *, lab: Lab, now: dt.datetime) -> dict:
    """``testing.individual_positive`` — the contract the tracing feature subscribes to.

    subject_type ``people.person``, subject_id the person's pk, region_code the person's grid at the scan
    (Sample.region_code); payload: sample_id, tube (barcode), campaign (code or None), sampled_at and resulted_at
    (ISO 8601 UTC), lab (code), ct_values ({gene: Ct}), via ("single_tube" | "retest").
    """
    decision, sampled_at, _, tube_id, sid, _, region = entry
    r, tube, _ = tube_info[tube_id]
    return {
        "type": dc.EVENT_INDIVIDUAL_POSITIVE, "subject_type": "people.person", "subject_id": pid,
        "region_code": region, "at": now,
        "payload": {"sample_id": sid, "tube": tube.barcode, "campaign": tube.campaign_code,
                    "sampled_at": sampled_at.astimezone(UTC).isoformat(), "resulted_at": now.astimezone(UTC).isoformat(),
                    "lab": lab.code, "ct_values": r.ct_values, "via": decision.via},
    }


# --- files and the job ---------------------------------------------------------------------------------------------


def detect_format(path: str | Path, data: bytes) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in (".json", ".fhir", ".ndjson"):
        return "fhir"
    if suffix in (".csv", ".txt", ".tsv"):
        return "csv"
    head = data.lstrip()[:1]
    return "fhir" if head in (b"{", b"[") else "csv"


def load_results_file(path: str | Path, *, lab: Lab, actor=None, fmt: str | None = None,
                      error_file: str | Path | None = None, progress: Callable | None = None,
                      source_ref: str | None = None) -> ResultReport:
    """Parse and apply a results file (CSV or FHIR JSON Bundle); rejected rows go to ``error_file`` (default
    FILE.errors.csv). A malformed file raises ValidationFailed (nothing applied)."""
    path = Path(path)
    lab_rules.ensure_can_operate(actor, lab)  # before reading anything
    data = path.read_bytes()
    fmt = fmt or detect_format(path, data)
    ref = source_ref or path.name
    if fmt == "fhir":
        from jingkong.testing import fhir

        rows, errors = fhir.parse_bundle(data)
        report = results_apply(actor=actor, lab=lab, rows=rows, errors=errors, source=ResultSource.FHIR,
                               source_ref=ref, progress=progress)
        row_label = "entry"
    elif fmt == "csv":
        rows, errors, encoding = parse_csv(data)
        report = results_apply(actor=actor, lab=lab, rows=rows, errors=errors, source=ResultSource.CSV,
                               source_ref=ref, progress=progress)
        report.encoding = encoding
        row_label = "line"
    else:
        raise ValidationFailed(f"unknown format {fmt!r}: csv or fhir", extra={"field": "format"})
    if report.errors:
        target = Path(error_file) if error_file else Path(str(path) + ".errors.csv")
        write_error_file(target, report.errors, row_label=row_label)
        report.error_file = str(target)
    return report


MAX_UPLOAD_BYTES = 200 * 1024 * 1024
UPLOAD_KIND = "testing.load_results"


def enqueue_upload(*, actor, lab: Lab, file, fmt: str = ""):
    """Store an uploaded results file (CSV or FHIR JSON) and queue the job applying it; returns the job.

    The API and the lab board page both call this. The actor is checked before anything is stored; the job checks
    again when it runs (a technician removed from the lab in between is refused)."""
    from django.conf import settings
    from django.utils.translation import gettext as _

    lab_rules.ensure_can_operate(actor, lab)
    if file is None:
        raise ValidationFailed(_("attach the results file (CSV or FHIR JSON)"), extra={"field": "file"})
    if fmt and fmt not in ("csv", "fhir"):
        raise ValidationFailed(_("format: csv or fhir"), extra={"field": "format"})
    if not file.size:
        raise ValidationFailed(_("the file is empty"), extra={"field": "file"})
    if file.size > MAX_UPLOAD_BYTES:
        raise ValidationFailed(_("the file is larger than 200 MB: split it"), extra={"field": "file"})
    name = Path((file.name or "results").replace("\x00", "")).name or "results"
    suffix = Path(name).suffix.lower() if Path(name).suffix.lower() in (".csv", ".json", ".txt") else ""
    folder = Path(settings.DATA_DIR) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"results-{uuid.uuid4().hex}{suffix}"
    with open(path, "wb") as fh:
        for chunk in file.chunks():
            fh.write(chunk)
    return jobs.enqueue(UPLOAD_KIND, {"path": str(path), "lab": lab.code, "format": fmt or None, "delete_after": True,
                                      "source_ref": name[:100]}, actor=actor, region_code=lab.region_code)


def upload_error_file(job) -> Path | None:
    """The full error CSV a finished upload job wrote (under the uploads folder), if it is still there."""
    from django.conf import settings

    named = (job.result or {}).get("error_file") if isinstance(job.result, dict) else None
    if not named:
        return None
    folder = (Path(settings.DATA_DIR) / "uploads").resolve()
    path = Path(named).resolve()
    if path.parent != folder or not path.is_file():
        return None
    return path


@jobs.register(UPLOAD_KIND)
def load_results_job(ctx, path: str, lab: str, format: str | None = None, error_file: str | None = None,
                     delete_after: bool = False, source_ref: str | None = None) -> dict:
    """Job: apply a results file for the lab with code ``lab`` (``delete_after``: an upload, removed afterwards)."""
    from jingkong.core.exceptions import NotFound

    try:
        lab_obj = Lab.objects.filter(code=lab).first()
        if lab_obj is None:
            raise NotFound(f"lab {lab} not found", extra={"field": "lab"})
        report = load_results_file(path, lab=lab_obj, actor=ctx.actor, fmt=format, error_file=error_file,
                                   progress=ctx.progress, source_ref=source_ref)
    finally:
        if delete_after:
            Path(path).unlink(missing_ok=True)
    return report.as_dict(max_errors=1000)  # an uploader reads the rejected rows from the job's result
