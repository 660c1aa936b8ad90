"""jingkong export regions [--level L] [--root CODE] [--out F]."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand

from jingkong.geo.rules import LEVELS
from jingkong.geo.services import regions_export_geojson


class Command(BaseCommand):
    help = "Export regions as a GeoJSON FeatureCollection (the same shape 'import regions' reads)."

    def add_arguments(self, parser):
        parser.add_argument("--level", choices=LEVELS)
        parser.add_argument("--root", help="only this region's subtree (division code)")
        parser.add_argument("--out", help="output file (default: standard output)")
        parser.add_argument("--simplified", action="store_true", help="write the simplified display geometry")

    def handle(self, *args, **options):
        collection = regions_export_geojson(
            level=options["level"], root_code=options["root"], simplified=options["simplified"]
        )
        text = json.dumps(collection, ensure_ascii=False)
        if options["out"]:
            with open(options["out"], "w", encoding="utf-8") as fh:
                fh.write(text)
            sys.stderr.write(f"{len(collection['features'])} regions written to {options['out']}\n")
        else:
            self.stdout.write(text)
