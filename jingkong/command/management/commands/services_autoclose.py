from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from jingkong.core import jobs


class Command(BaseCommand):
    help = ("Close delivered service requests whose confirmation window (services.confirmation_window_hours of the "
            "profile in force) has passed without the resident's answer; run it periodically.")

    def handle(self, *args, **options):
        job = jobs.run_now("services.autoclose", {}, echo=jobs.terminal_echo)
        if job.status != job.Status.SUCCEEDED:
            raise CommandError(job.message)
        closed = (job.result or {}).get("closed", 0)
        self.stdout.write(f"{closed} delivered request(s) closed without an answer")
