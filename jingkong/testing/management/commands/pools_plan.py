"""``jingkong pools plan --prevalence P [--max-size K] [--sensitivity S --specificity Q] [--profile CODE]``."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from jingkong.testing import pooling


def _share(text: str, name: str) -> float:
    """A share given as 0.01 or as 1%."""
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError:
        raise CommandError(f"--{name}: {text!r} is not a number (write 0.01 or 1%)", returncode=2) from None
    return value


class Command(BaseCommand):
    help = "Dorfman pool-size planning: expected tests per person for each pool size, and the optimal size (JSON)."

    def add_arguments(self, parser):
        parser.add_argument("--prevalence", required=True, help="expected share of positives, e.g. 0.01 or 1%%")
        parser.add_argument("--max-size", default="20", help="largest pool size to consider (default 20)")
        parser.add_argument("--sensitivity", default="1", help="test sensitivity S in (0, 1] (default 1)")
        parser.add_argument("--specificity", default="1", help="test specificity Q in (0, 1] (default 1)")
        parser.add_argument("--profile", default="", help="policy profile code: also report the best size it allows")
        parser.add_argument("--profile-version", type=int, default=None, help="profile version (default: latest)")

    def handle(self, *args, prevalence, max_size, sensitivity, specificity, profile, profile_version, **options):
        p = _share(prevalence, "prevalence")
        s = _share(sensitivity, "sensitivity")
        q = _share(specificity, "specificity")
        try:
            k = int(str(max_size).strip())
        except ValueError:
            raise CommandError(f"--max-size: {max_size!r} is not a whole number", returncode=2) from None
        allowed = None
        if profile:
            allowed = self._allowed(profile, profile_version)
        try:
            result = pooling.plan(p, max_size=k, sensitivity=s, specificity=q, allowed=allowed)
        except pooling.PoolingError as exc:
            raise CommandError(f"--{exc.field.replace('_', '-')}: {exc.reason}", returncode=2) from None
        if profile:
            result["profile"] = profile
        self.stdout.write(json.dumps(result, ensure_ascii=False, indent=2))

    @staticmethod
    def _allowed(code: str, version: int | None) -> list[int]:
        from jingkong.core.exceptions import NotFound
        from jingkong.policy.schema import RulesIncomplete
        from jingkong.policy.selectors import profile_get, profile_rules

        try:
            rules = profile_rules(profile_get(code=code, version=version))
            return list(rules.section("testing").pool_sizes_allowed)
        except NotFound as exc:
            raise CommandError(f"--profile: {exc.message} (see 'jingkong policy list')", returncode=2) from None
        except RulesIncomplete as exc:
            raise CommandError(f"--profile: {exc}", returncode=2) from None
