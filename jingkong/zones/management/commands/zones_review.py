from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from jingkong.core import jobs


class Command(BaseCommand):
    help = ("Re-evaluate every approved zone (clock inputs and countdown) and list the zones ready to be lifted or "
            "downgraded.")

    def add_arguments(self, parser):
        parser.add_argument("--region", default="", help="only zones under this region code")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        parser.add_argument("--residents", action="store_true",
                            help="first rebuild the residents of every zone in force (people changed without an event)")

    def handle(self, *args, region, json: bool = False, residents: bool = False, **options):
        job = jobs.run_now("zones.review", {"scope_prefix": region, "residents": residents}, echo=jobs.terminal_echo)
        if job.status != job.Status.SUCCEEDED:
            raise CommandError(job.message)
        r = job.result
        if json:
            self.stdout.write(_dumps(r))
            return
        self.stdout.write(f"{r['zones']} zone(s) in force reviewed: {len(r['ready'])} ready, {r['blocked']} blocked")
        for z in r["ready"]:
            self.stdout.write(f"  {z['ref']} {z['name']}: {z['action']}{' to ' + z['to_type'] if z['to_type'] else ''}")


def _dumps(data) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2)
