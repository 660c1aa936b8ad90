from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from jingkong.core import jobs
from jingkong.core.cli_report import report_rejections


class Command(BaseCommand):
    help = (
        "Load a file of sampling scans (CSV in UTF-8 or GBK, or Parquet; docs/testing-formats.md); rows that cannot "
        "be recorded go to an error CSV, the rest are kept (exit status 3 when rows were rejected)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--error-file", default=None, help="where to write rejected rows (default FILE.errors.csv)")
        parser.add_argument("--dry-run", action="store_true", help="validate only, write nothing to the database")

    def handle(self, *args, file, error_file, dry_run, **options):
        job = jobs.run_now("testing.load_scans", {"path": file, "error_file": error_file, "dry_run": dry_run},
                           echo=jobs.terminal_echo)
        if job.status != job.Status.SUCCEEDED:
            raise CommandError(job.message)
        r = job.result
        self.stdout.write(
            f"{r['rows']:,} rows: {r['recorded']:,} recorded, {r['already_recorded']:,} already recorded, "
            f"{r['duplicate']:,} duplicates, {r['rejected']:,} rejected; {r['tubes_opened']:,} tubes opened, "
            f"{r['tubes_sealed']:,} sealed, {r['persons_created']:,} provisional persons"
            f"{' (dry run: nothing written)' if r['dry_run'] else ''} in {r['seconds']:.1f} s"
            f" [{r['format']}{' ' + r['encoding'] if r['encoding'] else ''}]"
        )
        report_rejections(self.stdout.write, r)
