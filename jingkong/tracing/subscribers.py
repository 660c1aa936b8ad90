"""Reacting to other features' events (registered in TracingConfig.ready).

``testing.individual_positive`` (emitted inside the results transaction, possibly thousands at once): one case per
person not yet a case, created set-based in the same transaction; contact finding is queued for after the commit.
"""

from __future__ import annotations

import datetime as dt
import logging

from jingkong.tracing import services

log = logging.getLogger(__name__)


def _time(value) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)  # the event contract says ISO UTC
    return parsed.astimezone(dt.UTC)


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def on_individual_positive(events) -> None:
    positives = []
    for event in events:
        person_id = _int(event.subject_id)
        if event.subject_type != "people.person" or person_id is None:
            log.warning("testing.individual_positive %s names no person (%s:%s)", event.pk, event.subject_type,
                        event.subject_id)
            continue
        payload = event.payload or {}
        positives.append(services.Positive(
            person_id=person_id, sampled_at=_time(payload.get("sampled_at")) or event.occurred_at,
            event_id=event.pk, sample_id=_int(payload.get("sample_id")), campaign=str(payload.get("campaign") or ""),
            via=str(payload.get("via") or ""), resulted_at=_time(payload.get("resulted_at")),
            region_code=str(event.region_code or ""),
        ))
    if positives:
        services.cases_from_positives(positives, actor=getattr(events[0], "actor", None))
