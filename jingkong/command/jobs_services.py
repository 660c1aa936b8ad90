"""Background job kinds of the services area (registered from ``CommandConfig.ready``)."""

from __future__ import annotations

from jingkong.core import jobs


@jobs.register("services.autoclose")
def autoclose_job(ctx) -> dict:
    """Close delivered requests whose confirmation window (profile in force for their grid) has passed."""
    from jingkong.command.requests import requests_autoclose

    ctx.progress(0, 1, "closing delivered requests without an answer")
    closed = requests_autoclose()
    ctx.progress(1, 1, "done")
    return {"closed": closed}
