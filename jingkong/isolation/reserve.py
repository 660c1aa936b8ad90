"""储备充足: free quarantine capacity by facility and district against the profile's reserve target, when it runs out
at the current inflow, and the alert before it does.

* Capacity counts quarantine hotels and shelters (designated hospitals hold cases and are shown apart). Free rooms are
  rooms in state ``free``; free beds their beds.
* Inflow: people checked in over the last ``isolation.reserve.inflow_window_days`` days, per day; outflow: stays
  ended in the same window (no profile with the section in force: no inflow, no forecast — no made-up window). At a positive net inflow the free beds last ``free_beds / net`` days; the forecast names
  the local date they run out.
* Targets (profile ``isolation.reserve``): ``rooms_per_10k_residents`` × the district's residents / 10,000 free
  rooms, and ``days_of_inflow`` × the inflow per day free beds; either may be absent.
* Alert: free beds lasting fewer than ``alert_threshold_days`` days (or none left while people still arrive) →
  the domain event ``isolation.capacity_alert`` (subject the facility, or the district as ``geo.region``), at most
  once per subject and local day; the board shows the same condition live.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass
from zoneinfo import ZoneInfo

from django.db.models import Count, Q, Sum

from jingkong.core import clock
from jingkong.core.events import emit
from jingkong.core.models import DomainEvent
from jingkong.isolation.models import Facility, FacilityKind, Room, RoomState, RoomStay

EVENT_ALERT = "isolation.capacity_alert"


@dataclass
class Capacity:
    key: str  # facility code or district code
    name: str
    region_code: str
    kind: str = ""
    facility_id: int | None = None
    rooms: int = 0
    usable_rooms: int = 0
    free_rooms: int = 0
    free_beds: int = 0
    occupied_rooms: int = 0
    reserved_rooms: int = 0
    cleaning_rooms: int = 0
    out_of_service_rooms: int = 0
    people: int = 0
    arrivals_per_day: float = 0.0
    departures_per_day: float = 0.0
    days_left: float | None = None
    runs_out_on: dt.date | None = None
    alert: bool = False
    residents: int | None = None
    target_rooms: int | None = None
    target_beds: int | None = None
    below_target: bool = False

    @property
    def net_per_day(self) -> float:
        return self.arrivals_per_day - self.departures_per_day

    def as_dict(self) -> dict:
        out = asdict(self)
        out["net_per_day"] = round(self.net_per_day, 2)
        return out


def _rules(region_code: str, at: dt.datetime):
    from jingkong.isolation.facilities import isolation_rules

    return isolation_rules(region_code, at=at)


def _forecast(c: Capacity, *, at: dt.datetime, threshold: int | None) -> None:
    net = c.net_per_day
    today = at.astimezone(ZoneInfo(clock.local_time_zone())).date()
    if net > 0:
        c.days_left = round(c.free_beds / net, 1)
        c.runs_out_on = today + dt.timedelta(days=math.floor(c.free_beds / net))
    else:
        c.days_left, c.runs_out_on = None, None
    if threshold is not None:
        c.alert = c.days_left is not None and c.days_left < threshold


def facility_capacity(facilities, *, at: dt.datetime | None = None, window_days: int | None = None,
                      threshold: int | None = None) -> list[Capacity]:
    """Capacity and forecast of each facility of the queryset (four grouped queries, whatever the number)."""
    at = at or clock.now()
    facilities = list(facilities)
    if not facilities:
        return []
    ids = [f.pk for f in facilities]
    out = {f.pk: Capacity(key=f.code, name=f.name, region_code=f.region_code, kind=f.kind, facility_id=f.pk)
           for f in facilities}
    for fid, state, n, beds in (Room.objects.filter(facility_id__in=ids).values_list("facility_id", "state")
                                .annotate(n=Count("id"), beds=Sum("beds"))):
        c = out[fid]
        c.rooms += n
        if state != RoomState.OUT_OF_SERVICE:
            c.usable_rooms += n
        if state == RoomState.FREE:
            c.free_rooms, c.free_beds = n, int(beds or 0)
        elif state == RoomState.OCCUPIED:
            c.occupied_rooms = n
        elif state == RoomState.RESERVED:
            c.reserved_rooms = n
        elif state == RoomState.CLEANING:
            c.cleaning_rooms = n
        else:
            c.out_of_service_rooms = n
    for fid, n in (RoomStay.objects.filter(room__facility_id__in=ids, checked_out_at__isnull=True)
                   .values_list("room__facility_id").annotate(n=Count("id"))):
        out[fid].people = n
    by_rules: dict[int, tuple[int, int | None]] = {}
    for f in facilities:
        rules = _rules(f.region_code, at)
        # No profile with an isolation section in force: no window to average over, so no inflow and no forecast.
        window = window_days or (rules.reserve.inflow_window_days if rules else None)
        by_rules[f.pk] = (window, threshold if threshold is not None else (rules.reserve.alert_threshold_days
                                                                            if rules else None))
    windows = {w for w, _t in by_rules.values() if w}
    for window in windows:
        since = at - dt.timedelta(days=window)
        these = [fid for fid, (w, _t) in by_rules.items() if w == window]
        stays = RoomStay.objects.filter(room__facility_id__in=these)
        for fid, n in (stays.filter(checked_in_at__gt=since, checked_in_at__lte=at)
                       .values_list("room__facility_id").annotate(n=Count("id"))):
            out[fid].arrivals_per_day = round(n / window, 2)
        for fid, n in (stays.filter(checked_out_at__gt=since, checked_out_at__lte=at)
                       .values_list("room__facility_id").annotate(n=Count("id"))):
            out[fid].departures_per_day = round(n / window, 2)
    for f in facilities:
        c = out[f.pk]
        _forecast(c, at=at, threshold=by_rules[f.pk][1])
        if c.alert is False and by_rules[f.pk][1] is not None and c.free_beds == 0 and c.arrivals_per_day > 0:
            c.alert = True
    return [out[f.pk] for f in facilities]


def residents_of(region_code: str) -> int:
    from jingkong.geo.models import Region
    from jingkong.people.models import Person

    population = Region.objects.filter(code=region_code).values_list("population", flat=True).first()
    if population:
        return int(population)
    return Person.objects.filter(grid__code__startswith=region_code).count()


def district_capacity(district: str, *, facilities, at: dt.datetime | None = None) -> Capacity:
    """The quarantine capacity of a district (its hotels and shelters among ``facilities``) against the targets."""
    at = at or clock.now()
    from jingkong.geo.models import Region

    name = Region.objects.filter(code=district).values_list("name", flat=True).first() or district
    sites = [f for f in facilities if f.region_code.startswith(district) and f.kind != FacilityKind.DESIGNATED_HOSPITAL
             and f.active]
    rules = _rules(district, at)
    parts = facility_capacity(sites, at=at, threshold=None)
    total = Capacity(key=district, name=name, region_code=district)
    for p in parts:
        for attr in ("rooms", "usable_rooms", "free_rooms", "free_beds", "occupied_rooms", "reserved_rooms",
                     "cleaning_rooms", "out_of_service_rooms", "people"):
            setattr(total, attr, getattr(total, attr) + getattr(p, attr))
        total.arrivals_per_day += p.arrivals_per_day
        total.departures_per_day += p.departures_per_day
    total.arrivals_per_day = round(total.arrivals_per_day, 2)
    total.departures_per_day = round(total.departures_per_day, 2)
    threshold = rules.reserve.alert_threshold_days if rules else None
    _forecast(total, at=at, threshold=threshold)
    if threshold is not None and total.free_beds == 0 and total.arrivals_per_day > 0:
        total.alert = True
    total.residents = residents_of(district)
    if rules is not None:
        reserve = rules.reserve
        if reserve.rooms_per_10k_residents is not None:
            total.target_rooms = math.ceil(reserve.rooms_per_10k_residents * total.residents / 10_000)
        if reserve.days_of_inflow is not None:
            total.target_beds = math.ceil(reserve.days_of_inflow * total.arrivals_per_day)
        total.below_target = bool((total.target_rooms is not None and total.free_rooms < total.target_rooms)
                                  or (total.target_beds is not None and total.free_beds < total.target_beds))
    return total


def _already_alerted(subject_type: str, subject_id, at: dt.datetime) -> bool:
    tz = ZoneInfo(clock.local_time_zone())
    local = at.astimezone(tz)
    start = dt.datetime(local.year, local.month, local.day, tzinfo=tz).astimezone(dt.UTC)
    return DomainEvent.objects.filter(type=EVENT_ALERT, subject_type=subject_type, subject_id=str(subject_id),
                                      occurred_at__gte=start).exists()


def alerts_check(*, district: str, at: dt.datetime | None = None, actor=None) -> list[Capacity]:
    """Emit ``isolation.capacity_alert`` for each facility of the district and the district itself whose free beds run
    out within the threshold (once per subject and local day). Call inside a transaction."""
    at = at or clock.now()
    facilities = list(Facility.objects.filter(Q(region_code__startswith=district), active=True))
    alerted = []
    for c in facility_capacity([f for f in facilities if f.kind != FacilityKind.DESIGNATED_HOSPITAL], at=at):
        if c.alert and not _already_alerted("isolation.facility", c.facility_id, at):
            emit(EVENT_ALERT, subject_type="isolation.facility", subject_id=c.facility_id, region_code=c.region_code,
                 actor=actor if getattr(actor, "pk", None) else None, at=at, payload=_payload(c))
            alerted.append(c)
    total = district_capacity(district, facilities=facilities, at=at)
    if total.alert and not _already_alerted("geo.region", district, at):
        emit(EVENT_ALERT, subject_type="geo.region", subject_id=district, region_code=district,
             actor=actor if getattr(actor, "pk", None) else None, at=at, payload=_payload(total))
        alerted.append(total)
    return alerted


def _payload(c: Capacity) -> dict:
    return {"key": c.key, "facility_id": c.facility_id, "free_beds": c.free_beds, "free_rooms": c.free_rooms,
            "days_left": c.days_left, "runs_out_on": c.runs_out_on.isoformat() if c.runs_out_on else None,
            "arrivals_per_day": c.arrivals_per_day, "net_per_day": round(c.net_per_day, 2)}
