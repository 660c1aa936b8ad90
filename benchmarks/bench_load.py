"""Benchmark of the persons import (``jingkong import persons``) and district load on SQLite and PostgreSQL.

Prints JSON, per database, measured in the same run on the same rows:

* (a) ``persons_per_s``: the full import through the platform into an empty person table (parse, validate, hash,
  write, index build, audit, household and region counts) — the fresh-load path; ``reimport_*``: the same file
  again (the chunked upsert path, every row already there);
* (b) ``raw_bare_*``: a raw ``executemany`` (SQLite, rows already built) / raw ``COPY`` (PostgreSQL, text already
  formatted) of the same prepared rows into a bare table (same columns, no key, no index);
* (c) ``raw_schema_*``: the same raw write into a table with people_person's own schema and indexes — the
  database's floor for inserting into this table;
* ``ratio_to_raw_bare`` = (a) / (b) (the issue's ratio, target ≥ 0.5) and ``ratio_to_raw_schema`` = (a) / (c).

With ``--district DIR`` (a ``jingkong generate`` directory) it also times ``load_district`` of it into a fresh
database per engine. Targets: ≥ 100 k persons/s; 1 M persons in ≤ 15 s.

    .venv/bin/python benchmarks/bench_load.py                      # 100 k persons, both databases (~1 min)
    .venv/bin/python benchmarks/bench_load.py --population 1000000 --district /tmp/g1m

Each database is a scratch one: a temporary SQLite file, and a PostgreSQL database ``jk_bench_<pid>`` created on the
server of DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test) and dropped afterwards. The worker runs
without JINGKONG_DEBUG (DEBUG wraps cursors) and with JINGKONG_DEMO=1 (no secret needed).
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


def write_persons_file(path: Path, population: int, building_codes: list[str], seed: int = 7) -> None:
    """A valid persons CSV (the district format) of ``population`` rows."""
    sys.path.insert(0, str(ROOT))
    from jingkong.people.idnumber import check_char

    rnd = random.Random(seed)
    base = dt.date(1930, 1, 1)
    used: set[str] = set()
    vulnerable = ["", "", "", "", "elderly", "chronic", "elderly;chronic", "young_child"]
    industry = ["", "", "", "", "", "", "port", "cold_chain", "hospital"]
    surname = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
    given = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("id_number,name,sex,birth_date,phone,household_code,building_code,unit,room,registered_address,"
                 "is_registered_local,vulnerable,industry,employer,workplace_venue_code\n")
        i = 0
        lines = []
        while i < population:
            born = base + dt.timedelta(days=rnd.randrange(0, 33000))
            seq = rnd.randrange(0, 1000)
            first17 = f"330206{born:%Y%m%d}{seq:03d}"
            number = first17 + check_char(first17)
            if number in used:
                continue
            used.add(number)
            b = building_codes[(i // 3) % len(building_codes)]
            sex = "M" if seq % 2 else "F"
            name = surname[rnd.randrange(len(surname))] + given[rnd.randrange(len(given))] + given[rnd.randrange(len(given))]
            lines.append(f"{number},{name},{sex},{born:%Y-%m-%d},138{rnd.randrange(10**8):08d},H{i // 3:08d},{b},1,"
                         f"{101 + i % 30},浙江省宁波市北仑区,1,{vulnerable[i % 8]},{industry[i % 9]},,\n")
            i += 1
            if len(lines) >= 50_000:
                fh.write("".join(lines))
                lines = []
        fh.write("".join(lines))


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def worker(args) -> dict:
    os.environ["DATABASE_URL"] = args.db_url
    os.environ.pop("JINGKONG_DEBUG", None)  # DEBUG wraps cursors: not what production runs
    os.environ["JINGKONG_DEMO"] = "1"  # no secret needed
    os.environ["DJANGO_SETTINGS_MODULE"] = "jingkong.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from jingkong.people import importer
    from jingkong.people.loader import load_district

    call_command("migrate", verbosity=0)
    vendor = connection.vendor
    if args.district:
        # The whole district directory through the platform (regions … persons … counts), into an empty database.
        seconds, report = _timed(lambda: load_district(args.district))
        persons = report["persons"]
        return {"database": vendor, "what": "load_district", "district": args.district,
                "persons": persons["created"] + persons["updated"], "seconds": round(seconds, 3),
                "persons_step_seconds": persons["seconds"],
                "persons_per_s_persons_step": round((persons["created"] + persons["updated"]) / persons["seconds"])}

    # A base map: 1 district, 4 streets, 20 communities, 100 grids, 5,000 buildings.
    with transaction.atomic():
        from jingkong.geo.models import Building, Region

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
        grids = list(Region.objects.filter(level="grid"))
        Building.objects.bulk_create(
            [Building(code=f"B{i:06d}", grid=grids[i % len(grids)], lon=121.8, lat=29.9) for i in range(5000)]
        )
    codes = [f"B{i:06d}" for i in range(5000)]
    path = Path(args.workdir) / "persons.csv"
    if not path.exists():
        write_persons_file(path, args.population, codes)

    # (a) the platform: parse + validate + hash + write + indexes + audit + counts, into the empty table.
    import_s, result = _timed(lambda: importer.import_persons(path))
    assert result.rejected == 0 and result.created == result.valid, result.summary()
    n = result.valid
    # (a') a re-import of the same file: the chunked upsert path (all rows exist and are unchanged: nothing is
    # rewritten, so this is the cost of validating and comparing a whole registry again).
    reimport_s, again = _timed(lambda: importer.import_persons(path))
    assert again.unchanged == n, again.summary()

    # The same rows, prepared (not timed), for the raw writes.
    from jingkong.core import clock

    prepared = importer.prepare(path, today=clock.today())
    prepared.resolve_households()
    cols = ", ".join(importer.PERSON_COLUMNS)
    rows = list(prepared.rows())
    text = prepared.copy_text() if vendor == "postgresql" else None

    def raw_write(table: str) -> None:
        with transaction.atomic(), connection.cursor() as c:
            if vendor == "postgresql":
                with c.cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                    copy.write(text)
            else:
                marks = ", ".join(["%s"] * len(importer.PERSON_COLUMNS))
                c.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)

    with connection.cursor() as c:
        # (b) a bare table: same columns, no key, no index, no constraint.
        c.execute(f"CREATE TABLE bench_bare AS SELECT {cols} FROM people_person WHERE 1 = 0")
        # (c) people_person's own schema and indexes (the database's floor for this table).
        if vendor == "postgresql":
            c.execute("CREATE TABLE bench_schema (LIKE people_person INCLUDING ALL)")
        else:
            c.execute("SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'people_person' AND sql IS NOT NULL"
                      " ORDER BY type DESC")  # table first
            for _, name, sql in c.fetchall():
                c.execute(sql.replace('"people_person"', '"bench_schema"', 1).replace(f'"{name}"', f'"b_{name}"', 1)
                          if name != "people_person" else sql.replace('"people_person"', '"bench_schema"', 1))
    with importer._large_cache():
        bare_s, _ = _timed(lambda: raw_write("bench_bare"))
        schema_s, _ = _timed(lambda: raw_write("bench_schema"))
    rate = n / import_s
    return {
        "database": vendor,
        "persons": n,
        "import_seconds": round(import_s, 3),
        "persons_per_s": round(rate),
        "projected_1m_seconds": round(import_s * 1_000_000 / n, 2),
        "reimport_upsert_seconds": round(reimport_s, 3),
        "reimport_persons_per_s": round(n / reimport_s),
        "raw_bare_seconds": round(bare_s, 3),
        "raw_bare_rows_per_s": round(n / bare_s),
        "raw_schema_seconds": round(schema_s, 3),
        "raw_schema_rows_per_s": round(n / schema_s),
        "ratio_to_raw_bare": round(rate / (n / bare_s), 3),
        "ratio_to_raw_schema": round(rate / (n / schema_s), 3),
        "raw_method": "COPY (text, pre-formatted)" if vendor == "postgresql" else "executemany (rows pre-built)",
    }


def run_database(kind: str, args) -> dict:
    with tempfile.TemporaryDirectory(prefix="jk_bench_") as tmp:
        persons = Path(tmp) / "persons.csv"
        if args.persons_file:
            persons.symlink_to(Path(args.persons_file).resolve())
        if kind == "sqlite":
            url = f"sqlite:///{tmp}/bench.sqlite3"
            return _spawn(url, tmp, args)
        base = os.environ.get("DATABASE_URL", "")
        base = base if base.startswith("postgres") else DEFAULT_PG
        name = f"jk_bench_{os.getpid()}"
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
    cmd = [sys.executable, __file__, "--worker", "--db-url", url, "--workdir", workdir,
           "--population", str(args.population)] + (["--district", str(Path(args.district).resolve())]
                                                   if args.district else [])
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
    if out.returncode != 0:
        return {"database": url.split(":")[0], "error": out.stderr[-3000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--population", type=int, default=100_000)
    p.add_argument("--databases", default="sqlite,postgresql")
    p.add_argument("--persons-file", help="use this persons CSV instead of generating one")
    p.add_argument("--district", help="also time `load_district` of this generated district directory "
                                      "(e.g. from `jingkong generate`), each database in a fresh scratch database")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--db-url", help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    kinds = [kind.strip() for kind in args.databases.split(",") if kind.strip()]
    results = [run_database(kind, argparse.Namespace(**(vars(args) | {"district": None}))) for kind in kinds]
    if args.district:
        results += [run_database(kind, args) for kind in kinds]
    print(json.dumps({"benchmark": "persons import", "population": args.population, "results": results}, indent=2))


if __name__ == "__main__":
    main()
