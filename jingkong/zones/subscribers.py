"""Reacting to new infections (registered in ZonesConfig.ready), inside the emitting transaction.

``tracing.case_created`` (payload person_id; a case made from a positive or entered by a tracer) and
``testing.individual_positive`` (subject the person; payload sampled_at) both mean a new infection: the zones the person
lives in get their last infection moved, and a positive living in an approved control zone gets a proposed lockdown
zone for its unit (at most one open proposal per person). Both events arrive for one positive; the second is a no-op.
"""

from __future__ import annotations

import datetime as dt
import logging

log = logging.getLogger(__name__)


def _time(value, fallback: dt.datetime) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        parsed = None
    if parsed is None:
        return fallback
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _apply(person_times: dict[int, dt.datetime], actor) -> None:
    from django.db import transaction

    from jingkong.zones.models import ZoneResident
    from jingkong.zones.services import infections_inside

    if not person_times or not ZoneResident.objects.filter(person_id__in=list(person_times)).exists():
        return
    try:
        with transaction.atomic():  # a savepoint: a failure here must not lose the lab results that emitted the event
            infections_inside(person_times, actor=actor)
    except Exception:  # noqa: BLE001 - logged; the review job (jingkong zones review) catches up
        log.exception("zones: could not record infections inside zones for %d people", len(person_times))


def on_contacts(events) -> None:
    """``tracing.contacts_identified`` / ``tracing.contacts_raised``: move the last exposure of the approved zones the
    contacts live in or whose case they were exposed to (the review job recomputes it in full)."""
    from django.db import transaction

    from jingkong.zones.services import exposures_found

    items = [c for e in events for c in (e.payload or {}).get("contacts", []) if isinstance(c, dict)]
    if not items:
        return
    try:
        with transaction.atomic():
            exposures_found(items)
    except Exception:  # noqa: BLE001 - logged; the review job catches up
        log.exception("zones: could not record contact exposures")


def on_individual_positive(events) -> None:
    found: dict[int, dt.datetime] = {}
    for e in events:
        pid = _int(e.subject_id)
        if e.subject_type != "people.person" or pid is None:
            continue
        t = _time((e.payload or {}).get("sampled_at"), e.occurred_at)
        found[pid] = min(found.get(pid, t), t)
    _apply(found, getattr(events[0], "actor", None) if events else None)


def on_case_created(events) -> None:
    from jingkong.tracing.models import Case

    ids = [i for i in (_int(e.subject_id) for e in events) if i is not None]
    found: dict[int, dt.datetime] = {}
    for case in Case.objects.filter(pk__in=ids).only("person_id", "first_positive_at", "created_at"):
        found[case.person_id] = case.first_positive_at or case.created_at
    _apply(found, getattr(events[0], "actor", None) if events else None)


# Fields of a person that decide which zone they live in, or the zone's counts (people.person_updated "fields").
PLACE_FIELDS = {"building", "household", "unit", "grid", "vulnerable"}


def _refresh_people(person_ids) -> None:
    from django.db import transaction

    from jingkong.zones.models import Zone, ZoneStatus
    from jingkong.zones.services import refresh_people

    if not Zone.objects.filter(status=ZoneStatus.APPROVED).exists():
        return
    try:
        with transaction.atomic():  # a savepoint: the person's own change is kept whatever happens here
            refresh_people(person_ids)
    except Exception:  # noqa: BLE001 - logged; `jingkong zones review --residents` rebuilds them
        log.exception("zones: could not re-place people in the zones in force")


def on_person_changed(events) -> None:
    """``people.person_created`` / ``people.person_updated`` (building, household, unit or grid changed): the person
    is placed in (or taken out of) the approved zones at once — a resident moving out of a lockdown building is no
    longer red for it, one moving in is."""
    ids = set()
    for e in events:
        fields = (e.payload or {}).get("fields")
        if e.type == "people.person_updated" and fields is not None and not (set(fields) & PLACE_FIELDS):
            continue
        pid = _int(e.subject_id)
        if pid is not None:
            ids.add(pid)
    if ids:
        _refresh_people(ids)


def on_people_imported(events) -> None:
    """``people.imported``: people created or moved by a bulk import — every approved zone is refreshed (set-based)."""
    _refresh_people(None)
