"""Background job kinds of the zones feature."""

from __future__ import annotations

from jingkong.core import jobs


@jobs.register("zones.review")
def review_job(ctx, scope_prefix: str = "", residents: bool = False) -> dict:
    """Re-evaluate every approved zone: refresh its clock inputs (infection, exposure, screening) and its countdown;
    the result lists the zones ready to be lifted or downgraded (a commander decides)."""
    from jingkong.zones import services

    if residents:  # people changed without an event (a direct database fix): rebuild every zone's residents first
        ctx.progress(0, None, "refreshing residents")
        services.refresh_people(None)
    ctx.progress(0, None, "reviewing zones")
    return services.review_all(progress=lambda done, total: ctx.progress(done, total, "zones"),
                               scope_prefix=scope_prefix)


@jobs.register("zones.import_risk_areas")
def import_risk_areas_job(ctx, path: str, list_name: str = "", error_file: str | None = None) -> dict:
    """Import another place's risk-area list (CSV code,name,level[,published_at])."""
    from pathlib import Path

    from jingkong.zones import services

    data = Path(path).read_bytes()
    return services.risk_areas_import(data, actor=ctx.actor, list_name=list_name or Path(path).stem,
                                      error_file=error_file or (str(path) + ".errors.csv"))
