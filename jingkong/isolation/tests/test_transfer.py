"""快转运 services and API: planning into runs with stops, the dispatcher's edits, the live status flow with its
events and handover times, the manifest and the map; scope and bad input."""

from __future__ import annotations

import datetime as dt

import pytest

from jingkong.isolation.tests.transfer_world import NOW


@pytest.fixture(autouse=True)
def _messages_in_english():
    """Service errors are asserted by their English wording (the default UI language is zh-Hans)."""
    from django.utils import translation

    with translation.override("en"):
        yield

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(regions):
    from jingkong.core import clock
    from jingkong.isolation.tests.transfer_world import TransferWorld, activate
    from jingkong.policy.selectors import active_profile_cache_clear

    with clock.frozen(NOW):
        activate()
        yield TransferWorld(regions)
    active_profile_cache_clear()


@pytest.fixture
def dispatcher_a(regions):
    from jingkong.conftest import make_user

    return make_user("dispatcher_a", "transfer_dispatcher", regions["street_a"])


@pytest.fixture
def dispatcher_b(regions):
    from jingkong.conftest import make_user

    return make_user("dispatcher_b", "transfer_dispatcher", regions["street_b"])


@pytest.fixture
def grouped(world, dispatcher_a):
    """Street A: a household of 3 close contacts in B1, 2 in B2 (one in a wheelchair), a case in B3; a quarantine
    hotel (10 beds) and a hospital (2 beds); two vans (one accessible)."""
    from jingkong.access.guard import scope_of
    from jingkong.isolation.grouping import LIMITED_MOBILITY, group_waiting

    w = world
    people = [w.person("户主", household="H1"), w.person("妻", household="H1"), w.person("子", household="H1"),
              w.person("邻", building="B2"), w.person("轮椅", building="B2", vulnerable=LIMITED_MOBILITY)]
    for p in people:
        w.contact(p)
    case_person = w.person("病例", building="B3")
    w.case(case_person)
    w.hotel = w.facility("HOTEL1", rooms=10)
    w.hospital = w.facility("HOSP1", kind="designated_hospital", rooms=2, lon=121.79, lat=29.92)
    w.van = w.vehicle("V1", seats=6, accessible=True)
    w.car = w.vehicle("V2", seats=3, lon=121.81, lat=29.905)
    w.people = people
    w.case_person = case_person
    group_waiting(actor=dispatcher_a, scope=scope_of(dispatcher_a))
    return w


def _plan(user, **kw):
    from jingkong.access.guard import scope_of
    from jingkong.isolation.transfers import plan_transfers

    return plan_transfers(actor=user, scope=scope_of(user), time_limit_s=1.0, **kw)


def test_plan_makes_runs_with_stops_etas_and_routes(grouped, dispatcher_a):
    from jingkong.isolation.models import Transfer, TransferBatch, TransferStop

    out = _plan(dispatcher_a)
    assert out["batches_planned"] == 3 and out["people_planned"] == 6 and out["batches_waiting"] == 0
    assert 1 <= out["baseline"]["served"] <= 3  # the greedy baseline, for comparison
    stops = list(TransferStop.objects.select_related("batch", "transfer__vehicle").order_by("transfer", "seq"))
    assert len(stops) == 6
    for t in Transfer.objects.all():
        mine = [s for s in stops if s.transfer_id == t.pk]
        assert [s.seq for s in mine] == list(range(1, len(mine) + 1))
        assert [s.eta for s in mine] == sorted(s.eta for s in mine) and mine[0].eta > NOW
        assert t.route["type"] == "LineString" and len(t.route["coordinates"]) == len(mine) + 1
        assert t.distance_m > 0 and t.planned_end > t.planned_start
    wheelchair = TransferBatch.objects.get(needs_accessible=True)
    assert TransferStop.objects.get(batch=wheelchair, kind="pickup").transfer.vehicle == grouped.van
    assert TransferBatch.objects.get(destination_type="hospital").facility == grouped.hospital
    assert set(TransferBatch.objects.values_list("status", flat=True)) == {"planned"}
    # planning again finds nothing waiting
    assert _plan(dispatcher_a)["transfers"] == 0


def test_no_facility_with_room_keeps_the_batch_waiting_with_the_reason(grouped, dispatcher_a):
    from jingkong.isolation.models import Room, TransferBatch

    Room.objects.filter(facility=grouped.hotel).update(state="occupied")
    out = _plan(dispatcher_a)
    assert out["waiting_reasons"] == {"no_facility": 2}
    assert set(TransferBatch.objects.filter(destination_type="central").values_list("status", "wait_reason")) == {
        ("waiting", "no_facility")}


def test_beds_already_promised_to_planned_runs_are_not_promised_twice(grouped, dispatcher_a):
    from jingkong.isolation.transfers import facility_free

    _plan(dispatcher_a)
    assert facility_free([grouped.hotel.pk]) == {grouped.hotel.pk: 10 - 5}


def _run_of(batch_destination):
    from jingkong.isolation.models import TransferStop

    return TransferStop.objects.filter(batch__destination_type=batch_destination).first().transfer


def test_status_flow_with_events_timestamps_and_contacts_in_quarantine(grouped, dispatcher_a):
    from jingkong.core import clock
    from jingkong.core.models import DomainEvent
    from jingkong.isolation import transfers
    from jingkong.isolation.models import BatchMember, TransferStop
    from jingkong.tracing.models import Contact

    _plan(dispatcher_a)
    run = _run_of("central")
    stops = list(TransferStop.objects.filter(transfer=run).order_by("seq"))
    people = list(BatchMember.objects.filter(batch__in={s.batch_id for s in stops}).values_list("person_id", flat=True))
    t1 = NOW + dt.timedelta(minutes=5)
    with clock.frozen(t1 + dt.timedelta(hours=3)):
        with pytest.raises(Exception, match="dispatch the run first"):
            transfers.transfer_status(actor=dispatcher_a, transfer=run, status="picked_up")
        transfers.transfer_status(actor=dispatcher_a, transfer=run, status="dispatched", at=t1)
        started = DomainEvent.objects.filter(type="isolation.transfer_started")
        assert sorted(int(e.subject_id) for e in started) == sorted(people)
        assert all(e.payload["transfer_id"] == run.pk and e.payload["batch_id"] for e in started)
        for i, stop in enumerate(s for s in stops if s.kind == "pickup"):
            transfers.transfer_status(actor=dispatcher_a, transfer=run, status="at_pickup",
                                      at=t1 + dt.timedelta(minutes=10 + i))
            transfers.transfer_status(actor=dispatcher_a, transfer=run, status="picked_up",
                                      at=t1 + dt.timedelta(minutes=20 + i))
            stop.refresh_from_db()
            assert stop.arrived_at == t1 + dt.timedelta(minutes=10 + i)
            assert stop.done_at == t1 + dt.timedelta(minutes=20 + i)
            assert set(BatchMember.objects.filter(batch=stop.batch_id).values_list("picked_up_at", flat=True)) == {
                stop.done_at}
        for stop in (s for s in stops if s.kind == "dropoff"):
            transfers.transfer_status(actor=dispatcher_a, transfer=run, status="arrived", stop_id=stop.pk,
                                      at=t1 + dt.timedelta(minutes=50))
        run.refresh_from_db()
        assert run.status == "arrived" and run.arrived_at == t1 + dt.timedelta(minutes=50)
        arrived = DomainEvent.objects.filter(type="isolation.arrived")
        assert sorted(int(e.subject_id) for e in arrived) == sorted(people)
        assert {e.payload["facility_id"] for e in arrived} == {grouped.hotel.pk}
        assert DomainEvent.objects.filter(type="isolation.picked_up").count() == len(people)
        assert set(Contact.objects.filter(person_id__in=people).values_list("status", flat=True)) == {"in_quarantine"}
        assert set(BatchMember.objects.filter(person_id__in=people).values_list("arrived_at", flat=True)) == {
            t1 + dt.timedelta(minutes=50)}
        with pytest.raises(Exception, match="arrived"):
            transfers.transfer_status(actor=dispatcher_a, transfer=run, status="arrived")


def test_a_case_arriving_at_the_hospital_is_placed_there(grouped, dispatcher_a):
    from jingkong.core import clock
    from jingkong.isolation import transfers
    from jingkong.tracing.models import Case

    _plan(dispatcher_a)
    run = _run_of("hospital")
    with clock.frozen(NOW + dt.timedelta(minutes=30)):
        for status in ("dispatched", "picked_up", "arrived"):
            transfers.transfer_status(actor=dispatcher_a, transfer=run, status=status)
    assert Case.objects.get(person=grouped.case_person).current_place == grouped.hospital.name


def test_arrival_needs_the_pickup_first_and_times_cannot_be_in_the_future(grouped, dispatcher_a):
    from jingkong.core import clock
    from jingkong.core.exceptions import Conflict, ValidationFailed
    from jingkong.isolation import transfers
    from jingkong.isolation.models import TransferStop

    _plan(dispatcher_a)
    run = _run_of("hospital")
    with clock.frozen(NOW + dt.timedelta(minutes=1)):
        transfers.transfer_status(actor=dispatcher_a, transfer=run, status="dispatched")
        drop = TransferStop.objects.get(transfer=run, kind="dropoff")
        with pytest.raises(Conflict):
            transfers.transfer_status(actor=dispatcher_a, transfer=run, status="arrived", stop_id=drop.pk)
        with pytest.raises(ValidationFailed):
            transfers.transfer_status(actor=dispatcher_a, transfer=run, status="picked_up",
                                      at=NOW + dt.timedelta(hours=2))
        with pytest.raises(ValidationFailed):
            transfers.transfer_status(actor=dispatcher_a, transfer=run, status="picked_up", stop_id=drop.pk)


def test_edits_reorder_move_and_cancel(grouped, dispatcher_a):
    from jingkong.access.guard import scope_of
    from jingkong.core.exceptions import ValidationFailed
    from jingkong.isolation import transfers
    from jingkong.isolation.models import Transfer, TransferBatch, TransferStop

    _plan(dispatcher_a)
    scope = scope_of(dispatcher_a)
    run = TransferStop.objects.filter(batch__needs_accessible=False, batch__destination_type="central").first().transfer
    stops = list(TransferStop.objects.filter(transfer=run).order_by("seq"))
    # reversed order: a drop-off before its pickup
    with pytest.raises(ValidationFailed, match="drop-off before"):
        transfers.transfer_reorder(actor=dispatcher_a, transfer=run, stop_ids=[s.pk for s in reversed(stops)])
    with pytest.raises(ValidationFailed):
        transfers.transfer_reorder(actor=dispatcher_a, transfer=run, stop_ids=[stops[0].pk])
    # over capacity: the 3-person household does not fit a 2-seat car; a 3-seat one takes it (a new run)
    batch = TransferBatch.objects.get(size=3)
    holder = TransferStop.objects.get(batch=batch, kind="pickup").transfer
    tiny = grouped.vehicle("V3", seats=2)
    with pytest.raises(ValidationFailed, match="seats"):
        transfers.batch_move(actor=dispatcher_a, scope=scope, transfer=holder, batch_id=batch.pk,
                             to_vehicle_id=tiny.pk)
    assert not Transfer.objects.filter(vehicle=tiny).exists()  # the refused move left nothing behind
    spare = grouped.vehicle("V4", seats=3)
    target = transfers.batch_move(actor=dispatcher_a, scope=scope, transfer=holder, batch_id=batch.pk,
                                  to_vehicle_id=spare.pk)
    assert target.vehicle_id == spare.pk
    assert list(TransferStop.objects.filter(transfer=target).values_list("seq", "kind", "batch_id")) == [
        (1, "pickup", batch.pk), (2, "dropoff", batch.pk)]
    assert target.route and target.distance_m > 0
    assert not TransferStop.objects.filter(transfer=holder, batch=batch).exists()
    holder.refresh_from_db()
    cancelled = transfers.transfer_cancel(actor=dispatcher_a, transfer=holder, reason="车辆故障")
    assert cancelled.status == "cancelled"
    assert TransferBatch.objects.filter(status="waiting", wait_reason="cancelled_run").exists()


def test_a_wheelchair_batch_cannot_move_to_a_vehicle_without_access(grouped, dispatcher_a):
    from jingkong.access.guard import scope_of
    from jingkong.core.exceptions import ValidationFailed
    from jingkong.isolation import transfers
    from jingkong.isolation.models import TransferStop

    _plan(dispatcher_a)
    stop = TransferStop.objects.get(batch__needs_accessible=True, kind="pickup")
    with pytest.raises(ValidationFailed, match="accessible"):
        transfers.batch_move(actor=dispatcher_a, scope=scope_of(dispatcher_a), transfer=stop.transfer,
                             batch_id=stop.batch_id, to_vehicle_id=grouped.car.pk)


# --- API ---------------------------------------------------------------------------------------------------------------


def test_api_flow_group_plan_status_manifest_map(grouped, dispatcher_a, client_for):
    from jingkong.access.models import AuditLog
    from jingkong.core import clock

    c = client_for(dispatcher_a)
    with clock.frozen(NOW + dt.timedelta(minutes=1)):
        r = c.get("/api/v1/isolation/batches?status=waiting")
        assert r.status_code == 200 and r.json()["count"] == 3
        r = c.post("/api/v1/isolation/transfers/plan", {"time_limit_s": 2}, content_type="application/json")
        assert r.status_code == 200, r.content
        assert r.json()["batches_planned"] == 3
        runs = c.get("/api/v1/isolation/transfers").json()["items"]
        run = next(t for t in runs if t["vehicle"] == "V1")
        detail = c.get(f"/api/v1/isolation/transfers/{run['id']}").json()
        assert detail["stops"][0]["kind"] == "pickup" and detail["route"]["type"] == "LineString"
        manifest = c.get(f"/api/v1/isolation/transfers/{run['id']}/manifest").json()
        people = [p for s in manifest["stops"] for p in s["people"]]
        assert people and all("*" in p["id_masked"] for p in people)
        assert all(p["phone"].startswith("138") for p in people)
        assert AuditLog.objects.filter(action="person.list", detail__list="transfer manifest").exists()
        r = c.post(f"/api/v1/isolation/transfers/{run['id']}/status", {"status": "dispatched"},
                   content_type="application/json")
        assert r.status_code == 200 and r.json()["status"] == "dispatched"
        r = c.post(f"/api/v1/isolation/transfers/{run['id']}/status", {"status": "dispatched"},
                   content_type="application/json")
        assert r.status_code == 409
        geo = c.get("/api/v1/isolation/transfers/map").json()
        layers = {f["properties"]["layer"] for f in geo["features"]}
        assert {"route", "vehicle", "pickup", "facility"} <= layers
        assert not any("name" in f["properties"] and f["properties"]["layer"] != "facility" for f in geo["features"])
        page = client_for(dispatcher_a).get(f"/isolation/transfers/{run['id']}/manifest/")
        assert page.status_code == 200 and "户主" in page.content.decode()


def test_api_bad_input(grouped, dispatcher_a, client_for):
    c = client_for(dispatcher_a)
    _plan(dispatcher_a)
    run_id = c.get("/api/v1/isolation/transfers").json()["items"][0]["id"]
    post = lambda url, body: c.post(url, body, content_type="application/json")  # noqa: E731
    assert post(f"/api/v1/isolation/transfers/{run_id}/cancel", {"reason": "坏\x00"}).status_code == 422
    assert post(f"/api/v1/isolation/transfers/{run_id}/status", {"status": "teleported"}).status_code == 422
    assert post(f"/api/v1/isolation/transfers/{run_id}/status", {"status": "dispatched", "stop_id": 0}).status_code == 422
    assert post(f"/api/v1/isolation/transfers/{run_id}/reorder", {"stop_ids": [999999]}).status_code == 422
    assert post(f"/api/v1/isolation/transfers/{run_id}/move", {"batch_id": 999999, "to_vehicle_id": 1}).status_code == 404
    assert post("/api/v1/isolation/transfers/99999999/status", {"status": "dispatched"}).status_code == 404
    assert c.get(f"/api/v1/isolation/transfers/{2**70}").status_code in (404, 422)
    assert post("/api/v1/isolation/transfers/plan", {"vehicle_ids": [999999]}).status_code == 404
    assert post("/api/v1/isolation/transfers/plan", {"region": "33\x0002"}).status_code == 422
    assert post("/api/v1/isolation/vehicles", {"code": "V\x009", "plate": "x", "type": "bus", "seats": 5,
                                               "depot_lon": 121.8, "depot_lat": 29.9,
                                               "region_code": "330206002"}).status_code == 422
    assert post("/api/v1/isolation/vehicles", {"code": "V9", "plate": "x", "type": "bus", "seats": 500,
                                               "depot_lon": 121.8, "depot_lat": 29.9,
                                               "region_code": "330206002"}).status_code == 422
    assert post("/api/v1/isolation/vehicles", {"code": "V9", "plate": "x", "type": "bus", "seats": 5,
                                               "depot_lon": 29.9, "depot_lat": 121.8,
                                               "region_code": "330206002"}).status_code == 422


def test_vehicle_crud_and_scope(grouped, dispatcher_a, dispatcher_b, client_for):
    a, b = client_for(dispatcher_a), client_for(dispatcher_b)
    body = {"code": "V9", "plate": "浙B12345", "type": "bus", "seats": 30, "depot_lon": 121.8, "depot_lat": 29.9,
            "region_code": "330206002", "driver_phone": "13912345678"}
    r = a.post("/api/v1/isolation/vehicles", body, content_type="application/json")
    assert r.status_code == 201, r.content
    vid = r.json()["id"]
    assert a.post("/api/v1/isolation/vehicles", body, content_type="application/json").status_code == 409
    assert b.get(f"/api/v1/isolation/vehicles/{vid}").status_code == 404
    assert b.patch(f"/api/v1/isolation/vehicles/{vid}", {"seats": 3}, content_type="application/json").status_code == 404
    assert a.patch(f"/api/v1/isolation/vehicles/{vid}", {"seats": 20, "disinfection": "due"},
                   content_type="application/json").json()["seats"] == 20
    assert a.post("/api/v1/isolation/vehicles", {**body, "code": "V10", "region_code": "330206004"},
                  content_type="application/json").status_code == 404
    assert a.patch(f"/api/v1/isolation/vehicles/{vid}", {"region_code": "330206004"},
                   content_type="application/json").status_code == 404
    assert "V9" not in b.get("/api/v1/isolation/vehicles").content.decode()
    assert a.delete(f"/api/v1/isolation/vehicles/{vid}").status_code == 204
    # a vehicle with runs on record is kept (mark it unavailable)
    _plan(dispatcher_a)
    assert a.delete(f"/api/v1/isolation/vehicles/{grouped.van.pk}").status_code == 409


def test_scope_other_street_sees_and_touches_nothing(grouped, dispatcher_a, dispatcher_b, client_for):
    _plan(dispatcher_a)
    b = client_for(dispatcher_b)
    assert b.get("/api/v1/isolation/batches").json()["count"] == 0
    assert b.get("/api/v1/isolation/transfers").json()["count"] == 0
    run_id = client_for(dispatcher_a).get("/api/v1/isolation/transfers").json()["items"][0]["id"]
    assert b.get(f"/api/v1/isolation/transfers/{run_id}").status_code == 404
    assert b.post(f"/api/v1/isolation/transfers/{run_id}/status", {"status": "dispatched"},
                  content_type="application/json").status_code == 404
    assert b.post("/api/v1/isolation/transfers/plan", {"region": "330206002"},
                  content_type="application/json").status_code == 404
    assert _plan(dispatcher_b)["transfers"] == 0


def test_pages_render(grouped, dispatcher_a, client_for, commander):
    _plan(dispatcher_a)
    c = client_for(dispatcher_a)
    for url in ("/isolation/", "/isolation/transfers/", "/isolation/transfers/map/"):
        r = c.get(url)
        assert r.status_code == 200, url
    run_id = c.get("/api/v1/isolation/transfers").json()["items"][0]["id"]
    assert c.get(f"/isolation/transfers/{run_id}/").status_code == 200
    r = c.post(f"/isolation/transfers/{run_id}/status/", {"status": "dispatched"})
    assert r.status_code == 302
    from jingkong.isolation.models import Transfer

    assert Transfer.objects.get(pk=run_id).status == "dispatched"
