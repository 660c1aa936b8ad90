from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from jingkong.access.guard import EVERYTHING, Scope
from jingkong.command.supplies import stock_counts_import
from jingkong.core.exceptions import ApplicationError


class Command(BaseCommand):
    help = ("Import stock counts (CSV, UTF-8 or GBK/GB18030: depot, item, counted[, threshold][, key]); bad rows are "
            "listed by line and field (exit status 3), good rows kept; re-running the file changes nothing.")

    def add_arguments(self, parser):
        parser.add_argument("file", help="the CSV file")
        parser.add_argument("--region", default="", help="refuse rows of depots outside this region code")

    def handle(self, *args, file, region, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"no such file: {file}")
        if region and not region.isdigit():
            raise CommandError("--region must be a division code (digits)")
        try:
            report = stock_counts_import(actor=None, scope=Scope(region) if region else EVERYTHING,
                                         data=path.read_bytes())
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"{report.rows} row(s): {report.applied} applied, {report.unchanged} already applied, "
                          f"{len(report.errors)} rejected")
        for e in report.errors[:50]:
            self.stdout.write(f"  line {e['line']}: {e['field'] or '-'}: {e['reason']}")
        if len(report.errors) > 50:
            self.stdout.write(f"  … {len(report.errors) - 50} more")
        if report.errors:
            raise SystemExit(3)
