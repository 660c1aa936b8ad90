"""Benchmark of the services area (issue 7, 暖服务): 10,000 open service requests across 2,000 grids.

Targets (the issue's quality figures applied to service requests): a field worker's own request list ≤ 100 ms; the
district counts (by street, category and status, the drill-down root) ≤ 1 s.

The dataset: a district of 10 streets × 20 communities × 10 grids (2,000 grids), one grid worker per grid, 10,000
residents (5 per grid, a third in a vulnerable group) and one open request each (written with ``bulk_create``: the
rows ``request_submit`` would write, statuses and categories mixed, some overdue); the policy profiles installed and
in force; a few depots with stock.

Timed in the same run, on the same data (medians over ``--runs``):

* ``worker_list_ms``: ``GET /api/v1/command/services/mine`` by a grid worker (auth, scope, query, history rows and
  serialisation; ~5 requests);
* ``queue_page_ms``: ``GET /api/v1/command/services/requests?open=true`` by a street officer (first page of 50 of
  ~1,000, most urgent first);
* ``counts_ms``: ``selectors_services.request_counts`` for the whole district (``GET …/services/counts``);
* ``submit_ms``: ``requests.request_submit`` of one new request (triage from the profile, routing, history, audit,
  events, escort task for a dialysis request);
* ``movement_ms``: ``supplies.movement_record`` (a consumption, idempotency key, low-stock check);
* ``baseline_http_ms``: ``GET /api/v1/access/me`` by the same workers (the cost of a signed-in API call: session,
  user, guard, JSON), to tell the platform's per-request overhead from the list's own work;
* ``baseline_*_ms``: a bare ``SELECT … WHERE assignee_id = %s ORDER BY priority, deadline`` (list) and a bare
  ``COUNT(*) … GROUP BY substr(region_code, 1, 9)`` (counts); ``ratio_*`` compares with them.

    .venv/bin/python benchmarks/bench_services.py --quick           # 200 grids, 1,000 requests, both databases
    .venv/bin/python benchmarks/bench_services.py                   # 2,000 grids, 10,000 requests
    .venv/bin/python benchmarks/bench_services.py --databases sqlite

Each database runs in its own process: a SQLite file in a temporary directory, and a PostgreSQL database
``jk_bench_services`` created on the server of ``--database-url`` (default DATABASE_URL or
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
PG_NAME = "jk_bench_services"
T0 = dt.datetime(2022, 1, 10, 0, 0, tzinfo=dt.UTC)
TARGET_LIST_MS = 100.0
TARGET_COUNTS_MS = 1000.0
PER_GRID = 5


def _setup(db_url: str, data_dir: str) -> None:
    os.environ["DATABASE_URL"] = db_url
    os.environ["JINGKONG_DATA_DIR"] = data_dir
    os.environ.pop("JINGKONG_DEBUG", None)
    os.environ["JINGKONG_DEMO"] = "1"
    os.environ["DJANGO_SETTINGS_MODULE"] = "jingkong.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def build(streets: int, communities: int, grids: int) -> dict:
    from django.core.management import call_command
    from django.db import transaction

    from jingkong.command.models import Depot, FieldWorker, ServiceRequest, ServiceUpdate, StockLevel, SupplyItem
    from jingkong.geo.models import Building, Region
    from jingkong.people.models import Person
    from jingkong.policy.selectors import profile_get
    from jingkong.policy.services import profile_activate, profile_install_builtin

    call_command("migrate", verbosity=0)
    rnd = random.Random(5)
    started = time.perf_counter()
    with transaction.atomic():
        district = Region.objects.create(code="330206", name="北仑区", level="district")
        street_rows = Region.objects.bulk_create([
            Region(code=f"330206{s:03d}", name=f"街道{s}", level="street", parent=district)
            for s in range(1, streets + 1)])
        community_rows = Region.objects.bulk_create([
            Region(code=f"{st.code}{c:03d}", name=f"社区{c}", level="community", parent=st)
            for st in street_rows for c in range(1, communities + 1)])
        grid_rows = Region.objects.bulk_create([
            Region(code=f"{cm.code}{g:03d}", name=f"网格{g}", level="grid", parent=cm)
            for cm in community_rows for g in range(1, grids + 1)])
        buildings = Building.objects.bulk_create([Building(code=f"B{g.code}", grid=g, address=f"{g.name}1号楼",
                                                           lon=121.8, lat=29.9) for g in grid_rows])
        workers = FieldWorker.objects.bulk_create([
            FieldWorker(name=f"网格员{i}", role="grid_worker", region_code=g.code, phone="13900000000")
            for i, g in enumerate(grid_rows)])
        persons = Person.objects.bulk_create([
            Person(id_hash=f"bench{gi:05d}{k}".ljust(32, "0"), id_masked="330206********0000", name=f"居民{gi}-{k}",
                   sex="F", birth_date=dt.date(1950, 1, 1), phone=f"138{gi:05d}{k:03d}", grid=g, building=b,
                   vulnerable=rnd.choice([0, 0, 1, 4, 8]), created_at=T0, updated_at=T0)
            for gi, (g, b) in enumerate(zip(grid_rows, buildings, strict=True)) for k in range(PER_GRID)])
        worker_of = {w.region_code: w for w in workers}
        cats = ["food", "medicine", "garbage", "medical_visit", "psychological", "other"]
        reqs = ServiceRequest.objects.bulk_create([
            ServiceRequest(ref=f"FWBENCH-{i:06d}", person=p, category=rnd.choice(cats), region_code=p.grid.code,
                           vulnerable=p.vulnerable, priority=rnd.randint(1, 7),
                           deadline=T0 + dt.timedelta(hours=rnd.choice([-2, 4, 12, 24, 48])),
                           status=rnd.choice(["assigned", "assigned", "in_progress", "submitted"]),
                           assignee=worker_of[p.grid.code], submitted_at=T0, contact_phone=p.phone)
            for i, p in enumerate(persons)], batch_size=2000)
        ServiceUpdate.objects.bulk_create([ServiceUpdate(request=r, at=T0, status="submitted") for r in reqs],
                                          batch_size=2000)
        kit = SupplyItem.objects.create(code="KIT", name="抗原试剂盒", category="test_kit", unit="盒")
        for st in street_rows:
            depot = Depot.objects.create(code=f"D{st.code}", name=f"{st.name}仓", region_code=st.code)
            StockLevel.objects.create(depot=depot, item=kit, quantity=10_000_000, low_threshold=100, updated_at=T0)
    profile_install_builtin()
    profile_activate(profile=profile_get(code="cn-8th-2021"), region=district, actor=None, reason="bench",
                     at=T0 - dt.timedelta(days=1))
    return {"grids": len(grid_rows), "requests": len(reqs), "build_seconds": round(time.perf_counter() - started, 2)}


def _median_ms(fn, runs: int) -> float:
    fn()  # warm
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times), 2)


def measure(runs: int) -> dict:
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from jingkong.access.guard import EVERYTHING
    from jingkong.access.models import User
    from jingkong.command import requests as svc
    from jingkong.command import selectors_services as sel
    from jingkong.command import supplies
    from jingkong.command.models import Depot, FieldWorker, ServiceRequest, SupplyItem
    from jingkong.core import clock
    from jingkong.geo.models import Region
    from jingkong.people.models import Person

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    rnd = random.Random(11)
    workers = rnd.sample(list(FieldWorker.objects.all()), 20)
    clients = []
    for w in workers:
        user = User.objects.create_user(username=f"gw{w.pk}", password="pw-bench-123456", role="grid_worker",
                                        region=Region.objects.get(code=w.region_code))
        w.user = user
        w.save(update_fields=["user"])
        c = Client()
        c.force_login(user)
        clients.append((c, w))
    officer = User.objects.create_user(username="officer", password="pw-bench-123456", role="street_officer",
                                       region=Region.objects.get(code="330206001"))
    officer_client = Client()
    officer_client.force_login(officer)
    persons = list(Person.objects.order_by("pk")[:2000])
    depot = Depot.objects.order_by("pk").first()
    kit = SupplyItem.objects.get(code="KIT")
    total = ServiceRequest.objects.count()
    now = T0 + dt.timedelta(hours=3)
    i = {"n": 0}

    def nxt():
        i["n"] += 1
        return i["n"]

    def worker_list():
        c, _ = clients[nxt() % len(clients)]
        r = c.get("/api/v1/command/services/mine")
        assert r.status_code == 200 and len(r.json()) >= 1, r.content[:200]

    def queue_page():
        r = officer_client.get("/api/v1/command/services/requests?open=true")
        assert r.status_code == 200 and r.json()["count"] >= 1, r.content[:200]

    def counts():
        data = sel.request_counts(scope=EVERYTHING, region="330206", now=now)
        assert data["total"] >= total and sum(r["count"] for r in data["by_region"]) == data["total"]

    def submit():
        n = nxt()
        person = persons[n % len(persons)]
        svc.request_submit(person=person, category="medical_visit", subcategory="dialysis", client_key=f"b{n}")

    def movement():
        supplies.movement_record(actor=None, scope=EVERYTHING, depot=depot, item=kit, kind="consumption", quantity=1,
                                 client_key=f"m{nxt()}")

    def baseline_list():
        _, w = clients[nxt() % len(clients)]
        with connection.cursor() as cur:
            cur.execute("SELECT id, ref, deadline, status FROM command_servicerequest WHERE assignee_id = %s "
                        "ORDER BY priority, deadline LIMIT 50", [w.pk])
            assert cur.fetchall()

    def baseline_http():
        c, _ = clients[nxt() % len(clients)]
        assert c.get("/api/v1/access/me").status_code == 200

    def baseline_counts():
        with connection.cursor() as cur:
            cur.execute("SELECT substr(region_code, 1, 9), COUNT(*) FROM command_servicerequest GROUP BY 1")
            assert cur.fetchall()

    with clock.frozen(now):
        out = {
            "worker_list_ms": _median_ms(worker_list, runs),
            "baseline_list_ms": _median_ms(baseline_list, runs),
            "baseline_http_ms": _median_ms(baseline_http, runs),
            "queue_page_ms": _median_ms(queue_page, runs),
            "counts_ms": _median_ms(counts, max(5, runs // 4)),
            "baseline_counts_ms": _median_ms(baseline_counts, max(5, runs // 4)),
            "submit_ms": _median_ms(submit, runs),
            "movement_ms": _median_ms(movement, runs),
        }
    out["ratio_list"] = round(out["worker_list_ms"] / max(out["baseline_list_ms"], 1e-3), 1)
    out["ratio_counts"] = round(out["counts_ms"] / max(out["baseline_counts_ms"], 1e-3), 1)
    out["target_list_ms"], out["target_counts_ms"] = TARGET_LIST_MS, TARGET_COUNTS_MS
    out["list_ok"] = out["worker_list_ms"] <= TARGET_LIST_MS
    out["counts_ok"] = out["counts_ms"] <= TARGET_COUNTS_MS
    return out


def worker(args) -> None:
    _setup(args.db_url, args.data_dir)
    built = build(streets=10, communities=2 if args.quick else 20, grids=10)
    print(json.dumps(built | measure(args.runs)))


def _pg_urls(base: str) -> tuple[str, str]:
    parsed = urlparse(base if base.startswith("postgres") else DEFAULT_PG)
    admin = urlunparse(parsed._replace(path="/postgres", scheme="postgresql"))
    return admin, urlunparse(parsed._replace(path="/" + PG_NAME))


def run(kind: str, args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "sqlite":
            url = f"sqlite:///{tmp}/bench_services.sqlite3"
        else:
            import psycopg

            admin, url = _pg_urls(args.database_url or os.environ.get("DATABASE_URL", ""))
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{PG_NAME}"')
        try:
            cmd = [sys.executable, __file__, "--worker", "--db-url", url, "--data-dir", tmp, "--runs", str(args.runs)]
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
    p.add_argument("--quick", action="store_true", help="200 grids, 1,000 requests (smoke run)")
    p.add_argument("--databases", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    p.add_argument("--database-url", default="", help="PostgreSQL server to create the benchmark database on")
    p.add_argument("--runs", type=int, default=40)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--db-url", default="", help=argparse.SUPPRESS)
    p.add_argument("--data-dir", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    results = [run(kind.strip(), args) for kind in args.databases.split(",") if kind.strip()]
    print(json.dumps({"benchmark": "services", "quick": args.quick, "results": results}, indent=2))


if __name__ == "__main__":
    main()
