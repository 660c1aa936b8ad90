from __future__ import annotations

from django.conf import settings
from ninja import Router, Status

from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.core import jobs, selectors
from jingkong.core.exceptions import PermissionDenied
from jingkong.core.schemas import DistrictJobIn, DistrictJobsOut, EventOut, JobOut

router = Router(tags=["core"])


@router.get("/jobs", response=list[JobOut])
@require(Perm.MAP_VIEW)
def jobs_list(request, limit: int = 50):
    """Background jobs visible to the user (their own and those in their region), newest first."""
    return list(selectors.job_list(scope=request.scope, user=request.jk_user)[: max(1, min(limit, 500))])


@router.get("/jobs/{int:job_id}", response=JobOut)
@require(Perm.MAP_VIEW)
def jobs_get(request, job_id: int):
    """One background job with its progress."""
    return selectors.job_get(scope=request.scope, user=request.jk_user, job_id=job_id)


@router.get("/events", response=list[EventOut])
@require(Perm.EVENT_VIEW)
def events_list(request, after_id: int = 0, type: str = "", limit: int = 200):
    """Domain events in the user's region scope after ``after_id`` (for polling clients)."""
    types = [t for t in type.split(",") if t] or None
    return selectors.event_list(scope=request.scope, after_id=after_id, types=types, limit=limit)


@router.post("/jobs/district", response={202: DistrictJobsOut})
@require(Perm.JOB_RUN)
def jobs_district(request, payload: DistrictJobIn):
    """Queue generating a synthetic Beilun and loading it (two background jobs, run in order by the worker).

    Platform-wide users only: loading a district changes every region.
    """
    if not request.scope.is_everything:
        raise PermissionDenied("only platform-wide users may generate and load a district")
    name = f"beilun-{payload.population}-seed{payload.seed}-{payload.days}d"
    directory = str(settings.DATA_DIR / "districts" / name)
    params = {"out": directory, "population": payload.population, "seed": payload.seed, "days": payload.days}
    generate = jobs.enqueue("synth.generate", params, actor=request.jk_user)
    load = jobs.enqueue("people.load_district", {"directory": directory}, actor=request.jk_user)
    return Status(202, {"directory": directory, "generate": generate, "load": load})
