"""``jingkong dashboard refresh [--family X] [--force]``: recompute the dashboard's figures now."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from jingkong.dashboard import families as registry
from jingkong.dashboard import refresher
from jingkong.dashboard.models import RefreshState


class Command(BaseCommand):
    help = ("Recompute the dashboard's figures: the families that are due (new events, a new day, too old), or all "
            "of them with --force; prints each family's rows and duration.")

    def add_arguments(self, parser):
        parser.add_argument("--family", action="append", default=[],
                            help="only this family (repeatable), e.g. --family cases --family clock")
        parser.add_argument("--force", action="store_true", help="recompute even when nothing changed")

    def handle(self, *args, family: list[str], force: bool = False, **options):
        registry.load_all()
        known = sorted(registry.all_families())
        unknown = [f for f in family if f not in known]
        if unknown:
            raise CommandError(f"unknown family {unknown[0]!r}; the families are: {', '.join(known) or '(none)'}")
        if not known:
            raise CommandError("no dashboard family is registered")
        done = refresher.run_pending(force=force, only=family or None)
        states = {s.family: s for s in RefreshState.objects.filter(family__in=family or known)}
        for name in family or known:
            state = states.get(name)
            if state is None or state.refreshed_at is None:
                self.stdout.write(f"{name:<12} never computed{': ' + state.error if state and state.error else ''}")
                continue
            mark = "refreshed" if name in done else "up to date"
            line = (f"{name:<12} {mark:<10} {state.rows:>9,} rows  {state.duration_ms:>7,} ms  "
                    f"version {state.version}  as of {state.refreshed_at:%Y-%m-%d %H:%M:%S} UTC")
            if state.error:
                line += f"  last error: {state.error.splitlines()[0][:200]}"
            self.stdout.write(line)
        failed = [n for n in (family or known) if states.get(n) is not None and states[n].error and n not in done]
        if failed and (force or family):
            raise CommandError(f"failed: {', '.join(failed)}")
