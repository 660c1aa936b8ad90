"""jingkong geo validate: check the stored region tree and report problems."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from jingkong.geo.services import regions_validate


class Command(BaseCommand):
    help = "Validate regions: invalid polygons, sibling overlaps, children outside parents, bad codes, missing polygons."

    def add_arguments(self, parser):
        parser.add_argument("--root", help="only this region's subtree")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args, **options):
        report = regions_validate(actor=None, root_code=options["root"])
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
            return
        for p in report.problems:
            self.stdout.write(f"{p['kind']}: {p['message']}")
        counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts().items())) or "no problems"
        self.stdout.write(f"{report.checked} regions checked: {counts}")
