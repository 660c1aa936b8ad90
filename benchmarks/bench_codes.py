"""Benchmark of the full health-code recompute, on SQLite and PostgreSQL.

Target (issue 5): a full recompute for the whole population — 1 M people ≤ 10 s, 10 M ≤ 100 s.

Prints JSON, per database, measured in the same run on the same data:

* ``first_full_seconds``: ``jingkong.codes.engine.recompute_all`` on an empty ``codes_healthcode`` (every person gets
  a row: the facts, the evaluation of the people with facts, and one INSERT … SELECT of the green codes);
* ``steady_full_seconds``: the median of the following full recomputes with nothing changed (no row written);
* ``changed_full_seconds``: a full recompute after ~0.1 % of the population gained a fact and ~0.1 % lost one;
* ``incremental_pool_ms``: ``recompute_people`` of a 10-person pool (what the ``testing.pool_positive`` handler does
  inside the results transaction), median;
* ``baseline_insert_seconds``: a bare set-based write of the same number of rows — ``INSERT INTO`` a table with the
  same schema and indexes as ``codes_healthcode`` ``SELECT`` a constant green code for every person — and
  ``ratio_first`` = first_full / baseline; ``baseline_scan_seconds``: a bare ``SELECT COUNT(*)`` join of people and
  codes (what any full pass must read), ``ratio_steady`` = steady_full / baseline_scan.

The dataset: ``--population`` people in grids of ~330, and facts for ~0.6 % of them (cases, close/secondary contacts
and companions from the last days, pool positives controlled in place, lockdown and control zone residents, arrivals
from risk areas, fever referrals, key-industry workers overdue) plus a negative test state for 60 % (a screening round
happened) and recent samples of most key-industry workers. It is kept and reused (``<data-dir>/codes-<N>.sqlite3``,
PostgreSQL database ``jk_bench_codes_<N>``; ``--fresh`` rebuilds, ``--drop`` removes).

    .venv/bin/python benchmarks/bench_codes.py --quick                      # 100 k people, both databases
    .venv/bin/python benchmarks/bench_codes.py                              # 1 M
    .venv/bin/python benchmarks/bench_codes.py --population 10000000 --databases postgresql
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_coverage import _chunked, _drop_indexes, _table_writer  # noqa: E402 - same bulk helpers

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/test"
DATASET_VERSION = "1"
PERSONS_PER_GRID = 330
GRIDS_PER_COMMUNITY = 12
COMMUNITIES_PER_STREET = 20
NOW = dt.datetime(2022, 1, 10, 4, 0, tzinfo=dt.UTC)


def _spec(population: int, seed: int) -> str:
    return json.dumps({"version": DATASET_VERSION, "population": population, "seed": seed}, sort_keys=True)


def build_dataset(population: int, seed: int, log) -> dict:
    import numpy as np
    from django.db import connection, transaction

    from jingkong.codes.models import Arrival, FeverReferral
    from jingkong.geo.models import Region
    from jingkong.testing.models import Tube
    from jingkong.tracing.models import Case, Contact
    from jingkong.zones.models import RiskArea, Zone, ZoneResident

    rng = np.random.default_rng(seed)
    pg = connection.vendor == "postgresql"
    write = _table_writer(connection)
    stamp = connection.ops.adapt_datetimefield_value
    t0 = stamp(NOW - dt.timedelta(days=30))
    started = time.perf_counter()

    n_grids = max(4, round(population / PERSONS_PER_GRID))
    n_communities = max(1, -(-n_grids // GRIDS_PER_COMMUNITY))
    n_streets = max(1, -(-n_communities // COMMUNITIES_PER_STREET))
    with transaction.atomic():
        district = Region.objects.create(code="330206", name="北仑区", level="district", synthetic=True)
        streets = Region.objects.bulk_create(
            [Region(code=f"330206{s + 1:03d}", name=f"街道{s + 1}", level="street", parent=district, synthetic=True)
             for s in range(n_streets)])
        communities = Region.objects.bulk_create(
            [Region(code=f"{streets[c // COMMUNITIES_PER_STREET].code}{c % COMMUNITIES_PER_STREET + 1:03d}",
                    name=f"社区{c + 1}", level="community", parent=streets[c // COMMUNITIES_PER_STREET], synthetic=True)
             for c in range(n_communities)])
        grids = Region.objects.bulk_create(
            [Region(code=f"{communities[g // GRIDS_PER_COMMUNITY].code}{g % GRIDS_PER_COMMUNITY + 1:03d}",
                    name=f"网格{g + 1}", level="grid", parent=communities[g // GRIDS_PER_COMMUNITY], synthetic=True)
             for g in range(n_grids)])
    grid_ids = np.array([g.pk for g in grids], dtype=np.int64)
    grid_codes = np.array([g.code for g in grids])
    person_grid = np.sort(rng.integers(0, n_grids, population))
    industry = np.where(rng.random(population) < 0.005, "port", "")
    births = (np.datetime64("1930-01-01") + rng.integers(0, 33000, population).astype("timedelta64[D]")).astype(str)
    yes, no = (True, False) if pg else (1, 0)
    log(f"regions: {n_grids} grids")

    def person_rows(lo: int, hi: int):
        ids = range(lo + 1, hi + 1)
        return zip(ids, (f"{i:032x}" for i in ids), (f"330206********{i % 10000:04d}" for i in ids),
                   (f"居民{i}" for i in ids), ("M" if i % 2 else "F" for i in ids), births[lo:hi].tolist(),
                   ("" for _ in ids), grid_ids[person_grid[lo:hi]].tolist(), ("" for _ in ids), ("" for _ in ids),
                   ("" for _ in ids), (yes for _ in ids), (0 for _ in ids), industry[lo:hi].tolist(),
                   ("" for _ in ids), ("synthetic" for _ in ids), (no for _ in ids), (t0 for _ in ids),
                   (t0 for _ in ids), strict=True)

    with transaction.atomic():
        saved = _drop_indexes(connection, ["people_person"])
        write("people_person", ["id", "id_hash", "id_masked", "name", "sex", "birth_date", "phone", "grid_id", "unit",
                                "room", "registered_address", "is_registered_local", "vulnerable", "industry",
                                "employer", "source", "needs_review", "created_at", "updated_at"],
              _chunked(population, person_rows))
        with connection.cursor() as c:
            for sql in saved:
                c.execute(sql)
    log(f"people: {population} ({time.perf_counter() - started:.0f} s)")

    def code(pid: int) -> str:
        return str(grid_codes[person_grid[pid - 1]])

    def pick(share: float, taken: set) -> list[int]:
        k = max(1, int(population * share))
        out = [int(x) for x in rng.choice(population, size=k * 2, replace=False) + 1 if int(x) not in taken][:k]
        taken.update(out)
        return out

    taken: set[int] = set()
    now = NOW
    with transaction.atomic():
        cases = pick(0.0002, taken)
        Case.objects.bulk_create([Case(ref=f"B-{i}", person_id=p, classification="confirmed", region_code=code(p),
                                       first_positive_at=now - dt.timedelta(days=2), created_at=now, updated_at=now)
                                  for i, p in enumerate(cases)], batch_size=5000)
        contacts = []
        for tier, share in (("close", 0.002), ("secondary", 0.0005), ("companion", 0.0003)):
            for p in pick(share, taken):
                contacts.append(Contact(person_id=p, tier=tier, region_code=code(p), queue_region_code=code(p),
                                        last_exposure_at=now - dt.timedelta(days=int(rng.integers(1, 12))),
                                        first_identified_at=now, created_at=now, updated_at=now))
        Contact.objects.bulk_create(contacts, batch_size=5000)
        pool = pick(0.0005, taken)
        negatives = np.flatnonzero(rng.random(population) < 0.6) + 1
        negatives = negatives[~np.isin(negatives, np.array(sorted(taken), dtype=np.int64))]
        controlled = set(pool)
        state_people = np.sort(np.concatenate([negatives, np.array(pool, dtype=np.int64)]))
        ts = stamp(now - dt.timedelta(days=1))
        write("testing_personteststate", ["person_id", "region_code", "status", "controlled_in_place",
                                          "controlled_since", "last_sampled_at", "last_negative_sampled_at",
                                          "positive_sampled_at", "updated_at"],
              ((int(p), code(int(p)), "pool_positive" if int(p) in controlled else "negative",
                yes if int(p) in controlled else no, ts if int(p) in controlled else None, ts,
                None if int(p) in controlled else ts, None, ts) for p in state_people.tolist()))
        zones = []
        for type_, share in (("lockdown", 0.001), ("control", 0.002)):
            z = Zone.objects.create(ref=f"BZ-{type_}", name=type_, type=type_, status="approved", region_code="330206",
                                    proposed_at=now, approved_at=now, updated_at=now)
            zones += [ZoneResident(zone=z, person_id=p, zone_type=type_, region_code=code(p))
                      for p in pick(share, taken)]
        ZoneResident.objects.bulk_create(zones, batch_size=5000)
        for i, level in enumerate(("high", "medium")):
            RiskArea.objects.create(source="imported", area_code=f"42010{i}", name=f"risk {i}", level=level,
                                    published_at=now - dt.timedelta(days=20))
        Arrival.objects.bulk_create([Arrival(person_id=p, origin_code=f"42010{p % 3}001", source="declaration",
                                             arrived_at=now - dt.timedelta(days=int(p % 9) + 1), region_code=code(p),
                                             created_at=now) for p in pick(0.0005, taken)], batch_size=5000)
        FeverReferral.objects.bulk_create([FeverReferral(person_id=p, temperature=37.9, measured_at=now,
                                                         region_code=code(p)) for p in pick(0.0001, taken)],
                                          batch_size=5000)
        workers = np.flatnonzero(industry == "port") + 1
        sampled_workers = workers[rng.random(len(workers)) < 0.8]
        tube = Tube.objects.create(barcode="BENCH-IND", region_code="330206", capacity=1, opened_at=now)
        write("testing_sample", ["client_scan_id", "tube_id", "person_id", "region_code", "position", "device",
                                 "sampled_at", "recorded_at"],
              ((f"BI{p}", tube.pk, int(p), code(int(p)), 1, "", ts, ts) for p in sampled_workers.tolist()))
        with connection.cursor() as c:
            if pg:
                c.execute("SELECT setval(pg_get_serial_sequence('people_person', 'id'), "
                          "(SELECT MAX(id) FROM people_person))")
    with connection.cursor() as c:
        c.execute("VACUUM ANALYZE" if pg else "ANALYZE")
    with_facts = len(taken) + len(workers) - len(sampled_workers)
    log(f"facts: ~{with_facts} people ({time.perf_counter() - started:.0f} s)")
    return {"people": population, "grids": n_grids, "people_with_facts_built": with_facts,
            "test_states": int(len(state_people)), "pool_people": [int(p) for p in pool[:10]],
            "build_seconds": round(time.perf_counter() - started, 1)}


def ensure_dataset(population: int, seed: int, fresh: bool, log) -> dict:
    from django.core.management import call_command
    from django.db import connection

    spec = _spec(population, seed)
    present = False
    if not fresh:
        try:
            with connection.cursor() as c:
                c.execute("SELECT value FROM bench_codes_meta WHERE key = 'spec'")
                row = c.fetchone()
                present = bool(row and row[0] == spec)
        except Exception:  # noqa: BLE001 - nothing built yet
            present = False
    call_command("migrate", verbosity=0)
    if present:
        with connection.cursor() as c:
            c.execute("SELECT value FROM bench_codes_meta WHERE key = 'facts'")
            return json.loads(c.fetchone()[0]) | {"reused": True}
    with connection.cursor() as c:
        if connection.vendor == "postgresql":
            c.execute("SET session_replication_role = replica")
        else:
            c.execute("PRAGMA foreign_keys = OFF")
            c.execute("PRAGMA cache_size = -1048576")
    facts = build_dataset(population, seed, log)
    with connection.cursor() as c:
        if connection.vendor == "postgresql":
            c.execute("SET session_replication_role = origin")
        else:
            c.execute("PRAGMA foreign_keys = ON")
        c.execute("CREATE TABLE bench_codes_meta (key varchar(16) PRIMARY KEY, value text)")
        c.execute("INSERT INTO bench_codes_meta VALUES ('spec', %s), ('facts', %s)", [spec, json.dumps(facts)])
    return facts | {"reused": False}


def _setup_django(db_url: str) -> None:
    os.environ["DATABASE_URL"] = db_url
    os.environ.pop("JINGKONG_DEBUG", None)
    os.environ["JINGKONG_DEMO"] = "1"
    os.environ["DJANGO_SETTINGS_MODULE"] = "jingkong.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _baseline_table(connection) -> None:
    """``bench_codes_baseline``: same columns, primary key and indexes as codes_healthcode, empty."""
    with connection.cursor() as c:
        c.execute("DROP TABLE IF EXISTS bench_codes_baseline")
        if connection.vendor == "postgresql":
            c.execute("CREATE TABLE bench_codes_baseline (LIKE codes_healthcode INCLUDING ALL)")
            return
        c.execute("SELECT sql FROM sqlite_master WHERE tbl_name = 'codes_healthcode' AND sql IS NOT NULL "
                  "ORDER BY type DESC")  # the table first, then its indexes
        for (sql,) in c.fetchall():
            c.execute(sql.replace("codes_healthcode", "bench_codes_baseline")
                      .replace("codes_code_", "bench_codes_baseline_"))


def _baseline_insert(connection) -> float:
    _baseline_table(connection)
    pg = connection.vendor == "postgresql"
    empty, false = ("'[]'::jsonb", "FALSE") if pg else ("'[]'", "0")
    when = connection.ops.adapt_datetimefield_value(NOW)
    from django.db import transaction

    t = time.perf_counter()
    with transaction.atomic(), connection.cursor() as c:
        c.execute("INSERT INTO bench_codes_baseline (person_id, colour, rule_id, reasons, green_on, region_code, "
                  "profile_id, overridden, cites, computed_at, changed_at) "
                  f"SELECT p.id, 'green', '', {empty}, NULL, '', NULL, {false}, '', %s, %s FROM people_person p",
                  [when, when])
    return time.perf_counter() - t


def worker(args) -> dict:
    _setup_django(args.db_url)

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    facts = ensure_dataset(args.population, args.seed, args.fresh, log)
    if args.build_only:
        return facts | {"build_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    from django.db import connection

    from jingkong.codes import engine
    from jingkong.core import clock
    from jingkong.tracing.models import Contact

    with connection.cursor() as c:  # the engine needs a profile in force: install and activate once
        c.execute("SELECT COUNT(*) FROM policy_policyactivation")
        activated = c.fetchone()[0]
    if not activated:
        from jingkong.geo.models import Region
        from jingkong.policy.models import PolicyProfile
        from jingkong.policy.services import profile_activate, profile_install_builtin

        profile_install_builtin()
        profile_activate(profile=PolicyProfile.objects.filter(code="cn-8th-2021").order_by("-version").first(),
                         region=Region.objects.get(code="330206"), actor=None, reason="bench",
                         at=NOW - dt.timedelta(days=60))
    with connection.cursor() as c:
        c.execute("DELETE FROM codes_healthcode")
        c.execute("DELETE FROM core_domainevent WHERE type = 'codes.changed'")
        if connection.vendor == "postgresql":
            c.execute("VACUUM ANALYZE codes_healthcode")
    base_insert = _baseline_insert(connection)
    with clock.frozen(NOW):
        first_s, first = _timed(engine.recompute_all)
        log(f"first full recompute: {first_s:.2f} s {first['steps']}")
        steady = [_timed(engine.recompute_all) for _ in range(args.runs)]
        steady_s = statistics.median(s for s, _ in steady)
        log(f"steady full recompute: {steady_s:.2f} s {steady[-1][1]['steps']}")
        # ~0.1 % gain a fact (new close contacts), ~0.1 % lose one (contacts closed)
        k = max(1, args.population // 1000)
        with connection.cursor() as c:
            c.execute("SELECT id FROM people_person WHERE id NOT IN (SELECT person_id FROM tracing_contact) "
                      "ORDER BY id DESC LIMIT %s", [k])
            fresh = [r[0] for r in c.fetchall()]
        Contact.objects.bulk_create([Contact(person_id=p, tier="close", region_code="330206",
                                             queue_region_code="330206", last_exposure_at=NOW - dt.timedelta(days=1),
                                             first_identified_at=NOW, created_at=NOW, updated_at=NOW)
                                     for p in fresh], batch_size=5000)
        closing = list(Contact.objects.filter(status="identified").exclude(person_id__in=fresh)
                       .values_list("pk", flat=True)[:k])
        Contact.objects.filter(pk__in=closing).update(status="closed", closed_at=NOW)
        changed_s, changed = _timed(engine.recompute_all)
        log(f"changed full recompute: {changed_s:.2f} s, {changed['colour_changes']} colour changes")
        pool = facts["pool_people"]
        inc = [_timed(lambda: engine.recompute_people(pool))[0] for _ in range(max(5, args.runs))]
    # cleanup of the changes so a reused dataset starts the same
    Contact.objects.filter(person_id__in=fresh).delete()
    Contact.objects.filter(pk__in=closing).update(status="identified", closed_at=None)
    with connection.cursor() as c:
        t = time.perf_counter()
        c.execute("SELECT COUNT(*) FROM people_person p JOIN codes_healthcode h ON h.person_id = p.id")
        c.fetchone()
        scan_s = time.perf_counter() - t
        c.execute("SELECT colour, COUNT(*) FROM codes_healthcode GROUP BY colour")
        by_colour = dict(c.fetchall())
        c.execute("DROP TABLE IF EXISTS bench_codes_baseline")
    target = 10.0 if args.population <= 1_500_000 else 100.0 * args.population / 10_000_000
    return {
        "database": connection.vendor, "people": facts["people"], "dataset_reused": facts["reused"],
        "build_seconds": facts["build_seconds"], "people_with_facts": first["people_with_facts"],
        "facts_share_pct": round(100 * first["people_with_facts"] / facts["people"], 3),
        "codes_by_colour": by_colour,
        "first_full_seconds": round(first_s, 3), "steady_full_seconds": round(steady_s, 3),
        "changed_full_seconds": round(changed_s, 3), "changed_colour_changes": changed["colour_changes"],
        "incremental_pool_ms": round(1000 * statistics.median(inc), 1),
        "baseline_insert_seconds": round(base_insert, 3), "ratio_first": round(first_s / base_insert, 2),
        "baseline_scan_seconds": round(scan_s, 3), "ratio_steady": round(steady_s / scan_s, 2),
        "target_seconds": target, "meets_target": max(first_s, steady_s, changed_s) <= target,
        "steps_first": first["steps"], "steps_steady": steady[-1][1]["steps"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def _sqlite_url(args) -> str:
    folder = Path(args.data_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"codes-{args.population}.sqlite3"
    if path.exists():
        import sqlite3

        try:
            with sqlite3.connect(path) as db:
                ok = db.execute("SELECT value FROM bench_codes_meta WHERE key = 'spec'").fetchone() == \
                    (_spec(args.population, args.seed),)
        except sqlite3.Error:
            ok = False
        if args.fresh or not ok:
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
    return f"sqlite:///{path}"


def _pg_admin(args):
    base = args.database_url or os.environ.get("DATABASE_URL", "")
    base = base if base.startswith("postgres") else DEFAULT_PG
    parsed = urlparse(base)
    return parsed, urlunparse(parsed._replace(path="/postgres", scheme="postgresql"))


def _pg_url(args) -> str:
    import psycopg

    parsed, admin = _pg_admin(args)
    name = f"jk_bench_codes_{args.population}"
    spec = _spec(args.population, args.seed)
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    ok = False
    if exists and not args.fresh:
        try:
            with psycopg.connect(urlunparse(parsed._replace(path="/" + name, scheme="postgresql"))) as conn:
                ok = conn.execute("SELECT value FROM bench_codes_meta WHERE key = 'spec'").fetchone() == (spec,)
        except psycopg.Error:
            ok = False
    if not ok:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    return urlunparse(parsed._replace(path="/" + name))


def _drop(kind: str, url: str) -> None:
    if kind == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
        return
    import psycopg

    _, admin = _pg_admin(argparse.Namespace(database_url=url))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{urlparse(url).path.lstrip("/")}" WITH (FORCE)')


def _spawn(url: str, args, *extra: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--db-url", url, "--population", str(args.population),
           "--seed", str(args.seed), "--runs", str(args.runs), *extra]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None if args.verbose else subprocess.PIPE, text=True,
                         cwd=ROOT)
    if out.returncode != 0:
        return {"error": (out.stderr or "")[-3000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_database(kind: str, args) -> dict:
    url = _sqlite_url(args) if kind == "sqlite" else _pg_url(args)
    try:
        built = _spawn(url, args, "--build-only")
        if "error" in built:
            return {"database": kind, **built}
        result = _spawn(url, args)
        if "error" in result:
            return {"database": kind, **result}
        result["build_peak_rss_mb"] = built["build_peak_rss_mb"] if not built["reused"] else None
        return result
    finally:
        if args.drop:
            _drop(kind, url)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--population", type=int, default=1_000_000)
    p.add_argument("--quick", action="store_true", help="a smoke run: 100,000 people")
    p.add_argument("--databases", default="sqlite,postgresql")
    p.add_argument("--database-url", default="")
    p.add_argument("--data-dir", default=str(ROOT / "var" / "bench"))
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--runs", type=int, default=3, help="steady-state repetitions (the median is reported)")
    p.add_argument("--fresh", action="store_true")
    p.add_argument("--drop", action="store_true")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--db-url", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.population = 100_000
    if args.worker:
        print(json.dumps(worker(args), default=str))
        return
    kinds = [k.strip() for k in args.databases.split(",") if k.strip()]
    load = os.getloadavg()[0]
    results = [run_database(kind, args) for kind in kinds]
    print(json.dumps({"benchmark": "health codes, full recompute", "population": args.population,
                      "loadavg_1m_at_start": round(load, 2), "results": results}, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
