from __future__ import annotations

from django.core.management.base import BaseCommand

from jingkong.access.guard import EVERYTHING
from jingkong.policy import selectors


class Command(BaseCommand):
    help = "List policy profile versions and where each is in force now."

    def add_arguments(self, parser):
        parser.add_argument("--code", default="", help="Only this profile code.")

    def handle(self, *args, code, **options):
        profiles = selectors.profile_list(code=code or None)
        if not profiles:
            self.stdout.write("No policy profiles. Run 'jingkong policy install'.")
            return
        in_force: dict[int, list[str]] = {}
        for region in sorted({a.region.code for a in selectors.activation_list(scope=EVERYTHING, limit=1000)}):
            try:
                found = selectors.active_profile(region_code=region)
            except selectors.PolicyNotActive:
                continue
            if found.activation.region.code == region:
                in_force.setdefault(found.profile.pk, []).append(region)
        self.stdout.write(f"{'code':<20} {'ver':>3}  {'edition':<8} {'issued':<10}  {'origin':<8} name / in force for")
        for p in profiles:
            where = ", ".join(in_force.get(p.pk, []))
            self.stdout.write(
                f"{p.code:<20} {p.version:>3}  {p.edition:<8} {p.issued_on.isoformat():<10}  {p.origin:<8} {p.name_en}"
                + (f"  [active: {where}]" if where else "")
            )
