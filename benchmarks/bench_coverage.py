"""Benchmark of campaign coverage (应检尽检): the whole district by grid, on SQLite and PostgreSQL.

Target (issue 3): district-wide coverage by grid in ≤ 1 s at 1 M persons and ≤ 10 s at 10 M.

Prints JSON, per database, measured in the same run on the same data:

* ``coverage_cold_seconds``: ``jingkong.analytics.coverage.coverage_rows`` (district campaign, level=grid), the first
  call on a fresh connection (the database's own page cache is empty; the operating system's file cache is whatever
  the build or a previous run left — we do not drop it);
* ``coverage_warm_seconds``: the median of the following calls;
* ``summary_warm_seconds``: the campaign totals (one row) for the whole district;
* ``street_scope_warm_seconds``: a street officer's view (one street by grid: the persons-first plan), and
  ``grid_sweep_list_warm_seconds``: one grid's untested list grouped by building and household;
* ``baseline_*``: a bare ``SELECT grid_id, COUNT(*) FROM people_person GROUP BY grid_id`` (cold = first on a fresh
  connection, warm = median), and ``ratio_warm`` / ``ratio_cold`` = coverage / baseline;
* ``peak_rss_mb``: the measuring process (its own process, after the build; the PostgreSQL server's memory is not
  included); ``build_peak_rss_mb``: the process that built the dataset (null when it was reused).

The dataset: ``--population`` persons in grids of ~330 (numpy, written straight into the tables: executemany on
SQLite, COPY on PostgreSQL), one district campaign in which ~70 % are sampled in 10-in-1 tubes (1 % of them twice),
60 % of the tubes resulted (0.2 % positive pools with single-tube retests, 0.2 % invalid), ~1 % provisional persons
created during the round. Building a dataset is slow at 10 M (minutes), so it is kept and reused: a SQLite file
``<data-dir>/coverage-<N>.sqlite3`` and a PostgreSQL database ``jk_bench_coverage_<N>`` (``--fresh`` rebuilds,
``--drop`` removes them after the run).

    .venv/bin/python benchmarks/bench_coverage.py --quick                 # 100 k persons, both databases
    .venv/bin/python benchmarks/bench_coverage.py                         # 1 M
    .venv/bin/python benchmarks/bench_coverage.py --population 10000000 --databases sqlite
    .venv/bin/python benchmarks/bench_coverage.py --database-url postgres://postgres@127.0.0.1:5432/test

The worker runs without JINGKONG_DEBUG (DEBUG wraps cursors) and with JINGKONG_DEMO=1 (no secret needed).
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

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/test"
DATASET_VERSION = "4"
PERSONS_PER_GRID = 330
GRIDS_PER_COMMUNITY = 12
COMMUNITIES_PER_STREET = 20
PERSONS_PER_BUILDING = 30
T0 = dt.datetime(2022, 1, 10, 0, 0, tzinfo=dt.UTC)


# --- dataset ----------------------------------------------------------------------------------------------------------


def _spec(population: int, seed: int) -> str:
    return json.dumps({"version": DATASET_VERSION, "population": population, "seed": seed}, sort_keys=True)


def _dataset_present(cursor, spec: str) -> bool:
    try:
        cursor.execute("SELECT value FROM bench_coverage_meta WHERE key = 'spec'")
    except Exception:  # noqa: BLE001 - no such table: nothing built yet
        return False
    row = cursor.fetchone()
    return bool(row and row[0] == spec)


def _table_writer(connection):
    """``write(table, columns, rows)``: executemany (SQLite) / COPY (PostgreSQL), the target's secondary indexes
    dropped first and rebuilt by :func:`_rebuild_indexes`."""

    def write(table: str, columns: list[str], rows) -> None:
        cols = ", ".join(columns)
        with connection.cursor() as c:
            if connection.vendor == "postgresql":
                with c.cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join(["%s"] * len(columns))
                c.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)

    return write


def _drop_indexes(connection, tables: list[str]) -> list[str]:
    """Drop the droppable indexes of ``tables`` (primary keys and SQLite autoindexes stay); return their SQL."""
    saved = []
    with connection.cursor() as c:
        for table in tables:
            if connection.vendor == "postgresql":
                c.execute("SELECT i.relname, pg_get_indexdef(i.oid), con.conname FROM pg_index x "
                          "JOIN pg_class i ON i.oid = x.indexrelid "
                          "LEFT JOIN pg_constraint con ON con.conindid = i.oid AND con.conrelid = x.indrelid "
                          "WHERE x.indrelid = %s::regclass AND NOT x.indisprimary", [table])
                for name, sql, constraint in c.fetchall():
                    if constraint:  # a UNIQUE constraint: keep it (it is checked during the COPY anyway)
                        continue
                    c.execute(f'DROP INDEX "{name}"')
                    saved.append(sql)
            else:
                c.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s "
                          "AND sql IS NOT NULL", [table])
                for name, sql in c.fetchall():
                    c.execute(f'DROP INDEX "{name}"')
                    saved.append(sql)
    return saved


def _chunked(n: int, make, step: int = 250_000):
    """Rows ``0 … n-1`` produced ``step`` at a time by ``make(lo, hi)`` (bounded memory at 10 M rows)."""
    for lo in range(0, n, step):
        yield from make(lo, min(n, lo + step))


def build_dataset(population: int, seed: int, log) -> dict:
    """Write the synthetic district, population and campaign into the (migrated, empty) database."""
    import numpy as np
    from django.db import connection, transaction

    from jingkong.geo.models import Region
    from jingkong.testing.models import Campaign, Lab

    rng = np.random.default_rng(seed)
    vendor = connection.vendor
    write = _table_writer(connection)
    stamp = connection.ops.adapt_datetimefield_value
    t0 = stamp(T0)
    started = time.perf_counter()

    # Regions: district → streets → communities (20 each) → grids (12 each), ~330 persons per grid.
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
    log(f"regions: {n_streets} streets, {n_communities} communities, {n_grids} grids")

    # Persons in grid order (as a registry load writes them), grid sizes varying ±50 %.
    weights = rng.integers(PERSONS_PER_GRID // 2, PERSONS_PER_GRID * 3 // 2, n_grids).astype(np.float64)
    sizes = np.floor(weights * population / weights.sum()).astype(np.int64)
    sizes[: population - int(sizes.sum())] += 1  # the remainder, one each
    person_grid_idx = np.repeat(np.arange(n_grids), sizes)
    n = len(person_grid_idx)
    # Buildings: ~30 residents each, inside the grid.
    b_per_grid = np.maximum(1, sizes // PERSONS_PER_BUILDING)
    b_grid_idx = np.repeat(np.arange(n_grids), b_per_grid)
    n_buildings = len(b_grid_idx)
    b_first = np.concatenate([[0], np.cumsum(b_per_grid)[:-1]])
    p_first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank_in_grid = np.arange(n) - p_first[person_grid_idx]
    person_building = b_first[person_grid_idx] + np.minimum(rank_in_grid // PERSONS_PER_BUILDING,
                                                            b_per_grid[person_grid_idx] - 1) + 1  # 1-based ids
    # ~1 % provisional persons (created at a scan during the round): appended at the end, living anywhere.
    n_provisional = n // 100
    prov_grid_idx = rng.integers(0, n_grids, n_provisional)
    person_grid_idx = np.concatenate([person_grid_idx, prov_grid_idx])
    person_building = np.concatenate([person_building, np.zeros(n_provisional, dtype=np.int64)])
    n_total = n + n_provisional
    # ~2 % moved since the load: same id, another grid, no building.
    moved = rng.random(n_total) < 0.02
    person_grid_idx = np.where(moved, rng.integers(0, n_grids, n_total), person_grid_idx)
    person_building = np.where(moved, 0, person_building)
    industry_pick = rng.random(n_total)
    industry = np.where(industry_pick < 0.03, "port", np.where(industry_pick < 0.04, "cold_chain", ""))
    vulnerable = ((rng.random(n_total) < 0.15) * 1 + (rng.random(n_total) < 0.02) * 16).astype(np.int64)
    births = (np.datetime64("1930-01-01") + rng.integers(0, 33000, n_total).astype("timedelta64[D]")).astype(str)

    with transaction.atomic():
        saved = _drop_indexes(connection, ["geo_building", "people_person"])
        bx = rng.random(n_buildings)
        write("geo_building", ["id", "code", "grid_id", "address", "lon", "lat", "units", "floors", "household_count"],
              zip(range(1, n_buildings + 1), (f"B{i:09d}" for i in range(1, n_buildings + 1)),
                  grid_ids[b_grid_idx].tolist(), (f"{i}号楼" for i in range(1, n_buildings + 1)),
                  (121.7 + 0.2 * bx).tolist(), (29.8 + 0.2 * bx).tolist(), [2] * n_buildings, [6] * n_buildings,
                  [10] * n_buildings, strict=True))
        log(f"buildings: {n_buildings}")
        yes = True if vendor == "postgresql" else 1
        no = False if vendor == "postgresql" else 0

        def person_rows(lo: int, hi: int):  # 0-based slice of persons; ids are lo + 1 ... hi
            ids = range(lo + 1, hi + 1)
            return zip(
                ids, (f"{i:032x}" for i in ids), (f"330206********{i % 10000:04d}" for i in ids),
                (f"居民{i}" for i in ids), ("M" if i % 2 else "F" for i in ids), births[lo:hi].tolist(),
                (f"138{i % 10**8:08d}" for i in ids), (b or None for b in person_building[lo:hi].tolist()),
                grid_ids[person_grid_idx[lo:hi]].tolist(), ("1" for _ in ids), (f"{101 + i % 30}" for i in ids),
                ("" for _ in ids), (yes for _ in ids), vulnerable[lo:hi].tolist(), industry[lo:hi].tolist(),
                ("" for _ in ids), ("provisional" if i > n else "synthetic" for i in ids),
                (yes if i > n else no for i in ids), (t0 for _ in ids), (t0 for _ in ids), strict=True)

        rows = _chunked(n_total, person_rows)
        write("people_person", ["id", "id_hash", "id_masked", "name", "sex", "birth_date", "phone", "building_id",
                                "grid_id", "unit", "room", "registered_address", "is_registered_local", "vulnerable",
                                "industry", "employer", "source", "needs_review", "created_at", "updated_at"], rows)
        log(f"persons: {n_total} written ({time.perf_counter() - started:.0f} s)")
        with connection.cursor() as c:
            for sql in saved:
                c.execute(sql)
        log(f"person indexes rebuilt ({time.perf_counter() - started:.0f} s)")

    # The campaign: 70 % of the registered persons and every provisional person sampled, in person order
    # (queues form by building), 10 per tube; 1 % of the sampled come a second time (a new tube, at the end).
    campaign = Campaign.objects.create(code="BENCH-R1", name="bench round", region=district, region_code="330206",
                                       starts_at=T0, deadline=T0 + dt.timedelta(days=1), status="running",
                                       created_at=T0, updated_at=T0)
    lab = Lab.objects.create(code="LAB-BENCH", name="bench lab", region=district, region_code="330206")
    sampled_mask = np.concatenate([rng.random(n) < 0.70, np.ones(n_provisional, dtype=bool)])
    sampled = np.flatnonzero(sampled_mask) + 1  # person ids
    again = sampled[rng.random(len(sampled)) < 0.01]
    sample_person = np.concatenate([sampled, again])
    n_samples = len(sample_person)
    n_tubes = -(-n_samples // 10)
    sample_tube = np.arange(n_samples) // 10 + 1
    member_count = np.bincount(sample_tube, minlength=n_tubes + 1)[1:]
    # 60 % of the tubes resulted: 99.6 % negative, 0.2 % positive, 0.2 % invalid.
    resulted = rng.random(n_tubes) < 0.60
    pick = rng.random(n_tubes)
    outcome = np.where(~resulted, "", np.where(pick < 0.002, "positive", np.where(pick < 0.004, "invalid", "negative")))
    outcome[(outcome == "positive") & (member_count == 1)] = "negative"  # keep positives pooled
    first_member_grid = grid_codes[person_grid_idx[sample_person[np.arange(0, n_samples, 10)] - 1]]
    with transaction.atomic():
        saved = _drop_indexes(connection, ["testing_tube", "testing_sample", "testing_tuberesult"])
        write("testing_tube", ["id", "barcode", "campaign_id", "region_code", "kind", "capacity", "member_count",
                               "status", "opened_at", "sealed_at", "lab_id", "received_at", "outcome", "resulted_at"],
              zip(range(1, n_tubes + 1), (f"T{i:010d}" for i in range(1, n_tubes + 1)), [campaign.pk] * n_tubes,
                  first_member_grid.tolist(), ["routine"] * n_tubes, [10] * n_tubes, member_count.tolist(),
                  np.where(resulted, "resulted", "received").tolist(), [t0] * n_tubes, [t0] * n_tubes,
                  [lab.pk] * n_tubes, [t0] * n_tubes, outcome.tolist(),
                  [t0 if r else None for r in resulted.tolist()], strict=True))
        res_ids = np.flatnonzero(resulted) + 1
        write("testing_tuberesult", ["tube_id", "lab_id", "outcome", "ct_values", "instrument", "operator",
                                     "tested_at", "recorded_at", "source", "source_ref"],
              ((int(t), lab.pk, outcome[t - 1], "{}", "", "", t0, t0, "csv", "") for t in res_ids))
        write("testing_sample", ["id", "client_scan_id", "campaign_id", "tube_id", "person_id", "region_code",
                                 "position", "device", "sampled_at", "recorded_at"],
              _chunked(n_samples, lambda lo, hi: zip(
                  range(lo + 1, hi + 1), (f"S{i:011d}" for i in range(lo + 1, hi + 1)), [campaign.pk] * (hi - lo),
                  sample_tube[lo:hi].tolist(), sample_person[lo:hi].tolist(),
                  grid_codes[person_grid_idx[sample_person[lo:hi] - 1]].tolist(),
                  (np.arange(lo, hi) % 10 + 1).tolist(), [""] * (hi - lo), [t0] * (hi - lo), [t0] * (hi - lo),
                  strict=True)))
        log(f"tubes: {n_tubes}, samples: {n_samples} ({time.perf_counter() - started:.0f} s)")
        with connection.cursor() as c:
            for sql in saved:
                c.execute(sql)
    # Positive pools: each member gets a retest task; half are retested negative in single tubes, 2 % positive.
    pos_tubes = set((np.flatnonzero(outcome == "positive") + 1).tolist())
    inv_tubes = set((np.flatnonzero(outcome == "invalid") + 1).tolist())
    tasks, retest_tubes, retest_samples = [], [], []
    next_tube, next_sample = n_tubes + 1, n_samples + 1
    special = np.flatnonzero(np.isin(sample_tube, np.array(sorted(pos_tubes | inv_tubes), dtype=np.int64)))
    for sid in special.tolist():
        tube = int(sample_tube[sid])
        person = int(sample_person[sid])
        grid_code = str(grid_codes[person_grid_idx[person - 1]])
        task_id = len(tasks) + 1
        if tube in inv_tubes:
            tasks.append((task_id, person, campaign.pk, tube, "invalid_tube", "open", grid_code, t0, None, None))
            continue
        r = rng.random()
        if r < 0.5:
            tasks.append((task_id, person, campaign.pk, tube, "pool_positive", "open", grid_code, t0, None, None))
            continue
        result = "positive" if r > 0.98 else "negative"
        retest_tubes.append((next_tube, f"R{next_tube:010d}", campaign.pk, grid_code, "retest", 1, 1,
                             "resulted", t0, t0, lab.pk, t0, result, t0))
        retest_samples.append((next_sample, f"S{next_sample:011d}", campaign.pk, next_tube, person, grid_code, 1,
                               "", t0, t0))
        tasks.append((task_id, person, campaign.pk, tube, "pool_positive", result, grid_code, t0, next_sample, t0))
        next_tube += 1
        next_sample += 1
    with transaction.atomic():
        write("testing_tube", ["id", "barcode", "campaign_id", "region_code", "kind", "capacity", "member_count",
                               "status", "opened_at", "sealed_at", "lab_id", "received_at", "outcome", "resulted_at"],
              retest_tubes)
        write("testing_sample", ["id", "client_scan_id", "campaign_id", "tube_id", "person_id", "region_code",
                                 "position", "device", "sampled_at", "recorded_at"], retest_samples)
        write("testing_retesttask", ["id", "person_id", "campaign_id", "source_tube_id", "reason", "status",
                                     "region_code", "created_at", "sample_id", "resolved_at"], tasks)
        with connection.cursor() as c:
            if vendor == "postgresql":
                for table in ("testing_tube", "testing_sample", "testing_retesttask"):
                    c.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")
                for table in ("geo_building", "people_person"):
                    c.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")
    with connection.cursor() as c:  # statistics (and, on PostgreSQL, the visibility map) as autovacuum would leave them
        c.execute("VACUUM ANALYZE" if vendor == "postgresql" else "ANALYZE")
    log(f"retests: {len(tasks)} tasks, {len(retest_samples)} retest samples ({time.perf_counter() - started:.0f} s)")
    return {"persons": n_total, "provisional": n_provisional, "grids": n_grids, "buildings": n_buildings,
            "samples": n_samples + len(retest_samples), "tubes": n_tubes + len(retest_tubes),
            "sampled_persons": int(len(sampled)), "campaign_id": campaign.pk,
            "build_seconds": round(time.perf_counter() - started, 1)}


def ensure_dataset(population: int, seed: int, fresh: bool, log) -> dict:
    from django.core.management import call_command
    from django.db import connection

    spec = _spec(population, seed)
    with connection.cursor() as c:
        present = not fresh and _dataset_present(c, spec)
    call_command("migrate", verbosity=0)  # a reused dataset gets indexes added since it was built
    if present:
        with connection.cursor() as c:
            c.execute("SELECT value FROM bench_coverage_meta WHERE key = 'facts'")
            facts = json.loads(c.fetchone()[0])
        return facts | {"reused": True}
    if connection.vendor == "postgresql":
        with connection.cursor() as c:
            c.execute("SET session_replication_role = replica")  # no FK triggers during the bulk build
    else:
        with connection.cursor() as c:
            c.execute("PRAGMA foreign_keys = OFF")
            c.execute("PRAGMA cache_size = -1048576")
    facts = build_dataset(population, seed, log)
    with connection.cursor() as c:
        if connection.vendor == "postgresql":
            c.execute("SET session_replication_role = origin")
        else:
            c.execute("PRAGMA foreign_keys = ON")
            c.execute("PRAGMA cache_size = -2000")
        c.execute("CREATE TABLE bench_coverage_meta (key varchar(16) PRIMARY KEY, value text)")
        c.execute("INSERT INTO bench_coverage_meta VALUES ('spec', %s), ('facts', %s)", [spec, json.dumps(facts)])
    return facts | {"reused": False}


# --- measuring --------------------------------------------------------------------------------------------------------


def _setup_django(db_url: str) -> None:
    os.environ["DATABASE_URL"] = db_url
    os.environ.pop("JINGKONG_DEBUG", None)  # DEBUG wraps cursors: not what production runs
    os.environ["JINGKONG_DEMO"] = "1"  # no secret needed
    os.environ["DJANGO_SETTINGS_MODULE"] = "jingkong.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _fresh_connection():
    from django.db import connection

    connection.close()
    connection.ensure_connection()
    return connection


def _time(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def worker(args) -> dict:
    _setup_django(args.db_url)

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    facts = ensure_dataset(args.population, args.seed, args.fresh, log)
    if args.build_only:
        return facts | {"build_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    from jingkong.access.guard import EVERYTHING
    from jingkong.analytics import coverage
    from jingkong.testing.models import Campaign

    campaign = Campaign.objects.get(pk=facts["campaign_id"])

    def baseline():
        with _fresh_connection().cursor() as c:
            c.execute("SELECT grid_id, COUNT(*) FROM people_person GROUP BY grid_id")
            return c.fetchall()

    def by_grid():
        return coverage.coverage_rows(campaign, scope=EVERYTHING, level="grid")

    def summary():
        return coverage.coverage_summary(campaign, scope=EVERYTHING)

    runs = args.runs
    _fresh_connection()
    base_cold, base_rows = _time(baseline)
    base_warm = statistics.median(_time(baseline)[0] for _ in range(runs))
    _fresh_connection()
    cov_cold, rows = _time(by_grid)
    cov_warm = statistics.median(_time(by_grid)[0] for _ in range(runs))
    sum_warm = statistics.median(_time(summary)[0] for _ in range(runs))
    street_warm = statistics.median(_time(lambda: coverage.coverage_rows(campaign, scope=EVERYTHING,
                                                                         level="street"))[0] for _ in range(runs))
    # A street officer's view (the persons-first plan: the street's persons, each one's swabs probed) and the sweep
    # list of one grid (the persons not yet sampled, grouped for printing): the everyday reads below the district.
    from jingkong.access.guard import Scope
    from jingkong.testing import selectors_coverage

    street = min(r["code"] for r in rows)[:9]
    street_scope_warm = statistics.median(_time(lambda: coverage.coverage_rows(campaign, scope=Scope(street),
                                                                               level="grid"))[0] for _ in range(runs))
    grid_area = coverage.resolve_area(campaign, scope=EVERYTHING, region=min(r["code"] for r in rows))

    def sweep_list():
        return selectors_coverage.group_by_building(coverage.untested_persons(grid_area), show_phone=False)

    sweep_warm = statistics.median(_time(sweep_list)[0] for _ in range(runs))
    total = coverage.coverage_summary(campaign, scope=EVERYTHING)
    assert sum(r["target"] for r in rows) == total["target"] == facts["persons"], (total, facts)
    assert total["sampled"] == facts["sampled_persons"], (total, facts)
    from django.db import connection

    return {
        "database": connection.vendor,
        "persons": facts["persons"], "grids": facts["grids"], "samples": facts["samples"], "tubes": facts["tubes"],
        "dataset_reused": facts["reused"], "build_seconds": facts["build_seconds"],
        "rows": len(rows), "baseline_rows": len(base_rows),
        "coverage_cold_seconds": round(cov_cold, 3), "coverage_warm_seconds": round(cov_warm, 3),
        "street_level_warm_seconds": round(street_warm, 3), "summary_warm_seconds": round(sum_warm, 3),
        "street_scope_warm_seconds": round(street_scope_warm, 3), "grid_sweep_list_warm_seconds": round(sweep_warm, 3),
        "baseline_cold_seconds": round(base_cold, 3), "baseline_warm_seconds": round(base_warm, 3),
        "ratio_cold": round(cov_cold / base_cold, 2), "ratio_warm": round(cov_warm / base_warm, 2),
        "target_seconds": 1.0 if facts["persons"] <= 1_500_000 else 10.0,
        "totals": {k: total[k] for k in ("target", "sampled", "not_sampled", "pending", "negative", "pool_positive",
                                         "resample", "positive", "coverage_pct")},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


# --- orchestration ----------------------------------------------------------------------------------------------------


def _sqlite_url(args) -> str:
    folder = Path(args.data_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"coverage-{args.population}.sqlite3"
    spec = _spec(args.population, args.seed)
    if path.exists():
        import sqlite3

        try:
            with sqlite3.connect(path) as db:
                ok = db.execute("SELECT value FROM bench_coverage_meta WHERE key = 'spec'").fetchone() == (spec,)
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
    name = f"jk_bench_coverage_{args.population}"
    url = urlunparse(parsed._replace(path="/" + name))
    spec = _spec(args.population, args.seed)
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    ok = False
    if exists and not args.fresh:
        try:
            with psycopg.connect(urlunparse(parsed._replace(path="/" + name, scheme="postgresql"))) as conn:
                ok = conn.execute("SELECT value FROM bench_coverage_meta WHERE key = 'spec'").fetchone() == (spec,)
        except psycopg.Error:
            ok = False
    if not ok:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    return url


def _drop(kind: str, url: str) -> None:
    if kind == "sqlite":
        path = url.removeprefix("sqlite:///")
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)
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
    """Build (or find) the dataset in one process, measure in a fresh one (so its peak RSS is the queries')."""
    url = _sqlite_url(args) if kind == "sqlite" else _pg_url(args)
    try:
        built = _spawn(url, args, "--build-only")
        if "error" in built:
            return {"database": kind, **built}
        result = _spawn(url, args)
        if "error" in result:
            return {"database": kind, **result}
        result["dataset_reused"] = built["reused"]
        result["build_peak_rss_mb"] = built["build_peak_rss_mb"] if not built["reused"] else None
        result["dataset"] = url if kind == "sqlite" else url.rsplit("/", 1)[-1]
        return result
    finally:
        if args.drop:
            _drop(kind, url)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--population", type=int, default=1_000_000, help="registered persons (default 1,000,000)")
    p.add_argument("--quick", action="store_true", help="a smoke run: 100,000 persons")
    p.add_argument("--databases", default="sqlite,postgresql")
    p.add_argument("--database-url", default="", help="PostgreSQL server to use (a database per population is "
                                                      "created on it); default DATABASE_URL or " + DEFAULT_PG)
    p.add_argument("--data-dir", default=str(ROOT / "var" / "bench"), help="where the SQLite datasets are kept")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--runs", type=int, default=5, help="warm repetitions (the median is reported)")
    p.add_argument("--fresh", action="store_true", help="rebuild the datasets even if present")
    p.add_argument("--drop", action="store_true", help="delete the datasets after the run")
    p.add_argument("--verbose", action="store_true", help="show the build's progress")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--db-url", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.population = 100_000
    if args.worker:
        print(json.dumps(worker(args)))
        return
    kinds = [kind.strip() for kind in args.databases.split(",") if kind.strip()]
    load = os.getloadavg()[0]
    results = [run_database(kind, args) for kind in kinds]
    print(json.dumps({"benchmark": "campaign coverage, whole district by grid", "population": args.population,
                      "loadavg_1m_at_start": round(load, 2), "results": results}, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
