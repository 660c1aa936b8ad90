"""jingkong import regions FILE: load a regions.geojson (upsert by code)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from jingkong.core.exceptions import ApplicationError
from jingkong.geo.services import regions_import_geojson


class Command(BaseCommand):
    help = "Import regions from a GeoJSON FeatureCollection (upsert by code; reports polygon problems)."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--replace", action="store_true", help="delete regions that are not in the file")
        parser.add_argument("--json", action="store_true", help="print the full report as JSON")

    def handle(self, *args, **options):
        try:
            report = regions_import_geojson(options["file"], actor=None, replace=options["replace"])
        except (ApplicationError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
            return
        self.stdout.write(
            f"regions: {report.total} read, {report.created} created, {report.updated} updated, "
            f"{report.unchanged} unchanged, {report.deleted} deleted, {report.skipped} skipped"
        )
        for p in report.problems:
            self.stderr.write(f"  {p['kind']}: {p['message']}")
        if report.problems:
            self.stderr.write(f"{len(report.problems)} problem(s) reported (regions were imported)")
