"""Writes of the facilities area: facilities and their staff, rooms (bulk), room states, room assignment, checkout.

Every write is one transaction with an audit record and a domain event. Room assignment locks the facility row, so
two arrivals at one site never get the same room; it reads the free rooms and open stays once, runs the pure rules of
:mod:`jingkong.isolation.assignment` and writes set-based (``RoomStay`` bulk insert, one ``UPDATE`` of room states).

Room states (:data:`TRANSITIONS`): free → reserved → occupied → cleaning → free; out of service from free or cleaning
and back to free. ``occupied → cleaning`` happens only at checkout, when the room's last stay ends.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from jingkong.access import audit
from jingkong.access.guard import Scope
from jingkong.core import bulk, clock
from jingkong.core.events import emit, emit_many
from jingkong.core.exceptions import Conflict, NotFound, ValidationFailed
from jingkong.isolation import assignment
from jingkong.isolation.models import Facility, FacilityKind, Room, RoomKind, RoomState, RoomStay
from jingkong.people.models import Person, Vulnerable

log = logging.getLogger(__name__)
try:  # COPY on PostgreSQL raises the driver's own error, not Django's wrapper
    import psycopg

    _UNIQUE = (IntegrityError, psycopg.IntegrityError)
except ImportError:  # pragma: no cover - SQLite-only installs
    _UNIQUE = (IntegrityError,)

TRANSITIONS: dict[str, set[str]] = {
    RoomState.FREE: {RoomState.RESERVED, RoomState.OCCUPIED, RoomState.OUT_OF_SERVICE},
    RoomState.RESERVED: {RoomState.OCCUPIED, RoomState.FREE},
    RoomState.OCCUPIED: {RoomState.CLEANING},
    RoomState.CLEANING: {RoomState.FREE, RoomState.OUT_OF_SERVICE},
    RoomState.OUT_OF_SERVICE: {RoomState.FREE, RoomState.CLEANING},
}
MAX_FLOORS = 200
MAX_ROOMS_PER_FLOOR = 200
MAX_ASSIGN = 20_000


def transition_error(current: str, target: str, *, open_stays: int = 0) -> str | None:
    """Why a room cannot go from ``current`` to ``target`` by hand (None: it can)."""
    labels = dict(RoomState.choices)
    if target not in labels:
        return _("unknown room state %(state)s") % {"state": target}
    if target == current:
        return _("the room is already %(state)s") % {"state": labels[target]}
    if open_stays and target != RoomState.OCCUPIED:
        return _("people are still in the room: check them out first")
    if target not in TRANSITIONS.get(current, set()):
        return _("a room cannot go from %(current)s to %(target)s") % {"current": labels.get(current, current),
                                                                       "target": labels[target]}
    return None


def _user(actor):
    return actor if getattr(actor, "pk", None) else None


def _text(name: str, value, *, limit: int, required: bool = False) -> str:
    value = (value or "").strip() if isinstance(value, str) else ("" if value is None else str(value))
    if "\x00" in value:
        raise ValidationFailed(_("%(field)s: NUL characters are not allowed") % {"field": name}, extra={"field": name})
    if required and not value:
        raise ValidationFailed(_("%(field)s: required") % {"field": name}, extra={"field": name})
    if len(value) > limit:
        raise ValidationFailed(_("%(field)s: at most %(n)s characters") % {"field": name, "n": limit},
                               extra={"field": name})
    return value


# --- facilities -------------------------------------------------------------------------------------------------------


@transaction.atomic
def facility_create(*, actor, scope: Scope, code: str, name: str, kind: str, region_code: str, lon: float, lat: float,
                    address: str = "", mixing_tiers_forbidden: bool = True, request=None) -> Facility:
    from jingkong.geo.models import Region

    code = _text("code", code, limit=32, required=True)
    name = _text("name", name, limit=255, required=True)
    address = _text("address", address, limit=255)
    region_code = _text("region_code", region_code, limit=32, required=True)
    if kind not in FacilityKind.values:
        raise ValidationFailed(_("kind: unknown facility kind"), extra={"field": "kind"})
    scope.check(region_code, "region")
    if not Region.objects.filter(code=region_code).exists():
        raise NotFound(_("region not found"), extra={"field": "region_code"})
    _check_point(lon, lat)
    exists = Conflict(_("code: a facility with this code exists"), extra={"field": "code"})
    if Facility.objects.filter(code=code).exists():
        raise exists
    try:
        with transaction.atomic():  # two managers registering one code at once: the second gets the 409, not a 500
            facility = Facility.objects.create(code=code, name=name, kind=kind, region_code=region_code, lon=lon,
                                               lat=lat, address=address, mixing_tiers_forbidden=mixing_tiers_forbidden)
    except IntegrityError:
        raise exists from None
    audit.record(actor=actor, action="facility.create", object_type="isolation.facility", object_id=facility.pk,
                 region_code=region_code, request=request, detail={"code": code})
    emit("isolation.facility_created", subject=facility, region_code=region_code, actor=_user(actor),
         payload={"code": code, "kind": kind})
    return facility


def _check_point(lon, lat) -> None:
    if not (-180 <= float(lon) <= 180):
        raise ValidationFailed(_("lon: out of range"), extra={"field": "lon"})
    if not (-90 <= float(lat) <= 90):
        raise ValidationFailed(_("lat: out of range"), extra={"field": "lat"})


@transaction.atomic
def facility_update(*, actor, facility: Facility, request=None, **changes) -> Facility:
    facility = Facility.objects.select_for_update().get(pk=facility.pk)
    allowed = {"name": 255, "address": 255}
    for key, value in changes.items():
        if key in allowed:
            setattr(facility, key, _text(key, value, limit=allowed[key], required=key == "name"))
        elif key == "kind":
            if value not in FacilityKind.values:
                raise ValidationFailed(_("kind: unknown facility kind"), extra={"field": "kind"})
            facility.kind = value
        elif key in ("lon", "lat"):
            setattr(facility, key, float(value))
        elif key in ("mixing_tiers_forbidden", "active"):
            setattr(facility, key, bool(value))
        else:
            raise ValidationFailed(_("%(field)s: cannot be changed") % {"field": key}, extra={"field": key})
    _check_point(facility.lon, facility.lat)
    facility.save()
    audit.record(actor=actor, action="facility.update", object_type="isolation.facility", object_id=facility.pk,
                 region_code=facility.region_code, request=request, detail={"fields": sorted(changes)})
    emit("isolation.facility_updated", subject=facility, region_code=facility.region_code, actor=_user(actor),
         payload={"fields": sorted(changes)})
    return facility


@transaction.atomic
def facility_staff_set(*, actor, scope: Scope, facility: Facility, usernames: Sequence[str], request=None) -> list[str]:
    """Replace the facility's staff by these users (each must belong to the caller's region subtree)."""
    from jingkong.access.models import User

    names = sorted({_text("usernames", u, limit=150, required=True) for u in usernames})
    users = list(User.objects.filter(username__in=names).select_related("region"))
    found = {u.username: u for u in users if u.region is not None and scope.contains(u.region.code)}
    missing = [n for n in names if n not in found]
    if missing:
        raise ValidationFailed(_("usernames: unknown user %(name)s") % {"name": missing[0]},
                               extra={"field": "usernames", "value": missing[0]})
    facility.staff.set(list(found.values()))
    audit.record(actor=actor, action="facility.staff", object_type="isolation.facility", object_id=facility.pk,
                 region_code=facility.region_code, request=request, detail={"staff": names})
    emit("isolation.facility_staff_changed", subject=facility, region_code=facility.region_code, actor=_user(actor),
         payload={"staff": names})
    return names


# --- rooms ------------------------------------------------------------------------------------------------------------


@dataclass
class RoomsReport:
    created: int = 0
    existing: int = 0
    numbers: list[str] = field(default_factory=list)


@transaction.atomic
def rooms_bulk_create(*, actor, facility: Facility, floors: Sequence[int], rooms_per_floor: int, kind: str = "single",
                      beds: int = 1, first_number: int = 1, request=None) -> RoomsReport:
    """Create rooms ``<floor><nn>`` (e.g. 301…330) on each floor; rooms that exist already are kept as they are."""
    floors = sorted(set(int(f) for f in floors))
    if not floors or len(floors) > MAX_FLOORS or any(f < -5 or f > 300 for f in floors):
        raise ValidationFailed(_("floors: between 1 and %(n)s floors from -5 to 300") % {"n": MAX_FLOORS},
                               extra={"field": "floors"})
    if not 1 <= rooms_per_floor <= MAX_ROOMS_PER_FLOOR:
        raise ValidationFailed(_("rooms_per_floor: 1 to %(n)s") % {"n": MAX_ROOMS_PER_FLOOR},
                               extra={"field": "rooms_per_floor"})
    if kind not in RoomKind.values:
        raise ValidationFailed(_("kind: unknown room kind"), extra={"field": "kind"})
    if not 1 <= beds <= 12:
        raise ValidationFailed(_("beds: 1 to 12"), extra={"field": "beds"})
    if kind == RoomKind.FAMILY and beds < 2:
        raise ValidationFailed(_("beds: a family room has at least 2 beds"), extra={"field": "beds"})
    if not 0 <= first_number <= 900 or first_number + rooms_per_floor - 1 > 999:
        raise ValidationFailed(_("first_number: 0 to 900, and room numbers up to 999"), extra={"field": "first_number"})
    width = 2 if first_number + rooms_per_floor - 1 < 100 else 3
    now = clock.now()
    wanted = {f"{floor}{n:0{width}d}": floor for floor in floors
              for n in range(first_number, first_number + rooms_per_floor)}
    existing = set(Room.objects.filter(facility=facility, number__in=list(wanted)).values_list("number", flat=True))
    rows = [Room(facility=facility, number=number, floor=floor, kind=kind, beds=beds, state=RoomState.FREE,
                 state_since=now) for number, floor in wanted.items() if number not in existing]
    Room.objects.bulk_create(rows, batch_size=2000)
    report = RoomsReport(created=len(rows), existing=len(existing), numbers=[r.number for r in rows][:20])
    audit.record(actor=actor, action="facility.rooms_create", object_type="isolation.facility", object_id=facility.pk,
                 region_code=facility.region_code, request=request,
                 detail={"floors": floors, "per_floor": rooms_per_floor, "kind": kind, "created": report.created})
    emit("isolation.rooms_created", subject=facility, region_code=facility.region_code, actor=_user(actor),
         payload={"created": report.created, "existing": report.existing, "kind": kind, "floors": floors})
    return report


@transaction.atomic
def room_state_set(*, actor, room: Room, state: str, request=None) -> Room:
    """Move a room by hand (cleaning done → free, out of service and back, a reservation released).

    Locks the facility first, as an assignment does: a room taken out of service while arrivals are being placed
    either waits for them (and then refuses: people are in it) or is never given to them."""
    Facility.objects.select_for_update().filter(pk=room.facility_id).values_list("pk", flat=True).first()
    room = Room.objects.select_for_update().get(pk=room.pk)
    open_stays = RoomStay.objects.filter(room=room, checked_out_at__isnull=True).count()
    problem = transition_error(room.state, state, open_stays=open_stays)
    if problem is None and state == RoomState.OCCUPIED and not open_stays:
        problem = _("nobody is in the room: assign people to it")
    if problem:
        raise Conflict(problem, extra={"field": "state", "current": room.state})
    previous = room.state
    room.state, room.state_since = state, clock.now()
    room.save(update_fields=["state", "state_since"])
    audit.record(actor=actor, action="facility.room_state", object_type="isolation.room", object_id=room.pk,
                 region_code=room.facility.region_code, request=request, detail={"from": previous, "to": state})
    emit("isolation.room_state_changed", subject=room, region_code=room.facility.region_code, actor=_user(actor),
         payload={"facility_id": room.facility_id, "from": previous, "to": state})
    return room


# --- assignment -------------------------------------------------------------------------------------------------------


@dataclass
class AssignReport:
    assigned: dict[int, int] = field(default_factory=dict)  # person_id -> room_id (new stays)
    checked_in: list[int] = field(default_factory=list)  # reservations of these people turned into check-ins
    unassigned: dict[int, str] = field(default_factory=dict)  # person_id -> reason code
    flags: dict[int, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"assigned": len(self.assigned), "checked_in": len(self.checked_in),
                "unassigned": [{"person_id": p, "reason": r} for p, r in sorted(self.unassigned.items())],
                "rooms": {str(p): r for p, r in sorted(self.assigned.items())},
                "flags": {str(p): f for p, f in sorted(self.flags.items())}}


def tiers_for(person_ids: Iterable[int]) -> dict[int, str]:
    """Each person's tier as the tracing feature knows it: a case, else the contact's tier, else 'other'."""
    from jingkong.tracing.models import Case, Contact

    ids = list(person_ids)
    tiers = {pid: "other" for pid in ids}
    for pid, tier in Contact.objects.filter(person_id__in=ids).values_list("person_id", "tier"):
        tiers[pid] = tier if tier in ("close", "secondary") else "other"
    for pid in Case.objects.filter(person_id__in=ids).values_list("person_id", flat=True):
        tiers[pid] = "case"
    return tiers


def mixing_forbidden(facility: Facility, *, at: dt.datetime | None = None) -> bool:
    """Facility flag, or the profile's ``isolation.tiers_may_mix_on_floor`` = false (when the profile has it)."""
    if facility.mixing_tiers_forbidden:
        return True
    rules = isolation_rules(facility.region_code, at=at)
    return rules is not None and not rules.tiers_may_mix_on_floor


def isolation_rules(region_code: str, *, at: dt.datetime | None = None):
    """The profile's ``isolation`` section for the region, or None (no active profile, or one without it)."""
    from jingkong.policy.schema import RulesIncomplete
    from jingkong.policy.selectors import PolicyNotActive, active_profile

    try:
        return active_profile(region_code=region_code or None, at=at).rules.section("isolation")
    except (PolicyNotActive, RulesIncomplete):
        return None


def assign(*, facility: Facility, person_ids: Sequence[int], actor=None, at: dt.datetime | None = None,
           check_in: bool = True, tiers: dict[int, str] | None = None, request=None,
           alert: bool = True) -> AssignReport:
    """Give rooms of ``facility`` to these people (arrivals: ``check_in``; reservations otherwise). People already
    reserved here are checked in; people with an open stay elsewhere are left out (``already_elsewhere``)."""
    ids = sorted({int(p) for p in person_ids})
    if len(ids) > MAX_ASSIGN:
        raise ValidationFailed(_("person_ids: at most %(n)s at once") % {"n": MAX_ASSIGN}, extra={"field": "person_ids"})
    with transaction.atomic():
        return _assign(facility=facility, ids=ids, actor=actor, at=at or clock.now(), check_in=check_in,
                       tiers=tiers, request=request, alert=alert)


def _assign(*, facility, ids, actor, at, check_in, tiers, request, alert) -> AssignReport:
    facility = Facility.objects.select_for_update().get(pk=facility.pk)
    report = AssignReport()
    if not facility.active:
        raise Conflict(_("the facility is not active"), extra={"field": "facility"})
    persons = {pid: (hh, vul, grid) for pid, hh, vul, grid in
               Person.objects.filter(pk__in=ids).values_list("pk", "household_id", "vulnerable", "grid__code")}
    for pid in ids:
        if pid not in persons:
            report.unassigned[pid] = "unknown_person"
    open_stays = {pid: (room_id, fac, checked) for pid, room_id, fac, checked in
                  RoomStay.objects.filter(person_id__in=list(persons), checked_out_at__isnull=True)
                  .values_list("person_id", "room_id", "room__facility_id", "checked_in_at")}
    to_check_in = []
    todo = []
    for pid in persons:
        if pid in open_stays:
            room_id, fac, checked = open_stays[pid]
            if fac == facility.pk and checked is None and check_in:
                to_check_in.append(pid)
            elif fac != facility.pk:
                report.unassigned[pid] = "already_elsewhere"
            # already checked in here: nothing to do
        else:
            todo.append(pid)
    if tiers is None or any(p not in tiers for p in todo):
        known = tiers_for(todo)
        tiers = {**known, **(tiers or {})}
    arrivals = [assignment.Arrival(person_id=pid, tier=tiers.get(pid, "other"), household_id=persons[pid][0],
                                   needs_accessible=bool((persons[pid][1] or 0) & Vulnerable.LIMITED_MOBILITY))
                for pid in todo]
    rooms = [assignment.FreeRoom(room_id=r, floor=f, kind=k, beds=b, number=n) for r, f, k, b, n in
             Room.objects.filter(facility=facility, state=RoomState.FREE).values_list("pk", "floor", "kind", "beds",
                                                                                    "number")]
    floor_tiers: dict[int, str] = {}
    for floor, tier in (RoomStay.objects.filter(room__facility=facility, checked_out_at__isnull=True)
                        .values_list("room__floor", "tier").distinct()):
        floor_tiers.setdefault(floor, tier)
    result = assignment.assign(arrivals, rooms, hospital=facility.kind == FacilityKind.DESIGNATED_HOSPITAL,
                               mixing_forbidden=mixing_forbidden(facility, at=at), floor_tiers=floor_tiers)
    report.unassigned.update(result.unassigned)
    report.flags.update(result.flags)
    report.assigned = dict(result.rooms)
    when = bulk.db_datetime(at)
    stays = [(room_id, pid, tiers.get(pid, "other"), persons[pid][2] or "", when, when if check_in else None)
             for pid, room_id in sorted(result.rooms.items())]
    try:
        with transaction.atomic():
            bulk.bulk_insert(RoomStay._meta.db_table, ["room_id", "person_id", "tier", "region_code", "reserved_at",
                                                       "checked_in_at"], stays)
    except _UNIQUE:
        raise Conflict(_("someone was given a room meanwhile; try again")) from None
    state = RoomState.OCCUPIED if check_in else RoomState.RESERVED
    if result.rooms:
        Room.objects.filter(pk__in=sorted(result.room_ids)).update(state=state, state_since=at)
    if to_check_in:
        RoomStay.objects.filter(person_id__in=to_check_in, checked_out_at__isnull=True,
                                room__facility=facility).update(checked_in_at=at)
        rooms_in = list(RoomStay.objects.filter(person_id__in=to_check_in, checked_out_at__isnull=True)
                        .values_list("room_id", flat=True))
        Room.objects.filter(pk__in=rooms_in).update(state=RoomState.OCCUPIED, state_since=at)
        report.checked_in = sorted(to_check_in)
    touched = sorted(set(report.assigned) | set(report.checked_in))
    if touched:
        # Like a bulk import: one audit record per grid naming its people, one event for the whole assignment
        # (the per-person events of an arrival are the transfer's isolation.arrived and the orders' order_started).
        by_grid: dict[str, list[int]] = defaultdict(list)
        for pid in touched:
            by_grid[persons[pid][2] or ""].append(pid)
        for grid, pids in sorted(by_grid.items()):
            audit.record(actor=actor, action="facility.assign", object_type="people.person",
                         object_id=pids[0] if len(pids) == 1 else "", region_code=grid, request=request,
                         detail={"facility": facility.code, "check_in": check_in, "person_ids": pids})
        room_of = dict(report.assigned)
        if report.checked_in:
            room_of.update(dict(RoomStay.objects.filter(person_id__in=report.checked_in, checked_out_at__isnull=True)
                                .values_list("person_id", "room_id")))
        emit("isolation.rooms_assigned", subject=facility, region_code=facility.region_code, actor=_user(actor), at=at,
             payload={"facility_id": facility.pk, "check_in": check_in, "count": len(touched),
                      "assignments": [[pid, room_of.get(pid)] for pid in touched],
                      "flags": {str(p): f for p, f in sorted(report.flags.items())}})
    if alert:
        from jingkong.isolation import reserve

        reserve.alerts_check(district=facility.region_code[:6], at=at, actor=actor)
    return report


@transaction.atomic
def checkout(*, actor, person_ids: Sequence[int], at: dt.datetime | None = None, reason: str = "released",
             request=None) -> int:
    """End the open stays of these people; rooms left empty go to cleaning. Returns the number of stays ended."""
    at = at or clock.now()
    stays = list(RoomStay.objects.select_for_update(of=("self",)).filter(person_id__in=list(person_ids),
                                                             checked_out_at__isnull=True)
                 .values_list("pk", "person_id", "room_id", "region_code", "room__facility_id"))
    if not stays:
        return 0
    RoomStay.objects.filter(pk__in=[s[0] for s in stays]).update(checked_out_at=at)
    rooms = sorted({s[2] for s in stays})
    still = set(RoomStay.objects.filter(room_id__in=rooms, checked_out_at__isnull=True).values_list("room_id", flat=True))
    empty = [r for r in rooms if r not in still]
    Room.objects.filter(pk__in=empty, state__in=[RoomState.OCCUPIED, RoomState.RESERVED]).update(
        state=RoomState.CLEANING, state_since=at)
    audit.record_many(actor=actor, action="facility.checkout", object_type="people.person", request=request,
                      items=[(s[1], s[3]) for s in stays], detail={"reason": reason})
    emit_many([{"type": "isolation.checked_out", "subject_type": "people.person", "subject_id": s[1],
                "region_code": s[3], "at": at, "payload": {"room_id": s[2], "facility_id": s[4], "reason": reason}}
               for s in stays], actor=_user(actor))
    return len(stays)


def room_get(*, facility: Facility, room_id: int) -> Room:
    try:
        return Room.objects.select_related("facility").get(pk=room_id, facility=facility)
    except Room.DoesNotExist:
        raise NotFound(_("room not found")) from None
