from __future__ import annotations

from django.core.management.base import BaseCommand

from jingkong.command.requests import requests_autoclose


class Command(BaseCommand):
    help = ("Close delivered service requests whose confirmation window (services.confirmation_window_hours of the "
            "profile in force) has passed without the resident's answer; run it periodically.")

    def handle(self, *args, **options):
        closed = requests_autoclose()
        self.stdout.write(f"{closed} delivered request(s) closed without an answer")
