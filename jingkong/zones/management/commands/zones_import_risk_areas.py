from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from jingkong.core import jobs
from jingkong.core.cli_report import report_rejections


class Command(BaseCommand):
    help = ("Import another place's list of medium/high-risk areas (CSV code,name,level[,published_at]; UTF-8 or "
            "GBK); bad rows go to an error CSV, the rest are kept (exit status 3 when rows were rejected).")

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--list", dest="list_name", default="", help="name of the list (default: the file name)")
        parser.add_argument("--error-file", default=None, help="where to write rejected rows (default FILE.errors.csv)")

    def handle(self, *args, file, list_name, error_file, **options):
        job = jobs.run_now("zones.import_risk_areas", {"path": file, "list_name": list_name, "error_file": error_file},
                           echo=jobs.terminal_echo)
        if job.status != job.Status.SUCCEEDED:
            raise CommandError(job.message)
        r = job.result
        self.stdout.write(f"{r['rows']:,} rows: {r['created']:,} new, {r['updated']:,} updated, "
                          f"{r['unchanged']:,} unchanged, {r['rejected']:,} rejected [{r['encoding']}]")
        report_rejections(self.stdout.write, r)
