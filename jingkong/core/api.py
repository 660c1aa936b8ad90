from __future__ import annotations

from ninja import Router

from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.core import selectors
from jingkong.core.schemas import EventOut, JobOut

router = Router(tags=["core"])


@router.get("/jobs", response=list[JobOut])
@require(Perm.MAP_VIEW)
def jobs_list(request, limit: int = 50):
    """Background jobs visible to the user (their own and those in their region), newest first."""
    return list(selectors.job_list(scope=request.scope, user=request.jk_user)[: max(1, min(limit, 500))])


@router.get("/jobs/{job_id}", response=JobOut)
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
