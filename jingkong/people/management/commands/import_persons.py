from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from jingkong.core import jobs
from jingkong.core.cli_report import report_rejections


class Command(BaseCommand):
    help = (
        "Import a persons CSV (UTF-8 or GBK); bad rows go to an error CSV, good rows are committed "
        "(exit status 3 when rows were rejected)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--error-file", default=None, help="where to write rejected rows (default FILE.errors.csv)")
        parser.add_argument("--dry-run", action="store_true", help="validate only, write nothing to the database")

    def handle(self, *args, file, error_file, dry_run, **options):
        job = jobs.run_now("people.import_persons", {"path": file, "error_file": error_file, "dry_run": dry_run},
                           echo=jobs.terminal_echo)
        if job.status != job.Status.SUCCEEDED:
            raise CommandError(job.message)
        r = job.result
        self.stdout.write(
            f"{r['rows']:,} rows: {r['created']:,} created, {r['updated']:,} updated, {r.get('unchanged', 0):,} unchanged, "
            f"{r['rejected']:,} rejected"
            f"{' (dry run: nothing written)' if r['dry_run'] else ''} in {r['seconds']:.1f} s [{r['encoding']}]"
        )
        report_rejections(self.stdout.write, r)
