"""Benchmark of the persons import (``jingkong import persons``) on SQLite and PostgreSQL.

Prints JSON: persons/s of the full import (parse + validate + upsert + per-person audit rows), and, measured in the
same run on the same rows, a raw ``executemany`` (SQLite) / raw ``COPY`` (PostgreSQL) into a bare table without
indexes; ``ratio`` = import rate / raw rate (target ≥ 0.5). ``projected_1m_seconds`` scales the import to 1 M rows
(target ≤ 15 s); run with ``--population 1000000`` for the measured figure.

    .venv/bin/python benchmarks/bench_load.py                      # 200 k persons, both databases
    .venv/bin/python benchmarks/bench_load.py --population 1000000 --databases sqlite

Each database is a scratch one: a temporary SQLite file, and a PostgreSQL database ``jk_bench_<pid>`` created on the
server of DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test) and dropped afterwards.
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


def worker(args) -> dict:
    os.environ["DATABASE_URL"] = args.db_url
    os.environ.setdefault("JINGKONG_DEBUG", "1")
    os.environ["DJANGO_SETTINGS_MODULE"] = "jingkong.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from jingkong.core import bulk
    from jingkong.people import importer

    call_command("migrate", verbosity=0)
    vendor = connection.vendor
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

    t0 = time.perf_counter()
    result = importer.import_persons(path)
    import_s = time.perf_counter() - t0
    assert result.rejected == 0, result.summary()

    # Baseline: the same prepared rows, raw, into a bare table (no indexes, no constraints).
    prepared = importer.prepare(path, today=dt.date.today())
    hcol = importer.PERSON_COLUMNS.index("household_id")
    rows = [(*r[:hcol], 1, *r[hcol + 1:]) if isinstance(r[hcol], str) else r for r in prepared.rows]
    with connection.cursor() as c:
        c.execute("CREATE TABLE bench_bare AS SELECT " + ", ".join(importer.PERSON_COLUMNS) + " FROM people_person WHERE 1 = 0")
    t1 = time.perf_counter()
    with transaction.atomic(), connection.cursor() as c:
        if vendor == "postgresql":
            bulk.copy_rows(c.cursor, "bench_bare", importer.PERSON_COLUMNS, rows)
        else:
            marks = ", ".join(["%s"] * len(importer.PERSON_COLUMNS))
            c.executemany(f"INSERT INTO bench_bare VALUES ({marks})", rows)
    raw_s = time.perf_counter() - t1
    n = result.valid
    return {
        "database": vendor,
        "persons": n,
        "import_seconds": round(import_s, 3),
        "persons_per_s": round(n / import_s),
        "raw_seconds": round(raw_s, 3),
        "raw_rows_per_s": round(n / raw_s),
        "ratio": round((n / import_s) / (n / raw_s), 3),
        "projected_1m_seconds": round(import_s * 1_000_000 / n, 2),
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
           "--population", str(args.population)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
    if out.returncode != 0:
        return {"database": url.split(":")[0], "error": out.stderr[-3000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--population", type=int, default=200_000)
    p.add_argument("--databases", default="sqlite,postgresql")
    p.add_argument("--persons-file", help="use this persons CSV instead of generating one")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--db-url", help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    results = [run_database(kind.strip(), args) for kind in args.databases.split(",") if kind.strip()]
    print(json.dumps({"benchmark": "persons import", "population": args.population, "results": results}, indent=2))


if __name__ == "__main__":
    main()
