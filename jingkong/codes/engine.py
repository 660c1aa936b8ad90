"""Health codes for the whole population, set-based.

* :func:`recompute_all` — every person (``people_person``) gets a ``codes_healthcode`` row. The facts are gathered
  with one SQL query per source (:mod:`jingkong.codes.facts`); only people having a fact (or an active manual
  override) are evaluated, in Python, against their profile's rules (:mod:`jingkong.codes.rules`); everybody else is
  green. Writes are set-based: the evaluated codes are compared with the stored ones (read by primary key), those
  that changed go into a temporary table and one ``INSERT … SELECT … ON CONFLICT`` writes them; one ``UPDATE`` turns
  back to green the codes that cite rules nobody matches any more (found through the partial index on ``cites``);
  one ``INSERT … SELECT`` gives a green code to people who have none. Rows that did not change are not written.
  Moves between grids are followed as they happen (``people.person_updated``; ``people.imported`` →
  :func:`sync_population`), or with ``follow_moves=True`` (one ``UPDATE … FROM`` over everybody).
* :func:`recompute_people` — the same for a list of people (event handlers: a pool turns positive → its members).

A colour change is audited per person (``codes.colour``) and announced with one ``codes.changed`` event per recompute
(payload ``{"count", "by_colour", "person_ids"}`` with at most 500 ids), inside the transaction.

Manual overrides (:class:`~jingkong.codes.models.CodeOverride`, active: started, not expired, not revoked) win over
the rules while active: the override's colour, ``rule_id`` ``"override"``, and the override listed first among the
reasons (the rules' reasons follow, for the officer's information).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence

from django.db import connection, transaction

from jingkong.codes import facts as F
from jingkong.codes import rules as R
from jingkong.core import bulk, clock

OVERRIDE_RULE = "override"
EVENT = "codes.changed"
EVENT_IDS = 500
NEW = "_codes_new"
_COLUMNS = ("person_id", "colour", "rule_id", "reasons", "green_on", "region_code", "profile_id", "overridden",
            "cites")


def _pg() -> bool:
    return connection.vendor == "postgresql"


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _json(value) -> str:
    # The text Django's JSONField writes (json.dumps defaults), so SQLite compares stored and new reasons as equal text.
    return json.dumps(value)


def cites_of(reasons: list[dict]) -> str:
    ids = [r["rule"] for r in reasons]
    return f" {' '.join(ids)} " if ids else ""


# --- overrides ---------------------------------------------------------------------------------------------------------


def active_overrides(at: dt.datetime, people: Sequence[int] | None = None) -> dict[int, tuple]:
    """The latest active override per person: ``{person_id: (colour, reason, expires_at, id)}``."""
    sql = ("SELECT person_id, colour, reason, expires_at, id, starts_at FROM codes_codeoverride "
           "WHERE revoked_at IS NULL AND starts_at <= %s AND (expires_at IS NULL OR expires_at > %s) {people}")
    when = bulk.db_datetime(at)
    out: dict[int, tuple] = {}
    latest: dict[int, tuple] = {}
    for pid, colour, reason, expires, oid, starts in F._rows(sql, "person_id", people, [when, when]):
        key = (F._aware(starts), oid)
        if pid not in latest or key > latest[pid]:
            latest[pid] = key
            out[pid] = (colour, reason, F._aware(expires), oid)
    return out


def apply_override(decision: R.Decision, override: tuple) -> R.Decision:
    colour, reason, expires, oid = override
    until = F.local_date(expires) if expires else None
    first = {"rule": OVERRIDE_RULE, "colour": colour, "reason": reason, "until": until.isoformat() if until else None,
             "override_id": oid}
    green_on = until if colour != R.GREEN else None
    return R.Decision(colour=colour, rule_id=OVERRIDE_RULE, reasons=[first, *decision.reasons], green_on=green_on)


# --- evaluation --------------------------------------------------------------------------------------------------------


def _regions_of(ids: Sequence[int]) -> dict[int, str]:
    sql = ("SELECT p.id, COALESCE(g.code, '') FROM people_person p LEFT JOIN geo_region g ON g.id = p.grid_id "
           "WHERE 1 = 1 {people}")
    return dict(F._rows(sql, "p.id", ids))


def evaluate(*, at: dt.datetime, people: Sequence[int] | None, policies: F.Policies,
             progress: Callable[[str], None] | None = None) -> tuple[dict[int, tuple], dict]:
    """``({person_id: row}, stats)`` for the people having a fact or an override (all of ``people`` when given)."""
    gathered = F.gather(at=at, people=people, policies=policies, progress=progress)
    overrides = active_overrides(at, people)
    ids = set(gathered.facts) | set(overrides)
    if people is not None:
        ids |= set(people)
    regions = _regions_of(sorted(ids)) if ids else {}
    rows: dict[int, tuple] = {}
    for pid in ids:
        if pid not in regions:
            continue  # the person no longer exists
        region = regions[pid]
        person_facts = gathered.facts.get(pid)
        policy = policies.for_region(region) if person_facts else None
        if person_facts and policy is not None:
            decision = R.decide(policy.rules, person_facts)
        else:
            decision = R.default_decision()
        if pid in overrides:
            decision = apply_override(decision, overrides[pid])
        rows[pid] = (pid, decision.colour, decision.rule_id, decision.reasons, decision.green_on, region,
                     policy.profile_id if policy is not None and decision.reasons else None,
                     decision.rule_id == OVERRIDE_RULE, cites_of(decision.reasons))
    stats = {"facts": sum(len(f) for f in gathered.facts.values()), "people_with_facts": len(gathered.facts),
             "overrides": len(overrides), "evaluated": len(rows), "by_source": gathered.per_source}
    return rows, stats


# --- writing -----------------------------------------------------------------------------------------------------------


def _stage(rows: list[tuple]) -> None:
    """(Re)create the temporary table of evaluated codes and fill it (COPY on PostgreSQL, executemany on SQLite)."""
    with connection.cursor() as c:
        c.execute(f"DROP TABLE IF EXISTS {NEW}")
        if _pg():
            c.execute(f"CREATE TEMP TABLE {NEW} (person_id bigint PRIMARY KEY, colour varchar(8), rule_id varchar(64), "
                      "reasons jsonb, green_on date, region_code varchar(32), profile_id bigint, overridden boolean, "
                      "cites varchar(1000)) ON COMMIT DROP")
            bulk.copy_rows(c.cursor, NEW, _COLUMNS,
                           ((r[0], r[1], r[2], _json(r[3]), r[4], r[5], r[6], r[7], r[8]) for r in rows))
            c.execute(f"ANALYZE {NEW}")  # without statistics the planner may scan every code to join a few rows
        else:
            c.execute(f"CREATE TEMP TABLE {NEW} (person_id integer PRIMARY KEY, colour text, rule_id text, "
                      "reasons text, green_on date, region_code text, profile_id integer, overridden bool, cites text)")
            c.executemany(f"INSERT INTO {NEW} VALUES ({', '.join(['%s'] * len(_COLUMNS))})",
                          [(r[0], r[1], r[2], _json(r[3]), r[4].isoformat() if r[4] else None, r[5], r[6],
                            1 if r[7] else 0, r[8]) for r in rows])


def _stored(ids: Sequence[int]) -> dict[int, tuple]:
    """The stored codes of ``ids`` (index lookups by primary key, chunked): ``{person_id: comparable row}``."""
    sql = ("SELECT person_id, colour, rule_id, reasons, green_on, region_code, profile_id, overridden, cites "
           "FROM codes_healthcode WHERE 1 = 1 {people}")
    out = {}
    for pid, colour, rule_id, reasons, green_on, region, profile_id, overridden, cites in F._rows(sql, "person_id", ids):
        if isinstance(reasons, str | bytes):
            reasons = json.loads(reasons)
        out[pid] = (pid, colour, rule_id, reasons, F._date(green_on), region, profile_id, bool(overridden), cites)
    return out


def _write(rows: dict[int, tuple], now: dt.datetime) -> list[tuple[int, str | None, str, str]]:
    """Write the evaluated codes that differ from the stored ones (compared in Python over the few evaluated rows,
    then one INSERT … ON CONFLICT from a staged table); returns ``(person_id, old colour, new colour, region)`` of
    every written row (old colour None: the person had no code)."""
    stored = _stored(sorted(rows))
    changed = [row for pid, row in rows.items() if stored.get(pid) != row]
    if not changed:
        return []
    _stage(changed)
    when = bulk.db_datetime(now)
    excluded = "EXCLUDED" if _pg() else "excluded"
    sets = ", ".join(f"{col} = {excluded}.{col}" for col in
                     ("colour", "rule_id", "reasons", "green_on", "region_code", "profile_id", "overridden", "cites",
                      "computed_at"))
    with connection.cursor() as c:
        c.execute(
            f"INSERT INTO codes_healthcode (person_id, colour, rule_id, reasons, green_on, region_code, profile_id, "
            f"overridden, cites, computed_at, changed_at) "
            f"SELECT n.person_id, n.colour, n.rule_id, n.reasons, n.green_on, n.region_code, n.profile_id, "
            f"n.overridden, n.cites, %s, %s FROM {NEW} n WHERE 1 = 1 "
            f"ON CONFLICT (person_id) DO UPDATE SET {sets}, changed_at = CASE WHEN codes_healthcode.colour = "
            f"{excluded}.colour THEN codes_healthcode.changed_at ELSE {excluded}.changed_at END",
            [when, when])
    return [(row[0], stored[row[0]][1] if row[0] in stored else None, row[1], row[5]) for row in changed]


def _green_sql() -> str:
    empty = "'[]'::jsonb" if _pg() else "'[]'"
    false = "FALSE" if _pg() else "0"
    return (f"colour = 'green', rule_id = '', reasons = {empty}, green_on = NULL, profile_id = NULL, "
            f"overridden = {false}, cites = ''")


def _reset_unmatched(evaluated: set[int], now: dt.datetime) -> list[tuple[int, str | None, str, str]]:
    """Full recompute: codes that are not the plain green default (they cite a rule or an override: the partial
    index on ``cites``) and whose person was not evaluated (no fact, no override any more) turn green."""
    when = bulk.db_datetime(now)
    with connection.cursor() as c:
        c.execute("SELECT person_id, colour, region_code FROM codes_healthcode WHERE NOT (cites = '')")
        stale = [r for r in c.fetchall() if r[0] not in evaluated]
        ids = [r[0] for r in stale]
        for i in range(0, len(ids), F.CHUNK):
            part = ids[i:i + F.CHUNK]
            c.execute(f"UPDATE codes_healthcode SET {_green_sql()}, computed_at = %s, changed_at = CASE WHEN "
                      f"colour = 'green' THEN changed_at ELSE %s END "
                      f"WHERE person_id IN ({', '.join(['%s'] * len(part))})", [when, when, *part])
    return [(pid, colour, "green", region) for pid, colour, region in stale]


BULK_MISSING = 100_000  # from this many missing codes on, the first-load path below is used


def _insert_missing(now: dt.datetime) -> int:
    """A green code for every person without one: one INSERT … SELECT.

    Many missing codes (the first recompute of a population, a large import): the secondary indexes of an empty
    table are dropped and rebuilt after the insert (one sort each instead of a random insert per row), and on
    PostgreSQL the foreign keys are dropped and re-added ``NOT VALID`` then validated — one anti-join scan instead
    of a deferred trigger per row at commit. All inside the recompute's transaction (DDL is transactional there), so
    the table is never left without them."""
    when = bulk.db_datetime(now)
    empty = "'[]'::jsonb" if _pg() else "'[]'"
    false = "FALSE" if _pg() else "0"
    with connection.cursor() as c:
        c.execute("SELECT (SELECT COUNT(*) FROM people_person), (SELECT COUNT(*) FROM codes_healthcode)")
        people, codes = c.fetchone()
        if people == codes:
            return 0  # codes are deleted with their person (CASCADE): equal counts, nobody is missing
        restore: list[str] = []
        if people - codes >= BULK_MISSING:
            restore = _unconstrain(c, drop_indexes=codes == 0)
        c.execute(
            "INSERT INTO codes_healthcode (person_id, colour, rule_id, reasons, green_on, region_code, profile_id, "
            "overridden, cites, computed_at, changed_at) "
            f"SELECT p.id, 'green', '', {empty}, NULL, COALESCE(g.code, ''), NULL, {false}, '', %s, %s "
            "FROM people_person p LEFT JOIN geo_region g ON g.id = p.grid_id "
            "WHERE NOT EXISTS (SELECT 1 FROM codes_healthcode h WHERE h.person_id = p.id)",
            [when, when])
        inserted = c.rowcount or 0
        for sql in restore:
            c.execute(sql)
        if restore:
            # fresh statistics: with the old ones (an empty table) the planner scans every code to find the few that
            # cite a rule instead of using the partial index
            c.execute("ANALYZE codes_healthcode")
        return inserted


def _unconstrain(c, *, drop_indexes: bool) -> list[str]:
    """Drop what slows a bulk insert into codes_healthcode; return the statements that restore it."""
    restore: list[str] = []
    if _pg():
        # Codes written earlier in this transaction left deferred foreign-key checks pending, and a table with pending
        # trigger events cannot be altered: run them now, defer again afterwards (Django's constraints are all
        # DEFERRABLE INITIALLY DEFERRED).
        c.execute("SET CONSTRAINTS ALL IMMEDIATE")
        c.execute("SET CONSTRAINTS ALL DEFERRED")
        c.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                  "WHERE conrelid = 'codes_healthcode'::regclass AND contype = 'f'")
        for name, definition in c.fetchall():
            c.execute(f'ALTER TABLE codes_healthcode DROP CONSTRAINT "{name}"')
            restore += [f'ALTER TABLE codes_healthcode ADD CONSTRAINT "{name}" {definition} NOT VALID',
                        f'ALTER TABLE codes_healthcode VALIDATE CONSTRAINT "{name}"']
        if drop_indexes:
            c.execute("SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                      "LEFT JOIN pg_constraint con ON con.conindid = i.oid "
                      "WHERE x.indrelid = 'codes_healthcode'::regclass AND NOT x.indisprimary AND con.oid IS NULL")
            for name, definition in c.fetchall():
                c.execute(f'DROP INDEX "{name}"')
                restore.insert(0, definition)
    elif drop_indexes:
        c.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'codes_healthcode' "
                  "AND sql IS NOT NULL")
        for name, definition in c.fetchall():
            c.execute(f'DROP INDEX "{name}"')
            restore.append(definition)
    return restore


def _follow_moves() -> int:
    """Codes keep their person's grid code (the scope of code lists): one UPDATE … FROM for people who moved."""
    with connection.cursor() as c:
        c.execute("UPDATE codes_healthcode SET region_code = COALESCE(g.code, '') "
                  "FROM people_person p LEFT JOIN geo_region g ON g.id = p.grid_id "
                  "WHERE p.id = codes_healthcode.person_id AND codes_healthcode.region_code <> COALESCE(g.code, '')")
        return c.rowcount or 0


def _announce(changes: list[tuple[int, str | None, str, str]], *, actor, at: dt.datetime, full: bool) -> dict:
    """Audit colour changes per person and emit one ``codes.changed`` event (inside the transaction)."""
    from jingkong.access import audit
    from jingkong.core.events import emit

    moved = [(pid, old, new, region) for pid, old, new, region in changes
             if (old is None and new != R.GREEN) or (old is not None and old != new)]
    by_colour = Counter(new for _, _, new, _ in moved)
    if moved:
        for (old, new), items in _group(moved).items():
            audit.record_many(actor=actor, action="codes.colour", object_type="people.person", items=items,
                              detail={"from": old, "to": new, "full": full})
        regions = {r for *_, r in moved}
        common = _common_prefix(regions)
        emit(EVENT, subject_type="codes.healthcode", subject_id="", region_code=common, actor=actor, at=at,
             payload={"count": len(moved), "by_colour": dict(by_colour),
                      "person_ids": [pid for pid, *_ in moved[:EVENT_IDS]]})
    return {"colour_changes": len(moved), "by_colour": dict(by_colour)}


def _group(moved) -> dict[tuple, list[tuple[int, str]]]:
    out: dict[tuple, list] = {}
    for pid, old, new, region in moved:
        out.setdefault((old, new), []).append((pid, region))
    return out


def _common_prefix(codes: set[str]) -> str:
    import os

    return os.path.commonprefix(sorted(codes)) if codes else ""


# --- entry points ------------------------------------------------------------------------------------------------------


def recompute_people(person_ids, *, at: dt.datetime | None = None, actor=None, policies: F.Policies | None = None) -> dict:
    """Recompute the codes of ``person_ids`` (incremental, set-based); returns counts. Runs in the caller's
    transaction (or its own)."""
    at = at or clock.now()
    ids = sorted({int(p) for p in person_ids})
    if not ids:
        return {"people": 0, "written": 0, "colour_changes": 0, "by_colour": {}}
    policies = policies or F.Policies(at)
    with transaction.atomic():
        rows, stats = evaluate(at=at, people=ids, policies=policies)
        written = _write(rows, at)
        announced = _announce(written, actor=actor, at=at, full=False)
    return {"people": len(ids), "written": len(written), **announced}


def recompute_all(*, at: dt.datetime | None = None, progress: Callable[[int, int, str], None] | None = None,
                  actor=None, policies: F.Policies | None = None, follow_moves: bool = False) -> dict:
    """Recompute every person's code (see the module docstring). ``progress(done, total, message)`` is called after
    each step. Raises ``PolicyNotActive`` when no profile is in force for the district.

    ``follow_moves`` also re-reads every person's grid for the codes' region (a full join of people and codes);
    moves are otherwise followed as they happen (``people.person_updated``, ``people.imported``: see
    :func:`sync_population`)."""
    from jingkong.policy.selectors import PolicyNotActive

    at = at or clock.now()
    policies = policies or F.Policies(at)
    if policies.for_region("") is None and not policies.in_force():
        raise PolicyNotActive("no policy profile is in force for the district: health codes have no rules")
    steps = len(F.SOURCES) + 4 + (1 if follow_moves else 0)
    done = 0
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    def step(message: str) -> None:
        nonlocal done
        done += 1
        timings[message] = round(time.perf_counter() - t0, 3)
        if progress:
            progress(done, steps, message)

    with transaction.atomic():
        rows, stats = evaluate(at=at, people=None, policies=policies, progress=lambda name: step(f"facts: {name}"))
        step("evaluated")
        written = _write(rows, at)
        step("codes written")
        reset = _reset_unmatched(set(rows), at)
        step("codes cleared")
        inserted = _insert_missing(at)
        step("green codes added")
        moved = 0
        if follow_moves:
            moved = _follow_moves()
            step("moves followed")
        announced = _announce(written + reset, actor=actor, at=at, full=True)
    return {**stats, "written": len(written), "cleared": len(reset), "inserted_green": inserted,
            "region_moves": moved, "seconds": round(time.perf_counter() - t0, 3), "steps": timings, **announced}


def sync_population(*, at: dt.datetime | None = None) -> dict:
    """After a bulk change of the population (an import): a green code for every new person and every code in its
    person's current grid — two set-based statements, no evaluation (the people's facts did not change)."""
    at = at or clock.now()
    with transaction.atomic():
        inserted = _insert_missing(at)
        moved = _follow_moves()
    return {"inserted_green": inserted, "region_moves": moved}


def people_citing(rule_ids: Sequence[str], *, extra_where: str = "", params: Sequence = ()) -> list[int]:
    """People whose stored code cites one of ``rule_ids`` (the partial index on ``cites``)."""
    if not rule_ids:
        return []
    likes = " OR ".join(["cites LIKE %s"] * len(rule_ids))
    with connection.cursor() as c:
        c.execute(f"SELECT person_id FROM codes_healthcode WHERE NOT (cites = '') AND ({likes}) {extra_where}",
                  [*(f"% {r} %" for r in rule_ids), *params])
        return [r[0] for r in c.fetchall()]
