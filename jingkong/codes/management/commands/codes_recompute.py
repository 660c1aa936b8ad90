from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from jingkong.core import jobs


class Command(BaseCommand):
    help = "Recompute every person's health code from the policy profile's rules (set-based, with progress)."

    def add_arguments(self, parser):
        parser.add_argument("--follow-moves", action="store_true",
                            help="also put every code in its person's current grid (a full pass over people)")

    def handle(self, *args, follow_moves=False, **options):
        from jingkong.codes.jobs import RECOMPUTE

        job = jobs.run_now(RECOMPUTE, {"follow_moves": follow_moves}, echo=jobs.terminal_echo)
        if job.status != job.Status.SUCCEEDED:
            raise CommandError(job.message)
        r = job.result
        colours = ", ".join(f"{n} {c}" for c, n in sorted(r.get("by_colour", {}).items())) or "none"
        self.stdout.write(
            f"{r['evaluated']:,} people evaluated ({r['people_with_facts']:,} with facts, {r['overrides']} overrides); "
            f"{r['written']:,} codes written, {r['cleared']:,} back to green, {r['inserted_green']:,} new green codes, "
            f"{r['region_moves']:,} moves followed; "
            f"colour changes: {r['colour_changes']:,} ({colours}) in {r['seconds']} s"
        )
        if options.get("verbosity", 1) > 1:
            self.stdout.write(json.dumps(r, ensure_ascii=False, indent=2, default=str))
