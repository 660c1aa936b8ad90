"""Reads of the facilities and orders area, always given the caller's scope (and user, for facility managers).

Who sees what:

* Facilities carry the region code of the unit that runs them. A user sees the facilities inside their region
  subtree; a facility manager only those of them they are staff of ("their facilities").
* Orders carry the person's grid code. A user sees the orders of people living in their subtree, and the orders of
  the people staying in (or sent to) a facility they see — the staff of a district hotel see its guests from every
  street. A facility manager sees only the orders of their facilities' guests.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils.translation import gettext as _

from jingkong.access.guard import Scope
from jingkong.access.roles import Role
from jingkong.core.exceptions import NotFound
from jingkong.isolation import orders as order_services
from jingkong.isolation import schedule
from jingkong.isolation.models import (
    Facility,
    IsolationOrder,
    OrderStatus,
    Room,
    RoomState,
    RoomStay,
    SymptomCheck,
)


def facility_list(*, scope: Scope, user=None, kind: str = "", active_only: bool = False) -> QuerySet[Facility]:
    qs = Facility.objects.filter(scope.q("region_code"))
    if user is not None and getattr(user, "role", "") == Role.FACILITY_MANAGER:
        qs = qs.filter(staff=user)
    if kind:
        qs = qs.filter(kind=kind)
    if active_only:
        qs = qs.filter(active=True)
    return qs.order_by("code")


MAX_ID = 2**63  # ids beyond a 64-bit integer name nothing (and must not reach the database)


def facility_get(*, scope: Scope, user=None, facility_id: int) -> Facility:
    if not 0 < facility_id < MAX_ID:
        raise NotFound(_("facility not found"))
    try:
        return facility_list(scope=scope, user=user).get(pk=facility_id)
    except Facility.DoesNotExist:
        raise NotFound(_("facility not found")) from None


def facility_get_by_code(*, scope: Scope, user=None, code: str) -> Facility:
    if not code or "\x00" in code or len(code) > 32:
        raise NotFound(_("facility not found"))
    try:
        return facility_list(scope=scope, user=user).get(code=code)
    except Facility.DoesNotExist:
        raise NotFound(_("facility not found")) from None


def room_get(*, facility: Facility, room_id: int) -> Room:
    if not 0 < room_id < MAX_ID:
        raise NotFound(_("room not found"))
    try:
        return Room.objects.select_related("facility").get(pk=room_id, facility=facility)
    except Room.DoesNotExist:
        raise NotFound(_("room not found")) from None


def board(facility: Facility) -> dict:
    """Occupancy by floor and rooms by state: {floors: [{floor, rooms: [...], counts}], counts, people}."""
    rooms = list(Room.objects.filter(facility=facility).order_by("floor", "number")
                 .values("pk", "number", "floor", "kind", "beds", "state", "state_since"))
    occupants: dict[int, list[dict]] = defaultdict(list)
    for stay in (RoomStay.objects.filter(room__facility=facility, checked_out_at__isnull=True)
                 .values("pk", "room_id", "person_id", "person__name", "tier", "checked_in_at")):
        occupants[stay["room_id"]].append(stay)
    floors: dict[int, dict] = {}
    counts = dict.fromkeys(RoomState.values, 0)
    for r in rooms:
        f = floors.setdefault(r["floor"], {"floor": r["floor"], "rooms": [], "counts": dict.fromkeys(RoomState.values, 0),
                                           "tiers": set(), "people": 0, "beds": 0})
        people = occupants.get(r["pk"], [])
        r["occupants"] = people
        f["rooms"].append(r)
        f["counts"][r["state"]] += 1
        f["people"] += len(people)
        f["beds"] += r["beds"]
        f["tiers"].update(p["tier"] for p in people)
        counts[r["state"]] += 1
    out = []
    for f in sorted(floors.values(), key=lambda f: f["floor"]):
        f["tiers"] = sorted(f["tiers"])
        f["occupancy"] = round(100 * f["people"] / f["beds"]) if f["beds"] else 0
        out.append(f)
    return {"floors": out, "counts": counts, "rooms": len(rooms),
            "people": sum(len(v) for v in occupants.values())}


# --- orders -----------------------------------------------------------------------------------------------------------


def order_list(*, scope: Scope, user=None, facility: Facility | None = None, region: str = "", status: str = "",
               mode: str = "") -> QuerySet[IsolationOrder]:
    visible = facility_list(scope=scope, user=user)
    at_visible = Q(facility__in=visible) | Q(Exists(RoomStay.objects.filter(
        person_id=OuterRef("person_id"), checked_out_at__isnull=True, room__facility__in=visible)))
    if user is not None and getattr(user, "role", "") == Role.FACILITY_MANAGER:
        # Facility staff manage their guests, not every home quarantine of their street (they could release or
        # cancel those, turning codes green).
        qs = IsolationOrder.objects.filter(at_visible)
    else:
        qs = IsolationOrder.objects.filter(scope.q("region_code") | at_visible)
    if facility is not None:
        qs = qs.filter(Q(facility=facility) | Q(Exists(RoomStay.objects.filter(
            person_id=OuterRef("person_id"), checked_out_at__isnull=True, room__facility=facility))))
    if region:
        qs = qs.filter(region_code__startswith=region)
    if status:
        qs = qs.filter(status=status)
    if mode:
        qs = qs.filter(mode=mode)
    return qs.select_related("person", "facility").order_by("ends_on", "pk")


def order_get(*, scope: Scope, user=None, order_id: int) -> IsolationOrder:
    if not 0 < order_id < MAX_ID:
        raise NotFound(_("order not found"))
    try:
        return order_list(scope=scope, user=user).get(pk=order_id)
    except IsolationOrder.DoesNotExist:
        raise NotFound(_("order not found")) from None


def rooms_of(person_ids) -> dict[int, tuple[str, str]]:
    """person_id -> (facility code, room number) of their open stay."""
    return {pid: (code, number) for pid, code, number in
            RoomStay.objects.filter(person_id__in=list(person_ids), checked_out_at__isnull=True)
            .values_list("person_id", "room__facility__code", "room__number")}


def worklist(orders: QuerySet[IsolationOrder], *, today: dt.date, limit: int = 5000) -> dict:
    """For the active orders of the queryset: who is due which test today, tests missed, releases due (with what
    still blocks them) and symptom checks overdue (a past day of the stage without a check) or due today."""
    active = list(orders.filter(status=OrderStatus.ACTIVE, starts_on__lte=today)[:limit])
    evaluations = order_services.evaluate(active, today=today)
    checked: dict[int, set[int]] = defaultdict(set)
    for order_id, day in SymptomCheck.objects.filter(order__in=[o.pk for o in active]).values_list("order_id", "day"):
        checked[order_id].add(day)
    due, missed, releases, checks_overdue, checks_today = [], [], [], [], []
    for ev in evaluations:
        o = ev.order
        for td in ev.days:
            if td.date == today and not td.results:
                due.append({"order": o, "day": td.day, "double": ev.stage.double_sampling and td is ev.days[-1]})
            elif td.date < today and td.status in ("missing", schedule.INVALID):
                missed.append({"order": o, "day": td.day, "date": td.date})
        if o.ends_on <= today:
            releases.append({"order": o, "problems": [p for p in ev.problems if p != schedule.NOT_YET]})
        first = max(1, (o.starts_on - o.counted_from).days)  # a home phase starts on its day 0 (the release day)
        today_n = (today - o.counted_from).days
        missing_days = [d for d in range(first, min(today_n, (o.ends_on - o.counted_from).days + 1))
                        if d not in checked[o.pk]]
        if missing_days:
            checks_overdue.append({"order": o, "days": missing_days})
        if today_n not in checked[o.pk] and today_n >= first and o.starts_on <= today <= o.ends_on:
            checks_today.append({"order": o, "day": today_n})
    return {"due_tests": due, "missed_tests": missed, "releases_due": releases, "checks_overdue": checks_overdue,
            "checks_today": checks_today, "active": len(active), "truncated": len(active) >= limit}


def flagged_checks(orders: QuerySet[IsolationOrder], *, since: dt.date) -> list[SymptomCheck]:
    """Checks with fever or symptoms on active orders since ``since``."""
    checks = list(SymptomCheck.objects.filter(order__in=orders.filter(status=OrderStatus.ACTIVE))
                  .select_related("order", "order__person", "order__profile").order_by("-checked_at")[:2000])
    thresholds: dict[int | None, object] = {}
    out = []
    for c in checks:
        if (c.order.counted_from + dt.timedelta(days=c.day)) < since:
            continue
        if c.order.profile_id not in thresholds:
            thresholds[c.order.profile_id] = order_services.fever_threshold(c.order)
        if order_services.is_flagged(c, thresholds[c.order.profile_id]):
            out.append(c)
    return out


def order_detail(order: IsolationOrder, *, today: dt.date) -> dict:
    ev = order_services.evaluate([order], today=today)[0]
    threshold = order_services.fever_threshold(order)
    checks = list(order.checks.order_by("day"))
    chain = []
    prev = order.previous
    while prev is not None and len(chain) < 10:
        chain.append(prev)
        prev = prev.previous
    following = IsolationOrder.objects.filter(previous=order).first()
    return {"evaluation": ev, "checks": [(c, order_services.is_flagged(c, threshold)) for c in checks],
            "threshold": threshold, "previous": chain, "next": following,
            "room": rooms_of([order.person_id]).get(order.person_id)}


def order_counts(orders: QuerySet[IsolationOrder]) -> dict[str, int]:
    return dict(orders.values_list("status").annotate(n=Count("id")).order_by())
