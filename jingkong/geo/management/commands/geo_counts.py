"""jingkong geo counts: recompute population / households / buildings on every region."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from jingkong.geo.services import region_counts_refresh


class Command(BaseCommand):
    help = "Refresh the population, household and building counts of every region (set-based SQL)."

    def handle(self, *args, **options):
        started = time.perf_counter()
        totals = region_counts_refresh(actor=None)
        self.stdout.write(
            f"{totals['regions']} regions refreshed (population {totals['population']}) "
            f"in {time.perf_counter() - started:.2f} s"
        )
