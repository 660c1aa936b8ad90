from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from jingkong.core import jobs
from jingkong.testing.models import Campaign


class Command(BaseCommand):
    help = "Create sweep-untested tasks for a testing round: one per grid with people not yet sampled."

    def add_arguments(self, parser):
        parser.add_argument("--campaign", required=True, metavar="CODE", help="the testing round's code")
        parser.add_argument("--wave", type=int, default=1, help="sweep number within the round (default 1)")
        parser.add_argument("--region", default="", help="only grids under this region code")

    def handle(self, *args, campaign, wave, region, **options):
        found = Campaign.objects.filter(code=campaign).first()
        if found is None:
            raise CommandError(f"no testing round {campaign}")
        if region and not region.isdigit():
            raise CommandError("--region must be a division code (digits)")
        if wave < 1:
            raise CommandError("--wave must be 1 or more")
        job = jobs.run_now("command.sweep", {"campaign_id": found.pk, "wave": wave, "scope_prefix": region},
                           echo=jobs.terminal_echo)
        if job.status != job.Status.SUCCEEDED:
            raise CommandError(job.message)
        r = job.result
        self.stdout.write(f"{r['grids']} grid(s) with untested people: {r['created']} task(s) created, "
                          f"{r['existing']} already there")
