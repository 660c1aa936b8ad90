"""Venue-entry scans as check-ins in the tracing check-in lake (jingkong/tracing/lake.py).

The lake has loaders for whole exports (``checkins_load``) but no append function, so venue entries are written in
the lake's own layout with its own schema and conventions: ``checkins/day=YYYY-MM-DD/src-venue_entry.parquet``
(``CHECKIN_SCHEMA``: person_id, venue_id, checkin_at, checkout_at; ``day`` the Asia/Shanghai date; sorted by
(venue_id, checkin_at); a check-in without a check-out lasts the lake's ``DEFAULT_DWELL_MINUTES``). Readers
(``CheckinLake.stays_of``, contact finding) read every ``*.parquet`` of a day, so these rows are found with the others.

Appending rewrites the day's file (read, add, de-duplicate, sort, write to a temporary file, rename: atomic for
readers) under an exclusive file lock, so concurrent requests never lose each other's rows. Idempotent: the service
appends only entries it has just inserted (``client_id`` is unique in the database), and identical rows are kept once.
:func:`rebuild_days` writes the days again from the database (the source of truth); a failed append triggers it
at once for that day, and a day that still cannot be written is noted and rebuilt by the next append.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import uuid
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from jingkong.tracing.lake import CHECKIN_SCHEMA, DEFAULT_DWELL_MINUTES, ROW_GROUP, CheckinLake, local_date

SOURCE = "venue_entry"
FILENAME = f"src-{SOURCE}.parquet"
log = logging.getLogger(__name__)


def _table(rows: Iterable[tuple[int, int, dt.datetime]]) -> pa.Table:
    rows = list(rows)
    dwell = dt.timedelta(minutes=DEFAULT_DWELL_MINUTES)
    return pa.table({
        "person_id": pa.array([r[0] for r in rows], pa.int64()),
        "venue_id": pa.array([r[1] for r in rows], pa.int32()),
        "checkin_at": pa.array([r[2].astimezone(dt.UTC) for r in rows], CHECKIN_SCHEMA.field("checkin_at").type),
        "checkout_at": pa.array([(r[2] + dwell).astimezone(dt.UTC) for r in rows],
                                CHECKIN_SCHEMA.field("checkout_at").type),
    }, schema=CHECKIN_SCHEMA)


def _write_day(lake: CheckinLake, day: dt.date, table: pa.Table, *, replace: bool) -> int:
    directory = lake.table_dir("checkins") / f"day={day.isoformat()}"
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / FILENAME
    if not replace and target.exists():
        table = pa.concat_tables([pq.read_table(target, schema=CHECKIN_SCHEMA), table])
    if table.num_rows:
        table = table.group_by(CHECKIN_SCHEMA.names).aggregate([])  # identical rows once
        table = table.select(CHECKIN_SCHEMA.names).cast(CHECKIN_SCHEMA)
        table = table.take(pc.sort_indices(table, sort_keys=[("venue_id", "ascending"), ("checkin_at", "ascending"),
                                                             ("person_id", "ascending")]))
    elif replace:
        target.unlink(missing_ok=True)
        return 0
    tmp = directory / f".{FILENAME}.{uuid.uuid4().hex[:8]}.tmp"
    pq.write_table(table, tmp, compression="zstd", row_group_size=ROW_GROUP)
    tmp.replace(target)
    return table.num_rows


class _Lock:
    def __init__(self, lake: CheckinLake):
        lake.root.mkdir(parents=True, exist_ok=True)
        self.path = lake.root / f".{SOURCE}.lock"

    def __enter__(self):
        self.fd = open(self.path, "a")  # noqa: SIM115 - closed in __exit__
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        self.fd.close()


def _pending_path(lake: CheckinLake) -> Path:
    return lake.root / f".{SOURCE}.pending"


def _pending_days(lake: CheckinLake) -> set[dt.date]:
    path = _pending_path(lake)
    if not path.exists():
        return set()
    days = set()
    for line in path.read_text(encoding="ascii", errors="replace").split():
        try:
            days.add(dt.date.fromisoformat(line))
        except ValueError:
            continue
    return days


def _remember_pending(lake: CheckinLake, days: Iterable[dt.date]) -> None:
    """Note days whose file could not be written: the next append rebuilds them from the database."""
    try:
        lake.root.mkdir(parents=True, exist_ok=True)
        with open(_pending_path(lake), "a", encoding="ascii") as fh:
            fh.write("".join(f"{d.isoformat()}\n" for d in sorted(set(days))))
    except OSError:
        log.exception("days to rebuild in the check-in lake could not be noted: run checkpoint_lake.rebuild_days(%s)",
                      sorted(d.isoformat() for d in days))


def _rebuild_locked(lake: CheckinLake, days: Iterable[dt.date]) -> dict[str, int]:
    from zoneinfo import ZoneInfo

    from jingkong.codes.models import VenueEntry

    tz = ZoneInfo("Asia/Shanghai")
    out = {}
    for day in sorted(set(days)):
        start = dt.datetime.combine(day, dt.time(), tzinfo=tz)
        rows = VenueEntry.objects.filter(at__gte=start, at__lt=start + dt.timedelta(days=1)).values_list(
            "person_id", "venue_id", "at")
        out[day.isoformat()] = _write_day(lake, day, _table(rows), replace=True)
    return out


def append_checkins(rows: Iterable[tuple[int, int, dt.datetime]], *, lake: CheckinLake | None = None) -> int:
    """Add check-ins (person id, venue id, time) to their days' files. Called after the entries' transaction commits,
    so it never raises: the entries are in the database (the source of truth). When a day's file cannot be appended
    to (unreadable file, full disk), the day is rebuilt from the database at once; when that fails too, the day is
    noted and rebuilt by the next append (or :func:`rebuild_days`). Days noted earlier are rebuilt first."""
    rows = list(rows)
    if not rows:
        return 0
    lake = lake or CheckinLake()
    by_day: dict[dt.date, list] = {}
    for r in rows:
        by_day.setdefault(local_date(r[2]), []).append(r)
    written = 0
    failed: set[dt.date] = set()
    try:
        with _Lock(lake):
            pending = _pending_days(lake)
            if pending:
                try:
                    _rebuild_locked(lake, pending)
                    _pending_path(lake).unlink(missing_ok=True)
                    log.warning("check-in lake: rebuilt days %s from the database", sorted(map(str, pending)))
                except Exception:
                    log.exception("check-in lake: days %s still cannot be rebuilt", sorted(map(str, pending)))
            for day, day_rows in sorted(by_day.items()):
                if day in pending:
                    written += len(day_rows)  # the rebuild above read them from the database
                    continue
                try:
                    _write_day(lake, day, _table(day_rows), replace=False)
                except Exception:
                    log.exception("check-in lake: day %s could not be appended to; rebuilding it", day)
                    try:
                        _rebuild_locked(lake, [day])
                    except Exception:
                        log.exception("check-in lake: day %s could not be rebuilt either", day)
                        failed.add(day)
                        continue
                written += len(day_rows)
    except Exception:
        log.exception("venue entries could not be appended to the check-in lake (%s rows)", len(rows))
        failed = set(by_day)
    if failed:
        _remember_pending(lake, failed)
    return written


def rebuild_days(days: Iterable[dt.date], *, lake: CheckinLake | None = None) -> dict[str, int]:
    """Write the venue-entry file of each day again from the database (rows per day)."""
    lake = lake or CheckinLake()
    days = set(days)
    with _Lock(lake):
        out = _rebuild_locked(lake, days)
        left = _pending_days(lake) - days
        if not left:
            _pending_path(lake).unlink(missing_ok=True)
    return out


def files(lake: CheckinLake | None = None) -> list[Path]:
    lake = lake or CheckinLake()
    return sorted(lake.table_dir("checkins").glob(f"day=*/{FILENAME}"))
