"""The five-stage clock (五快: 快检测 · 快流调 · 快编组 · 快转运 · 快隔离), set-based.

Every case and every contact gets the instant of each **milestone** it has reached, read with one query per source
(no per-person loop; pandas joins the results on person and case ids):

===================  ==================================================================================================
milestone            source
===================  ==================================================================================================
detected             cases: ``Case.first_positive_at`` (the first positive sample was taken), else the time the
                     case's positive sample (``Case.source_sample``) was taken
confirmed            cases: ``Case.created_at`` (the case record exists: reported)
investigated         cases: ``Case.investigated_at`` (core investigation done)
contacts_identified  cases: the first ``ContactReason.created_at`` naming the case (a contact of several cases counts
                     for each of its cases)
identified           contacts: ``Contact.first_identified_at``
located              contacts: ``Contact.located_at``
grouped              both: the creation time of the first batch the person is (still) a member of (``BatchMember`` of
                     a ``TransferBatch``, which is what the ``isolation.grouped`` event announces); members with role
                     ``case`` belong to the case, other roles to the contact
transfer_started     both: the first ``isolation.transfer_started`` event of the person
arrived              both: the first ``isolation.arrived`` event of the person
isolated             both: the earliest of ``RoomStay.checked_in_at``, the start (``created_at``) of a home-quarantine
                     ``IsolationOrder`` not cancelled, and ``Contact.in_quarantine_at`` / ``Case.isolated_at``, taken
                     only at or after the subject's first milestone (an earlier stay belongs to an earlier episode)
===================  ==================================================================================================

A **stage** runs from a start milestone to an end milestone; its duration is end − start in hours (a negative
difference from inconsistent data counts as 0):

* ``testing`` (cases): detected → confirmed; target ``clock_targets.testing``.
* ``investigation`` (cases): confirmed → investigated; target ``clock_targets.investigation_hours`` (else ``tracing``).
* ``tracing`` (contacts): identified → located; target ``clock_targets.tracing``.
* ``grouping`` (contacts: located →, cases: confirmed →) grouped; target ``clock_targets.grouping``.
* ``transfer`` (both): grouped → arrived, only for people grouped into a batch whose destination is not home;
  target ``transfer_close_hours`` for close contacts, ``transfer_secondary_hours`` for secondary ones (each falling
  back to ``clock_targets.transfer``), ``transfer`` otherwise.
* ``isolation`` (both): arrived → isolated; target ``clock_targets.isolation``. Home quarantine has no transfer, so
  its isolation stage starts at grouping; a person isolated without any arrival (e.g. a case taken straight to
  hospital, a contact put in quarantine without a batch) starts at the latest of grouped / located (cases:
  confirmed). A person still waiting for a vehicle or travelling has not begun isolation (the wait is timed once,
  by grouping or transfer).

**Skipped stages.** A stage whose start milestone is missing has not begun. A stage whose end is missing while a
*later* milestone exists was skipped (e.g. a case taken straight to hospital without a batch: grouping and transfer
skipped) and is neither timed nor overdue. A contact or case that is closed does not keep open stages.

**As of.** Everything is computed as of an instant ``at`` (default now; for a past day the end of that day): a
milestone after ``at`` counts as not reached. A stage **begun** and not ended is *open*; it is **overdue** when its
age (``at`` − start) exceeds its target. A stage ended after its target is *late*.

**Statistics.** A stage belongs to the Asia/Shanghai day of its start and to the street (and community, grid) of the
subject's region code (the case's or contact's grid). Medians and 90th percentiles (linear interpolation, numpy's
default) are over the durations of the stages *ended*; ``n`` counts begun stages, ``done`` ended ones, ``open`` the
rest.

**Slowest stage.** For the chosen day, each stage's *load ratio* = p90 of (durations of the stages ended, plus the
current age of the open ones, a lower bound of their duration) ÷ target. Open ages are included so a stage where
nothing finishes cannot look fast. The stage with the highest ratio is named (ties: the earlier stage); a stage with
no item that day has no ratio.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from django.db import connection

from jingkong.access.guard import Scope
from jingkong.core import clock

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
LOOKBACK_DAYS = 14  # subjects whose first milestone is older than the report window by more than this are not read
WINDOW_DAYS = 7  # the per-day chart covers the chosen day and the six before it
HOUR = 3600.0

CASE_MILESTONES = ("detected", "confirmed", "investigated", "contacts_identified", "grouped", "transfer_started",
                   "arrived", "isolated")
CONTACT_MILESTONES = ("identified", "located", "grouped", "transfer_started", "arrived", "isolated")
STAGE_KEYS = ("testing", "investigation", "tracing", "grouping", "transfer", "isolation")
CODE_LENGTH = {"district": 6, "street": 9, "community": 12, "grid": 15}


@dataclass(frozen=True)
class Targets:
    testing: float
    investigation: float
    tracing: float
    grouping: float
    transfer: float
    transfer_close: float
    transfer_secondary: float
    isolation: float

    def of(self, stage: str) -> float:
        return getattr(self, stage)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def targets_from(section) -> Targets:
    """Targets of a ``clock_targets`` section: optional finer fields fall back to the five main ones."""
    investigation = getattr(section, "investigation_hours", None) or section.tracing
    close = getattr(section, "transfer_close_hours", None) or section.transfer
    secondary = getattr(section, "transfer_secondary_hours", None) or section.transfer
    return Targets(testing=float(section.testing), investigation=float(investigation), tracing=float(section.tracing),
                   grouping=float(section.grouping), transfer=float(section.transfer), transfer_close=float(close),
                   transfer_secondary=float(secondary), isolation=float(section.isolation))


def targets_for(region_code: str | None, at: dt.datetime) -> Targets:
    from jingkong.policy.selectors import active_profile

    code = (region_code or "")[:6] or None
    return targets_from(active_profile(region_code=code, at=at).rules.section("clock_targets"))


# --- reading the sources ---------------------------------------------------------------------------------------------


def _epoch(col: str) -> str:
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM {col})::float8"
    return f"((julianday({col}) - 2440587.5) * 86400.0)"


def _param(value: dt.datetime):
    return connection.ops.adapt_datetimefield_value(value)


def _frame(sql: str, params: list, columns: list[str]) -> pd.DataFrame:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return pd.DataFrame.from_records(rows, columns=columns)


def _like(prefix: str) -> str:
    return prefix + "%"


def load(prefix: str, *, since: dt.datetime, at: dt.datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Milestones (epoch seconds, NaN = not reached by ``at``) of the cases and contacts of the region ``prefix``
    whose first milestone lies in [since, at]. One query per source."""
    like, lo, hi = _like(prefix), _param(since), _param(at)
    e = _epoch
    cases = _frame(
        f"SELECT c.id, c.person_id, c.region_code, c.status, u.username, "
        f"{e('COALESCE(c.first_positive_at, s.sampled_at)')}, "
        f"{e('c.created_at')}, {e('c.investigated_at')}, {e('c.isolated_at')} "
        "FROM tracing_case c LEFT JOIN access_user u ON u.id = c.tracer_id "
        "LEFT JOIN testing_sample s ON s.id = c.source_sample_id "
        "WHERE c.region_code LIKE %s AND c.created_at >= %s AND c.created_at <= %s",
        [like, lo, hi], ["case_id", "person_id", "region_code", "status", "tracer", "detected", "confirmed",
                         "investigated", "isolated_own"])
    found = _frame(
        f"SELECT r.case_id, MIN({e('r.created_at')}) FROM tracing_contactreason r "
        "JOIN tracing_case c ON c.id = r.case_id "
        "WHERE c.region_code LIKE %s AND c.created_at >= %s AND c.created_at <= %s GROUP BY r.case_id",
        [like, lo, hi], ["case_id", "contacts_identified"])
    contacts = _frame(
        f"SELECT k.id, k.person_id, k.tier, k.region_code, k.queue_region_code, k.status, "
        f"{e('k.first_identified_at')}, {e('k.located_at')}, {e('k.in_quarantine_at')}, {e('k.closed_at')} "
        "FROM tracing_contact k WHERE k.region_code LIKE %s AND k.first_identified_at >= %s "
        "AND k.first_identified_at <= %s",
        [like, lo, hi], ["contact_id", "person_id", "tier", "region_code", "queue_region", "status", "identified",
                         "located", "isolated_own", "closed"])
    members = _frame(
        f"SELECT m.person_id, m.role, {e('b.created_at')}, b.destination_type, b.region_code, f.code, b.ref "
        "FROM isolation_batchmember m JOIN isolation_transferbatch b ON b.id = m.batch_id "
        "LEFT JOIN isolation_facility f ON f.id = b.facility_id "
        # substr, not LIKE: a district reads most members, and a per-batch index probe on the region prefix (which
        # the planner picks when its statistics are stale) turns the join quadratic
        "WHERE substr(m.region_code, 1, %s) = %s AND m.removed_at IS NULL AND b.created_at >= %s "
        "AND b.created_at <= %s AND b.status <> 'cancelled'",
        [len(prefix), prefix, lo, hi], ["person_id", "role", "grouped", "destination", "batch_region", "facility", "batch_ref"])
    events = {}
    for kind in ("transfer_started", "arrived"):
        events[kind] = _frame(
            f"SELECT subject_id, MIN({e('occurred_at')}) FROM core_domainevent WHERE type = %s "
            "AND subject_type = 'people.person' AND region_code LIKE %s AND occurred_at >= %s AND occurred_at <= %s "
            "GROUP BY subject_id", [f"isolation.{kind}", like, lo, hi], ["person_id", kind])
    stays = _frame(
        f"SELECT person_id, {e('checked_in_at')} FROM isolation_roomstay "
        "WHERE region_code LIKE %s AND checked_in_at >= %s AND checked_in_at <= %s",
        [like, lo, hi], ["person_id", "isolated"])
    homes = _frame(
        f"SELECT person_id, {e('created_at')} FROM isolation_isolationorder "
        "WHERE region_code LIKE %s AND mode = 'home_quarantine' AND status <> 'cancelled' "
        "AND created_at >= %s AND created_at <= %s",
        [like, lo, hi], ["person_id", "isolated"])
    return _assemble(cases, found, contacts, members, events, pd.concat([stays, homes], ignore_index=True),
                     at=at.timestamp())


def _first_per_person(frame: pd.DataFrame, value: str) -> pd.DataFrame:
    if frame.empty:
        return frame
    frame = frame.copy()
    frame["person_id"] = pd.to_numeric(frame["person_id"], errors="coerce")
    frame = frame.dropna(subset=["person_id"]).astype({"person_id": "int64"})
    return frame.sort_values(value, kind="stable").drop_duplicates("person_id")


def _assemble(cases, found, contacts, members, events, isolations, *, at: float):
    for frame in (cases, contacts):
        frame["person_id"] = frame["person_id"].astype("int64")
    members = members.astype({"grouped": "float64"}) if not members.empty else members
    case_m = _first_per_person(members[members["role"] == "case"], "grouped") if not members.empty else members
    contact_m = _first_per_person(members[members["role"] != "case"], "grouped") if not members.empty else members
    started = _first_per_person(events["transfer_started"], "transfer_started")
    arrived = _first_per_person(events["arrived"], "arrived")

    def attach(frame: pd.DataFrame, group: pd.DataFrame, first: str) -> pd.DataFrame:
        cols = ["person_id", "grouped", "destination", "batch_region", "facility", "batch_ref"]
        frame = frame.merge(group[cols] if not group.empty else pd.DataFrame(columns=cols), on="person_id", how="left")
        for kind, src in (("transfer_started", started), ("arrived", arrived)):
            src = src[["person_id", kind]] if not src.empty else pd.DataFrame(columns=["person_id", kind])
            frame = frame.merge(src, on="person_id", how="left")
        # isolation: the earliest source at or after the subject's first milestone
        iso = isolations.merge(frame[["person_id", first]], on="person_id", how="inner")
        iso = iso[iso["isolated"].astype("float64") >= iso[first].astype("float64")]
        iso = iso.groupby("person_id", as_index=False)["isolated"].min()
        frame = frame.merge(iso, on="person_id", how="left")
        own = frame["isolated_own"].astype("float64")
        own = own.where(own >= frame[first].astype("float64"))
        frame["isolated"] = np.fmin(frame["isolated"].astype("float64"), own)
        return frame

    cases = cases.merge(found, on="case_id", how="left")
    cases = attach(cases, case_m, "confirmed")
    contacts = attach(contacts, contact_m, "identified")
    for frame, names in ((cases, CASE_MILESTONES), (contacts, CONTACT_MILESTONES)):
        for name in names:
            col = frame[name].astype("float64").round(3)  # SQLite's julianday carries ~10 µs of float noise
            frame[name] = col.where(col <= at)  # not reached yet as of ``at``
    return cases, contacts


# --- stages ------------------------------------------------------------------------------------------------------------


def _isolation_start(frame: pd.DataFrame, before_grouping: pd.Series) -> pd.Series:
    """arrived; else grouped for a home batch; else, for people isolated without a transfer record, the latest of
    grouped / located (cases: confirmed); else not begun (a person still waiting or travelling is timed by grouping
    or transfer, not twice)."""
    home = frame["grouped"].notna() & frame["destination"].eq("home")
    fallback = frame["grouped"].where(frame["grouped"].notna(), before_grouping)
    start = frame["arrived"].where(frame["arrived"].notna())
    start = start.where(start.notna() | ~home, frame["grouped"])
    return start.where(start.notna() | frame["isolated"].isna(), fallback)


def stages(cases: pd.DataFrame, contacts: pd.DataFrame, targets: Targets, *, at: float) -> pd.DataFrame:
    """One row per begun stage: subject, stage, region, start, end (NaN = open), hours, target, owner."""
    parts = []

    def add(frame, kind, stage, start, end, later: list[str], target, owner_kind, owner):
        s, t = start.astype("float64"), frame[end].astype("float64")
        later_seen = frame[later].notna().any(axis=1) if later else pd.Series(False, index=frame.index)
        closed = frame["status"].eq("closed")
        keep = s.notna() & ~(t.isna() & (later_seen | closed))
        sub = frame[keep]
        end_v = t[keep]
        start_v = s[keep]
        hours = np.maximum(end_v - start_v, 0.0) / HOUR
        age = np.maximum(at - start_v, 0.0) / HOUR
        tgt = target[keep] if isinstance(target, pd.Series) else pd.Series(target, index=sub.index)
        parts.append(pd.DataFrame({
            "kind": kind, "subject_id": sub["case_id" if kind == "case" else "contact_id"].to_numpy(),
            "person_id": sub["person_id"].to_numpy(), "tier": sub["tier"].to_numpy() if "tier" in sub else "case",
            "stage": stage, "region_code": sub["region_code"].to_numpy(), "start": start_v.to_numpy(),
            "end": end_v.to_numpy(), "hours": hours.to_numpy(), "age": age.to_numpy(),
            "target": tgt.to_numpy(dtype="float64"), "owner_kind": owner_kind,
            "owner": owner[keep].fillna("").astype(str).to_numpy(),
        }))

    c = cases
    if not c.empty:
        add(c, "case", "testing", c["detected"], "confirmed", ["investigated", "grouped", "arrived", "isolated"],
            targets.testing, "testing", c["region_code"])
        add(c, "case", "investigation", c["confirmed"], "investigated", [], targets.investigation, "tracer",
            c["tracer"].where(c["tracer"].fillna("") != "", "—"))
        add(c, "case", "grouping", c["confirmed"], "grouped", ["transfer_started", "arrived", "isolated"],
            targets.grouping, "dispatcher", c["region_code"].str[:9])
        moving = c[c["grouped"].notna() & c["destination"].ne("home")]
        add(moving, "case", "transfer", moving["grouped"], "arrived", ["isolated"], targets.transfer, "dispatcher",
            moving["batch_region"].fillna("").astype(str) + " " + moving["batch_ref"].fillna("").astype(str))
        start = _isolation_start(c, c["confirmed"])
        add(c, "case", "isolation", start, "isolated", [], targets.isolation, "facility",
            c["facility"].where(c["facility"].notna(), c["region_code"]))
    k = contacts
    if not k.empty:
        add(k, "contact", "tracing", k["identified"], "located", ["grouped", "arrived", "isolated"], targets.tracing,
            "queue", k["queue_region"])
        add(k, "contact", "grouping", k["located"], "grouped", ["transfer_started", "arrived", "isolated"],
            targets.grouping, "queue", k["queue_region"])
        moving = k[k["grouped"].notna() & k["destination"].ne("home")]
        tier_target = moving["tier"].map({"close": targets.transfer_close,
                                          "secondary": targets.transfer_secondary}).fillna(targets.transfer)
        add(moving, "contact", "transfer", moving["grouped"], "arrived", ["isolated"], tier_target, "dispatcher",
            moving["batch_region"].fillna("").astype(str) + " " + moving["batch_ref"].fillna("").astype(str))
        start = _isolation_start(k, k["located"])
        add(k, "contact", "isolation", start, "isolated", [], targets.isolation, "facility",
            k["facility"].where(k["facility"].notna(), k["region_code"]))
    if not parts:
        return pd.DataFrame(columns=["kind", "subject_id", "person_id", "tier", "stage", "region_code", "start",
                                     "end", "hours", "age", "target", "owner_kind", "owner", "day"])
    out = pd.concat(parts, ignore_index=True)
    # Asia/Shanghai is UTC+8 all year (no daylight saving since 1991): the local day is integer arithmetic.
    days, inverse = np.unique(np.floor((out["start"].to_numpy(dtype="float64") + 8 * 3600) / 86400).astype("int64"),
                              return_inverse=True)
    epoch_day = dt.date(1970, 1, 1)
    out["day"] = np.array([epoch_day + dt.timedelta(days=int(d)) for d in days], dtype=object)[inverse]
    return out


# --- statistics --------------------------------------------------------------------------------------------------------


def _pct(values: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if len(values) else None


class _Arrays:
    """The begun stages as plain numpy arrays (statistics over many small groups without pandas overhead)."""

    def __init__(self, rows: pd.DataFrame):
        n = len(rows)
        self.stage = rows["stage"].to_numpy(dtype=object) if n else np.array([], dtype=object)
        self.region = rows["region_code"].to_numpy(dtype=object) if n else np.array([], dtype=object)
        self.day = rows["day"].to_numpy(dtype=object) if n else np.array([], dtype=object)
        self.done = rows["end"].notna().to_numpy() if n else np.array([], dtype=bool)
        self.hours = rows["hours"].to_numpy(dtype="float64") if n else np.array([])
        self.age = rows["age"].to_numpy(dtype="float64") if n else np.array([])
        self.target = rows["target"].to_numpy(dtype="float64") if n else np.array([])
        self.by_stage = {k: self.stage == k for k in STAGE_KEYS}


def _stats_np(a: _Arrays, mask: np.ndarray, stage: str, target: float | None) -> dict:
    done_m = mask & a.done
    open_m = mask & ~a.done
    done = a.hours[done_m]
    ages = a.age[open_m]
    load = np.concatenate([done, ages])
    p90_load = _pct(load, 90)
    return {"stage": stage, "target_hours": target, "n": int(mask.sum()), "done": int(done_m.sum()),
            "open": int(open_m.sum()), "overdue": int((ages > a.target[open_m]).sum()),
            "late": int((done > a.target[done_m]).sum()), "median": _pct(done, 50), "p90": _pct(done, 90),
            "ratio": round(p90_load / target, 3) if (p90_load is not None and target) else None}


def stage_stats(rows: pd.DataFrame, stage: str, target: float | None) -> dict:
    """Figures of one stage over ``rows`` (all of that stage)."""
    a = _Arrays(rows)
    return _stats_np(a, np.ones(len(rows), dtype=bool), stage, target)


def slowest(stats: list[dict]) -> dict | None:
    """The stage with the highest load ratio (p90 of durations and open ages ÷ target); ties: the earlier stage."""
    best = None
    for s in stats:
        if s["ratio"] is not None and (best is None or s["ratio"] > best["ratio"]):
            best = s
    return {"stage": best["stage"], "ratio": best["ratio"]} if best else None


def _table(a: _Arrays, mask: np.ndarray, targets: Targets) -> list[dict]:
    return [_stats_np(a, mask & a.by_stage[s], s, targets.of(s)) for s in STAGE_KEYS]


@dataclass
class ClockData:
    prefix: str
    day: dt.date
    at: dt.datetime
    targets: Targets
    rows: pd.DataFrame  # every begun stage of the window
    memo: dict = field(default_factory=dict, repr=False)  # summary of this data (computed once)


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(), tzinfo=LOCAL_TZ)
    return start.astimezone(dt.UTC), (start + dt.timedelta(days=1)).astimezone(dt.UTC)


CACHE_SECONDS = 30  # live figures are computed as of the last 30-second mark and reused until data change
_CACHE_SIZE = 32
_cache: OrderedDict = OrderedDict()


def cache_clear() -> None:
    _cache.clear()


def _data_mark() -> tuple:
    """Changes whenever the sources change: every milestone write appends an event (tracing.*, isolation.*) or a
    case / contact row."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT MAX(id) FROM core_domainevent), (SELECT MAX(id) FROM tracing_contact), "
                       "(SELECT MAX(id) FROM tracing_case)")
        return (connection.alias, connection.settings_dict.get("NAME"), *cursor.fetchone())


def compute(scope: Scope, *, region: str = "", day: dt.date | None = None, at: dt.datetime | None = None,
            targets: Targets | None = None) -> ClockData:
    """All begun stages of the region (inside the scope) for the report window ending on ``day``.

    Without ``at`` (live figures) the instant is the last :data:`CACHE_SECONDS` mark, and the result is reused by
    the following calls for the same region and day until that mark moves or the data change (a new event, case or
    contact): a polling dashboard reads figures at most 30 s old without re-reading every source each time."""
    live = at is None
    now = at or clock.now()
    if live:
        now = dt.datetime.fromtimestamp(int(now.timestamp() // CACHE_SECONDS) * CACHE_SECONDS, dt.UTC)
    day = day or now.astimezone(LOCAL_TZ).date()
    _, day_end = day_bounds(day)
    as_of = min(now, day_end)
    prefix = region or (scope.prefix or "")
    if scope.prefix is None or not scope.contains(prefix):
        targets = targets or targets_for(prefix, as_of)
        empty_c, empty_k = _empty()
        rows = stages(empty_c, empty_k, targets, at=as_of.timestamp())
        return ClockData(prefix=prefix, day=day, at=as_of, targets=targets, rows=rows)
    targets = targets or targets_for(prefix, as_of)
    key = None
    if live:
        key = (prefix, day, as_of, targets, _data_mark())
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    window_start, _ = day_bounds(day - dt.timedelta(days=WINDOW_DAYS - 1))
    since = window_start - dt.timedelta(days=LOOKBACK_DAYS)
    cases, contacts = load(prefix, since=since, at=as_of)
    rows = stages(cases, contacts, targets, at=as_of.timestamp())
    data = ClockData(prefix=prefix, day=day, at=as_of, targets=targets, rows=rows)
    if key is not None:
        _cache[key] = data
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return data


def _empty():
    cases = pd.DataFrame(columns=["case_id", "person_id", "region_code", "status", "tracer", *CASE_MILESTONES,
                                  "isolated_own", "destination", "batch_region", "facility", "batch_ref"])
    contacts = pd.DataFrame(columns=["contact_id", "person_id", "tier", "region_code", "queue_region", "status",
                                     *CONTACT_MILESTONES, "isolated_own", "closed", "destination", "batch_region",
                                     "facility", "batch_ref"])
    return cases, contacts


def child_length(prefix: str) -> int:
    for length in (6, 9, 12, 15):
        if len(prefix) < length:
            return length
    return len(prefix)


def summary(data: ClockData) -> dict:
    """Per-stage figures of the day, the same by sub-region (streets of a district, communities of a street…) and by
    day over the window, the slowest stage of the day and the number of overdue items (as of ``data.at``)."""
    if "summary" not in data.memo:
        data.memo["summary"] = _summary(data)
    return data.memo["summary"]


def _summary(data: ClockData) -> dict:
    targets = data.targets
    a = _Arrays(data.rows)
    today = a.day == data.day
    day_stats = _table(a, today, targets)
    length = child_length(data.prefix)
    by_region = []
    if today.any():
        keys = data.rows["region_code"].str[:length].to_numpy(dtype=object)
        for code in sorted(set(keys[today])):
            by_region.append({"region_code": code, "stages": _table(a, today & (keys == code), targets)})
    by_day = []
    for i in range(WINDOW_DAYS - 1, -1, -1):
        d = data.day - dt.timedelta(days=i)
        by_day.append({"day": d, "stages": _table(a, a.day == d, targets)})
    overdue_n = int(((~a.done) & (a.age > a.target)).sum())
    return {"region_code": data.prefix, "day": data.day, "as_of": data.at, "targets": targets.as_dict(),
            "stages": day_stats, "slowest": slowest(day_stats), "child_length": length, "by_region": by_region,
            "by_day": by_day, "overdue_count": overdue_n}


def overdue(data: ClockData, *, stage: str = "", limit: int = 500) -> tuple[int, list[dict]]:
    """Open stages older than their target (any start day in the read window), most overdue first, with owners."""
    rows = data.rows
    if not len(rows):
        return 0, []
    late = rows[rows["end"].isna() & (rows["age"] > rows["target"])]
    if stage:
        late = late[late["stage"] == stage]
    late = late.assign(over=late["age"] - late["target"]).sort_values(["over", "subject_id"], ascending=[False, True])
    items = [{"kind": r.kind, "subject_id": int(r.subject_id), "person_id": int(r.person_id), "stage": r.stage,
              "region_code": r.region_code, "tier": r.tier,
              "started_at": dt.datetime.fromtimestamp(r.start, dt.UTC), "age_hours": round(float(r.age), 2),
              "target_hours": float(r.target), "over_hours": round(float(r.over), 2), "owner_kind": r.owner_kind,
              "owner": r.owner}
             for r in late.head(limit).itertuples(index=False)]
    return int(len(late)), items


def timeline_rows(cases: pd.DataFrame, contacts: pd.DataFrame) -> list[dict]:
    """Milestones per subject as datetimes (None = not reached), for tests and drill-down lists."""
    out = []
    for kind, frame, names, key in (("case", cases, CASE_MILESTONES, "case_id"),
                                    ("contact", contacts, CONTACT_MILESTONES, "contact_id")):
        for rec in frame[[key, "person_id", *names]].to_dict("records"):
            out.append({"kind": kind, "subject_id": int(rec[key]), "person_id": int(rec["person_id"]),
                        **{n: (None if pd.isna(rec[n]) else dt.datetime.fromtimestamp(rec[n], dt.UTC))
                           for n in names}})
    return out
