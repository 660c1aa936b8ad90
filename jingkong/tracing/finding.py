"""Contact finding: from cases to a deduplicated, ranked contact list with the evidence for every contact.

1. Each case's window comes from the policy profile in force for its region (jingkong.tracing.windows).
2. The contact-finding engine (jingkong.analytics.contacts.find_contacts; DuckDB over the check-in lake plus the
   registry) returns findings for all cases of the run at once: household, workplace, venue co-location (overlap ≥
   the profile's minutes), same vehicle, and space-time companions when the lake holds location pings.
3. Close contacts = those findings (not companions) + the people a tracer named. Secondary contacts = the engine's
   household and venue findings for each close contact, from their first exposure to a case (inside its window) until
   they were quarantined (or now) — the 8th-edition definition of 次密接 — when the profile manages secondary
   contacts at all.
4. Everything is merged per person (jingkong.tracing.rules.merge_contact) and written set-based: one contact per
   person with all its reasons; re-runs update instead of duplicating; exposures a re-run no longer finds are marked
   inactive, not deleted. Cases are never contacts (a contact who becomes a case is closed).
5. Contacts living outside the case's jurisdiction get a hand-off to their own street's queue.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import importlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.db import connection, transaction

from jingkong.access import audit
from jingkong.core import bulk, clock
from jingkong.core.events import emit_many
from jingkong.people.models import Person
from jingkong.policy.selectors import ActiveProfile, PolicyNotActive
from jingkong.tracing import rules, windows
from jingkong.tracing.models import (
    Case,
    CaseStatus,
    Contact,
    ContactReason,
    ContactStatus,
    Handoff,
    HandoffStatus,
    ReasonKind,
    Stay,
    StayKind,
    Tier,
)

INDEX_KINDS = ("household", "workplace", "venue", "transport")
SECONDARY_KINDS = ("household", "venue")
CHUNK = 5000


def default_engine():
    """The contact-finding engine module (jingkong.analytics.contacts): ``find_contacts``, ``IndexWindow``,
    ``IndexStay``."""
    return importlib.import_module("jingkong.analytics.contacts")


def default_lake():
    """The check-in lake under the data directory (an empty or missing lake simply yields no check-ins)."""
    from jingkong.tracing.lake import CheckinLake

    return CheckinLake()


def _chunks(items: list, size: int = CHUNK) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


@dataclass
class ReasonRow:
    """One exposure to persist: person ``person_id`` is a ``tier`` contact of ``case_id`` (via ``via_person_id``)."""

    person_id: int
    case_id: int
    tier: str
    kind: str
    start: dt.datetime | None
    end: dt.datetime | None
    evidence: dict
    key: str
    due_at: dt.datetime | None = None
    via_person_id: int | None = None
    added_by: object | None = None


@dataclass
class Outcome:
    contacts_new: int = 0
    contacts_changed: int = 0
    reasons_new: int = 0
    reasons_changed: int = 0
    reasons_inactive: int = 0
    handoffs_new: int = 0
    by_tier: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"contacts_new": self.contacts_new, "contacts_changed": self.contacts_changed,
                "reasons_new": self.reasons_new, "reasons_changed": self.reasons_changed,
                "reasons_inactive": self.reasons_inactive, "handoffs_new": self.handoffs_new,
                "by_tier": self.by_tier}


def _due(profile: ActiveProfile, tier: str, now: dt.datetime) -> dt.datetime | None:
    deadlines = profile.rules.quarantine.transfer_deadline_hours
    if tier == Tier.CLOSE:
        return now + dt.timedelta(hours=deadlines.close_contact)
    if tier == Tier.SECONDARY:
        return now + dt.timedelta(hours=deadlines.secondary_contact)
    return None  # space-time companions are tested and watched, not transferred


def _reason_identity(f, kind: str) -> tuple:
    """What makes an exposure the same one on a re-run: the place and start for time-bound exposures; the relation
    alone for household and workplace (their end moves with the case's window)."""
    ev = f.evidence or {}
    if kind in (ReasonKind.HOUSEHOLD, ReasonKind.WORKPLACE):
        return (ev.get("household_id") or ev.get("venue_id") or "",)
    place = ev.get("venue_id") or ev.get("transport_number") or ev.get("number") or ev.get("cell") or ""
    return (place, f.start.isoformat() if f.start else "")


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars from DuckDB/pyarrow
        return value.item()
    return value


@dataclass
class _Plan:
    case: Case
    window: rules.Window
    profile: ActiveProfile
    jurisdiction: str


def _plans(cases: list[Case], now: dt.datetime) -> tuple[list[_Plan], list[dict]]:
    plans, skipped = [], []
    for case in cases:
        try:
            window, profile = windows.case_window(case, now=now)
        except rules.NoAnchor as exc:
            skipped.append({"case": case.ref, "reason": str(exc)})
            continue
        except PolicyNotActive as exc:
            skipped.append({"case": case.ref, "reason": exc.message})
            continue
        plans.append(_Plan(case, window, profile, windows.jurisdiction_of(case)))
    return plans, skipped


def _index_windows(plans: list[_Plan], engine) -> dict[int, object]:
    """Engine windows of the cases, with their timeline outings (venue and transport stays) clipped to the window."""
    by_case: dict[int, list] = defaultdict(list)
    stays = Stay.objects.filter(case_id__in=[p.case.pk for p in plans], flag_inverted=False).exclude(
        kind=StayKind.HOME).values("case_id", "kind", "source", "venue_id", "start", "end", "transport_mode",
                                   "transport_number", "carriage", "seat")
    spans = {p.case.pk: p.window for p in plans}
    tz = ZoneInfo(clock.local_time_zone())
    for s in stays:
        w = spans[s["case_id"]]
        if s["end"] < w.start or s["start"] > w.end:
            continue
        if s["kind"] == StayKind.WORKPLACE and s["source"] == "registry":
            continue  # the registry workplace is found by the engine's workplace kind, not as a timed stay
        start, end = max(s["start"], w.start), min(s["end"], w.end)
        if s["kind"] == StayKind.TRANSPORT and s["transport_number"]:
            transport = {"mode": s["transport_mode"], "number": s["transport_number"], "carriage": s["carriage"],
                         "seat": s["seat"], "date": s["start"].astimezone(tz).date().isoformat()}
            by_case[s["case_id"]].append(engine.IndexStay(start=start, end=end, venue_id=s["venue_id"],
                                                          transport=transport))
        elif s["venue_id"] is not None:
            by_case[s["case_id"]].append(engine.IndexStay(start=start, end=end, venue_id=s["venue_id"]))
    return {
        p.case.pk: engine.IndexWindow(key=p.case.pk, person_id=p.case.person_id, start=p.window.start,
                                      end=p.window.end, stays=tuple(by_case.get(p.case.pk, ())))
        for p in plans
    }


def _companion(profile: ActiveProfile) -> tuple[int, int]:
    """Space-time companion rule of the profile (the engine finds none when the lake holds no location pings)."""
    c = profile.rules.contacts.space_time_companion
    return (c.cell_metres, c.min_minutes)


def contacts_find(*, case_ids: Iterable[int], actor=None, now: dt.datetime | None = None, lake=None,
                  engine=None, echo: Callable[[str], None] | None = None) -> dict:
    """Find, merge and store the contacts of the cases (one transaction). Returns a summary."""
    now = now or clock.now()
    engine = engine or default_engine()
    cases = list(Case.objects.filter(pk__in=list(case_ids)).exclude(status=CaseStatus.CLOSED)
                 .select_related("tracer__region").order_by("pk"))
    plans, skipped = _plans(cases, now)
    summary = {"cases": len(plans), "skipped": skipped, "close": 0, "secondary": 0, "companion": 0}
    if not plans:
        return summary | Outcome().as_dict()
    plan_of = {p.case.pk: p for p in plans}
    index_persons = {p.case.person_id for p in plans}

    # 1. The cases' own exposures, one engine call per set of rule values.
    index = _index_windows(plans, engine)
    groups: dict[tuple, list[int]] = defaultdict(list)
    for p in plans:
        groups[(p.profile.rules.contacts.colocation_overlap_minutes, _companion(p.profile))].append(p.case.pk)
    findings = []
    for (overlap, companion), ids in groups.items():
        findings += engine.find_contacts([index[i] for i in ids], overlap_minutes=overlap, lake=lake,
                                         kinds=INDEX_KINDS, companion=companion)
    if echo:
        echo(f"{len(findings):,} exposures of {len(plans):,} cases")
    found_persons = {int(f.person_id) for f in findings}
    tracer_rows = list(ContactReason.objects.filter(case_id__in=plan_of, kind=ReasonKind.TRACER, active=True)
                       .values("contact__person_id", "case_id", "exposure_start", "exposure_end"))
    case_persons = _case_persons(found_persons | {r["contact__person_id"] for r in tracer_rows})

    rows: list[ReasonRow] = []
    # close contact -> first exposure to any case of the run: 次密接 count from the close contact's *first* contact
    # with the case (8th-edition definition: "密接与病例的首次接触…至该密接被隔离管理前"), not from the last one.
    close_exposure: dict[int, dt.datetime] = {}
    close_cases: dict[int, set[int]] = defaultdict(set)
    for f in findings:
        pid, case_id = int(f.person_id), int(f.key)
        if pid in index_persons or pid in case_persons or case_id not in plan_of:
            continue
        tier = Tier.COMPANION if f.kind == "companion" else Tier.CLOSE
        plan = plan_of[case_id]
        rows.append(ReasonRow(
            person_id=pid, case_id=case_id, tier=tier, kind=f.kind, start=f.start, end=f.end,
            evidence=_json_safe(dict(f.evidence or {})), key=rules.reason_key(case_id, "", f.kind, *_reason_identity(f, f.kind)),
            due_at=_due(plan.profile, tier, now),
        ))
        if tier == Tier.CLOSE:
            close_cases[pid].add(case_id)
            first = f.start or f.end
            if first is not None:
                close_exposure[pid] = min(close_exposure.get(pid, first), first)
    for r in tracer_rows:
        pid = r["contact__person_id"]
        if pid in case_persons:
            continue
        close_cases[pid].add(r["case_id"])
        first = r["exposure_start"] or r["exposure_end"]
        if first is not None:
            close_exposure[pid] = min(close_exposure.get(pid, first), first)

    # 2. Secondary contacts: the close contacts' own household and venue contacts from their last exposure.
    rows += _secondary(close_cases, close_exposure, plan_of, index_persons, case_persons, engine, lake, now, echo)

    with transaction.atomic():
        outcome = persist(rows, plans=plan_of, now=now, actor=actor, deactivate_for_cases=set(plan_of))
        Case.objects.filter(pk__in=list(plan_of)).update(contacts_found_at=now)
        emit_many([{"type": "tracing.contacts_found", "subject_type": "tracing.case", "subject_id": p.case.pk,
                    "region_code": p.case.region_code,
                    "payload": {"ref": p.case.ref, "window_start": p.window.start.isoformat(),
                                "window_end": p.window.end.isoformat(), "lookback_days": p.window.days,
                                "profile": p.profile.profile.code}} for p in plans], actor=actor)
    for tier in (Tier.CLOSE, Tier.SECONDARY, Tier.COMPANION):
        summary[str(tier)] = len({r.person_id for r in rows if r.tier == tier})
    summary.update(outcome.as_dict())
    return summary


def _case_persons(person_ids: set[int]) -> set[int]:
    out: set[int] = set()
    ids = list(person_ids)
    for chunk in _chunks(ids):
        out.update(Case.objects.filter(person_id__in=chunk).values_list("person_id", flat=True))
    return out


def _secondary(close_cases, close_exposure, plan_of, index_persons, case_persons, engine, lake, now, echo):
    candidates = [pid for pid in close_cases if pid in close_exposure]
    if not candidates:
        return []
    quarantined = {}
    for chunk in _chunks(candidates):
        quarantined.update(Contact.objects.filter(person_id__in=chunk, in_quarantine_at__isnull=False)
                           .values_list("person_id", "in_quarantine_at"))
    groups: dict[int, list] = defaultdict(list)
    profile_of: dict[int, ActiveProfile] = {}
    for pid in candidates:
        # The rules of the case the contact met last (its profile decides minutes and whether 次密接 are managed).
        case_id = max(close_cases[pid], key=lambda c: plan_of[c].window.end if c in plan_of else now)
        plan = plan_of.get(case_id)
        if plan is None or plan.profile.rules.quarantine.secondary_contact.mode == "none":
            continue
        start, end = close_exposure[pid], quarantined.get(pid) or now
        if end <= start:
            continue
        profile_of[pid] = plan.profile
        groups[plan.profile.rules.contacts.colocation_overlap_minutes].append(
            engine.IndexWindow(key=pid, person_id=pid, start=start, end=end))
    findings = []
    for overlap, wins in groups.items():
        findings += engine.find_contacts(wins, overlap_minutes=overlap, lake=lake, kinds=SECONDARY_KINDS,
                                         companion=None)
    if echo:
        echo(f"{len(findings):,} exposures of {len(profile_of):,} close contacts")
    more_cases = _case_persons({int(f.person_id) for f in findings})
    rows = []
    for f in findings:
        pid, via = int(f.person_id), int(f.key)
        if pid == via or pid in index_persons or pid in case_persons or pid in more_cases or via not in profile_of:
            continue
        for case_id in sorted(close_cases[via]):
            plan = plan_of.get(case_id)
            if plan is None:
                continue
            rows.append(ReasonRow(
                person_id=pid, case_id=case_id, tier=Tier.SECONDARY, kind=f.kind, start=f.start, end=f.end,
                evidence=_json_safe(dict(f.evidence or {})), via_person_id=via,
                key=rules.reason_key(case_id, via, f.kind, *_reason_identity(f, f.kind)),
                due_at=_due(plan.profile, Tier.SECONDARY, now),
            ))
    return rows


# --- persistence ------------------------------------------------------------------------------------------------------


def persist(rows: list[ReasonRow], *, plans: dict[int, _Plan] | None = None, cases: dict[int, Case] | None = None,
            now: dt.datetime, actor=None, deactivate_for_cases: set[int] | None = None, request=None) -> Outcome:
    """Merge exposures into contacts and store them set-based (inside one transaction).

    ``deactivate_for_cases``: automatic reasons of these cases that ``rows`` no longer contain become inactive.
    """
    with transaction.atomic():
        return _persist(rows, plans=plans, cases=cases, now=now, actor=actor,
                        deactivate_for_cases=deactivate_for_cases or set(), request=request)


@dataclass
class _Contact:
    """A contact row as persistence needs it (plain values: tens of thousands are handled per run)."""

    pk: int | None
    person_id: int
    tier: str
    status: str
    region_code: str
    queue_region_code: str
    last_exposure_at: dt.datetime | None
    due_at: dt.datetime | None
    closed_at: dt.datetime | None
    close_reason: str

    def state(self) -> rules.ContactState:
        return rules.ContactState(self.tier, self.status, self.last_exposure_at, self.due_at, self.closed_at,
                                  self.close_reason)


_CONTACT_FIELDS = ("pk", "person_id", "tier", "status", "region_code", "queue_region_code", "last_exposure_at",
                   "due_at", "closed_at", "close_reason")


@functools.lru_cache(maxsize=65536)
def _dt(value):
    """The database form of a datetime (cached: a run writes the same few instants many times)."""
    return bulk.db_datetime(value) if value is not None else None


def _update_rows(table: str, set_columns: list[str], rows: list[list], *, json_columns: tuple[str, ...] = ()) -> None:
    """``UPDATE table SET … WHERE id = %s`` for many rows in one prepared statement (each row: values…, id)."""
    if not rows:
        return
    pg = bulk.vendor() == "postgresql"
    sets = ", ".join(f'"{c}" = ' + ("CAST(%s AS jsonb)" if pg and c in json_columns else "%s") for c in set_columns)
    with connection.cursor() as cursor:
        cursor.executemany(f'UPDATE "{table}" SET {sets} WHERE "id" = %s', rows)


def _persist(rows, *, plans, cases, now, actor, deactivate_for_cases, request) -> Outcome:
    out = Outcome()
    case_of = {cid: p.case for cid, p in (plans or {}).items()} | (cases or {})
    by_person: dict[int, list[ReasonRow]] = defaultdict(list)
    for r in rows:
        by_person[r.person_id].append(r)
    persons = sorted(by_person)
    via_persons = sorted({r.via_person_id for r in rows if r.via_person_id})

    existing: dict[int, _Contact] = {}
    for chunk in _chunks(sorted(set(persons) | set(via_persons))):
        # Locked in pk order: a tracer's status change and a run never overwrite each other.
        for values in (Contact.objects.select_for_update().filter(person_id__in=chunk).order_by("pk")
                       .values_list(*_CONTACT_FIELDS)):
            existing[values[1]] = _Contact(*values)
    grids: dict[int, str] = {}
    for chunk in _chunks([p for p in persons if p not in existing]):
        grids.update(Person.objects.filter(pk__in=chunk).values_list("pk", "grid__code"))

    new_contacts: list[_Contact] = []
    changed: list[_Contact] = []
    raised: set[int] = set()
    for pid in persons:
        exposures = [rules.Exposure(r.tier, r.end, r.due_at) for r in by_person[pid]]
        current = existing.get(pid)
        if current is None:
            first_case = case_of.get(by_person[pid][0].case_id)
            state = rules.merge_contact(None, exposures)
            region = grids.get(pid) or (first_case.region_code if first_case else "")
            fallback = windows.jurisdiction_of(first_case) if first_case else region[:9]
            new_contacts.append(_Contact(None, pid, state.tier, state.status, region,
                                         windows.queue_of(grids.get(pid) or "", fallback), state.last_exposure_at,
                                         state.due_at, None, ""))
            continue
        before = current.state()
        state = rules.merge_contact(before, exposures)
        if state != before:
            if rules.TIER_RANK[state.tier] > rules.TIER_RANK[before.tier] or (
                    before.status == rules.CLOSED and state.status != rules.CLOSED):
                raised.add(pid)
            current.tier, current.status, current.last_exposure_at = state.tier, state.status, state.last_exposure_at
            current.due_at, current.closed_at, current.close_reason = state.due_at, state.closed_at, state.close_reason
            changed.append(current)
    stamp = _dt(now)
    bulk.bulk_upsert(
        "tracing_contact",
        ["person_id", "tier", "status", "region_code", "queue_region_code", "last_exposure_at", "first_identified_at",
         "due_at", "handed_to", "close_reason", "note", "created_at", "updated_at"],
        [[c.person_id, c.tier, c.status, c.region_code, c.queue_region_code, _dt(c.last_exposure_at), stamp,
          _dt(c.due_at), "", "", "", stamp, stamp] for c in new_contacts],
        conflict_columns=["person_id"],  # a contact created meanwhile by another run is kept as it is
    )
    _update_rows("tracing_contact", ["tier", "status", "last_exposure_at", "due_at", "closed_at", "close_reason",
                                     "updated_at"],
                 [[c.tier, c.status, _dt(c.last_exposure_at), _dt(c.due_at), _dt(c.closed_at), c.close_reason, stamp,
                   c.pk] for c in changed])
    out.contacts_new, out.contacts_changed = len(new_contacts), len(changed)

    contact_of: dict[int, _Contact] = dict(existing)
    for chunk in _chunks([c.person_id for c in new_contacts]):
        for values in Contact.objects.filter(person_id__in=chunk).values_list(*_CONTACT_FIELDS):
            contact_of[values[1]] = _Contact(*values)
    out.reasons_new, out.reasons_changed, out.reasons_inactive = _persist_reasons(
        rows, contact_of, now, deactivate_for_cases)
    out.handoffs_new = _handoffs(rows, contact_of, case_of, now, actor)
    tiers = defaultdict(int)
    for pid in persons:
        if pid in contact_of:
            tiers[contact_of[pid].tier] += 1
    out.by_tier = dict(tiers)

    # Events for the features downstream (grouping, transfer, codes): one per grid and kind, listing its contacts
    # (set-based consumers; a mass run emits hundreds of events, not tens of thousands). The audit trail of person
    # data keeps one record per person, so "who touched this person" finds it.
    new_ids = {c.person_id for c in new_contacts}
    touched = [contact_of[p] for p in persons if p in contact_of and (p in new_ids or p in raised)]
    refs = {cid: c.ref for cid, c in case_of.items()}
    batches: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for c in touched:
        kind = "tracing.contacts_identified" if c.person_id in new_ids else "tracing.contacts_raised"
        batches[(kind, c.region_code)].append({
            "id": c.pk, "person_id": c.person_id, "tier": c.tier,
            "cases": sorted({refs.get(r.case_id, "") for r in by_person[c.person_id]} - {""}),
            "last_exposure_at": c.last_exposure_at.isoformat() if c.last_exposure_at else None,
            "due_at": c.due_at.isoformat() if c.due_at else None,
        })
    if batches:
        emit_many([{"type": kind, "subject_type": "tracing.contact", "subject_id": "", "region_code": region,
                    "payload": {"count": len(items), "contacts": items}}
                   for (kind, region), items in sorted(batches.items())], actor=actor)
        audit.record_many(actor=actor, action="contact.identify", object_type="people.person",
                          items=((c.person_id, c.region_code) for c in touched), request=request,
                          detail={"cases": sorted(refs.values())[:50]})
    return out


def _digest(r: ReasonRow) -> str:
    text = json.dumps([r.tier, r.evidence, r.start.isoformat() if r.start else None,
                       r.end.isoformat() if r.end else None], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _persist_reasons(rows, contact_of, now, deactivate_for_cases) -> tuple[int, int, int]:
    contact_ids = sorted({contact_of[r.person_id].pk for r in rows if r.person_id in contact_of})
    existing: dict[tuple[int, str], tuple[int, str, bool]] = {}
    with connection.cursor() as cursor:  # plain values, no per-row conversion: a run may hold 100 000 reasons
        for chunk in _chunks(contact_ids):
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(f'SELECT "contact_id", "key", "id", "digest", "active" FROM "tracing_contactreason" '
                           f'WHERE "contact_id" IN ({marks})', chunk)
            for contact_id, key, pk, digest, active in cursor.fetchall():
                existing[(contact_id, key)] = (pk, digest, bool(active))
    stale: set[int] = set()
    if deactivate_for_cases:
        stale = set(ContactReason.objects.filter(case_id__in=list(deactivate_for_cases), active=True)
                    .exclude(kind=ReasonKind.TRACER).values_list("pk", flat=True))
    stamp = _dt(now)
    new, changed, seen = [], [], set()
    for r in rows:
        contact = contact_of.get(r.person_id)
        if contact is None:
            continue
        ident = (contact.pk, r.key)
        if ident in seen:
            continue
        seen.add(ident)
        current = existing.get(ident)
        digest = _digest(r)
        if current is None:
            via = contact_of.get(r.via_person_id) if r.via_person_id else None
            new.append([contact.pk, r.case_id, via.pk if via else None, r.tier, r.kind,
                        json.dumps(r.evidence, ensure_ascii=False), _dt(r.start), _dt(r.end), r.key, digest,
                        bulk.db_bool(True), getattr(r.added_by, "pk", None), stamp])
            continue
        pk, old_digest, active = current
        stale.discard(pk)
        if digest != old_digest or not active:
            changed.append([r.tier, json.dumps(r.evidence, ensure_ascii=False), _dt(r.start), _dt(r.end), digest,
                            bulk.db_bool(True), pk])
    bulk.bulk_upsert(
        "tracing_contactreason",
        ["contact_id", "case_id", "via_contact_id", "tier", "kind", "evidence", "exposure_start", "exposure_end", "key",
         "digest", "active", "added_by_id", "created_at"],
        new, conflict_columns=["contact_id", "key"],
    )
    _update_rows("tracing_contactreason", ["tier", "evidence", "exposure_start", "exposure_end", "digest", "active"],
                 changed, json_columns=("evidence",))
    if stale:
        for chunk in _chunks(sorted(stale)):
            ContactReason.objects.filter(pk__in=chunk).update(active=False)
    return len(new), len(changed), len(stale)


def _handoffs(rows, contact_of, case_of, now, actor) -> int:
    wanted: dict[tuple[int, str], dict] = {}
    for r in rows:
        contact, case = contact_of.get(r.person_id), case_of.get(r.case_id)
        if contact is None or case is None or contact.status == ContactStatus.CLOSED:
            continue
        home = windows.jurisdiction_of(case)
        if contact.region_code.startswith(home) or contact.queue_region_code.startswith(home):
            continue
        key = (contact.pk, contact.queue_region_code)
        if key not in wanted:
            wanted[key] = {"contact_id": contact.pk, "case_id": case.pk, "from": home, "to": contact.queue_region_code}
    if not wanted:
        return 0
    already = set()
    for chunk in _chunks(sorted({k[0] for k in wanted})):
        already.update(Handoff.objects.filter(contact_id__in=chunk).values_list("contact_id", "to_region_code"))
    fresh = [h for k, h in wanted.items() if k not in already]
    if not fresh:
        return 0
    stamp = _dt(now)
    requester = actor.pk if getattr(actor, "pk", None) else None
    bulk.bulk_upsert(
        "tracing_handoff",
        ["contact_id", "case_id", "from_region_code", "to_region_code", "status", "requested_at", "requested_by_id",
         "note"],
        [[h["contact_id"], h["case_id"], h["from"], h["to"], HandoffStatus.REQUESTED.value, stamp, requester, ""]
         for h in fresh],
        conflict_columns=["contact_id", "to_region_code"],
    )
    # One event per receiving region: its queue has new hand-offs to accept.
    by_region: dict[tuple[str, str], list[int]] = defaultdict(list)
    for h in fresh:
        by_region[(h["to"], h["from"])].append(h["contact_id"])
    emit_many([{"type": "tracing.handoffs_requested", "subject_type": "tracing.contact", "subject_id": "",
                "region_code": to, "payload": {"from_region": frm, "to_region": to, "count": len(ids),
                                               "contacts": ids}}
               for (to, frm), ids in sorted(by_region.items())], actor=actor)
    return len(fresh)
