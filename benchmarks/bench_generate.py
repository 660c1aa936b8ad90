"""Benchmark the synthetic district generator against the Parquet I/O floor measured in the same run.

    .venv/bin/python benchmarks/bench_generate.py                       # 100 k people, 14 days (about 10 s)
    .venv/bin/python benchmarks/bench_generate.py --population 1000000  # the full-size figure

Baseline: writing the same number of check-in rows (same per-day files, two dictionary-encoded int32 index columns
over same-size dictionaries and two timestamp columns) of random numpy data with the same pyarrow Parquet settings.
Prints JSON. Peak RSS from resource.getrusage (the generator runs first, so the peak is the generator's).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jingkong.synth import writer  # noqa: E402
from jingkong.synth.generate import generate_district  # noqa: E402


def baseline(out: Path, rows_per_day: list[int], n_people: int, n_venues: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    person_dict = writer.fixed_width_strings(rng.integers(48, 58, (n_people, 18), dtype=np.uint8))
    venue_dict = writer.fixed_width_strings(rng.integers(48, 58, (n_venues, 19), dtype=np.uint8))
    t0 = time.perf_counter()
    for i, rows in enumerate(rows_per_day):
        base = 1_640_966_400_000_000 + i * 86_400_000_000
        checkin = base + rng.integers(0, 86_400_000_000, rows)
        table = writer.checkin_table(
            venue_dict, person_dict, rng.integers(0, n_venues, rows, dtype=np.int32),
            rng.integers(0, n_people, rows, dtype=np.int32), checkin, checkin + 1_800_000_000,
        )
        writer.write_parquet(out / f"day={i}" / "part-0.parquet", table)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--population", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    tmp = Path(args.out or tempfile.mkdtemp(prefix="jk-bench-"))
    try:
        t0 = time.perf_counter()
        summary = generate_district(tmp / "district", population=args.population, seed=args.seed, days=args.days,
                                    start_date=dt.date(2022, 1, 1), now=dt.datetime(2022, 1, 1, tzinfo=dt.UTC))
        wall = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rows_per_day = [
            pa.parquet.ParquetFile(p).metadata.num_rows
            for p in sorted((tmp / "district" / "checkins").rglob("*.parquet"))
        ]
        base = baseline(tmp / "baseline", rows_per_day, args.population, summary["venues"], args.seed)
        rows = summary["checkins"]
        print(json.dumps({
            "benchmark": "synth.generate",
            "population": args.population,
            "days": args.days,
            "checkin_rows": rows,
            "wall_seconds": round(wall, 2),
            "people_per_second": round(args.population / wall),
            "checkin_rows_per_second": round(rows / wall),
            "peak_rss_mb": round(peak_mb),
            "baseline": "same rows of random numpy data written to Parquet with the same pyarrow settings",
            "baseline_seconds": round(base, 2),
            "baseline_rows_per_second": round(rows / base),
            "ratio_wall_to_baseline": round(wall / base, 2),
        }, indent=2))
    finally:
        if not args.out:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    import pyarrow.parquet  # noqa: F401 - pa.parquet.ParquetFile

    main()
