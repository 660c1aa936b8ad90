"""The check-in lake: venue check-ins (场所码 scans), location pings and transport passenger lists, outside the
operational database, as normalized Parquet queried with DuckDB (docs/checkin-lake.md).

Layout under the lake root (default ``settings.DATA_DIR / "lake"``)::

    checkins/day=YYYY-MM-DD/src-<source>.parquet   person_id int64, venue_id int32, checkin_at, checkout_at
    pings/day=YYYY-MM-DD/src-<source>.parquet      person_id int64, lon, lat float64, at
    transport/src-<source>.parquet                 person_id int64, mode, number, date, carriage, seat

Times are timestamp[us, UTC]; ``day`` is the Asia/Shanghai date of the check-in (of the ping). Check-in files are sorted
by (venue_id, checkin_at) in row groups of 64 k rows, so a query for a few venues reads few row groups; pings are
sorted by (person_id, at).

Loading (``checkins_load``, ``pings_load``, ``transport_load``) normalizes a raw export — ID numbers become person ids
through the keyed hash (validated and hashed once per distinct number, then joined in DuckDB against an Arrow table of
(id_hash, person_id) exported from the registry), venue codes become venue ids — and reports every row it cannot take
(unknown venue, unknown person, invalid ID number, unreadable time, check-out before check-in, ...) with counts and
sample rows whose ID numbers are masked. Nothing is loaded as Python objects per row: DuckDB streams the files into a
per-load staging area partitioned by day, then each day's file of this source is written sorted and swapped in with
one rename (atomic per day). Re-loading the same source replaces its files, so it is idempotent; days the source no
longer has are removed.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from jingkong.analytics import duck
from jingkong.core import jobs
from jingkong.core.exceptions import ValidationFailed

LOCAL_TZ = duck.LOCAL_TZ
# Asia/Shanghai has kept UTC+8 without daylight saving since 1991: local times convert with integer arithmetic on
# microseconds (10× faster in DuckDB than its ICU time-zone functions).
LOCAL_OFFSET_US = 8 * 3600 * 1_000_000
TS = pa.timestamp("us", tz="UTC")
CHECKIN_SCHEMA = pa.schema([("person_id", pa.int64()), ("venue_id", pa.int32()), ("checkin_at", TS),
                            ("checkout_at", TS)])
PING_SCHEMA = pa.schema([("person_id", pa.int64()), ("lon", pa.float64()), ("lat", pa.float64()), ("at", TS)])
TRANSPORT_SCHEMA = pa.schema([("person_id", pa.int64()), ("mode", pa.string()), ("number", pa.string()),
                              ("date", pa.date32()), ("carriage", pa.string()), ("seat", pa.string())])
ROW_GROUP = 65_536
DEFAULT_DWELL_MINUTES = 30  # a check-in without a check-out time is taken to last this long (flagged)
LONG_STAY_HOURS = 24  # stays longer than this are flagged (kept)
SAMPLES = 5  # sample rows reported per error or flag reason
TRANSPORT_MODES = ("train", "flight", "bus", "ship")
MODE_ALIASES = {
    "train": "train", "rail": "train", "railway": "train", "火车": "train", "高铁": "train", "动车": "train",
    "列车": "train", "铁路": "train",
    "flight": "flight", "plane": "flight", "air": "flight", "飞机": "flight", "航班": "flight", "民航": "flight",
    "bus": "bus", "coach": "bus", "汽车": "bus", "大巴": "bus", "客车": "bus", "长途汽车": "bus", "公交": "bus",
    "ship": "ship", "ferry": "ship", "boat": "ship", "船": "ship", "轮船": "ship", "客船": "ship", "轮渡": "ship",
}
# Words around a carriage/cabin or seat number (第5节车厢, 05车, 12座号), removed before comparing: the same patterns
# (RE2 and Python re agree on them) normalize the manifests here and a tracer's entry (contacts.normalize_trip).
CARRIAGE_WORDS = r"^第|(车厢|节|车|号|舱)+$"
SEAT_WORDS = r"(号|座)+$"
Progress = Callable[[int, int, str], None]


class CheckinLake:
    """The lake's directory and the reads other features need (a person's own check-ins for the timeline)."""

    TABLES = ("checkins", "pings", "transport")

    def __init__(self, root: str | Path | None = None):
        if root is None:
            from django.conf import settings

            root = Path(settings.DATA_DIR) / "lake"
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"CheckinLake({str(self.root)!r})"

    # -- layout ------------------------------------------------------------------------------------------------------
    def table_dir(self, table: str) -> Path:
        if table not in self.TABLES:
            raise ValueError(f"unknown lake table {table!r}")
        return self.root / table

    @property
    def tmp_dir(self) -> Path:
        return self.root / ".tmp"

    def connect(self):
        return duck.connect(temp_directory=self.tmp_dir / "duckdb")

    def days(self, table: str = "checkins") -> list[dt.date]:
        """The days that have at least one file."""
        out = []
        base = self.table_dir(table)
        if not base.is_dir():
            return out
        for d in base.iterdir():
            if d.name.startswith("day=") and any(_data_files(d)):
                try:
                    out.append(dt.date.fromisoformat(d.name[4:]))
                except ValueError:
                    continue
        return sorted(out)

    def files(self, table: str, first: dt.date | None = None, last: dt.date | None = None) -> list[Path]:
        """The data files of ``table`` (for day-partitioned tables: of the days ``first``..``last`` inclusive)."""
        base = self.table_dir(table)
        if not base.is_dir():
            return []
        if table == "transport":
            return sorted(_data_files(base))
        out: list[Path] = []
        for day in self.days(table):
            if (first is None or day >= first) and (last is None or day <= last):
                out.extend(sorted(_data_files(base / f"day={day.isoformat()}")))
        return out

    def files_between(self, table: str, start: dt.datetime, end: dt.datetime) -> list[Path]:
        """Files that can hold rows overlapping [start, end): the local days of the window and the day before (a stay
        begun the evening before still overlaps; stays longer than a day are flagged when loaded)."""
        return self.files(table, local_date(start) - dt.timedelta(days=1), local_date(end))

    def status(self) -> dict:
        """Per table: days, files, rows (from Parquet footers, no data read) and sources."""
        out = {"root": str(self.root)}
        for table in self.TABLES:
            files = self.files(table)
            sources = sorted({f.stem[4:] for f in files if f.stem.startswith("src-")})
            rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
            days = self.days(table) if table != "transport" else []
            out[table] = {"files": len(files), "rows": rows, "sources": sources,
                          "first_day": days[0].isoformat() if days else None,
                          "last_day": days[-1].isoformat() if days else None, "days": len(days)}
        return out

    # -- reads -------------------------------------------------------------------------------------------------------
    def stays_of(self, person_ids: Iterable[int], start: dt.datetime, end: dt.datetime, *,
                 with_venues: bool = True) -> list[dict]:
        """The persons' own check-ins overlapping [start, end), ordered by person and time, each a dict of
        ``person_id, venue_id, checkin_at, checkout_at`` (aware UTC) and, with ``with_venues``, ``venue_code`` and
        ``venue_name`` from the base map. A row loaded from two sources appears once."""
        _check_aware(start, "start")
        _check_aware(end, "end")
        ids = sorted({int(p) for p in person_ids})
        files = self.files_between("checkins", start, end)
        if not ids or not files or end <= start:
            return []
        con = self.connect()
        try:
            con.register("wanted", pa.table({"person_id": pa.array(ids, pa.int64())}))
            table = duck.fetch_arrow(
                con,
                f"""SELECT DISTINCT c.person_id, c.venue_id, c.checkin_at, c.checkout_at
                    FROM read_parquet({duck.sql_list(files)}, hive_partitioning = false) c
                    WHERE c.person_id IN (SELECT person_id FROM wanted)
                      AND c.checkin_at < ? AND c.checkout_at > ?
                    ORDER BY c.person_id, c.checkin_at, c.venue_id""",
                [end, start],
            )
        finally:
            con.close()
        rows = table.to_pylist()
        if with_venues and rows:
            names = venue_names({r["venue_id"] for r in rows})
            for r in rows:
                code, name = names.get(r["venue_id"], ("", ""))
                r["venue_code"], r["venue_name"] = code, name
        return rows


def venue_names(venue_ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """{venue id: (code, name)} from the base map."""
    table = duck.rows_in("SELECT id, code, name FROM geo_venue WHERE id IN ({ids})", list(venue_ids),
                         pa.schema([("id", pa.int64()), ("code", pa.string()), ("name", pa.string())]))
    return {i: (c, n) for i, c, n in zip(table["id"].to_pylist(), table["code"].to_pylist(),
                                         table["name"].to_pylist(), strict=True)}


def local_date(moment: dt.datetime) -> dt.date:
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo(LOCAL_TZ)).date()


def _check_aware(value: dt.datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (UTC), not {value!r}")


def _data_files(directory: Path) -> Iterable[Path]:
    return (p for p in directory.glob("*.parquet") if not p.name.startswith("."))


# ---------------------------------------------------------------------------------------------------------------------
# Load report


@dataclass
class LoadReport:
    table: str
    source: str
    lake: str
    files: int = 0
    rows: int = 0  # records read
    loaded: int = 0  # rows now in the lake for this source (after duplicates were merged)
    rejected: int = 0
    days: dict[str, int] = field(default_factory=dict)  # day → rows written
    removed_days: list[str] = field(default_factory=list)  # days this source no longer has
    errors: dict[str, dict] = field(default_factory=dict)  # reason → {"rows": n, "samples": [...]} (rows rejected)
    flags: dict[str, dict] = field(default_factory=dict)  # reason → {"rows": n, "samples": [...]} (rows kept)
    unknown_venues: dict[str, int] = field(default_factory=dict)  # venue code → rows (the most frequent first)
    partial: bool = False  # a file could not be read: the source's other days were kept, not removed
    seconds: float = 0.0

    def add(self, bucket: str, reason: str, rows: int, samples: Sequence[dict] = ()) -> None:
        target = getattr(self, bucket).setdefault(reason, {"rows": 0, "samples": []})
        target["rows"] += int(rows)
        room = SAMPLES - len(target["samples"])
        if room > 0:
            target["samples"].extend(list(samples)[:room])

    def as_dict(self) -> dict:
        out = asdict(self)
        top = sorted(self.unknown_venues.items(), key=lambda kv: (-kv[1], kv[0]))
        out["unknown_venues"] = [{"venue_code": code, "rows": n} for code, n in top[:100]]
        out["unknown_venue_count"] = len(self.unknown_venues)
        out["error_rows"] = sum(e["rows"] for e in self.errors.values())
        out["flagged_rows"] = sum(f["rows"] for f in self.flags.values())
        return _readable(out)


def _readable(value):
    """Raw values of an export as the report shows them: a NUL character written ``\\x00`` (PostgreSQL cannot store
    it in a JSON document — the job's result — and a terminal does not show it)."""
    if isinstance(value, str):
        return value.replace("\x00", "\\x00")
    if isinstance(value, dict):
        return {_readable(k): _readable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_readable(v) for v in value]
    return value

    def lines(self) -> list[str]:
        return summary_lines(self.as_dict())


def summary_lines(report: dict) -> list[str]:
    """A human summary of a load report (``LoadReport.as_dict()``, e.g. a job's result), for the command line."""
    r = report
    out = [f"{r['table']}: {r['rows']:,} rows read from {r['files']} file(s), {r['loaded']:,} in the lake "
           f"(source {r['source']!r}, {len(r['days'])} day(s)), {r['rejected']:,} rejected, in {r['seconds']:.1f} s"]
    for title, bucket in (("rejected", r["errors"]), ("flagged, kept", r["flags"])):
        for reason, item in sorted(bucket.items(), key=lambda kv: -kv[1]["rows"]):
            out.append(f"  {title}: {item['rows']:,} × {reason}")
            for sample in item["samples"][:3]:
                out.append("      " + ", ".join(f"{k}={v}" for k, v in sample.items() if v not in (None, "")))
    if r["unknown_venues"]:
        shown = ", ".join(f"{u['venue_code']} ({u['rows']:,})" for u in r["unknown_venues"][:10])
        out.append(f"  unknown venue codes ({r['unknown_venue_count']:,}; rows): {shown}")
    if r["removed_days"]:
        out.append(f"  removed days this source no longer has: {', '.join(r['removed_days'])}")
    if r["partial"]:
        out.append("  a file could not be read: days of this source missing from the load were kept")
    return out


# ---------------------------------------------------------------------------------------------------------------------
# ID numbers in bulk


def validate_ids(raw: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(normalised 18-character numbers or null, reason or null) for an array of raw ID numbers.

    The common case (18 characters, a real birth date, the right check digit) is checked column-wise with numpy; only
    the others (15-digit legacy numbers, mistakes) go through :func:`jingkong.people.idnumber.validate` one by one,
    which gives the reason."""
    from jingkong.people import idnumber

    raw = pc.cast(raw, pa.string())
    norm = pc.utf8_upper(pc.replace_substring_regex(raw, r"\s+", ""))
    fast = pc.fill_null(pc.match_substring_regex(norm, r"^[0-9]{17}[0-9X]$"), False).to_numpy(zero_copy_only=False)
    n = len(raw)
    ok = np.zeros(n, bool)
    where = np.flatnonzero(fast)
    if len(where):
        fixed = pc.cast(pc.cast(norm.take(pa.array(where)), pa.binary()), pa.binary(18))
        chars = np.frombuffer(fixed.buffers()[1], np.uint8, count=len(where) * 18,
                              offset=fixed.offset * 18).reshape(-1, 18)
        digits = chars[:, :17].astype(np.int64) - 48
        check = np.frombuffer(idnumber.CHECK_CHARS.encode(), np.uint8)[(digits @ np.array(idnumber.WEIGHTS)) % 11]
        year = digits[:, 6] * 1000 + digits[:, 7] * 100 + digits[:, 8] * 10 + digits[:, 9]
        month = digits[:, 10] * 10 + digits[:, 11]
        day = digits[:, 12] * 10 + digits[:, 13]
        leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
        dim = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(month, 0, 12)] + (leap & (month == 2))
        good = ((check == chars[:, 17]) & (year >= idnumber.MIN_BIRTH_YEAR) & (month >= 1) & (month <= 12)
                & (day >= 1) & (day <= dim))
        ok[where[good]] = True
    normalized = norm.to_pylist() if not ok.all() else None
    if normalized is None:
        return norm, pa.nulls(n, pa.string())
    reasons: list[str | None] = [None] * n
    raw_list = raw.to_pylist()
    for i in np.flatnonzero(~ok):
        value = raw_list[i]
        try:
            normalized[i] = idnumber.validate(value or "")
        except idnumber.IdNumberError as exc:
            normalized[i] = None
            reasons[i] = f"id_number: {exc.reason}"
    return pa.array(normalized, pa.string()), pa.array(reasons, pa.string())


# ---------------------------------------------------------------------------------------------------------------------
# Raw input files


ALIASES = {
    "checkins": {
        "venue_code": "venue_code", "venue": "venue_code", "场所码": "venue_code", "场所编码": "venue_code",
        "场所编号": "venue_code",
        "id_number": "id_number", "id": "id_number", "身份证号": "id_number", "身份证号码": "id_number",
        "证件号码": "id_number",
        "checkin_at": "checkin_at", "checkin_time": "checkin_at", "进入时间": "checkin_at", "扫码时间": "checkin_at",
        "签到时间": "checkin_at",
        "checkout_at": "checkout_at", "checkout_time": "checkout_at", "离开时间": "checkout_at",
        "签出时间": "checkout_at",
    },
    "pings": {
        "id_number": "id_number", "id": "id_number", "身份证号": "id_number", "身份证号码": "id_number",
        "证件号码": "id_number",
        "lon": "lon", "lng": "lon", "longitude": "lon", "经度": "lon",
        "lat": "lat", "latitude": "lat", "纬度": "lat",
        "at": "at", "time": "at", "timestamp": "at", "时间": "at", "定位时间": "at",
    },
    "transport": {
        "id_number": "id_number", "id": "id_number", "身份证号": "id_number", "身份证号码": "id_number",
        "证件号码": "id_number",
        "mode": "mode", "交通方式": "mode", "交通工具": "mode", "类型": "mode",
        "number": "number", "车次": "number", "航班号": "number", "班次": "number", "车次航班号": "number",
        "date": "date", "日期": "date", "乘车日期": "date", "出行日期": "date",
        "carriage": "carriage", "coach": "carriage", "cabin": "carriage", "车厢": "carriage", "舱室": "carriage",
        "车厢号": "carriage",
        "seat": "seat", "座位": "seat", "座位号": "seat", "座位号码": "seat",
    },
}
REQUIRED = {
    "checkins": ["venue_code", "id_number", "checkin_at"],
    "pings": ["id_number", "lon", "lat", "at"],
    "transport": ["id_number", "mode", "number", "date"],
}
OPTIONAL = {"checkins": ["checkout_at"], "pings": [], "transport": ["carriage", "seat"]}
TIME_COLUMNS = {"checkins": ["checkin_at", "checkout_at"], "pings": ["at"], "transport": []}


def input_files(directory: str | Path, table: str) -> tuple[Path, list[Path]]:
    """The Parquet and CSV files of a raw export: every file below ``directory`` (or below ``directory/<table>`` when
    that exists — a district directory), hidden files and error reports excluded."""
    root = Path(directory)
    if not root.exists():
        raise ValidationFailed(f"{root} does not exist", extra={"field": "directory"})
    if root.is_file():
        return root.parent, [root]
    if (root / table).is_dir():
        root = root / table
    files = sorted(p for p in root.rglob("*")
                   if p.is_file() and p.suffix.lower() in (".parquet", ".csv") and not p.name.startswith(".")
                   and not p.name.endswith(".errors.csv") and not any(part.startswith(".") for part in
                                                                       p.relative_to(root).parts))
    return root, files


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _register_raw(con, path: Path, table: str) -> tuple[dict[str, str], list[tuple[int, str]]]:
    """Create the view ``raw`` over one input file: ``row`` (line of a CSV record, 1-based row of a Parquet file) and
    the canonical columns. Returns ({time column: "tz" | "naive" | "text" | "absent"}, malformed CSV records).

    Raises ValueError naming the missing columns when the file lacks a required one."""
    aliases = ALIASES[table]
    wanted = REQUIRED[table] + OPTIONAL[table]
    kinds: dict[str, str] = {}
    malformed: list[tuple[int, str]] = []
    if path.suffix.lower() == ".parquet":
        schema = pq.read_schema(path)
        mapping: dict[str, str] = {}
        for name in schema.names:
            canonical = aliases.get(name.strip().lower())
            if canonical and canonical not in mapping:
                mapping[canonical] = name
        missing = [c for c in REQUIRED[table] if c not in mapping]
        if missing:
            raise ValueError(f"missing column(s) {', '.join(missing)} (has {', '.join(schema.names)})")
        select = ["file_row_number + 1 AS row"]
        for column in wanted:
            if column not in mapping:
                select.append(f"NULL::VARCHAR AS {column}")
                kinds[column] = "absent"
                continue
            source = _quote(mapping[column])
            ftype = schema.field(mapping[column]).type
            if pa.types.is_dictionary(ftype):
                ftype = ftype.value_type
            if column in TIME_COLUMNS[table] and pa.types.is_timestamp(ftype):
                kinds[column] = "tz" if ftype.tz else "naive"
                select.append(f"{source} AS {column}")
            elif column in TIME_COLUMNS[table] and pa.types.is_date(ftype):
                kinds[column] = "naive"
                select.append(f"CAST({source} AS TIMESTAMP) AS {column}")
            else:
                kinds[column] = "text"
                select.append(f"CAST({source} AS VARCHAR) AS {column}")
        con.execute(f"CREATE OR REPLACE TEMP VIEW raw AS SELECT {', '.join(select)} "
                    f"FROM read_parquet({duck.sql_string(path)}, file_row_number = true, "
                    f"hive_partitioning = false)")
        return kinds, malformed
    from jingkong.people.csvread import read_csv

    data = read_csv(path, aliases=aliases, expected=wanted)
    missing = [c for c in REQUIRED[table] if c not in data.columns]
    if missing and data.columns:  # (a file without even a header is empty: no rows, nothing to report)
        raise ValueError(f"missing column(s) {', '.join(missing)} (has {', '.join(data.columns)})")
    columns = {"row": pa.array(data.lines, pa.int64())}
    for column in wanted:
        present = column in data.columns
        kinds[column] = "text" if present else "absent"
        values = data.table.column(column) if present else pa.nulls(data.table.num_rows, pa.string())
        columns[column] = values
    con.register("raw_arrow", pa.table(columns))
    con.execute("CREATE OR REPLACE TEMP VIEW raw AS SELECT * FROM raw_arrow")
    return kinds, data.malformed


_OFFSET = r"\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*([Zz]|[+-]\d{2}(:?\d{2})?)$"
_NAIVE_FORMATS = ["%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y%m%d %H:%M:%S", "%Y%m%d%H%M%S",
                  "%Y年%m月%d日 %H:%M:%S", "%Y年%m月%d日 %H:%M"]


def _time_sql(column: str, kind: str) -> tuple[str, str, str]:
    """SQL for (value as TIMESTAMPTZ or NULL, present?, written without a zone?) of a raw time column."""
    c = column
    if kind == "absent":
        return "NULL::TIMESTAMPTZ", "false", "false"
    if kind == "tz":
        return c, f"({c} IS NOT NULL)", "false"
    if kind == "naive":
        return _from_local(c), f"({c} IS NOT NULL)", f"({c} IS NOT NULL)"
    text = f"trim({c})"
    has_offset = f"regexp_matches({text}, '{_OFFSET}')"
    formats = "[" + ", ".join(f"'{f}'" for f in _NAIVE_FORMATS) + "]"
    value = (f"CASE WHEN {has_offset} THEN TRY_CAST({text} AS TIMESTAMPTZ) "
             f"ELSE {_from_local(f'COALESCE(TRY_CAST({text} AS TIMESTAMP), try_strptime({text}, {formats}))')} END")
    present = f"({c} IS NOT NULL AND {text} <> '')"
    return value, present, f"({present} AND NOT {has_offset})"


def _from_local(expr: str) -> str:
    """SQL: a TIMESTAMP read as Asia/Shanghai wall-clock time → TIMESTAMPTZ (exact to the microsecond)."""
    return f"to_timestamp((epoch_us({expr}) - {LOCAL_OFFSET_US}) / 1000000)"


def _local_day(expr: str) -> str:
    """SQL: the Asia/Shanghai date of a TIMESTAMPTZ."""
    return f"CAST(make_timestamp(epoch_us({expr}) + {LOCAL_OFFSET_US}) AS DATE)"


def _text(column: str) -> str:
    return f"NULLIF(trim({column}), '')"


# ---------------------------------------------------------------------------------------------------------------------
# Per-table normalization: SQL producing the temp table ``norm`` with ``row``, ``reason`` (NULL: the row is good),
# flag columns, the lake's columns and (for partitioned tables) ``day``.


@dataclass(frozen=True)
class TableSpec:
    name: str
    schema: pa.Schema
    partitioned: bool
    order: str  # ORDER BY of the lake files
    flags: dict[str, str]  # flag column → reason text
    sample_columns: tuple[str, ...]  # raw columns shown in sample rows
    normalize: Callable[[dict[str, str], dict], str]


def _checkins_sql(kinds: dict[str, str], options: dict) -> str:
    cin, cin_present, cin_naive = _time_sql("r.checkin_at", kinds["checkin_at"])
    cout, cout_present, cout_naive = _time_sql("r.checkout_at", kinds["checkout_at"])
    dwell = int(options.get("default_dwell_minutes", DEFAULT_DWELL_MINUTES))
    return f"""
    CREATE OR REPLACE TEMP TABLE norm AS
    WITH t AS (
        SELECT r.row, r.id_number, r.venue_code, m.person_id, m.reason AS id_reason, v.venue_id,
               {cin} AS cin, {cin_present} AS cin_present, {cin_naive} AS cin_naive,
               {cout} AS cout, {cout_present} AS cout_present, {cout_naive} AS cout_naive
        FROM raw r
        LEFT JOIN idmap m ON m.id_raw = r.id_number
        LEFT JOIN venues v ON v.code = trim(r.venue_code)
    )
    SELECT row,
        CASE
            WHEN {_text('id_number')} IS NULL THEN 'id_number: missing'
            WHEN id_reason IS NOT NULL THEN id_reason
            WHEN {_text('venue_code')} IS NULL THEN 'venue_code: missing'
            WHEN venue_id IS NULL THEN 'venue_code: unknown venue (not on the base map)'
            WHEN NOT cin_present THEN 'checkin_at: missing'
            WHEN cin IS NULL THEN 'checkin_at: not a date-time'
            WHEN cout_present AND cout IS NULL THEN 'checkout_at: not a date-time'
            WHEN cout < cin THEN 'checkout_at: before checkin_at'
        END AS reason,
        (cin_naive OR cout_naive) AS flag_naive,
        NOT cout_present AS flag_no_checkout,
        (epoch_us(cout) - epoch_us(cin) > {LONG_STAY_HOURS * 3600 * 1_000_000}) AS flag_long,
        person_id, venue_id::INTEGER AS venue_id, cin AS checkin_at,
        COALESCE(cout, to_timestamp((epoch_us(cin) + {dwell * 60_000_000}) / 1000000)) AS checkout_at,
        {_local_day("cin")} AS day,
        CASE WHEN venue_id IS NULL THEN trim(venue_code) END AS unknown_code
    FROM t
    """


def _pings_sql(kinds: dict[str, str], options: dict) -> str:
    at, at_present, at_naive = _time_sql("r.at", kinds["at"])
    return f"""
    CREATE OR REPLACE TEMP TABLE norm AS
    WITH t AS (
        SELECT r.row, r.id_number, m.person_id,
               m.reason AS id_reason, TRY_CAST(trim(r.lon) AS DOUBLE) AS lon, TRY_CAST(trim(r.lat) AS DOUBLE) AS lat,
               {at} AS at_value, {at_present} AS at_present, {at_naive} AS at_naive
        FROM raw r LEFT JOIN idmap m ON m.id_raw = r.id_number
    )
    SELECT row,
        CASE
            WHEN {_text('id_number')} IS NULL THEN 'id_number: missing'
            WHEN id_reason IS NOT NULL THEN id_reason
            WHEN lon IS NULL OR NOT isfinite(lon) OR abs(lon) > 180 THEN 'lon: not a longitude'
            WHEN lat IS NULL OR NOT isfinite(lat) OR abs(lat) > 90 THEN 'lat: not a latitude'
            WHEN NOT at_present THEN 'at: missing'
            WHEN at_value IS NULL THEN 'at: not a date-time'
        END AS reason,
        at_naive AS flag_naive,
        person_id, lon, lat, at_value AS "at", {_local_day("at_value")} AS day
    FROM t
    """


def _transport_sql(kinds: dict[str, str], options: dict) -> str:
    modes = ", ".join(f"('{k}', '{v}')" for k, v in MODE_ALIASES.items())
    return f"""
    CREATE OR REPLACE TEMP TABLE norm AS
    WITH modes(alias, mode) AS (VALUES {modes}),
    t AS (
        SELECT r.row, r.id_number, m.person_id, m.reason AS id_reason, md.mode,
               upper(regexp_replace(trim(r.number), '\\s+', '', 'g')) AS number,
               COALESCE(TRY_CAST(trim(r.date) AS DATE),
                        CAST(try_strptime(trim(r.date), ['%Y/%m/%d', '%Y%m%d', '%Y年%m月%d日']) AS DATE)) AS date,
               NULLIF(upper(ltrim(trim(regexp_replace(trim(COALESCE(r.carriage, '')), '{CARRIAGE_WORDS}', '', 'g')),
                                  '0')), '') AS carriage,
               NULLIF(upper(trim(regexp_replace(trim(COALESCE(r.seat, '')), '{SEAT_WORDS}', '', 'g'))), '') AS seat
        FROM raw r
        LEFT JOIN idmap m ON m.id_raw = r.id_number
        LEFT JOIN modes md ON md.alias = lower(trim(r.mode))
    )
    SELECT row,
        CASE
            WHEN {_text('id_number')} IS NULL THEN 'id_number: missing'
            WHEN id_reason IS NOT NULL THEN id_reason
            WHEN mode IS NULL THEN 'mode: not one of train, flight, bus, ship'
            WHEN number IS NULL OR number = '' THEN 'number: missing'
            WHEN date IS NULL THEN 'date: not a date'
        END AS reason,
        person_id, mode, number, date, carriage, seat
    FROM t
    """


SPECS = {
    "checkins": TableSpec(
        "checkins", CHECKIN_SCHEMA, True, "venue_id, checkin_at, person_id, checkout_at",
        {"flag_naive": f"time without a zone: read as {LOCAL_TZ} time",
         "flag_no_checkout": "checkout_at missing: check-in + {default_dwell_minutes} min assumed",
         "flag_long": f"stay longer than {LONG_STAY_HOURS} hours"},
        ("id_number", "venue_code", "checkin_at", "checkout_at"), _checkins_sql),
    "pings": TableSpec(
        "pings", PING_SCHEMA, True, 'person_id, "at", lon, lat',
        {"flag_naive": f"time without a zone: read as {LOCAL_TZ} time"},
        ("id_number", "lon", "lat", "at"), _pings_sql),
    "transport": TableSpec(
        "transport", TRANSPORT_SCHEMA, False, "mode, number, date, carriage, seat, person_id",
        {}, ("id_number", "mode", "number", "date"), _transport_sql),
}


# ---------------------------------------------------------------------------------------------------------------------
# Loading


def source_name(directory: str | Path, table: str) -> str:
    """The default source name of an export: its directory's name (the district's for ``DIR/<table>``)."""
    path = Path(directory).resolve()
    if path.is_file():
        path = path.parent
    if path.name == table and path.parent.name:
        path = path.parent
    return _clean_source(path.name)


def _clean_source(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.=-]+", "_", name).strip("._") or "export"
    return cleaned[:80]


def checkins_load(directory: str | Path, *, lake: CheckinLake | None = None, progress: Progress | None = None,
                  source: str | None = None, default_dwell_minutes: int = DEFAULT_DWELL_MINUTES) -> LoadReport:
    """Ingest a raw check-in export (Parquet or CSV with venue_code, id_number, checkin_at[, checkout_at]); see the
    module docstring. Returns the report of what was loaded, rejected and flagged."""
    if isinstance(default_dwell_minutes, bool) or not isinstance(default_dwell_minutes, int) \
            or not 1 <= default_dwell_minutes <= 24 * 60:
        raise ValidationFailed(f"default_dwell_minutes: must be a whole number of minutes from 1 to {24 * 60}, got "
                               f"{default_dwell_minutes!r}", extra={"field": "default_dwell_minutes"})
    return _load("checkins", directory, lake=lake, progress=progress, source=source,
                 options={"default_dwell_minutes": default_dwell_minutes})


def pings_load(directory: str | Path, *, lake: CheckinLake | None = None, progress: Progress | None = None,
               source: str | None = None) -> LoadReport:
    """Ingest location pings (id_number, lon, lat, at) into ``pings/day=…``."""
    return _load("pings", directory, lake=lake, progress=progress, source=source, options={})


def transport_load(directory: str | Path, *, lake: CheckinLake | None = None, progress: Progress | None = None,
                   source: str | None = None) -> LoadReport:
    """Ingest transport passenger lists (id_number, mode, number, date[, carriage, seat]) into ``transport/``."""
    return _load("transport", directory, lake=lake, progress=progress, source=source, options={})


def _load(table: str, directory, *, lake, progress, source, options) -> LoadReport:
    t0 = time.perf_counter()
    lake = lake or CheckinLake()
    spec = SPECS[table]
    base, files = input_files(directory, table)
    name = _clean_source(source) if source else source_name(directory, table)
    report = LoadReport(table=table, source=name, lake=str(lake.root), files=len(files))
    if not files:
        raise ValidationFailed(f"no {table} files (*.parquet, *.csv) under {directory}", extra={"field": "directory"})
    say = progress or (lambda done, total, message: None)
    staging = lake.tmp_dir / f"load-{table}-{uuid.uuid4().hex[:12]}"
    staging.mkdir(parents=True, exist_ok=True)
    con = duck.connect(temp_directory=staging / "duckdb")
    total_steps = len(files) + 2
    try:
        con.register("persons", duck.person_hashes())
        if table == "checkins":
            con.register("venues", duck.venue_codes())
        con.execute("CREATE TEMP TABLE idmap (id_raw VARCHAR, person_id BIGINT, reason VARCHAR)")
        say(0, total_steps, f"{len(files)} file(s) of {table} from {base}")
        for n, path in enumerate(files):
            rel = str(path.relative_to(base)) if path.is_relative_to(base) else path.name
            try:
                kinds, malformed = _register_raw(con, path, table)
            except (ValueError, OSError, pa.ArrowException, ValidationFailed) as exc:
                report.add("errors", "file: unreadable or missing columns", 0, [{"file": rel, "detail": str(exc)}])
                report.partial = True
                continue
            for line, reason in malformed:
                report.add("errors", "record: malformed (" + re.sub(r"\d+", "N", reason) + ")", 1,
                           [{"file": rel, "row": line, "detail": reason}])
            report.rejected += len(malformed)
            report.rows += len(malformed)
            _extend_idmap(con)
            con.execute(spec.normalize(kinds, options))
            _collect(con, spec, report, rel, options)
            out = staging / f"f{n:05d}"
            columns = ", ".join(_quote(c) for c in spec.schema.names)
            if spec.partitioned:
                con.execute(f"COPY (SELECT {columns}, day FROM norm WHERE reason IS NULL) TO {duck.sql_string(out)} "
                            f"(FORMAT parquet, PARTITION_BY (day), COMPRESSION zstd)")
            else:
                out.mkdir()
                con.execute(f"COPY (SELECT {columns} FROM norm WHERE reason IS NULL) TO {duck.sql_string(out / 'part.parquet')} "
                            f"(FORMAT parquet, COMPRESSION zstd)")
            con.execute("DROP TABLE norm")
            say(n + 1, total_steps, f"{rel}: {report.rows:,} rows read so far")
        _publish(con, lake, spec, staging, report)
        say(total_steps - 1, total_steps, f"{report.loaded:,} rows in {len(report.days)} day(s)")
    finally:
        con.close()
        shutil.rmtree(staging, ignore_errors=True)
    report.seconds = round(time.perf_counter() - t0, 3)
    _announce(report)
    say(total_steps, total_steps, "done")
    return report


def _extend_idmap(con) -> None:
    """Validate and hash the ID numbers of ``raw`` not seen before in this load, and map them to persons."""
    from jingkong.people.idnumber import id_hash_many

    new = duck.fetch_arrow(con, """SELECT DISTINCT id_number AS id_raw FROM raw
                         WHERE id_number IS NOT NULL AND trim(id_number) <> ''
                           AND id_number NOT IN (SELECT id_raw FROM idmap)""")
    if new.num_rows == 0:
        return
    normalized, reasons = validate_ids(new.column("id_raw").combine_chunks())
    valid = pc.is_valid(normalized)
    hashes = [None] * len(normalized)
    positions = np.flatnonzero(valid.to_numpy(zero_copy_only=False))
    values = normalized.take(pa.array(positions)).to_pylist()
    for i, h in zip(positions, id_hash_many(values), strict=True):
        hashes[i] = h
    con.register("new_ids", pa.table({"id_raw": new.column("id_raw"), "id_hash": pa.array(hashes, pa.string()),
                                      "reason": reasons}))
    con.execute("""INSERT INTO idmap
                   SELECT n.id_raw, p.person_id,
                          CASE WHEN n.reason IS NOT NULL THEN n.reason
                               WHEN p.person_id IS NULL THEN 'id_number: unknown person (not in the registry)' END
                   FROM new_ids n LEFT JOIN persons p ON p.id_hash = n.id_hash""")
    con.unregister("new_ids")


def _collect(con, spec: TableSpec, report: LoadReport, rel: str, options: dict) -> None:
    """Counts (one pass over ``norm``) and sample rows (raw values, IDs masked) of the rejected and flagged rows."""
    from jingkong.people.idnumber import id_mask

    flags = list(spec.flags)
    counts = con.execute(f"SELECT reason, {', '.join(flags + ['count(*)'])} FROM norm GROUP BY ALL").fetchall()
    errors: dict[str, int] = {}
    flagged = dict.fromkeys(flags, 0)
    for reason, *values in counts:
        n = values[-1]
        report.rows += n
        if reason is not None:
            errors[reason] = errors.get(reason, 0) + n
            continue
        for column, value in zip(flags, values[:-1], strict=True):
            if value:
                flagged[column] += n
    buckets = [("errors", "reason", "reason IS NOT NULL", errors)] if errors else []
    buckets += [("flags", "'" + spec.flags[c].format(**options).replace("'", "''") + "'", f"reason IS NULL AND {c}",
                 {spec.flags[c].format(**options): n}) for c, n in flagged.items() if n]
    raw_columns = ", ".join(f"CAST(r.{_quote(c)} AS VARCHAR)" for c in spec.sample_columns)
    for bucket, label, condition, found in buckets:
        samples = con.execute(f"""
            WITH s AS (SELECT {label} AS why, row FROM norm WHERE {condition}
                       QUALIFY row_number() OVER (PARTITION BY {label} ORDER BY row) <= {SAMPLES})
            SELECT s.why, s.row, {raw_columns} FROM s JOIN raw r ON r.row = s.row ORDER BY s.row""").fetchall()
        by_reason: dict[str, list[dict]] = {}
        for why, row, *values in samples:
            item = {"file": rel, "row": row}
            for column, value in zip(spec.sample_columns, values, strict=True):
                item[column] = id_mask(value) if column == "id_number" and value else value
            by_reason.setdefault(why, []).append(item)
        for why, n in found.items():
            report.add(bucket, why, n, by_reason.get(why, []))
            if bucket == "errors":
                report.rejected += n
    if spec.name == "checkins" and any(r.startswith("venue_code: unknown") for r in errors):
        for code, n in con.execute("""SELECT unknown_code, count(*) FROM norm
                                      WHERE reason LIKE 'venue_code: unknown%' GROUP BY 1""").fetchall():
            report.unknown_venues[code] = report.unknown_venues.get(code, 0) + n


def _publish(con, lake: CheckinLake, spec: TableSpec, staging: Path, report: LoadReport) -> None:
    """Write this source's file of each day sorted (duplicates merged) and swap it in; remove the source's days that
    the load no longer has."""
    target = lake.table_dir(spec.name)
    target.mkdir(parents=True, exist_ok=True)
    filename = f"src-{report.source}.parquet"
    columns = ", ".join(_quote(c) for c in spec.schema.names)
    written_dirs: set[Path] = set()
    if spec.partitioned:
        days = sorted({p.name[4:] for p in staging.glob("f*/day=*") if p.is_dir()})
        groups = [(day, sorted(staging.glob(f"f*/day={day}/*.parquet")), target / f"day={day}") for day in days]
    else:
        parts = sorted(staging.glob("f*/part.parquet"))
        groups = [("", parts, target)] if parts else []
    for day, parts, directory in groups:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{filename}.{uuid.uuid4().hex[:8]}.tmp"
        staged = con.execute(f"SELECT count(*) FROM read_parquet({duck.sql_list(parts)}, hive_partitioning = false)"
                             ).fetchone()[0]
        con.execute(f"""COPY (SELECT DISTINCT {columns}
                              FROM read_parquet({duck.sql_list(parts)}, hive_partitioning = false)
                              ORDER BY {spec.order})
                        TO {duck.sql_string(tmp)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP})""")
        rows = pq.ParquetFile(tmp).metadata.num_rows
        tmp.replace(directory / filename)  # atomic: readers see the old file or the new one
        written_dirs.add(directory)
        report.loaded += rows
        if day:
            report.days[day] = rows
        if staged > rows:
            report.add("flags", "duplicate row (the same row more than once; kept once)", staged - rows)
    # Days (or the whole table) this source had before but not now: the lake holds what the source holds now —
    # unless a file could not be read (then those days may well still be in the source).
    if report.partial:
        return
    stale = [p for p in target.glob(f"day=*/{filename}" if spec.partitioned else filename)
             if p.parent not in written_dirs]
    for path in stale:
        path.unlink(missing_ok=True)
        if spec.partitioned:
            report.removed_days.append(path.parent.name[4:])
            if not any(path.parent.iterdir()):
                path.parent.rmdir()
    report.removed_days.sort()


def _announce(report: LoadReport) -> None:
    """A domain event, so that features can react to new check-ins (e.g. re-run contact finding)."""
    from django.db import transaction

    from jingkong.core.events import emit

    with transaction.atomic():
        emit(f"tracing.{report.table}_loaded", payload={
            "source": report.source, "rows": report.rows, "loaded": report.loaded, "rejected": report.rejected,
            "days": sorted(report.days), "removed_days": report.removed_days,
        })


# ---------------------------------------------------------------------------------------------------------------------
# Jobs (the command line runs them with jobs.run_now; the server enqueues them)


def _job(loader, ctx, directory: str, source: str | None = None, lake: str | None = None, **options) -> dict:
    report = loader(directory, lake=CheckinLake(lake) if lake else None, progress=ctx.progress, source=source,
                    **options)
    return report.as_dict()


@jobs.register("tracing.load_checkins")
def load_checkins_job(ctx, directory: str, source: str | None = None, lake: str | None = None,
                      default_dwell_minutes: int = DEFAULT_DWELL_MINUTES) -> dict:
    return _job(checkins_load, ctx, directory, source, lake, default_dwell_minutes=default_dwell_minutes)


@jobs.register("tracing.load_pings")
def load_pings_job(ctx, directory: str, source: str | None = None, lake: str | None = None) -> dict:
    return _job(pings_load, ctx, directory, source, lake)


@jobs.register("tracing.load_transport")
def load_transport_job(ctx, directory: str, source: str | None = None, lake: str | None = None) -> dict:
    return _job(transport_load, ctx, directory, source, lake)
