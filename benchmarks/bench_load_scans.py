"""Benchmark of ``jingkong testing load-scans``: a 1 M-person round (100 k tubes, 10-in-1) from a CSV file, on SQLite
and PostgreSQL, with the ratio to a raw insert of the same rows measured in the same run.

Per database (a scratch one: a temporary SQLite file; a PostgreSQL database ``jk_bench_loadscans_<pid>`` on the
server of DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test, dropped afterwards):

* seed (not timed): a district with 100 grids, 200 sampling sites, a running 10-in-1 campaign, ``--persons``
  registered persons; a scans CSV of one swab per person (``client_scan_id, tube, id_number, site, sampled_at``);
* (a) ``load_seconds``: ``load_scans(FILE)`` — read, validate, look up persons, open/fill/seal tubes, write samples,
  events, audit — into the empty sample table; ``reload_seconds``: the same file again (everything already recorded);
* (b) ``raw_bare_*``: the sample rows the load wrote, inserted raw (SQLite ``executemany`` of pre-built tuples;
  PostgreSQL ``COPY`` of pre-formatted text) into a bare table with the same columns and no index;
* (c) ``raw_schema_*``: the same raw insert into a copy of ``testing_sample`` with its own indexes, constraints and
  foreign keys (on PostgreSQL the foreign-key checks — one trigger per row and key — are most of a load's time);
* ``ratio_to_raw_bare`` = (b)'s time / (a)'s, ``ratio_to_raw_schema`` = (c)'s / (a)'s. Target: ≤ 30 s for 1 M.

    .venv/bin/python benchmarks/bench_load_scans.py --quick       # 50,000 persons, both databases
    .venv/bin/python benchmarks/bench_load_scans.py               # 1,000,000 persons
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/test"
SECRET = "bench-load-scans-secret-" + "k" * 32


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def worker(args) -> dict:
    os.environ.update({"DATABASE_URL": args.db_url, "JINGKONG_SECRET_KEY": SECRET,
                       "DJANGO_SETTINGS_MODULE": "jingkong.settings"})
    os.environ.pop("JINGKONG_DEBUG", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from jingkong.core import bulk, clock
    from jingkong.geo.models import Region
    from jingkong.people import idnumber
    from jingkong.testing.loadscans import SAMPLE_COLUMNS, load_scans
    from jingkong.testing.models import Campaign, SamplingSite
    from jingkong.testing.sampling import PERSON_INSERT_COLUMNS

    call_command("migrate", verbosity=0)
    vendor = connection.vendor
    now = clock.now()
    with transaction.atomic():
        d = Region.objects.create(code="330206", name="北仑区", level="district")
        grids = []
        for s in range(4):
            street = Region.objects.create(code=f"330206{s + 1:03d}", name=f"街道{s}", level="street", parent=d)
            for c in range(5):
                com = Region.objects.create(code=f"{street.code}{c + 1:03d}", name=f"社区{c}", level="community",
                                            parent=street)
                grids += [Region.objects.create(code=f"{com.code}{g + 1:03d}", name=f"网格{g}", level="grid",
                                                parent=com) for g in range(5)]
        sites = [SamplingSite.objects.create(code=f"S{i:04d}", name=f"采样点{i}", region=grids[i % len(grids)],
                                             region_code=grids[i % len(grids)].code, lon=121.8, lat=29.9)
                 for i in range(200)]
        Campaign.objects.create(code="BENCH-R1", name="bench round", region=d, region_code=d.code, pool_size=10,
                                starts_at=now - dt.timedelta(hours=12), deadline=now + dt.timedelta(days=1),
                                status="running", created_at=now, updated_at=now)
    n = args.persons
    numbers = []
    base = dt.date(1940, 1, 1)
    for k in range(n):
        first17 = f"330206{base + dt.timedelta(days=k // 900):%Y%m%d}{100 + k % 900:03d}"
        numbers.append(first17 + idnumber.check_char(first17))
    hashes = idnumber.id_hash_many(numbers)
    stamp = bulk.db_datetime(now)
    yes, no = (1, 0) if vendor == "sqlite" else (True, False)
    grid_ids = [g.id for g in grids]
    rows = [(h, idnumber.id_mask(num), "居民", idnumber.sex_of(num), f"{num[6:10]}-{num[10:12]}-{num[12:14]}", "",
             None, None, grid_ids[(k // 500) % len(grid_ids)], "", "", "", yes, 0, "", "", None, "synthetic", no,
             stamp, stamp) for k, (num, h) in enumerate(zip(numbers, hashes, strict=True))]
    bulk.load_into_empty("people_person", PERSON_INSERT_COLUMNS, rows)
    del rows, hashes
    if vendor == "postgresql":
        with connection.cursor() as c:
            c.execute("ANALYZE")
    # The round: persons queue at the site of their grid; 10 per tube, in order; 8 hours of sampling.
    path = Path(args.workdir) / "scans.csv"
    t0 = now - dt.timedelta(hours=10)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("client_scan_id,tube,id_number,site,sampled_at\n")
        lines = []
        for k, num in enumerate(numbers):
            site = sites[((k // 500) % len(grid_ids)) % len(sites)].code
            at = (t0 + dt.timedelta(seconds=k * 28_800 // n)).strftime("%Y-%m-%dT%H:%M:%SZ")
            lines.append(f"dev{k // 5000}-{k},BL{k // 10:08d},{num},{site},{at}\n")
            if len(lines) >= 100_000:
                fh.write("".join(lines))
                lines = []
        fh.write("".join(lines))
    del numbers

    if args.profile:  # where the load spends its time, on stderr
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
    load_s, result = _timed(lambda: load_scans(path))
    if args.profile:
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(60)
    assert result.rejected == 0 and result.recorded == n, result.summary()
    reload_s, again = _timed(lambda: load_scans(path))
    assert again.already_recorded == n and again.recorded == 0, again.summary()

    cols = ", ".join(SAMPLE_COLUMNS)
    with connection.cursor() as c:
        c.execute(f"SELECT {cols} FROM testing_sample ORDER BY id")
        sample_rows = c.fetchall()
        if vendor == "postgresql":
            c.execute("CREATE TABLE bench_bare AS SELECT * FROM testing_sample WHERE 1 = 0")
            c.execute("CREATE TABLE bench_schema (LIKE testing_sample INCLUDING ALL)")
            # LIKE copies no foreign keys: add testing_sample's own (SQLite's copied CREATE TABLE has them)
            c.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'testing_sample'::regclass"
                      " AND contype = 'f'")
            for (definition,) in c.fetchall():
                c.execute(f"ALTER TABLE bench_schema ADD {definition}")
        else:
            c.execute(f"CREATE TABLE bench_bare AS SELECT {cols} FROM testing_sample WHERE 1 = 0")
            c.execute("SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'testing_sample' AND sql IS NOT NULL"
                      " ORDER BY type DESC")
            for kind, _name, sql in c.fetchall():
                if kind == "table":
                    c.execute(sql.replace('"testing_sample"', '"bench_schema"', 1))
                else:  # CREATE [UNIQUE] INDEX [IF NOT EXISTS] name ON testing_sample (...), quoted or not
                    c.execute(re.sub(r'(INDEX\s+(?:IF NOT EXISTS\s+)?)"?(\w+)"?\s+ON\s+"?testing_sample"?',
                                     r'\1"b_\2" ON "bench_schema"', sql, count=1))
    if vendor == "postgresql":
        import io

        buf = io.StringIO()
        for r in sample_rows:
            buf.write("\t".join("\\N" if v is None else str(v) for v in r) + "\n")
        text = buf.getvalue()

    def raw(table: str):
        with transaction.atomic(), connection.cursor() as c:
            if vendor == "postgresql":
                with c.cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                    copy.write(text)
            else:
                marks = ", ".join(["%s"] * len(SAMPLE_COLUMNS))
                c.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", sample_rows)

    bare_s, _ = _timed(lambda: raw("bench_bare"))
    schema_s, _ = _timed(lambda: raw("bench_schema"))
    return {
        "database": vendor,
        "rows": n,
        "tubes": result.tubes_opened,
        "load_seconds": round(load_s, 2),
        "load_rows_per_s": round(n / load_s),
        "load_phases_seconds": result.timings,
        "projected_1m_seconds": round(load_s * 1_000_000 / n, 1),
        "meets_30s_target": load_s * 1_000_000 / n <= 30,
        "reload_seconds": round(reload_s, 2),
        "raw_bare_seconds": round(bare_s, 2),
        "raw_schema_seconds": round(schema_s, 2),
        "ratio_to_raw_bare": round(bare_s / load_s, 3),
        "ratio_to_raw_schema": round(schema_s / load_s, 3),
        "raw_method": "COPY (text, pre-formatted)" if vendor == "postgresql" else "executemany (rows pre-built)",
    }


def run_database(kind: str, args) -> dict:
    with tempfile.TemporaryDirectory(prefix="jk_bench_loadscans_") as tmp:
        if kind == "sqlite":
            return _spawn(f"sqlite:///{tmp}/bench.sqlite3", tmp, args)
        import psycopg

        base = os.environ.get("DATABASE_URL", "")
        base = base if base.startswith("postgres") else DEFAULT_PG
        parsed = urlparse(base)
        name = f"jk_bench_loadscans_{os.getpid()}"
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
    cmd = [sys.executable, __file__, "--worker", "--db-url", url, "--workdir", workdir, "--persons", str(args.persons)]
    cmd += ["--profile"] if args.profile else []
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
    if args.profile:
        sys.stderr.write(out.stderr)
    if out.returncode != 0:
        return {"database": url.split(":")[0], "error": out.stderr[-3000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 50,000 persons")
    p.add_argument("--persons", type=int, default=None)
    p.add_argument("--databases", default="sqlite,postgresql")
    p.add_argument("--profile", action="store_true", help="print a profile of the load on stderr")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--db-url", help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.persons is None:
        args.persons = 50_000 if args.quick else 1_000_000
    if args.worker:
        print(json.dumps(worker(args)))
        return
    results = [run_database(kind.strip(), args) for kind in args.databases.split(",") if kind.strip()]
    print(json.dumps({"benchmark": "load-scans (a round from a file)", "persons": args.persons,
                      "cores": os.cpu_count(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
