"""快转运 writes: vehicles, planning runs, dispatcher edits and live status. Each in one transaction, audited where
person data is touched, with domain events (one per person for the isolation.* contract events).

* :func:`plan_transfers` — waiting batches of a region + free vehicles + facilities with room → ``Transfer`` runs with
  ordered ``TransferStop`` rows, a route polyline and ETAs (jingkong.isolation.routing). Batches no facility has room
  for (or no vehicle can take) keep waiting with the reason.
* :func:`batch_move`, :func:`transfer_reorder`, :func:`transfer_cancel` — the dispatcher's edits (validated: seats
  at every point of the route, accessibility, a pickup before its drop-off, only runs not yet under way).
* :func:`transfer_status` — dispatched → at pickup → picked up → arrived, each handover timestamped on the stop and
  the members; events ``isolation.transfer_started``, ``isolation.picked_up``, ``isolation.arrived`` per person. The
  facilities side subscribes to ``isolation.arrived``; contacts move to ``in_quarantine`` through the tracing service.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections import defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop as N_

from jingkong.access import audit
from jingkong.core import clock, jobs
from jingkong.core.events import emit, emit_many
from jingkong.core.exceptions import Conflict, NotFound, ValidationFailed
from jingkong.isolation import routing
from jingkong.isolation.grouping import (
    HAND_OVER_JOB,
    LIMITED_MOBILITY,
    NEEDS_CARER,
    Candidate,
    age_on,
    profile_region,
    refs_allocate,
)
from jingkong.isolation.grouping import _hand_over_contacts as hand_over_contacts
from jingkong.isolation.grouping import _is_carer as is_carer
from jingkong.isolation.models import (
    BatchMember,
    BatchStatus,
    Destination,
    Disinfection,
    Facility,
    FacilityKind,
    Room,
    RoomState,
    StopKind,
    Transfer,
    TransferBatch,
    TransferStatus,
    TransferStop,
    Vehicle,
)
from jingkong.policy.schema import RulesIncomplete
from jingkong.policy.selectors import active_profile

log = logging.getLogger(__name__)
PLAN_JOB = "isolation.plan_transfers"
ACTIVE = (TransferStatus.PLANNED, TransferStatus.DISPATCHED, TransferStatus.AT_PICKUP, TransferStatus.PICKED_UP)
EDITABLE = (TransferStatus.PLANNED,)
DESTINATION_KINDS = {  # which facility kinds take which destination type
    Destination.HOSPITAL: (FacilityKind.DESIGNATED_HOSPITAL,),
    Destination.CENTRAL: (FacilityKind.QUARANTINE_HOTEL, FacilityKind.SHELTER),
    Destination.SEPARATE_SITE: (FacilityKind.QUARANTINE_HOTEL, FacilityKind.SHELTER),
}
MAX_FUTURE = dt.timedelta(minutes=5)
SYNC_PLAN_LIMIT = 400  # batches planned in the request; more: a background job


def ancestors(prefix: str) -> list[str]:
    """Division codes above a region code (district 6, street 9, community 12 digits): facilities run by a unit
    above the user's region serve it too."""
    return [prefix[:n] for n in (2, 4, 6, 9, 12) if n < len(prefix)]


def facility_q(scope) -> Q:
    if scope.prefix is None:
        return Q(pk__in=[])
    if scope.prefix == "":
        return Q()
    return Q(region_code__startswith=scope.prefix) | Q(region_code__in=ancestors(scope.prefix))


# --- rules and parameters --------------------------------------------------------------------------------------------


def transfer_rules(region_code: str, at: dt.datetime):
    try:
        return active_profile(region_code=region_code, at=at).rules.section("transfer")
    except RulesIncomplete as exc:
        raise Conflict(str(exc), code="rules_incomplete") from None


@functools.lru_cache(maxsize=2)
def _road_graph(path: str, mtime: float):
    return routing.RoadGraph.load(path)


def road_graph_path() -> Path:
    return Path(getattr(settings, "DATA_DIR", "var")) / "roads" / "graph.graphml"


def road_graph() -> routing.RoadGraph | None:
    """The road graph under the data directory (``roads/graph.graphml``), if one was loaded; else None."""
    path = road_graph_path()
    if not path.is_file():
        return None
    try:
        return _road_graph(str(path), path.stat().st_mtime)
    except Exception:  # noqa: BLE001 - a broken graph file must not stop planning: great-circle distances instead
        log.exception("road graph %s unreadable; using great-circle distances", path)
        return None


def params_from(rules, *, time_limit_s: float = 20.0) -> routing.Params:
    return routing.Params(detour_factor=rules.detour_factor, speed_kmh=rules.average_speed_kmh,
                          pickup_s=rules.pickup_minutes * 60, dropoff_s=rules.dropoff_minutes * 60,
                          time_limit_s=time_limit_s, graph=road_graph())


# --- capacity -------------------------------------------------------------------------------------------------------


def facility_free(facility_ids: list[int]) -> dict[int, int]:
    """Beds in free rooms minus people already on their way (planned or in transit, not yet arrived)."""
    beds = dict(Room.objects.filter(facility_id__in=facility_ids, state=RoomState.FREE).values("facility_id")
                .annotate(n=Sum("beds")).values_list("facility_id", "n"))
    coming = dict(TransferBatch.objects.filter(facility_id__in=facility_ids,
                                               status__in=[BatchStatus.PLANNED, BatchStatus.IN_TRANSIT])
                  .values("facility_id").annotate(n=Sum("size")).values_list("facility_id", "n"))
    return {f: max(0, (beds.get(f) or 0) - (coming.get(f) or 0)) for f in facility_ids}


def _busy_vehicle_ids() -> set[int]:
    return set(Transfer.objects.filter(status__in=ACTIVE).values_list("vehicle_id", flat=True))


# --- planning ---------------------------------------------------------------------------------------------------------


def _check_region(scope, region_code: str) -> str:
    if scope.prefix is None:  # an account without a region plans nothing (and never the whole platform in a job)
        raise NotFound(_("region not found"), extra={"field": "region"})
    if region_code:
        scope.check(region_code, "region")
        return region_code
    return scope.prefix or ""


def plan_transfers(*, actor, scope, region_code: str = "", vehicle_ids: list[int] | None = None,
                   at: dt.datetime | None = None, time_limit_s: float = 20.0, request=None) -> dict:
    """Plan runs for the waiting batches under ``region_code`` (default: the caller's whole region)."""
    at = at or clock.now()
    region = _check_region(scope, region_code)
    rules = transfer_rules(profile_region(region), at)
    params = params_from(rules, time_limit_s=time_limit_s)
    # a vehicle whose disinfection is due (after each run: 一趟一消) is not planned until it is marked clean
    vq = Vehicle.objects.filter(scope.q("region_code"), region_code__startswith=region, available=True,
                                disinfection=Disinfection.CLEAN)
    if vehicle_ids is not None:
        vq = vq.filter(pk__in=vehicle_ids)
        found = set(vq.values_list("pk", flat=True))
        unknown = sorted(set(vehicle_ids) - found)
        if unknown:
            raise NotFound(_("vehicle not found: %(ids)s") % {"ids": unknown}, extra={"field": "vehicle_ids"})
    with transaction.atomic():
        # the vehicles are locked first (a concurrent plan of the same region waits, then finds them busy)
        locked = list(vq.select_for_update().order_by("pk"))
        busy = _busy_vehicle_ids()
        vehicles = [v for v in locked if v.pk not in busy]
        # then the facilities: a concurrent plan sharing one (another street's dispatcher) waits here and reads the
        # free beds only after this plan's batches are committed — beds are never promised twice
        facilities = list(Facility.objects.select_for_update().filter(facility_q(scope), active=True).order_by("pk"))
        free = facility_free([f.pk for f in facilities])
        batches = list(TransferBatch.objects.select_for_update().filter(
            scope.q("region_code"), region_code__startswith=region, status=BatchStatus.WAITING).order_by("pk"))
        due_base = at
        roles = dict(BatchMember.objects.filter(batch__in=batches, removed_at__isnull=True)
                     .exclude(role="carer").values_list("batch_id", "role").distinct())
        b_in = [routing.BatchIn(id=b.pk, size=b.size, lon=b.pickup_lon, lat=b.pickup_lat,
                                destination=b.destination_type, priority=b.priority,
                                due_s=int((b.due_at - due_base).total_seconds()) if b.due_at else None,
                                accessible=b.needs_accessible, group=roles.get(b.pk, ""))
                for b in batches if b.size > 0]
        v_in = [routing.VehicleIn(id=v.pk, seats=v.seats, lon=v.depot_lon, lat=v.depot_lat, accessible=v.accessible)
                for v in vehicles]
        f_in = [routing.FacilityIn(id=f.pk, lon=f.lon, lat=f.lat, free=free.get(f.pk, 0),
                                   destinations=tuple(d for d, kinds in DESTINATION_KINDS.items() if f.kind in kinds))
                for f in facilities]
        result = routing.plan(v_in, b_in, f_in, params)
        summary = _persist(result, batches={b.pk: b for b in batches}, vehicles={v.pk: v for v in vehicles},
                           actor=actor, at=at, request=request, region=region)
    return summary


def _route_geojson(path: list[list[float]]) -> dict:
    return {"type": "LineString", "coordinates": [[round(x, 6), round(y, 6)] for x, y in path]}


def _persist(result: routing.PlanOut, *, batches: dict, vehicles: dict, actor, at, request, region) -> dict:
    plan_id = refs_allocate("PL", 1, at=at)[0]
    refs = refs_allocate("TR", len(result.routes), at=at)
    transfers = []
    for ref, route in zip(refs, result.routes, strict=True):
        v = vehicles[route.vehicle_id]
        transfers.append(Transfer(ref=ref, vehicle=v, region_code=v.region_code, plan_id=plan_id,
                                  route=_route_geojson(route.path), distance_m=route.distance_m, planned_start=at,
                                  planned_end=at + dt.timedelta(seconds=route.end_s),
                                  created_by=actor if getattr(actor, "pk", None) else None, created_at=at,
                                  updated_at=at))
    Transfer.objects.bulk_create(transfers)
    ids = dict(Transfer.objects.filter(ref__in=refs).values_list("ref", "pk"))
    stops = []
    for ref, route in zip(refs, result.routes, strict=True):
        for seq, s in enumerate(route.stops, start=1):
            stops.append(TransferStop(transfer_id=ids[ref], seq=seq, kind=s.kind, batch_id=s.batch_id,
                                      facility_id=s.facility_id, lon=s.lon, lat=s.lat,
                                      eta=at + dt.timedelta(seconds=s.arrive_s)))
    TransferStop.objects.bulk_create(stops, batch_size=2000)
    planned, waiting = [], []
    for bid, b in batches.items():
        if bid in result.facility_of:
            b.status, b.facility_id, b.wait_reason = BatchStatus.PLANNED, result.facility_of[bid], ""
            planned.append(b)
        elif bid in result.unassigned:
            b.wait_reason = result.unassigned[bid]
            waiting.append(b)
        b.updated_at = at
    TransferBatch.objects.bulk_update(planned + waiting, ["status", "facility", "wait_reason", "updated_at"],
                                      batch_size=1000)
    reasons: dict[str, int] = defaultdict(int)
    for b in waiting:
        reasons[b.wait_reason] += 1
    summary = {
        "plan_id": plan_id, "transfers": len(transfers), "batches_planned": len(planned),
        "people_planned": sum(b.size for b in planned), "batches_waiting": len(waiting),
        "waiting_reasons": dict(reasons), "distance_m": result.distance_m, "late_batches": result.late,
        "solver": result.solver, "seconds": result.seconds, "baseline": result.baseline,
        "refs": refs[:200],
    }
    audit.record(actor=actor, action="transfer.plan", object_type="isolation.transfer", object_id=plan_id,
                 region_code=region, request=request, detail={k: v for k, v in summary.items() if k != "refs"})
    emit("isolation.transfers_planned", subject_type="isolation.plan", subject_id=plan_id, region_code=region,
         actor=actor, payload={k: v for k, v in summary.items() if k not in ("refs", "baseline")})
    return summary


def enqueue_plan(*, actor, scope, region_code: str = "", vehicle_ids: list[int] | None = None,
                 time_limit_s: float = 20.0):
    region = _check_region(scope, region_code)
    return jobs.enqueue(PLAN_JOB, {"region_code": region, "scope_prefix": scope.prefix,
                                   "vehicle_ids": vehicle_ids, "time_limit_s": time_limit_s},
                        actor=actor, region_code=region)


def waiting_batch_count(scope, region_code: str = "") -> int:
    return TransferBatch.objects.filter(scope.q("region_code"), region_code__startswith=region_code or "",
                                        status=BatchStatus.WAITING).count()


# --- edits --------------------------------------------------------------------------------------------------------


def stop_order_error(stops: list[tuple[str, int, int]], seats: int) -> str | None:
    """Why an ordered list of (kind, batch_id, size) is not a valid run for ``seats`` (None: valid)."""
    load, picked, dropped = 0, set(), set()
    for kind, batch, size in stops:
        if kind == StopKind.PICKUP:
            if batch in picked:
                return N_("batch picked up twice")
            picked.add(batch)
            load += size
            if load > seats:
                return N_("more people on board than seats")
        else:
            if batch not in picked:
                return N_("a drop-off before its pickup")
            if batch in dropped:
                return N_("batch dropped off twice")
            dropped.add(batch)
            load -= size
    if picked != dropped:
        return N_("a batch picked up but never dropped off")
    return None


def _locked(transfer: Transfer) -> Transfer:
    return Transfer.objects.select_for_update().select_related("vehicle").get(pk=transfer.pk)


def _stops(transfer_id: int) -> list[TransferStop]:
    return list(TransferStop.objects.filter(transfer_id=transfer_id).select_related("batch").order_by("seq"))


def _recompute(transfer: Transfer, stops: list[TransferStop], *, at: dt.datetime) -> None:
    """Renumber the stops, recompute ETAs, distance and polyline after an edit."""
    TransferStop.objects.filter(transfer=transfer).delete()
    if not stops:
        transfer.status, transfer.route, transfer.distance_m, transfer.updated_at = TransferStatus.CANCELLED, None, 0, at
        transfer.save(update_fields=["status", "route", "distance_m", "updated_at"])
        return
    rules = transfer_rules(transfer.region_code, at)
    params = params_from(rules)
    v = transfer.vehicle
    points = [(v.depot_lon, v.depot_lat)] + [(s.lon, s.lat) for s in stops]
    arrivals, total, path = routing.route_metrics(points, params, [s.kind for s in stops])
    start = max(transfer.planned_start or at, at)
    fresh = [TransferStop(transfer=transfer, seq=i, kind=s.kind, batch_id=s.batch_id, facility_id=s.facility_id,
                          lon=s.lon, lat=s.lat, eta=start + dt.timedelta(seconds=a))
             for i, (s, a) in enumerate(zip(stops, arrivals, strict=True), start=1)]
    TransferStop.objects.bulk_create(fresh)
    transfer.route, transfer.distance_m, transfer.planned_start = _route_geojson(path), total, start
    transfer.planned_end = start + dt.timedelta(seconds=arrivals[-1] + params.dropoff_s)
    transfer.updated_at = at
    transfer.save(update_fields=["route", "distance_m", "planned_start", "planned_end", "updated_at"])


def _batch_tiers(batch_ids: list[int]) -> dict[int, str]:
    """The tier (case / close / secondary) of each batch, from its members (carers travel with theirs)."""
    return dict(BatchMember.objects.filter(batch_id__in=batch_ids).exclude(role="carer")
                .values_list("batch_id", "role").distinct())


def _check_editable(transfer: Transfer) -> None:
    if transfer.status not in EDITABLE:
        raise Conflict(_("only a planned run can be changed (this one is %(status)s)")
                       % {"status": transfer.get_status_display()}, extra={"field": "status",
                                                                           "current": transfer.status})


@transaction.atomic
def transfer_reorder(*, actor, transfer: Transfer, stop_ids: list[int], request=None,
                     at: dt.datetime | None = None) -> Transfer:
    at = at or clock.now()
    transfer = _locked(transfer)
    _check_editable(transfer)
    stops = _stops(transfer.pk)
    by_id = {s.pk: s for s in stops}
    if sorted(stop_ids) != sorted(by_id) or len(set(stop_ids)) != len(stop_ids):
        raise ValidationFailed(_("stop_ids: give every stop of this run exactly once"), extra={"field": "stop_ids"})
    ordered = [by_id[i] for i in stop_ids]
    problem = stop_order_error([(s.kind, s.batch_id, s.batch.size) for s in ordered], transfer.vehicle.seats)
    if problem:
        raise ValidationFailed(_("stop_ids: %(problem)s") % {"problem": _(problem)}, extra={"field": "stop_ids"})
    _recompute(transfer, ordered, at=at)
    audit.record(actor=actor, action="transfer.reorder", object_type="isolation.transfer", object_id=transfer.pk,
                 region_code=transfer.region_code, request=request, detail={"ref": transfer.ref})
    emit("isolation.transfer_edited", subject=transfer, region_code=transfer.region_code, actor=actor,
         payload={"ref": transfer.ref, "edit": "reorder"})
    return transfer


@transaction.atomic
def batch_move(*, actor, scope, transfer: Transfer, batch_id: int, to_vehicle_id: int, request=None,
               at: dt.datetime | None = None) -> Transfer:
    """Move a batch of this (planned) run to another vehicle's planned run (a new run if the vehicle has none)."""
    at = at or clock.now()
    transfer = _locked(transfer)
    _check_editable(transfer)
    stops = _stops(transfer.pk)
    moving = [s for s in stops if s.batch_id == batch_id]
    if not moving:
        raise NotFound(_("batch_id: this run has no such batch"), extra={"field": "batch_id"})
    # the receiving vehicle is locked as planning locks it: a concurrent plan never gives it a second run
    target_vehicle = Vehicle.objects.select_for_update().filter(scope.q("region_code"), pk=to_vehicle_id).first()
    if target_vehicle is None:
        raise NotFound(_("to_vehicle_id: vehicle not found"), extra={"field": "to_vehicle_id"})
    if target_vehicle.pk == transfer.vehicle_id:
        raise ValidationFailed(_("to_vehicle_id: the batch is already on this vehicle"),
                               extra={"field": "to_vehicle_id"})
    if not target_vehicle.available:
        raise Conflict(_("to_vehicle_id: the vehicle is not available"), extra={"field": "to_vehicle_id"})
    if target_vehicle.disinfection != Disinfection.CLEAN:
        raise Conflict(_("to_vehicle_id: the vehicle has not been disinfected since its last run"),
                       extra={"field": "to_vehicle_id"})
    batch = moving[0].batch
    if batch.needs_accessible and not target_vehicle.accessible:
        raise ValidationFailed(_("to_vehicle_id: the batch needs an accessible vehicle"),
                               extra={"field": "to_vehicle_id"})
    others = Transfer.objects.select_for_update().filter(vehicle=target_vehicle, status__in=ACTIVE).first()
    if others is not None and others.status not in EDITABLE:
        raise Conflict(_("to_vehicle_id: the vehicle is already under way"), extra={"field": "to_vehicle_id"})
    if others is None:
        ref = refs_allocate("TR", 1, at=at)[0]
        others = Transfer.objects.create(ref=ref, vehicle=target_vehicle, region_code=target_vehicle.region_code,
                                         plan_id=transfer.plan_id, planned_start=at,
                                         created_by=actor if getattr(actor, "pk", None) else None, created_at=at,
                                         updated_at=at)
    target_stops = _stops(others.pk)
    tiers = _batch_tiers([batch.pk] + [s.batch_id for s in target_stops])
    if any(tiers.get(s.batch_id, "") != tiers.get(batch.pk, "") for s in target_stops):
        raise ValidationFailed(_("to_vehicle_id: that vehicle's run carries another tier (tiers never share a run)"),
                               extra={"field": "to_vehicle_id"})
    pickups = [s for s in target_stops if s.kind == StopKind.PICKUP]
    drops = [s for s in target_stops if s.kind == StopKind.DROPOFF]
    pickup = next(s for s in moving if s.kind == StopKind.PICKUP)
    drop = next(s for s in moving if s.kind == StopKind.DROPOFF)
    new_order = pickups + [pickup] + drops + [drop]
    problem = stop_order_error([(s.kind, s.batch_id, s.batch.size) for s in new_order], target_vehicle.seats)
    if problem:
        raise ValidationFailed(_("to_vehicle_id: %(problem)s") % {"problem": _(problem)},
                               extra={"field": "to_vehicle_id"})
    _recompute(others, new_order, at=at)
    _recompute(transfer, [s for s in stops if s.batch_id != batch_id], at=at)
    audit.record(actor=actor, action="transfer.move_batch", object_type="isolation.transfer", object_id=transfer.pk,
                 region_code=transfer.region_code, request=request,
                 detail={"batch": batch.ref, "from": transfer.ref, "to": others.ref})
    emit("isolation.transfer_edited", subject=transfer, region_code=transfer.region_code, actor=actor,
         payload={"ref": transfer.ref, "edit": "move", "batch_id": batch_id, "to_transfer_id": others.pk})
    others.refresh_from_db()
    return others


@transaction.atomic
def transfer_cancel(*, actor, transfer: Transfer, reason: str, request=None, at: dt.datetime | None = None) -> Transfer:
    """Cancel a run nobody has boarded yet: its batches wait again (for the next plan)."""
    at = at or clock.now()
    if not reason.strip():
        raise ValidationFailed(_("reason: say why the run is cancelled"), extra={"field": "reason"})
    transfer = _locked(transfer)
    if transfer.status not in (TransferStatus.PLANNED, TransferStatus.DISPATCHED, TransferStatus.AT_PICKUP):
        raise Conflict(_("a run whose passengers are on board cannot be cancelled"), extra={"field": "status",
                                                                                            "current": transfer.status})
    if TransferStop.objects.filter(transfer=transfer, kind=StopKind.PICKUP, done_at__isnull=False).exists():
        raise Conflict(_("a run whose passengers are on board cannot be cancelled"), extra={"field": "status"})
    batch_ids = list(TransferStop.objects.filter(transfer=transfer).values_list("batch_id", flat=True).distinct())
    TransferBatch.objects.filter(pk__in=batch_ids).update(status=BatchStatus.WAITING, facility=None,
                                                          wait_reason="cancelled_run", updated_at=at)
    transfer.status, transfer.updated_at = TransferStatus.CANCELLED, at
    transfer.save(update_fields=["status", "updated_at"])
    audit.record(actor=actor, action="transfer.cancel", object_type="isolation.transfer", object_id=transfer.pk,
                 region_code=transfer.region_code, request=request, detail={"ref": transfer.ref,
                                                                            "reason": reason.strip()[:500]})
    emit("isolation.transfer_cancelled", subject=transfer, region_code=transfer.region_code, actor=actor,
         payload={"ref": transfer.ref, "batch_ids": batch_ids, "reason": reason.strip()[:500]})
    return transfer


@transaction.atomic
def member_remove(*, actor, batch: TransferBatch, person_id: int, reason: str, request=None,
                  at: dt.datetime | None = None) -> TransferBatch:
    """Take one person who has not boarded out of a batch (not at home, sent to hospital by other means, wrongly
    listed). The batch shrinks (seats and beds freed, flags recomputed); an emptied batch is cancelled and its stops
    leave the run. The person waits for grouping again unless the tracer closes the contact."""
    at = at or clock.now()
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(_("reason: say why the person is taken out of the batch"), extra={"field": "reason"})
    # runs first, then the batch: the order live status takes them in (no deadlock with a driver's update)
    run_ids = set(TransferStop.objects.filter(batch_id=batch.pk).values_list("transfer_id", flat=True))
    runs = list(Transfer.objects.select_for_update().select_related("vehicle").filter(pk__in=run_ids)
                .exclude(status=TransferStatus.CANCELLED).order_by("pk"))
    batch = TransferBatch.objects.select_for_update().get(pk=batch.pk)
    if set(TransferStop.objects.filter(batch_id=batch.pk).values_list("transfer_id", flat=True)) != run_ids:
        raise Conflict(_("the batch was planned meanwhile: try again"), extra={"field": "status"})
    if batch.status not in (BatchStatus.WAITING, BatchStatus.PLANNED, BatchStatus.IN_TRANSIT):
        raise Conflict(_("the batch is %(status)s") % {"status": batch.get_status_display()},
                       extra={"field": "status", "current": batch.status})
    member = (BatchMember.objects.select_for_update().select_related("person")
              .filter(batch=batch, person_id=person_id, removed_at__isnull=True).first())
    if member is None:
        raise NotFound(_("person_id: this person is not in the batch"), extra={"field": "person_id"})
    if member.picked_up_at is not None:
        raise Conflict(_("person_id: this person is on board already"), extra={"field": "person_id"})
    member.removed_at = at
    member.save(update_fields=["removed_at"])
    rest = list(BatchMember.objects.filter(batch=batch, removed_at__isnull=True).select_related("person"))
    today = at.astimezone(ZoneInfo(clock.local_time_zone())).date()
    left = [Candidate(person_id=m.person_id, role=m.role, region_code=m.region_code,
                      vulnerable=m.person.vulnerable or 0, age=age_on(m.person.birth_date, today)) for m in rest]
    batch.size = len(rest)
    batch.needs_accessible = any(c.vulnerable & LIMITED_MOBILITY for c in left)
    batch.needs_carer = any(c.vulnerable & NEEDS_CARER for c in left) and not any(is_carer(c) for c in left)
    batch.updated_at = at
    fields = ["size", "needs_accessible", "needs_carer", "updated_at"]
    if not rest:
        batch.status, batch.facility, batch.wait_reason = BatchStatus.CANCELLED, None, "emptied"
        fields += ["status", "facility", "wait_reason"]
    batch.save(update_fields=fields)
    if not rest:
        for run in runs:
            if run.status == TransferStatus.PLANNED:
                _recompute(run, [x for x in _stops(run.pk) if x.batch_id != batch.pk], at=at)
            else:  # under way: the other stops keep their handover times
                TransferStop.objects.filter(transfer=run, batch=batch).delete()
                if not TransferStop.objects.filter(transfer=run, done_at__isnull=True).exists():
                    done = TransferStop.objects.filter(transfer=run).order_by("-done_at").first()
                    run.status = TransferStatus.ARRIVED if done else TransferStatus.CANCELLED
                    run.arrived_at = done.done_at if done else None
                    run.updated_at = at
                    run.save(update_fields=["status", "arrived_at", "updated_at"])
                    if done:  # it carried people: disinfected before its next run
                        Vehicle.objects.filter(pk=run.vehicle_id).update(disinfection=Disinfection.DUE)
    detail = {"batch": batch.ref, "reason": reason[:500], "runs": [r.ref for r in runs]}
    audit.record(actor=actor, action="transfer.member_remove", object_type="people.person", object_id=person_id,
                 region_code=member.region_code, request=request, detail=detail)
    emit("isolation.member_removed", subject_type="people.person", subject_id=person_id,
         region_code=member.region_code, actor=actor,
         payload={"batch_id": batch.pk, "batch_ref": batch.ref, "role": member.role, "reason": reason[:500],
                  "batch_cancelled": not rest})
    return batch


# --- live status -----------------------------------------------------------------------------------------------------


STATUS_ORDER = [TransferStatus.PLANNED, TransferStatus.DISPATCHED, TransferStatus.AT_PICKUP, TransferStatus.PICKED_UP,
                TransferStatus.ARRIVED]


def _when(at: dt.datetime | None) -> dt.datetime:
    now = clock.now()
    if at is None:
        return now
    if at.tzinfo is None:
        raise ValidationFailed(_("at: give a time zone"), extra={"field": "at"})
    if at > now + MAX_FUTURE:
        raise ValidationFailed(_("at: the time is in the future"), extra={"field": "at"})
    return at


def _not_before(when: dt.datetime, *earlier: dt.datetime | None) -> None:
    """Handover times never run backwards (a picked-up time before the dispatch would corrupt the five-stage clock)."""
    if any(e is not None and when < e for e in earlier):
        raise ValidationFailed(_("at: earlier than the run's previous step"), extra={"field": "at"})


def _pick_stop(stops: list[TransferStop], kind: str, stop_id: int | None, *, need_open: bool = True) -> TransferStop:
    if stop_id is not None:
        stop = next((s for s in stops if s.pk == stop_id), None)
        if stop is None:
            raise NotFound(_("stop_id: this run has no such stop"), extra={"field": "stop_id"})
        if stop.kind != kind:
            raise ValidationFailed(_("stop_id: this is not a %(kind)s stop") % {"kind": StopKind(kind).label},
                                   extra={"field": "stop_id"})
        if need_open and stop.done_at is not None:
            raise Conflict(_("stop_id: this stop is done already"), extra={"field": "stop_id"})
        return stop
    stop = next((s for s in stops if s.kind == kind and s.done_at is None), None)
    if stop is None:
        raise Conflict(_("no %(kind)s stop left on this run") % {"kind": StopKind(kind).label},
                       extra={"field": "status"})
    return stop


def _members(batch_ids: list[int]) -> list[BatchMember]:
    return list(BatchMember.objects.filter(batch_id__in=batch_ids, removed_at__isnull=True).order_by("pk"))


def _person_events(kind: str, members: list[BatchMember], payload: dict, *, at, actor) -> None:
    emit_many([{"type": kind, "subject_type": "people.person", "subject_id": m.person_id, "region_code": m.region_code,
                "at": at, "payload": {**payload, "batch_id": m.batch_id, "role": m.role}} for m in members],
              actor=actor)


@transaction.atomic
def transfer_status(*, actor, transfer: Transfer, status: str, stop_id: int | None = None,
                    at: dt.datetime | None = None, request=None) -> Transfer:
    when = _when(at)
    transfer = _locked(transfer)
    current = transfer.status
    if status not in (TransferStatus.DISPATCHED, TransferStatus.AT_PICKUP, TransferStatus.PICKED_UP,
                      TransferStatus.ARRIVED):
        raise ValidationFailed(_("status: unknown or not settable here (%(status)s)") % {"status": status},
                               extra={"field": "status"})
    if current in (TransferStatus.CANCELLED, TransferStatus.ARRIVED):
        raise Conflict(_("the run is %(status)s") % {"status": transfer.get_status_display()},
                       extra={"field": "status", "current": current})
    stops = _stops(transfer.pk)
    now = clock.now()
    detail: dict = {"ref": transfer.ref, "from": current, "to": status}
    if status == TransferStatus.DISPATCHED:
        if current != TransferStatus.PLANNED:
            raise Conflict(_("the run was dispatched already"), extra={"field": "status", "current": current})
        _not_before(when, transfer.created_at)
        batch_ids = sorted({s.batch_id for s in stops})
        members = _members(batch_ids)
        transfer.dispatched_at = when
        transfer.status = TransferStatus.DISPATCHED
        TransferBatch.objects.filter(pk__in=batch_ids).update(status=BatchStatus.IN_TRANSIT, updated_at=now)
        _person_events("isolation.transfer_started", members, {"transfer_id": transfer.pk}, at=when, actor=actor)
    elif current == TransferStatus.PLANNED:
        raise Conflict(_("dispatch the run first"), extra={"field": "status", "current": current})
    elif status == TransferStatus.AT_PICKUP:
        stop = _pick_stop(stops, StopKind.PICKUP, stop_id)
        _not_before(when, transfer.dispatched_at)
        stop.arrived_at = stop.arrived_at or when
        stop.save(update_fields=["arrived_at"])
        transfer.status = TransferStatus.AT_PICKUP
        detail["stop"] = stop.seq
        members = _members([stop.batch_id])
    elif status == TransferStatus.PICKED_UP:
        stop = _pick_stop(stops, StopKind.PICKUP, stop_id)
        _not_before(when, transfer.dispatched_at, stop.arrived_at)
        stop.arrived_at = stop.arrived_at or when
        stop.done_at = when
        stop.save(update_fields=["arrived_at", "done_at"])
        members = _members([stop.batch_id])
        BatchMember.objects.filter(pk__in=[m.pk for m in members]).update(picked_up_at=when)
        transfer.status = TransferStatus.PICKED_UP
        detail["stop"] = stop.seq
        _person_events("isolation.picked_up", members, {"transfer_id": transfer.pk, "stop_id": stop.pk}, at=when,
                       actor=actor)
    else:  # arrived at a drop-off
        stop = _pick_stop(stops, StopKind.DROPOFF, stop_id)
        pickup = next(s for s in stops if s.kind == StopKind.PICKUP and s.batch_id == stop.batch_id)
        if pickup.done_at is None:
            raise Conflict(_("this batch has not been picked up yet"), extra={"field": "stop_id"})
        _not_before(when, transfer.dispatched_at, pickup.done_at, stop.arrived_at)
        stop.arrived_at = stop.arrived_at or when
        stop.done_at = when
        stop.save(update_fields=["arrived_at", "done_at"])
        members = [m for m in _members([stop.batch_id]) if m.picked_up_at is not None]
        BatchMember.objects.filter(pk__in=[m.pk for m in members]).update(arrived_at=when)
        TransferBatch.objects.filter(pk=stop.batch_id).update(status=BatchStatus.DELIVERED, updated_at=now)
        detail["stop"] = stop.seq
        _person_events("isolation.arrived", members, {"transfer_id": transfer.pk, "facility_id": stop.facility_id,
                                                      "stop_id": stop.pk}, at=when, actor=actor)
        _contacts_in_quarantine(members, actor=actor, at=when, request=request)
        _cases_at_hospital(members, facility_id=stop.facility_id, actor=actor, request=request)
        all_done = all(s.done_at is not None or s.pk == stop.pk for s in stops)
        if all_done:
            transfer.status, transfer.arrived_at = TransferStatus.ARRIVED, when
            # the run is over: the vehicle is disinfected before its next run (marked clean by the dispatcher)
            Vehicle.objects.filter(pk=transfer.vehicle_id).update(disinfection=Disinfection.DUE)
        else:
            transfer.status = TransferStatus.PICKED_UP
    transfer.updated_at = now
    transfer.save(update_fields=["status", "dispatched_at", "arrived_at", "updated_at"])
    audit.record_many(actor=actor, action=f"transfer.{status}", object_type="people.person",
                      items=((m.person_id, m.region_code) for m in members), request=request, detail=detail)
    return transfer


def _contacts_in_quarantine(members: list[BatchMember], *, actor, at, request) -> int:
    """Contacts that arrived move to in_quarantine through the tracing service (unless already there: the facilities
    side may have moved them on check-in, inside the same transaction)."""
    from jingkong.tracing import services as tracing_services
    from jingkong.tracing.models import Contact, ContactStatus

    ids = [m.contact_id for m in members if m.contact_id]
    n = 0
    for contact in Contact.objects.filter(pk__in=ids, status__in=[ContactStatus.LOCATED, ContactStatus.HANDED_OVER]):
        tracing_services.contact_status_set(actor=actor, contact=contact, status=ContactStatus.IN_QUARANTINE, at=at,
                                            request=request)
        n += 1
    return n


def _cases_at_hospital(members: list[BatchMember], *, facility_id: int | None, actor, request) -> int:
    """Cases that arrived: their current place becomes the facility (through the tracing service; the isolation time
    stays the tracer's to set, as it moves the case's window)."""
    from jingkong.tracing import services as tracing_services
    from jingkong.tracing.models import Case

    ids = [m.case_id for m in members if m.case_id]
    facility = Facility.objects.filter(pk=facility_id).first() if facility_id else None
    if not ids or facility is None:
        return 0
    n = 0
    for case in Case.objects.filter(pk__in=ids):
        tracing_services.case_update(actor=actor, case=case, request=request, current_place=facility.name[:255])
        n += 1
    return n


# --- vehicles -------------------------------------------------------------------------------------------------------

VEHICLE_FIELDS = ("code", "plate", "type", "seats", "accessible", "depot_lon", "depot_lat", "depot_label",
                  "driver_name", "driver_phone", "region_code", "disinfection", "available")


@transaction.atomic
def vehicle_save(*, actor, scope, vehicle: Vehicle | None = None, request=None, **fields) -> Vehicle:
    fields = {k: v for k, v in fields.items() if k in VEHICLE_FIELDS and v is not None}
    if "region_code" in fields:
        scope.check(fields["region_code"], "region")
    if vehicle is None:
        missing = [f for f in ("code", "plate", "type", "seats", "depot_lon", "depot_lat", "region_code")
                   if f not in fields]
        if missing:
            raise ValidationFailed(_("%(field)s: required") % {"field": missing[0]}, extra={"field": missing[0]})
        if Vehicle.objects.filter(code=fields["code"]).exists():
            raise Conflict(_("code: a vehicle with this code exists"), extra={"field": "code"})
        vehicle = Vehicle(**fields)
        vehicle.save()
        action = "vehicle.create"
    else:
        vehicle = Vehicle.objects.select_for_update().get(pk=vehicle.pk)
        if "code" in fields and Vehicle.objects.filter(code=fields["code"]).exclude(pk=vehicle.pk).exists():
            raise Conflict(_("code: a vehicle with this code exists"), extra={"field": "code"})
        if "seats" in fields:
            on_run = Transfer.objects.filter(vehicle=vehicle, status__in=ACTIVE).first()
            if on_run is not None:
                peak = _peak_load(on_run.pk)
                if fields["seats"] < peak:
                    raise ValidationFailed(_("seats: the vehicle's current run carries %(n)s people") % {"n": peak},
                                           extra={"field": "seats"})
        for k, v in fields.items():
            setattr(vehicle, k, v)
        vehicle.save()
        action = "vehicle.update"
    audit.record(actor=actor, action=action, object_type="isolation.vehicle", object_id=vehicle.pk,
                 region_code=vehicle.region_code, request=request, detail={"code": vehicle.code,
                                                                           "fields": sorted(fields)})
    emit(f"isolation.{action.split('.')[0]}_{action.split('.')[1]}d", subject=vehicle, region_code=vehicle.region_code,
         actor=actor, payload={"code": vehicle.code, "fields": sorted(fields)})
    return vehicle


def _peak_load(transfer_id: int) -> int:
    load = peak = 0
    for kind, size in TransferStop.objects.filter(transfer_id=transfer_id).order_by("seq").values_list(
            "kind", "batch__size"):
        load += size if kind == StopKind.PICKUP else -size
        peak = max(peak, load)
    return peak


@transaction.atomic
def vehicle_delete(*, actor, vehicle: Vehicle, request=None) -> None:
    if Transfer.objects.filter(vehicle=vehicle).exists():
        raise Conflict(_("the vehicle has runs on record: mark it unavailable instead"), extra={"field": "available"})
    audit.record(actor=actor, action="vehicle.delete", object_type="isolation.vehicle", object_id=vehicle.pk,
                 region_code=vehicle.region_code, request=request, detail={"code": vehicle.code})
    emit("isolation.vehicle_deleted", subject=vehicle, region_code=vehicle.region_code, actor=actor,
         payload={"code": vehicle.code})
    vehicle.delete()


def board_counts(scope) -> dict:
    """Aggregates for the isolation board: waiting people by destination, runs by status, vehicles."""
    waiting = (TransferBatch.objects.filter(scope.q("region_code"), status=BatchStatus.WAITING)
               .values("destination_type").annotate(batches=Count("pk"), people=Sum("size")))
    runs = Transfer.objects.filter(scope.q("region_code")).values("status").annotate(n=Count("pk"))
    vehicles = Vehicle.objects.filter(scope.q("region_code"))
    return {
        "waiting": {r["destination_type"]: {"batches": r["batches"], "people": r["people"] or 0} for r in waiting},
        "runs": {r["status"]: r["n"] for r in runs},
        "vehicles": vehicles.count(),
        "vehicles_available": vehicles.filter(available=True, disinfection=Disinfection.CLEAN)
        .exclude(pk__in=_busy_vehicle_ids()).count(),
    }


@jobs.register(PLAN_JOB)
def plan_job(ctx, region_code: str = "", scope_prefix: str | None = None, vehicle_ids: list[int] | None = None,
             time_limit_s: float = 20.0) -> dict:
    """Background planning (large regions): the same as :func:`plan_transfers` for the job's creator's scope."""
    from jingkong.access.guard import Scope

    ctx.progress(0, 1, "planning")
    result = plan_transfers(actor=ctx.actor, scope=Scope(scope_prefix), region_code=region_code,
                            vehicle_ids=vehicle_ids, time_limit_s=time_limit_s)
    ctx.progress(1, 1, "done")
    return result


@jobs.register(HAND_OVER_JOB)
def hand_over_job(ctx, contact_ids: list[int], at: str = "") -> dict:
    """located → handed over (grouping) for the contacts of a large grouping run (jingkong.isolation.grouping)."""
    when = dt.datetime.fromisoformat(at) if at else clock.now()
    done = 0
    ctx.progress(0, len(contact_ids), "handing contacts over")
    for i in range(0, len(contact_ids), 200):
        with transaction.atomic():
            done += hand_over_contacts(contact_ids[i:i + 200], actor=ctx.actor, at=when)
        ctx.progress(min(i + 200, len(contact_ids)), len(contact_ids), "handing contacts over")
    return {"contacts": len(contact_ids), "handed_over": done}
