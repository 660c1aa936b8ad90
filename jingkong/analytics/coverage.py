"""Coverage of a testing campaign (应检尽检): who should be tested, who has been, and what is known so far.

Definitions (the figures every screen, list and export of a campaign agrees on):

* **Target population** — the persons living in the campaign's region (``Person.grid`` is the actual residence), or,
  in a key-group round (``Campaign.key_industry``), the persons of that industry living *or working* there. A person
  counts in the region where they live; a key-group member who lives outside the campaign region counts where they
  work. Persons created during the round (provisional records made at a scan) count where they live, like everyone.
  Persons without a residence grid cannot be placed and are in no target.
* **Sampled** — target persons with at least one :class:`~jingkong.testing.models.Sample` in the campaign, counted
  once however often they were swabbed. **Not yet sampled** = target − sampled. Swabs of persons outside the target
  (visitors from outside the region, other groups in a key-group round) are not coverage.
* Each sampled person is in exactly one state, the most serious their swabs of the campaign give (the rules of
  :mod:`jingkong.testing.deconvolution`, read from tube outcomes and retest tasks):

  ``positive``       a positive single tube (one-person routine tube, or a retest), or a retest task of theirs
                     resolved positive;
  ``pool_positive``  in a positive pooled tube whose retest has not come back (controlled in place, 就地管控);
  ``resample``       in an invalid tube and not swabbed again since (the resampling task is open and the round
                     has no later swab of theirs);
  ``negative``       a negative tube (a positive pool or an invalid tube cleared by their negative retest);
  ``pending``        swabbed, no result yet (including a swab taken again after an invalid tube — by the door
                     team in a resample tube, or at a site in a routine tube — awaiting its result).

  So ``sampled = positive + pool_positive + resample + negative + pending`` on every row. A person sampled twice
  counts once, in the more serious state (a negative and a pending swab: negative).

Regions: codes are prefix-hierarchical (district 6 digits, street 9, community 12, grid 15), so a region's subtree is
"codes starting with its code", and rolling grids up to communities/streets is ``substr(code, 1, n)``. What a caller
sees is an :class:`Area`: the campaign region narrowed to the caller's scope and to the region asked for.

Speed: population-wide work is set-based SQL, never a Python loop over people. For the whole campaign (the command
centre's district view) it is two statements: the target counted from the person grid index (the
``SELECT grid_id, COUNT(*)`` of the benchmark baseline), and the sampled persons' states from one pass over the round's
swabs in person order — the covering index ``testing_sample_cov_cpt`` (campaign, person, tube) of migration
``testing.0002`` — each person's state the ``MAX`` of their swabs' ranks, their grid looked up by primary key (on
PostgreSQL from the narrow index ``people_person_cov_id_grid`` of ``testing.0003``). For a part of a campaign (a
street officer's street, a grid) the persons of that part are read through the grid index and each one's swabs probed
through the same covering index. The SQL lives in this module only (three small dialect switches: ``_in_root``,
the bare grid column, ``SET LOCAL jit``); functions return plain dicts. ``benchmarks/bench_coverage.py`` measures it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Iterable

from django.db import connection, transaction

from jingkong.access.guard import Scope
from jingkong.core.exceptions import NotFound, ValidationFailed

LEVEL_LENGTH = {"district": 6, "street": 9, "community": 12, "grid": 15}
LEVELS = ("street", "community", "grid")  # the levels a coverage table can be broken down by
NEXT_LEVEL = {"district": "street", "street": "community", "community": "grid", "grid": "grid"}

# Person states in a campaign, most serious first, and their rank in SQL (higher wins: a person's state is the
# highest rank among their swabs of the campaign).
STATES = ("positive", "pool_positive", "resample", "negative", "pending")
_RANK = {"pending": 1, "negative": 2, "resample": 3, "pool_positive": 4, "positive": 5}
_STATE_OF_RANK = {rank: state for state, rank in _RANK.items()}
COUNT_FIELDS = ("target", "sampled", "not_sampled", *STATES)

# The rank of one swab ``s`` in tube ``t``, following jingkong.testing.deconvolution: a positive single tube (a
# routine tube of capacity 1, or a retest/resample tube holding one swab) is an individual positive; a positive pool
# and an invalid tube are followed up per member by a retest task (one per person and source tube), whose status
# resolves the swab: ``positive``/``negative`` as such, ``sampled`` (the follow-up swab is taken) keeps a pool
# member controlled in place and makes a resample "pending"; ``open`` (or cancelled, or no task yet) leaves the
# member pool-positive / to be resampled — except that an invalid swab is also answered by any later swab of the
# person in the round (a routine tube at a site claims no task, but its negative result clears the resampling order,
# deconvolution.resolve_tasks): that swab then speaks for itself (pending, negative, ... by its own rank) and the
# invalid one ranks lowest. Only the rare invalid branch reads ``sampled_at`` (through the (tube, person) unique
# index), so the whole-round pass stays on the covering index.
_POOLED = "((t.kind = 'routine' AND t.capacity > 1) OR (t.kind <> 'routine' AND t.member_count > 1))"
# A scalar subquery with LIMIT, not EXISTS: PostgreSQL may turn an EXISTS into one hashed pass over every swab.
_SWABBED_AGAIN = """(SELECT 1 FROM testing_sample s1 JOIN testing_sample s2
        ON s2.campaign_id = s1.campaign_id AND s2.person_id = s1.person_id AND s2.tube_id <> s1.tube_id
           AND s2.sampled_at >= s1.sampled_at
        WHERE s1.tube_id = s.tube_id AND s1.person_id = s.person_id LIMIT 1) IS NOT NULL"""
_SWAB_RANK = f"""CASE
    WHEN t.outcome = 'negative' THEN {_RANK['negative']}
    WHEN t.outcome = 'positive' AND NOT {_POOLED} THEN {_RANK['positive']}
    WHEN t.outcome IN ('positive', 'invalid') THEN COALESCE(
        (SELECT CASE r.status WHEN 'positive' THEN {_RANK['positive']} WHEN 'negative' THEN {_RANK['negative']}
                WHEN 'sampled' THEN (CASE WHEN t.outcome = 'invalid' THEN {_RANK['pending']}
                                     ELSE {_RANK['pool_positive']} END) END
         FROM testing_retesttask r WHERE r.person_id = s.person_id AND r.source_tube_id = s.tube_id),
        CASE WHEN t.outcome = 'positive' THEN {_RANK['pool_positive']}
             WHEN {_SWABBED_AGAIN} THEN {_RANK['pending']} ELSE {_RANK['resample']} END)
    ELSE {_RANK['pending']} END"""

# The state of person ``p`` (NULL: not sampled in the campaign), as a correlated subquery.
_PERSON_RANK = f"""(SELECT MAX({_SWAB_RANK}) FROM testing_sample s JOIN testing_tube t ON t.id = s.tube_id
    WHERE s.campaign_id = %(campaign)s AND s.person_id = p.id)"""

_CODE = re.compile(r"^[0-9A-Za-z]+$")


# --- the area a caller looks at -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Area:
    """A campaign seen from one region: its target population restricted to ``code``'s subtree."""

    campaign_id: int
    campaign_code: str
    campaign_region: str
    key_industry: str
    code: str
    name: str
    level: str

    @property
    def whole(self) -> bool:
        """The area is the campaign's whole region (the sample-driven plan pays off)."""
        return self.code == self.campaign_region

    def as_dict(self) -> dict:
        return {"code": self.code, "name": self.name, "level": self.level}


def _nested(a: str, b: str) -> bool:
    return a.startswith(b) or b.startswith(a)


def campaign_visible(campaign, scope: Scope) -> bool:
    """A campaign is visible to a scope that overlaps its region (inside it, or containing it)."""
    return scope.prefix is not None and _nested(campaign.region_code, scope.prefix)


def resolve_area(campaign, *, scope: Scope, region: str | None = None) -> Area:
    """The deepest of: the campaign region, the caller's scope, the region asked for (which must lie in the scope:
    404 otherwise, like a campaign the caller cannot see, and must overlap the campaign region)."""
    if not campaign_visible(campaign, scope):
        raise NotFound("campaign not found")
    candidates = [campaign.region_code]
    if scope.prefix:
        candidates.append(scope.prefix)
    if region:
        region = region.strip()
        if not _CODE.match(region) or not scope.contains(region) or not _nested(region, campaign.region_code):
            raise NotFound("region not found")
        candidates.append(region)
    code = max(candidates, key=len)
    with connection.cursor() as c:
        c.execute("SELECT name, level FROM geo_region WHERE code = %s", [code])
        row = c.fetchone()
    if row is None:
        raise NotFound("region not found")
    return Area(campaign_id=campaign.pk, campaign_code=campaign.code, campaign_region=campaign.region_code,
                key_industry=campaign.key_industry or "", code=code, name=row[0], level=row[1])


def level_for(area: Area, level: str | None) -> str:
    """The breakdown level: the one asked for (street / community / grid), else the level below the area's."""
    if not level:
        return NEXT_LEVEL.get(area.level, "grid")
    if level not in LEVELS:
        raise ValidationFailed(f"level must be one of {', '.join(LEVELS)}", extra={"field": "level"})
    return level


# --- SQL (the only place that knows the tables) ---------------------------------------------------------------------


def _like(code: str) -> str:
    return code.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _in_root(column: str) -> str:
    """``column`` (a region id) lies in the area. PostgreSQL: ``= ANY(ARRAY(...))`` lets the planner walk the person
    grid index once per region in index order (an ``IN`` subquery becomes a hash join over every person)."""
    regions = "SELECT id FROM geo_region WHERE code LIKE %(root)s ESCAPE '\\'"
    if connection.vendor == "postgresql":
        return f"{column} = ANY(ARRAY({regions}))"
    return f"{column} IN ({regions})"


def _attributed_persons(area: Area, select: str, *, where: str = "", joins: str = "") -> tuple[str, dict]:
    """``SELECT <select> FROM people_person p <joins> ...`` limited to the area's target population. ``select`` may
    use ``{grid_id}`` / ``{grid_code}``: the region the person counts in (their residence; a key-group member living
    outside the campaign region: their workplace)."""
    params = {"campaign": area.campaign_id, "root": _like(area.code), "camp": _like(area.campaign_region)}
    if not area.key_industry:
        if "{grid_code}" in select:
            joins = "JOIN geo_region hr ON hr.id = p.grid_id " + joins
        sql = f"""SELECT {select} FROM people_person p {joins} WHERE {_in_root("p.grid_id")} {where}"""
        return sql.replace("{grid_id}", "p.grid_id").replace("{grid_code}", "hr.code"), params
    params["industry"] = area.key_industry
    at_home = "hr.code LIKE %(camp)s ESCAPE '\\'"
    grid_code = f"(CASE WHEN {at_home} THEN hr.code ELSE wr.code END)"
    # ``industry <> ''`` lets SQLite use the partial industry index.
    sql = f"""SELECT {select} FROM people_person p
        LEFT JOIN geo_region hr ON hr.id = p.grid_id
        LEFT JOIN geo_venue v ON v.id = p.workplace_id
        LEFT JOIN geo_region wr ON wr.id = v.grid_id {joins}
        WHERE p.industry = %(industry)s AND p.industry <> ''
          AND {grid_code} LIKE %(root)s ESCAPE '\\' {where}"""
    return (sql.replace("{grid_id}", f"(CASE WHEN {at_home} THEN p.grid_id ELSE v.grid_id END)")
            .replace("{grid_code}", grid_code)), params


def _state_counts_sql(area: Area, length: int) -> list[tuple[str, dict]]:
    """Statements returning ``(code, rank, persons)`` rows with ``code`` cut to ``length``.

    Whole campaign: two statements, the target (rank 0) from the person grid index and the sampled persons' states
    (rank ≥ 1) from the samples in person order. A part of it: one statement over its persons, rank NULL = not
    sampled."""
    rollup = f"""SELECT substr(r.code, 1, {length}), g.st, SUM(g.n) FROM ({{per_grid}}) g
        JOIN geo_region r ON r.id = g.grid_id {{where}} GROUP BY substr(r.code, 1, {length}), g.st"""
    if area.whole and not area.key_industry:
        params = {"campaign": area.campaign_id, "root": _like(area.code)}
        target = f"""SELECT p.grid_id AS grid_id, 0 AS st, COUNT(*) AS n FROM people_person p
            WHERE {_in_root("p.grid_id")} GROUP BY p.grid_id"""
        # Grouped by ``s.person_id``, the covering index's order (no sort), and only then limited to the area: the
        # grid rows of visitors from elsewhere fall out in the roll-up's join instead of a test per person. A
        # person's grid is the same on each of their rows: SQLite takes it as a bare column (30 % faster than an
        # aggregate there); PostgreSQL wants an aggregate.
        grid = "p.grid_id" if connection.vendor == "sqlite" else "MAX(p.grid_id)"
        states = f"""SELECT x.grid_id AS grid_id, x.st AS st, COUNT(*) AS n
            FROM (SELECT {grid} AS grid_id, MAX({_SWAB_RANK}) AS st
                  FROM testing_sample s JOIN testing_tube t ON t.id = s.tube_id
                  JOIN people_person p ON p.id = s.person_id
                  WHERE s.campaign_id = %(campaign)s GROUP BY s.person_id) x
            GROUP BY x.grid_id, x.st"""
        in_area = "WHERE r.code LIKE %(root)s ESCAPE '\\'"
        return [(rollup.replace("{per_grid}", target).replace("{where}", ""), params),
                (rollup.replace("{per_grid}", states).replace("{where}", in_area), params)]
    inner, params = _attributed_persons(area, f"{{grid_id}} AS grid_id, {_PERSON_RANK} AS st")
    per_grid = f"SELECT a.grid_id AS grid_id, a.st AS st, COUNT(*) AS n FROM ({inner}) a GROUP BY a.grid_id, a.st"
    return [(rollup.replace("{per_grid}", per_grid).replace("{where}", ""), params)]


def _run(statements: Iterable[tuple[str, dict]]) -> list[tuple]:
    rows: list[tuple] = []
    # PostgreSQL needs the transaction for SET LOCAL; on SQLite an atomic block is BEGIN IMMEDIATE, which would hold
    # the only write lock (sampling scans!) for the whole read.
    in_tx = transaction.atomic() if connection.vendor == "postgresql" else contextlib.nullcontext()
    with in_tx, connection.cursor() as c:
        if connection.vendor == "postgresql":
            # A short analytic read: JIT compilation costs more than it saves at these row counts.
            c.execute("SET LOCAL jit = off")
        for sql, params in statements:
            c.execute(sql, params)
            rows.extend(c.fetchall())
    return rows


def _regions(area: Area, level: str) -> list[tuple[str, str, str]]:
    with connection.cursor() as c:
        c.execute("SELECT code, name, level FROM geo_region WHERE code LIKE %s ESCAPE '\\' AND level = %s "
                  "ORDER BY code", [_like(area.code), level])
        return c.fetchall()


def _region_names(codes: Iterable[str]) -> dict[str, tuple[str, str]]:
    codes = sorted(set(codes))
    if not codes:
        return {}
    out = {}
    with connection.cursor() as c:
        for i in range(0, len(codes), 500):
            chunk = codes[i:i + 500]
            c.execute(f"SELECT code, name, level FROM geo_region WHERE code IN ({', '.join(['%s'] * len(chunk))})",
                      chunk)
            out.update({code: (name, lvl) for code, name, lvl in c.fetchall()})
    return out


def _untested_sql(area: Area, *, include_resample: bool, limit: int | None) -> tuple[str, dict]:
    wanted = f"{_PERSON_RANK} IS NULL"
    if include_resample:
        wanted = f"({wanted} OR {_PERSON_RANK} = {_RANK['resample']})"
    select = f"""p.id AS id, p.id_masked, p.name, p.sex, p.birth_date, p.phone, p.vulnerable, p.unit, p.room,
        p.source, p.needs_review, p.industry, p.employer, {{grid_code}} AS grid_code, b.code AS building_code,
        b.address AS building_address, hh.code AS household_code, hh.unit AS household_unit,
        hh.room AS household_room, {_PERSON_RANK} AS st"""
    # A person without a recorded building is found through their household's building.
    joins = ("LEFT JOIN people_household hh ON hh.id = p.household_id "
             "LEFT JOIN geo_building b ON b.id = COALESCE(p.building_id, hh.building_id)")
    inner, params = _attributed_persons(area, select, where=f"AND {wanted}", joins=joins)
    # Persons without a building last in their grid on both databases (SQLite sorts NULL first, PostgreSQL last),
    # so that a list cut at ``limit`` holds the same persons on either.
    sql = (f"SELECT * FROM ({inner}) u ORDER BY u.grid_code, "
           f"CASE WHEN u.building_code IS NULL THEN 1 ELSE 0 END, u.building_code, u.id")
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return sql, params


# --- figures ----------------------------------------------------------------------------------------------------------


def _empty() -> dict:
    return dict.fromkeys(COUNT_FIELDS, 0)


def _finish(counts: dict) -> dict:
    counts["sampled"] = sum(counts[s] for s in STATES)
    counts["not_sampled"] = counts["target"] - counts["sampled"]
    counts["coverage_pct"] = round(100.0 * counts["sampled"] / counts["target"], 1) if counts["target"] else None
    return counts


def _collect(rows: list[tuple], whole_plan: bool) -> dict[str, dict]:
    """``(code, rank, n)`` rows → ``{code: counts}``."""
    by_code: dict[str, dict] = {}
    for code, rank, n in rows:
        counts = by_code.setdefault(code, _empty())
        n = int(n or 0)
        if whole_plan:
            if rank == 0:
                counts["target"] += n
            else:
                counts[_STATE_OF_RANK[int(rank)]] += n
        else:
            counts["target"] += n
            if rank is not None:
                counts[_STATE_OF_RANK[int(rank)]] += n
    return by_code


def coverage_rows(campaign, *, scope: Scope, level: str | None = None, parent: str | None = None) -> list[dict]:
    """Coverage of the campaign by region: one row per region of ``level`` in the area (the campaign region narrowed
    to the caller's scope and ``parent``), in code order, regions without anybody included (all zeros). A level at or
    above the area's own gives the area's row alone.

    A row: ``code, name, level, target, sampled, not_sampled, positive, pool_positive, negative, pending, resample,
    coverage_pct`` (None when the target is 0). Persons attached to a region above ``level`` (e.g. a community without
    grids) get a row of that region with ``unassigned=True``.
    """
    area = resolve_area(campaign, scope=scope, region=parent)
    return area_rows(area, level_for(area, level))


def area_rows(area: Area, level: str | None) -> list[dict]:
    """Coverage rows of an area by ``level`` (None: the area's own row)."""
    length = max(LEVEL_LENGTH.get(level or "", 0), len(area.code))
    whole_plan = area.whole and not area.key_industry
    by_code = _collect(_run(_state_counts_sql(area, length)), whole_plan)
    if length > len(area.code):
        regions = _regions(area, level)
    else:
        regions = [(area.code, area.name, area.level)]
    out = [{"code": code, "name": name, "level": lvl, **_finish(by_code.pop(code, _empty()))}
           for code, name, lvl in regions]
    if by_code:  # persons attached to a region above the breakdown level
        names = _region_names(by_code)
        for code, counts in by_code.items():
            name, lvl = names.get(code, (code, ""))
            out.append({"code": code, "name": name, "level": lvl, "unassigned": True, **_finish(counts)})
        out.sort(key=lambda r: r["code"])
    return out


def totals(rows: Iterable[dict]) -> dict:
    """The sum of coverage rows (their regions do not overlap)."""
    counts = _empty()
    for row in rows:
        for f in COUNT_FIELDS:
            counts[f] += row[f]
    return _finish(counts)


def coverage_summary(campaign, *, scope: Scope, region: str | None = None) -> dict:
    """The campaign's totals for the area (the caller's scope, or ``region`` inside it): the counts of
    :func:`coverage_rows` plus ``area`` (code, name, level)."""
    return area_summary(resolve_area(campaign, scope=scope, region=region))


def area_summary(area: Area) -> dict:
    """The area's totals; for the whole campaign also ``unplaced_sampled``: persons swabbed in the campaign whose
    residence is not recorded (provisional records made at sites outside any grid), in no target until placed."""
    out = {"area": area.as_dict(), **totals(area_rows(area, None))}
    if area.whole:
        out["unplaced_sampled"] = unplaced_sampled(area)
    return out


def unplaced_sampled(area: Area) -> int:
    """Persons swabbed in the campaign without a recorded residence (read through the grid index's NULL range). In a
    key-group round, members counted where they work (a workplace in the campaign region) are placed already."""
    sql = ("SELECT COUNT(*) FROM people_person p WHERE p.grid_id IS NULL AND EXISTS (SELECT 1 FROM "
           "testing_sample s WHERE s.campaign_id = %(campaign)s AND s.person_id = p.id)")
    params = {"campaign": area.campaign_id}
    if area.key_industry:
        sql += (" AND NOT (p.industry = %(industry)s AND EXISTS (SELECT 1 FROM geo_venue v JOIN geo_region wr "
                "ON wr.id = v.grid_id WHERE v.id = p.workplace_id AND wr.code LIKE %(camp)s ESCAPE '\\'))")
        params |= {"industry": area.key_industry, "camp": _like(area.campaign_region)}
    with connection.cursor() as c:
        c.execute(sql, params)
        return int(c.fetchone()[0])


# --- the untested list (扫楼) ----------------------------------------------------------------------------------------


UNTESTED_COLUMNS = ("id", "id_masked", "name", "sex", "birth_date", "phone", "vulnerable", "unit", "room", "source",
                    "needs_review", "industry", "employer", "grid_code", "building_code", "building_address",
                    "household_code", "household_unit", "household_room", "state")


def untested_persons(area: Area, *, include_resample: bool = True, limit: int | None = None) -> list[dict]:
    """The area's target persons not yet sampled in the campaign (and, with ``include_resample``, those in an invalid
    tube who are still to be swabbed again), ordered by grid, building and id; ``state`` is ``not_sampled`` or ``resample``.

    Rows carry the stored masked ID number and the phone as stored: the caller masks the phone for roles without
    ``PERSON_VIEW_PHONE`` and audits the read."""
    rows = _run([_untested_sql(area, include_resample=include_resample, limit=limit)])  # no JIT (60 ms to compile)
    out = []
    for row in rows:
        item = dict(zip(UNTESTED_COLUMNS, row, strict=True))
        item["state"] = "resample" if item["state"] == _RANK["resample"] else "not_sampled"
        out.append(item)
    return out
