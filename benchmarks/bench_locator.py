"""Benchmark: bulk point → grid lookup (jingkong.geo.locator.GridLocator).

Builds a synthetic district of N×M irregular quadrilateral grids (jittered lattice, so polygons are not axis-aligned
boxes), throws random points over it (some outside), and times ``GridLocator.locate``. Baselines in the same run:

* ``contains_xy_single``: bare ``shapely.contains_xy`` of the same points against ONE prepared polygon (the cost floor
  of a vectorised point-in-polygon test, without any index or grid choice);
* ``bbox_numpy``: a numpy bbox-only test of the points against every grid's bounding box in a loop (no exact test).

Prints JSON. ``--points 1000000`` (the default) is the target size (≤ 5 s).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import shapely

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jingkong.geo.locator import GridLocator  # noqa: E402


def make_grids(cols: int, rows: int, size: float, seed: int):
    rng = np.random.default_rng(seed)
    xs = 121.70 + np.arange(cols + 1) * size
    ys = 29.80 + np.arange(rows + 1) * size
    gx, gy = np.meshgrid(xs, ys)
    jitter = size * 0.3
    gx = gx + rng.uniform(-jitter, jitter, gx.shape)
    gy = gy + rng.uniform(-jitter, jitter, gy.shape)
    codes, geoms = [], []
    for r in range(rows):
        for c in range(cols):
            ring = [(gx[r, c], gy[r, c]), (gx[r, c + 1], gy[r, c + 1]), (gx[r + 1, c + 1], gy[r + 1, c + 1]),
                    (gx[r + 1, c], gy[r + 1, c]), (gx[r, c], gy[r, c])]
            codes.append(f"330206{r:03d}{c:03d}001")
            geoms.append(shapely.Polygon(ring))
    return codes, geoms


def timed(fn, repeat: int):
    best = float("inf")
    result = None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--cols", type=int, default=60)
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--size", type=float, default=0.004, help="grid cell size in degrees (~400 m)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    codes, geoms = make_grids(args.cols, args.rows, args.size, args.seed)
    t = time.perf_counter()
    locator = GridLocator(codes, geoms)
    build_s = time.perf_counter() - t

    rng = np.random.default_rng(args.seed + 1)
    margin = args.size * 2
    lon = rng.uniform(121.70 - margin, 121.70 + args.cols * args.size + margin, args.points)
    lat = rng.uniform(29.80 - margin, 29.80 + args.rows * args.size + margin, args.points)

    locate_s, idx = timed(lambda: locator.locate(lon, lat), args.repeat)

    single = geoms[len(geoms) // 2]
    shapely.prepare(single)
    contains_s, _ = timed(lambda: shapely.contains_xy(single, lon, lat), args.repeat)

    bounds = shapely.bounds(np.array(geoms, dtype=object))
    sample = min(args.points, 100_000)  # the bbox loop is O(points x grids); time a sample, scale linearly

    def bbox_loop():
        out = np.full(sample, -1)
        x, y = lon[:sample], lat[:sample]
        for i, (a, b, c, d) in enumerate(bounds):
            hit = (x >= a) & (x <= c) & (y >= b) & (y <= d) & (out < 0)
            out[hit] = i
        return out

    bbox_s, _ = timed(bbox_loop, 1)
    bbox_s_full = bbox_s * args.points / sample

    # correctness spot-check against an exact per-point test on a sample
    check = rng.choice(args.points, 2000, replace=False)
    grid_array = np.array(geoms, dtype=object)

    def first_hit(j):
        hits = np.flatnonzero(shapely.intersects_xy(grid_array, lon[j], lat[j]))
        return int(hits[0]) if hits.size else -1

    exact = np.array([first_hit(j) for j in check])
    mismatches = int((exact != idx[check]).sum())

    per_million = locate_s * 1_000_000 / args.points
    print(json.dumps({
        "benchmark": "geo.locator",
        "points": args.points,
        "grids": len(codes),
        "build_seconds": round(build_s, 4),
        "locate_seconds": round(locate_s, 4),
        "points_per_second": round(args.points / locate_s),
        "seconds_per_1m_points": round(per_million, 3),
        "target_seconds_per_1m": 5.0,
        "meets_target": per_million <= 5.0,
        "outside_points": int((idx < 0).sum()),
        "spot_check_mismatches": mismatches,
        "baseline_contains_xy_single_polygon_seconds": round(contains_s, 4),
        "ratio_to_contains_xy_single_polygon": round(locate_s / contains_s, 2),
        "baseline_bbox_numpy_loop_seconds_extrapolated": round(bbox_s_full, 3),
        "ratio_to_bbox_numpy_loop": round(locate_s / bbox_s_full, 3),
        "shapely": shapely.__version__,
        "numpy": np.__version__,
    }, indent=2))


if __name__ == "__main__":
    main()
