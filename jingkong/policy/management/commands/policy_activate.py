from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from jingkong.core.exceptions import ApplicationError
from jingkong.geo.models import Region
from jingkong.policy import selectors, services
from jingkong.policy.management.commands._common import actor_for, parse_at


class Command(BaseCommand):
    help = "Put a policy profile in force for a region (normally the district); audited."

    def create_parser(self, prog_name, subcommand, **kwargs):
        # '--version N' is the profile version here, replacing Django's '--version' (the Django release).
        kwargs.setdefault("conflict_handler", "resolve")
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("code", help="Profile code, e.g. cn-9th-2022.")
        parser.add_argument("--region", required=True, help="Region code, e.g. 330206.")
        parser.add_argument("--reason", required=True, help="Why (recorded in the audit log).")
        parser.add_argument("--version", type=int, default=None, dest="profile_version",
                            help="Profile version (default: the latest).")
        parser.add_argument("--at", default=None, help="In force from this ISO date-time (default: now).")
        parser.add_argument("--if-changed", action="store_true",
                            help="Do nothing when this version is already in force for the region.")
        parser.add_argument("--user", default=None, help="Act as this user (default: the system).")

    def handle(self, *args, code, region, reason, profile_version, at, if_changed, user, **options):
        when = parse_at(at)
        actor = actor_for(user)
        target = Region.objects.filter(code=region).first()
        if target is None:
            raise CommandError(f"--region {region}: no such region")
        try:
            profile = selectors.profile_get(code=code, version=profile_version)
            activate = services.profile_ensure_active if if_changed else services.profile_activate
            row = activate(profile=profile, region=target, actor=actor, reason=reason, at=when, source="cli")
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        if row is None:
            self.stdout.write(f"{profile} is already in force for {target.code}; nothing changed")
        else:
            self.stdout.write(f"{profile} in force for {target.code} from {row.activated_at.isoformat()}")
