"""``jingkong transfer group [--region CODE]``: group everyone waiting for transfer into batches."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from jingkong.access.guard import Scope
from jingkong.core.exceptions import ApplicationError
from jingkong.isolation import grouping


class Command(BaseCommand):
    help = "Group located contacts and cases waiting for transfer into batches (by pickup point, tier, capacity)."

    def add_arguments(self, parser):
        parser.add_argument("--region", default="", help="only people under this region code (default: everywhere)")

    def handle(self, *args, region, **options):
        if region and not region.isdigit():
            raise CommandError("--region: a division code (digits)")
        try:
            out = grouping.group_waiting(actor=None, scope=Scope(region), region_code=region)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"{out['people']} people in {out['batches']} batches "
                          f"({', '.join(f'{k} {v}' for k, v in sorted(out['by_destination'].items())) or 'none'}); "
                          f"{out['skipped_count']} skipped")
        if options.get("verbosity", 1) > 1:
            self.stdout.write(json.dumps(out, ensure_ascii=False, indent=2))
