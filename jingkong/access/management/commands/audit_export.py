from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from jingkong.access import audit, selectors, services
from jingkong.access.guard import EVERYTHING
from jingkong.core.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Export the audit log as CSV (jingkong audit export --from 2022-01-01 --to 2022-01-31 --out audit.csv)."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="since", default="", help="YYYY-MM-DD (local day) or ISO date-time")
        parser.add_argument("--to", dest="until", default="", help="YYYY-MM-DD (that day included) or ISO date-time")
        parser.add_argument("--out", required=True, help="CSV file to write ('-' for standard output)")
        parser.add_argument("--user", default="", help="only this username")
        parser.add_argument("--action", default="", help="only this action (or a prefix ending in '.' or '*')")
        parser.add_argument("--object", default="", help="only this object type, or type:id")

    def handle(self, *args, **opts):
        try:
            qs = selectors.audit_list(
                scope=EVERYTHING, user=opts["user"], action=opts["action"], object=opts["object"],
                since=audit.parse_time_bound(opts["since"]), until=audit.parse_time_bound(opts["until"], end=True),
            ).order_by("at", "id")
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        rows = qs.iterator(chunk_size=2000)
        if opts["out"] == "-":
            count = audit.write_csv(rows, sys.stdout)
        else:
            try:
                with open(opts["out"], "w", encoding="utf-8", newline="") as out:
                    count = audit.write_csv(rows, out)
            except OSError as exc:
                raise CommandError(f"cannot write {opts['out']}: {exc.strerror}") from None
        services.audit_export_record(actor=None, rows=count, source="cli",
                                     filters={"from": opts["since"], "to": opts["until"], "user": opts["user"],
                                              "action": opts["action"], "object": opts["object"], "out": opts["out"]})
        if opts["out"] != "-":
            self.stdout.write(f"wrote {count} audit records to {opts['out']}")
