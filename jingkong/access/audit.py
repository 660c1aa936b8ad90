"""Writing the audit log. Person-level writes and every read of a person's detail call :func:`record`."""

from __future__ import annotations

from collections.abc import Iterable

from jingkong.access.models import AuditLog
from jingkong.core import clock


def _client(request) -> tuple[str | None, str]:
    if request is None:
        return None, ""
    meta = getattr(request, "META", {})
    ip = meta.get("REMOTE_ADDR") or None
    return ip, (meta.get("HTTP_USER_AGENT") or "")[:255]


def record(
    *,
    actor,
    action: str,
    object_type: str = "",
    object_id: str | int = "",
    region_code: str = "",
    request=None,
    detail: dict | None = None,
    source: str = "",
) -> AuditLog:
    """Append one audit record. ``actor`` may be None for the system (e.g. a scheduled job)."""
    ip, agent = _client(request)
    if source and not agent:
        agent = source
    return AuditLog.objects.create(
        at=clock.now(),
        user=actor if getattr(actor, "pk", None) else None,
        username=getattr(actor, "username", "") or "system",
        role=getattr(actor, "role", "") or "",
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        region_code=region_code or "",
        ip=ip,
        user_agent=agent,
        detail=detail or {},
    )


def record_many(*, actor, action: str, object_type: str, items: Iterable[tuple[str, str]], request=None,
                detail: dict | None = None) -> int:
    """Audit many objects at once (lists, bulk imports): ``items`` yields ``(object_id, region_code)``."""
    ip, agent = _client(request)
    at = clock.now()
    rows = [
        AuditLog(
            at=at,
            user=actor if getattr(actor, "pk", None) else None,
            username=getattr(actor, "username", "") or "system",
            role=getattr(actor, "role", "") or "",
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            region_code=region_code or "",
            ip=ip,
            user_agent=agent,
            detail=detail or {},
        )
        for object_id, region_code in items
    ]
    AuditLog.objects.bulk_create(rows, batch_size=5000)
    return len(rows)
