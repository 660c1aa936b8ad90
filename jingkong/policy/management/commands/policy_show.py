from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from jingkong.core.exceptions import NotFound
from jingkong.policy import selectors
from jingkong.policy.schema import rule_values, source_for


class Command(BaseCommand):
    help = "Show a policy profile: every rule value with its provenance (S, SW, M, local)."

    def create_parser(self, prog_name, subcommand, **kwargs):
        # '--version N' is the profile version here, replacing Django's '--version' (the Django release).
        kwargs.setdefault("conflict_handler", "resolve")
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("code")
        parser.add_argument("--version", type=int, default=None, dest="profile_version",
                            help="Profile version (default: the latest).")
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print the stored rules and sources as JSON.")

    def handle(self, *args, code, profile_version, as_json=False, **options):
        try:
            p = selectors.profile_get(code=code, version=profile_version)
        except NotFound as exc:
            raise CommandError(exc.message) from None
        if as_json:
            self.stdout.write(_dumps({"code": p.code, "version": p.version, "rules": p.rules, "sources": p.sources}))
            return
        self.stdout.write(f"{p.code} v{p.version} — {p.name_zh} / {p.name_en}")
        self.stdout.write(f"edition {p.edition}, issued {p.issued_on}, valid from {p.valid_from}, origin {p.origin}")
        if p.summary_en:
            self.stdout.write(p.summary_en)
        self.stdout.write("")
        for path, value in rule_values(p.rules).items():
            note = source_for(p.sources or {}, path) or {}
            status = note.get("status", "?")
            ref = note.get("ref", "no source recorded")
            self.stdout.write(f"  {path} = {_dumps(value, indent=None)}  [{status}] {ref}")


def _dumps(value, indent: int | None = 2) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)
