"""Keeping the figures current from the domain event stream.

:func:`run_pending` looks at each family: when events of its trigger types arrived since it last took the stream in
(or its source marks moved, or the local day changed, or it is older than ``max_age``), and ``min_interval`` has
passed, it claims the family (one conditional UPDATE, so two processes never recompute the same family at once),
recomputes it set-based and replaces its rows in one transaction. Readers never wait for a recompute: they read the
last committed figures and the ``refreshed_at`` shown as "as of" on the screen. A family whose computation fails keeps
its last figures, records the error and is tried again after :data:`ERROR_BACKOFF` (the others go on).

Who calls it: the job worker between jobs (``jingkong serve`` runs one), the live stream of an open dashboard (so a
server without a worker stays current too), the first read of a family that was never computed, ``jingkong dashboard
refresh`` and the demo.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Max, Q

from jingkong.core import bulk, clock
from jingkong.core.models import DomainEvent
from jingkong.dashboard import families as registry
from jingkong.dashboard.metrics import METRICS
from jingkong.dashboard.models import Figure, RefreshState

log = logging.getLogger(__name__)

CLAIM_SECONDS = 300
ANALYZE_ROWS = 10_000
STRETCH = 3  # wait at least this many times the last computation's duration between two refreshes
ERROR_BACKOFF = 30.0  # seconds before a family whose compute failed is tried again


def _local_day(at: dt.datetime) -> dt.date:
    return at.astimezone(ZoneInfo(clock.local_time_zone())).date()


def _latest_event_id() -> int:
    return DomainEvent.objects.aggregate(m=Max("id"))["m"] or 0


def _new_event_types(after: int, upto: int) -> dict[str, int]:
    """The event types seen in ``(after, upto]`` with the largest id of each: ONE grouped query for every family of
    a pass (the idle hook runs every second; a query per family and trigger adds up)."""
    if upto <= after:
        return {}
    return dict(DomainEvent.objects.filter(id__gt=after, id__lte=upto).values("type").annotate(m=Max("id"))
                .order_by().values_list("type", "m"))


def _has_new_events(family: registry.Family, after: int, upto: int, seen: dict[str, int] | None = None) -> bool:
    """Events of the family's trigger types in ``(after, upto]``. ``seen``: :func:`_new_event_types` of a range
    that starts at or before ``after`` (no query then)."""
    if not family.triggers or upto <= after:
        return False
    if seen is not None:
        return any(last > after and kind.startswith(family.triggers) for kind, last in seen.items())
    match = Q()
    for prefix in family.triggers:
        match |= Q(type__startswith=prefix)
    return DomainEvent.objects.filter(match, id__gt=after, id__lte=upto).exists()


def _waited(family: registry.Family, state: RefreshState, wall: dt.datetime) -> bool:
    """``min_interval`` (stretched to :data:`STRETCH` × the last computation) has passed since the last refresh."""
    if state.refreshed_at is None:
        return True
    # refreshed_at is wall time (how fresh the figures are); "today" comes from the platform clock
    age = (wall - state.refreshed_at).total_seconds()
    # A family that takes long to compute waits proportionally longer, so a busy district (scans every second, a
    # 1 M-person coverage query) never keeps a worker recomputing the same family back to back.
    return age >= max(family.min_interval, STRETCH * state.duration_ms / 1000)


def _due(family: registry.Family, state: RefreshState, *, latest: int, marks: dict, at: dt.datetime,
         wall: dt.datetime, seen: dict[str, int] | None = None) -> bool:
    if state.refreshed_at is None:
        return True
    if not _waited(family, state, wall):
        return False
    if (wall - state.refreshed_at).total_seconds() >= family.max_age:
        return True
    if marks != {k: v for k, v in (state.marks or {}).items() if k != "_at"}:
        return True
    if (state.marks or {}).get("_day") != _local_day(at).isoformat():
        return True
    return _has_new_events(family, state.last_event_id, latest, seen)


def _claim(name: str, wall: dt.datetime, version: int | None = None) -> bool:
    """Take the family for :data:`CLAIM_SECONDS` (one conditional UPDATE). ``version``: the version the caller judged
    the family due at — when another process refreshed it since (a pass that spent seconds on other families read a
    stale state), the claim fails instead of recomputing the same figures back to back."""
    RefreshState.objects.get_or_create(family=name)
    free = RefreshState.objects.filter(family=name).filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=wall))
    if version is not None:
        free = free.filter(version=version)
    return bool(free.update(claimed_until=wall + dt.timedelta(seconds=CLAIM_SECONDS)))


def _validate(family: registry.Family, rows) -> list[tuple]:
    """Check each row against the metric contract; return tuples in the column order of :data:`_COLUMNS`."""
    out = []
    for metric, key, region_code, day, value in rows:
        spec = METRICS.get(metric)
        if spec is None or spec.family != family.name:
            raise ValueError(f"family {family.name!r} wrote metric {metric!r}, which is not one of its metrics")
        if spec.day and day is None:
            raise ValueError(f"metric {metric!r} needs a day")
        out.append((family.name, metric, key or "", region_code or "", day if spec.day else None, float(value)))
    return out


_COLUMNS = ("family", "metric", "key", "region_code", "day", "value")


def refresh_family(name: str, *, at: dt.datetime | None = None, latest: int | None = None,
                   marks: dict | None = None) -> int:
    """Recompute one family now (the caller has claimed it, or does not care). Returns the rows written."""
    family = registry.get(name)
    at = at or clock.now()
    latest = _latest_event_id() if latest is None else latest
    marks = dict(family.marks() if family.marks else {}) if marks is None else marks
    started = time.perf_counter()
    figures = _validate(family, family.compute(at))
    with transaction.atomic():
        Figure.objects.filter(family=name).delete()
        bulk.bulk_insert(Figure._meta.db_table, _COLUMNS, figures)  # COPY on PostgreSQL, executemany on SQLite
        state = RefreshState.objects.select_for_update().get(family=name) if RefreshState.objects.filter(
            family=name).exists() else RefreshState.objects.create(family=name)
        state.last_event_id = latest
        # "_at": the platform-clock instant the figures describe (the screen's "as of"; differs from refreshed_at,
        # the wall time used for scheduling, when a demo replays an outbreak)
        state.marks = {**marks, "_day": _local_day(at).isoformat(), "_at": at.isoformat()}
        state.refreshed_at = dt.datetime.now(dt.UTC)
        state.duration_ms = int((time.perf_counter() - started) * 1000)
        state.rows = len(figures)
        state.claimed_until = None
        state.error = ""
        state.version = (state.version or 0) + 1
        state.save()
    if connection.vendor == "postgresql" and len(figures) >= ANALYZE_ROWS:
        # The whole family was replaced: fresh planner statistics keep the screen's GROUP BY in memory (stale
        # estimates made /summary sort on disk, ~1 s instead of ~0.2 s at 240 k figure rows).
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(Figure._meta.db_table)}")
    return len(figures)


def run_pending(*, at: dt.datetime | None = None, force: bool = False, only: list[str] | None = None,
                max_duration_ms: int | None = None) -> list[str]:
    """Recompute every family that is due (all of them with ``force``). Returns the names recomputed.

    Cheap when nothing is due (the worker calls it every idle second, each open screen every 2 s): the states in one
    query; a family still inside its interval, or claimed by another process, costs nothing more; the others share
    one grouped query over the new events and one MAX per source mark (:func:`registry.marks_pass`)."""
    registry.load_all()
    at = at or clock.now()
    day = _local_day(at).isoformat()
    latest = _latest_event_id()
    states = {s.family: s for s in RefreshState.objects.all()}
    wall = dt.datetime.now(dt.UTC)
    candidates = []
    for name, family in sorted(registry.all_families().items()):
        if only and name not in only:
            continue
        state = states.get(name) or RefreshState(family=name)
        if max_duration_ms is not None and state.refreshed_at is not None and state.duration_ms > max_duration_ms:
            continue  # a slow family is left to the job worker (a screen's stream must not stall on it)
        if state.claimed_until is not None and state.claimed_until >= wall:
            continue  # another process is at it (or it failed a moment ago: retried after its back-off)
        if force or _waited(family, state, wall):
            candidates.append((name, family, state))
    afters = [s.last_event_id for _, f, s in candidates if f.triggers and s.refreshed_at is not None]
    seen = _new_event_types(min(afters), latest) if afters and not force else {}
    done = []
    with registry.marks_pass():
        for name, family, state in candidates:
            marks = dict(family.marks() if family.marks else {})
            if not force and not _due(family, state, latest=latest, marks={**marks, "_day": day}, at=at,
                                      wall=dt.datetime.now(dt.UTC), seen=seen):
                continue
            if not _claim(name, dt.datetime.now(dt.UTC), None if force else (state.version or 0)):
                continue
            started = time.perf_counter()
            try:
                # Inside a caller's transaction, a savepoint: a failing query rolls back this family only (PostgreSQL
                # would otherwise refuse every later family's queries). Outside one, none: on SQLite a transaction
                # begins IMMEDIATE, and would hold the only write lock for the whole computation.
                with transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext():
                    refresh_family(name, at=at, latest=latest, marks=marks)
                done.append(name)
            except Exception as exc:  # one family failing never stops the others (the screen shows its age)
                log.exception("dashboard family %s failed to refresh", name)
                # Released, but not retried at once: a compute that fails (a bad record, a missing table) would
                # otherwise run again on every idle second and keep a worker busy failing.
                backoff = max(ERROR_BACKOFF, family.min_interval, STRETCH * (time.perf_counter() - started))
                RefreshState.objects.filter(family=name).update(
                    claimed_until=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=backoff),
                    error=f"{type(exc).__name__}: {exc}"[:2000])
    return done


def ensure_fresh(names: list[str] | None = None) -> None:
    """Compute the families that were never computed (a first read on a new installation)."""
    registry.load_all()
    known = set(RefreshState.objects.filter(refreshed_at__isnull=False).values_list("family", flat=True))
    missing = [n for n in registry.all_families() if n not in known and (names is None or n in names)]
    if missing:
        run_pending(only=missing, force=True)


def as_of(state: RefreshState) -> dt.datetime | None:
    """The platform-clock instant a family's figures describe (its refresh time when not recorded)."""
    at = (state.marks or {}).get("_at")
    return dt.datetime.fromisoformat(at) if at else state.refreshed_at


def versions() -> dict[str, dict]:
    """Each family's version, "as of" time and duration: the live stream tells screens when to re-read."""
    return {s.family: {"version": s.version, "refreshed_at": s.refreshed_at, "duration_ms": s.duration_ms,
                       "error": s.error, "as_of": as_of(s)}
            for s in RefreshState.objects.all()}
