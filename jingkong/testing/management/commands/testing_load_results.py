from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from jingkong.core import jobs


class Command(BaseCommand):
    help = (
        "Load a lab's tube results: a CSV export (UTF-8 or GBK, English or Chinese headers) or a FHIR R4 Bundle "
        "(.json). Rejected rows go to an error CSV; accepted rows are committed (exit status 3 when rows were "
        "rejected). Re-running the same file changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--lab", required=True, help="the code of the lab that tested the tubes")
        parser.add_argument("--format", choices=["csv", "fhir"], default=None,
                            help="default: from the file name (.json: FHIR) or its first character")
        parser.add_argument("--error-file", default=None, help="where to write rejected rows (default FILE.errors.csv)")

    def handle(self, *args, file, lab, format, error_file, **options):
        job = jobs.run_now("testing.load_results", {"path": file, "lab": lab, "format": format,
                                                    "error_file": error_file}, echo=jobs.terminal_echo)
        if job.status != job.Status.SUCCEEDED:
            raise CommandError(job.message)
        r = job.result
        self.stdout.write(
            f"{r['rows']:,} rows: {r['accepted']:,} accepted, {r['unchanged']:,} unchanged, {r['rejected']:,} rejected "
            f"in {r['seconds']:.1f} s{' [' + r['encoding'] + ']' if r.get('encoding') else ''}"
        )
        self.stdout.write(
            f"tubes: {r['tubes_negative']:,} negative, {r['tubes_pool_positive']:,} positive pools, "
            f"{r['tubes_positive']:,} individual positives, {r['tubes_invalid']:,} invalid; persons: "
            f"{r['persons_controlled']:,} controlled in place, {r['persons_positive']:,} positive, "
            f"{r['persons_resample']:,} to resample, {r['controls_lifted']:,} released; retest tasks: "
            f"{r['tasks_created']:,} created, {r['tasks_resolved']:,} resolved"
        )
        for e in r["errors"][:20]:
            self.stdout.write(f"  row {e['row']}: {e['field'] or '-'}: {e['reason']}")
        if r["error_count"] > 20:
            self.stdout.write(f"  … {r['error_count'] - 20:,} more")
        if r["error_file"]:
            self.stdout.write(f"rejected rows: {r['error_file']}")
        if r["rejected"]:
            raise SystemExit(3)
