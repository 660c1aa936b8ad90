"""Situation figures of the one-screen dashboard: cases, contacts, zones and the five-stage clock.

Four families (see :mod:`jingkong.dashboard.families`), each recomputed as a whole, set-based (a few SQL queries per
family, GROUP BY in the database or pandas over the rows of one query), at the deepest region a record is located to.
Days are the local (``settings.TIME_ZONE``, Asia/Shanghai) day of an instant, computed by the database
(``AT TIME ZONE`` on PostgreSQL; on SQLite its built-in ``date()`` shifted by the zone's fixed offset, or Django's
per-row function for a zone with daylight saving — :func:`_day`).

``cases`` (rows at ``Case.region_code``, the case's grid; every case counts: ``CaseStatus`` has no "discarded" state,
a closed case is a finished investigation, still a case of the wave):

* ``cases.new`` by report day (local day of ``Case.created_at``), key ``<classification>:<found>``. *found* is decided
  as of the instant the case was created (the instant tracing itself decides ``found_by``), first rule that holds:

  - ``quarantine`` — ``found_by`` is ``quarantine_test`` (tracing saw an in-quarantine contact), or the person had an
    isolation order (not cancelled, not a case's own order: tier ``case`` / mode ``hospital``) created at or before
    the case and not released before it (a ``converted`` order is exactly a positive in quarantine), or the person was
    a contact put in quarantine (``in_quarantine_at``) at or before the case and not closed before it;
  - ``control`` — the person lived inside a lockdown or control zone in force at that instant (9th edition: high- or
    medium-risk area): a zone approved at or before the case and not lifted before it, whose type *at that instant*
    (the ``from_type`` of its first upgrade/downgrade after the instant, else its type now) is one of those, and whose
    units contain the person (household, building, entrance, or a region containing their grid — the same unit rules
    as ``zones_zoneresident``), or which lists the person among its residents now. Units, not only today's residents,
    so that a case stays "found in control" after its control zone is lifted or its unit upgraded to a lockdown;
  - ``community`` — otherwise (社会面).
* ``cases.report`` / ``cases.onset`` by day, key ``imported`` (``source_category == "imported"``) or ``local`` (local
  and not yet determined): report = local day of ``created_at``; onset = ``onset_date``, else the local day of
  ``first_positive_at``, else the report day.
* ``cases.total`` per grid.

``contacts`` (rows at ``Contact.region_code``, the contact's grid; tiers ``close`` and ``secondary`` — space-time
companions are screened, not quarantined, and are not counted; a contact is one row per person, counted once per
metric, on the local day of its first such instant):

* ``identified`` — ``first_identified_at``; ``located`` — ``located_at``;
* ``transferred`` — the first ``BatchMember.picked_up_at`` of the person in a non-case role (picked up by a vehicle);
* ``isolated`` — the earliest of ``in_quarantine_at``, a room check-in (``RoomStay.checked_in_at``, non-case tier), an
  arrival (``BatchMember.arrived_at``, non-case role) and the start (``created_at``) of an isolation order (not
  cancelled, not a case's), each taken only at or after ``first_identified_at`` (an earlier one belongs to an earlier
  episode, as in the five-stage clock).

``zones`` — zones in force (``approved``): ``zones.count`` at the zone's region code, ``zones.population`` = distinct
residents (``zones_zoneresident``) at each resident's grid (the resident row's ``region_code``). Keys by severity
(:data:`jingkong.zones.rules.SEVERITY`): lockdown / high-risk → ``lockdown``, control / medium-risk → ``control``,
prevention / low-risk → ``prevention``.

``clock`` — the five-stage clock of :mod:`jingkong.analytics.clock`, computed once per district with the clock's own
``compute`` (as of the refresh instant, so the figures equal the clock page's for the same instant) and grouped by
region prefix with numpy: every region at every level that has an item (district, streets, communities, grids) gets
per stage ``clock.n`` (stages begun on the local day of the refresh and ended — the items behind the quantiles; the
clock's ``done``), ``clock.p50_h`` / ``clock.p90_h`` (the clock's ``median`` / ``p90``), ``clock.on_target``
((done − late) ÷ done), ``clock.ratio`` (the clock's load ratio, which names the slowest stage) and ``clock.target_h``;
``clock.backlog`` / ``clock.overdue`` are the stages open *now* (any start day the clock reads) and those of them past
their target, so their sum over stages equals the clock's ``overdue_count``. The clock reads ~300 k rows at 10 k cases
and 100 k contacts (~10 s on PostgreSQL): the family waits at least 20 s between refreshes.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from django.db import connection

from jingkong.core import clock
from jingkong.dashboard.families import Family, Row, max_mark, register

ZONE_KEY = {"lockdown": "lockdown", "high_risk": "lockdown", "control": "control", "medium_risk": "control",
            "prevention": "prevention", "low_risk": "prevention"}
CONTROL_TYPES = ("lockdown", "control", "high_risk", "medium_risk")
CONTACT_TIERS = ("close", "secondary")


# --- helpers ------------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def fixed_offset_minutes(tzname: str) -> int | None:
    """The zone's UTC offset in minutes when it has kept one offset since 2000 (Asia/Shanghai: +480 since 1991),
    else None."""
    tz = ZoneInfo(tzname)
    offsets = {tz.utcoffset(dt.datetime(y, m, 15, 12)) for y in range(2000, 2101) for m in range(1, 13)}
    return int(offsets.pop().total_seconds() // 60) if len(offsets) == 1 else None


def _day(column: str) -> tuple[str, list]:
    """SQL for the local day of a timestamp column, with its parameters.

    SQLite: Django's ``django_datetime_cast_date`` is a Python function called once per row (2.3 s of the 2.7 s of a
    GROUP BY over 100 k contacts); for a zone of one fixed offset SQLite's own ``date(col, '+480 minutes')`` gives the
    same day in C (0.3 s). PostgreSQL: ``AT TIME ZONE``."""
    tzname = clock.local_time_zone()
    if connection.vendor == "sqlite" and (minutes := fixed_offset_minutes(tzname)) is not None:
        # Django stores naive UTC text; the seconds are cut first because SQLite rounds a fraction to milliseconds
        # (23:59:59.9999 local would become the next day).
        return f"date(substr({column}, 1, 19), %s)", [f"{minutes:+d} minutes"]
    sql, params = connection.ops.datetime_cast_date_sql(column, (), tzname)
    return sql, list(params)


def _as_date(value) -> dt.date | None:
    if value is None or isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    return dt.date.fromisoformat(str(value)[:10])


def _fetch(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _max_marks(**sources) -> dict:
    """``{name: str(MAX(field))}`` of (model, field) pairs — cheap (primary keys, small tables), each read once per
    refresher pass however many families watch it (:func:`jingkong.dashboard.families.max_mark`)."""
    return {name: max_mark(model, field) for name, (model, field) in sources.items()}


# --- cases ----------------------------------------------------------------------------------------------------------------


def quarantine_case_ids() -> set[int]:
    """Cases found in quarantine (module docstring): one query."""
    return {r[0] for r in _fetch(
        "SELECT c.id FROM tracing_case c WHERE c.found_by = %s "
        "OR EXISTS (SELECT 1 FROM isolation_isolationorder o WHERE o.person_id = c.person_id "
        "AND o.status <> %s AND o.tier <> %s AND o.mode <> %s AND o.created_at <= c.created_at "
        "AND (o.released_at IS NULL OR o.released_at >= c.created_at)) "
        "OR EXISTS (SELECT 1 FROM tracing_contact k WHERE k.person_id = c.person_id "
        "AND k.in_quarantine_at IS NOT NULL AND k.in_quarantine_at <= c.created_at "
        "AND (k.closed_at IS NULL OR k.closed_at >= c.created_at))",
        ["quarantine_test", "cancelled", "case", "hospital"])}


def control_case_ids() -> set[int]:
    """Cases whose person lived inside a lockdown/control zone in force when the case was created (module
    docstring): one query, the unit matches as a UNION of equi-joins — region units by code prefix too, one arm per
    length of the region codes in use (``substr(grid, 1, n) = unit``): a ``LIKE unit || '%'`` join compared every
    case with every unit (4 s at 10 k cases and a thousand units on SQLite; 0.15 s this way)."""
    base = "FROM tracing_case c JOIN people_person p ON p.id = c.person_id "
    lengths = sorted(int(r[0]) for r in _fetch(
        "SELECT DISTINCT length(r.code) FROM zones_zoneunit u JOIN geo_region r ON r.id = u.region_id", []) if r[0])
    region_units = ("(SELECT u.zone_id, r.code FROM zones_zoneunit u JOIN geo_region r ON r.id = u.region_id "
                    "JOIN zones_zone z ON z.id = u.zone_id WHERE z.approved_at IS NOT NULL)")
    matches = " UNION ALL ".join([
        f"SELECT c.id AS case_id, c.created_at AS at, u.zone_id AS zone_id {base}"
        "JOIN zones_zoneunit u ON u.household_id = p.household_id",
        f"SELECT c.id, c.created_at, u.zone_id {base}"
        "JOIN zones_zoneunit u ON u.building_id = p.building_id AND u.kind <> 'entrance'",
        f"SELECT c.id, c.created_at, u.zone_id {base}"
        "JOIN zones_zoneunit u ON u.building_id = p.building_id AND u.kind = 'entrance' "
        "LEFT JOIN people_household h ON h.id = p.household_id "
        "WHERE p.unit = u.entrance OR (p.unit = '' AND h.unit = u.entrance)",
        *[f"SELECT c.id, c.created_at, ru.zone_id {base}JOIN geo_region g ON g.id = p.grid_id "
          f"JOIN {region_units} ru ON ru.code = substr(g.code, 1, {n})" for n in lengths],
        "SELECT c.id, c.created_at, zr.zone_id FROM tracing_case c "
        "JOIN zones_zoneresident zr ON zr.person_id = c.person_id",
    ])
    types = ", ".join(["%s"] * len(CONTROL_TYPES))
    sql = (f"SELECT DISTINCT m.case_id FROM ({matches}) m JOIN zones_zone z ON z.id = m.zone_id "
           "WHERE z.status IN (%s, %s) AND z.approved_at IS NOT NULL AND z.approved_at <= m.at "
           "AND (z.lifted_at IS NULL OR z.lifted_at > m.at) "
           "AND COALESCE((SELECT ch.from_type FROM zones_zonechange ch WHERE ch.zone_id = z.id "
           "AND ch.action IN ('upgrade', 'downgrade') AND ch.at > m.at ORDER BY ch.at, ch.id LIMIT 1), z.type) "
           f"IN ({types})")
    return {r[0] for r in _fetch(sql, ["approved", "lifted", *CONTROL_TYPES])}


def case_frame() -> pd.DataFrame:
    """One row per case: id, grid, classification, source, report day, onset day (one query)."""
    report, p1 = _day("c.created_at")
    positive, p2 = _day("c.first_positive_at")
    report2, p3 = _day("c.created_at")
    rows = _fetch(f"SELECT c.id, c.region_code, c.classification, c.source_category, {report}, "
                  f"COALESCE(c.onset_date, {positive}, {report2}) FROM tracing_case c", [*p1, *p2, *p3])
    frame = pd.DataFrame.from_records(rows, columns=["id", "region_code", "classification", "source", "report_day",
                                                     "onset_day"])
    for col in ("report_day", "onset_day"):
        frame[col] = [_as_date(v) for v in frame[col]]
    return frame


def compute_cases(at: dt.datetime) -> list[Row]:
    frame = case_frame()
    if frame.empty:
        return []
    quarantine, control = quarantine_case_ids(), control_case_ids()
    frame["found"] = np.where(frame["id"].isin(quarantine), "quarantine",
                              np.where(frame["id"].isin(control), "control", "community"))
    frame["origin"] = np.where(frame["source"] == "imported", "imported", "local")
    frame["new_key"] = frame["classification"].astype(str) + ":" + frame["found"]
    rows: list[Row] = []
    for metric, key, day in (("cases.new", "new_key", "report_day"), ("cases.report", "origin", "report_day"),
                             ("cases.onset", "origin", "onset_day")):
        for (code, k, d), n in frame.groupby(["region_code", key, day]).size().items():
            rows.append((metric, k, code, d, int(n)))
    for code, n in frame.groupby("region_code").size().items():
        rows.append(("cases.total", "", code, None, int(n)))
    return rows


def cases_marks() -> dict:
    from jingkong.tracing.models import Case

    return _max_marks(case=(Case, "id"), case_updated=(Case, "updated_at"))


# --- contacts -------------------------------------------------------------------------------------------------------------


def _contact_counts(metric: str, first_sql: str, params: list, *, join: str = "") -> Iterator[Row]:
    """Contacts per (grid, tier, local day of ``first``): ``first_sql`` is one instant per contact ``k``."""
    day, dparams = _day("x.first_at")
    tiers = ", ".join(["%s"] * len(CONTACT_TIERS))
    sql = (f"SELECT x.region_code, x.tier, {day}, COUNT(*) FROM ("
           f"SELECT k.id, k.region_code, k.tier, {first_sql} AS first_at FROM tracing_contact k {join} "
           f"WHERE k.tier IN ({tiers}) GROUP BY k.id, k.region_code, k.tier) x "
           "WHERE x.first_at IS NOT NULL GROUP BY 1, 2, 3")
    for code, tier, d, n in _fetch(sql, [*dparams, *params, *CONTACT_TIERS]):
        yield metric, tier, code, _as_date(d), int(n)


def compute_contacts(at: dt.datetime) -> list[Row]:
    rows: list[Row] = []
    rows += _contact_counts("contacts.identified", "MIN(k.first_identified_at)", [])
    rows += _contact_counts("contacts.located", "MIN(k.located_at)", [])
    rows += _contact_counts(
        "contacts.transferred", "MIN(m.picked_up_at)", [],
        join="JOIN isolation_batchmember m ON m.person_id = k.person_id AND m.role <> 'case' "
             "AND m.picked_up_at IS NOT NULL")
    isolations = ("SELECT person_id, in_quarantine_at AS t FROM tracing_contact WHERE in_quarantine_at IS NOT NULL "
                  "UNION ALL SELECT person_id, checked_in_at FROM isolation_roomstay "
                  "WHERE checked_in_at IS NOT NULL AND tier <> 'case' "
                  "UNION ALL SELECT person_id, arrived_at FROM isolation_batchmember "
                  "WHERE arrived_at IS NOT NULL AND role <> 'case' "
                  "UNION ALL SELECT person_id, created_at FROM isolation_isolationorder "
                  "WHERE status <> 'cancelled' AND tier <> 'case' AND mode <> 'hospital'")
    rows += _contact_counts("contacts.isolated", "MIN(s.t)", [],
                            join=f"JOIN ({isolations}) s ON s.person_id = k.person_id "
                                 "AND s.t >= k.first_identified_at")
    return rows


def contacts_marks() -> dict:
    from jingkong.isolation.models import BatchMember, RoomStay
    from jingkong.tracing.models import Contact

    return _max_marks(contact=(Contact, "id"), member=(BatchMember, "id"), stay=(RoomStay, "id"))


# --- zones ----------------------------------------------------------------------------------------------------------------


def _zone_key_sql(column: str) -> tuple[str, list]:
    whens = " ".join(["WHEN %s THEN %s"] * len(ZONE_KEY))
    return f"CASE {column} {whens} END", [v for pair in ZONE_KEY.items() for v in pair]


def compute_zones(at: dt.datetime) -> list[Row]:
    rows: list[Row] = []
    key, kparams = _zone_key_sql("z.type")
    for code, k, n in _fetch(f"SELECT z.region_code, {key}, COUNT(*) FROM zones_zone z WHERE z.status = %s "
                             "GROUP BY 1, 2", [*kparams, "approved"]):
        if k:
            rows.append(("zones.count", k, code, None, int(n)))
    key, kparams = _zone_key_sql("r.zone_type")
    for code, k, n in _fetch(f"SELECT r.region_code, {key}, COUNT(DISTINCT r.person_id) FROM zones_zoneresident r "
                             "JOIN zones_zone z ON z.id = r.zone_id WHERE z.status = %s GROUP BY 1, 2",
                             [*kparams, "approved"]):
        if k:
            rows.append(("zones.population", k, code, None, int(n)))
    return rows


def zones_marks() -> dict:
    from jingkong.zones.models import Zone

    return _max_marks(zone=(Zone, "id"), zone_updated=(Zone, "updated_at"))


# --- the five-stage clock -------------------------------------------------------------------------------------------------


def districts() -> list[str]:
    """District codes: the district regions, and the first six digits of any case or contact (a record outside the
    region tree is still counted somewhere)."""
    from jingkong.geo.models import Region

    codes = set(Region.objects.filter(level="district").values_list("code", flat=True))
    for table in ("tracing_case", "tracing_contact"):
        codes |= {r[0] for r in _fetch(f"SELECT DISTINCT substr(region_code, 1, 6) FROM {table} "
                                       "WHERE region_code <> %s", [""])}
    return sorted(c for c in codes if c)


def _region_slots(codes: list[str], district: str) -> tuple[list[str], np.ndarray]:
    """The regions the distinct subject codes lie in, from the district down to each code itself, and for each code
    one column per level holding the index of its region there (-1: none at that level). Python runs over the
    distinct codes only (a few hundred grids), never over the rows."""
    levels = [length for length in sorted({len(district), 9, 12}) if length >= len(district)]
    slots = []
    for c in codes:
        inside = c.startswith(district)
        row = [c[:length] if inside and len(c) >= length else None for length in levels]
        row.append(c if inside and len(c) not in levels and len(c) > len(district) else None)
        slots.append(row)
    regions = sorted({r for row in slots for r in row if r} | {district})
    index = {r: i for i, r in enumerate(regions)}
    table = np.array([[index[r] if r else -1 for r in row] for row in slots], dtype=int).reshape(len(codes),
                                                                                                 len(levels) + 1)
    return regions, table


def clock_figures(data) -> list[Row]:
    """The figures of one district's :class:`jingkong.analytics.clock.ClockData`, for every region with an item."""
    from jingkong.analytics import clock as five

    targets, district = data.targets, data.prefix
    frame = data.rows
    stage_index = {s: i for i, s in enumerate(five.STAGE_KEYS)}
    n_stages = len(five.STAGE_KEYS)
    done = frame["end"].notna().to_numpy(dtype=bool)
    today = (frame["day"] == data.day).to_numpy(dtype=bool)
    relevant = np.flatnonzero(today | ~done)  # begun today, or open now
    codes_of, distinct = pd.factorize(frame["region_code"].fillna("").astype(str).to_numpy(dtype=object)[relevant])
    regions, table = _region_slots([str(c) for c in distinct], district)
    stage = pd.Categorical(frame["stage"].to_numpy(dtype=object)[relevant], categories=list(five.STAGE_KEYS)).codes
    stage = stage.astype(int)
    # one (row, region) pair per region each relevant row lies in
    pairs = table[codes_of] if len(relevant) else np.empty((0, table.shape[1]), dtype=int)
    pairs[stage < 0] = -1  # a stage the clock does not list (none today): never folded into a neighbour's group
    row_pos, slot = np.nonzero(pairs >= 0)
    row_idx = relevant[row_pos]
    group = pairs[row_pos, slot] * n_stages + stage[row_pos]
    size = len(regions) * n_stages
    region_index = {c: i for i, c in enumerate(regions)}
    hours = frame["hours"].to_numpy(dtype="float64")[row_idx]
    age = frame["age"].to_numpy(dtype="float64")[row_idx]
    target = frame["target"].to_numpy(dtype="float64")[row_idx]
    d, t, o = done[row_idx], today[row_idx], ~done[row_idx]

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(group[mask], minlength=size)

    n = count(d & t)
    late = count(d & t & (hours > target))
    backlog = count(o)
    overdue = count(o & (age > target))
    quant = _group_percentiles(group[d & t], hours[d & t], (50, 90))
    load = _group_percentiles(group[t], np.where(d, hours, age)[t], (90,))
    out: list[Row] = []
    for code, ri in region_index.items():
        for stage_name, si in stage_index.items():
            g = ri * n_stages + si
            tgt = targets.of(stage_name)
            out += [("clock.n", stage_name, code, None, int(n[g])),
                    ("clock.backlog", stage_name, code, None, int(backlog[g])),
                    ("clock.overdue", stage_name, code, None, int(overdue[g])),
                    ("clock.target_h", stage_name, code, None, float(tgt))]
            if n[g]:
                p50, p90 = quant[g]
                out += [("clock.p50_h", stage_name, code, None, p50), ("clock.p90_h", stage_name, code, None, p90),
                        ("clock.on_target", stage_name, code, None, (int(n[g]) - int(late[g])) / int(n[g]))]
            if g in load and tgt:
                out.append(("clock.ratio", stage_name, code, None, round(load[g][0] / tgt, 3)))
    return out


def _group_percentiles(group: np.ndarray, values: np.ndarray, qs: tuple[int, ...]) -> dict[int, list[float]]:
    """Per group, the clock's own percentiles (``analytics.clock._pct``: numpy's linear interpolation, rounded to 2
    decimals) of its values. Groups of the same size are stacked and given to ``np.percentile`` at once (``axis=1``
    runs the same arithmetic on each row as the clock's call on one group), so the figures are the clock page's to
    the last bit without one numpy call per region and stage (thousands at district scale)."""
    if not len(group):
        return {}
    order = np.argsort(group, kind="stable")
    g, v = group[order], values[order]
    starts = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
    sizes = np.diff(np.r_[starts, len(g)])
    out: dict[int, list[float]] = {}
    for size in np.unique(sizes):
        first = starts[sizes == size]
        matrix = v[first[:, None] + np.arange(size)]
        result = np.percentile(matrix, list(qs), axis=1)  # (len(qs), groups)
        for j, s in enumerate(first):
            out[int(g[s])] = [round(float(result[i, j]), 2) for i in range(len(qs))]
    return out


def compute_clock(at: dt.datetime) -> list[Row]:
    from jingkong.access.guard import Scope
    from jingkong.analytics import clock as five
    from jingkong.policy.schema import RulesIncomplete
    from jingkong.policy.selectors import PolicyNotActive

    rows: list[Row] = []
    for district in districts():
        try:
            data = five.compute(Scope(""), region=district, at=at)
        except (PolicyNotActive, RulesIncomplete):  # no profile in force there: the clock page has nothing either
            continue
        rows += clock_figures(data)
    return rows


def clock_marks() -> dict:
    from jingkong.isolation.models import BatchMember, RoomStay
    from jingkong.tracing.models import Case, Contact

    return _max_marks(case=(Case, "id"), contact=(Contact, "id"), member=(BatchMember, "id"), stay=(RoomStay, "id"))


# --- registration ---------------------------------------------------------------------------------------------------------

register(Family(
    name="cases",
    triggers=("tracing.case_", "zones.zone_"),
    compute=compute_cases,
    marks=cases_marks,
    min_interval=2.0,
))

register(Family(
    name="contacts",
    triggers=("tracing.contact", "tracing.handoff", "isolation.grouped", "isolation.picked_up", "isolation.arrived",
              "isolation.order_", "isolation.rooms_assigned", "isolation.member_removed"),
    compute=compute_contacts,
    marks=contacts_marks,
    min_interval=3.0,
))

register(Family(
    name="zones",
    triggers=("zones.zone_",),
    compute=compute_zones,
    marks=zones_marks,
    min_interval=5.0,
))

register(Family(
    name="clock",
    triggers=("tracing.case_", "tracing.contact", "isolation.grouped", "isolation.transfer_", "isolation.picked_up",
              "isolation.arrived", "isolation.order_", "isolation.rooms_assigned", "isolation.member_removed",
              "isolation.checked_out"),
    compute=compute_clock,
    marks=clock_marks,
    min_interval=20.0,
    max_age=120.0,  # open stages age and become overdue without any event
))
