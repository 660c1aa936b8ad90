"""Benchmark: building → sampling-site assignment for a whole district (jingkong.testing.planning).

A synthetic district shaped like Beilun: ``--buildings`` buildings clustered around town centres (log-normal residents,
~850 k people at the default 30 k buildings) and ``--sites`` sampling sites placed where people live, open 07:00–21:00
with 100–400 people/hour (scaled so that the district can be sampled in the window with 20 % to spare). Timed in the same run (best of ``--repeat``):

* ``nearest``: the plain baseline — every building to its nearest site (numpy, no capacity);
* ``balanced``: :func:`planning.assign_buildings` — nearest-first min-cost flow (OR-Tools) with capacity balancing
  *and* the time slots per building (错峰), i.e. everything the platform does before writing the rows;
* ``estimate``: :func:`planning.estimate_round` for the same district (sampling, tubes, labs, relaxations).

``ratio_to_nearest`` = balanced seconds / nearest seconds. Quality is reported beside speed: the worst site load
(residents / capacity in the window) and the mean walking distance of both assignments.

    .venv/bin/python benchmarks/bench_planning.py            # 30,000 buildings, 300 sites
    .venv/bin/python benchmarks/bench_planning.py --quick    # 3,000 buildings, 30 sites (smoke run)
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

from jingkong.testing import planning  # noqa: E402

TZ = "Asia/Shanghai"


def make_district(buildings: int, sites: int, seed: int, hours: float):
    rng = np.random.default_rng(seed)
    centres = rng.uniform([121.70, 29.78], [122.05, 29.98], size=(12, 2))
    weights = rng.dirichlet(np.ones(len(centres)) * 2)
    which = rng.choice(len(centres), size=buildings, p=weights)
    spread = rng.uniform(0.005, 0.02, size=len(centres))
    pts = centres[which] + rng.normal(0, 1, size=(buildings, 2)) * spread[which, None]
    residents = np.clip(rng.lognormal(mean=3.0, sigma=0.8, size=buildings), 1, 600).astype(np.int64)
    order = np.argsort(which, kind="stable")  # stands in for the grid order of a real district
    grid_key = np.empty(buildings, dtype=np.int64)
    grid_key[order] = np.arange(buildings) // 50
    # Sites where people live: sampled from the buildings, weighted by residents.
    chosen = rng.choice(buildings, size=sites, replace=False, p=residents / residents.sum())
    # Capacities of 100–400 people/hour, scaled so that the sites together can sample everyone in ``hours`` at the
    # planner's 85 % utilisation with 20 % to spare — a sensible plan, whose sites are still unevenly loaded locally.
    raw = rng.choice([100, 150, 200, 300, 400], size=sites).astype(float)
    raw *= 1.2 * residents.sum() / (raw.sum() * 0.85 * hours)
    site_list = [planning.Site(id=i + 1, lon=float(pts[b, 0]) + rng.normal(0, 0.0005),
                               lat=float(pts[b, 1]) + rng.normal(0, 0.0005),
                               capacity_per_hour=max(20, int(raw[i])),
                               opens_at=dt.time(7), closes_at=dt.time(21), desks=max(1, int(np.ceil(raw[i] / 120))),
                               staff=2 * max(1, int(np.ceil(raw[i] / 120))))
                 for i, b in enumerate(chosen)]
    return pts[:, 0], pts[:, 1], residents, grid_key, site_list


def best_of(fn, repeat: int):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buildings", type=int, default=30_000)
    parser.add_argument("--sites", type=int, default=300)
    parser.add_argument("--hours", type=float, default=12.0, help="the round's window (start 08:00 local)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20220101)
    parser.add_argument("--quick", action="store_true", help="3,000 buildings and 30 sites, one repeat")
    args = parser.parse_args()
    if args.quick:
        args.buildings, args.sites, args.repeat = 3_000, 30, 1

    lon, lat, residents, grid_key, sites = make_district(args.buildings, args.sites, args.seed, args.hours)
    start = dt.datetime(2022, 1, 2, 0, 0, tzinfo=dt.UTC)  # 08:00 in Ningbo
    deadline = start + dt.timedelta(hours=args.hours)
    ids = np.arange(1, args.buildings + 1)

    nearest_s, (near_idx, near_dist) = best_of(lambda: planning.assign_nearest(lon, lat, sites), args.repeat)
    balanced_s, plan = best_of(lambda: planning.assign_buildings(
        building_ids=ids, residents=residents, lon=lon, lat=lat, sites=sites, start=start, deadline=deadline, tz=TZ,
        order=grid_key), args.repeat)
    groups = [planning.pool_group(int(residents.sum()), 10)]
    labs = [planning.Lab(1, 6000), planning.Lab(2, 4000), planning.Lab(3, 2500)]
    estimate_s, est = best_of(lambda: planning.estimate_round(
        population=int(residents.sum()), sites=sites, labs=labs, groups=groups, start=start, deadline=deadline, tz=TZ,
        transport_hours=1.5), args.repeat)

    capacity = np.array([s.capacity for s in plan.sites], dtype=float)
    near_load = np.bincount(near_idx, weights=residents, minlength=len(sites))
    print(json.dumps({
        "buildings": args.buildings,
        "sites": args.sites,
        "residents": int(residents.sum()),
        "window_hours": args.hours,
        "nearest_seconds": round(nearest_s, 4),
        "balanced_seconds": round(balanced_s, 4),
        "ratio_to_nearest": round(balanced_s / nearest_s, 2),
        "estimate_seconds": round(estimate_s, 4),
        "nearest": {
            "max_site_load": round(float((near_load / capacity).max()), 2),
            "sites_over_capacity": int((near_load > capacity).sum()),
            "max_excess_residents": int((near_load - capacity).max()),
            "mean_distance_m": round(float(np.average(near_dist, weights=residents)), 1),
        },
        "balanced": {
            "max_site_load": plan.totals["max_load"],
            "sites_over_capacity": int(sum(1 for s in plan.sites if s.residents > s.capacity)),
            "max_excess_residents": int(max(s.residents - s.capacity for s in plan.sites)),
            "largest_building": int(residents.max()),
            "mean_distance_m": plan.totals["mean_distance_m"],
            "buildings_not_at_nearest": plan.totals["buildings_not_at_nearest"],
            "over_capacity_overall": plan.totals["over_capacity"],
            "residents_after_deadline": plan.totals["residents_after_deadline"],
        },
        "estimate": {"binding": est["binding"], "sampling_hours": est["sampling_hours"],
                     "results_hours": est["results_hours"], "peak_lab_backlog_tubes": est["peak_lab_backlog_tubes"]},
        "repeat": args.repeat,
    }, indent=2))


if __name__ == "__main__":
    main()
