"""Writes of the tracing feature: each in one transaction, audited where person data is touched, with a domain event.

Contact finding itself lives in jingkong.tracing.finding, link suggestion and clusters in jingkong.tracing.chains.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from jingkong.access import audit
from jingkong.access.guard import Scope
from jingkong.access.roles import Perm
from jingkong.core import clock, jobs
from jingkong.core.events import emit, emit_many
from jingkong.core.exceptions import Conflict, NotFound, ValidationFailed
from jingkong.geo.models import Venue
from jingkong.people import idnumber
from jingkong.people.models import Person
from jingkong.policy.selectors import PolicyNotActive
from jingkong.tracing import chains, finding, rules, timeline, windows
from jingkong.tracing.models import (
    Case,
    CaseStatus,
    Classification,
    Cluster,
    Contact,
    ContactStatus,
    FoundBy,
    HandedTo,
    Handoff,
    HandoffStatus,
    Link,
    LinkStatus,
    ReasonKind,
    RefCounter,
    Setting,
    SourceCategory,
    Stay,
    StayKind,
    StaySource,
    Tier,
)

log = logging.getLogger(__name__)
FIND_JOB = "tracing.find_contacts"


def ref_prefix() -> str:
    """Case numbers read PREFIX-YEAR-NNNN (settings.TRACING_CASE_PREFIX, default "BL" for Beilun)."""
    return getattr(settings, "TRACING_CASE_PREFIX", "BL")


def refs_allocate(n: int, *, at: dt.datetime) -> list[str]:
    """``n`` new case numbers for the (local) year of ``at``; the counter row is locked while they are taken."""
    if n <= 0:
        return []
    prefix = ref_prefix()
    year = at.astimezone(ZoneInfo(clock.local_time_zone())).year
    RefCounter.objects.bulk_create([RefCounter(prefix=prefix, year=year, last=0)], ignore_conflicts=True)
    counter = RefCounter.objects.select_for_update().get(prefix=prefix, year=year)
    first = counter.last + 1
    counter.last += n
    counter.save(update_fields=["last"])
    return [f"{prefix}-{year}-{i:04d}" for i in range(first, first + n)]


# --- cases ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Positive:
    """An individual positive result (from the testing feature's event)."""

    person_id: int
    sampled_at: dt.datetime | None
    event_id: int | None = None
    sample_id: int | None = None
    campaign: str = ""
    via: str = ""
    resulted_at: dt.datetime | None = None
    region_code: str = ""  # the event's: the person's grid at the scan, else where the sample was taken


def _found_by(positive: Positive, contact_status: str | None) -> str:
    if contact_status == ContactStatus.IN_QUARANTINE:
        return FoundBy.QUARANTINE_TEST
    if contact_status is not None and contact_status != ContactStatus.CLOSED:
        return FoundBy.CONTACT_FOLLOWUP
    if positive.campaign or positive.via == "retest":
        return FoundBy.ROUND
    return FoundBy.ROUTINE_SCREENING


def cases_from_positives(positives: list[Positive], *, actor=None, now: dt.datetime | None = None) -> list[Case]:
    """Create one case per person not yet a case (set-based; called inside the results transaction).

    The registry part of the timeline is drafted at once; contact finding (and the check-in part of the timeline)
    runs as a background job queued when the transaction commits.
    """
    now = now or clock.now()
    earliest: dict[int, Positive] = {}
    for p in positives:
        seen = earliest.get(p.person_id)
        if seen is None or (p.sampled_at and (seen.sampled_at is None or p.sampled_at < seen.sampled_at)):
            earliest[p.person_id] = p
    if not earliest:
        return []
    already = set(Case.objects.filter(person_id__in=list(earliest)).values_list("person_id", flat=True))
    if already:
        _earlier_samples([earliest[pid] for pid in sorted(already)], actor=actor, now=now)
    persons = dict(Person.objects.filter(pk__in=[p for p in earliest if p not in already])
                   .values_list("pk", "grid__code"))
    todo = [earliest[pid] for pid in sorted(persons)]
    if not todo:
        return []
    statuses = dict(Contact.objects.filter(person_id__in=[p.person_id for p in todo])
                    .values_list("person_id", "status"))
    controlled = _controlled_since([p.person_id for p in todo])
    refs = refs_allocate(len(todo), at=now)
    rows = [
        Case(ref=ref, person_id=p.person_id, classification=Classification.ASYMPTOMATIC,
             first_positive_at=p.sampled_at, found_by=_found_by(p, statuses.get(p.person_id)),
             source_category=SourceCategory.UNKNOWN, region_code=persons[p.person_id] or p.region_code or "",
             isolated_at=_isolation(controlled.get(p.person_id), p.resulted_at),
             source_event_id=p.event_id, source_sample_id=p.sample_id, created_by=_user(actor),
             created_at=now, updated_at=now)
        for ref, p in zip(refs, todo, strict=True)
    ]
    Case.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)  # a case made meanwhile wins
    created = list(Case.objects.filter(ref__in=refs).order_by("pk"))
    _after_cases_created(created, actor=actor, now=now, request=None, payload_extra={
        c.pk: {"sample_id": earliest[c.person_id].sample_id} for c in created})
    return created


def _earlier_samples(positives: list[Positive], *, actor, now: dt.datetime) -> list[Case]:
    """Existing cases whose positive sample taken *earlier* than their first positive came in late (a screening
    result after the fever clinic's): the first positive sampling moves back, and with it an asymptomatic case's
    window; the registry rows follow and contact finding runs again after the commit."""
    sampled = {p.person_id: p.sampled_at for p in positives if p.sampled_at is not None}
    moved = [c for c in Case.objects.filter(person_id__in=list(sampled)).exclude(status=CaseStatus.CLOSED)
             if c.first_positive_at is None or sampled[c.person_id] < c.first_positive_at]
    if not moved:
        return []
    for case in moved:
        case.first_positive_at, case.updated_at = sampled[case.person_id], now
    Case.objects.bulk_update(moved, ["first_positive_at", "updated_at"], batch_size=1000)
    timeline.registry_follow(moved, now=now)
    emit_many([{"type": "tracing.case_updated", "subject_type": "tracing.case", "subject_id": c.pk,
                "region_code": c.region_code,
                "payload": {"ref": c.ref, "fields": ["first_positive_at"], "reason": "earlier positive sample"}}
               for c in moved], actor=actor)
    ids = [c.pk for c in moved]
    region = windows.common_region([c.region_code for c in moved])
    transaction.on_commit(lambda: enqueue_find(ids, actor=actor, region_code=region))
    return moved


def _controlled_since(person_ids: list[int]) -> dict[int, dt.datetime]:
    """When each person was put under control in place (就地管控) by the testing feature (a positive pool)."""
    from jingkong.testing.models import PersonTestState

    return dict(PersonTestState.objects.filter(person_id__in=person_ids, controlled_since__isnull=False)
                .values_list("person_id", "controlled_since"))


def _isolation(controlled_since: dt.datetime | None, resulted_at: dt.datetime | None) -> dt.datetime | None:
    """A new case's exposure of others ends when it was controlled in place or, at the latest, when the positive
    result came in (the tracer corrects it after the interview)."""
    known = [t for t in (controlled_since, resulted_at) if t is not None]
    return min(known) if known else None


def _user(actor):
    return actor if getattr(actor, "pk", None) else None


def _after_cases_created(created: list[Case], *, actor, now, request, payload_extra=None) -> None:
    if not created:
        return
    persons = [c.person_id for c in created]
    # Cases are never contacts: a contact who becomes a case is closed (the contact record stays, with its reasons).
    Contact.objects.filter(person_id__in=persons).exclude(status=ContactStatus.CLOSED).update(
        status=ContactStatus.CLOSED, closed_at=now, close_reason=rules.BECAME_CASE, updated_at=now)
    timeline.draft_registry(created, now=now)
    timeline.flags_refresh([c.pk for c in created])
    audit.record_many(actor=actor, action="case.create", object_type="people.person",
                      items=((c.person_id, c.region_code) for c in created), request=request,
                      detail={"cases": [c.ref for c in created][:50]})
    emit_many([{"type": "tracing.case_created", "subject_type": "tracing.case", "subject_id": c.pk,
                "region_code": c.region_code,
                "payload": {"ref": c.ref, "person_id": c.person_id, "found_by": c.found_by,
                            **(payload_extra or {}).get(c.pk, {})}} for c in created], actor=actor)
    ids = [c.pk for c in created]
    region = windows.common_region([c.region_code for c in created])
    transaction.on_commit(lambda: enqueue_find(ids, actor=actor, region_code=region))


def enqueue_find(case_ids: list[int], *, actor=None, region_code: str = ""):
    """Queue contact finding for the cases (after the creating transaction committed)."""
    try:
        return jobs.enqueue(FIND_JOB, {"case_ids": list(case_ids)}, actor=actor, region_code=region_code)
    except Exception:  # noqa: BLE001 - the cases exist; a tracer can start the search by hand (API, CLI)
        log.exception("could not queue contact finding for cases %s", case_ids)
        return None


CASE_FIELDS = ("classification", "severity", "onset_date", "first_positive_at", "found_by", "source_category",
               "variant", "current_place", "isolated_at", "status", "note")


# Times a tracer enters lie between the first known onsets of COVID-19 and now (an hour's slack for clocks): a year
# typed wrong is refused with the field named, and times past the calendar (year 1 with an offset, year 9999) never
# reach the database (they raised OverflowError / DataError: a 500).
EARLIEST = dt.datetime(2019, 12, 1, tzinfo=dt.UTC)
FUTURE_SLACK = dt.timedelta(hours=1)


# Labels of the time fields checked below, to name them in a message (the identifier stays in extra.field).
TIME_LABELS = {
    "start": gettext_lazy("start time"), "end": gettext_lazy("end time"),
    "first_positive_at": gettext_lazy("first positive sampling time"),
    "isolated_at": gettext_lazy("isolation time"), "onset_date": gettext_lazy("symptom onset date"),
    "exposure_start": gettext_lazy("start of exposure"), "exposure_end": gettext_lazy("end of exposure"),
    "exposure_at": gettext_lazy("time of exposure"), "at": gettext_lazy("time of the change"),
}


def _time_label(name: str) -> str:
    return str(TIME_LABELS.get(name, name))


def check_time(name: str, value: dt.datetime | None) -> None:
    """Refuse (422 naming ``name``) a time without a zone, before December 2019, or in the future."""
    if value is None:
        return
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationFailed(_("%(field)s: give a time zone (e.g. 2022-01-01T08:00:00+08:00)") % {
            "field": _time_label(name)}, extra={"field": name})
    if value < EARLIEST:
        raise ValidationFailed(_("%(field)s: lies before December 2019; check the year") % {
            "field": _time_label(name)}, extra={"field": name})
    if value > clock.now() + FUTURE_SLACK:
        raise ValidationFailed(_("%(field)s: the time lies in the future") % {"field": _time_label(name)},
                               extra={"field": name})


def check_date(name: str, value: dt.date | None) -> None:
    if value is None:
        return
    if value < EARLIEST.date():
        raise ValidationFailed(_("%(field)s: lies before December 2019; check the year") % {
            "field": _time_label(name)}, extra={"field": name})
    if value > clock.today() + dt.timedelta(days=1):
        raise ValidationFailed(_("%(field)s: the date lies in the future") % {"field": _time_label(name)},
                               extra={"field": name})


def _check_times(fields: dict) -> None:
    for name in ("first_positive_at", "isolated_at"):
        check_time(name, fields.get(name))
    check_date("onset_date", fields.get("onset_date"))


@transaction.atomic
def case_create(*, actor, scope: Scope, person_id: int, request=None, **fields) -> Case:
    """A tracer registers a case (e.g. reported by a hospital) for a person in their scope."""
    person = Person.objects.select_related("grid").filter(pk=person_id).first()
    if person is None or not scope.contains(person.grid.code if person.grid_id else None):
        raise NotFound(_("person not found"))
    if Case.objects.filter(person_id=person.pk).exists():
        raise Conflict(_("this person is already a case"), extra={"ref": Case.objects.get(person_id=person.pk).ref})
    values = {k: v for k, v in fields.items() if k in CASE_FIELDS and v is not None}
    _check_times(values)
    if values.get("onset_date") is None and values.get("first_positive_at") is None:
        raise ValidationFailed(_("give the symptom onset date or the first positive sampling time"),
                               extra={"field": "onset_date"})
    now = clock.now()
    case = Case(ref=refs_allocate(1, at=now)[0], person=person, region_code=person.grid.code if person.grid_id else "",
                tracer=actor if actor is not None and actor.has_role_perm(Perm.TRACING_EDIT) else None,
                created_by=_user(actor), created_at=now, updated_at=now, **values)
    case.full_clean(exclude=["person", "tracer", "created_by", "source_event", "source_sample"])
    case.save()
    _after_cases_created([case], actor=actor, now=now, request=request)
    return case


CLEARABLE_FIELDS = ("onset_date", "first_positive_at", "isolated_at")  # null clears them (a wrong entry)


@transaction.atomic
def case_update(*, actor, case: Case, request=None, **changes) -> Case:
    """Change a case. ``None`` leaves a field as it is, except for the onset, the first positive sampling and the
    isolation time, which it clears (the case keeps at least one of the first two). A moved window re-drafts the
    registry rows and queues contact finding again once the change is committed."""
    values = {k: v for k, v in changes.items() if k in CASE_FIELDS and (v is not None or k in CLEARABLE_FIELDS)}
    _check_times(values)
    changed = [k for k, v in values.items() if getattr(case, k) != v]
    if not changed:
        return case
    for k in changed:
        setattr(case, k, values[k])
    if case.onset_date is None and case.first_positive_at is None:
        field = "onset_date" if "onset_date" in changed else "first_positive_at"
        raise ValidationFailed(_("%(field)s: a case keeps its symptom onset date or its first positive sampling "
                                 "time") % {"field": _time_label(field)}, extra={"field": field})
    if "status" in changed and case.status == CaseStatus.INVESTIGATED and case.investigated_at is None:
        case.investigated_at = clock.now()
    case.updated_at = clock.now()
    case.full_clean(exclude=["person", "tracer", "created_by", "source_event", "source_sample"])
    case.save()
    if {"onset_date", "first_positive_at", "variant", "isolated_at"} & set(changed):
        # The window moved: the registry rows follow (and are drafted now if the window could not be computed before).
        timeline.registry_follow([case], now=clock.now())
        if case.status != CaseStatus.CLOSED:
            ids, region = [case.pk], case.region_code
            transaction.on_commit(lambda: enqueue_find(ids, actor=actor, region_code=region))
    audit.record(actor=actor, action="case.update", object_type="people.person", object_id=case.person_id,
                 region_code=case.region_code, request=request, detail={"case": case.ref, "fields": changed})
    emit("tracing.case_updated", subject=case, subject_type="tracing.case", region_code=case.region_code,
         actor=actor, payload={"ref": case.ref, "fields": changed})
    return case


@transaction.atomic
def case_assign(*, actor, scope: Scope, case: Case, username: str) -> Case:
    """Assign the case to a tracer (empty: unassign). The tracer must be able to edit cases and see this one; their
    region becomes the case's jurisdiction (contacts living outside it are handed off)."""
    from jingkong.access.guard import scope_of
    from jingkong.access.models import User

    tracer = None
    if username:
        tracer = User.objects.select_related("region").filter(username=username, is_active=True).first()
        if tracer is None or not scope.contains(tracer.region.code if tracer.region_id else None):
            raise ValidationFailed(_("tracer: no such user in your region"), extra={"field": "tracer"})
        if not tracer.has_role_perm(Perm.TRACING_EDIT) or not scope_of(tracer).contains(case.region_code):
            raise ValidationFailed(_("tracer: this user cannot work on this case"), extra={"field": "tracer"})
    if case.tracer_id == (tracer.pk if tracer else None):
        return case
    case.tracer = tracer
    case.updated_at = clock.now()
    case.save(update_fields=["tracer", "updated_at"])
    audit.record(actor=actor, action="case.assign", object_type="people.person", object_id=case.person_id,
                 region_code=case.region_code, detail={"case": case.ref, "tracer": tracer.username if tracer else None})
    emit("tracing.case_assigned", subject=case, subject_type="tracing.case", region_code=case.region_code,
         actor=actor, payload={"ref": case.ref, "tracer": tracer.username if tracer else None})
    return case


# --- timeline ---------------------------------------------------------------------------------------------------------

STAY_FIELDS = ("kind", "venue_code", "place", "start", "end", "transport_mode", "transport_number", "carriage", "seat",
               "source", "publish", "public_label", "note")


def _stay_values(values: dict, *, current: Stay | None) -> dict:
    out = {k: v for k, v in values.items() if k in STAY_FIELDS and v is not None}
    merged = {f: getattr(current, f) for f in STAY_FIELDS} if current else {}
    merged.update(out)
    for name in ("start", "end"):
        value = merged.get(name)
        if value is None:
            raise ValidationFailed(_("%(field)s: required") % {"field": _time_label(name)}, extra={"field": name})
        if name in out:
            check_time(name, value)
    if merged["end"] < merged["start"]:
        raise ValidationFailed(_("end: the stay ends before it starts"), extra={"field": "end"})
    if merged["end"] - merged["start"] > dt.timedelta(days=30):
        raise ValidationFailed(_("end: a stay longer than 30 days is not a timeline entry"), extra={"field": "end"})
    kind = merged.get("kind")
    if kind not in StayKind.values:
        raise ValidationFailed(_("kind: unknown kind"), extra={"field": "kind"})
    if "venue_code" in out:
        code = (out["venue_code"] or "").strip()
        if code:
            venue = Venue.objects.filter(code=code).first()
            if venue is None:
                raise ValidationFailed(_("venue code: unknown venue code %(code)s") % {"code": repr(code)},
                                       extra={"field": "venue_code"})
            out["venue"] = venue
            out["place"] = out.get("place") or venue.name
        else:
            out["venue"] = None
        out["venue_code"] = code
    if kind == StayKind.TRANSPORT and not (merged.get("transport_mode") and merged.get("transport_number")):
        raise ValidationFailed(_("transport number: a transport stay needs the mode and the flight/train/bus number"),
                               extra={"field": "transport_number"})
    if kind in (StayKind.VENUE, StayKind.OTHER) and not (merged.get("venue_code") or merged.get("place")):
        raise ValidationFailed(_("venue code: give the venue code or describe the place"), extra={"field": "venue_code"})
    return out


def _overlaps(case: Case, stay_id: int | None, kind: str, start: dt.datetime, end: dt.datetime) -> list[Stay]:
    if kind in rules.BACKGROUND_KINDS:
        return []
    qs = case.stays.exclude(kind__in=rules.BACKGROUND_KINDS).filter(start__lt=end, end__gt=start, flag_inverted=False)
    if stay_id:
        qs = qs.exclude(pk=stay_id)
    return list(qs.order_by("start")[:5])


@transaction.atomic
def stay_save(*, actor, case: Case, stay: Stay | None = None, accept_overlap: bool = False, request=None,
              **values) -> Stay:
    """Add or change a timeline entry. Inverted times, naive times and unknown venue codes are refused (422); an
    overlap with another outing is refused unless ``accept_overlap`` (then the rows are kept and flagged)."""
    out = _stay_values(values, current=stay)
    now = clock.now()
    target = stay or Stay(case=case, source=StaySource.INTERVIEW, created_by=_user(actor), created_at=now)
    for k, v in out.items():
        setattr(target, k, v)
    clash = _overlaps(case, target.pk, target.kind, target.start, target.end)
    if clash and not accept_overlap:
        first = clash[0]
        tz = ZoneInfo(clock.local_time_zone())
        raise ValidationFailed(
            _("start: overlaps the stay %(start)s–%(end)s (%(kind)s, %(place)s); correct the times, or keep both "
              "(accept_overlap; both are flagged)") % {
                "start": f"{first.start.astimezone(tz):%m-%d %H:%M}", "end": f"{first.end.astimezone(tz):%H:%M}",
                "kind": first.get_kind_display(), "place": first.place or first.venue_code or "-"},
            extra={"field": "start", "overlaps": [s.pk for s in clash]},
        )
    target.updated_at = now
    target.flag_inverted = False
    target.flag_unknown_venue = False
    target.save()
    timeline.flags_refresh([case.pk])
    target.refresh_from_db()
    audit.record(actor=actor, action="case.timeline_edit", object_type="people.person", object_id=case.person_id,
                 region_code=case.region_code, request=request,
                 detail={"case": case.ref, "stay": target.pk, "created": stay is None})
    emit("tracing.timeline_changed", subject_type="tracing.case", subject_id=case.pk, region_code=case.region_code,
         actor=actor, payload={"ref": case.ref, "stay": target.pk})
    return target


@transaction.atomic
def stay_delete(*, actor, case: Case, stay: Stay, request=None) -> None:
    stay_id = stay.pk
    stay.delete()
    timeline.flags_refresh([case.pk])
    audit.record(actor=actor, action="case.timeline_edit", object_type="people.person", object_id=case.person_id,
                 region_code=case.region_code, request=request, detail={"case": case.ref, "deleted": stay_id})
    emit("tracing.timeline_changed", subject_type="tracing.case", subject_id=case.pk, region_code=case.region_code,
         actor=actor, payload={"ref": case.ref, "deleted": stay_id})


# --- contacts ---------------------------------------------------------------------------------------------------------


def _person_for_flag(scope: Scope, person_id: int | None, id_number: str | None) -> Person:
    if person_id is not None:
        person = Person.objects.select_related("grid").filter(pk=person_id).first()
        if person is None or not scope.contains(person.grid.code if person.grid_id else None):
            raise NotFound(_("person not found"))
        return person
    if id_number:
        # A person named in the interview may live anywhere: matched by the keyed hash of the ID number, so the
        # tracer can hand them to their own region without seeing that region's records.
        try:
            number = idnumber.validate(id_number, today=clock.today())
        except idnumber.IdNumberError as exc:
            raise ValidationFailed(_("ID number: %(reason)s") % {"reason": exc.reason},
                                   extra={"field": "id_number"}) from None
        person = Person.objects.select_related("grid").filter(id_hash=idnumber.id_hash(number)).first()
        if person is None:
            raise ValidationFailed(_("ID number: nobody with this ID number is registered; register the person first"),
                                   extra={"field": "id_number"})
        return person
    raise ValidationFailed(_("give the person or their ID number"), extra={"field": "person_id"})


@transaction.atomic
def contact_flag(*, actor, scope: Scope, case: Case, person_id: int | None = None, id_number: str | None = None,
                 exposure_start: dt.datetime | None = None, exposure_end: dt.datetime | None = None,
                 relation: str = "", note: str = "", request=None) -> Contact:
    """A tracer names a close contact of the case (interview). Out-of-region people are handed off."""
    person = _person_for_flag(scope, person_id, id_number)
    if person.pk == case.person_id:
        raise ValidationFailed(_("the case itself is not a contact"), extra={"field": "person_id"})
    if Case.objects.filter(person_id=person.pk).exists():
        raise Conflict(_("this person is a case; link the two cases instead of adding a contact"))
    check_time("exposure_start", exposure_start)
    check_time("exposure_end", exposure_end)
    if exposure_start and exposure_end and exposure_end < exposure_start:
        raise ValidationFailed(_("end of exposure: the exposure ends before it starts"), extra={"field": "exposure_end"})
    now = clock.now()
    try:
        window, profile = windows.case_window(case, now=now)
        due = now + dt.timedelta(hours=profile.rules.quarantine.transfer_deadline_hours.close_contact)
    except (rules.NoAnchor, PolicyNotActive):
        window, due = None, None
    # Without a time from the interview the exposure lasted until the case was isolated (the end of its window), not
    # until now: the contact's quarantine counts from its last exposure.
    end = exposure_end or exposure_start or (window.end if window is not None else now)
    row = finding.ReasonRow(
        person_id=person.pk, case_id=case.pk, tier=Tier.CLOSE, kind=ReasonKind.TRACER, start=exposure_start, end=end,
        evidence={"relation": relation, "note": note, "by": getattr(actor, "username", "")},
        key=rules.reason_key(case.pk, "", ReasonKind.TRACER, person.pk, relation), due_at=due, added_by=_user(actor),
    )
    finding.persist([row], cases={case.pk: case}, now=now, actor=actor, request=request)
    return Contact.objects.get(person_id=person.pk)


_STAMP = {
    ContactStatus.NOTIFIED: "notified_at",
    ContactStatus.LOCATED: "located_at",
    ContactStatus.HANDED_OVER: "handed_over_at",
    ContactStatus.IN_QUARANTINE: "in_quarantine_at",
    ContactStatus.CLOSED: "closed_at",
}


def _transition_message(current: str, target: str) -> str:
    """rules.transition_error's reason as a translated sentence (the rules module stays free of Django)."""
    labels = dict(ContactStatus.choices)
    if target not in labels:
        return _("status: unknown status %(status)s") % {"status": repr(target)}
    if current == ContactStatus.CLOSED:
        return _("the contact is closed")
    return _("a contact cannot go back from %(current)s to %(target)s") % {
        "current": labels.get(current, current), "target": labels[target]}


@transaction.atomic
def contact_status_set(*, actor, contact: Contact, status: str, handed_to: str = "", note: str = "",
                       at: dt.datetime | None = None, scope: Scope | None = None, request=None) -> Contact:
    """Move a contact forward (identified → notified → located → handed over → in quarantine; or closed).

    Working on a contact is taking it over: hand-offs of this contact still waiting for the caller's region
    (``scope``) are accepted with the move, so the sending region does not see "waiting" for a contact already in
    quarantine."""
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    problem = rules.transition_error(contact.status, status)
    if problem:
        raise Conflict(_transition_message(contact.status, status), extra={"field": "status",
                                                                           "current": contact.status})
    if status == ContactStatus.HANDED_OVER and handed_to not in (HandedTo.GROUPING, HandedTo.TRANSFER):
        raise ValidationFailed(_("handed to: say whether the contact went to grouping or to transfer"),
                               extra={"field": "handed_to"})
    if status == ContactStatus.CLOSED and not note.strip():
        raise ValidationFailed(_("note: say why the contact is closed"), extra={"field": "note"})
    check_time("at", at)
    when = at or clock.now()
    previous = contact.status
    contact.status = status
    setattr(contact, _STAMP[status], when)
    if status == ContactStatus.HANDED_OVER:
        contact.handed_to = handed_to
    if status == ContactStatus.CLOSED:
        contact.close_reason = note.strip()[:255]
    elif note.strip():
        contact.note = (contact.note + "\n" + note.strip()).strip()
    contact.updated_at = clock.now()
    contact.save()
    audit.record(actor=actor, action="contact.status", object_type="people.person", object_id=contact.person_id,
                 region_code=contact.region_code, request=request, detail={"from": previous, "to": status})
    emit(f"tracing.contact_{status}", subject=contact, subject_type="tracing.contact", region_code=contact.region_code,
         actor=actor, payload={"person_id": contact.person_id, "from": previous, "to": status, "tier": contact.tier,
                               "handed_to": contact.handed_to, "at": when.isoformat()})
    if scope is not None:
        for handoff in Handoff.objects.select_for_update().filter(contact=contact, status=HandoffStatus.REQUESTED):
            if scope.contains(handoff.to_region_code):
                _accept(handoff, actor=actor, note=f"accepted with the move to {status}", request=request)
    return contact


@transaction.atomic
def handoff_accept(*, actor, handoff: Handoff, request=None) -> Handoff:
    handoff = Handoff.objects.select_for_update().get(pk=handoff.pk)
    if handoff.status == HandoffStatus.ACCEPTED:
        raise Conflict(_("the hand-off was already accepted"))
    return _accept(handoff, actor=actor, request=request)


def _accept(handoff: Handoff, *, actor, note: str = "", request=None) -> Handoff:
    handoff.status = HandoffStatus.ACCEPTED
    handoff.accepted_at = clock.now()
    handoff.accepted_by = _user(actor)
    fields = ["status", "accepted_at", "accepted_by"]
    if note:
        handoff.note = note[:255]
        fields.append("note")
    handoff.save(update_fields=fields)
    contact = Contact.objects.only("person_id", "region_code").get(pk=handoff.contact_id)
    audit.record(actor=actor, action="contact.handoff_accept", object_type="people.person",
                 object_id=contact.person_id, region_code=contact.region_code, request=request,
                 detail={"handoff": handoff.pk, "from": handoff.from_region_code, "to": handoff.to_region_code})
    emit("tracing.handoff_accepted", subject_type="tracing.contact", subject_id=handoff.contact_id,
         region_code=handoff.to_region_code, actor=actor,
         payload={"handoff": handoff.pk, "from_region": handoff.from_region_code, "to_region": handoff.to_region_code})
    # Tell the sending region too (its stream is filtered by region code).
    emit("tracing.handoff_accepted", subject_type="tracing.contact", subject_id=handoff.contact_id,
         region_code=handoff.from_region_code, actor=actor,
         payload={"handoff": handoff.pk, "from_region": handoff.from_region_code, "to_region": handoff.to_region_code})
    return handoff


# --- links and clusters -----------------------------------------------------------------------------------------------


@transaction.atomic
def link_decide(*, actor, link: Link, status: str, note: str = "", exposure_at: dt.datetime | None = None) -> Link:
    link = Link.objects.select_for_update().get(pk=link.pk)
    if status not in (LinkStatus.CONFIRMED, LinkStatus.REJECTED):
        raise ValidationFailed(_("status: confirmed or rejected"), extra={"field": "status"})
    check_time("exposure_at", exposure_at)
    if link.status == status and not note and exposure_at is None:
        return link
    link.status = status
    link.decided_by = _user(actor)
    link.decided_at = clock.now()
    if note:
        link.note = note
    if exposure_at is not None:
        link.exposure_at = exposure_at
    link.save()
    emit(f"tracing.link_{status}", subject_type="tracing.case", subject_id=link.infectee_id,
         region_code=link.infectee.region_code, actor=actor,
         payload={"infector": link.infector.ref, "infectee": link.infectee.ref})
    chains.clusters_refresh()
    return link


@transaction.atomic
def link_create(*, actor, scope: Scope, infector_ref: str, infectee_ref: str, note: str = "",
                exposure_at: dt.datetime | None = None) -> Link:
    """A tracer records a link found in the interview (confirmed at once). The infectee must be in the scope."""
    cases = {c.ref: c for c in Case.objects.filter(ref__in=[infector_ref, infectee_ref])}
    infectee = cases.get(infectee_ref)
    if infectee is None or not scope.contains(infectee.region_code):
        raise NotFound(_("case not found"))
    infector = cases.get(infector_ref)
    if infector is None:
        raise ValidationFailed(_("infector: unknown case number"), extra={"field": "infector_ref"})
    if infector.pk == infectee.pk:
        raise ValidationFailed(_("infector: a case cannot infect itself"), extra={"field": "infector_ref"})
    check_time("exposure_at", exposure_at)
    if Link.objects.filter(infector=infectee, infectee=infector).exclude(status=LinkStatus.REJECTED).exists():
        raise Conflict(_("the opposite link exists; reject it first"))
    now = clock.now()
    link, created = Link.objects.get_or_create(
        infector=infector, infectee=infectee,
        defaults={"status": LinkStatus.CONFIRMED, "kind": "manual", "confidence": "high",
                  "evidence": [{"kind": "manual", "note": note}], "exposure_at": exposure_at,
                  "created_by": _user(actor), "decided_by": _user(actor), "decided_at": now, "note": note},
    )
    if not created:
        return link_decide(actor=actor, link=link, status=LinkStatus.CONFIRMED, note=note, exposure_at=exposure_at)
    emit("tracing.link_confirmed", subject_type="tracing.case", subject_id=infectee.pk,
         region_code=infectee.region_code, actor=actor, payload={"infector": infector.ref, "infectee": infectee.ref})
    chains.clusters_refresh()
    return link


@transaction.atomic
def cluster_update(*, actor, cluster: Cluster, name: str | None = None, setting: str | None = None) -> Cluster:
    if setting is not None and setting not in Setting.values:
        raise ValidationFailed(_("setting: unknown setting"), extra={"field": "setting"})
    if name is not None:
        if not name.strip():
            raise ValidationFailed(_("name: required"), extra={"field": "name"})
        cluster.name = name.strip()[:128]
    if setting is not None:
        cluster.setting = setting
    cluster.named_by_tracer = True
    cluster.updated_at = clock.now()
    cluster.save()
    emit("tracing.cluster_updated", subject=cluster, subject_type="tracing.cluster", region_code=cluster.region_code,
         actor=actor, payload={"name": cluster.name, "setting": cluster.setting})
    return cluster


# --- runs -------------------------------------------------------------------------------------------------------------


def open_case_ids(*, scope_prefix: str = "") -> list[int]:
    qs = Case.objects.exclude(status=CaseStatus.CLOSED)
    if scope_prefix:
        qs = qs.filter(region_code__startswith=scope_prefix)
    return list(qs.order_by("pk").values_list("pk", flat=True))


def find_run(*, case_ids: Iterable[int], actor=None, lake=finding.default_lake, engine=None, echo=None) -> dict:
    """The whole job: check-ins into the timelines, contact finding, link suggestions, clusters."""
    ids = list(case_ids)
    if callable(lake):
        lake = lake()
    now = clock.now()
    cases = list(Case.objects.filter(pk__in=ids).exclude(status=CaseStatus.CLOSED))
    drafted = {"checkins": 0, "added": 0}
    with transaction.atomic():
        timeline.draft_registry(cases, now=now)
        if lake is not None:
            drafted = timeline.draft_checkins(cases, lake, now=now)
        timeline.flags_refresh([c.pk for c in cases])
    if echo:
        echo(f"timelines: {drafted['added']:,} check-in stays added ({'lake' if lake is not None else 'no lake'})")
    result = finding.contacts_find(case_ids=ids, actor=actor, now=now, lake=lake, engine=engine, echo=echo)
    result["timeline"] = drafted
    result["lake"] = lake is not None
    result["links"] = chains.links_suggest(case_ids=ids, actor=actor, now=now)
    result["clusters"] = chains.clusters_refresh(now=now)
    return result
