from __future__ import annotations

from django.db.models import Q, QuerySet

from jingkong.access.guard import Scope
from jingkong.core.exceptions import NotFound
from jingkong.core.models import DomainEvent, Job


def job_list(*, scope: Scope, user) -> QuerySet[Job]:
    """Jobs the user may see: their own, plus any inside their region scope."""
    qs = Job.objects.all()
    if not scope.is_everything:
        qs = qs.filter(scope.q("region_code") | _own(user))
    return qs.order_by("-id")


def _own(user):
    return Q(created_by=user)


def job_get(*, scope: Scope, user, job_id: int) -> Job:
    job = job_list(scope=scope, user=user).filter(pk=job_id).first()
    if job is None:
        raise NotFound("job not found")
    return job


def event_list(*, scope: Scope, after_id: int = 0, types: list[str] | None = None, limit: int = 200) -> list[DomainEvent]:
    """Events inside the scope, plus platform-wide ones (no region: a district-wide load, a new policy profile)."""
    qs = DomainEvent.objects.filter(id__gt=after_id)
    if scope.prefix is None:
        return []
    if not scope.is_everything:
        qs = qs.filter(scope.q("region_code") | Q(region_code=""))
    if types:
        qs = qs.filter(type__in=types)
    return list(qs.order_by("id")[: max(1, min(limit, 1000))])
