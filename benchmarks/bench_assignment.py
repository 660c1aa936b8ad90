"""Benchmark: room assignment of arrivals at a quarantine site (jingkong.isolation.facilities.assign).

Per database (SQLite and PostgreSQL, each a scratch database), on the same generated arrivals:

* setup (not timed): a district, one quarantine hotel of ``--floors`` floors (singles, family rooms of 3–4 beds and
  accessible rooms, ~10 % more beds than arrivals) and ``--arrivals`` people: 80 % close and 20 % secondary
  contacts, a fifth of them in households of 2–4, 3 % with limited mobility; the 2021 profile in force;
* ``service``: :func:`facilities.assign` of all arrivals, checked in — the facility lock, the reads (people, open
  stays, free rooms, floor tiers), the rules (families together, accessible rooms, no mixing of tiers on a floor),
  ``RoomStay`` bulk insert, one ``UPDATE`` of room states, audit rows, one event per person, the reserve alert check,
  in one transaction. Target: 5,000 arrivals in ≤ 5 s;
* ``rules``: the pure rules alone (:func:`assignment.assign`) on the same rows;
* ``baseline``: a naive first-fit in the same run (:func:`assignment.first_fit`: each person takes the first
  suitable free room scanning the room list from the start; no families, no floors);
* ``ratio_to_baseline`` = baseline seconds / rules seconds (how much faster the real rules are than the naive scan).

    .venv/bin/python benchmarks/bench_assignment.py            # 5,000 arrivals, both databases
    .venv/bin/python benchmarks/bench_assignment.py --quick    # 500 arrivals (smoke run)

Prints JSON. PostgreSQL: a database ``jk_bench_assign_<pid>`` on the server of DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/test), dropped afterwards.
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
T0 = dt.datetime(2022, 1, 3, 2, 0, tzinfo=dt.UTC)
TARGET_SECONDS = 5.0


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _setup(arrivals: int, floors: int, seed: int):
    from jingkong.core import clock
    from jingkong.geo.models import Building, Region
    from jingkong.isolation.models import Facility, Room
    from jingkong.people.models import Household, Person
    from jingkong.policy.models import PolicyProfile
    from jingkong.policy.selectors import active_profile_cache_clear
    from jingkong.policy.services import profile_activate, profile_install_builtin

    rng = random.Random(seed)
    now = clock.now()
    district = Region.objects.create(code="330206", name="北仑区", level="district")
    street = Region.objects.create(code="330206002", name="新碶街道", level="street", parent=district)
    community = Region.objects.create(code="330206002001", name="一社区", level="community", parent=street)
    grid = Region.objects.create(code="330206002001001", name="第一网格", level="grid", parent=community)
    building = Building.objects.create(code="B-1", grid=grid, lon=121.8, lat=29.9)
    profile_install_builtin()
    profile_activate(profile=PolicyProfile.objects.filter(code="cn-8th-2021").order_by("-version").first(),
                     region=district, actor=None, reason="bench", at=dt.datetime(2021, 12, 1, tzinfo=dt.UTC))
    active_profile_cache_clear()
    # People: a fifth in households of 2–4.
    people, households, tiers = [], [], {}
    n = 0
    while n < arrivals:
        size = rng.choice([2, 2, 3, 3, 4]) if rng.random() < 0.08 else 1
        size = min(size, arrivals - n)
        hh = None
        if size > 1:
            hh = Household(code=f"H{n}", building=building, grid=grid)
            households.append(hh)
        tier = "close" if rng.random() < 0.8 else "secondary"
        for _ in range(size):
            people.append((Person(id_hash=f"bench-assign-{n:050d}", id_masked="3302**********0000", name=f"P{n}",
                                  sex="M", birth_date=dt.date(1980, 1, 1), grid=grid, building=building,
                                  vulnerable=16 if rng.random() < 0.03 else 0, created_at=now, updated_at=now), hh,
                           tier))
            n += 1
    Household.objects.bulk_create(households, batch_size=2000)
    for p, hh, _tier in people:
        p.household = hh
    Person.objects.bulk_create([p for p, _hh, _t in people], batch_size=2000)
    ids = list(Person.objects.order_by("pk").values_list("pk", flat=True))
    for pid, (_p, _hh, tier) in zip(ids, people, strict=True):
        tiers[pid] = tier
    facility = Facility.objects.create(code="HOTEL-BENCH", name="bench", kind="quarantine_hotel",
                                       region_code=street.code, lon=121.8, lat=29.9)
    beds_needed = int(arrivals * 1.1)
    per_floor = max(4, beds_needed // floors)
    rooms = []
    for floor in range(1, floors + 1):
        for i in range(per_floor):
            kind, beds = "single", 1
            if i % 12 == 0:
                kind, beds = "family", rng.choice([3, 4])
            elif i % 25 == 1:
                kind = "accessible"
            rooms.append(Room(facility=facility, number=f"{floor}{i:03d}", floor=floor, kind=kind, beds=beds,
                              state="free", state_since=now))
    Room.objects.bulk_create(rooms, batch_size=2000)
    return facility, ids, tiers


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
    from jingkong.isolation import assignment, facilities
    from jingkong.isolation.models import Room, RoomStay
    from jingkong.people.models import Person

    call_command("migrate", verbosity=0)
    with clock.frozen(T0):
        setup_s, (facility, ids, tiers) = _timed(lambda: _setup(args.arrivals, args.floors, args.seed))
    if connection.vendor == "postgresql":
        with connection.cursor() as c:
            c.execute("ANALYZE")
    # The pure rules and the naive baseline on the same rows (read once, outside the timing).
    persons = {pid: (hh, vul) for pid, hh, vul in Person.objects.values_list("pk", "household_id", "vulnerable")}
    arrivals = [assignment.Arrival(person_id=pid, tier=tiers[pid], household_id=persons[pid][0],
                                   needs_accessible=bool(persons[pid][1] & 16)) for pid in ids]
    rooms = [assignment.FreeRoom(room_id=r, floor=f, kind=k, beds=b, number=n) for r, f, k, b, n in
             Room.objects.filter(facility=facility).values_list("pk", "floor", "kind", "beds", "number")]
    rules_s, result = _timed(lambda: assignment.assign(arrivals, rooms, hospital=False, mixing_forbidden=True))
    baseline_s, naive = _timed(lambda: assignment.first_fit(arrivals, rooms))
    with clock.frozen(T0 + dt.timedelta(hours=1)):
        service_s, report = _timed(lambda: facilities.assign(facility=facility, person_ids=ids, check_in=True,
                                                             tiers=tiers))
    stays = RoomStay.objects.filter(checked_out_at__isnull=True).count()
    assert stays == len(report.assigned), (stays, len(report.assigned))
    return {
        "database": connection.vendor, "arrivals": len(ids), "rooms": len(rooms),
        "beds": sum(r.beds for r in rooms), "floors": args.floors, "setup_seconds": round(setup_s, 1),
        "service_seconds": round(service_s, 3), "target_seconds": TARGET_SECONDS * len(ids) / 5000,
        "meets_target": service_s <= TARGET_SECONDS * len(ids) / 5000,
        "arrivals_per_s": round(len(ids) / service_s),
        "rules_seconds": round(rules_s, 4), "baseline_first_fit_seconds": round(baseline_s, 3),
        "ratio_to_baseline": round(baseline_s / rules_s, 1) if rules_s else None,
        "assigned": len(report.assigned), "unassigned": len(report.unassigned),
        "unassigned_reasons": _count(report.unassigned.values()), "split_families": _count(
            f for f in report.flags.values() if f == "split"),
        "rules_assigned": len(result.rooms), "baseline_assigned": len(naive),
    }


def _count(values) -> dict:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def run_database(kind: str, args) -> dict:
    with tempfile.TemporaryDirectory(prefix="jk_bench_") as tmp:
        if kind == "sqlite":
            return _spawn(f"sqlite:///{tmp}/bench.sqlite3", tmp, args)
        base = os.environ.get("DATABASE_URL", "")
        base = base if base.startswith("postgres") else DEFAULT_PG
        name = f"jk_bench_assign_{os.getpid()}"
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
    cmd = [sys.executable, __file__, "--worker", "--db-url", url, "--arrivals", str(args.arrivals), "--floors",
           str(args.floors), "--seed", str(args.seed)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
    if out.returncode != 0:
        return {"database": url.split(":")[0], "error": out.stderr[-3000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arrivals", type=int, default=5_000)
    p.add_argument("--floors", type=int, default=30)
    p.add_argument("--seed", type=int, default=20220103)
    p.add_argument("--quick", action="store_true", help="500 arrivals (a smoke run)")
    p.add_argument("--databases", default="sqlite,postgresql")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--db-url", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.arrivals, args.floors = 500, 6
    if args.worker:
        print(json.dumps(worker(args)))
        return
    kinds = [kind.strip() for kind in args.databases.split(",") if kind.strip()]
    results = [run_database(kind, args) for kind in kinds]
    print(json.dumps({"benchmark": "room assignment of arrivals", "arrivals": args.arrivals,
                      "target": f"{TARGET_SECONDS:g} s for 5,000 arrivals", "results": results}, indent=2))


if __name__ == "__main__":
    main()
