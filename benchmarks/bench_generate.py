"""Benchmark the synthetic district generator against the Parquet I/O floor measured in the same run.

    .venv/bin/python benchmarks/bench_generate.py                         # 100 k people, 14 days (about 10 s)
    .venv/bin/python benchmarks/bench_generate.py --population 1000000    # 1 M people, 14 days
    .venv/bin/python benchmarks/bench_generate.py --ten-million           # 10 M people, 1 day (--days to change)

Baseline: writing the same number of check-in rows per day (same per-day files, same writer.write_checkins path:
compact per-row-group dictionaries over same-size person/venue dictionaries, the same timestamp columns) from random
numpy data, i.e. the cost of the Parquet output alone. ``ratio_wall_to_baseline`` = generator wall time / baseline.
Peak RSS is the process's ru_maxrss right after the generator (the baseline runs afterwards, so it is the
generator's peak). ``loadavg_1m_at_start`` records competing load on the machine. Prints JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jingkong.synth import writer  # noqa: E402
from jingkong.synth.generate import generate_district  # noqa: E402


def baseline(out: Path, rows_per_day: list[int], n_people: int, n_venues: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.integers(10**16, 10**17, n_people))
    id_ascii = np.frombuffer(np.char.zfill(ids.astype("S18"), 18).tobytes(), np.uint8).reshape(n_people, 18)
    person_dict = writer.fixed_width_strings(id_ascii)
    venue_dict = writer.fixed_width_strings(rng.integers(48, 58, (n_venues, 19), dtype=np.uint8))
    t0 = time.perf_counter()
    for i, rows in enumerate(rows_per_day):
        start = np.sort(rng.integers(6 * 3600, 22 * 3600, rows)).astype(np.int32)
        writer.write_checkins(
            out / f"day={i}" / "part-0.parquet", venue_dict, person_dict, 1_640_966_400_000_000 + i * 86_400_000_000,
            rng.integers(0, n_venues, rows, dtype=np.int32), rng.integers(0, n_people, rows, dtype=np.int32),
            start, rng.integers(180, 7200, rows, dtype=np.int32),
        )
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--population", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=None, help="days of check-ins (default 14; 1 with --ten-million)")
    parser.add_argument("--ten-million", action="store_true", help="the 10 M-people figure")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    population = 10_000_000 if args.ten_million else args.population
    days = args.days if args.days is not None else (1 if args.ten_million else 14)
    tmp = Path(args.out or tempfile.mkdtemp(prefix="jk-bench-"))
    load = os.getloadavg()[0]
    try:
        t0 = time.perf_counter()
        summary = generate_district(tmp / "district", population=population, seed=args.seed, days=days,
                                    start_date=dt.date(2022, 1, 1), now=dt.datetime(2022, 1, 1, tzinfo=dt.UTC))
        wall = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rows_per_day = [
            pq.ParquetFile(p).metadata.num_rows for p in sorted((tmp / "district" / "checkins").rglob("*.parquet"))
        ]
        shutil.rmtree(tmp / "district" / "checkins")  # free the disk before the baseline writes as much again
        base = baseline(tmp / "baseline", rows_per_day, population, summary["venues"], args.seed)
        rows = summary["checkins"]
        print(json.dumps({
            "benchmark": "synth.generate",
            "population": population,
            "days": days,
            "checkin_rows": rows,
            "checkins_per_person_day": round(rows / max(population * days, 1), 2),
            "wall_seconds": round(wall, 2),
            "people_per_second": round(population / wall),
            "checkin_rows_per_second": round(rows / wall),
            "peak_rss_mb": round(peak_mb),
            "loadavg_1m_at_start": round(load, 2),
            "cpus": os.cpu_count(),
            "baseline": "same rows per day of random numpy data written through writer.write_checkins",
            "baseline_seconds": round(base, 2),
            "baseline_rows_per_second": round(rows / base) if base else None,
            "ratio_wall_to_baseline": round(wall / base, 2) if base else None,
        }, indent=2))
    finally:
        if not args.out:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
