"""``jingkong outbreak``: load the demo's outbreak in progress (docs in jingkong/synth/outbreak.py)."""

from __future__ import annotations

import datetime as dt
import json

from django.core.management.base import BaseCommand, CommandError

from jingkong.synth.outbreak import DEFAULT_START, outbreak_run

DEFAULT_SEED = 20220108


class Command(BaseCommand):
    help = ("Load an outbreak in progress (Beilun port, January 2022) into a loaded district by running the "
            "platform's own services; a second run reports it is loaded already and changes nothing.")

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="scenario seed (default %(default)s)")
        parser.add_argument("--start", default=DEFAULT_START.isoformat(timespec="minutes"),
                            help="when the port screening begins, ISO 8601 with an offset (default %(default)s)")

    def handle(self, *args, seed, start, **options):
        try:
            begin = dt.datetime.fromisoformat(start)
        except ValueError as exc:
            raise CommandError(f"--start: {exc}") from None
        if begin.tzinfo is None:
            raise CommandError("--start: give a time zone offset, e.g. 2022-01-08T08:00+08:00")
        from jingkong.geo.models import Region
        from jingkong.synth.outbreak import DISTRICT

        if not Region.objects.filter(code=DISTRICT).exists():
            raise CommandError(f"district {DISTRICT} is not loaded: run 'jingkong generate' and 'jingkong load' first")

        def echo(text: str) -> None:
            self.stdout.write(self.style.MIGRATE_HEADING(f"» {text}") if not text.startswith(" ") else text)
            self.stdout.flush()

        result = outbreak_run(seed=seed, start=begin, echo=echo)
        if result.get("already_loaded"):
            self.stdout.write("The outbreak is loaded already; nothing to do.")
            return
        self.stdout.write(json.dumps(result, ensure_ascii=False, indent=2, default=str))
