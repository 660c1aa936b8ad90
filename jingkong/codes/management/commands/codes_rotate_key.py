from __future__ import annotations

from django.core.management.base import BaseCommand

from jingkong.codes import keys


class Command(BaseCommand):
    help = "Make a new health-code signing key; the previous keys keep verifying until their tokens have expired."

    def add_arguments(self, parser):
        parser.add_argument("--if-none", action="store_true",
                            help="Only make a key when none signs yet (for set-up scripts: idempotent).")
        parser.add_argument("--user", default=None, help="Act as this user in the audit log (default: the system).")

    def handle(self, *args, if_none, user, **options):
        from jingkong.policy.management.commands._common import actor_for

        actor = actor_for(user)
        if if_none:
            current = keys.published()
            signing = [k for k in current if k.retired_at is None]
            if signing:
                self.stdout.write(f"signing key {signing[0].kid} exists; nothing changed")
                return
        rotation = keys.rotate(actor=actor, source="cli")
        self.stdout.write(f"new signing key {rotation.key.kid} (Ed25519), signing from "
                          f"{rotation.key.created_at.isoformat()}")
        for row in rotation.retired:
            self.stdout.write(f"  {row.kid} stopped signing; verifies until {row.verify_until.isoformat()}")
