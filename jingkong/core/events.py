"""Appending domain events. Call inside the service's transaction so the event commits with the change.

Other apps react to events through :func:`subscribe`: a handler receives the list of new events of its type, inside the
same transaction as the change that emitted them (so a failing handler rolls the change back, and a case created from a
positive result exists exactly when the result does). Register handlers in an AppConfig.ready(). Handlers must be
set-based: a lab upload can emit thousands of events in one ``emit_many``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from django.db import transaction

from jingkong.core import clock
from jingkong.core.models import DomainEvent

Handler = Callable[[list[DomainEvent]], None]
_HANDLERS: dict[str, list[Handler]] = {}


def subscribe(type: str, handler: Handler) -> None:
    """Call ``handler(events)`` whenever events of ``type`` are emitted (in the emitting transaction)."""
    handlers = _HANDLERS.setdefault(type, [])
    if handler not in handlers:
        handlers.append(handler)


def unsubscribe(type: str, handler: Handler) -> None:
    if handler in _HANDLERS.get(type, []):
        _HANDLERS[type].remove(handler)


def _dispatch(events: list[DomainEvent]) -> None:
    by_type: dict[str, list[DomainEvent]] = {}
    for event in events:
        if event.type in _HANDLERS:
            by_type.setdefault(event.type, []).append(event)
    for type_, batch in by_type.items():
        for handler in list(_HANDLERS[type_]):
            handler(batch)


_COLUMNS = ("type", "subject_type", "subject_id", "region_code", "occurred_at", "recorded_at", "actor_id", "payload")


def _insert(event: DomainEvent) -> None:
    """Write one event with a single ``INSERT … RETURNING id`` and set its primary key.

    ``Model.objects.create()`` spent ~0.3 ms per event on ORM work, as much as the rest of a sampling scan's
    transaction (benchmarks/bench_scans.py); values are still prepared by the model's own fields.
    """
    connection = transaction.get_connection()
    fields = [DomainEvent._meta.get_field(c) for c in _COLUMNS]
    values = [f.get_db_prep_save(getattr(event, f.attname), connection) for f in fields]
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {qn(DomainEvent._meta.db_table)} ({', '.join(qn(c) for c in _COLUMNS)})"
            f" VALUES ({', '.join(['%s'] * len(_COLUMNS))}) RETURNING {qn('id')}",
            values,
        )
        event.pk = cursor.fetchone()[0]
    event._state.adding = False
    event._state.db = connection.alias


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
    event = DomainEvent(
        type=type,
        subject_type=subject_type,
        subject_id=str(subject_id),
        region_code=region_code or "",
        occurred_at=at or recorded,
        recorded_at=recorded,
        actor=actor if (actor is not None and getattr(actor, "pk", None)) else None,
        payload=payload or {},
    )
    _insert(event)
    if type in _HANDLERS:
        _dispatch([event])
    return event


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
    if rows and not transaction.get_connection().in_atomic_block:
        raise RuntimeError("events emitted outside a transaction: emit them from inside the service's atomic block")
    DomainEvent.objects.bulk_create(rows, batch_size=2000)
    if any(row.type in _HANDLERS for row in rows):
        _dispatch(rows)  # bulk_create sets primary keys on both databases (RETURNING)
    return len(rows)
