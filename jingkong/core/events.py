"""Appending domain events. Call inside the service's transaction so the event commits with the change."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from jingkong.core import clock
from jingkong.core.models import DomainEvent


def emit(
    type: str,
    *,
    subject: Any = None,
    subject_type: str = "",
    subject_id: str | int = "",
    region_code: str = "",
    actor=None,
    payload: dict | None = None,
    at: dt.datetime | None = None,
) -> DomainEvent:
    """Append one event. ``subject`` may be a model instance (its label and pk are used)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError(f"event {type!r} emitted outside a transaction: emit it from inside the service's atomic block")
    if subject is not None:
        subject_type = subject_type or subject._meta.label_lower
        subject_id = subject_id or subject.pk
    recorded = clock.now()
    return DomainEvent.objects.create(
        type=type,
        subject_type=subject_type,
        subject_id=str(subject_id),
        region_code=region_code or "",
        occurred_at=at or recorded,
        recorded_at=recorded,
        actor=actor if (actor is not None and getattr(actor, "pk", None)) else None,
        payload=payload or {},
    )


def emit_many(events: Iterable[dict], *, actor=None) -> int:
    """Append many events at once (bulk operations); each dict holds the keyword arguments of :func:`emit`."""
    recorded = clock.now()
    rows = [
        DomainEvent(
            type=e["type"],
            subject_type=e.get("subject_type", ""),
            subject_id=str(e.get("subject_id", "")),
            region_code=e.get("region_code", ""),
            occurred_at=e.get("at") or recorded,
            recorded_at=recorded,
            actor=actor if (actor is not None and getattr(actor, "pk", None)) else None,
            payload=e.get("payload") or {},
        )
        for e in events
    ]
    DomainEvent.objects.bulk_create(rows, batch_size=2000)
    return len(rows)
