from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db.models import Count, Q

from jingkong.access.models import User


class Command(BaseCommand):
    help = "List users with their role, region scope and number of active API tokens."

    def add_arguments(self, parser):
        parser.add_argument("--role", default="", help="only this role")
        parser.add_argument("--region", default="", help="only users inside this region's subtree")

    def handle(self, *args, **opts):
        qs = User.objects.select_related("region").order_by("username").annotate(
            tokens=Count("api_tokens", filter=Q(api_tokens__revoked_at__isnull=True))
        )
        if opts["role"]:
            qs = qs.filter(role=opts["role"])
        if opts["region"]:
            qs = qs.filter(region__code__startswith=opts["region"])
        self.stdout.write(f"{'username':<24} {'role':<20} {'region':<16} {'active':<6} tokens")
        for user in qs:
            region = user.region.code if user.region_id else "*"
            self.stdout.write(f"{user.username:<24} {user.role:<20} {region:<16} {'yes' if user.is_active else 'no':<6} "
                              f"{user.tokens}")
