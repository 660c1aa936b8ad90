"""``jingkong facilities reserve [--district CODE] [--alert]``: free capacity, forecast and targets per district."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from jingkong.isolation import reserve
from jingkong.isolation.models import Facility, FacilityKind


class Command(BaseCommand):
    help = "Show quarantine capacity against the reserve target and when it runs out; --alert emits the alerts due."

    def add_arguments(self, parser):
        parser.add_argument("--district", default="", help="a district code (default: every district with a site)")
        parser.add_argument("--alert", action="store_true", help="emit isolation.capacity_alert where due")

    def handle(self, *args, district, alert, **options):
        if district and not (district.isdigit() and len(district) == 6):
            raise CommandError("--district: a 6-digit district code")
        sites = list(Facility.objects.filter(active=True).exclude(kind=FacilityKind.DESIGNATED_HOSPITAL))
        districts = [district] if district else sorted({f.region_code[:6] for f in sites})
        for code in districts:
            c = reserve.district_capacity(code, facilities=sites)
            days = f"{c.days_left} days (until {c.runs_out_on})" if c.days_left is not None else "not running out"
            self.stdout.write(f"{code} {c.name}: {c.free_rooms} free rooms / {c.free_beds} free beds, "
                              f"{c.arrivals_per_day}/day in, {c.departures_per_day}/day out, lasts {days}; "
                              f"targets: rooms {c.target_rooms}, beds {c.target_beds}"
                              f"{' — BELOW TARGET' if c.below_target else ''}{' — ALERT' if c.alert else ''}")
            if alert:
                with transaction.atomic():
                    sent = reserve.alerts_check(district=code)
                self.stdout.write(f"  {len(sent)} alerts emitted")
