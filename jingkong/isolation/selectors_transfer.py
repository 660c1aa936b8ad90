"""Reads of the transfer area, scoped by region: batches (the person's grid), vehicles and runs (the running unit's
region), the route map's GeoJSON and the driver's manifest."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from jingkong.core.exceptions import NotFound
from jingkong.isolation.models import (
    BatchMember,
    BatchStatus,
    Facility,
    StopKind,
    Transfer,
    TransferBatch,
    TransferStop,
    Vehicle,
)
from jingkong.isolation.transfers import ACTIVE, facility_free, facility_q


def batch_list(*, scope, status: str = "", destination: str = "", region: str = "") -> QuerySet[TransferBatch]:
    qs = TransferBatch.objects.filter(scope.q("region_code")).select_related("facility")
    if status:
        qs = qs.filter(status=status)
    if destination:
        qs = qs.filter(destination_type=destination)
    if region:
        qs = qs.filter(region_code__startswith=region)
    return qs.order_by("priority", "due_at", "pk")


def batch_get(*, scope, batch_id: int) -> TransferBatch:
    batch = TransferBatch.objects.filter(pk=batch_id).select_related("facility").first()
    if batch is None:
        raise NotFound("batch not found")
    scope.check(batch.region_code, "batch")
    return batch


def batch_members(batch_id: int) -> QuerySet[BatchMember]:
    return (BatchMember.objects.filter(batch_id=batch_id).select_related("person")
            .order_by("household_id", "person_id"))


def vehicle_list(*, scope, available: bool | None = None) -> QuerySet[Vehicle]:
    qs = Vehicle.objects.filter(scope.q("region_code"))
    if available is not None:
        qs = qs.filter(available=available)
    return qs.order_by("code")


def vehicle_get(*, scope, vehicle_id: int) -> Vehicle:
    vehicle = Vehicle.objects.filter(pk=vehicle_id).first()
    if vehicle is None:
        raise NotFound("vehicle not found")
    scope.check(vehicle.region_code, "vehicle")
    return vehicle


def transfer_list(*, scope, status: str = "", active: bool = False) -> QuerySet[Transfer]:
    qs = (Transfer.objects.filter(scope.q("region_code")).select_related("vehicle")
          .annotate(stop_count=Count("stops")))
    if status:
        qs = qs.filter(status=status)
    if active:
        qs = qs.filter(status__in=ACTIVE)
    return qs.order_by("-created_at", "-pk")


def transfer_get(*, scope, transfer_id: int) -> Transfer:
    transfer = Transfer.objects.filter(pk=transfer_id).select_related("vehicle").first()
    if transfer is None:
        raise NotFound("transfer not found")
    scope.check(transfer.region_code, "transfer")
    return transfer


def transfer_stops(transfer_id: int) -> list[TransferStop]:
    return list(TransferStop.objects.filter(transfer_id=transfer_id).select_related("batch", "facility")
                .order_by("seq"))


def manifest(transfer: Transfer) -> list[dict]:
    """Pickup order with the people of each pickup (for the driver)."""
    stops = transfer_stops(transfer.pk)
    batch_ids = [s.batch_id for s in stops if s.kind == StopKind.PICKUP]
    members: dict[int, list[BatchMember]] = {}
    for m in (BatchMember.objects.filter(batch_id__in=batch_ids, removed_at__isnull=True).select_related("person")
              .order_by("household_id", "person_id")):
        members.setdefault(m.batch_id, []).append(m)
    return [{"stop": s, "members": members.get(s.batch_id, []) if s.kind == StopKind.PICKUP else []} for s in stops]


def facilities_for(scope) -> QuerySet[Facility]:
    return Facility.objects.filter(facility_q(scope), active=True).order_by("code")


def _vehicle_position(transfer: Transfer, stops: list[TransferStop]) -> tuple[float, float]:
    done = [s for s in stops if s.arrived_at is not None or s.done_at is not None]
    if done:
        last = max(done, key=lambda s: s.seq)
        return last.lon, last.lat
    return transfer.vehicle.depot_lon, transfer.vehicle.depot_lat


def map_geojson(*, scope, include_done: bool = False) -> dict:
    """Routes, vehicles (last known stop), pickups and facilities as one FeatureCollection (the dashboard reuses it).
    No person data: batches appear by number and size."""
    qs = transfer_list(scope=scope)
    if not include_done:
        qs = qs.filter(status__in=ACTIVE)
    transfers = list(qs[:500])
    stops_by: dict[int, list[TransferStop]] = {}
    for s in (TransferStop.objects.filter(transfer_id__in=[t.pk for t in transfers]).select_related("batch")
              .order_by("transfer_id", "seq")):
        stops_by.setdefault(s.transfer_id, []).append(s)
    features = []
    for t in transfers:
        stops = stops_by.get(t.pk, [])
        props = {"ref": t.ref, "transfer_id": t.pk, "status": t.status, "vehicle": t.vehicle.code,
                 "seats": t.vehicle.seats, "distance_m": t.distance_m,
                 "planned_end": t.planned_end.isoformat() if t.planned_end else None}
        if t.route:
            features.append({"type": "Feature", "geometry": t.route, "properties": {**props, "layer": "route"}})
        lon, lat = _vehicle_position(t, stops)
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                         "properties": {**props, "layer": "vehicle"}})
        for s in stops:
            if s.kind != StopKind.PICKUP:
                continue
            features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [s.lon, s.lat]},
                             "properties": {"layer": "pickup", "transfer": t.ref, "seq": s.seq, "batch": s.batch.ref,
                                            "people": s.batch.size, "eta": s.eta.isoformat() if s.eta else None,
                                            "done": s.done_at is not None}})
    waiting = TransferBatch.objects.filter(scope.q("region_code"), status=BatchStatus.WAITING)[:2000]
    for b in waiting:
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [b.pickup_lon, b.pickup_lat]},
                         "properties": {"layer": "waiting", "batch": b.ref, "people": b.size,
                                        "destination": b.destination_type, "reason": b.wait_reason}})
    facilities = list(facilities_for(scope))
    free = facility_free([f.pk for f in facilities])
    for f in facilities:
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [f.lon, f.lat]},
                         "properties": {"layer": "facility", "code": f.code, "name": f.name, "kind": f.kind,
                                        "free": free.get(f.pk, 0)}})
    return {"type": "FeatureCollection", "features": features}

