from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from jingkong.access import services
from jingkong.access.roles import Role
from jingkong.core.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Create a user with a role and a region scope (optionally print an API token, shown once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, help=f"one of: {', '.join(Role.values)}")
        parser.add_argument("--region", default="",
                            help="division code of the user's region (its subtree is their scope); "
                                 "optional only for administrators (platform-wide)")
        secret = parser.add_mutually_exclusive_group()
        secret.add_argument("--password", help="password for the web UI (visible in the process list: prefer "
                                               "--password-stdin)")
        secret.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
        parser.add_argument("--display-name", default="")
        parser.add_argument("--token", action="store_true", help="also create an API token and print it (once)")
        parser.add_argument("--token-name", default="cli", help="name of that token (default: cli)")

    def handle(self, *args, **opts):
        password = opts["password"]
        if opts["password_stdin"]:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("--password-stdin: no password on standard input")
        try:
            user = services.user_create(
                username=opts["username"], role=opts["role"], region_code=opts["region"] or None, actor=None,
                password=password, display_name=opts["display_name"], source="cli",
            )
            token = None
            if opts["token"]:
                _, token = services.token_create(user=user, name=opts["token_name"], actor=None)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        where = user.region.code if user.region_id else "the whole platform"
        self.stdout.write(f"created user {user.username} ({user.role}, scope: {where})")
        if password is None:
            self.stdout.write("no password set: the account cannot log in to the web UI (tokens only)")
        if token:
            self.stdout.write(f"API token (shown once, store it now): {token}")
