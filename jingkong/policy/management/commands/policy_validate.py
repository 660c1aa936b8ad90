from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from jingkong.core.exceptions import ApplicationError
from jingkong.policy.schema import validate_any
from jingkong.policy.services import parse_json_file


class Command(BaseCommand):
    help = "Validate a policy profile (or a bare rule set) in a JSON file; print each error with its JSON path."

    def add_arguments(self, parser):
        parser.add_argument("file")

    def handle(self, *args, file, **options):
        try:
            data = parse_json_file(file)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        _, errors = validate_any(data)
        if errors:
            for error in errors:
                self.stdout.write(f"{error.path or '(document)'}: {error.reason}")
            raise CommandError(f"{file}: {len(errors)} error{'s' if len(errors) != 1 else ''}")
        what = "profile" if isinstance(data, dict) and "rules" in data else "rule set"
        self.stdout.write(self.style.SUCCESS(f"{file}: valid {what}"))
