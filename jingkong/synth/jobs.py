"""The ``synth.generate`` background job: the same generator the ``jingkong generate`` command runs."""

from __future__ import annotations

import datetime as dt

from jingkong.core import clock, jobs
from jingkong.synth.generate import DEFAULT_START, generate_district


@jobs.register("synth.generate")
def generate_job(ctx, *, out: str, population: int, seed: int = 1, days: int = 14, start_date: str | None = None) -> dict:
    """Params: ``out`` (directory), ``population``, ``seed``, ``days``, ``start_date`` (YYYY-MM-DD)."""
    start = dt.date.fromisoformat(start_date) if start_date else DEFAULT_START
    return generate_district(
        out, population=int(population), seed=int(seed), days=int(days), start_date=start, now=clock.now(),
        progress=ctx.progress,
    )
