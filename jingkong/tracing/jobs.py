"""Background job kinds of the tracing feature."""

from __future__ import annotations

from jingkong.core import jobs


@jobs.register("tracing.find_contacts")
def find_contacts_job(ctx, case_ids: list[int] | None = None, all_open: bool = False, scope_prefix: str = "") -> dict:
    """Contact finding for the given cases (or every open case under ``scope_prefix``): check-ins into the
    timelines, contacts, link suggestions, clusters."""
    from jingkong.tracing import services

    ids = services.open_case_ids(scope_prefix=scope_prefix) if all_open else list(case_ids or [])
    ctx.progress(0, len(ids), "finding contacts")
    result = services.find_run(case_ids=ids, actor=ctx.actor, echo=ctx.log)
    ctx.progress(len(ids), len(ids), "done")
    return result
