from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from jingkong.core import serving


def pending_migrations() -> list[str]:
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{m.app_label}.{m.name}" for m, _ in plan]


class Command(BaseCommand):
    help = "Run the production server (gunicorn workers and the background job worker)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("JINGKONG_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("JINGKONG_PORT", "8000")))
        parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="Web worker processes (default: cores).")
        parser.add_argument("--threads", type=int, default=8,
                            help="Threads per web worker (default 8: each open command screen holds one for its "
                                 "live stream).")
        parser.add_argument("--no-worker", action="store_true", help="Do not start the background job worker.")

    def handle(self, *args, host, port, workers, threads, no_worker, **options):
        pending = pending_migrations()
        if pending:
            raise CommandError(
                f"the database has {len(pending)} unapplied migration(s) ({', '.join(pending[:3])}...): "
                "run 'jingkong manage migrate' first"
            )
        if workers < 1 or threads < 1:
            raise CommandError("--workers and --threads must be at least 1")
        code = serving.run(host=host, port=port, workers=workers, threads=threads, with_worker=not no_worker,
                           echo=self.stdout.write)
        if code:
            raise CommandError(f"server stopped with exit code {code}")
