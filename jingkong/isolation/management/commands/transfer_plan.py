"""``jingkong transfer plan [--region CODE] [--time-limit S]``: plan runs for the waiting batches (as a recorded job,
progress on the terminal)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from jingkong.core import jobs
from jingkong.isolation import transfers


class Command(BaseCommand):
    help = "Plan transfer runs (vehicles, pickups, drop-offs, ETAs) for the batches waiting under a region."

    def add_arguments(self, parser):
        parser.add_argument("--region", default="", help="only batches and vehicles under this region code")
        parser.add_argument("--time-limit", type=float, default=20.0, help="optimiser search limit in seconds")

    def handle(self, *args, region, time_limit, **options):
        if region and not region.isdigit():
            raise CommandError("--region: a division code (digits)")
        if not 1 <= time_limit <= 600:
            raise CommandError("--time-limit: between 1 and 600 seconds")
        job = jobs.run_now(transfers.PLAN_JOB, {"region_code": region, "scope_prefix": region,
                                                "time_limit_s": time_limit}, echo=jobs.terminal_echo)
        if job.status != job.Status.SUCCEEDED:
            raise CommandError(job.message)
        r = job.result
        self.stdout.write(f"{r['transfers']} runs for {r['people_planned']} people ({r['batches_planned']} batches), "
                          f"{r['distance_m'] / 1000:.1f} km, {r['late_batches']} late; {r['batches_waiting']} "
                          f"batches still waiting {r['waiting_reasons'] or ''} [{r['solver']}, {r['seconds']} s]")
        if options.get("verbosity", 1) > 1:
            self.stdout.write(json.dumps(r, ensure_ascii=False, indent=2))
