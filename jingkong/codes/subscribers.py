"""Incremental health-code updates on other features' events (registered in CodesConfig.ready).

Each handler runs inside the emitting transaction (a pool turns positive → its members' codes are yellow when the
results commit), works on whole batches of events, and finds the people concerned with one query per batch, then
calls :func:`jingkong.codes.engine.recompute_people` (set-based). A handler never breaks the change that emitted the
event: it runs in a savepoint, and a failure (e.g. no policy profile in force yet) is logged and rolled back to the
savepoint only — the next full recompute (``jingkong codes recompute``) repairs the codes.

=================================  ===================================================================================
event                              people recomputed
=================================  ===================================================================================
testing.pool_positive              the members of the tube (testing_sample rows of the tube)
testing.individual_positive        the person
testing.results_applied            people whose code cites a rule reading a ``test.*`` fact (negatives clear them)
tracing.case_created/case_updated  the case's person
tracing.contacts_identified/raised the contacts in the payload
tracing.contact_<status>           the contact's person
zones.zone_approved/changed/lifted the zone's residents now, and everybody whose code cites a rule reading a ``zone.*``
                                   fact (the previous residents of a lifted or shrunk zone)
zones.risk_areas_imported          people with an arrival inside the longest arrival window
isolation.order_*                  the person (subject)
codes.fever_referred, arrivals     the person (subject), for the checkpoint and venue features
people.person_created/updated      the person (a new person gets a code at once; a move follows the person's grid)
people.imported                    nobody evaluated: new people get a green code, codes follow moved people's grids
=================================  ===================================================================================
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable

from django.db import connection, transaction

from jingkong.core import clock

log = logging.getLogger(__name__)

CONTACT_STATUSES = ("identified", "notified", "located", "handed_over", "in_quarantine", "closed")
ISOLATION_EVENTS = ("isolation.order_started", "isolation.order_released", "isolation.order_converted",
                    "isolation.order_cancelled", "isolation.order_extended", "isolation.order_changed",
                    "isolation.symptom_checked", "isolation.symptoms_flagged")
PERSON_SUBJECT_EVENTS = ("testing.individual_positive", *ISOLATION_EVENTS, "codes.fever_referred",
                         "codes.fever_referral_closed", "codes.arrival_recorded", "people.person_created",
                         "people.person_updated")


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _ids(values: Iterable) -> list[int]:
    return sorted({i for i in (_int(v) for v in values) if i is not None})


def _recompute(person_ids: list[int], events, what: str) -> None:
    if not person_ids:
        return
    from jingkong.codes import engine

    actor = getattr(events[0], "actor", None)
    try:
        with transaction.atomic():  # a savepoint: a failure here never undoes the emitter's change
            engine.recompute_people(person_ids, at=clock.now(), actor=actor)
    except Exception:  # noqa: BLE001 - see the module docstring
        log.exception("health codes: incremental update after %s failed for %d people", what, len(person_ids))


def _select(sql: str, ids: list) -> list[int]:
    if not ids:
        return []
    out: list[int] = []
    with connection.cursor() as c:
        for i in range(0, len(ids), 5000):
            part = ids[i:i + 5000]
            c.execute(sql.format(marks=", ".join(["%s"] * len(part))), part)
            out.extend(r[0] for r in c.fetchall())
    return sorted(set(out))


def _citing(prefix: str) -> list[int]:
    from jingkong.codes import engine, facts
    from jingkong.codes import rules as R

    try:
        policies = facts.Policies(clock.now()).in_force()
    except Exception:  # noqa: BLE001 - no profile: nobody cites anything
        return []
    rule_ids = sorted({rid for p in policies for rid in R.rules_with_facts(p.rules, [prefix])})
    return engine.people_citing(rule_ids)


def on_person_subject(events) -> None:
    ids = _ids(e.subject_id for e in events if e.subject_type == "people.person")
    _recompute(ids, events, events[0].type)


def on_pool_positive(events) -> None:
    tubes = _ids(e.subject_id for e in events)
    members = _select("SELECT person_id FROM testing_sample WHERE tube_id IN ({marks})", tubes)
    _recompute(members, events, "testing.pool_positive")


def on_results_applied(events) -> None:
    _recompute(_citing("test."), events, "testing.results_applied")


def on_case(events) -> None:
    direct = _ids((e.payload or {}).get("person_id") for e in events)
    cases = _ids(e.subject_id for e in events if not (e.payload or {}).get("person_id"))
    people = set(direct) | set(_select("SELECT person_id FROM tracing_case WHERE id IN ({marks})", cases))
    _recompute(sorted(people), events, events[0].type)


def on_contacts(events) -> None:
    ids = []
    for e in events:
        ids.extend(item.get("person_id") for item in (e.payload or {}).get("contacts", []) if isinstance(item, dict))
    _recompute(_ids(ids), events, events[0].type)


def on_contact_status(events) -> None:
    direct = _ids((e.payload or {}).get("person_id") for e in events)
    contacts = _ids(e.subject_id for e in events if not (e.payload or {}).get("person_id"))
    people = set(direct) | set(_select("SELECT person_id FROM tracing_contact WHERE id IN ({marks})", contacts))
    _recompute(sorted(people), events, events[0].type)


def _zone_types_cited() -> set[str]:
    """Zone types some stored profile's health-code rule reads (``zone.<type>.resident``): a handful of rows."""
    from jingkong.policy.models import PolicyProfile

    cited: set[str] = set()
    for rules in PolicyProfile.objects.values_list("rules", flat=True):
        for rule in ((rules or {}).get("health_codes") or {}).get("rules", []):
            cited.update(re.findall(r"zone\.([a-z_]+)\.", str(rule.get("condition", ""))))
    return cited


def on_zone(events) -> None:
    # Only zones whose type (before or after the change) a code rule reads can change a resident's code: a
    # district-wide prevention zone (a million residents) is not recomputed person by person when no rule cites it.
    cited = _zone_types_cited()
    relevant = [e for e in events
                if {(e.payload or {}).get(k) for k in ("type", "from_type", "to_type")} & cited]
    zones = _ids(e.subject_id for e in relevant)
    residents = _select("SELECT person_id FROM zones_zoneresident WHERE zone_id IN ({marks})", zones) if zones else []
    _recompute(sorted(set(residents) | set(_citing("zone."))), events, events[0].type)


def on_risk_areas(events) -> None:
    since = clock.now() - dt.timedelta(days=62)
    from jingkong.core import bulk

    with connection.cursor() as c:
        c.execute("SELECT DISTINCT person_id FROM codes_arrival WHERE arrived_at >= %s", [bulk.db_datetime(since)])
        people = [r[0] for r in c.fetchall()]
    _recompute(sorted(set(people) | set(_citing("arrival."))), events, events[0].type)


def on_people_imported(events) -> None:
    from jingkong.codes import engine

    try:
        with transaction.atomic():
            engine.sync_population()
    except Exception:  # noqa: BLE001 - see the module docstring
        log.exception("health codes: population sync after people.imported failed")


def register() -> None:
    from jingkong.core.events import subscribe

    for kind in PERSON_SUBJECT_EVENTS:
        subscribe(kind, on_person_subject)
    subscribe("testing.pool_positive", on_pool_positive)
    subscribe("testing.results_applied", on_results_applied)
    subscribe("tracing.case_created", on_case)
    subscribe("tracing.case_updated", on_case)
    subscribe("tracing.contacts_identified", on_contacts)
    subscribe("tracing.contacts_raised", on_contacts)
    for status in CONTACT_STATUSES:
        subscribe(f"tracing.contact_{status}", on_contact_status)
    for kind in ("zones.zone_approved", "zones.zone_changed", "zones.zone_lifted"):
        subscribe(kind, on_zone)
    subscribe("zones.risk_areas_imported", on_risk_areas)
    subscribe("people.imported", on_people_imported)
