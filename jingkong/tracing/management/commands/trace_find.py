from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from jingkong.core import jobs
from jingkong.tracing.models import Case


class Command(BaseCommand):
    help = "Run contact finding for one case (--case REF) or for every open case (--all-open)."

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--case", metavar="REF", action="append", help="case number (repeatable)")
        which.add_argument("--all-open", action="store_true", help="every case not closed")
        parser.add_argument("--region", default="", help="with --all-open: only cases under this region code")

    def handle(self, *args, case, all_open, region, **options):
        if all_open:
            params = {"all_open": True, "scope_prefix": region}
        else:
            refs = [r.strip() for r in case]
            found = dict(Case.objects.filter(ref__in=refs).values_list("ref", "pk"))
            missing = [r for r in refs if r not in found]
            if missing:
                raise CommandError(f"no case {', '.join(missing)}")
            params = {"case_ids": [found[r] for r in refs]}
        job = jobs.run_now("tracing.find_contacts", params, echo=jobs.terminal_echo)
        if job.status != job.Status.SUCCEEDED:
            raise CommandError(job.message)
        r = job.result
        self.stdout.write(
            f"{r['cases']} case(s): {r['close']} close, {r['secondary']} secondary, {r['companion']} companion "
            f"contacts ({r['contacts_new']} new, {r['contacts_changed']} updated, {r['handoffs_new']} handed off); "
            f"{r['links']['suggested']} link(s) suggested"
        )
        for s in r["skipped"] + r["links"]["skipped"]:
            self.stdout.write(f"  skipped {s['case']}: {s['reason']}")
        if options.get("verbosity", 1) > 1:
            self.stdout.write(json.dumps(r, ensure_ascii=False, indent=2))
