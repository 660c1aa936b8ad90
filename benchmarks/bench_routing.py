"""Benchmark: planning the transfer of 2,000 people with 100 vehicles (jingkong.isolation.routing) in ≤ 30 s.

A synthetic outbreak shaped like Beilun: ``--people`` located contacts and cases living in households (1–5 people) in
buildings clustered around a few outbreak centres; 75 % close contacts, 20 % secondary contacts, 5 % cases, 8 % of
people vulnerable (2 % in a wheelchair); transfer deadlines 8 h (close), 12 h (secondary), 2 h (cases) from now minus
up to 4 h already spent waiting. They are grouped with the platform's own rules (jingkong.isolation.grouping: by
building, tiers apart, households whole, at most 40 per batch). ``--vehicles`` vehicles at 5 depots: buses (40
seats), minibuses (14; one in four accessible), cars (4) and negative-pressure ambulances (2, accessible). Facilities: 12 quarantine hotels and
3 designated hospitals with enough beds. Distances great-circle × 1.35, 30 km/h, 10 min per pickup, 15 per drop-off.

Timed in the same run:

* ``greedy``: the baseline — each vehicle takes the nearest batch that fits (same tier), then drops off in
  nearest-neighbour order (what the solver starts from);
* ``ortools``: :func:`routing.plan` — capacitated pickup-and-delivery with soft time windows, guided local search from
  the greedy plan, with a search time limit (``--time-limit``) so the whole plan returns within the target.

Quality is reported beside speed: people served, batches late and the total lateness, kilometres driven.

    .venv/bin/python benchmarks/bench_routing.py            # 2,000 people, 100 vehicles, 25 s search limit
    .venv/bin/python benchmarks/bench_routing.py --quick    # 200 people, 10 vehicles, 3 s (smoke run)
    .venv/bin/python benchmarks/bench_routing.py --service  # also the whole path on a fresh SQLite database:
        # grouping the located contacts (batches, events, contacts handed over) and planning + writing the runs
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jingkong.isolation import grouping, routing  # noqa: E402

NOW = dt.datetime(2022, 1, 5, 4, 0, tzinfo=dt.UTC)
TARGET_S = 30.0


def make_instance(people: int, vehicles: int, seed: int):
    rng = np.random.default_rng(seed)
    centres = rng.uniform([121.75, 29.82], [122.00, 29.95], size=(6, 2))
    n_buildings = max(10, people // 6)
    which = rng.choice(len(centres), size=n_buildings)
    bpts = centres[which] + rng.normal(0, 0.012, size=(n_buildings, 2))
    candidates = []
    pid = hh = 0
    deadlines = {"close": 8, "secondary": 12, "case": 2}
    while pid < people:
        hh += 1
        size = int(min(people - pid, rng.choice([1, 2, 3, 3, 4, 5])))
        b = int(rng.integers(n_buildings))
        role = str(rng.choice(["close", "secondary", "case"], p=[0.75, 0.20, 0.05]))
        waited = float(rng.uniform(0, 4))
        due = NOW + dt.timedelta(hours=deadlines[role] - waited)
        for _ in range(size):
            pid += 1
            r = rng.random()
            vul = grouping.LIMITED_MOBILITY if r < 0.02 else (grouping.ELDERLY if r < 0.08 else 0)
            candidates.append(grouping.Candidate(
                person_id=pid, role=role, region_code="330206002001001", household_id=hh, building_id=b,
                lon=float(bpts[b, 0]), lat=float(bpts[b, 1]), vulnerable=vul, age=70 if vul else 35, due_at=due))
    groups, _ = grouping.group(candidates, destinations={"case": "hospital", "close": "central",
                                                         "secondary": "separate_site"}, max_size=40)
    batches = [routing.BatchIn(id=i + 1, size=g.size, lon=g.lon, lat=g.lat, destination=g.destination,
                               priority=g.priority, due_s=int((g.due_at - NOW).total_seconds()),
                               accessible=g.needs_accessible, group=g.role) for i, g in enumerate(groups)]
    depots = rng.uniform([121.75, 29.82], [122.00, 29.95], size=(5, 2))
    kinds = [(40, False)] * 3 + [(14, False)] * 3 + [(14, True)] + [(4, False)] * 2 + [(2, True)]
    vs = []
    for i in range(vehicles):
        seats, accessible = kinds[i % len(kinds)]
        d = depots[i % len(depots)]
        vs.append(routing.VehicleIn(id=i + 1, seats=seats, lon=float(d[0]), lat=float(d[1]), accessible=accessible))
    fpts = rng.uniform([121.72, 29.80], [122.03, 29.97], size=(15, 2))
    facilities = [routing.FacilityIn(id=100 + j, lon=float(fpts[j, 0]), lat=float(fpts[j, 1]),
                                     destinations=("central", "separate_site") if j < 12 else ("hospital",),
                                     free=max(50, int(people * 0.15)) if j < 12 else max(20, int(people * 0.05)))
                  for j in range(15)]
    return vs, batches, facilities


def _summary(out: routing.PlanOut, batches) -> dict:
    size = {b.id: b.size for b in batches}
    served = {s.batch_id for r in out.routes for s in r.stops}
    return {"seconds": out.seconds, "people_served": sum(size[b] for b in served), "batches_served": len(served),
            "batches_late": out.late, "lateness_h": round(out.late_s / 3600, 1), "km": round(out.distance_m / 1000, 1),
            "runs": len(out.routes), "solver": out.solver}


def service_path(people: int, vehicles: int, seed: int, time_limit: float) -> dict:
    """Grouping and planning through the services on a fresh SQLite database in a temporary directory."""
    import tempfile

    tmp = tempfile.mkdtemp(prefix="bench_routing_")
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/db.sqlite3"
    os.environ["JINGKONG_DATA_DIR"] = tmp
    os.environ.pop("JINGKONG_DEBUG", None)
    os.environ["JINGKONG_DEMO"] = "1"
    os.environ["DJANGO_SETTINGS_MODULE"] = "jingkong.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from jingkong.access.guard import Scope
    from jingkong.core import clock
    from jingkong.geo.models import Building, Region
    from jingkong.isolation import transfers
    from jingkong.isolation.grouping import group_waiting
    from jingkong.isolation.models import Facility, Room, Vehicle
    from jingkong.people.models import Household, Person
    from jingkong.policy.models import PolicyProfile
    from jingkong.policy.services import profile_activate, profile_install_builtin
    from jingkong.tracing.models import Contact

    vs, batches, facilities = make_instance(people, vehicles, seed)
    rng = np.random.default_rng(seed)
    with clock.frozen(NOW):
        district = Region.objects.create(code="330206", name="北仑区", level="district")
        street = Region.objects.create(code="330206002", name="新碶街道", level="street", parent=district)
        community = Region.objects.create(code="330206002001", name="社区", level="community", parent=street)
        grid = Region.objects.create(code="330206002001001", name="网格", level="grid", parent=community)
        profile_install_builtin()
        profile_activate(profile=PolicyProfile.objects.filter(code="cn-8th-2021").order_by("-version").first(),
                         region=district, actor=None, reason="bench", at=NOW - dt.timedelta(days=30))
        n_buildings = max(10, people // 6)
        centres = rng.uniform([121.75, 29.82], [122.00, 29.95], size=(6, 2))
        pts = centres[rng.choice(6, size=n_buildings)] + rng.normal(0, 0.012, size=(n_buildings, 2))
        Building.objects.bulk_create([Building(code=f"B{i}", grid=grid, lon=float(x), lat=float(y), address=f"{i}号楼")
                                      for i, (x, y) in enumerate(pts)])
        bids = list(Building.objects.order_by("pk").values_list("pk", flat=True))
        households, persons, pid = [], [], 0
        while pid < people:
            size = int(min(people - pid, rng.choice([1, 2, 3, 3, 4, 5])))
            b = bids[int(rng.integers(len(bids)))]
            households.append((f"H{len(households)}", b, size))
            pid += size
        Household.objects.bulk_create([Household(code=c, building_id=b, grid=grid) for c, b, _ in households])
        hh = dict(Household.objects.values_list("code", "pk"))
        now = NOW
        for code, b, size in households:
            for _ in range(size):
                n = len(persons)
                persons.append(Person(id_hash=f"bench{n:059d}", id_masked="3302**********0000", name=f"人{n}",
                                      sex="M", birth_date=dt.date(1980, 1, 1), phone="13800000000", grid=grid,
                                      building_id=b, household_id=hh[code], created_at=now, updated_at=now))
        Person.objects.bulk_create(persons, batch_size=2000)
        tiers = rng.choice(["close", "secondary"], size=people, p=[0.8, 0.2])
        Contact.objects.bulk_create([
            Contact(person_id=p, tier=str(t), status="located", region_code=grid.code, queue_region_code=street.code,
                    last_exposure_at=now - dt.timedelta(days=1), first_identified_at=now - dt.timedelta(hours=3),
                    due_at=now + dt.timedelta(hours=5), located_at=now - dt.timedelta(hours=1), created_at=now,
                    updated_at=now)
            for p, t in zip(Person.objects.order_by("pk").values_list("pk", flat=True), tiers, strict=True)],
            batch_size=2000)
        for f in facilities:
            fac = Facility.objects.create(code=f"F{f.id}", name=f"隔离点{f.id}", region_code="330206", lon=f.lon,
                                          lat=f.lat, kind="designated_hospital" if "hospital" in f.destinations
                                          else "quarantine_hotel")
            Room.objects.bulk_create([Room(facility=fac, number=str(i), floor=1 + i // 20, kind="single", beds=1,
                                           state_since=now) for i in range(f.free)])
        Vehicle.objects.bulk_create([Vehicle(code=f"V{v.id}", plate=f"浙B{v.id:05d}", type="bus", seats=v.seats,
                                             accessible=v.accessible, depot_lon=v.lon, depot_lat=v.lat,
                                             region_code=street.code) for v in vs])
    with clock.frozen(NOW + dt.timedelta(minutes=1)):
        t = time.perf_counter()
        grouped = group_waiting(actor=None, scope=Scope(""))
        group_s = time.perf_counter() - t
        t = time.perf_counter()
        planned = transfers.plan_transfers(actor=None, scope=Scope(""), time_limit_s=time_limit)
        plan_s = time.perf_counter() - t
    return {"database": "sqlite", "group_seconds": round(group_s, 3), "batches": grouped["batches"],
            "hand_over_queued": grouped["hand_over_queued"],
            "people_grouped": grouped["people"], "plan_seconds": round(plan_s, 3),
            "people_planned": planned["people_planned"], "runs": planned["transfers"],
            "meets_target": plan_s <= TARGET_S, "solver": planned["solver"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--vehicles", type=int, default=100)
    parser.add_argument("--time-limit", type=float, default=25.0, help="the optimiser's search limit (s)")
    parser.add_argument("--seed", type=int, default=20220105)
    parser.add_argument("--quick", action="store_true", help="200 people, 10 vehicles, 3 s search")
    parser.add_argument("--service", action="store_true", help="also time grouping and planning through the "
                                                               "services on a fresh SQLite database")
    args = parser.parse_args()
    if args.quick:
        args.people, args.vehicles, args.time_limit = 200, 10, 3.0
    t = time.perf_counter()
    vs, batches, facilities = make_instance(args.people, args.vehicles, args.seed)
    build_s = time.perf_counter() - t
    params = routing.Params(detour_factor=1.35, speed_kmh=30, pickup_s=600, dropoff_s=900,
                            time_limit_s=args.time_limit)
    t = time.perf_counter()
    greedy = routing.plan(vs, batches, facilities, params, use_solver=False)
    greedy_s = time.perf_counter() - t
    t = time.perf_counter()
    solved = routing.plan(vs, batches, facilities, params)
    solved_s = time.perf_counter() - t
    g, s = _summary(greedy, batches), _summary(solved, batches)
    g["seconds"], s["seconds"] = round(greedy_s, 3), round(solved_s, 3)
    service = service_path(args.people, args.vehicles, args.seed, args.time_limit) if args.service else None
    print(json.dumps({
        "benchmark": "routing", "people": args.people, "vehicles": args.vehicles, "batches": len(batches),
        "seats": sum(v.seats for v in vs), "time_limit_s": args.time_limit, "instance_seconds": round(build_s, 3),
        "target_seconds": TARGET_S, "plan_seconds": round(solved_s, 3), "meets_target": solved_s <= TARGET_S,
        "greedy": g, "ortools": s,
        "ratio_seconds_to_greedy": round(solved_s / max(greedy_s, 1e-6), 1),
        "ratio_km_to_greedy": round(s["km"] / g["km"], 3) if g["km"] else None,
        "ratio_lateness_to_greedy": round(s["lateness_h"] / g["lateness_h"], 3) if g["lateness_h"] else None,
        "service": service,
    }, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
