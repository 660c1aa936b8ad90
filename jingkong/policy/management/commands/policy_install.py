from __future__ import annotations

from django.core.management.base import BaseCommand

from jingkong.policy.services import profile_install_builtin


class Command(BaseCommand):
    help = "Install the policy profiles shipped with the platform (idempotent; a changed file becomes a new version)."

    def handle(self, *args, **options):
        for outcome in profile_install_builtin(source="cli"):
            state = "installed" if outcome.created else "unchanged"
            self.stdout.write(f"{outcome.code} v{outcome.version}: {state}")
