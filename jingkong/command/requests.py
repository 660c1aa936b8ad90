"""Writes of the services feature (暖服务): service requests from people under lockdown.

* A request is submitted by the resident, a relative or the hotline (public page, identified by the person's code
  token or ID number + registry phone) or by a staff member on the person's behalf. Submitting twice with the same
  submission key returns the first request (no duplicate).
* Priority and deadline come from the profile in force for the person's grid (:mod:`jingkong.command.service_rules`);
  an urgent medical need sets ``escort_requested``, creates an escort task for the grid
  (``create_auto_tasks(source="service")``) and emits ``command.escort_requested`` (subject people.person) for the
  transfer side.
* The request lands with a field worker covering the person's building or grid (reassignable); it moves
  submitted → assigned → in progress → delivered → confirmed (by the resident) or cancelled, each step a
  :class:`ServiceUpdate`; the resident confirms and rates it, or says it did not arrive (back to in progress); a
  delivery without answer closes itself after the profile's confirmation window.

Every function is one transaction, audited (person data), with a domain event.
"""

from __future__ import annotations

import datetime as dt
import secrets
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from jingkong.access import audit
from jingkong.access.guard import Scope
from jingkong.command import service_rules
from jingkong.command.models import FieldWorker, ServiceRequest, ServiceStatus, ServiceUpdate
from jingkong.core import clock
from jingkong.core.events import emit
from jingkong.core.exceptions import ApplicationError, Conflict, NotFound, ValidationFailed
from jingkong.people import idnumber
from jingkong.people.models import Person
from jingkong.policy.selectors import active_profile

VIA = ("resident", "relative", "hotline", "staff")
MAX_DESCRIPTION = 2000
# Public identification: refusals per client address (wrong ID/phone, bad token, unknown request number) in a window,
# and submissions per address per hour. A security setting, not a policy rule.
FAILURE_WINDOW = dt.timedelta(minutes=15)
FAILURE_LIMIT = 10
SUBMIT_WINDOW = dt.timedelta(hours=1)
SUBMIT_LIMIT = 30
FAILED = "service.identify_failed"
PUBLIC_SUBMIT = "service.public_submit"
PUBLIC_OBJECT = "command.help"


class TooManyAttempts(ApplicationError):
    status_code = 429
    code = "rate_limited"


class NotIdentified(ValidationFailed):
    """The same answer for an unknown ID number and a wrong phone (existence does not leak)."""

    code = "not_identified"


# --- helpers ----------------------------------------------------------------------------------------------------------


def clean_text(value: str, field: str, *, limit: int) -> str:
    value = (value or "").strip()
    if "\x00" in value:
        raise ValidationFailed(_("%(field)s contains a NUL character") % {"field": field}, extra={"field": field})
    if len(value) > limit:
        raise ValidationFailed(_("%(field)s is longer than %(n)d characters") % {"field": field, "n": limit},
                               extra={"field": field})
    return value


def normalize_phone(phone: str) -> str:
    return "".join(ch for ch in (phone or "") if ch.isdigit())


def _ip(request) -> str | None:
    return (getattr(request, "META", {}) or {}).get("REMOTE_ADDR") or None


def check_rate(request, *, submitting: bool = False, now: dt.datetime | None = None) -> None:
    """Refuse (429) a client address with too many recent refusals (or submissions)."""
    from jingkong.access.models import AuditLog

    ip = _ip(request)
    if not ip:
        return
    now = now or clock.now()
    failures = AuditLog.objects.filter(action=FAILED, ip=ip, at__gte=now - FAILURE_WINDOW).count()
    if failures >= FAILURE_LIMIT:
        raise TooManyAttempts(_("Too many attempts from your connection. Please wait a few minutes or call the "
                                "hotline."))
    if submitting:
        sent = AuditLog.objects.filter(action=PUBLIC_SUBMIT, ip=ip, at__gte=now - SUBMIT_WINDOW).count()
        if sent >= SUBMIT_LIMIT:
            raise TooManyAttempts(_("Too many requests from your connection in the last hour. Please call the "
                                    "hotline."))


def _refused(request, what: str, message: str, field: str = "") -> NotIdentified:
    audit.record(actor=None, action=FAILED, object_type=PUBLIC_OBJECT, object_id=what, request=request)
    return NotIdentified(message, extra={"field": field} if field else {})


def identify_by_id_phone(*, id_number: str, phone: str, request=None, now: dt.datetime | None = None) -> Person:
    """The person with this resident ID number whose registry phone is ``phone``.

    A malformed number is refused naming the field (GB 11643 check); an unknown number and a wrong phone get the same
    answer, and count against the client address's attempts.
    """
    now = now or clock.now()
    check_rate(request, now=now)
    if "\x00" in (id_number or "") or "\x00" in (phone or ""):
        raise ValidationFailed(_("the request contains a NUL character"), extra={"field": "id_number"})
    try:
        number = idnumber.validate(id_number, today=now.date())
    except idnumber.IdNumberError as exc:
        raise _refused(request, "id_number", _("The ID number is not valid: %(reason)s") % {"reason": exc.reason},
                       "id_number") from None
    digits = normalize_phone(phone)
    person = Person.objects.select_related("grid").filter(id_hash=idnumber.id_hash(number)).first()
    if person is None or not digits or normalize_phone(person.phone) != digits:
        raise _refused(request, "id_phone", _("We found no resident with this ID number and phone number. Check both, "
                                              "or call the hotline."))
    return person


def identify_by_token(*, token: str, request=None, now: dt.datetime | None = None) -> Person:
    """The person of a signed code token (jingkong.codes.tokens.verify); a bad or expired token is refused."""
    now = now or clock.now()
    check_rate(request, now=now)
    token = (token or "").strip()
    if not token or "\x00" in token or len(token) > 4096:
        raise _refused(request, "token", _("The code is not valid."), "token")
    try:
        from jingkong.codes import tokens
    except ImportError:  # the codes feature is not installed yet
        raise _refused(request, "token", _("Identification by code is not available; use the ID number and phone."),
                       "token") from None
    try:
        verified = tokens.verify(token, at=now)
    except tokens.InvalidToken as exc:
        reason = getattr(exc, "reason", "malformed")
        message = _("The code has expired: refresh it and try again.") if reason == "expired" else \
            _("The code is not valid.")
        raise _refused(request, "token", message, "token") from None
    person = Person.objects.select_related("grid").filter(pk=verified.person_id).first()
    if person is None:
        raise _refused(request, "token", _("The code is not valid."), "token")
    return person


def _new_ref(at: dt.datetime) -> str:
    day = at.astimezone(ZoneInfo(clock.local_time_zone())).strftime("%y%m%d")
    alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    while True:
        ref = f"FW{day}-" + "".join(secrets.choice(alphabet) for _ in range(6))
        if not ServiceRequest.objects.filter(ref=ref).exists():
            return ref


def pick_worker(*, region_code: str, building_id: int | None) -> FieldWorker | None:
    """The active field worker covering the person's building, else their grid (the same answer as for tasks:
    :func:`jingkong.command.workers.assignees_for`)."""
    from jingkong.command.workers import assignees_for

    pk = assignees_for([(region_code, building_id)]).get((region_code, building_id))
    return FieldWorker.objects.filter(pk=pk).first() if pk else None


def _update(req: ServiceRequest, status: str, *, by=None, note: str = "", at: dt.datetime) -> ServiceUpdate:
    return ServiceUpdate.objects.create(request=req, at=at, by=by if getattr(by, "pk", None) else None,
                                        status=status, note=note)


def _escort(req: ServiceRequest, person: Person, *, actor, at: dt.datetime) -> None:
    """An escort/transfer request for an urgent medical need: a task for the grid and an event for the transfer side."""
    from jingkong.command.schemas_services import name_mask
    from jingkong.command.services import create_auto_tasks

    # The title shows in task lists and roll-ups of everyone in the region: the name masked, like the queue shows it
    # (the worker opens the request for the person's details, audited).
    create_auto_tasks("service", [{
        "source_key": req.ref,
        "title": _("Escort %(name)s to a medical visit (%(ref)s)") % {"name": name_mask(person.name), "ref": req.ref},
        "region_code": req.region_code,
        "building_id": person.building_id,
        "deadline": req.deadline,
        "payload": {"service_request": req.ref, "category": req.category, "subcategory": req.subcategory,
                    "person_id": person.pk},
    }], at=at)
    emit("command.escort_requested", subject=person, region_code=req.region_code, actor=actor, at=at,
         payload={"request": req.ref, "request_id": req.pk, "category": req.category,
                  "subcategory": req.subcategory, "deadline": req.deadline.isoformat(), "priority": req.priority})


# --- submission -------------------------------------------------------------------------------------------------------


def request_submit(*, person: Person, category: str, subcategory: str = "", description: str = "",
                   via: str = "resident", contact_phone: str = "", client_key: str = "", actor=None, request=None,
                   at: dt.datetime | None = None) -> tuple[ServiceRequest, bool]:
    """Create a request for ``person`` (or return the one already made with ``client_key``): ``(request, created)``."""
    at = at or clock.now()
    if via not in VIA:
        raise ValidationFailed(_("unknown channel %(via)s") % {"via": via}, extra={"field": "via"})
    description = clean_text(description, "description", limit=MAX_DESCRIPTION)
    subcategory = clean_text(subcategory, "subcategory", limit=32)
    client_key = clean_text(client_key, "client_key", limit=64)
    contact_phone = normalize_phone(clean_text(contact_phone, "contact_phone", limit=20))
    if contact_phone and not 5 <= len(contact_phone) <= 15:
        raise ValidationFailed(_("the phone number to call back is not valid"), extra={"field": "contact_phone"})
    if client_key:
        existing = ServiceRequest.objects.filter(person=person, client_key=client_key).first()
        if existing is not None:
            return existing, False
    if person.grid_id is None:
        raise ValidationFailed(_("this resident has no registered residence; please call the hotline"),
                               extra={"field": "person"})
    region_code = person.grid.code
    services = active_profile(region_code=region_code, at=at).rules.section("services")
    try:
        tri = service_rules.triage(services, category=category, subcategory=subcategory,
                                   vulnerable=person.vulnerable, submitted_at=at)
    except service_rules.UnknownCategory as exc:  # shown on the resident's page: in the reader's language
        from jingkong.command.models import ServiceCategory

        label = ServiceCategory(category).label if category in ServiceCategory.values else category
        message = (_("“%(sub)s” is not a kind of “%(category)s” request: choose one from the list.") %
                   {"sub": subcategory, "category": label}) if exc.field == "subcategory" else \
            (_("The service “%(category)s” is not offered here; please call the hotline.") % {"category": label})
        raise ValidationFailed(message, extra={"field": exc.field}) from None
    try:
        with transaction.atomic():
            worker = pick_worker(region_code=region_code, building_id=person.building_id)
            req = ServiceRequest.objects.create(
                ref=_new_ref(at), person=person, category=category, subcategory=subcategory, description=description,
                submitted_via=via, region_code=region_code, vulnerable=person.vulnerable, priority=tri.priority,
                deadline=tri.deadline, status=ServiceStatus.ASSIGNED if worker else ServiceStatus.SUBMITTED,
                assignee=worker, escort_requested=tri.escort, submitted_at=at, client_key=client_key,
                contact_phone=contact_phone or normalize_phone(person.phone))
            _update(req, ServiceStatus.SUBMITTED, by=actor, at=at, note=" ".join(tri.reasons))
            if worker:
                _update(req, ServiceStatus.ASSIGNED, by=actor, at=at, note=worker.name)
            audit.record(actor=actor, action="service.submit", object_type="people.person", object_id=person.pk,
                         region_code=region_code, request=request,
                         detail={"request": req.ref, "category": category, "via": via})
            if actor is None and request is not None:
                audit.record(actor=None, action=PUBLIC_SUBMIT, object_type=PUBLIC_OBJECT, object_id=req.ref,
                             request=request)
            emit("command.service_submitted", subject=req, region_code=region_code, actor=actor, at=at,
                 payload={"ref": req.ref, "category": category, "subcategory": subcategory,
                          "priority": req.priority, "escort": req.escort_requested,
                          "assignee_id": worker.pk if worker else None})
            if tri.escort:
                _escort(req, person, actor=actor, at=at)
    except IntegrityError:
        if client_key:  # a concurrent double submit won the race
            existing = ServiceRequest.objects.filter(person=person, client_key=client_key).first()
            if existing is not None:
                return existing, False
        raise
    return req, True


def person_for_staff(*, scope: Scope, person_id: int | None = None, id_number: str = "") -> Person:
    """The person a staff member (hotline) submits for: by id or by ID number, inside the caller's scope (else 404)."""
    if person_id is not None:
        person = Person.objects.select_related("grid").filter(pk=person_id).first()
    elif id_number:
        try:
            number = idnumber.validate(clean_text(id_number, "id_number", limit=32), today=clock.now().date())
        except idnumber.IdNumberError as exc:
            raise ValidationFailed(exc.reason, extra={"field": "id_number"}) from None
        person = Person.objects.select_related("grid").filter(id_hash=idnumber.id_hash(number)).first()
    else:
        raise ValidationFailed(_("name the person (id or ID number)"), extra={"field": "person_id"})
    if person is None or not scope.contains(person.grid.code if person.grid_id else None):
        raise NotFound(_("person not found"))
    return person


# --- staff actions ----------------------------------------------------------------------------------------------------


def _locked(req: ServiceRequest) -> ServiceRequest:
    return ServiceRequest.objects.select_for_update(of=("self",)).select_related("person", "assignee").get(pk=req.pk)


@transaction.atomic
def request_assign(*, actor, scope: Scope, req: ServiceRequest, worker_id: int, note: str = "", request=None,
                   at: dt.datetime | None = None) -> ServiceRequest:
    """Give the request to another (active) field worker of the caller's scope."""
    at = at or clock.now()
    note = clean_text(note, "note", limit=1000)
    worker = FieldWorker.objects.filter(pk=worker_id, active=True).first()
    if worker is None or not scope.contains(worker.region_code):
        raise NotFound(_("field worker not found"))
    req = _locked(req)
    if req.status not in service_rules.OPEN_STATUSES:
        raise Conflict(_("request %(ref)s is %(status)s: it cannot be reassigned") %
                       {"ref": req.ref, "status": req.get_status_display()})
    previous = req.assignee.name if req.assignee_id else ""
    req.assignee = worker
    req.status = ServiceStatus.ASSIGNED
    req.save(update_fields=["assignee", "status"])
    _update(req, ServiceStatus.ASSIGNED, by=actor, at=at, note=" ".join(x for x in (worker.name, note) if x))
    audit.record(actor=actor, action="service.assign", object_type="people.person", object_id=req.person_id,
                 region_code=req.region_code, request=request,
                 detail={"request": req.ref, "to": worker.pk, "from": previous})
    emit("command.service_assigned", subject=req, region_code=req.region_code, actor=actor, at=at,
         payload={"ref": req.ref, "assignee_id": worker.pk})
    return req


@transaction.atomic
def request_status(*, actor, req: ServiceRequest, status: str, note: str = "", request=None,
                   at: dt.datetime | None = None) -> ServiceRequest:
    """Move the request on (staff or the assigned worker): in progress, delivered, cancelled (with a reason)."""
    at = at or clock.now()
    note = clean_text(note, "note", limit=1000)
    req = _locked(req)
    if status not in ServiceStatus.values or status in (ServiceStatus.CONFIRMED, ServiceStatus.ASSIGNED):
        # "assigned" names a worker: request_assign; "confirmed" is the requester's answer.
        raise ValidationFailed(_("unknown status %(s)s") % {"s": status}, extra={"field": "status"})
    if not service_rules.may_move(req.status, status):
        raise Conflict(_("request %(ref)s is %(status)s: it cannot become %(target)s") % {
            "ref": req.ref, "status": req.get_status_display(), "target": ServiceStatus(status).label})
    if status == ServiceStatus.CANCELLED and not note:
        raise ValidationFailed(_("say why the request is cancelled"), extra={"field": "note"})
    req.status = status
    fields = ["status"]
    if status == ServiceStatus.DELIVERED:
        req.delivered_at = at
        fields.append("delivered_at")
    req.save(update_fields=fields)
    _update(req, status, by=actor, at=at, note=note)
    audit.record(actor=actor, action="service.status", object_type="people.person", object_id=req.person_id,
                 region_code=req.region_code, request=request, detail={"request": req.ref, "status": status})
    emit(f"command.service_{status}", subject=req, region_code=req.region_code, actor=actor, at=at,
         payload={"ref": req.ref, "status": status})
    return req


# --- the resident's side ----------------------------------------------------------------------------------------------


def request_for_requester(*, ref: str, phone: str, request=None, now: dt.datetime | None = None) -> ServiceRequest:
    """The request with this number, if ``phone`` is its call-back phone or the person's registry phone (else the same
    refusal for both, counted against the client address)."""
    now = now or clock.now()
    check_rate(request, now=now)
    ref = (ref or "").strip().upper()
    digits = normalize_phone(phone)
    if "\x00" in ref or len(ref) > 32:
        raise ValidationFailed(_("the request number is not valid"), extra={"field": "ref"})
    req = ServiceRequest.objects.select_related("person", "assignee").filter(ref=ref).first() if ref else None
    if req is None or not digits or digits not in {normalize_phone(req.contact_phone),
                                                   normalize_phone(req.person.phone)} - {""}:
        raise _refused(request, "status", _("We found no request with this number and phone number."))
    # The requester reads the request (masked name, status, who comes): a read of person data, audited.
    audit.record(actor=None, action="person.view", object_type="people.person", object_id=req.person_id,
                 region_code=req.region_code, request=request, detail={"service_request": req.ref,
                                                                        "via": "help_status"})
    return req


@transaction.atomic
def request_resident_answer(*, req: ServiceRequest, action: str, satisfaction: int | None = None, note: str = "",
                            request=None, at: dt.datetime | None = None) -> ServiceRequest:
    """The requester confirms a delivery (with satisfaction 1–5), says it did not arrive, or cancels a request that
    nobody has started on."""
    at = at or clock.now()
    note = clean_text(note, "note", limit=1000)
    req = _locked(req)
    target = {"confirm": ServiceStatus.CONFIRMED, "not_received": ServiceStatus.IN_PROGRESS,
              "cancel": ServiceStatus.CANCELLED}.get(action)
    if target is None:
        raise ValidationFailed(_("unknown answer"), extra={"field": "action"})
    if not service_rules.may_move(req.status, target, by_resident=True):
        raise Conflict(_("request %(ref)s is %(status)s: this answer does not apply") %
                       {"ref": req.ref, "status": req.get_status_display()})
    fields = ["status"]
    if target == ServiceStatus.CONFIRMED:
        if satisfaction is None or not 1 <= satisfaction <= 5:
            raise ValidationFailed(_("rate the service from 1 to 5"), extra={"field": "satisfaction"})
        req.confirmed_at, req.satisfaction = at, satisfaction
        fields += ["confirmed_at", "satisfaction"]
    req.status = target
    req.save(update_fields=fields)
    text = note or {"confirm": _("confirmed by the requester"), "not_received": _("the requester says it did not arrive"),
                    "cancel": _("cancelled by the requester")}[action]
    _update(req, target, by=None, at=at, note=text)
    audit.record(actor=None, action=f"service.resident_{action}", object_type="people.person",
                 object_id=req.person_id, region_code=req.region_code, request=request,
                 detail={"request": req.ref, "satisfaction": satisfaction})
    emit(f"command.service_{'reopened' if action == 'not_received' else target}", subject=req,
         region_code=req.region_code, at=at, payload={"ref": req.ref, "by": "requester", "satisfaction": satisfaction})
    return req


def requests_autoclose(*, at: dt.datetime | None = None) -> int:
    """Close the delivered requests whose confirmation window (profile in force for their grid) has passed."""
    at = at or clock.now()
    closed = 0
    candidates = ServiceRequest.objects.filter(status=ServiceStatus.DELIVERED, delivered_at__isnull=False)
    for req in candidates.only("pk", "region_code", "delivered_at").iterator():
        try:
            services = active_profile(region_code=req.region_code, at=at).rules.section("services")
        except Exception:  # noqa: BLE001 - no profile in force for this grid: leave it open
            continue
        due = service_rules.confirmation_due(services, req.delivered_at)
        if due is None or due > at:
            continue
        with transaction.atomic():
            locked = ServiceRequest.objects.select_for_update().get(pk=req.pk)
            if locked.status != ServiceStatus.DELIVERED:
                continue
            locked.status, locked.confirmed_at, locked.auto_confirmed = ServiceStatus.CONFIRMED, at, True
            locked.save(update_fields=["status", "confirmed_at", "auto_confirmed"])
            _update(locked, ServiceStatus.CONFIRMED, at=at, note=_("no answer within the confirmation window"))
            audit.record(actor=None, action="service.autoclose", object_type="people.person",
                         object_id=locked.person_id, region_code=locked.region_code, source="system",
                         detail={"request": locked.ref})
            emit("command.service_confirmed", subject=locked, region_code=locked.region_code, at=at,
                 payload={"ref": locked.ref, "by": "window"})
            closed += 1
    return closed
