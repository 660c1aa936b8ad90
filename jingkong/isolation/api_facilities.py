"""/api/v1/isolation/ routes of the facilities area: facilities, rooms, assignment, reserve, isolation orders.

Permissions: aggregates (facility boards by floor, the reserve) ISOLATION_VIEW; facilities, rooms and assignment
FACILITY_EDIT (the room grid names the people in each room: it is read with FACILITY_EDIT and audited); order lists,
worklists and details name people: PERSON_VIEW (audited); order writes ISOLATION_EDIT. People named in a body must
live in the caller's region subtree (else 404), facilities must be visible to the caller (facility managers: theirs).
"""

from __future__ import annotations

import datetime as dt

from django.utils.translation import gettext as _
from ninja import Router, Status

from jingkong.access import audit
from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.core import clock
from jingkong.core.exceptions import Conflict, NotFound, ValidationFailed
from jingkong.isolation import facilities, orders, reserve
from jingkong.isolation import selectors_facilities as sel
from jingkong.isolation.models import FacilityKind, IsolationOrder, RoomStay
from jingkong.isolation.schemas_facilities import (
    AssignIn,
    AssignOut,
    BoardOut,
    CancelIn,
    CheckIn,
    CheckoutIn,
    CheckoutOut,
    CheckResultOut,
    ExtendIn,
    FacilityIn,
    FacilityKindFilterT,
    FacilityOut,
    FacilityUpdateIn,
    ModeFilterT,
    OrderDetailOut,
    OrderOut,
    OrderPage,
    OrdersIn,
    OrdersStartOut,
    OrderStatusFilterT,
    RegionCode,
    ReleaseDueIn,
    ReleaseIn,
    ReleaseOut,
    ReserveOut,
    RoomGridOut,
    RoomOut,
    RoomsBulkIn,
    RoomsBulkOut,
    RoomStateIn,
    StaffIn,
    WorklistOut,
)
from jingkong.people.models import Person

router = Router(tags=["isolation"])
MAX_PAGE = 100_000


def _today():
    return orders.local_date(clock.now())


def facility_out(f, capacity=None) -> dict:
    return {"id": f.pk, "code": f.code, "name": f.name, "kind": f.kind, "region_code": f.region_code, "lon": f.lon,
            "lat": f.lat, "address": f.address, "mixing_tiers_forbidden": f.mixing_tiers_forbidden,
            "active": f.active, "staff": sorted(u.username for u in f.staff.all()),
            "capacity": capacity.as_dict() if capacity is not None else None}


def order_out(o: IsolationOrder) -> dict:
    return {"id": o.pk, "person_id": o.person_id, "name": o.person.name, "id_masked": o.person.id_masked,
            "tier": o.tier, "mode": o.mode, "status": o.status, "region_code": o.region_code,
            "counted_from": o.counted_from, "starts_on": o.starts_on, "ends_on": o.ends_on,
            "test_days": list(o.test_days or []),
            "test_dates": [o.counted_from + dt.timedelta(days=int(d)) for d in (o.test_days or [])],
            "facility": o.facility.code if o.facility_id else None, "previous_id": o.previous_id,
            "released_at": o.released_at, "extended_days": o.extended_days, "note": o.note}


def _facility(request, facility_id: int):
    return sel.facility_get(scope=request.scope, user=request.jk_user, facility_id=facility_id)


def _people_in_scope(request, person_ids) -> list[int]:
    ids = sorted(set(person_ids))
    found = set(Person.objects.filter(pk__in=ids).filter(request.scope.q("grid__code")).values_list("pk", flat=True))
    missing = [p for p in ids if p not in found]
    if missing:
        raise NotFound(_("person not found"), extra={"field": "person_ids", "value": missing[0]})
    return ids


# --- facilities -------------------------------------------------------------------------------------------------------


@router.get("/facilities", response=list[FacilityOut])
@require(Perm.ISOLATION_VIEW)
def facilities_list(request, kind: FacilityKindFilterT = "", active: bool = False):
    """Facilities in the caller's region (facility managers: theirs) with free capacity and forecast."""
    items = list(sel.facility_list(scope=request.scope, user=request.jk_user, kind=kind, active_only=active)
                 .prefetch_related("staff")[:1000])
    caps = {c.facility_id: c for c in reserve.facility_capacity(items)}
    return [facility_out(f, caps.get(f.pk)) for f in items]


@router.post("/facilities", response={201: FacilityOut})
@require(Perm.FACILITY_EDIT)
def facilities_create(request, payload: FacilityIn):
    """Register a facility run by a unit of the caller's region (the region code must lie in the caller's scope)."""
    f = facilities.facility_create(actor=request.jk_user, scope=request.scope, request=request, **payload.dict())
    return Status(201, facility_out(f))


@router.get("/facilities/{facility_id}", response=FacilityOut)
@require(Perm.ISOLATION_VIEW)
def facilities_get(request, facility_id: int):
    f = _facility(request, facility_id)
    return facility_out(f, reserve.facility_capacity([f])[0])


@router.patch("/facilities/{facility_id}", response=FacilityOut)
@require(Perm.FACILITY_EDIT)
def facilities_update(request, facility_id: int, payload: FacilityUpdateIn):
    f = _facility(request, facility_id)
    f = facilities.facility_update(actor=request.jk_user, facility=f, request=request,
                                   **payload.dict(exclude_unset=True, exclude_none=True))
    return facility_out(f)


@router.put("/facilities/{facility_id}/staff", response=list[str])
@require(Perm.FACILITY_EDIT)
def facilities_staff(request, facility_id: int, payload: StaffIn):
    """Replace the facility's staff (users of the caller's region); facility managers see only their facilities."""
    f = _facility(request, facility_id)
    return facilities.facility_staff_set(actor=request.jk_user, scope=request.scope, facility=f,
                                         usernames=payload.usernames, request=request)


@router.get("/facilities/{facility_id}/board", response=BoardOut)
@require(Perm.ISOLATION_VIEW)
def facilities_board(request, facility_id: int):
    """Occupancy by floor and rooms by state (counts only: no names)."""
    f = _facility(request, facility_id)
    data = sel.board(f)
    floors = [{"floor": fl["floor"], "rooms": len(fl["rooms"]), "beds": fl["beds"], "people": fl["people"],
               "occupancy": fl["occupancy"], "tiers": fl["tiers"], "counts": fl["counts"]} for fl in data["floors"]]
    return {"facility": facility_out(f, reserve.facility_capacity([f])[0]), "rooms": data["rooms"],
            "people": data["people"], "counts": data["counts"], "floors": floors}


@router.post("/facilities/{facility_id}/rooms", response={201: RoomsBulkOut})
@require(Perm.FACILITY_EDIT)
def facilities_rooms_create(request, facility_id: int, payload: RoomsBulkIn):
    """Create rooms in bulk: floors × rooms per floor, numbered <floor><nn> (existing numbers are kept)."""
    f = _facility(request, facility_id)
    report = facilities.rooms_bulk_create(actor=request.jk_user, facility=f, request=request, **payload.dict())
    return Status(201, {"created": report.created, "existing": report.existing, "numbers": report.numbers})


@router.get("/facilities/{facility_id}/rooms", response=RoomGridOut)
@require(Perm.FACILITY_EDIT)
def facilities_rooms(request, facility_id: int):
    """The room grid with who is in each room (audited)."""
    f = _facility(request, facility_id)
    data = sel.board(f)
    people = [(o["person_id"], "") for fl in data["floors"] for r in fl["rooms"] for o in r["occupants"]]
    if people:
        audit.record_many(actor=request.jk_user, action="person.view", object_type="people.person", request=request,
                          items=people, detail={"facility": f.code, "part": "rooms"})
    floors = {str(fl["floor"]): [
        {"id": r["pk"], "number": r["number"], "floor": r["floor"], "kind": r["kind"], "beds": r["beds"],
         "state": r["state"], "state_since": r["state_since"],
         "occupants": [{"person_id": o["person_id"], "name": o["person__name"], "tier": o["tier"],
                        "checked_in_at": o["checked_in_at"]} for o in r["occupants"]]}
        for r in fl["rooms"]] for fl in data["floors"]}
    return {"facility_id": f.pk, "floors": floors}


@router.patch("/facilities/{facility_id}/rooms/{room_id}", response=RoomOut)
@require(Perm.FACILITY_EDIT)
def facilities_room_state(request, facility_id: int, room_id: int, payload: RoomStateIn):
    """Move a room: cleaning → free, out of service and back, a reservation released (409 for other moves)."""
    f = _facility(request, facility_id)
    room = sel.room_get(facility=f, room_id=room_id)
    room = facilities.room_state_set(actor=request.jk_user, room=room, state=payload.state, request=request)
    return {"id": room.pk, "number": room.number, "floor": room.floor, "kind": room.kind, "beds": room.beds,
            "state": room.state, "state_since": room.state_since, "occupants": []}


@router.post("/facilities/{facility_id}/assign", response=AssignOut)
@require(Perm.FACILITY_EDIT)
def facilities_assign(request, facility_id: int, payload: AssignIn):
    """Reserve rooms for people on their way (``check_in`` false) or check arrivals in: families together,
    accessible rooms for limited mobility, tiers not mixed on a floor where forbidden, cases only at hospitals."""
    f = _facility(request, facility_id)
    ids = _people_in_scope(request, payload.person_ids)
    tiers = {}
    for key, tier in payload.tiers.items():
        try:
            tiers[int(key)] = tier
        except ValueError:
            raise ValidationFailed(_("tiers: keys are person ids"), extra={"field": "tiers"}) from None
    report = facilities.assign(facility=f, person_ids=ids, actor=request.jk_user, check_in=payload.check_in,
                               tiers=tiers or None, request=request)
    return report.as_dict()


@router.post("/facilities/{facility_id}/checkout", response=CheckoutOut)
@require(Perm.FACILITY_EDIT)
def facilities_checkout(request, facility_id: int, payload: CheckoutIn):
    """End the stays of these people at this facility (their rooms go to cleaning)."""
    f = _facility(request, facility_id)
    here = set(RoomStay.objects.filter(person_id__in=payload.person_ids, room__facility=f,
                                       checked_out_at__isnull=True).values_list("person_id", flat=True))
    missing = [p for p in payload.person_ids if p not in here]
    if missing:
        raise NotFound(_("person not staying here"), extra={"field": "person_ids", "value": missing[0]})
    n = facilities.checkout(actor=request.jk_user, person_ids=sorted(here), reason=payload.reason, request=request)
    return {"checked_out": n}


@router.get("/reserve", response=ReserveOut)
@require(Perm.ISOLATION_VIEW)
def reserve_panel(request):
    """储备充足: free capacity by district and facility against the profile's reserve target, with the forecast of
    when it runs out at the current inflow and the alert flag."""
    return reserve_data(request)


def reserve_data(request) -> dict:
    items = list(sel.facility_list(scope=request.scope, user=request.jk_user, active_only=True))
    caps = reserve.facility_capacity(items)
    districts = sorted({f.region_code[:6] for f in items if f.kind != FacilityKind.DESIGNATED_HOSPITAL})
    return {"districts": [reserve.district_capacity(d, facilities=items).as_dict() for d in districts],
            "facilities": [c.as_dict() for c in caps if c.kind != FacilityKind.DESIGNATED_HOSPITAL],
            "hospitals": [c.as_dict() for c in caps if c.kind == FacilityKind.DESIGNATED_HOSPITAL]}


# --- orders -----------------------------------------------------------------------------------------------------------


def _orders_filter(request, facility_id: int | None, region: str, status: str = "", mode: str = ""):
    facility = _facility(request, facility_id) if facility_id is not None else None
    if region and not request.scope.contains(region) and not (facility is not None):
        raise NotFound(_("region not found"), extra={"field": "region"})
    return sel.order_list(scope=request.scope, user=request.jk_user, facility=facility, region=region, status=status,
                          mode=mode)


@router.get("/orders", response=OrderPage)
@require(Perm.PERSON_VIEW)
def orders_list(request, facility_id: int | None = None, region: RegionCode = "", status: OrderStatusFilterT = "",
                mode: ModeFilterT = "", page: int = 1, page_size: int = 50):
    """Isolation orders of the caller's region and facilities, by end date (audited)."""
    qs = _orders_filter(request, facility_id, region, status, mode)
    page, page_size = max(1, min(page, MAX_PAGE)), max(1, min(page_size, 500))
    count = qs.count()
    items = list(qs[(page - 1) * page_size: page * page_size])
    audit.record(actor=request.jk_user, action="person.list", object_type="people.person",
                 region_code=region or request.scope.prefix or "", request=request,
                 detail={"list": "isolation.orders", "facility": facility_id, "status": status, "count": count})
    return {"count": count, "page": page, "page_size": page_size, "items": [order_out(o) for o in items]}


@router.post("/orders", response={201: OrdersStartOut})
@require(Perm.ISOLATION_EDIT)
def orders_create(request, payload: OrdersIn):
    """Start orders (e.g. home quarantine ordered by the community; centralised orders also start on arrival).
    Dates and test days come from the profile; ``last_exposure`` defaults to the contact's."""
    _people_in_scope(request, [i.person_id for i in payload.items])
    for item in payload.items:
        if item.facility_id is not None:
            _facility(request, item.facility_id)
    report = orders.orders_start([orders.OrderRequest(person_id=i.person_id, tier=i.tier, mode=i.mode,
                                                      last_exposure=i.last_exposure, arrival=i.start,
                                                      facility_id=i.facility_id, note=i.note)
                                  for i in payload.items], actor=request.jk_user, request=request)
    return Status(201, report.as_dict())


def _work_item(entry: dict, rooms: dict) -> dict:
    o = entry["order"]
    room = rooms.get(o.person_id)
    return {"order_id": o.pk, "person_id": o.person_id, "name": o.person.name,
            "facility": o.facility.code if o.facility_id else (room[0] if room else None),
            "room": room[1] if room else None, "mode": o.mode, "day": entry.get("day"), "date": entry.get("date"),
            "double_sampling": entry.get("double", False), "problems": entry.get("problems", []),
            "days": entry.get("days", [])}


def worklist_data(request, facility_id: int | None, region: str) -> dict:
    qs = _orders_filter(request, facility_id, region)
    today = _today()
    data = sel.worklist(qs, today=today)
    people = {e["order"].person_id for key in ("due_tests", "missed_tests", "releases_due", "checks_overdue",
                                               "checks_today") for e in data[key]}
    rooms = sel.rooms_of(people)
    out = {"today": today, "active": data["active"], "truncated": data["truncated"]}
    for key in ("due_tests", "missed_tests", "releases_due", "checks_overdue", "checks_today"):
        out[key] = [_work_item(e, rooms) for e in data[key]]
    audit.record(actor=request.jk_user, action="person.list", object_type="people.person",
                 region_code=region or request.scope.prefix or "", request=request,
                 detail={"list": "isolation.worklist", "facility": facility_id, "count": len(people)})
    return out


@router.get("/orders/worklist", response=WorklistOut)
@require(Perm.PERSON_VIEW)
def orders_worklist(request, facility_id: int | None = None, region: RegionCode = ""):
    """Today's work per facility or region: who is due which test (single tubes; the last 2021 test twice), tests
    missed, releases due with what still blocks them, symptom checks overdue and due today."""
    return worklist_data(request, facility_id, region)


@router.post("/orders/release-due", response=ReleaseOut)
@require(Perm.ISOLATION_EDIT)
def orders_release_due(request, payload: ReleaseDueIn):
    """Release every active order of the facility or region whose last day has come and whose criteria are met."""
    qs = _orders_filter(request, payload.facility_id, payload.region, status="active")
    due = list(qs.filter(ends_on__lte=_today())[:5000])
    return orders.orders_release(due, actor=request.jk_user, request=request).as_dict()


def _order(request, order_id: int) -> IsolationOrder:
    return sel.order_get(scope=request.scope, user=request.jk_user, order_id=order_id)


def order_detail_out(order: IsolationOrder) -> dict:
    detail = sel.order_detail(order, today=_today())
    ev = detail["evaluation"]
    out = order_out(order)
    out.update(
        tests=[{"day": td.day, "date": td.date, "status": td.status, "samples": len(td.results),
                "negatives": td.negatives} for td in ev.days],
        checks=[{"day": c.day, "checked_at": c.checked_at,
                 "temperature": float(c.temperature) if c.temperature is not None else None, "symptoms": c.symptoms,
                 "note": c.note, "flagged": flagged} for c, flagged in detail["checks"]],
        release_problems=ev.problems, releasable=ev.releasable and order.status == "active",
        double_sampling=ev.stage.double_sampling, next_order_id=detail["next"].pk if detail["next"] else None,
        room=" ".join(detail["room"]) if detail["room"] else None)
    return out


@router.get("/orders/{order_id}", response=OrderDetailOut)
@require(Perm.PERSON_VIEW)
def orders_get(request, order_id: int):
    """One order: schedule, test days with results, symptom checks, what blocks the release."""
    order = _order(request, order_id)
    audit.record(actor=request.jk_user, action="person.view", object_type="people.person", object_id=order.person_id,
                 region_code=order.region_code, request=request, detail={"order": order.pk})
    return order_detail_out(order)


@router.post("/orders/{order_id}/checks", response={201: CheckResultOut})
@require(Perm.ISOLATION_EDIT)
def orders_check(request, order_id: int, payload: CheckIn):
    """Record the day's symptom check (temperature, symptoms); fever at the profile's threshold or any symptom is
    flagged (event isolation.symptoms_flagged)."""
    order = _order(request, order_id)
    check, flagged = orders.symptom_check_record(actor=request.jk_user, order=order, request=request,
                                                 **payload.dict())
    return Status(201, {"order_id": order.pk, "day": check.day, "flagged": flagged})


@router.post("/orders/{order_id}/release", response=ReleaseOut)
@require(Perm.ISOLATION_EDIT)
def orders_release(request, order_id: int, payload: ReleaseIn):
    """Release the order when its criteria are met (else it is listed under ``blocked`` with the reasons); the next
    stage (home phase) starts at once. ``override_note`` records a physician's decision (never past a positive)."""
    order = _order(request, order_id)
    if order.status != "active":
        raise Conflict(_("the order is not active"), extra={"field": "status"})
    return orders.orders_release([order], actor=request.jk_user, override_note=payload.override_note,
                                 request=request).as_dict()


@router.post("/orders/{order_id}/extend", response=OrderOut)
@require(Perm.ISOLATION_EDIT)
def orders_extend(request, order_id: int, payload: ExtendIn):
    """Count the order again from a new last exposure (never shorter)."""
    order = _order(request, order_id)
    order = orders.order_extend(actor=request.jk_user, order=order, new_exposure=payload.new_exposure,
                                reason=payload.reason, request=request)
    return order_out(order)


@router.post("/orders/{order_id}/cancel", response=OrderOut)
@require(Perm.ISOLATION_EDIT)
def orders_cancel(request, order_id: int, payload: CancelIn):
    order = _order(request, order_id)
    return order_out(orders.order_cancel(actor=request.jk_user, order=order, reason=payload.reason, request=request))
