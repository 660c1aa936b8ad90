"""Writes of isolation orders: start (bulk), symptom checks, release (one or all due) with the next stage, extension,
conversion when a person in quarantine tests positive and the re-assessment of their room mates and household.

Dates and test days come from :mod:`jingkong.isolation.schedule` with the profile in force for the person's grid at
the time; the order keeps the profile version it was computed with. Test results are read from the testing feature:
a person's single-tube samples (``Tube.capacity == 1``) and their tubes' outcomes — quarantine tests are taken as
single tubes (pooled samples are not counted for a release).

Events (subject ``people.person``, one per person, in the transaction of the change): ``isolation.order_started``
{order_id, mode, ends_on}, ``isolation.order_released`` {order_id, next_order_id}, ``isolation.order_converted``
{order_id}, ``isolation.order_extended`` {order_id, ends_on, previous_ends_on, reason}, ``isolation.order_cancelled``
{order_id}, ``isolation.symptoms_flagged`` {order_id, day, temperature, symptoms}.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from jingkong.access import audit
from jingkong.core import clock
from jingkong.core.events import emit_many
from jingkong.core.exceptions import Conflict, ValidationFailed
from jingkong.isolation import schedule
from jingkong.isolation.models import (
    Facility,
    FacilityKind,
    IsolationMode,
    IsolationOrder,
    OrderStatus,
    RoomStay,
    SymptomCheck,
)
from jingkong.people.models import Person
from jingkong.policy.selectors import PolicyNotActive

log = logging.getLogger(__name__)

SYMPTOMS = ("fever", "cough", "sore_throat", "fatigue", "loss_of_smell", "diarrhoea", "shortness_of_breath",
            "muscle_pain", "other")
ROOM_MODES = (IsolationMode.CENTRAL, IsolationMode.HOSPITAL)
MAX_ORDERS = 20_000


def _user(actor):
    return actor if getattr(actor, "pk", None) else None


def local_date(at: dt.datetime) -> dt.date:
    return at.astimezone(ZoneInfo(clock.local_time_zone())).date()


def _profile(region_code: str, at: dt.datetime):
    from jingkong.policy.selectors import active_profile

    return active_profile(region_code=region_code or None, at=at)


def _isolation_rules(rules):
    return rules.isolation if getattr(rules, "isolation", None) is not None else None


def stage_of(order: IsolationOrder, rules=None) -> schedule.Stage:
    """The schedule stage of an order (with what follows it, from the order's own profile version)."""
    if rules is None:
        rules = _rules_of(order)
    next_mode, next_days, next_tests, double = None, 0, (), False
    if rules is not None and order.tier != "case" and order.mode != IsolationMode.HOSPITAL:
        close = rules.quarantine.close_contact
        first_stage = order.previous_id is None
        if order.tier == "close" and first_stage and close.central_days and order.mode == IsolationMode.CENTRAL:
            double = close.release_double_sampling
            if close.home_days:
                next_mode = schedule._home_mode(close)
                next_days, next_tests = close.home_days, tuple(close.home_test_days)
    return schedule.Stage(mode=order.mode, tier=order.tier, counted_from=order.counted_from, starts_on=order.starts_on,
                          ends_on=order.ends_on, test_days=tuple(int(d) for d in (order.test_days or [])),
                          double_sampling=double, next_mode=next_mode, next_days=next_days, next_test_days=next_tests)


def _rules_of(order: IsolationOrder):
    from jingkong.policy.selectors import profile_rules

    if order.profile_id:
        try:
            return profile_rules(order.profile)
        except Exception:  # noqa: BLE001 - a stored profile that no longer validates: fall back to the one in force
            log.warning("order %s: its profile %s does not load", order.pk, order.profile_id)
    try:
        return _profile(order.region_code, clock.now()).rules
    except Exception:  # noqa: BLE001
        return None


# --- start ------------------------------------------------------------------------------------------------------------


@dataclass
class OrderRequest:
    person_id: int
    tier: str | None = None  # close / secondary / case / other; None: from tracing
    mode: str | None = None  # None: the profile's for the tier
    last_exposure: dt.date | None = None  # None: the contact's last exposure (tracing)
    arrival: dt.date | None = None  # None: today
    facility_id: int | None = None
    note: str = ""


@dataclass
class StartReport:
    orders: list[IsolationOrder] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)  # person_id -> reason code
    replaced: list[int] = field(default_factory=list)  # orders cancelled because the person changed mode

    def as_dict(self) -> dict:
        return {"created": [o.pk for o in self.orders],
                "skipped": [{"person_id": p, "reason": r} for p, r in sorted(self.skipped.items())],
                "replaced": self.replaced}


def orders_start(requests: Sequence[OrderRequest], *, actor=None, at: dt.datetime | None = None,
                 request=None) -> StartReport:
    """Start one order per person (set-based). A person with an active order of the same mode is skipped
    (``already_active``); one of another mode (home → central after a transfer) has it cancelled and replaced, keeping
    its day 0."""
    if len(requests) > MAX_ORDERS:
        raise ValidationFailed(_("at most %(n)s orders at once") % {"n": MAX_ORDERS}, extra={"field": "items"})
    at = at or clock.now()
    _check_dates(requests, today=local_date(at))
    with transaction.atomic():
        return _start(requests, actor=actor, at=at, request=request)


MAX_SPAN_DAYS = 366  # input sanity, not a rule: dates further than this from today are typing errors


def _check_dates(requests: Sequence[OrderRequest], *, today: dt.date) -> None:
    """A last exposure in the future, or dates a year and more away (0001-01-01, 9999-12-31: the schedule would
    overflow) are refused, naming the item and the field."""
    span = dt.timedelta(days=MAX_SPAN_DAYS)
    for i, r in enumerate(requests):
        for name, value in (("last_exposure", r.last_exposure), ("start", r.arrival)):
            if value is None:
                continue
            if not today - span <= value <= today + span:
                raise ValidationFailed(_("%(field)s: more than a year away from today") % {"field": name},
                                       extra={"field": name, "item": i})
        if r.last_exposure is not None and r.last_exposure > today:
            raise ValidationFailed(_("last_exposure: in the future"), extra={"field": "last_exposure", "item": i})


def _contacts(person_ids: list[int]) -> dict[int, tuple[int, str, dt.datetime | None]]:
    from jingkong.tracing.models import Contact

    return {pid: (cid, tier, last) for cid, pid, tier, last in
            Contact.objects.filter(person_id__in=person_ids).values_list("pk", "person_id", "tier", "last_exposure_at")}


def _start(requests, *, actor, at, request) -> StartReport:
    from jingkong.isolation.facilities import tiers_for
    from jingkong.tracing.models import Case

    report = StartReport()
    by_person: dict[int, OrderRequest] = {}
    for r in requests:
        by_person[int(r.person_id)] = r
    ids = sorted(by_person)
    persons = dict(Person.objects.filter(pk__in=ids).values_list("pk", "grid__code"))
    for pid in ids:
        if pid not in persons:
            report.skipped[pid] = "unknown_person"
    ids = [p for p in ids if p in persons]
    active = {o.person_id: o for o in IsolationOrder.objects.select_for_update().filter(
        person_id__in=ids, status=OrderStatus.ACTIVE)}
    contacts = _contacts(ids)
    cases = dict(Case.objects.filter(person_id__in=ids).values_list("person_id", "pk"))
    need_tier = [p for p in ids if not by_person[p].tier]
    known = tiers_for(need_tier) if need_tier else {}
    today = local_date(at)
    rows, cancel = [], []
    for pid in ids:
        r = by_person[pid]
        tier = r.tier or known.get(pid, "other")
        if tier == "other":
            tier = "close"  # someone ordered into quarantine without a tracing record: a close contact's rules
        region = persons[pid] or ""
        try:
            profile = _profile(region, at)
        except PolicyNotActive:
            report.skipped[pid] = "no_policy"
            continue
        rules = profile.rules
        iso = _isolation_rules(rules)
        exposure = r.last_exposure
        if exposure is None and pid in contacts and contacts[pid][2] is not None:
            exposure = local_date(contacts[pid][2])
        arrival = r.arrival or today
        old = active.get(pid)
        mode = r.mode
        try:
            stage = schedule.first_stage(rules.quarantine, tier=tier, arrival=arrival, last_exposure=exposure, mode=mode,
                                         hospital_review_days=iso.hospital_review_days if iso else None)
        except schedule.NotManaged:
            report.skipped[pid] = "not_managed"
            continue
        if old is not None:
            if old.mode == stage.mode:
                report.skipped[pid] = "already_active"
                continue
            cancel.append(old)
            if tier != "case" and old.tier != "case" and stage.mode != IsolationMode.HOSPITAL:
                # The same quarantine goes on in another place: keep its count.
                stage = schedule.first_stage(rules.quarantine, tier=tier, arrival=arrival,
                                             last_exposure=old.counted_from, mode=mode)
        rows.append(IsolationOrder(
            person_id=pid, contact_id=contacts.get(pid, (None,))[0], case_id=cases.get(pid), tier=tier,
            mode=stage.mode, status=OrderStatus.ACTIVE, region_code=region, counted_from=stage.counted_from,
            starts_on=stage.starts_on, ends_on=stage.ends_on, test_days=list(stage.test_days),
            facility_id=r.facility_id, profile_id=profile.profile.pk, note=(r.note or "")[:2000],
            created_by=_user(actor), created_at=at, updated_at=at))
    if cancel:
        IsolationOrder.objects.filter(pk__in=[o.pk for o in cancel]).update(status=OrderStatus.CANCELLED, updated_at=at)
        report.replaced = [o.pk for o in cancel]
        emit_many([{"type": "isolation.order_cancelled", "subject_type": "people.person", "subject_id": o.person_id,
                    "region_code": o.region_code, "at": at, "payload": {"order_id": o.pk, "reason": "replaced"}}
                   for o in cancel], actor=_user(actor))
        # Out of a room and sent home: the room is not held for them (a move between sites checks in elsewhere).
        in_rooms = {r.person_id for r in rows if r.mode in ROOM_MODES}
        went_home = [o.person_id for o in cancel if o.mode in ROOM_MODES and o.person_id not in in_rooms]
        if went_home:
            from jingkong.isolation.facilities import checkout

            checkout(actor=actor, person_ids=went_home, at=at, reason="replaced", request=request)
    try:
        with transaction.atomic():
            IsolationOrder.objects.bulk_create(rows, batch_size=2000)
    except IntegrityError:
        raise Conflict(_("an order was started for one of these people meanwhile; try again")) from None
    report.orders = rows
    if rows:
        audit.record_many(actor=actor, action="isolation.order_start", object_type="people.person", request=request,
                          items=[(o.person_id, o.region_code) for o in rows],
                          detail={"orders": len(rows), "modes": sorted({o.mode for o in rows})})
        emit_many([{"type": "isolation.order_started", "subject_type": "people.person", "subject_id": o.person_id,
                    "region_code": o.region_code, "at": at,
                    "payload": {"order_id": o.pk, "mode": o.mode, "ends_on": o.ends_on.isoformat(), "tier": o.tier,
                                "starts_on": o.starts_on.isoformat(), "facility_id": o.facility_id}}
                   for o in rows], actor=_user(actor))
    return report


# --- tests ------------------------------------------------------------------------------------------------------------


def results_for(person_ids: Iterable[int], *, since: dt.date) -> dict[int, list[schedule.Result]]:
    """Single-tube samples of these people taken on or after ``since`` (local date), with their tubes' outcomes."""
    from jingkong.testing.models import Sample

    tz = ZoneInfo(clock.local_time_zone())
    start = dt.datetime(since.year, since.month, since.day, tzinfo=tz).astimezone(dt.UTC)
    out: dict[int, list[schedule.Result]] = defaultdict(list)
    ids = list(person_ids)
    for i in range(0, len(ids), 5000):
        rows = (Sample.objects.filter(person_id__in=ids[i:i + 5000], sampled_at__gte=start, tube__capacity=1)
                .values_list("person_id", "sampled_at", "tube__outcome", "tube__lab__code").order_by("sampled_at"))
        for pid, sampled_at, outcome, lab in rows:
            out[pid].append(schedule.Result(sampled_on=sampled_at.astimezone(tz).date(), outcome=outcome or "",
                                            lab=lab or ""))
    return out


def _index_outcomes(orders: Sequence[IsolationOrder]) -> dict[int, list[str]]:
    """For secondary contacts: the outcomes of the first tests of the close contact(s) they were exposed through."""
    from jingkong.testing.models import Sample
    from jingkong.tracing.models import ContactReason

    secondary = [o for o in orders if o.tier == "secondary" and o.contact_id]
    if not secondary:
        return {}
    via: dict[int, set[int]] = defaultdict(set)
    for contact_id, index_person in (ContactReason.objects.filter(contact_id__in=[o.contact_id for o in secondary],
                                                                  via_contact__isnull=False)
                                     .values_list("contact_id", "via_contact__person_id")):
        via[contact_id].add(index_person)
    index_people = sorted({p for s in via.values() for p in s})
    first: dict[int, list[str]] = defaultdict(list)
    earliest = min(o.counted_from for o in secondary)
    tz = ZoneInfo(clock.local_time_zone())
    start = dt.datetime(earliest.year, earliest.month, earliest.day, tzinfo=tz).astimezone(dt.UTC)
    for pid, outcome in (Sample.objects.filter(person_id__in=index_people, sampled_at__gte=start)
                         .values_list("person_id", "tube__outcome").order_by("person_id", "sampled_at")):
        first[pid].append(outcome or "")
    out = {}
    for o in secondary:
        people = via.get(o.contact_id)
        if not people:
            continue
        # All index contacts must have their first tests negative: the worst of them decides.
        lists = [first.get(p, []) for p in sorted(people)]
        worst = min(lists, key=lambda lst: (sum(1 for x in lst if x == "negative"), len(lst)))
        out[o.pk] = worst
    return out


@dataclass
class Evaluation:
    order: IsolationOrder
    stage: schedule.Stage
    days: list[schedule.TestDay]
    problems: list[str]

    @property
    def releasable(self) -> bool:
        return not self.problems


def evaluate(orders: Sequence[IsolationOrder], *, today: dt.date) -> list[Evaluation]:
    """The release decision for each order, from its stage and the test results (two queries for any number)."""
    if not orders:
        return []
    results = results_for([o.person_id for o in orders], since=min(o.counted_from for o in orders))
    index = _index_outcomes(orders)
    rules_cache: dict[int | None, object] = {}
    out = []
    for o in orders:
        if o.profile_id not in rules_cache:
            rules_cache[o.profile_id] = _rules_of(o)
        rules = rules_cache[o.profile_id]
        stage = stage_of(o, rules)
        mine = [r for r in results.get(o.person_id, []) if r.sampled_on >= o.starts_on]  # not the previous stage's
        need = 0
        if o.tier == "secondary" and rules is not None:
            need = rules.quarantine.secondary_contact.release_requires_index_negative_tests
        problems = schedule.release_check(stage, mine, today=today, index_first_outcomes=index.get(o.pk),
                                          index_tests_required=need if o.pk in index else 0)
        if o.mode == IsolationMode.HOSPITAL:
            problems = [p for p in problems if p == schedule.NOT_YET]
        out.append(Evaluation(order=o, stage=stage, days=schedule.test_days_with_results(stage, mine),
                              problems=problems))
    return out


# --- symptom checks ---------------------------------------------------------------------------------------------------


def fever_threshold(order: IsolationOrder) -> Decimal | None:
    rules = _rules_of(order)
    iso = _isolation_rules(rules) if rules is not None else None
    return Decimal(str(iso.fever_threshold_c)) if iso is not None else None


def is_flagged(check: SymptomCheck, threshold: Decimal | None) -> bool:
    if check.symptoms:
        return True
    return threshold is not None and check.temperature is not None and Decimal(check.temperature) >= threshold


@transaction.atomic
def symptom_check_record(*, actor, order: IsolationOrder, temperature=None, symptoms: Sequence[str] = (),
                         note: str = "", day: int | None = None, at: dt.datetime | None = None,
                         request=None) -> tuple[SymptomCheck, bool]:
    """Record (or correct) the day's check. Returns the check and whether it is flagged (fever or symptoms)."""
    at = at or clock.now()
    order = IsolationOrder.objects.select_for_update().get(pk=order.pk)
    if order.status != OrderStatus.ACTIVE:
        raise Conflict(_("the order is not active"), extra={"field": "order"})
    if day is None:
        day = (local_date(at) - order.counted_from).days
    first, last = (order.starts_on - order.counted_from).days, (order.ends_on - order.counted_from).days
    if not first <= day <= last:
        raise ValidationFailed(_("day: the order runs from day %(a)s to day %(b)s") % {"a": first, "b": last},
                               extra={"field": "day"})
    if (order.counted_from + dt.timedelta(days=day)) > local_date(at):
        raise ValidationFailed(_("day: a check cannot be recorded for a day still to come"), extra={"field": "day"})
    if temperature is not None:
        try:
            temperature = Decimal(str(temperature)).quantize(Decimal("0.1"))
            if not temperature.is_finite():  # NaN quantizes to NaN, and comparing it raises
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            raise ValidationFailed(_("temperature: not a number"), extra={"field": "temperature"}) from None
        if not Decimal("30") <= temperature <= Decimal("45"):
            raise ValidationFailed(_("temperature: between 30 and 45 °C"), extra={"field": "temperature"})
    bad = [s for s in symptoms if s not in SYMPTOMS]
    if bad:
        raise ValidationFailed(_("symptoms: unknown symptom %(s)s") % {"s": str(bad[0])[:40]},
                               extra={"field": "symptoms"})
    if "\x00" in (note or ""):
        raise ValidationFailed(_("note: NUL characters are not allowed"), extra={"field": "note"})
    check, _created = SymptomCheck.objects.update_or_create(
        order=order, day=day, defaults={"checked_at": at, "temperature": temperature,
                                        "symptoms": sorted(set(symptoms)), "note": (note or "")[:2000],
                                        "checked_by": _user(actor)})
    threshold = fever_threshold(order)
    flagged = is_flagged(check, threshold)
    audit.record(actor=actor, action="isolation.symptom_check", object_type="people.person", object_id=order.person_id,
                 region_code=order.region_code, request=request, detail={"order": order.pk, "day": day,
                                                                         "flagged": flagged})
    events = [{"type": "isolation.symptom_checked", "subject_type": "people.person", "subject_id": order.person_id,
               "region_code": order.region_code, "at": at,
               "payload": {"order_id": order.pk, "day": day, "flagged": flagged}}]
    if flagged:
        events.append({"type": "isolation.symptoms_flagged", "subject_type": "people.person",
                       "subject_id": order.person_id, "region_code": order.region_code, "at": at,
                       "payload": {"order_id": order.pk, "day": day,
                                   "temperature": str(temperature) if temperature is not None else None,
                                   "symptoms": sorted(set(symptoms))}})
    emit_many(events, actor=_user(actor))
    return check, flagged


# --- release ----------------------------------------------------------------------------------------------------------


@dataclass
class ReleaseReport:
    released: list[int] = field(default_factory=list)  # order ids
    next_orders: dict[int, int | None] = field(default_factory=dict)  # released order id -> next order id
    blocked: dict[int, list[str]] = field(default_factory=dict)  # order id -> problems

    def as_dict(self) -> dict:
        return {"released": self.released, "next_orders": {str(k): v for k, v in self.next_orders.items()},
                "blocked": [{"order_id": k, "problems": v} for k, v in sorted(self.blocked.items())]}


def orders_release(orders: Sequence[IsolationOrder], *, actor=None, at: dt.datetime | None = None,
                   override_note: str = "", request=None) -> ReleaseReport:
    """Release the orders that meet their release criteria (all at once); the rest are reported with the reasons.

    ``override_note`` (a physician's decision, recorded) releases despite missing or pending tests and an early date,
    never despite a positive result.
    """
    at = at or clock.now()
    with transaction.atomic():
        locked = list(IsolationOrder.objects.select_for_update(of=("self",)).filter(pk__in=[o.pk for o in orders],
                                                                        status=OrderStatus.ACTIVE)
                      .select_related("profile"))
        return _release(locked, actor=actor, at=at, override_note=override_note.strip(), request=request)


def _release(orders, *, actor, at, override_note, request) -> ReleaseReport:
    from jingkong.isolation.facilities import checkout

    report = ReleaseReport()
    today = local_date(at)
    ok: list[Evaluation] = []
    for ev in evaluate(orders, today=today):
        problems = ev.problems
        if override_note:
            problems = [p for p in problems if p == schedule.POSITIVE]
        if problems:
            report.blocked[ev.order.pk] = problems
        else:
            ok.append(ev)
    if not ok:
        return report
    nexts: list[IsolationOrder] = []
    for ev in ok:
        o = ev.order
        o.status, o.released_at, o.updated_at = OrderStatus.RELEASED, at, at
        if override_note:
            o.note = (o.note + "\n" + _("released by decision: %(note)s") % {"note": override_note}).strip()[:4000]
        follow = schedule.next_stage(ev.stage, released_on=today)
        if follow is not None:
            nexts.append(IsolationOrder(
                person_id=o.person_id, contact_id=o.contact_id, case_id=o.case_id, tier=o.tier, mode=follow.mode,
                status=OrderStatus.ACTIVE, region_code=o.region_code, counted_from=follow.counted_from,
                starts_on=follow.starts_on, ends_on=follow.ends_on, test_days=list(follow.test_days),
                previous_id=o.pk, profile_id=o.profile_id, created_by=_user(actor), created_at=at, updated_at=at))
    IsolationOrder.objects.bulk_update([ev.order for ev in ok], ["status", "released_at", "updated_at", "note"],
                                       batch_size=1000)
    IsolationOrder.objects.bulk_create(nexts, batch_size=2000)
    next_of = {n.previous_id: n for n in nexts}
    in_rooms = [ev.order.person_id for ev in ok if ev.order.mode in ROOM_MODES]
    if in_rooms:
        checkout(actor=actor, person_ids=in_rooms, at=at, reason="released", request=request)
    report.released = [ev.order.pk for ev in ok]
    report.next_orders = {ev.order.pk: (next_of[ev.order.pk].pk if ev.order.pk in next_of else None) for ev in ok}
    audit.record_many(actor=actor, action="isolation.order_release", object_type="people.person", request=request,
                      items=[(ev.order.person_id, ev.order.region_code) for ev in ok],
                      detail={"orders": len(ok), "override": override_note[:200]})
    events = [{"type": "isolation.order_released", "subject_type": "people.person", "subject_id": ev.order.person_id,
               "region_code": ev.order.region_code, "at": at,
               "payload": {"order_id": ev.order.pk, "next_order_id": report.next_orders[ev.order.pk],
                           "mode": ev.order.mode}} for ev in ok]
    events += [{"type": "isolation.order_started", "subject_type": "people.person", "subject_id": n.person_id,
                "region_code": n.region_code, "at": at,
                "payload": {"order_id": n.pk, "mode": n.mode, "ends_on": n.ends_on.isoformat(), "tier": n.tier,
                            "starts_on": n.starts_on.isoformat(), "previous_order_id": n.previous_id}} for n in nexts]
    emit_many(events, actor=_user(actor))
    return report


# --- extension, cancellation ------------------------------------------------------------------------------------------


def _restart(order: IsolationOrder, new_exposure: dt.date, *, today: dt.date, rules) -> schedule.Stage:
    stage = stage_of(order, rules)
    if rules is None:
        length, tests = stage.length, stage.test_days
    elif order.tier == "secondary":
        length, tests = rules.quarantine.secondary_contact.days, rules.quarantine.secondary_contact.test_days
    elif order.previous_id is not None:  # a home phase
        length, tests = rules.quarantine.close_contact.home_days, rules.quarantine.close_contact.home_test_days
    else:
        length, tests = rules.quarantine.close_contact.central_days, rules.quarantine.close_contact.central_test_days
    return schedule.restart(stage, new_exposure=new_exposure, original_length=length, original_test_days=tests,
                            today=today)


def _extend(orders: Sequence[IsolationOrder], new_exposure: dict[int, dt.date], *, reason: str, at: dt.datetime,
            actor, request=None) -> list[IsolationOrder]:
    today = local_date(at)
    changed, events = [], []
    for o in orders:
        rules = _rules_of(o)
        iso = _isolation_rules(rules) if rules is not None else None
        if iso is not None and iso.extension == "none":
            o.note = (o.note + "\n" + _("re-assessed (%(reason)s): no extension by the rules") % {"reason": reason})
            o.updated_at = at
            changed.append(o)
            continue
        again = _restart(o, new_exposure[o.pk], today=today, rules=rules)
        previous_end = o.ends_on
        if again.ends_on == o.ends_on and list(again.test_days) == list(o.test_days):
            continue
        o.extended_days += max(0, (again.ends_on - previous_end).days)
        o.ends_on, o.test_days, o.updated_at = again.ends_on, list(again.test_days), at
        o.note = (o.note + "\n" + _("extended (%(reason)s) to %(end)s") % {"reason": reason,
                                                                            "end": again.ends_on.isoformat()}).strip()
        changed.append(o)
        events.append({"type": "isolation.order_extended", "subject_type": "people.person", "subject_id": o.person_id,
                       "region_code": o.region_code, "at": at,
                       "payload": {"order_id": o.pk, "ends_on": o.ends_on.isoformat(),
                                   "previous_ends_on": previous_end.isoformat(), "reason": reason,
                                   "new_exposure": new_exposure[o.pk].isoformat()}})
    if changed:
        for o in changed:
            o.note = o.note.strip()[:4000]
        IsolationOrder.objects.bulk_update(changed, ["ends_on", "test_days", "extended_days", "note", "updated_at"],
                                           batch_size=1000)
        audit.record_many(actor=actor, action="isolation.order_extend", object_type="people.person", request=request,
                          items=[(o.person_id, o.region_code) for o in changed], detail={"reason": reason})
        emit_many(events, actor=_user(actor))
    return changed


@transaction.atomic
def order_extend(*, actor, order: IsolationOrder, new_exposure: dt.date, reason: str, at: dt.datetime | None = None,
                 request=None) -> IsolationOrder:
    """Count an active order again from a new last exposure (never shorter)."""
    at = at or clock.now()
    reason = (reason or "").strip()
    if not reason or "\x00" in reason:
        raise ValidationFailed(_("reason: say why the order is extended"), extra={"field": "reason"})
    order = IsolationOrder.objects.select_for_update().get(pk=order.pk)
    if order.status != OrderStatus.ACTIVE:
        raise Conflict(_("the order is not active"), extra={"field": "order"})
    if new_exposure > local_date(at):
        raise ValidationFailed(_("new_exposure: in the future"), extra={"field": "new_exposure"})
    if new_exposure <= order.counted_from:
        raise ValidationFailed(_("new_exposure: not after the exposure the order counts from"),
                               extra={"field": "new_exposure"})
    _extend([order], {order.pk: new_exposure}, reason=reason[:200], at=at, actor=actor, request=request)
    order.refresh_from_db()
    return order


@transaction.atomic
def order_cancel(*, actor, order: IsolationOrder, reason: str, at: dt.datetime | None = None,
                 request=None) -> IsolationOrder:
    at = at or clock.now()
    reason = (reason or "").strip()
    if not reason or "\x00" in reason:
        raise ValidationFailed(_("reason: say why the order is cancelled"), extra={"field": "reason"})
    order = IsolationOrder.objects.select_for_update().get(pk=order.pk)
    if order.status != OrderStatus.ACTIVE:
        raise Conflict(_("the order is not active"), extra={"field": "order"})
    order.status, order.updated_at = OrderStatus.CANCELLED, at
    order.note = (order.note + "\n" + _("cancelled: %(reason)s") % {"reason": reason[:500]}).strip()[:4000]
    order.save(update_fields=["status", "updated_at", "note"])
    if order.mode in ROOM_MODES:
        from jingkong.isolation.facilities import checkout

        checkout(actor=actor, person_ids=[order.person_id], at=at, reason="cancelled", request=request)
    audit.record(actor=actor, action="isolation.order_cancel", object_type="people.person", object_id=order.person_id,
                 region_code=order.region_code, request=request, detail={"order": order.pk, "reason": reason[:200]})
    emit_many([{"type": "isolation.order_cancelled", "subject_type": "people.person", "subject_id": order.person_id,
                "region_code": order.region_code, "at": at, "payload": {"order_id": order.pk, "reason": "cancelled"}}],
              actor=_user(actor))
    return order


# --- a positive in quarantine -----------------------------------------------------------------------------------------


@dataclass
class ConversionReport:
    converted: list[int] = field(default_factory=list)  # order ids
    extended: list[int] = field(default_factory=list)  # order ids of room mates / household members
    upgraded: list[int] = field(default_factory=list)  # secondary → close


def convert_positives(positives: dict[int, dt.datetime], *, actor=None, at: dt.datetime | None = None) -> ConversionReport:
    """People with an active order who tested positive (person_id → sampling time): their orders are ``converted``
    (tracing makes them cases), their rooms are left for cleaning, and the people sharing their room or household
    are re-assessed: counted again from the day they were last together (today: the positive is moved out now),
    per the profile's ``isolation.extension``; secondary contacts exposed through them become close contacts when
    the profile says so (``quarantine.secondary_contact.upgrade_if_index_positive``)."""
    at = at or clock.now()
    report = ConversionReport()
    ids = sorted(positives)
    if not ids:
        return report
    with transaction.atomic():
        # Cases already (a hospital order, or a case's order): a positive retest of a patient changes nothing here —
        # their order is not "converted", they keep their bed, nobody around them is re-assessed again.
        patients = set(IsolationOrder.objects.filter(person_id__in=ids, status=OrderStatus.ACTIVE)
                       .filter(Q(mode=IsolationMode.HOSPITAL) | Q(tier="case")).values_list("person_id", flat=True))
        ids = [p for p in ids if p not in patients]
        if not ids:
            return report
        orders = list(IsolationOrder.objects.select_for_update().filter(person_id__in=ids, status=OrderStatus.ACTIVE))
        rooms = dict(RoomStay.objects.filter(person_id__in=ids, checked_out_at__isnull=True)
                     .values_list("person_id", "room_id"))
        households = dict(Person.objects.filter(pk__in=ids, household__isnull=False).values_list("pk", "household_id"))
        if orders:
            for o in orders:
                o.status, o.updated_at = OrderStatus.CONVERTED, at
            IsolationOrder.objects.bulk_update(orders, ["status", "updated_at"], batch_size=1000)
            report.converted = [o.pk for o in orders]
            audit.record_many(actor=actor, action="isolation.order_convert", object_type="people.person",
                              items=[(o.person_id, o.region_code) for o in orders], detail={"orders": len(orders)})
            emit_many([{"type": "isolation.order_converted", "subject_type": "people.person",
                        "subject_id": o.person_id, "region_code": o.region_code, "at": at,
                        "payload": {"order_id": o.pk, "mode": o.mode}} for o in orders], actor=_user(actor))
        if rooms:
            from jingkong.isolation.facilities import checkout

            checkout(actor=actor, person_ids=list(rooms), at=at, reason="positive")
        mates = set(RoomStay.objects.filter(room_id__in=set(rooms.values()), checked_out_at__isnull=True)
                    .exclude(person_id__in=ids).values_list("person_id", flat=True))
        if households:
            mates |= set(Person.objects.filter(household_id__in=set(households.values())).exclude(pk__in=ids)
                         .values_list("pk", flat=True))
        exposure = local_date(at)
        if mates:
            mate_orders = list(IsolationOrder.objects.select_for_update().filter(person_id__in=mates,
                                                                                 status=OrderStatus.ACTIVE))
            changed = _extend(mate_orders, {o.pk: exposure for o in mate_orders}, reason="room_or_household_positive",
                              at=at, actor=actor)
            report.extended = [o.pk for o in changed]
        report.upgraded = _upgrade_secondaries(ids, at=at, actor=actor)
    return report


def _upgrade_secondaries(index_person_ids: list[int], *, at: dt.datetime, actor) -> list[int]:
    from jingkong.tracing.models import ContactReason

    contact_ids = set(ContactReason.objects.filter(via_contact__person_id__in=index_person_ids)
                      .values_list("contact_id", flat=True))
    if not contact_ids:
        return []
    orders = list(IsolationOrder.objects.select_for_update().filter(contact_id__in=contact_ids, tier="secondary",
                                                                    status=OrderStatus.ACTIVE))
    changed, events = [], []
    for o in orders:
        rules = _rules_of(o)
        if rules is None or not rules.quarantine.secondary_contact.upgrade_if_index_positive:
            continue
        stage = schedule.first_stage(rules.quarantine, tier="close", arrival=o.starts_on, last_exposure=o.counted_from,
                                     mode=o.mode)
        previous_end = o.ends_on
        o.tier = "close"
        o.ends_on = max(o.ends_on, stage.ends_on)
        o.test_days = sorted(set(stage.test_days) | {d for d in o.test_days
                                                     if o.counted_from + dt.timedelta(days=d) < local_date(at)})
        o.extended_days += max(0, (o.ends_on - previous_end).days)
        o.note = (o.note + "\n" + _("upgraded to close contact: the index contact tested positive")).strip()[:4000]
        o.updated_at = at
        changed.append(o)
        events.append({"type": "isolation.order_extended", "subject_type": "people.person", "subject_id": o.person_id,
                       "region_code": o.region_code, "at": at,
                       "payload": {"order_id": o.pk, "ends_on": o.ends_on.isoformat(),
                                   "previous_ends_on": previous_end.isoformat(), "reason": "upgraded_to_close",
                                   "tier": "close"}})
    if changed:
        IsolationOrder.objects.bulk_update(changed, ["tier", "ends_on", "test_days", "extended_days", "note",
                                                     "updated_at"], batch_size=1000)
        audit.record_many(actor=actor, action="isolation.order_upgrade", object_type="people.person",
                          items=[(o.person_id, o.region_code) for o in changed], detail={"orders": len(changed)})
        emit_many(events, actor=_user(actor))
    return [o.pk for o in changed]


# --- arrivals ---------------------------------------------------------------------------------------------------------


def on_arrival(facility: Facility, person_ids: Sequence[int], *, tiers: dict[int, str] | None = None, actor=None,
               at: dt.datetime | None = None) -> tuple[object, StartReport]:
    """People arrived at a facility: rooms (check-in) and orders (centralised, or hospital at a designated hospital)."""
    from jingkong.isolation import assignment, facilities

    at = at or clock.now()
    with transaction.atomic():
        rooms = facilities.assign(facility=facility, person_ids=person_ids, actor=actor, at=at, check_in=True,
                                  tiers=tiers)
        mode = IsolationMode.HOSPITAL if facility.kind == FacilityKind.DESIGNATED_HOSPITAL else IsolationMode.CENTRAL
        today = local_date(at)
        # People this facility may not take (a contact at a designated hospital, a case at a quarantine hotel) get
        # no order of its mode: the manager sends them on, and their order starts where they are taken in.
        refused = ("unknown_person", assignment.CASE_NEEDS_HOSPITAL, assignment.CONTACT_NOT_TO_HOSPITAL)
        requests = [OrderRequest(person_id=p, tier=(tiers or {}).get(p), mode=mode, arrival=today,
                                 facility_id=facility.pk) for p in person_ids
                    if rooms.unassigned.get(p) not in refused]
        started = orders_start(requests, actor=actor, at=at)
    return rooms, started
