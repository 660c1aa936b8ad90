"""Benchmark of applying lab results with pool deconvolution (jingkong.testing.results.results_apply).

Per database (SQLite and PostgreSQL, each a scratch database), on the same generated round:

* setup (not timed): a base map of 100 grids, ``--tubes`` × ``--pool`` persons, as many 10-in-1 tubes filled with
  one swab each (raw bulk inserts), and the result rows (99.4 % negative, 0.3 % positive pools, 0.3 % invalid);
* (a) ``apply``: ``results_apply`` of all tube results — validation, conflict checks, TubeResult rows, tube updates,
  deconvolution of every swab (person states upserted, retest/resample tasks created), events and audit, in
  chunks of 20,000 tubes, each one transaction;
* (a') ``reapply``: the same rows again (every tube unchanged: the idempotent path);
* (b) ``raw``: a raw write of the same rows into bare tables (no key, no index): the tube results and one state row
  per person (executemany on SQLite, COPY on PostgreSQL) — the floor of writing what the apply writes;
* ``ratio_to_raw`` = raw seconds / apply seconds (1.0 would be "as fast as the bare insert");
* with ``--second-round``: a second round for the same people a day later (every person already has a state: the
  path of every round after the first), timed the same way.

    .venv/bin/python benchmarks/bench_results.py            # 100 k tubes, 1 M swabs, both databases (minutes)
    .venv/bin/python benchmarks/bench_results.py --quick    # 5 k tubes, 50 k swabs (smoke run)
    .venv/bin/python benchmarks/bench_results.py --second-round

Prints JSON. PostgreSQL: a database ``jk_bench_results_<pid>`` on the server of DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/test), dropped afterwards. Workers run without JINGKONG_DEBUG.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/test"
T0 = dt.datetime(2022, 1, 10, 0, 0, tzinfo=dt.UTC)


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _setup(tubes: int, pool: int, seed: int = 11):
    """Base map, persons, a lab, filled tubes (raw bulk inserts); returns (lab, result rows)."""
    from django.db import connection, transaction

    from jingkong.core import bulk
    from jingkong.geo.models import Region
    from jingkong.testing.models import Campaign, Lab
    rnd = random.Random(seed)
    with transaction.atomic():
        d = Region.objects.create(code="330206", name="北仑区", level="district")
        grids = []
        for s in range(4):
            street = Region.objects.create(code=f"330206{s + 1:03d}", name=f"街道{s}", level="street", parent=d)
            for c in range(5):
                com = Region.objects.create(code=f"{street.code}{c + 1:03d}", name=f"社区{c}", level="community",
                                            parent=street)
                for g in range(5):
                    grids.append(Region(code=f"{com.code}{g + 1:03d}", name=f"网格{g}", level="grid", parent=com))
        Region.objects.bulk_create(grids)
        grid_rows = list(Region.objects.filter(level="grid").values_list("id", "code"))
        lab = Lab.objects.create(code="LAB1", name="实验室", region=d, region_code=d.code, capacity_per_hour=5000)
        campaign = Campaign.objects.create(code="R1", name="第一轮", region=d, region_code=d.code, starts_at=T0,
                                           deadline=T0 + dt.timedelta(days=1), status="running", created_at=T0,
                                           updated_at=T0)
    n = tubes * pool
    db = bulk.db_datetime
    now = db(T0)
    born = "1980-01-01" if connection.vendor == "sqlite" else dt.date(1980, 1, 1)
    persons = [(f"{i:032x}", "3302**********0000", f"居民{i}", "M", born, "", grid_rows[i // 1000 % len(grid_rows)][0],
                "", "", "", bulk.db_bool(True), 0, "", "", "import", bulk.db_bool(False), now, now) for i in range(n)]
    with transaction.atomic():
        bulk.bulk_insert("people_person", ["id_hash", "id_masked", "name", "sex", "birth_date", "phone", "grid_id",
                                           "unit", "room", "registered_address", "is_registered_local", "vulnerable",
                                           "industry", "employer", "source", "needs_review", "created_at",
                                           "updated_at"], persons)
    del persons
    with connection.cursor() as c:
        c.execute("SELECT id, grid_id FROM people_person ORDER BY id")
        person_rows = c.fetchall()
    grid_code = dict(grid_rows)
    rows = fill_round(campaign, person_rows, grid_code, tubes, pool, prefix="T", t0=T0, rnd=rnd)
    return lab, rows, n, (campaign, person_rows, grid_code)


def fill_round(campaign, person_rows, grid_code, tubes: int, pool: int, *, prefix: str, t0: dt.datetime, rnd):
    """Tubes ``<prefix><n>`` with one swab of each person (raw bulk inserts); returns the result rows for them."""
    from django.db import connection, transaction

    from jingkong.core import bulk
    from jingkong.testing.results import ResultRow

    db = bulk.db_datetime
    opened, sealed = db(t0), db(t0 + dt.timedelta(minutes=10))
    tube_rows = [(f"{prefix}{i:08d}", campaign.pk, grid_code[person_rows[i * pool][1]], "routine", pool, pool,
                  "sealed", opened, sealed, "") for i in range(tubes)]
    with transaction.atomic():
        bulk.bulk_insert("testing_tube", ["barcode", "campaign_id", "region_code", "kind", "capacity", "member_count",
                                          "status", "opened_at", "sealed_at", "outcome"], tube_rows)
    with connection.cursor() as c:
        c.execute("SELECT id FROM testing_tube WHERE barcode LIKE %s ORDER BY barcode", [prefix + "%"])
        tube_ids = [r[0] for r in c.fetchall()]
    offsets = [db(t0 + dt.timedelta(seconds=k * 20)) for k in range(pool)]
    samples = []
    for t in range(tubes):
        for k in range(pool):
            pid, gid = person_rows[t * pool + k]
            samples.append((f"{prefix}{t}-{k}", campaign.pk, tube_ids[t], pid, grid_code[gid], k + 1, "", offsets[k],
                            offsets[k]))
    with transaction.atomic():
        bulk.bulk_insert("testing_sample", ["client_scan_id", "campaign_id", "tube_id", "person_id", "region_code",
                                            "position", "device", "sampled_at", "recorded_at"], samples)
    del samples
    rows = []
    tested = t0 + dt.timedelta(hours=5)
    for i in range(tubes):
        x = rnd.random()
        outcome = "positive" if x < 0.003 else ("invalid" if x < 0.006 else "negative")
        ct = {"ORF1ab": round(rnd.uniform(22, 36), 1), "N": round(rnd.uniform(22, 36), 1)} if outcome == "positive" \
            else {}
        rows.append(ResultRow(i + 2, f"{prefix}{i:08d}", outcome, ct, "ABI7500-1", "检测员", tested))
    return rows


def _raw(rows, n: int) -> float:
    """The same rows written raw into bare tables: tube results + one person-state row per swab."""
    from django.db import connection, transaction

    from jingkong.core import bulk

    vendor = connection.vendor
    with connection.cursor() as c:
        c.execute("CREATE TABLE bench_results AS SELECT tube_id, lab_id, outcome, ct_values, instrument, operator, "
                  "tested_at, recorded_at, source, source_ref FROM testing_tuberesult WHERE 1 = 0")
        c.execute("CREATE TABLE bench_states AS SELECT person_id, region_code, status, controlled_in_place, "
                  "controlled_since, last_sampled_at, last_negative_sampled_at, positive_sampled_at, updated_at "
                  "FROM testing_personteststate WHERE 1 = 0")
    db = bulk.db_datetime
    now = db(T0 + dt.timedelta(hours=6))
    result_rows = [(i, 1, r.outcome, json.dumps(r.ct_values), r.instrument, r.operator, db(r.tested_at), now, "csv",
                    f"f#{r.row}") for i, r in enumerate(rows)]
    state_rows = [(i, "330206001001001", "negative", bulk.db_bool(False), None, now, now, None, now) for i in range(n)]

    def write():
        with transaction.atomic():
            bulk.bulk_insert("bench_results", ["tube_id", "lab_id", "outcome", "ct_values", "instrument", "operator",
                                               "tested_at", "recorded_at", "source", "source_ref"], result_rows)
            bulk.bulk_insert("bench_states", ["person_id", "region_code", "status", "controlled_in_place",
                                              "controlled_since", "last_sampled_at", "last_negative_sampled_at",
                                              "positive_sampled_at", "updated_at"], state_rows)

    seconds, _ = _timed(write)
    del vendor
    return seconds


def worker(args) -> dict:
    os.environ["DATABASE_URL"] = args.db_url
    os.environ.pop("JINGKONG_DEBUG", None)
    os.environ["JINGKONG_DEMO"] = "1"
    os.environ["DJANGO_SETTINGS_MODULE"] = "jingkong.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from jingkong.core import clock
    from jingkong.testing.models import PersonTestState, RetestTask
    from jingkong.testing.results import results_apply

    call_command("migrate", verbosity=0)
    setup_s, (lab, rows, n, world) = _timed(lambda: _setup(args.tubes, args.pool))
    if connection.vendor == "postgresql":
        with connection.cursor() as c:  # what autovacuum does after a bulk load (the planner needs the row counts)
            c.execute("ANALYZE")
    with clock.frozen(T0 + dt.timedelta(hours=6)):
        cpu = time.process_time()
        apply_s, report = _timed(lambda: results_apply(actor=None, lab=lab, rows=rows, source="csv",
                                                       source_ref="bench.csv"))
        assert report.accepted == len(rows) and not report.errors, report.summary()
        apply_cpu = time.process_time() - cpu
        reapply_s, again = _timed(lambda: results_apply(actor=None, lab=lab, rows=rows, source="csv",
                                                        source_ref="bench.csv"))
        assert again.unchanged == len(rows), again.summary()
    states = PersonTestState.objects.count()
    tasks = RetestTask.objects.count()
    assert states == n, (states, n)
    second = {}
    if args.second_round:
        # Round 2 a day later: every person already has a state (mostly negative; some controlled, some to resample).
        round2 = fill_round(*world, args.tubes, args.pool, prefix="U", t0=T0 + dt.timedelta(days=1),
                            rnd=random.Random(12))
        with clock.frozen(T0 + dt.timedelta(days=1, hours=6)):
            second_s, report2 = _timed(lambda: results_apply(actor=None, lab=lab, rows=round2, source="csv",
                                                             source_ref="bench-2.csv"))
        assert report2.accepted == len(round2) and not report2.errors, report2.summary()
        second = {"second_round_apply_seconds": round(second_s, 3),
                  "second_round_swabs_per_s": round(n / second_s),
                  "second_round_ratio_to_raw": None}
    raw_s = _raw(rows, n)
    if second:
        second["second_round_ratio_to_raw"] = round(raw_s / second["second_round_apply_seconds"], 3)
    return second | {
        "database": connection.vendor,
        "tubes": len(rows), "swabs": n, "setup_seconds": round(setup_s, 1),
        "apply_seconds": round(apply_s, 3), "apply_cpu_seconds_client": round(apply_cpu, 3), "tubes_per_s": round(len(rows) / apply_s),
        "swabs_per_s": round(n / apply_s),
        "reapply_unchanged_seconds": round(reapply_s, 3),
        "raw_seconds": round(raw_s, 3), "ratio_to_raw": round(raw_s / apply_s, 3),
        "raw_method": "COPY" if connection.vendor == "postgresql" else "executemany",
        "outcomes": {"negative": report.tubes_negative, "pool_positive": report.tubes_pool_positive,
                     "invalid": report.tubes_invalid},
        "persons_controlled": report.persons_controlled, "retest_tasks": tasks,
    }


def run_database(kind: str, args) -> dict:
    with tempfile.TemporaryDirectory(prefix="jk_bench_") as tmp:
        if kind == "sqlite":
            return _spawn(f"sqlite:///{tmp}/bench.sqlite3", tmp, args)
        base = os.environ.get("DATABASE_URL", "")
        base = base if base.startswith("postgres") else DEFAULT_PG
        name = f"jk_bench_results_{os.getpid()}"
        import psycopg

        parsed = urlparse(base)
        admin = urlunparse(parsed._replace(path="/postgres", scheme="postgresql"))
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            return _spawn(urlunparse(parsed._replace(path="/" + name)), tmp, args)
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _spawn(url: str, workdir: str, args) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--db-url", url, "--tubes", str(args.tubes), "--pool", str(args.pool)]
    if args.second_round:
        cmd.append("--second-round")
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
    if out.returncode != 0:
        return {"database": url.split(":")[0], "error": out.stderr[-3000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tubes", type=int, default=100_000)
    p.add_argument("--pool", type=int, default=10, help="swabs per tube")
    p.add_argument("--quick", action="store_true", help="5,000 tubes (a smoke run)")
    p.add_argument("--databases", default="sqlite,postgresql")
    p.add_argument("--second-round", action="store_true",
                   help="also apply a second round for the same people (every person already has a state)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--db-url", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.tubes = 5_000
    if args.worker:
        print(json.dumps(worker(args)))
        return
    kinds = [kind.strip() for kind in args.databases.split(",") if kind.strip()]
    results = [run_database(kind, args) for kind in kinds]
    print(json.dumps({"benchmark": "tube results with pool deconvolution", "tubes": args.tubes, "pool": args.pool,
                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
