"""Reacting to the loop's events (registered in CommandConfig.ready): tasks for the grid workers.

Handlers run inside the emitting transaction (a lab upload, a contact-finding run, a zone approval). Each works in a
savepoint and never fails its caller: a missing policy section or a bad payload is logged and the tasks can be made
later (``jingkong command sweep``, re-delivered events are idempotent on ``(source, source_key)``).
"""

from __future__ import annotations

import logging

from django.db import transaction

from jingkong.command import loop
from jingkong.command.models import TaskSource
from jingkong.command.tasks import RulesMissing, create_auto_tasks

log = logging.getLogger(__name__)


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _create(source: str, build, events) -> None:
    """``build()`` reads the items: inside the savepoint too, so that a failing read (on PostgreSQL an aborted
    statement) never poisons the emitter's transaction."""
    try:
        with transaction.atomic():
            items = build()
            if not items:
                return
            create_auto_tasks(source, items, actor=getattr(events[0], "actor", None))
    except RulesMissing as exc:
        log.warning("no %s tasks for %d event(s): %s", source, len(events), exc.message)
    except Exception:  # noqa: BLE001 - never break the lab upload / contact run / zone approval that emitted this
        log.exception("could not create %s tasks for %d event(s) (first %s)", source, len(events), events[0].pk)


def on_pool_positive(events) -> None:
    tube_ids = sorted({t for t in (_int(e.subject_id) for e in events if e.subject_type == "testing.tube") if t})
    _create(TaskSource.RETEST_POOL, lambda: loop.pool_positive_items(tube_ids), events)


def on_contacts_identified(events) -> None:
    _create(TaskSource.LOCATE_CONTACT, lambda: loop.contacts_items(events), events)


def on_zone_approved(events) -> None:
    def build() -> list[dict]:
        items = []
        for e in events:
            payload = e.payload or {}
            kind = payload.get("to_type") or payload.get("type")
            zone_id = _int(e.subject_id)
            if kind in loop.DELIVER_ZONE_TYPES and zone_id:
                items += loop.zone_items(zone_id, str(payload.get("ref") or ""))
        return items

    _create(TaskSource.DELIVER, build, events)


SUBSCRIPTIONS = {
    "testing.pool_positive": on_pool_positive,
    "tracing.contacts_identified": on_contacts_identified,
    "zones.zone_approved": on_zone_approved,
    "zones.zone_changed": on_zone_approved,  # an approved zone upgraded to lockdown / high risk
}


def register() -> None:
    from jingkong.core.events import subscribe

    for kind, handler in SUBSCRIPTIONS.items():
        subscribe(kind, handler)
