"""The shared shape of the ``jingkong tracing load-*`` commands: run the lake job in-process with progress, print the
report, exit with status 3 when rows were rejected (the good rows are in the lake)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from jingkong.core import jobs


class LakeLoadCommand(BaseCommand):
    kind = ""  # job kind
    what = ""

    def add_arguments(self, parser):
        parser.add_argument("directory", help=f"a directory (or one file) of {self.what}: Parquet or CSV (UTF-8/GBK)")
        parser.add_argument("--source", default=None,
                            help="name of this export in the lake (default: the directory's name); loading the same "
                                 "source again replaces its rows")
        parser.add_argument("--lake", default=None, help="lake directory (default: DATA_DIR/lake)")
        parser.add_argument("--json", action="store_true", help="print the whole report as JSON")

    def params(self, options) -> dict:
        return {}

    def handle(self, *args, directory, source, lake, json: bool = False, **options):
        from jingkong.tracing import lake as lake_module  # registers the job kinds

        params = {"directory": directory, "source": source, "lake": lake, **self.params(options)}
        job = jobs.run_now(self.kind, {k: v for k, v in params.items() if v is not None}, echo=jobs.terminal_echo)
        if job.status != job.Status.SUCCEEDED:
            raise CommandError(job.message)
        if json:
            self.stdout.write(_dumps(job.result))
        else:
            for line in lake_module.summary_lines(job.result):
                self.stdout.write(line)
        if job.result["rejected"]:
            raise SystemExit(3)


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)
