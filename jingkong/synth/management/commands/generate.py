"""``jingkong generate``: write a synthetic district directory (docs/district-format.md)."""

from __future__ import annotations

import datetime as dt
import json

from django.core.management.base import BaseCommand, CommandError

from jingkong.core import clock
from jingkong.core.jobs import terminal_echo
from jingkong.synth.generate import DEFAULT_START, generate_district


class Command(BaseCommand):
    help = "Generate a synthetic district (Beilun base map, population, venues, check-ins) into a directory."

    def add_arguments(self, parser):
        parser.add_argument("--population", type=int, default=100_000, help="number of residents (1,000–20,000,000)")
        parser.add_argument("--seed", type=int, default=1, help="random seed; the same seed gives identical files")
        parser.add_argument("--out", required=True, help="output directory")
        parser.add_argument("--days", type=int, default=14, help="days of venue check-ins")
        parser.add_argument("--start-date", default=DEFAULT_START.isoformat(), help="first check-in day, YYYY-MM-DD")

    def handle(self, *args, population, seed, out, days, start_date, **options):
        try:
            start = dt.date.fromisoformat(start_date)
        except ValueError as exc:
            raise CommandError(f"--start-date: {exc}") from None

        def progress(done: int, total: int | None = None, message: str = "") -> None:
            pct = f"{100 * done / total:5.1f}%" if total else ""
            terminal_echo(f"[generate] {pct} {message}")

        try:
            summary = generate_district(out, population=population, seed=seed, days=days, start_date=start,
                                        now=clock.now(), progress=progress)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(summary, ensure_ascii=False, indent=2))
