from __future__ import annotations

import csv
import io
import json
from zoneinfo import ZoneInfo

from django.core.management.base import BaseCommand, CommandError

from jingkong.access import audit
from jingkong.access.guard import EVERYTHING
from jingkong.core import clock
from jingkong.core.exceptions import NotFound
from jingkong.tracing import selectors

COLUMNS = ["contact_id", "id_masked", "name", "tier", "status", "last_exposure", "due", "region_code", "queue",
           "handoff_pending", "reasons"]


class Command(BaseCommand):
    help = "Print a case's contacts with tier, status, last exposure and reasons (ID numbers masked)."

    def add_arguments(self, parser):
        parser.add_argument("--case", required=True, metavar="REF", help="case number, e.g. BL-2022-0001")
        parser.add_argument("--format", choices=("json", "csv"), default="json")

    def handle(self, *args, case: str, format: str, **options):
        try:
            found = selectors.case_get_by_ref(scope=EVERYTHING, ref=case.strip())
        except NotFound:
            raise CommandError(f"no case {case!r}") from None
        contacts = list(selectors.contact_list(scope=EVERYTHING, case=found))
        reasons = selectors.reasons_of(contacts, case=found)
        tz = ZoneInfo(clock.local_time_zone())

        def local(value):
            return value.astimezone(tz).isoformat(timespec="minutes") if value else ""

        rows = []
        for c in contacts:
            rows.append({
                "contact_id": c.pk, "id_masked": c.person.id_masked, "name": c.person.name, "tier": c.tier,
                "status": c.status, "last_exposure": local(c.last_exposure_at), "due": local(c.due_at),
                "region_code": c.region_code, "queue": c.queue_region_code,
                "handoff_pending": bool(c.handoff_pending),
                "reasons": [{"kind": r.kind, "tier": r.tier, "active": r.active, "via_contact": r.via_contact_id,
                             "from": local(r.exposure_start), "to": local(r.exposure_end), "evidence": r.evidence}
                            for r in reasons.get(c.pk, [])],
            })
        audit.record(actor=None, action="person.list", object_type="people.person", region_code=found.region_code,
                     source="cli", detail={"list": "case_contacts", "case": found.ref, "count": len(rows)})
        if format == "json":
            self.stdout.write(json.dumps({"case": found.ref, "count": len(rows), "contacts": rows},
                                         ensure_ascii=False, indent=2))
            return
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(COLUMNS)
        for r in rows:
            kinds = ";".join(sorted({f"{x['tier']}:{x['kind']}" for x in r["reasons"]}))
            writer.writerow([r["contact_id"], r["id_masked"], _cell(r["name"]), r["tier"], r["status"],
                             r["last_exposure"], r["due"], r["region_code"], r["queue"],
                             "1" if r["handoff_pending"] else "0", kinds])
        self.stdout.write(buffer.getvalue(), ending="")


def _cell(text: str) -> str:
    """Neutralise spreadsheet formulas in free text."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
