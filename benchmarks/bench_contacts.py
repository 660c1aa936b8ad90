"""Benchmark of contact finding (``jingkong.analytics.contacts.find_contacts``) over a check-in lake of 1 M people ×
14 days (≈ 64 M check-ins).

Prints JSON with, measured in the same run on the same lake:

* ``one_case``: ``find_contacts`` for one case at a time (a 4-day exposure window ending on a random day; household,
  workplace, venue and transport rules against a real registry database) — median and worst of several cases, target
  ≤ 1 s; ``bare_join_seconds``: bare DuckDB over the same rows (the index's check-ins in the window into a temporary
  table, joined to everybody's check-ins at the same venues with ≥ 15 minutes' overlap, fetched as Arrow: no registry,
  no workplace or household, no merging of stays, no Python objects); ``ratio_to_bare_join`` = engine / bare;
* ``one_case_whole_lake``: the same with a 14-day window (every partition scanned);
* ``batch``: ``find_contacts`` for 1,000 cases in one call (target ≤ 30 s), and the bare join of the same 1,000 windows;
* ``peak_rss_mb_engine``: peak resident memory of the measuring process after all engine runs, before the bare joins
  (``peak_rss_mb_total`` includes them); DuckDB's memory limit is 2 GB by default; the lake and the registry are built
  by other processes.

The lake is generated directly in the normalized layout with numpy + pyarrow (not through ``jingkong generate`` and
the loader, which would take minutes at this size): persons in households of ~2.6 in neighbourhoods of ~400 people with
10 everyday venues each (85 % of visits there, the rest in nearby neighbourhoods), 55 % of people registered at one of
N/150 workplaces which they scan on work days for 8–10 h, ≈ 4.2 everyday check-ins per person per day from 7:00 to
21:00 for 5–60 min. The registry (households, venues, persons with their household and workplace) is written to a
scratch SQLite database with the platform's schema, with ids equal to the lake's. Both are kept in ``--dir`` (default
``/tmp/jk_bench_contacts_<people>x<days>``) and reused when present.

    .venv/bin/python benchmarks/bench_contacts.py            # 1 M × 14 days, 1,000 cases (first run: ~3 min setup)
    .venv/bin/python benchmarks/bench_contacts.py --quick    # 20 k × 7 days, 100 cases (~30 s)
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

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
START = dt.date(2022, 1, 1)
UTC_OFFSET_S = 8 * 3600
LOCAL_PER_NEIGHBOURHOOD = 10
PEOPLE_PER_NEIGHBOURHOOD = 400
ROW_GROUP = 65_536


class Model:
    """The synthetic population's structure, a pure function of (people, seed)."""

    def __init__(self, people: int, seed: int):
        self.people = people
        rng = np.random.default_rng([seed, 1])
        p = np.arange(people, dtype=np.int64)
        self.household = p * 10 // 26  # ~2.6 persons per household
        self.households = int(self.household[-1]) + 1
        self.neighbourhood = p // PEOPLE_PER_NEIGHBOURHOOD
        self.neighbourhoods = int(self.neighbourhood[-1]) + 1
        self.local_venues = self.neighbourhoods * LOCAL_PER_NEIGHBOURHOOD
        self.workplaces = max(people // 150, 1)
        employed = rng.random(people) < 0.55
        self.workplace = np.where(employed, self.local_venues + rng.integers(0, self.workplaces, people), -1)
        self.venues = self.local_venues + self.workplaces


def generate_lake(lake_root: Path, model: Model, days: int, seed: int) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ts = pa.timestamp("us", tz="UTC")
    n = model.people
    total = 0
    for d in range(days):
        day = START + dt.timedelta(days=d)
        rng = np.random.default_rng([seed, 2, d])
        weekday = day.weekday() < 5
        works = np.flatnonzero((model.workplace >= 0) & (rng.random(n) < (0.95 if weekday else 0.25)))
        counts = rng.poisson(4.2, n)
        person = np.repeat(np.arange(n, dtype=np.int64), counts)
        m = len(person)
        nb = model.neighbourhood[person]
        away = rng.random(m) < 0.15
        nb = np.where(away, np.clip(nb + rng.integers(-5, 6, m), 0, model.neighbourhoods - 1), nb)
        venue = nb * LOCAL_PER_NEIGHBOURHOOD + rng.integers(0, LOCAL_PER_NEIGHBOURHOOD, m)
        start = rng.integers(7 * 3600, 21 * 3600, m)
        dwell = rng.integers(5 * 60, 60 * 60, m)
        w_start = np.clip(rng.normal(8 * 3600, 1800, len(works)), 5 * 3600, 11 * 3600).astype(np.int64)
        w_dwell = rng.integers(8 * 3600, 10 * 3600, len(works))
        person = np.concatenate([works, person]) + 1
        venue = np.concatenate([model.workplace[works], venue]) + 1
        midnight_us = (int(np.datetime64(day, "s").astype(np.int64)) - UTC_OFFSET_S) * 1_000_000
        checkin = midnight_us + np.concatenate([w_start, start]) * 1_000_000
        checkout = checkin + np.concatenate([w_dwell, dwell]) * 1_000_000
        order = np.lexsort((person, checkin, venue))  # the loader's order: venue, check-in, person
        table = pa.table({"person_id": pa.array(person[order], pa.int64()),
                          "venue_id": pa.array(venue[order].astype(np.int32), pa.int32()),
                          "checkin_at": pa.array(checkin[order], ts), "checkout_at": pa.array(checkout[order], ts)})
        out = lake_root / "checkins" / f"day={day.isoformat()}"
        out.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, out / "src-bench.parquet", row_group_size=ROW_GROUP, compression="zstd")
        total += len(table)
        print(f"  lake {day}: {len(table):,} rows", file=sys.stderr, flush=True)
    return total


def _django(db_url: str) -> None:
    os.environ["DATABASE_URL"] = db_url
    os.environ.pop("JINGKONG_DEBUG", None)  # DEBUG wraps cursors: not what production runs
    os.environ["JINGKONG_DEMO"] = "1"
    os.environ["DJANGO_SETTINGS_MODULE"] = "jingkong.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def setup_registry(args) -> dict:
    """The registry in a scratch SQLite database: region, building, households, venues, persons (ids = lake ids)."""
    _django(args.db_url)
    from django.core.management import call_command
    from django.db import connection, transaction

    from jingkong.people.models import Person

    t0 = time.perf_counter()
    call_command("migrate", verbosity=0)
    model = Model(args.people, args.seed)
    now = dt.datetime(2022, 1, 1, tzinfo=dt.UTC)
    with transaction.atomic(), connection.cursor() as c:
        c.execute("INSERT INTO geo_region (id, code, name, level, synthetic, population, households, buildings) "
                  "VALUES (1, '330206', '北仑区', 'district', %s, 0, 0, 0)", [True])
        c.execute("INSERT INTO geo_building (id, code, grid_id, address, lon, lat, units, floors, household_count) "
                  "VALUES (1, 'B1', 1, '', 121.8, 29.9, 1, 1, 0)")
        c.executemany("INSERT INTO geo_venue (id, code, name, type, lon, lat, grid_id) VALUES (%s, %s, %s, %s, %s, "
                      "%s, 1)", [(v + 1, f"V{v + 1:07d}", f"场所{v + 1}", "factory" if v >= model.local_venues
                                  else "supermarket", 121.8, 29.9) for v in range(model.venues)])
        for a in range(0, model.households, 200_000):
            c.executemany("INSERT INTO people_household (id, code, building_id, grid_id, unit, room) "
                          "VALUES (%s, %s, 1, 1, '', '')",
                          [(h + 1, f"H{h + 1:08d}") for h in range(a, min(model.households, a + 200_000))])
        fields = [f for f in Person._meta.concrete_fields]
        given = {"id": None, "id_hash": None, "id_masked": "330206********0000", "name": "居民", "sex": "F",
                 "birth_date": dt.date(1980, 1, 1), "household_id": None, "building_id": 1, "grid_id": 1,
                 "workplace_id": None, "source": "synthetic", "created_at": now, "updated_at": now}
        columns = [f.column for f in fields]
        template = [given[col] if col in given else f.get_default() for col, f in zip(columns, fields, strict=True)]
        i_id, i_hash, i_house, i_work = (columns.index(k) for k in ("id", "id_hash", "household_id", "workplace_id"))
        marks = ", ".join(["%s"] * len(columns))
        sql = f"INSERT INTO people_person ({', '.join(columns)}) VALUES ({marks})"
        for a in range(0, model.people, 100_000):
            rows = []
            for p in range(a, min(model.people, a + 100_000)):
                row = list(template)
                row[i_id], row[i_hash] = p + 1, f"{p + 1:032x}"
                row[i_house] = int(model.household[p]) + 1
                row[i_work] = int(model.workplace[p]) + 1 if model.workplace[p] >= 0 else None
                rows.append(row)
            c.executemany(sql, rows)
    return {"registry_seconds": round(time.perf_counter() - t0, 1)}


def measure(args) -> dict:
    _django(args.db_url)
    import pyarrow as pa

    from jingkong.analytics import duck
    from jingkong.analytics.contacts import IndexWindow, find_contacts
    from jingkong.tracing.lake import CheckinLake

    lake = CheckinLake(Path(args.dir) / "lake")
    rng = np.random.default_rng([args.seed, 3])
    overlap = 15
    midnight = [dt.datetime.combine(START + dt.timedelta(days=d), dt.time(), tzinfo=dt.UTC)
                - dt.timedelta(hours=8) for d in range(args.days + 1)]

    def windows(n: int, length_days: int, key0: int = 1) -> list[IndexWindow]:
        persons = rng.choice(args.people, n, replace=False) + 1
        ends = rng.integers(length_days, args.days + 1, n)
        return [IndexWindow(key0 + i, int(p), midnight[int(e) - length_days], midnight[int(e)])
                for i, (p, e) in enumerate(zip(persons, ends, strict=True))]

    def bare(ws: list[IndexWindow]) -> tuple[float, int]:
        """The bare DuckDB join of the same rows, the way DuckDB does it fastest: the index persons' check-ins in
        their windows into a temporary table, then joined with everybody's check-ins at the same venues (≥ 15 min)
        and fetched as Arrow. (As one statement with a CTE, DuckDB cannot push the venues into the second scan and
        takes ~10× longer for one case.)"""
        t = time.perf_counter()
        files = lake.files_between("checkins", min(w.start for w in ws), max(w.end for w in ws))
        con = duck.connect()
        con.register("win", pa.table({"person_id": pa.array([w.person_id for w in ws], pa.int64()),
                                      "ws": pa.array([w.start for w in ws], pa.timestamp("us", tz="UTC")),
                                      "we": pa.array([w.end for w in ws], pa.timestamp("us", tz="UTC"))}))
        con.execute(f"CREATE TEMP VIEW ck AS SELECT * FROM read_parquet({duck.sql_list(files)}, "
                    "hive_partitioning = false)")
        con.execute("""CREATE TEMP TABLE i AS
                       SELECT c.person_id AS index_person, c.venue_id, greatest(c.checkin_at, w.ws) AS s,
                              least(c.checkout_at, w.we) AS e
                       FROM ck c JOIN win w ON c.person_id = w.person_id
                       WHERE c.checkin_at < w.we AND c.checkout_at > w.ws""")
        table = duck.fetch_arrow(con, f"""
            SELECT i.index_person, c.person_id, c.venue_id, greatest(c.checkin_at, i.s) AS os,
                   least(c.checkout_at, i.e) AS oe
            FROM ck c JOIN i ON c.venue_id = i.venue_id AND c.checkin_at < i.e AND c.checkout_at > i.s
            WHERE c.person_id <> i.index_person
              AND epoch_us(least(c.checkout_at, i.e)) - epoch_us(greatest(c.checkin_at, i.s)) >= {overlap * 60_000_000}
        """)
        con.close()
        return time.perf_counter() - t, table.num_rows

    def engine(ws: list[IndexWindow]) -> tuple[float, int, dict]:
        t = time.perf_counter()
        found = find_contacts(ws, overlap_minutes=overlap, lake=lake)
        kinds: dict[str, int] = {}
        for f in found:
            kinds[f.kind] = kinds.get(f.kind, 0) + 1
        return time.perf_counter() - t, len(found), kinds

    def rss_mb() -> int:
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)

    # All engine runs first (their peak memory is reported on its own), then the bare joins of the same windows.
    engine(windows(1, 4))  # warm the file system cache and imports (not counted)
    singles = {"one_case": windows(args.runs, 4), "one_case_whole_lake": windows(3, args.days)}
    batch = windows(args.cases, 4)
    timings = {name: [engine([w]) for w in ws] for name, ws in singles.items()}
    batch_seconds, batch_findings, kinds = engine(batch)
    out: dict = {"peak_rss_mb_engine": rss_mb()}
    for name, ws in singles.items():
        engine_s = [t[0] for t in timings[name]]
        bare_runs = [bare([w]) for w in ws]
        bare_s = [b[0] for b in bare_runs]
        out[name] = {
            "window_days": 4 if name == "one_case" else args.days, "runs": len(ws),
            "seconds_median": round(statistics.median(engine_s), 3), "seconds_max": round(max(engine_s), 3),
            "findings_median": int(statistics.median(t[1] for t in timings[name])),
            "bare_join_seconds_median": round(statistics.median(bare_s), 3),
            "bare_join_rows_median": int(statistics.median(b[1] for b in bare_runs)),
            "ratio_to_bare_join": round(statistics.median(engine_s) / statistics.median(bare_s), 2),
            "target_seconds": 1.0,
        }
    bare_seconds, rows = bare(batch)
    out["batch"] = {"cases": args.cases, "window_days": 4, "seconds": round(batch_seconds, 3),
                    "findings": batch_findings, "findings_by_kind": kinds, "bare_join_seconds": round(bare_seconds, 3),
                    "bare_join_rows": rows, "ratio_to_bare_join": round(batch_seconds / bare_seconds, 2),
                    "target_seconds": 30.0}
    out["peak_rss_mb_total"] = rss_mb()
    out["duckdb_memory_limit"] = os.environ.get("JINGKONG_DUCKDB_MEMORY") or duck.DEFAULT_MEMORY_LIMIT
    out["cpu_count"] = os.cpu_count()
    return out


def _spawn(mode: str, args) -> dict:
    cmd = [sys.executable, __file__, mode, "--dir", args.dir, "--db-url", args.db_url, "--people", str(args.people),
           "--days", str(args.days), "--cases", str(args.cases), "--runs", str(args.runs), "--seed", str(args.seed)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--people", type=int, default=1_000_000)
    p.add_argument("--days", type=int, default=14)
    p.add_argument("--cases", type=int, default=1000, help="cases in the batch (default 1000)")
    p.add_argument("--runs", type=int, default=7, help="single cases timed (default 7)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--dir", help="where the lake and the registry database are kept (reused when they match)")
    p.add_argument("--quick", action="store_true", help="20 k people × 7 days, 100 cases")
    p.add_argument("--setup", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--db-url", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.people, args.days, args.cases, args.runs = 20_000, 7, 100, 5
    args.dir = str(Path(args.dir or f"/tmp/jk_bench_contacts_{args.people}x{args.days}").resolve())
    args.db_url = args.db_url or f"sqlite:///{args.dir}/registry.sqlite3"
    if args.setup:
        print(json.dumps(setup_registry(args)))
        return
    if args.measure:
        print(json.dumps(measure(args)))
        return
    sys.path.insert(0, str(ROOT))
    base = Path(args.dir)
    manifest_path = base / "manifest.json"
    wanted = {"people": args.people, "days": args.days, "seed": args.seed, "format": 1}
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    setup: dict = {"reused": manifest.get("wanted") == wanted}
    if not setup["reused"]:
        import shutil

        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        t = time.perf_counter()
        model = Model(args.people, args.seed)
        rows = generate_lake(base / "lake", model, args.days, args.seed)
        setup["lake_seconds"] = round(time.perf_counter() - t, 1)
        setup.update(_spawn("--setup", args))
        manifest = {"wanted": wanted, "rows": rows, "venues": model.venues, "households": model.households}
        manifest_path.write_text(json.dumps(manifest))
    lake_bytes = sum(f.stat().st_size for f in (base / "lake").rglob("*.parquet"))
    result = {"benchmark": "contact finding over the check-in lake", "people": args.people, "days": args.days,
              "checkins": manifest["rows"], "venues": manifest["venues"], "lake_mb": round(lake_bytes / 2**20),
              "database": "sqlite (scratch, platform schema)", "setup": setup}
    result.update(_spawn("--measure", args))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
