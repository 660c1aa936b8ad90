"""Benchmark of the directives area (issue 7): 10,000 open tasks across 2,000 grids.

Targets: a grid worker's task list ≤ 100 ms; the district roll-up (tasks and problems by street) ≤ 1 s.

The dataset, built through the platform's own services: a district of 10 streets × 20 communities × 10 grids
(2,000 grids), one grid worker per grid, the policy profiles installed and in force, one directive to the whole
district (a task per street, community and grid: 2,211 tasks, 2,000 of them grid work items) and four automatic
delivery tasks per grid (``create_auto_tasks``: 8,000), i.e. 10,000 open work items; 1,000 open problems.

Timed in the same run, on the same data (medians over ``--runs``, grids picked at random):

* ``worker_list_ms``: ``GET /api/v1/command/tasks?mine=true&open=true`` by a grid worker (Django test client: auth,
  scope, query, serialisation of the first page of 50);
* ``worker_list_selector_ms``: the selector and the page's rows alone;
* ``rollup_ms``: ``jingkong.command.rollup.rollup`` for the whole district (tasks by street with open / done /
  overdue / escalated / unassigned, and problems) — what ``GET /api/v1/command/rollup`` answers;
* ``baseline_*_ms``: a bare ``COUNT(*) … GROUP BY substr(region_code, 1, 9)`` over the same task rows (roll-up
  baseline), a bare ``SELECT … WHERE assignee_id = %s ORDER BY deadline LIMIT 50`` (list baseline) and
  ``GET /api/v1/access/me`` by the same logged-in client (``baseline_request_ms``: what any authenticated API request
  costs on this machine at this moment); ``ratio_*`` compares each figure with its baseline. Also ``issue_seconds``: issuing the district directive (the cascade).

    .venv/bin/python benchmarks/bench_tasks.py --quick              # 200 grids, 1,000 tasks, both databases
    .venv/bin/python benchmarks/bench_tasks.py                      # 2,000 grids, 10,000 tasks
    .venv/bin/python benchmarks/bench_tasks.py --databases sqlite

Each database runs in its own process: a SQLite file in a temporary directory, and a PostgreSQL database
``jk_bench_tasks`` created on the server of ``--database-url`` (default DATABASE_URL or
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
PG_NAME = "jk_bench_tasks"
T0 = dt.datetime(2022, 1, 10, 0, 0, tzinfo=dt.UTC)
TARGET_LIST_MS = 100.0
TARGET_ROLLUP_MS = 1000.0


def _setup(db_url: str, data_dir: str) -> None:
    os.environ["DATABASE_URL"] = db_url
    os.environ["JINGKONG_DATA_DIR"] = data_dir
    os.environ.pop("JINGKONG_DEBUG", None)
    os.environ["JINGKONG_DEMO"] = "1"
    os.environ["DJANGO_SETTINGS_MODULE"] = "jingkong.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _square(lon: float, lat: float, size: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[lon, lat], [lon + size, lat], [lon + size, lat + size],
                                                [lon, lat + size], [lon, lat]]]}


def build(streets: int, communities: int, grids: int, auto_per_grid: int, problems: int) -> dict:
    from django.core.management import call_command
    from django.db import transaction

    from jingkong.access.guard import EVERYTHING
    from jingkong.command.directives import directive_issue
    from jingkong.command.models import FieldWorker, Problem
    from jingkong.command.tasks import create_auto_tasks
    from jingkong.core import clock
    from jingkong.geo.models import Region
    from jingkong.policy.selectors import profile_get
    from jingkong.policy.services import profile_activate, profile_install_builtin

    call_command("migrate", verbosity=0)
    district = Region.objects.create(code="330206", name="北仑区", level="district")
    street_rows = Region.objects.bulk_create([
        Region(code=f"330206{s:03d}", name=f"街道{s}", level="street", parent=district) for s in range(1, streets + 1)])
    community_rows = Region.objects.bulk_create([
        Region(code=f"{st.code}{c:03d}", name=f"社区{c}", level="community", parent=st)
        for st in street_rows for c in range(1, communities + 1)])
    grid_rows = Region.objects.bulk_create([
        Region(code=f"{cm.code}{g:03d}", name=f"网格{g}", level="grid", parent=cm, geometry=_square(121.8, 29.9, 0.001))
        for cm in community_rows for g in range(1, grids + 1)])
    codes = [g.code for g in grid_rows]
    FieldWorker.objects.bulk_create([FieldWorker(name=f"网格员{i}", role="grid_worker", region_code=code,
                                                 phone="13900000000") for i, code in enumerate(codes)])
    profile_install_builtin()
    profile_activate(profile=profile_get(code="cn-8th-2021"), region=district, actor=None, reason="bench",
                     at=T0 - dt.timedelta(days=1))
    with clock.frozen(T0):
        started = time.perf_counter()
        directive_issue(actor=None, scope=EVERYTHING, title="全员核酸扫楼", text="bench", category="sampling_sweep",
                        region_codes=[district.code], deadline=T0 + dt.timedelta(hours=12))
        issue_seconds = time.perf_counter() - started
        started = time.perf_counter()
        create_auto_tasks("deliver", [{"source_key": f"bench:{code}:{k}", "region_code": code,
                                       "title": "送物资", "target_count": 5}
                                      for code in codes for k in range(auto_per_grid)])
        auto_seconds = time.perf_counter() - started
        rnd = random.Random(7)
        with transaction.atomic():
            Problem.objects.bulk_create([
                Problem(ref=f"WT-BENCH-{i:06d}", category=rnd.choice(["other", "queue_too_long", "supply_shortage"]),
                        description="bench", urgency=rnd.choice(["normal", "urgent"]), region_code=code,
                        responsible_code=code, deadline=T0 + dt.timedelta(hours=rnd.choice([-3, 4, 24])),
                        reported_at=T0) for i, code in enumerate(rnd.choices(codes, k=problems))])
    return {"grids": len(codes), "issue_seconds": round(issue_seconds, 3),
            "auto_tasks_seconds": round(auto_seconds, 3)}


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

    from jingkong.access.guard import EVERYTHING, Scope
    from jingkong.access.models import User
    from jingkong.command import rollup, rules, selectors
    from jingkong.command.models import FieldWorker, Task
    from jingkong.command.schemas_directives import task_out
    from jingkong.core import clock
    from jingkong.geo.models import Region

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]  # the test client's host
    rnd = random.Random(11)
    workers = list(FieldWorker.objects.order_by("?")[:20]) if connection.vendor != "sqlite" else \
        rnd.sample(list(FieldWorker.objects.all()), 20)
    clients = []
    for w in workers:
        user = User.objects.create_user(username=f"gw{w.pk}", password="pw-bench-123456", role="grid_worker",
                                        region=Region.objects.get(code=w.region_code))
        w.user = user
        w.save(update_fields=["user"])
        c = Client()
        c.force_login(user)
        clients.append((c, user, w))
    open_items = Task.objects.filter(status__in=rules.OPEN_TASK).exclude(
        pk__in=Task.objects.filter(parent__isnull=False).values("parent_id")).count()
    now = T0 + dt.timedelta(hours=3)
    i = {"n": 0}

    def pick():
        i["n"] += 1
        return clients[i["n"] % len(clients)]

    def api_list():
        c, _, _ = pick()
        r = c.get("/api/v1/command/tasks?mine=true&open=true")
        assert r.status_code == 200 and r.json()["count"] >= 1, r.content[:200]

    def me_request():
        c, _, _ = pick()
        r = c.get("/api/v1/access/me")
        assert r.status_code == 200

    def selector_list():
        _, user, w = pick()
        qs = selectors.task_list(scope=Scope(w.region_code), user=user, open_only=True, mine=True)
        rows = [task_out(t, now=now) for t in qs[:50]]
        assert rows and qs.count() >= 1

    def baseline_list():
        _, _, w = pick()
        with connection.cursor() as cur:
            cur.execute("SELECT id, title, deadline, status FROM command_task WHERE assignee_id = %s "
                        "ORDER BY deadline LIMIT 50", [w.pk])
            assert cur.fetchall()

    def do_rollup():
        data = rollup.rollup(scope=EVERYTHING, now=now)
        assert data["totals"]["tasks"] == open_items

    def baseline_rollup():
        with connection.cursor() as cur:
            cur.execute("SELECT substr(region_code, 1, 9), COUNT(*) FROM command_task GROUP BY 1")
            assert cur.fetchall()
            cur.execute("SELECT substr(region_code, 1, 9), COUNT(*) FROM command_problem GROUP BY 1")
            cur.fetchall()

    with clock.frozen(now):
        out = {
            "open_work_items": open_items,
            "worker_list_ms": _median_ms(api_list, runs),
            "worker_list_selector_ms": _median_ms(selector_list, runs),
            "baseline_list_ms": _median_ms(baseline_list, runs),
            "baseline_request_ms": _median_ms(me_request, runs),
            "rollup_ms": _median_ms(do_rollup, max(3, runs // 4)),
            "baseline_rollup_ms": _median_ms(baseline_rollup, max(3, runs // 4)),
        }
    out["ratio_list"] = round(out["worker_list_ms"] / max(out["baseline_list_ms"], 1e-3), 1)
    out["ratio_list_to_request"] = round(out["worker_list_ms"] / max(out["baseline_request_ms"], 1e-3), 2)
    out["ratio_rollup"] = round(out["rollup_ms"] / max(out["baseline_rollup_ms"], 1e-3), 1)
    out["target_list_ms"], out["target_rollup_ms"] = TARGET_LIST_MS, TARGET_ROLLUP_MS
    out["list_ok"] = out["worker_list_ms"] <= TARGET_LIST_MS
    out["rollup_ok"] = out["rollup_ms"] <= TARGET_ROLLUP_MS
    return out


def worker(args) -> None:
    _setup(args.db_url, args.data_dir)
    grids = 10 if args.quick else 10
    communities = 2 if args.quick else 20
    built = build(streets=10, communities=communities, grids=grids, auto_per_grid=4,
                  problems=100 if args.quick else 1000)
    result = measure(args.runs)
    print(json.dumps(built | result))


def _pg_urls(base: str) -> tuple[str, str]:
    parsed = urlparse(base if base.startswith("postgres") else DEFAULT_PG)
    admin = urlunparse(parsed._replace(path="/postgres", scheme="postgresql"))
    return admin, urlunparse(parsed._replace(path="/" + PG_NAME))


def run(kind: str, args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "sqlite":
            url = f"sqlite:///{tmp}/bench_tasks.sqlite3"
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
    p.add_argument("--quick", action="store_true", help="200 grids, 1,000 tasks (smoke run)")
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
    print(json.dumps({"benchmark": "tasks", "quick": args.quick, "results": results}, indent=2))


if __name__ == "__main__":
    main()
