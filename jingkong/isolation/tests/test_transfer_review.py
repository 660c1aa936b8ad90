"""Regressions from the transfer review: taking a person out of a batch, stranded handed-over contacts, tiers mixed by a
dispatcher's move, handover times running backwards, page input that crashed, a background plan of an account without
a region, reordering on the page."""

from __future__ import annotations

import datetime as dt

import pytest

from jingkong.isolation.tests import test_transfer as base
from jingkong.isolation.tests.transfer_world import NOW


@pytest.fixture(autouse=True)
def _messages_in_english():
    """Service errors are asserted by their English wording (the default UI language is zh-Hans)."""
    from django.utils import translation

    with translation.override("en"):
        yield

pytestmark = pytest.mark.django_db
world, grouped, dispatcher_a, dispatcher_b = base.world, base.grouped, base.dispatcher_a, base.dispatcher_b  # fixtures
_plan, _run_of = base._plan, base._run_of


def _household_batch():
    from jingkong.isolation.models import TransferBatch

    return TransferBatch.objects.get(size=3)


# --- taking a person out of a batch -----------------------------------------------------------------------------------


def test_member_remove_shrinks_the_batch_frees_the_seat_and_the_person_waits_again(grouped, dispatcher_a):
    from jingkong.access.guard import scope_of
    from jingkong.access.models import AuditLog
    from jingkong.core.models import DomainEvent
    from jingkong.isolation import grouping, transfers
    from jingkong.isolation.models import BatchMember
    from jingkong.isolation.transfers import facility_free

    _plan(dispatcher_a)
    batch = _household_batch()
    before = facility_free([grouped.hotel.pk])[grouped.hotel.pk]
    gone = BatchMember.objects.filter(batch=batch).order_by("person_id").first()
    out = transfers.member_remove(actor=dispatcher_a, batch=batch, person_id=gone.person_id, reason="不在家")
    assert out.size == 2 and out.status == "planned"
    gone.refresh_from_db()
    assert gone.removed_at == NOW
    assert facility_free([grouped.hotel.pk])[grouped.hotel.pk] == before + 1  # the bed is free again
    ev = DomainEvent.objects.get(type="isolation.member_removed")
    assert int(ev.subject_id) == gone.person_id and ev.payload["batch_id"] == batch.pk
    assert AuditLog.objects.filter(action="transfer.member_remove", object_id=str(gone.person_id)).exists()
    # the driver's manifest no longer lists them
    from jingkong.isolation import selectors_transfer as sel

    run = _run_of("central")
    listed = {m.person_id for r in sel.manifest(run) for m in r["members"]}
    assert gone.person_id not in listed
    # nobody is stranded: the next grouping run takes the person again (their contact is handed over already)
    again = grouping.group_waiting(actor=dispatcher_a, scope=scope_of(dispatcher_a))
    assert again["people"] == 1
    assert BatchMember.objects.filter(person_id=gone.person_id, removed_at__isnull=True).exclude(batch=batch).exists()


def test_member_remove_refuses_people_on_board_and_empties_cancel_the_batch(grouped, dispatcher_a):
    from jingkong.core import clock
    from jingkong.core.exceptions import Conflict, NotFound, ValidationFailed
    from jingkong.isolation import transfers
    from jingkong.isolation.models import BatchMember, TransferStop

    _plan(dispatcher_a)
    batch = _household_batch()
    run = TransferStop.objects.get(batch=batch, kind="pickup").transfer
    others = list(TransferStop.objects.filter(transfer=run).exclude(batch=batch).values_list("batch_id", flat=True))
    ids = list(BatchMember.objects.filter(batch=batch).values_list("person_id", flat=True))
    with pytest.raises(ValidationFailed):
        transfers.member_remove(actor=dispatcher_a, batch=batch, person_id=ids[0], reason="  ")
    with pytest.raises(NotFound):
        transfers.member_remove(actor=dispatcher_a, batch=batch, person_id=grouped.case_person.pk, reason="x")
    for pid in ids:
        batch = transfers.member_remove(actor=dispatcher_a, batch=batch, person_id=pid, reason="已送医")
    assert batch.status == "cancelled" and batch.size == 0
    assert not TransferStop.objects.filter(batch=batch).exists()  # it left the run
    left = list(TransferStop.objects.filter(transfer=run).order_by("seq").values_list("seq", "batch_id"))
    assert [s for s, _b in left] == list(range(1, len(left) + 1)) and {b for _s, b in left} == set(others)
    # on board: refused
    case_run = _run_of("hospital")
    with clock.frozen(NOW + dt.timedelta(minutes=5)):
        transfers.transfer_status(actor=dispatcher_a, transfer=case_run, status="dispatched")
        transfers.transfer_status(actor=dispatcher_a, transfer=case_run, status="picked_up")
        case_batch = TransferStop.objects.get(transfer=case_run, kind="pickup").batch
        with pytest.raises(Conflict):
            transfers.member_remove(actor=dispatcher_a, batch=case_batch, person_id=grouped.case_person.pk,
                                    reason="x")


def test_member_remove_api_and_scope(grouped, dispatcher_a, dispatcher_b, client_for):
    from jingkong.isolation.models import BatchMember

    _plan(dispatcher_a)
    batch = _household_batch()
    pid = BatchMember.objects.filter(batch=batch).values_list("person_id", flat=True).first()
    url = f"/api/v1/isolation/batches/{batch.pk}/remove"
    a, b = client_for(dispatcher_a), client_for(dispatcher_b)
    post = lambda c, body: c.post(url, body, content_type="application/json")  # noqa: E731
    assert post(b, {"person_id": pid, "reason": "x"}).status_code == 404
    assert post(a, {"person_id": pid, "reason": "坏\x00"}).status_code == 422
    assert post(a, {"person_id": pid}).status_code == 422
    assert post(a, {"person_id": 2**40, "reason": "x"}).status_code == 404
    r = post(a, {"person_id": pid, "reason": "不在家"})
    assert r.status_code == 200, r.content
    assert r.json()["size"] == 2
    assert [m["removed_at"] is not None for m in r.json()["members"]].count(True) == 1
    assert post(a, {"person_id": pid, "reason": "again"}).status_code == 404


def test_member_remove_from_the_manifest_page(grouped, dispatcher_a, client_for):
    from jingkong.isolation.models import BatchMember

    _plan(dispatcher_a)
    batch = _household_batch()
    run = _run_of("central")
    pid = BatchMember.objects.filter(batch=batch).values_list("person_id", flat=True).first()
    c = client_for(dispatcher_a)
    page = c.get(f"/isolation/transfers/{run.pk}/manifest/").content.decode()
    assert f'name="person_id" value="{pid}"' in page
    r = c.post(f"/isolation/transfers/{run.pk}/remove/", {"batch_id": batch.pk, "person_id": pid, "reason": "不在家"})
    assert r.status_code == 302
    assert BatchMember.objects.get(batch=batch, person_id=pid).removed_at is not None
    for bad in ({"batch_id": "²", "person_id": pid, "reason": "x"}, {"batch_id": batch.pk, "person_id": "x"}):
        assert c.post(f"/isolation/transfers/{run.pk}/remove/", bad).status_code == 302


# --- grouping: nobody handed over is stranded ---------------------------------------------------------------------------


def test_a_contact_handed_over_to_grouping_but_in_no_batch_is_grouped(world, dispatcher_a):
    """Regression: only "located" contacts were grouped; a contact a tracer had handed over to grouping (or one out of
    a cancelled batch) waited for ever."""
    from jingkong.access.guard import scope_of
    from jingkong.isolation import grouping
    from jingkong.isolation.models import BatchMember

    c = world.contact(world.person("已移交"), status="handed_over")
    c.handed_to = "grouping"
    c.save(update_fields=["handed_to"])
    assert grouping.group_waiting(actor=dispatcher_a, scope=scope_of(dispatcher_a))["people"] == 1
    assert BatchMember.objects.filter(person_id=c.person_id).exists()
    assert grouping.group_waiting(actor=dispatcher_a, scope=scope_of(dispatcher_a))["people"] == 0


# --- edits and status ---------------------------------------------------------------------------------------------------


def test_a_move_never_puts_two_tiers_on_one_run(grouped, dispatcher_a):
    """Regression: the planner keeps tiers apart but the dispatcher's move put a case into the close contacts'
    vehicle (6 seats, 5 taken: seats alone allowed it)."""
    from jingkong.access.guard import scope_of
    from jingkong.core.exceptions import ValidationFailed
    from jingkong.isolation import transfers
    from jingkong.isolation.models import TransferStop

    _plan(dispatcher_a)
    case_run = _run_of("hospital")
    close_run = _run_of("central")
    assert case_run.vehicle_id != close_run.vehicle_id
    batch_id = TransferStop.objects.get(transfer=case_run, kind="pickup").batch_id
    with pytest.raises(ValidationFailed, match="tier"):
        transfers.batch_move(actor=dispatcher_a, scope=scope_of(dispatcher_a), transfer=case_run, batch_id=batch_id,
                             to_vehicle_id=close_run.vehicle_id)
    assert TransferStop.objects.filter(transfer=case_run, batch_id=batch_id).count() == 2


def test_handover_times_never_run_backwards(grouped, dispatcher_a):
    from jingkong.core import clock
    from jingkong.core.exceptions import ValidationFailed
    from jingkong.isolation import transfers
    from jingkong.isolation.models import TransferStop

    _plan(dispatcher_a)
    run = _run_of("hospital")
    t1 = NOW + dt.timedelta(minutes=30)
    with clock.frozen(NOW + dt.timedelta(hours=2)):
        with pytest.raises(ValidationFailed):  # before the run was planned
            transfers.transfer_status(actor=dispatcher_a, transfer=run, status="dispatched",
                                      at=NOW - dt.timedelta(hours=1))
        transfers.transfer_status(actor=dispatcher_a, transfer=run, status="dispatched", at=t1)
        with pytest.raises(ValidationFailed):
            transfers.transfer_status(actor=dispatcher_a, transfer=run, status="picked_up",
                                      at=t1 - dt.timedelta(minutes=10))
        transfers.transfer_status(actor=dispatcher_a, transfer=run, status="picked_up", at=t1 + dt.timedelta(minutes=9))
        with pytest.raises(ValidationFailed):
            transfers.transfer_status(actor=dispatcher_a, transfer=run, status="arrived",
                                      at=t1 + dt.timedelta(minutes=5))
        transfers.transfer_status(actor=dispatcher_a, transfer=run, status="arrived", at=t1 + dt.timedelta(minutes=40))
    pickup, drop = TransferStop.objects.filter(transfer=run).order_by("seq")
    assert pickup.done_at == t1 + dt.timedelta(minutes=9) and drop.done_at == t1 + dt.timedelta(minutes=40)


def test_page_ids_with_non_ascii_digits_are_refused_not_a_500(grouped, dispatcher_a, client_for):
    """Regression: "²".isdigit() is true and int("²") raises: the status and move forms answered 500."""
    _plan(dispatcher_a)
    run = _run_of("central")
    c = client_for(dispatcher_a)
    assert c.post(f"/isolation/transfers/{run.pk}/status/", {"status": "dispatched", "stop_id": "²"}).status_code == 302
    assert c.post(f"/isolation/transfers/{run.pk}/move/", {"batch_id": "³", "to_vehicle_id": "1"}).status_code == 302
    assert c.post(f"/isolation/transfers/{run.pk}/reorder/", {"stop_id": "¹", "direction": "up"}).status_code == 302


def test_reorder_on_the_page(grouped, dispatcher_a, client_for):
    from jingkong.isolation.models import TransferStop

    _plan(dispatcher_a)
    run = _run_of("central")
    stops = list(TransferStop.objects.filter(transfer=run).order_by("seq"))
    c = client_for(dispatcher_a)
    page = c.get(f"/isolation/transfers/{run.pk}/").content.decode()
    assert f"/isolation/transfers/{run.pk}/reorder/" in page
    pickups = [s for s in stops if s.kind == "pickup"]
    if len(pickups) >= 2:  # two pickups in a row: swapping them is valid
        r = c.post(f"/isolation/transfers/{run.pk}/reorder/", {"stop_id": pickups[1].pk, "direction": "up"})
        assert r.status_code == 302
        order = list(TransferStop.objects.filter(transfer=run).order_by("seq").values_list("batch_id", "kind"))
        assert order[0] == (pickups[1].batch_id, "pickup")
    # the first pickup cannot go below its own drop-off: refused with a message, nothing changed
    first = TransferStop.objects.filter(transfer=run).order_by("seq").first()
    last = TransferStop.objects.filter(transfer=run).order_by("-seq").first()
    before = list(TransferStop.objects.filter(transfer=run).order_by("seq").values_list("batch_id", "kind"))
    r = c.post(f"/isolation/transfers/{run.pk}/reorder/", {"stop_id": last.pk, "direction": "up"})
    r = c.post(f"/isolation/transfers/{run.pk}/reorder/", {"stop_id": first.pk, "direction": "up"}, follow=True)
    assert r.status_code == 200
    after = list(TransferStop.objects.filter(transfer=run).order_by("seq").values_list("batch_id", "kind"))
    assert after[0] == before[0]


def test_an_account_without_a_region_plans_nothing_even_in_the_background(grouped, client_for):
    """Regression: the background plan stored ``scope.prefix or ""`` — an account without a region (no scope at all)
    queued a job planning the whole platform."""
    from jingkong.conftest import make_user
    from jingkong.core.models import Job

    nobody = make_user("dispatcher_nowhere", "transfer_dispatcher", None)
    c = client_for(nobody)
    r = c.post("/api/v1/isolation/transfers/plan", {"background": True}, content_type="application/json")
    assert r.status_code == 404
    assert not Job.objects.exists()


def test_a_vehicle_is_disinfected_between_runs(grouped, dispatcher_a, client_for):
    """Regression: the disinfection state was shown but never enforced: a van back from carrying a case could be
    planned straight away for close contacts."""
    from jingkong.access.guard import scope_of
    from jingkong.core import clock
    from jingkong.core.exceptions import Conflict
    from jingkong.isolation import grouping, transfers
    from jingkong.isolation.models import TransferStop, Vehicle

    _plan(dispatcher_a)
    run = _run_of("hospital")
    with clock.frozen(NOW + dt.timedelta(minutes=30)):
        for status in ("dispatched", "picked_up", "arrived"):
            transfers.transfer_status(actor=dispatcher_a, transfer=run, status=status)
    vehicle = Vehicle.objects.get(pk=run.vehicle_id)
    assert vehicle.disinfection == "due"
    # a new close contact waits: the due vehicle is not planned for them, nor can a batch be moved onto it
    grouped.contact(grouped.person("新密接", building="B9"))
    with clock.frozen(NOW + dt.timedelta(minutes=40)):
        grouping.group_waiting(actor=dispatcher_a, scope=scope_of(dispatcher_a))
        _plan(dispatcher_a)
        assert not TransferStop.objects.filter(transfer__vehicle=vehicle).exclude(transfer=run).exists()
        other = _run_of("central")
        batch_id = TransferStop.objects.filter(transfer=other, kind="pickup").values_list("batch_id", flat=True)[0]
        with pytest.raises(Conflict, match="disinfected"):
            transfers.batch_move(actor=dispatcher_a, scope=scope_of(dispatcher_a), transfer=other, batch_id=batch_id,
                                 to_vehicle_id=vehicle.pk)
    r = client_for(dispatcher_a).patch(f"/api/v1/isolation/vehicles/{vehicle.pk}", {"disinfection": "clean"},
                                       content_type="application/json")
    assert r.status_code == 200 and r.json()["disinfection"] == "clean"


def test_member_remove_on_a_run_under_way_keeps_the_other_stops_times(grouped, dispatcher_a):
    from jingkong.core import clock
    from jingkong.isolation import transfers
    from jingkong.isolation.models import BatchMember, TransferStop

    _plan(dispatcher_a)
    run = _run_of("central")
    batches = list(TransferStop.objects.filter(transfer=run, kind="pickup").order_by("seq")
                   .values_list("batch_id", flat=True))
    assert len(batches) == 2
    keep, drop = batches
    with clock.frozen(NOW + dt.timedelta(minutes=30)):
        transfers.transfer_status(actor=dispatcher_a, transfer=run, status="dispatched")
        first = TransferStop.objects.get(transfer=run, batch_id=keep, kind="pickup")
        transfers.transfer_status(actor=dispatcher_a, transfer=run, status="picked_up", stop_id=first.pk)
        batch = first.batch.__class__.objects.get(pk=drop)
        for pid in BatchMember.objects.filter(batch_id=drop).values_list("person_id", flat=True):
            batch = transfers.member_remove(actor=dispatcher_a, batch=batch, person_id=pid, reason="不在家")
        assert batch.status == "cancelled"
        assert not TransferStop.objects.filter(transfer=run, batch_id=drop).exists()
        first.refresh_from_db()
        assert first.done_at == NOW + dt.timedelta(minutes=30)  # the handover time survived
        run.refresh_from_db()
        assert run.status == "picked_up"
        transfers.transfer_status(actor=dispatcher_a, transfer=run, status="arrived")
        run.refresh_from_db()
        assert run.status == "arrived" and run.vehicle.disinfection == "due"
