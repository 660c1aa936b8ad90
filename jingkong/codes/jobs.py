"""Background job kinds of the health-code feature."""

from __future__ import annotations

from jingkong.core import jobs

RECOMPUTE = "codes.recompute"


@jobs.register(RECOMPUTE)
def recompute_job(ctx, follow_moves: bool = False) -> dict:
    """Recompute every person's health code (set-based; see jingkong.codes.engine.recompute_all)."""
    from jingkong.codes import engine

    return engine.recompute_all(progress=lambda done, total, message: ctx.progress(done, total, message),
                                actor=ctx.actor, follow_moves=bool(follow_moves))


def register_kinds() -> None:
    """Importing this module registers the job kinds; called from CodesConfig.ready()."""
