"""``jingkong orders release-due [--facility CODE] [--region CODE]``: release every order whose criteria are met."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from jingkong.core import clock
from jingkong.isolation import orders
from jingkong.isolation.models import Facility, IsolationOrder, OrderStatus


class Command(BaseCommand):
    help = "Release the isolation orders whose last day has come and whose tests are all negative (next stages start)."

    def add_arguments(self, parser):
        parser.add_argument("--facility", default="", help="only the orders of this facility (code)")
        parser.add_argument("--region", default="", help="only people under this region code")

    def handle(self, *args, facility, region, **options):
        if region and not region.isdigit():
            raise CommandError("--region: a division code (digits)")
        qs = IsolationOrder.objects.filter(status=OrderStatus.ACTIVE, ends_on__lte=orders.local_date(clock.now()))
        if facility:
            found = Facility.objects.filter(code=facility.replace("\x00", "")).first()
            if found is None:
                raise CommandError(f"--facility: no facility {facility!r}")
            qs = qs.filter(facility=found)
        if region:
            qs = qs.filter(region_code__startswith=region)
        due = list(qs.order_by("pk"))
        report = orders.orders_release(due, actor=None)
        self.stdout.write(f"{len(due)} orders due: {len(report.released)} released, {len(report.blocked)} blocked")
        if options.get("verbosity", 1) > 1:
            self.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
