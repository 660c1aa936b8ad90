from __future__ import annotations

from django.core.management.base import BaseCommand

from jingkong.core import jobs


class Command(BaseCommand):
    help = "Run queued background jobs (imports, generation, recomputes); 'jingkong serve' starts one."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Run what is queued, then exit.")
        parser.add_argument("--poll", type=float, default=1.0, help="Seconds between queue checks (default 1).")

    def handle(self, *args, once: bool, poll: float, **options):
        ran = jobs.work(poll=poll, once=once, echo=jobs.terminal_echo)
        if once:
            self.stdout.write(f"ran {ran} job(s)")
