"""Background job kinds of the directives area."""

from __future__ import annotations

from jingkong.core import jobs


@jobs.register("command.escalate")
def escalate_job(ctx, prefix: str = "") -> dict:
    """Escalate overdue tasks and problems under ``prefix`` (all when empty)."""
    from jingkong.command.directives import escalate

    ctx.progress(0, 1, "escalating overdue tasks and problems")
    result = escalate(prefix=prefix, actor=ctx.actor)
    ctx.progress(1, 1, "done")
    return result


@jobs.register("command.sweep")
def sweep_job(ctx, campaign_id: int, wave: int = 1, scope_prefix: str = "") -> dict:
    """Sweep-untested tasks for a testing round: one per grid with people not yet sampled (or to be resampled)."""
    from jingkong.access.guard import Scope
    from jingkong.command.loop import sweep_items
    from jingkong.command.tasks import create_auto_tasks
    from jingkong.testing.models import Campaign

    campaign = Campaign.objects.get(pk=campaign_id)
    ctx.progress(0, 2, "reading coverage by grid")
    items = sweep_items(campaign, scope=Scope(scope_prefix), wave=wave)
    ctx.progress(1, 2, f"creating tasks for {len(items)} grid(s)")
    result = create_auto_tasks("sweep_untested", items, actor=ctx.actor)
    ctx.progress(2, 2, "done")
    return {"grids": len(items), "created": result["created"], "existing": result["existing"]}
