"""Benchmark of the five-stage clock (五快): the district summary API call the dashboard makes.

Target (issue 6): ``GET /api/v1/isolation/clock/summary`` for the whole district, p95 ≤ 300 ms, with 10,000 cases
and 100,000 contacts.

The dataset: a district of 10 streets × 10 communities × 5 grids; ``--cases`` cases and ``--contacts`` contacts
spread over the 7 days before the measuring instant, at every stage of the loop (identified, located, grouped in
batches of 10, transfer started, arrived, in a room or under a home-quarantine order; some cases investigated, some
overdue); one ``isolation.transfer_started`` / ``isolation.arrived`` event per person who reached it (written with
``bulk_create``: the rows the services would write); the 2022 profile in force.

Timed in the same run, on the same data (``--runs`` calls after one warm-up):

* ``summary_p95_ms`` / ``summary_median_ms``: the API call by a district commander as a polling dashboard makes it
  (auth, scope, the data-change check, statistics by street and day from the stages computed at the current
  30-second mark, serialisation);
* ``summary_cold_p95_ms``: the same with the stage cache emptied before each call (one query per source, pandas
  stages: what the first call after a data change costs);
* ``baseline_p95_ms``: a bare ``SELECT COUNT(*)`` over the same rows (cases and contacts of the district in the
  read window), and ``ratio`` = summary / baseline.

    .venv/bin/python benchmarks/bench_clock.py --quick        # 1,000 cases, 10,000 contacts, both databases
    .venv/bin/python benchmarks/bench_clock.py                # 10,000 cases, 100,000 contacts
    .venv/bin/python benchmarks/bench_clock.py --databases postgres

Each database runs in its own process: a SQLite file in a temporary directory, and a PostgreSQL database
``jk_bench_clock`` created on the server of ``--database-url`` (default DATABASE_URL or
postgres://postgres@127.0.0.1:5432/test) and dropped afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/test"
PG_NAME = "jk_bench_clock"
NOW = dt.datetime(2022, 1, 10, 4, 0, tzinfo=dt.UTC)
TARGET_P95_MS = 300.0


def _setup(db_url: str, data_dir: str) -> None:
    os.environ["DATABASE_URL"] = db_url
    os.environ["JINGKONG_DATA_DIR"] = data_dir
    os.environ.pop("JINGKONG_DEBUG", None)
    os.environ["JINGKONG_DEMO"] = "1"
    os.environ["DJANGO_SETTINGS_MODULE"] = "jingkong.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def build(n_cases: int, n_contacts: int) -> dict:
    from django.core.management import call_command
    from django.db import transaction

    from jingkong.core.models import DomainEvent
    from jingkong.geo.models import Region
    from jingkong.isolation.models import BatchMember, Facility, IsolationOrder, Room, RoomStay, TransferBatch
    from jingkong.people.models import Person
    from jingkong.policy.selectors import profile_get
    from jingkong.policy.services import profile_activate, profile_install_builtin
    from jingkong.tracing.models import Case, Contact

    call_command("migrate", verbosity=0)
    rnd = random.Random(6)
    started = time.perf_counter()
    hrs = dt.timedelta(hours=1)

    def when(base, lo, hi):
        t = base + rnd.uniform(lo, hi) * hrs
        return t if t <= NOW else None

    with transaction.atomic():
        district = Region.objects.create(code="330206", name="北仑区", level="district")
        streets = Region.objects.bulk_create([Region(code=f"330206{s:03d}", name=f"街道{s}", level="street",
                                                     parent=district) for s in range(1, 11)])
        comms = Region.objects.bulk_create([Region(code=f"{s.code}{c:03d}", name=f"社区{c}", level="community",
                                                   parent=s) for s in streets for c in range(1, 11)])
        grids = Region.objects.bulk_create([Region(code=f"{c.code}{g:03d}", name=f"网格{g}", level="grid", parent=c)
                                            for c in comms for g in range(1, 6)])
        total = n_cases + n_contacts
        persons = Person.objects.bulk_create([
            Person(id_hash=f"clock{i:010d}".ljust(32, "0"), id_masked="330206********0000", name=f"人{i}", sex="F",
                   birth_date=dt.date(1980, 1, 1), grid=grids[i % len(grids)], created_at=NOW, updated_at=NOW)
            for i in range(total)], batch_size=5000)
        hotel = Facility.objects.create(code="H1", name="隔离酒店", kind="quarantine_hotel", region_code="330206001",
                                        lon=121.8, lat=29.9)
        room = Room.objects.create(facility=hotel, number="1", floor=1, kind="family", beds=4, state_since=NOW)
        cases, contacts = [], []
        for i, p in enumerate(persons[:n_cases]):
            confirmed = NOW - rnd.uniform(1, 7 * 24) * hrs
            cases.append(Case(ref=f"C{i:07d}", person=p, region_code=p.grid.code, created_at=confirmed,
                              updated_at=confirmed, first_positive_at=confirmed - rnd.uniform(1, 20) * hrs,
                              investigated_at=when(confirmed, 1, 30) if rnd.random() < 0.9 else None))
        Case.objects.bulk_create(cases, batch_size=5000)
        for p in persons[n_cases:]:
            ident = NOW - rnd.uniform(1, 7 * 24) * hrs
            located = when(ident, 0.2, 10) if rnd.random() < 0.95 else None
            contacts.append(Contact(person=p, tier="close" if rnd.random() < 0.6 else "secondary",
                                    status="located" if located else "identified", region_code=p.grid.code,
                                    queue_region_code=p.grid.code[:9], first_identified_at=ident, located_at=located,
                                    created_at=ident, updated_at=ident))
        Contact.objects.bulk_create(contacts, batch_size=5000)
        batches, members, events, stays, orders = [], [], [], [], []
        grouped = [k for k in contacts if k.located_at and rnd.random() < 0.9]
        for j in range(0, len(grouped), 10):
            chunk = grouped[j:j + 10]
            at = when(max(k.located_at for k in chunk), 0.2, 6)
            if at is None:
                continue
            home = chunk[0].tier == "secondary" and rnd.random() < 0.5
            batches.append((TransferBatch(ref=f"TB{j:07d}", region_code=chunk[0].region_code, pickup_lon=121.8,
                                          pickup_lat=29.9, destination_type="home" if home else "central",
                                          facility=None if home else hotel, size=len(chunk), created_at=at,
                                          updated_at=at), chunk, at, home))
        TransferBatch.objects.bulk_create([b for b, *_ in batches], batch_size=5000)
        for b, chunk, at, home in batches:
            started_at = None if home else when(at, 0.5, 8)
            arrived = when(started_at, 0.5, 3) if started_at else None
            for k in chunk:
                members.append(BatchMember(batch=b, person_id=k.person_id, contact=k, role=k.tier,
                                           region_code=k.region_code, arrived_at=arrived))
                if started_at:
                    events.append(DomainEvent(type="isolation.transfer_started", subject_type="people.person",
                                              subject_id=str(k.person_id), region_code=k.region_code,
                                              occurred_at=started_at, recorded_at=started_at, payload={}))
                if arrived:
                    events.append(DomainEvent(type="isolation.arrived", subject_type="people.person",
                                              subject_id=str(k.person_id), region_code=k.region_code,
                                              occurred_at=arrived, recorded_at=arrived, payload={}))
                    checked = when(arrived, 0.1, 2)
                    if checked:
                        stays.append(RoomStay(room=room, person_id=k.person_id, tier=k.tier,
                                              region_code=k.region_code, reserved_at=arrived, checked_in_at=checked,
                                              checked_out_at=checked))  # closed stays: one open per person rule
                if home:
                    orders.append(IsolationOrder(person_id=k.person_id, tier=k.tier, mode="home_quarantine",
                                                 status="released", region_code=k.region_code,
                                                 counted_from=at.date(), starts_on=at.date(), ends_on=at.date(),
                                                 created_at=at, updated_at=at))
        BatchMember.objects.bulk_create(members, batch_size=5000)
        DomainEvent.objects.bulk_create(events, batch_size=5000)
        RoomStay.objects.bulk_create(stays, batch_size=5000)
        IsolationOrder.objects.bulk_create(orders, batch_size=5000)
    from django.db import connection

    with connection.cursor() as cur:  # statistics as autovacuum would have them on a live system
        cur.execute("ANALYZE")
    profile_install_builtin()
    profile_activate(profile=profile_get(code="cn-9th-2022"), region=district, actor=None, reason="bench",
                     at=NOW - dt.timedelta(days=30))
    return {"cases": len(cases), "contacts": len(contacts), "batch_members": len(members), "events": len(events),
            "room_stays": len(stays), "build_seconds": round(time.perf_counter() - started, 2)}


def _times(fn, runs: int) -> list[float]:
    fn()  # warm
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def _p95(values: list[float]) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))], 2)


def measure(runs: int) -> dict:
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from jingkong.access.models import User
    from jingkong.analytics.clock import LOOKBACK_DAYS, WINDOW_DAYS
    from jingkong.core import clock
    from jingkong.geo.models import Region

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    user = User.objects.create_user(username="commander", password="pw-bench-123456", role="commander",
                                    region=Region.objects.get(code="330206"))
    client = Client()
    client.force_login(user)
    since = connection.ops.adapt_datetimefield_value(NOW - dt.timedelta(days=WINDOW_DAYS + LOOKBACK_DAYS))

    def summary():
        r = client.get("/api/v1/isolation/clock/summary")
        assert r.status_code == 200, r.content[:300]
        body = r.json()
        assert len(body["by_region"]) == 10 and body["stages"][2]["n"] > 0

    def baseline():
        with connection.cursor() as cur:
            cur.execute("SELECT (SELECT COUNT(*) FROM tracing_case WHERE region_code LIKE %s AND created_at >= %s)"
                        " + (SELECT COUNT(*) FROM tracing_contact WHERE region_code LIKE %s"
                        " AND first_identified_at >= %s)", ["330206%", since, "330206%", since])
            assert cur.fetchone()[0] > 0

    from jingkong.analytics.clock import cache_clear

    def summary_cold():
        cache_clear()
        summary()

    with clock.frozen(NOW):
        cold = _times(summary_cold, max(3, runs // 4))
        s = _times(summary, runs)
        b = _times(baseline, runs)
    out = {"summary_p95_ms": _p95(s), "summary_median_ms": round(statistics.median(s), 2),
           "summary_cold_p95_ms": _p95(cold), "summary_cold_median_ms": round(statistics.median(cold), 2),
           "baseline_p95_ms": _p95(b), "baseline_median_ms": round(statistics.median(b), 2)}
    out["ratio"] = round(out["summary_p95_ms"] / max(out["baseline_p95_ms"], 1e-3), 1)
    out["ratio_cold"] = round(out["summary_cold_p95_ms"] / max(out["baseline_p95_ms"], 1e-3), 1)
    out["target_p95_ms"] = TARGET_P95_MS
    out["ok"] = out["summary_p95_ms"] <= TARGET_P95_MS
    out["cold_ok"] = out["summary_cold_p95_ms"] <= TARGET_P95_MS
    out["load_average"] = os.getloadavg()[0]
    return out


def worker(args) -> None:
    _setup(args.db_url, args.data_dir)
    built = build(args.cases // (10 if args.quick else 1), args.contacts // (10 if args.quick else 1))
    print(json.dumps(built | measure(args.runs)))


def _pg_urls(base: str) -> tuple[str, str]:
    parsed = urlparse(base if base.startswith("postgres") else DEFAULT_PG)
    admin = urlunparse(parsed._replace(path="/postgres", scheme="postgresql"))
    return admin, urlunparse(parsed._replace(path="/" + PG_NAME))


def run(kind: str, args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "sqlite":
            url = f"sqlite:///{tmp}/bench_clock.sqlite3"
        else:
            import psycopg

            admin, url = _pg_urls(args.database_url or os.environ.get("DATABASE_URL", ""))
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{PG_NAME}"')
        try:
            cmd = [sys.executable, __file__, "--worker", "--db-url", url, "--data-dir", tmp, "--runs", str(args.runs),
                   "--cases", str(args.cases), "--contacts", str(args.contacts)]
            if args.quick:
                cmd.append("--quick")
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            if out.returncode != 0:
                return {"database": kind, "error": out.stderr[-3000:]}
            return {"database": kind, **json.loads(out.stdout.strip().splitlines()[-1])}
        finally:
            if kind != "sqlite":
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)')


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a tenth of the data (smoke run)")
    p.add_argument("--databases", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    p.add_argument("--database-url", default="", help="PostgreSQL server to create the benchmark database on")
    p.add_argument("--cases", type=int, default=10_000)
    p.add_argument("--contacts", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--db-url", default="", help=argparse.SUPPRESS)
    p.add_argument("--data-dir", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    results = [run(kind.strip(), args) for kind in args.databases.split(",") if kind.strip()]
    print(json.dumps({"benchmark": "clock", "quick": args.quick, "results": results}, indent=2))


if __name__ == "__main__":
    main()
