"""快编组: located contacts and cases waiting for transfer → transfer batches.

The rules (:func:`group`) are pure — no Django, no database — and tested directly:

* one **pickup point** per building (a building's people go together; a person without a building but with a
  household is picked up at the household, alone otherwise); people without coordinates cannot be picked up;
* **tiers never share a batch** (a case, close contacts and secondary contacts travel apart) and each tier's
  **destination type** comes from the profile (``transfer.destination_by_tier``: cases → designated hospital, close
  contacts → centralised quarantine, secondary contacts → home or a separate site);
* **priority** (1 = first): cases 1, close contacts 2 (3 without a vulnerable member), secondary contacts 4 (5);
  vulnerable people (people.Vulnerable flags) travel with their household, which is their carer — a batch with an
  elderly person, a young child or someone with limited mobility and no other adult is flagged ``needs_carer``;
  limited mobility flags ``needs_accessible`` (vehicle and room);
* **capacity**: a pickup point's group larger than ``max_size`` is split; households are never split unless a single
  household is larger than ``max_size`` (first-fit decreasing over households).

The service :func:`group_waiting` finds who is waiting (tracing contacts ``located`` — or handed over to grouping or
transfer — and not in a live batch; cases
not closed, not yet in hospital and not in a live batch), creates the batches and members set-based, emits
``isolation.grouped`` per person, audits, and moves the contacts to ``handed_over`` (grouping) through the tracing
service. Re-running it adds nobody twice: a person in a batch that is not cancelled (and not removed from it) is not
waiting any more.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

# --- pure rules ---------------------------------------------------------------------------------------------------------

CASE, CLOSE, SECONDARY = "case", "close", "secondary"
HOME, NONE = "home", "none"

# people.Vulnerable bit values (kept here so the rules stay free of Django; checked against the enum in the tests).
ELDERLY, YOUNG_CHILD, PREGNANT, CHRONIC, LIMITED_MOBILITY = 1, 2, 4, 8, 16
NEEDS_CARER = ELDERLY | YOUNG_CHILD | LIMITED_MOBILITY
ADULT_AGE = 18

BASE_PRIORITY = {CASE: 1, CLOSE: 3, SECONDARY: 5}
HAND_OVER_SYNC = 60  # contacts moved to "handed over" in the grouping request; more: a background job
HAND_OVER_JOB = "isolation.hand_over_contacts"


@dataclass(frozen=True)
class Candidate:
    person_id: int
    role: str  # case / close / secondary
    region_code: str
    household_id: int | None = None
    building_id: int | None = None
    lon: float | None = None
    lat: float | None = None
    label: str = ""
    vulnerable: int = 0
    age: int | None = None
    due_at: dt.datetime | None = None
    contact_id: int | None = None
    case_id: int | None = None


@dataclass
class Group:
    destination: str
    role: str
    priority: int
    region_code: str
    building_id: int | None
    lon: float
    lat: float
    label: str
    members: list[Candidate] = field(default_factory=list)
    due_at: dt.datetime | None = None
    needs_accessible: bool = False
    needs_carer: bool = False

    @property
    def size(self) -> int:
        return len(self.members)


@dataclass(frozen=True)
class Skipped:
    person_id: int
    reason: str  # "no_address" / "tier_not_grouped" / "unknown_role"


def pickup_key(c: Candidate) -> tuple:
    if c.building_id is not None:
        return ("building", c.building_id)
    if c.household_id is not None:
        return ("household", c.household_id)
    return ("person", c.person_id)


def _households(members: list[Candidate]) -> list[list[Candidate]]:
    units: dict[tuple, list[Candidate]] = defaultdict(list)
    for m in members:
        units[("h", m.household_id) if m.household_id is not None else ("p", m.person_id)].append(m)
    return list(units.values())


def split(members: list[Candidate], max_size: int) -> list[list[Candidate]]:
    """First-fit decreasing over households: no household split unless it alone exceeds ``max_size``."""
    if max_size < 1:
        raise ValueError("max_size must be at least 1")
    units = sorted(_households(members), key=lambda u: (-len(u), min(m.person_id for m in u)))
    pieces: list[list[Candidate]] = []
    for unit in units:
        unit = sorted(unit, key=lambda m: m.person_id)
        if len(unit) > max_size:  # one household larger than a vehicle: it has to be split
            for i in range(0, len(unit), max_size):
                pieces.append(unit[i:i + max_size])
            continue
        for piece in pieces:
            if len(piece) + len(unit) <= max_size:
                piece.extend(unit)
                break
        else:
            pieces.append(list(unit))
    return pieces


def _is_carer(c: Candidate) -> bool:
    return (c.age is None or c.age >= ADULT_AGE) and not (c.vulnerable & NEEDS_CARER)


def group(candidates: list[Candidate], *, destinations: dict[str, str], max_size: int) -> tuple[list[Group], list[Skipped]]:
    """Batches for ``candidates``. ``destinations`` maps a role to its destination type (profile), e.g.
    ``{"case": "hospital", "close": "central", "secondary": "home"}``; a role mapped to ``"none"`` is not grouped."""
    skipped: list[Skipped] = []
    buckets: dict[tuple, list[Candidate]] = defaultdict(list)
    for c in sorted(candidates, key=lambda c: c.person_id):
        if c.role not in BASE_PRIORITY:
            skipped.append(Skipped(c.person_id, "unknown_role"))
            continue
        destination = destinations.get(c.role, NONE)
        if destination == NONE:
            skipped.append(Skipped(c.person_id, "tier_not_grouped"))
            continue
        if destination != HOME and (c.lon is None or c.lat is None):
            skipped.append(Skipped(c.person_id, "no_address"))
            continue
        buckets[(pickup_key(c), c.role, destination)].append(c)
    groups: list[Group] = []
    for (_key, role, destination), members in buckets.items():
        first = members[0]
        for piece in split(members, max_size):
            vulnerable = any(m.vulnerable for m in piece)
            dues = [m.due_at for m in piece if m.due_at is not None]
            needs_care = any(m.vulnerable & NEEDS_CARER for m in piece)
            groups.append(Group(
                destination=destination, role=role,
                priority=BASE_PRIORITY[role] - (1 if vulnerable and role != CASE else 0),
                region_code=min(m.region_code for m in piece), building_id=first.building_id,
                lon=first.lon if first.lon is not None else 0.0, lat=first.lat if first.lat is not None else 0.0,
                label=first.label, members=piece, due_at=min(dues) if dues else None,
                needs_accessible=any(m.vulnerable & LIMITED_MOBILITY for m in piece),
                needs_carer=needs_care and not any(_is_carer(m) for m in piece),
            ))
    groups.sort(key=lambda g: (g.priority, g.due_at or dt.datetime.max.replace(tzinfo=dt.UTC),
                               min(m.person_id for m in g.members)))
    return groups, skipped


def age_on(birth: dt.date | None, day: dt.date) -> int | None:
    if birth is None:
        return None
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


# --- service --------------------------------------------------------------------------------------------------------


def _live_members():
    from jingkong.isolation.models import BatchMember, BatchStatus

    return (BatchMember.objects.filter(removed_at__isnull=True)
            .exclude(batch__status=BatchStatus.CANCELLED).values("person_id"))


def waiting_candidates(*, scope, region_code: str = "", at: dt.datetime, case_hours: int) -> list[Candidate]:
    """Who waits for grouping in ``scope`` (optionally under ``region_code``): located close/secondary contacts and
    cases not yet in hospital, none of them in a live batch."""
    from zoneinfo import ZoneInfo

    from django.db.models import Q

    from jingkong.core import clock
    from jingkong.tracing.models import Case, CaseStatus, Contact, ContactStatus, HandedTo, Tier

    today = at.astimezone(ZoneInfo(clock.local_time_zone())).date()
    live = _live_members()
    where = scope.q("region_code") & (Q(region_code__startswith=region_code) if region_code else Q())
    person_fields = ("person__household_id", "person__building_id", "person__building__lon", "person__building__lat",
                     "person__building__address", "person__vulnerable", "person__birth_date")
    out: list[Candidate] = []
    # located, or already handed over to grouping/transfer (by a tracer, or out of a batch that was cancelled or
    # that the dispatcher took them out of) and in no live batch: nobody handed over is stranded
    waiting = Q(status=ContactStatus.LOCATED) | Q(status=ContactStatus.HANDED_OVER,
                                                  handed_to__in=[HandedTo.GROUPING, HandedTo.TRANSFER])
    contacts = (Contact.objects.filter(where, waiting, tier__in=[Tier.CLOSE, Tier.SECONDARY])
                .exclude(person_id__in=live)
                .values_list("pk", "person_id", "tier", "region_code", "due_at", *person_fields))
    for pk, person_id, tier, region, due, hh, bld, lon, lat, address, vul, birth in contacts:
        out.append(Candidate(person_id=person_id, role=tier, region_code=region, household_id=hh, building_id=bld,
                             lon=lon, lat=lat, label=address or "", vulnerable=vul or 0, age=age_on(birth, today),
                             due_at=due, contact_id=pk))
    cases = (Case.objects.filter(where, current_place="").exclude(status=CaseStatus.CLOSED)
             .exclude(person_id__in=live)
             .values_list("pk", "person_id", "region_code", "created_at", *person_fields))
    for pk, person_id, region, created, hh, bld, lon, lat, address, vul, birth in cases:
        out.append(Candidate(person_id=person_id, role=CASE, region_code=region, household_id=hh, building_id=bld,
                             lon=lon, lat=lat, label=address or "", vulnerable=vul or 0, age=age_on(birth, today),
                             due_at=created + dt.timedelta(hours=case_hours), case_id=pk))
    return out


def profile_region(code: str) -> str:
    """The region whose policy profile applies: the given one, or for platform-wide users (no region) the first
    district (a platform serves one district)."""
    if code:
        return code
    from jingkong.geo.models import Region

    return Region.objects.filter(level="district").order_by("code").values_list("code", flat=True).first() or ""


def refs_allocate(kind: str, n: int, *, at: dt.datetime) -> list[str]:
    """``n`` numbers KIND-YYYYMMDD-NNNN for the local day of ``at``; the counter row is locked meanwhile."""
    from zoneinfo import ZoneInfo

    from jingkong.core import clock
    from jingkong.isolation.models import TransferRefCounter

    day = at.astimezone(ZoneInfo(clock.local_time_zone())).date()
    TransferRefCounter.objects.bulk_create([TransferRefCounter(kind=kind, day=day, last=0)], ignore_conflicts=True)
    counter = TransferRefCounter.objects.select_for_update().get(kind=kind, day=day)
    if n <= 0:
        return []
    first = counter.last + 1
    counter.last += n
    counter.save(update_fields=["last"])
    return [f"{kind}-{day:%Y%m%d}-{i:04d}" for i in range(first, first + n)]


def group_waiting(*, actor, scope, region_code: str = "", at: dt.datetime | None = None, request=None) -> dict:
    """Group everyone waiting in ``scope``: creates batches and members, emits ``isolation.grouped`` per person."""
    from django.db import transaction

    from jingkong.access import audit
    from jingkong.core import clock, jobs
    from jingkong.core.events import emit_many
    from jingkong.isolation.models import BatchMember, TransferBatch
    from jingkong.policy.selectors import active_profile

    at = at or clock.now()
    profile = active_profile(region_code=profile_region(region_code or scope.prefix or ""), at=at)
    rules = profile.rules.section("transfer")
    destinations = {CASE: rules.destination_by_tier.case, CLOSE: rules.destination_by_tier.close,
                    SECONDARY: rules.destination_by_tier.secondary}
    with transaction.atomic():
        refs_allocate("TB", 0, at=at)  # lock: one grouping run at a time
        candidates = waiting_candidates(scope=scope, region_code=region_code, at=at,
                                        case_hours=rules.case_transfer_hours)
        groups, skipped = group(candidates, destinations=destinations, max_size=rules.max_batch_size)
        refs = refs_allocate("TB", len(groups), at=at)
        batches = [TransferBatch(
            ref=ref, region_code=g.region_code, pickup_building_id=g.building_id, pickup_lon=g.lon, pickup_lat=g.lat,
            pickup_label=g.label[:255], destination_type=g.destination, priority=g.priority, size=g.size,
            needs_accessible=g.needs_accessible, needs_carer=g.needs_carer, due_at=g.due_at,
            wait_reason="home" if g.destination == HOME else "", created_at=at, updated_at=at,
            status="delivered" if g.destination == HOME else "waiting")  # at home: no vehicle to wait for
            for ref, g in zip(refs, groups, strict=True)]
        TransferBatch.objects.bulk_create(batches, batch_size=1000)
        ids = dict(TransferBatch.objects.filter(ref__in=refs).values_list("ref", "pk"))
        members = [BatchMember(batch_id=ids[ref], person_id=m.person_id, contact_id=m.contact_id, case_id=m.case_id,
                               role=m.role, household_id=m.household_id, region_code=m.region_code)
                   for ref, g in zip(refs, groups, strict=True) for m in g.members]
        BatchMember.objects.bulk_create(members, batch_size=2000)
        audit.record_many(actor=actor, action="transfer.group", object_type="people.person",
                          items=((m.person_id, m.region_code) for m in members), request=request,
                          detail={"batches": refs[:50]})
        emit_many([{"type": "isolation.grouped", "subject_type": "people.person", "subject_id": m.person_id,
                    "region_code": m.region_code, "at": at,
                    "payload": {"batch_id": m.batch_id, "batch_ref": ref_of[m.batch_id], "role": m.role}}
                   for ref_of in [{v: k for k, v in ids.items()}] for m in members], actor=actor)
        contact_ids = [m.contact_id for m in members if m.contact_id]
        handed, job_queued = 0, False
        if len(contact_ids) <= HAND_OVER_SYNC:
            handed = _hand_over_contacts(contact_ids, actor=actor, at=at, request=request)
        else:  # one tracing status change per contact (each audited, each recomputing codes): in the background
            job_queued = True
            region = profile_region(region_code or scope.prefix or "")
            transaction.on_commit(lambda: jobs.enqueue(HAND_OVER_JOB, {"contact_ids": contact_ids,
                                                                       "at": at.isoformat()},
                                                       actor=actor, region_code=region))
    by_dest: dict[str, int] = defaultdict(int)
    for g in groups:
        by_dest[g.destination] += g.size
    return {"batches": len(groups), "people": len(members), "by_destination": dict(by_dest),
            "skipped": [{"person_id": s.person_id, "reason": s.reason} for s in skipped][:200],
            "skipped_count": len(skipped), "contacts_handed_over": handed, "hand_over_queued": job_queued,
            "refs": refs[:200]}


def _hand_over_contacts(contact_ids: list[int], *, actor, at: dt.datetime, request=None) -> int:
    """located → handed_over (grouping) through the tracing service (its own audit and event per contact)."""
    if not contact_ids:
        return 0
    from jingkong.tracing import services as tracing_services
    from jingkong.tracing.models import Contact, ContactStatus, HandedTo

    n = 0
    for contact in Contact.objects.filter(pk__in=contact_ids, status=ContactStatus.LOCATED):
        tracing_services.contact_status_set(actor=actor, contact=contact, status=ContactStatus.HANDED_OVER,
                                            handed_to=HandedTo.GROUPING, at=at, request=request)
        n += 1
    return n

