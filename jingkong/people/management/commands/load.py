from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from jingkong.core import jobs


class Command(BaseCommand):
    help = "Load a district directory (regions, buildings, venues, households, persons); safe to run again."

    def add_arguments(self, parser):
        parser.add_argument("directory")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args, directory, json: bool = False, **options):
        job = jobs.run_now("people.load_district", {"directory": directory}, echo=jobs.terminal_echo)
        if job.status != job.Status.SUCCEEDED:
            raise CommandError(job.message)
        if json:
            self.stdout.write(_dumps(job.result))
        else:
            counts = job.result.get("counts", {})
            self.stdout.write(f"loaded {directory}: {counts.get('regions', 0):,} regions, "
                              f"population {counts.get('population', 0):,}")


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)
