from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from jingkong.core import jobs


class Command(BaseCommand):
    help = "Escalate overdue tasks (to the level above) and overdue problems (one level up); run it periodically."

    def add_arguments(self, parser):
        parser.add_argument("--region", default="", help="only under this region code (default: everything)")

    def handle(self, *args, region, **options):
        if region and not region.isdigit():
            raise CommandError("--region must be a division code (digits)")
        job = jobs.run_now("command.escalate", {"prefix": region}, echo=jobs.terminal_echo)
        if job.status != job.Status.SUCCEEDED:
            raise CommandError(job.message)
        r = job.result
        self.stdout.write(f"{r['tasks_escalated']} task(s) and {r['problems_escalated']} problem(s) escalated")
        if r["skipped_regions"]:
            self.stdout.write("skipped (no policy profile with 'directives' rules in force): "
                              + ", ".join(r["skipped_regions"]))
