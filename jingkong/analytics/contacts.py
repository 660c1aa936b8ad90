"""Contact finding (密接/次密接 candidates) for many index persons at once: set-based, DuckDB over the check-in lake
plus the registry's households and workplaces (docs/checkin-lake.md).

The caller (the tracing app) gives one :class:`IndexWindow` per case — or per close contact when it looks for
secondary contacts — and receives :class:`Finding` rows, one per (key, person, kind, venue stay / workplace / trip /
cell stay). It merges them per person, ranks and deduplicates across cases; this module decides only *who shared what
with the index, when*, with the evidence a tracer needs to confirm it in the interview:

* **household** — every other member of the index's registered household (``Person.household``), exposed over the
  whole window.
* **workplace** — registered co-workers (same ``Person.workplace``). When the workplace venue has check-ins in the lake
  during the window, it is a venue that scans (场所码): the co-workers whose check-ins there overlap the index's presence
  there (its own check-ins, or stays the tracer entered at that venue) by any time at all — a shared shift — with
  ``evidence["basis"] = "checkins"``; co-workers who were not there at the same time are not listed, and neither is
  anybody when the index was not there in the window. When the venue has no check-ins in the window (the employer does
  not scan), every registered co-worker is listed with ``basis = "registry"``, exposed over the index's stays the tracer
  entered at the workplace or else the whole window; the tracer narrows them down (same office, workshop or shift).
* **venue** — anybody whose check-in at a venue overlaps one of the index's stays there by at least
  ``overlap_minutes`` (one check-in's overlap; a contact's separate check-ins are not added up). The index's stays are
  its own check-ins in the window plus the stays the tracer entered with a ``venue_id``, clipped to the window, and
  overlapping or touching stays at the same venue merged into one.
* **transport** — passengers of the same trip (mode, number, date) in the lake's transport table, near the index by the
  8th-edition rule for conveyances (密切接触者判定, 表1): a **train** — the same carriage (hard seat/sleeper cars are
  one space); a **ship** — the same cabin (``carriage`` holds the cabin); a **bus** — everybody on board (a sealed
  coach); a **flight** — the index's row and ``flight_rows`` (3) rows in front and behind. When the index's carriage or
  seat is unknown (neither entered by the tracer nor on the index's own manifest record), the whole train/ship/flight
  is listed, and a passenger without a carriage or seat is listed too; ``evidence["rule"]`` says which case applied.
* **companion** (时空伴随, only with ``companion=(cell_metres, min_minutes)``) — location pings are turned into stays in
  square cells of ``cell_metres`` (a run of consecutive pings of a person in one cell, lasting until the person's next
  ping elsewhere when that comes within ``ping_gap_minutes``, otherwise until the run's last ping); a person whose cell
  stay overlaps an index's cell stay in the same cell for more than ``min_minutes`` is a companion.

An index person is never its own contact. All times are aware UTC; exposure windows are the overlap, clipped to the
index window. Evidence is JSON-able and carries no ID numbers.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from jingkong.analytics import duck

KINDS = ("household", "workplace", "venue", "transport", "companion")
DEFAULT_KINDS = ("household", "workplace", "venue", "transport")
FLIGHT_ROWS = 3  # rows in front of and behind the index's seat (8th edition, 表1: 同排和前后各三排)
PING_GAP_MINUTES = 30
CELL_REFERENCE_LAT = 30.0  # latitude at which a cell's east-west size is measured (the district lies at ~29.9° N)
METRES_PER_DEGREE = 111_320.0
_KIND_ORDER = {k: i for i, k in enumerate(KINDS)}


@dataclass(frozen=True)
class IndexStay:
    """A stay of an index person that the tracer entered (beyond its check-ins)."""

    start: dt.datetime  # aware UTC
    end: dt.datetime
    venue_id: int | None = None
    transport: dict | None = None  # {"mode": "train"|"flight"|"bus"|"ship", "number", "date", "carriage", "seat"}


@dataclass(frozen=True)
class IndexWindow:
    key: int  # the caller's id (a case id, or a contact id when finding secondary contacts)
    person_id: int
    start: dt.datetime  # exposure window, aware UTC (look-back start .. isolation/now)
    end: dt.datetime
    stays: tuple[IndexStay, ...] = ()


@dataclass(frozen=True)
class Finding:
    key: int  # the IndexWindow.key it came from
    person_id: int
    kind: str  # "household" | "workplace" | "venue" | "transport" | "companion"
    start: dt.datetime  # exposure (overlap) window, aware UTC
    end: dt.datetime
    evidence: dict = field(default_factory=dict)  # JSON-able, no ID numbers


class DbRegistry:
    """Households, workplaces and names from the operational database (set-based reads, chunked IN lists)."""

    def persons(self, ids: Sequence[int]) -> pa.Table:
        """(person_id, household_id, workplace_id) of the given persons."""
        return duck.rows_in("SELECT id, household_id, workplace_id FROM people_person WHERE id IN ({ids})", ids,
                            pa.schema([("person_id", pa.int64()), ("household_id", pa.int64()),
                                       ("workplace_id", pa.int32())]))

    def household_members(self, household_ids: Sequence[int]) -> pa.Table:
        return duck.rows_in("SELECT id, household_id FROM people_person WHERE household_id IN ({ids})", household_ids,
                            pa.schema([("person_id", pa.int64()), ("household_id", pa.int64())]))

    def coworkers(self, venue_ids: Sequence[int]) -> pa.Table:
        return duck.rows_in("SELECT id, workplace_id FROM people_person WHERE workplace_id IN ({ids})", venue_ids,
                            pa.schema([("person_id", pa.int64()), ("workplace_id", pa.int32())]))

    def household_codes(self, household_ids: Sequence[int]) -> dict[int, str]:
        t = duck.rows_in("SELECT id, code FROM people_household WHERE id IN ({ids})", household_ids,
                         pa.schema([("id", pa.int64()), ("code", pa.string())]))
        return dict(zip(t["id"].to_pylist(), t["code"].to_pylist(), strict=True))

    def venues(self, venue_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        from jingkong.tracing.lake import venue_names

        return venue_names(venue_ids)


def find_contacts(
    windows: Sequence[IndexWindow],
    *,
    overlap_minutes: int,
    lake=None,
    kinds: Collection[str] = DEFAULT_KINDS,
    companion: tuple[int, int] | None = None,
    registry: DbRegistry | None = None,
    flight_rows: int = FLIGHT_ROWS,
    ping_gap_minutes: int = PING_GAP_MINUTES,
) -> list[Finding]:
    """The contacts of every index window, as findings ordered by key, kind, start and person (see the module
    docstring for each kind's rule). ``overlap_minutes`` is the policy profile's ``colocation_overlap_minutes``;
    ``companion`` its ``space_time_companion`` (cell_metres, min_minutes) — None: no companion matching."""
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown contact kind(s): {', '.join(sorted(unknown))}")
    if overlap_minutes < 0:
        raise ValueError("overlap_minutes must not be negative")
    windows = [w for w in windows if _check_window(w)]
    if len({w.key for w in windows}) != len(windows):
        raise ValueError("two index windows have the same key")
    if not windows:
        return []
    from jingkong.tracing.lake import CheckinLake

    lake = lake or CheckinLake()
    registry = registry or DbRegistry()
    engine = _Engine(windows, lake, registry, overlap_minutes=overlap_minutes, flight_rows=flight_rows,
                     ping_gap_minutes=ping_gap_minutes)
    try:
        found: list[Finding] = []
        if "household" in kinds:
            found += engine.household()
        if "venue" in kinds or "workplace" in kinds:
            engine.index_stays()
        if "venue" in kinds:
            found += engine.venue()
        if "workplace" in kinds:
            found += engine.workplace()
        if "transport" in kinds:
            found += engine.transport()
        if companion is not None:
            found += engine.companion(*companion)
    finally:
        engine.close()
    found.sort(key=lambda f: (f.key, _KIND_ORDER[f.kind], f.start, f.person_id, f.end))
    return found


def _check_window(w: IndexWindow) -> bool:
    for name, value in (("start", w.start), ("end", w.end)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"window {w.key}: {name} must be an aware datetime")
    for stay in w.stays:
        if stay.start.tzinfo is None or stay.end.tzinfo is None:
            raise ValueError(f"window {w.key}: stay times must be aware datetimes")
    return w.end > w.start  # an empty window has no contacts


TS = pa.timestamp("us", tz="UTC")
_US_PER_MINUTE = 60_000_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _iso_sql(expr: str) -> str:
    """SQL formatting a TIMESTAMPTZ as ``datetime.isoformat()`` does in UTC (fractional seconds only when present):
    done by DuckDB, column-wise, rather than once per value in Python."""
    micros = f"(epoch_us({expr}) % 1000000)"
    return (f"(strftime(make_timestamp(epoch_us({expr})), '%Y-%m-%dT%H:%M:%S') || CASE WHEN {micros} <> 0 THEN '.' || "
            f"lpad(CAST({micros} AS VARCHAR), 6, '0') ELSE '' END || '+00:00')")


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


class _Engine:
    def __init__(self, windows: list[IndexWindow], lake, registry: DbRegistry, *, overlap_minutes: int,
                 flight_rows: int, ping_gap_minutes: int):
        self.windows = windows
        self.by_key = {w.key: w for w in windows}
        self.lake = lake
        self.registry = registry
        self.overlap_us = int(overlap_minutes) * _US_PER_MINUTE
        self.flight_rows = int(flight_rows)
        self.gap_us = int(ping_gap_minutes) * _US_PER_MINUTE
        self.first = min(w.start for w in windows)
        self.last = max(w.end for w in windows)
        self.con = lake.connect()
        self.con.register("win", pa.table({
            "key": pa.array([w.key for w in windows], pa.int64()),
            "person_id": pa.array([w.person_id for w in windows], pa.int64()),
            "wstart": pa.array([_utc(w.start) for w in windows], TS),
            "wend": pa.array([_utc(w.end) for w in windows], TS),
        }))
        files = lake.files_between("checkins", self.first, self.last)
        if files:
            self.con.execute(f"""CREATE TEMP VIEW ck AS SELECT person_id, venue_id, checkin_at, checkout_at
                                 FROM read_parquet({duck.sql_list(files)}, hive_partitioning = false)""")
        else:
            self.con.execute("""CREATE TEMP VIEW ck AS SELECT * FROM (VALUES (NULL::BIGINT, NULL::INTEGER,
                                NULL::TIMESTAMPTZ, NULL::TIMESTAMPTZ)) t(person_id, venue_id, checkin_at, checkout_at)
                                WHERE false""")
        self._registry_rows: pa.Table | None = None
        self._venues: dict[int, tuple[str, str]] = {}
        self._stays_ready = False

    def close(self) -> None:
        self.con.close()

    def columns(self, sql: str, params: Sequence = ()) -> dict[str, list]:
        """The result's columns as lists; timestamps as datetimes in ``datetime.UTC`` (converted from integers:
        pyarrow's own conversion of zoned timestamps costs ~3 µs a value, most of a large batch's time)."""
        table = duck.fetch_arrow(self.con, sql, params)
        out = {}
        for f, column in zip(table.schema, table.columns, strict=True):
            if pa.types.is_timestamp(f.type):
                micros = column.cast(pa.int64()).to_pylist()
                out[f.name] = [None if v is None else _EPOCH + dt.timedelta(microseconds=v) for v in micros]
            else:
                out[f.name] = column.to_pylist()
        return out

    def fetch(self, sql: str, params: Sequence = ()) -> list[dict]:
        """Rows as dicts (for small results; large ones iterate over :meth:`columns`)."""
        columns = self.columns(sql, params)
        names = list(columns)
        return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]

    # -- registry --------------------------------------------------------------------------------------------------
    def index_registry(self) -> dict[int, dict]:
        if self._registry_rows is None:
            self._registry_rows = self.registry.persons([w.person_id for w in self.windows])
        return {r["person_id"]: r for r in self._registry_rows.to_pylist()}

    def venue_info(self, ids) -> dict[int, tuple[str, str]]:
        missing = {int(i) for i in ids if i is not None} - set(self._venues)
        if missing:
            self._venues.update(self.registry.venues(sorted(missing)))
        return self._venues

    # -- household -------------------------------------------------------------------------------------------------
    def household(self) -> list[Finding]:
        registry = self.index_registry()
        household_of = {w.key: registry.get(w.person_id, {}).get("household_id") for w in self.windows}
        households = sorted({h for h in household_of.values() if h is not None})
        if not households:
            return []
        members: dict[int, list[int]] = {}
        table = self.registry.household_members(households)
        for person, household in zip(table["person_id"].to_pylist(), table["household_id"].to_pylist(), strict=True):
            members.setdefault(household, []).append(person)
        codes = self.registry.household_codes(households)
        out = []
        for w in self.windows:
            household = household_of[w.key]
            if household is None:
                continue
            evidence = {"household_id": household, "household_code": codes.get(household, "")}
            for person in sorted(members.get(household, [])):
                if person != w.person_id:
                    out.append(Finding(w.key, person, "household", _utc(w.start), _utc(w.end), dict(evidence)))
        return out

    # -- the index's stays at venues ---------------------------------------------------------------------------------
    def index_stays(self) -> None:
        """``istay``: per key, the index's stays at venues (own check-ins in the window + tracer-entered stays with
        a venue), clipped to the window, overlapping/touching stays at one venue merged."""
        if self._stays_ready:
            return
        rows = [(w.key, s.venue_id, _utc(s.start), _utc(s.end)) for w in self.windows for s in w.stays
                if s.venue_id is not None and s.end > s.start]
        self.con.register("tstay", pa.table({
            "key": pa.array([r[0] for r in rows], pa.int64()), "venue_id": pa.array([r[1] for r in rows], pa.int32()),
            "s": pa.array([r[2] for r in rows], TS), "e": pa.array([r[3] for r in rows], TS),
        }))
        self.con.execute("""
            CREATE TEMP TABLE istay AS
            WITH raw AS (
                SELECT w.key, w.person_id AS index_person, c.venue_id,
                       greatest(c.checkin_at, w.wstart) AS s, least(c.checkout_at, w.wend) AS e,
                       1 AS from_checkin, 0 AS from_tracer
                FROM ck c JOIN win w ON c.person_id = w.person_id
                WHERE c.checkin_at < w.wend AND c.checkout_at > w.wstart
                UNION ALL
                SELECT w.key, w.person_id, t.venue_id, greatest(t.s, w.wstart), least(t.e, w.wend), 0, 1
                FROM tstay t JOIN win w ON w.key = t.key
                WHERE t.s < w.wend AND t.e > w.wstart
            ),
            ordered AS (
                SELECT *, max(e) OVER (PARTITION BY key, venue_id ORDER BY s, e
                                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end
                FROM raw
            ),
            islands AS (
                SELECT *, sum(CASE WHEN prev_end IS NULL OR s > prev_end THEN 1 ELSE 0 END)
                              OVER (PARTITION BY key, venue_id ORDER BY s, e ROWS UNBOUNDED PRECEDING) AS island
                FROM ordered
            )
            SELECT key, any_value(index_person) AS index_person, venue_id, island, min(s) AS s, max(e) AS e,
                   max(from_checkin) = 1 AS from_checkin, max(from_tracer) = 1 AS from_tracer
            FROM islands GROUP BY key, venue_id, island
        """)
        # Everybody's check-ins overlapping an index stay (one scan of the lake serves the venue and workplace rules).
        self.con.execute("""
            CREATE TEMP TABLE pairs AS
            SELECT i.key, i.index_person, c.person_id, i.venue_id, i.island, i.s AS stay_s, i.e AS stay_e,
                   i.from_checkin, i.from_tracer, c.checkin_at, c.checkout_at,
                   greatest(c.checkin_at, i.s) AS os, least(c.checkout_at, i.e) AS oe
            FROM ck c JOIN istay i ON c.venue_id = i.venue_id AND c.checkin_at < i.e AND c.checkout_at > i.s
            WHERE c.person_id <> i.index_person
        """)
        self._stays_ready = True

    # -- venue co-location -------------------------------------------------------------------------------------------
    def venue(self) -> list[Finding]:
        rows = self.columns(f"""
            WITH found AS (
                SELECT key, person_id, venue_id, any_value(stay_s) AS stay_s, any_value(stay_e) AS stay_e,
                       any_value(from_checkin) AS from_checkin, any_value(from_tracer) AS from_tracer,
                       min(os) AS os, max(oe) AS oe, max(epoch_us(oe) - epoch_us(os)) AS overlap_us,
                       min(checkin_at) AS contact_in, max(checkout_at) AS contact_out
                FROM pairs
                WHERE epoch_us(oe) - epoch_us(os) >= ? AND oe > os
                GROUP BY key, person_id, venue_id, island
            )
            SELECT key, person_id, venue_id, os, oe, overlap_us // {_US_PER_MINUTE} AS overlap_minutes,
                   {_iso_sql("stay_s")} AS stay_start, {_iso_sql("stay_e")} AS stay_end,
                   CASE WHEN from_checkin AND from_tracer THEN 'checkin+tracer' WHEN from_tracer THEN 'tracer'
                        ELSE 'checkin' END AS source,
                   {_iso_sql("contact_in")} AS contact_in, {_iso_sql("contact_out")} AS contact_out
            FROM found
        """, [self.overlap_us])
        info = self.venue_info(set(rows["venue_id"]))
        out = []
        for key, person, venue, os_, oe, minutes, stay_start, stay_end, source, contact_in, contact_out in zip(
                *rows.values(), strict=True):
            code, name = info.get(venue, ("", ""))
            out.append(Finding(key, person, "venue", os_, oe, {
                "venue_id": venue, "venue_code": code, "venue_name": name, "overlap_minutes": minutes,
                "index_stay": {"start": stay_start, "end": stay_end, "source": source},
                "contact_checkin_at": contact_in, "contact_checkout_at": contact_out,
            }))
        return out

    # -- workplace ---------------------------------------------------------------------------------------------------
    def workplace(self) -> list[Finding]:
        registry = self.index_registry()
        workplace_of = {w.key: registry.get(w.person_id, {}).get("workplace_id") for w in self.windows}
        keyed = [(k, v) for k, v in workplace_of.items() if v is not None]
        if not keyed:
            return []
        venues = sorted({v for _, v in keyed})
        coworkers = self.registry.coworkers(venues)
        self.con.register("wp", pa.table({"key": pa.array([k for k, _ in keyed], pa.int64()),
                                          "workplace_id": pa.array([v for _, v in keyed], pa.int32())}))
        self.con.register("cow", coworkers)
        # Does the workplace scan? Yes when the index's own check-ins are there; otherwise ask the lake (few venues).
        scanning = {k for (k,) in self.con.execute("""
            SELECT DISTINCT i.key FROM istay i JOIN wp ON wp.key = i.key AND wp.workplace_id = i.venue_id
            WHERE i.from_checkin
        """).fetchall()}
        unsure = [(k, v) for k, v in keyed if k not in scanning]
        if unsure:
            self.con.register("unsure", pa.table({"key": pa.array([k for k, _ in unsure], pa.int64()),
                                                  "workplace_id": pa.array([v for _, v in unsure], pa.int32())}))
            scanning |= {k for (k,) in self.con.execute("""
                SELECT DISTINCT w.key FROM win w JOIN unsure u ON u.key = w.key
                JOIN ck c ON c.venue_id = u.workplace_id AND c.checkin_at < w.wend AND c.checkout_at > w.wstart
            """).fetchall()}
        info = self.venue_info(venues)
        out: list[Finding] = []
        # Scanning workplaces: co-workers present at the same time as the index.
        rows = self.fetch("""
            SELECT p.key, p.person_id, min(p.os) AS os, max(p.oe) AS oe,
                   CAST(sum(epoch_us(p.oe) - epoch_us(p.os)) AS BIGINT) AS overlap_us,
                   count(DISTINCT p.island) AS shifts, any_value(p.venue_id) AS venue_id
            FROM (SELECT DISTINCT key, person_id, venue_id, island, os, oe FROM pairs) p  -- a row in two sources
            JOIN wp ON wp.key = p.key AND wp.workplace_id = p.venue_id
            JOIN cow ON cow.workplace_id = p.venue_id AND cow.person_id = p.person_id
            WHERE p.oe > p.os
            GROUP BY p.key, p.person_id
        """)
        for r in rows:
            if r["key"] not in scanning:
                continue
            code, name = info.get(r["venue_id"], ("", ""))
            out.append(Finding(r["key"], r["person_id"], "workplace", r["os"], r["oe"], {
                "basis": "checkins", "workplace_venue_id": r["venue_id"], "workplace_venue_code": code,
                "workplace_venue_name": name, "overlap_minutes": r["overlap_us"] // _US_PER_MINUTE,
                "shared_stays": r["shifts"],
            }))
        # Workplaces without check-ins: every registered co-worker (the tracer narrows them down).
        others = [(k, v) for k, v in keyed if k not in scanning]
        if others:
            entered = {}
            for r in self.fetch("""SELECT i.key, min(i.s) AS s, max(i.e) AS e FROM istay i
                                   JOIN wp ON wp.key = i.key AND wp.workplace_id = i.venue_id GROUP BY i.key"""):
                entered[r["key"]] = (r["s"], r["e"])
            members: dict[int, list[int]] = {}
            for person, venue in zip(coworkers["person_id"].to_pylist(), coworkers["workplace_id"].to_pylist(),
                                     strict=True):
                members.setdefault(venue, []).append(person)
            for key, venue in others:
                w = self.by_key[key]
                start, end = entered.get(key, (_utc(w.start), _utc(w.end)))
                code, name = info.get(venue, ("", ""))
                evidence = {"basis": "registry", "workplace_venue_id": venue, "workplace_venue_code": code,
                            "workplace_venue_name": name, "index_stays_entered": key in entered}
                for person in sorted(members.get(venue, [])):
                    if person != w.person_id:
                        out.append(Finding(key, person, "workplace", start, end, dict(evidence)))
        return out

    # -- transport ---------------------------------------------------------------------------------------------------
    def transport(self) -> list[Finding]:
        trips = []
        for w in self.windows:
            for n, stay in enumerate(w.stays):
                if not stay.transport:
                    continue
                s, e = max(_utc(stay.start), _utc(w.start)), min(_utc(stay.end), _utc(w.end))
                if e <= s:
                    continue  # the trip lies outside the exposure window
                t = normalize_trip(stay.transport)
                if t is None:
                    continue
                trips.append((w.key, w.person_id, n, t["mode"], t["number"], t["date"], t["carriage"], t["seat"], s, e))
        files = self.lake.files("transport")
        if not trips or not files:
            return []
        names = ["key", "index_person", "trip", "mode", "number", "date", "carriage", "seat", "s", "e"]
        types = [pa.int64(), pa.int64(), pa.int32(), pa.string(), pa.string(), pa.date32(), pa.string(), pa.string(),
                 TS, TS]
        self.con.register("trips", pa.table({n: pa.array([t[i] for t in trips], ty)
                                             for i, (n, ty) in enumerate(zip(names, types, strict=True))}))
        self.con.execute(f"""CREATE TEMP VIEW tp AS SELECT * FROM read_parquet({duck.sql_list(files)},
                             hive_partitioning = false)""")
        rows = self.fetch("""
            WITH own AS (  -- the index's own manifest record fills in a carriage or seat the tracer did not enter
                SELECT tr.key, tr.trip, any_value(t.carriage) AS carriage, any_value(t.seat) AS seat
                FROM trips tr JOIN tp t ON t.person_id = tr.index_person AND t.mode = tr.mode
                  AND t.number = tr.number AND t.date = tr.date
                GROUP BY tr.key, tr.trip
            ),
            idx AS (
                SELECT tr.*, COALESCE(tr.carriage, own.carriage) AS icarriage, COALESCE(tr.seat, own.seat) AS iseat,
                       TRY_CAST(regexp_extract(COALESCE(tr.seat, own.seat), '^0*([0-9]+)', 1) AS INTEGER) AS irow
                FROM trips tr LEFT JOIN own ON own.key = tr.key AND own.trip = tr.trip
            ),
            pairs AS (
                SELECT i.key, i.trip, t.person_id, i.mode, i.number, i.date, i.s, i.e, i.icarriage, i.iseat, i.irow,
                       t.carriage, t.seat,
                       TRY_CAST(regexp_extract(t.seat, '^0*([0-9]+)', 1) AS INTEGER) AS crow
                FROM idx i JOIN tp t ON t.mode = i.mode AND t.number = i.number AND t.date = i.date
                WHERE t.person_id <> i.index_person
            )
            SELECT *, CASE
                WHEN mode = 'bus' THEN 'whole vehicle'
                WHEN mode IN ('train', 'ship') AND icarriage IS NULL THEN 'index carriage unknown: whole vehicle'
                WHEN mode IN ('train', 'ship') AND carriage IS NULL THEN 'passenger carriage unknown'
                WHEN mode IN ('train', 'ship') AND carriage = icarriage THEN 'same carriage'
                WHEN mode = 'flight' AND irow IS NULL THEN 'index seat unknown: whole flight'
                WHEN mode = 'flight' AND crow IS NULL THEN 'passenger seat unknown'
                WHEN mode = 'flight' AND abs(crow - irow) <= ? THEN 'within the rows around the index'
            END AS rule
            FROM pairs
        """, [self.flight_rows])
        out = []
        seen = set()
        for r in rows:
            if r["rule"] is None or (r["key"], r["person_id"], r["trip"]) in seen:
                continue
            seen.add((r["key"], r["person_id"], r["trip"]))
            out.append(Finding(r["key"], r["person_id"], "transport", r["s"], r["e"], {
                "mode": r["mode"], "number": r["number"], "date": r["date"].isoformat(), "rule": r["rule"],
                "index_carriage": r["icarriage"], "index_seat": r["iseat"], "carriage": r["carriage"],
                "seat": r["seat"], **({"flight_rows": self.flight_rows} if r["mode"] == "flight" else {}),
            }))
        return out

    # -- space-time companions ---------------------------------------------------------------------------------------
    def companion(self, cell_metres: int, min_minutes: int) -> list[Finding]:
        if cell_metres <= 0:
            raise ValueError("cell_metres must be positive")
        gap = self.gap_us
        first = self.first - dt.timedelta(microseconds=gap)
        last = self.last + dt.timedelta(microseconds=gap)
        files = self.lake.files_between("pings", first, last)
        if not files:
            return []
        ky = METRES_PER_DEGREE / cell_metres
        kx = METRES_PER_DEGREE * math.cos(math.radians(CELL_REFERENCE_LAT)) / cell_metres
        self.con.execute(f"""CREATE TEMP VIEW pg AS
            SELECT person_id, "at", CAST(floor(lon * {kx!r}) AS BIGINT) AS cx, CAST(floor(lat * {ky!r}) AS BIGINT) AS cy
            FROM read_parquet({duck.sql_list(files)}, hive_partitioning = false)
            WHERE "at" >= '{first.astimezone(dt.UTC).isoformat()}'::TIMESTAMPTZ
              AND "at" <= '{last.astimezone(dt.UTC).isoformat()}'::TIMESTAMPTZ""")

        def runs(persons_sql: str) -> str:
            return f"""
                WITH p AS (
                    SELECT person_id, cx, cy, "at",
                           lead("at") OVER w AS nxt, lag(cx) OVER w AS pcx, lag(cy) OVER w AS pcy, lag("at") OVER w AS pat
                    FROM pg WHERE person_id IN ({persons_sql})
                    WINDOW w AS (PARTITION BY person_id ORDER BY "at")
                ),
                q AS (
                    SELECT *, sum(CASE WHEN pcx IS DISTINCT FROM cx OR pcy IS DISTINCT FROM cy
                                         OR epoch_us("at") - epoch_us(pat) > {gap} THEN 1 ELSE 0 END)
                              OVER (PARTITION BY person_id ORDER BY "at" ROWS UNBOUNDED PRECEDING) AS run
                    FROM p
                )
                SELECT person_id, cx, cy, run, min("at") AS s,
                       max(CASE WHEN nxt IS NOT NULL AND epoch_us(nxt) - epoch_us("at") <= {gap} THEN nxt
                                ELSE "at" END) AS e
                FROM q GROUP BY person_id, cx, cy, run
            """

        self.con.execute(f"""CREATE TEMP TABLE iruns AS
            SELECT w.key, w.person_id AS index_person, r.cx, r.cy, r.run,
                   greatest(r.s, w.wstart) AS s, least(r.e, w.wend) AS e
            FROM ({runs("SELECT person_id FROM win")}) r JOIN win w ON w.person_id = r.person_id
            WHERE r.s < w.wend AND r.e > w.wstart""")
        self.con.execute(f"""CREATE TEMP TABLE cand AS
            SELECT DISTINCT p.person_id FROM pg p JOIN iruns i ON p.cx = i.cx AND p.cy = i.cy
            WHERE epoch_us(p."at") >= epoch_us(i.s) - {gap} AND p."at" <= i.e AND p.person_id <> i.index_person""")
        rows = self.fetch(f"""
            WITH cr AS ({runs("SELECT person_id FROM cand")})
            SELECT i.key, c.person_id, i.cx, i.cy, i.run,
                   min(greatest(c.s, i.s)) AS os, max(least(c.e, i.e)) AS oe,
                   max(epoch_us(least(c.e, i.e)) - epoch_us(greatest(c.s, i.s))) AS overlap_us
            FROM iruns i JOIN cr c ON c.cx = i.cx AND c.cy = i.cy AND c.s < i.e AND c.e > i.s
            WHERE c.person_id <> i.index_person
            GROUP BY i.key, c.person_id, i.cx, i.cy, i.run
            HAVING max(epoch_us(least(c.e, i.e)) - epoch_us(greatest(c.s, i.s))) > ?
        """, [int(min_minutes) * _US_PER_MINUTE])
        out = []
        for r in rows:
            out.append(Finding(r["key"], r["person_id"], "companion", r["os"], r["oe"], {
                "cell": f"{int(cell_metres)}m:{r['cx']}:{r['cy']}", "cell_metres": int(cell_metres),
                "cell_lon": round((r["cx"] + 0.5) / kx, 6), "cell_lat": round((r["cy"] + 0.5) / ky, 6),
                "overlap_minutes": r["overlap_us"] // _US_PER_MINUTE, "min_minutes": int(min_minutes),
            }))
        return out


def normalize_trip(transport: dict) -> dict | None:
    """A tracer-entered trip in the lake's normal form (mode, upper-case number, date, carriage without leading
    zeros, seat), or None when mode, number or date is missing or unreadable."""
    import re

    from jingkong.tracing.lake import CARRIAGE_WORDS, MODE_ALIASES, SEAT_WORDS

    mode = MODE_ALIASES.get(str(transport.get("mode") or "").strip().lower())
    number = "".join(str(transport.get("number") or "").split()).upper()
    raw_date = transport.get("date")
    try:
        date = raw_date if isinstance(raw_date, dt.date) else dt.date.fromisoformat(str(raw_date or "").strip())
    except ValueError:
        return None
    if mode is None or not number:
        return None
    carriage = re.sub(CARRIAGE_WORDS, "", str(transport.get("carriage") or "").strip()).strip().lstrip("0").upper()
    seat = re.sub(SEAT_WORDS, "", str(transport.get("seat") or "").strip()).strip().upper()
    return {"mode": mode, "number": number, "date": date, "carriage": carriage or None, "seat": seat or None}
