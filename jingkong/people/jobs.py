"""Background job kinds of the population baseline (run by the worker, or from the command line via run_now)."""

from __future__ import annotations

from jingkong.core import jobs


@jobs.register("people.import_persons")
def import_persons_job(ctx, path: str, error_file: str | None = None, dry_run: bool = False,
                       scope_prefix: str = "", delete_after: bool = False) -> dict:
    """``delete_after``: the file is an upload holding ID numbers in clear — remove it once imported (or failed)."""
    from pathlib import Path

    from jingkong.people.importer import import_persons

    try:
        result = import_persons(path, actor=ctx.actor, error_file=error_file, dry_run=dry_run,
                                scope_prefix=scope_prefix, progress=ctx.progress)
    finally:
        if delete_after:
            Path(path).unlink(missing_ok=True)
    return result.summary()


@jobs.register("people.load_district")
def load_district_job(ctx, directory: str) -> dict:
    from jingkong.people.loader import load_district

    return load_district(directory, actor=ctx.actor, echo=ctx.log, progress=ctx.progress)
