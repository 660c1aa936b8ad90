"""Isolation orders end to end on the database: arrival → room and order, tests read from the testing feature,
release to the home phase, a positive in quarantine, symptom checks, the reserve forecast and its alert."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction

from jingkong.core import clock
from jingkong.core.events import emit_many
from jingkong.core.models import DomainEvent
from jingkong.isolation import orders, reserve
from jingkong.isolation.models import IsolationOrder, Room, RoomStay
from jingkong.isolation.tests import facilities_helpers as h
from jingkong.isolation.tests.facilities_helpers import at, fresh_policy_cache  # noqa: F401 - autouse fixture

pytestmark = pytest.mark.django_db
D = dt.date


def arrive(people, facility, when):
    with clock.frozen(when), transaction.atomic():
        emit_many([{"type": "isolation.arrived", "subject_type": "people.person", "subject_id": p.pk,
                    "region_code": p.grid.code, "at": when, "payload": {"transfer_id": None, "facility_id": facility.pk}}
                   for p in people])


def events(type_):
    return list(DomainEvent.objects.filter(type=type_).order_by("pk"))


def test_arrival_gives_a_room_and_a_central_order_counted_from_the_last_exposure_2021(regions):
    h.activate("cn-8th-2021")
    f = h.facility(regions)
    p = h.person(regions)
    h.contact(p, last_exposure=at(1, 20))
    arrive([p], f, at(3, 10))
    order = IsolationOrder.objects.get(person=p)
    assert (order.mode, order.status, order.tier) == ("central", "active", "close")
    assert (order.counted_from, order.starts_on, order.ends_on) == (D(2022, 1, 1), D(2022, 1, 3), D(2022, 1, 15))
    assert order.test_days == [2, 4, 7, 14]  # day 1 was before the arrival: an entry test on day 2
    assert RoomStay.objects.get(person=p, checked_out_at__isnull=True).room.facility == f
    started = events("isolation.order_started")
    assert [e.payload["order_id"] for e in started] == [order.pk] and started[0].payload["ends_on"] == "2022-01-15"


def test_release_2021_needs_double_sampling_then_starts_home_monitoring_and_frees_the_room(regions, commander):
    h.activate("cn-8th-2021")
    f = h.facility(regions)
    p = h.person(regions)
    h.contact(p, last_exposure=at(1, 8))
    arrive([p], f, at(2, 9))
    order = IsolationOrder.objects.get(person=p)
    for day in (2, 5, 8, 15):
        h.sample(p, at(day, 10))
    release_at = at(15, 20)
    report = orders.orders_release([order], actor=commander, at=release_at)
    assert report.blocked == {order.pk: ["double_sampling_missing"]}
    h.sample(p, at(15, 11))  # the second sample of 双采双检
    pending = h.sample(p, at(15, 12), outcome="")
    assert orders.orders_release([order], actor=commander, at=release_at).blocked == {order.pk: ["result_pending"]}
    pending.tube.outcome = "negative"
    pending.tube.save()
    report = orders.orders_release([order], actor=commander, at=release_at)
    assert report.released == [order.pk]
    order.refresh_from_db()
    home = IsolationOrder.objects.get(previous=order)
    assert (order.status, home.mode, home.status) == ("released", "home_monitoring", "active")
    assert (home.starts_on, home.ends_on, home.test_days) == (D(2022, 1, 15), D(2022, 1, 22), [2, 7])
    released = events("isolation.order_released")[0]
    assert released.payload == {"order_id": order.pk, "next_order_id": home.pk, "mode": "central"}
    stay = RoomStay.objects.get(person=p)
    assert stay.checked_out_at == release_at and stay.room.state == "cleaning"


def test_pooled_samples_do_not_count_and_a_pool_is_not_a_quarantine_test(regions, commander):
    h.activate("cn-9th-2022")
    f = h.facility(regions)
    p = h.person(regions)
    h.contact(p, last_exposure=at(1, 8))
    arrive([p], f, at(2, 9))
    order = IsolationOrder.objects.get(person=p)
    assert order.ends_on == D(2022, 1, 8) and order.test_days == [1, 2, 3, 5, 7]
    for day in (2, 3, 4, 6):
        h.sample(p, at(day, 10))
    h.sample(p, at(8, 10), capacity=10)
    assert orders.orders_release([order], actor=commander, at=at(8, 20)).blocked == {order.pk: ["test_missing"]}
    h.sample(p, at(8, 11))
    assert orders.orders_release([order], actor=commander, at=at(8, 20)).released == [order.pk]
    assert IsolationOrder.objects.get(previous=order).ends_on == D(2022, 1, 11)


def test_a_positive_in_quarantine_converts_the_order_and_extends_room_and_household_mates(regions):
    h.activate("cn-8th-2021")
    f = h.facility(regions, family=1)
    hh = h.household(regions)
    sick, mate = h.person(regions, household=hh), h.person(regions, household=hh)
    at_home = h.person(regions, household=hh)
    other = h.person(regions)
    for p in (sick, mate, at_home, other):
        h.contact(p, last_exposure=at(1, 8))
    arrive([sick, mate, other], f, at(2, 9))
    assert RoomStay.objects.get(person=sick).room_id == RoomStay.objects.get(person=mate).room_id
    with clock.frozen(at(2, 12)):
        orders.orders_start([orders.OrderRequest(person_id=at_home.pk, mode="home_quarantine")])
    with clock.frozen(at(6, 18)), transaction.atomic():
        emit_many([{"type": "testing.individual_positive", "subject_type": "people.person", "subject_id": sick.pk,
                    "region_code": sick.grid.code, "at": at(6, 18),
                    "payload": {"sampled_at": at(6, 9).isoformat(), "resulted_at": at(6, 18).isoformat()}}])
    assert IsolationOrder.objects.get(person=sick).status == "converted"
    assert [e.payload["order_id"] for e in events("isolation.order_converted")] == [
        IsolationOrder.objects.get(person=sick).pk]
    assert RoomStay.objects.get(person=sick).checked_out_at is not None
    for p in (mate, at_home):
        o = IsolationOrder.objects.get(person=p, status="active")
        assert o.ends_on == D(2022, 1, 20), p  # counted again from 6 January: 14 days
        assert o.extended_days == 5
        assert 2 in o.test_days or 1 in o.test_days  # tests already due keep their days
        assert {D(2022, 1, 7), D(2022, 1, 10), D(2022, 1, 13), D(2022, 1, 20)} <= {
            o.counted_from + dt.timedelta(days=d) for d in o.test_days}
    assert IsolationOrder.objects.get(person=other).ends_on == D(2022, 1, 15)
    assert Room.objects.get(pk=RoomStay.objects.get(person=mate).room_id).state == "occupied"
    assert len(events("isolation.order_extended")) == 2


def test_symptom_checks_flag_fever_by_the_profile_threshold_and_refuse_bad_days(regions, commander):
    from jingkong.core.exceptions import ValidationFailed

    h.activate("cn-9th-2022")
    p = h.person(regions)
    with clock.frozen(at(3, 9)):
        order = orders.orders_start([orders.OrderRequest(person_id=p.pk, tier="secondary",
                                                         last_exposure=D(2022, 1, 2))]).orders[0]
    assert order.mode == "home_quarantine"
    _check, flagged = orders.symptom_check_record(actor=commander, order=order, temperature="37.2", at=at(3, 10))
    assert flagged is False
    _check, flagged = orders.symptom_check_record(actor=commander, order=order, temperature=37.3, at=at(3, 11))
    assert flagged is True and order.checks.count() == 1  # the day's check corrected, not doubled
    assert events("isolation.symptoms_flagged")[0].payload["temperature"] == "37.3"
    with pytest.raises(ValidationFailed):
        orders.symptom_check_record(actor=commander, order=order, day=6, at=at(3, 11))  # still to come
    with pytest.raises(ValidationFailed):
        orders.symptom_check_record(actor=commander, order=order, symptoms=["bogus"], at=at(3, 11))
    with pytest.raises(ValidationFailed):
        orders.symptom_check_record(actor=commander, order=order, temperature="hot", at=at(3, 11))


def test_a_home_order_replaced_by_a_central_one_keeps_its_count(regions):
    h.activate("cn-8th-2021")
    p = h.person(regions)
    h.contact(p, last_exposure=at(1, 8))
    with clock.frozen(at(2, 9)):
        first = orders.orders_start([orders.OrderRequest(person_id=p.pk, mode="home_quarantine")]).orders[0]
        again = orders.orders_start([orders.OrderRequest(person_id=p.pk, mode="home_quarantine")])
    assert again.skipped == {p.pk: "already_active"}
    f = h.facility(regions)
    arrive([p], f, at(4, 9))
    first.refresh_from_db()
    central = IsolationOrder.objects.get(person=p, status="active")
    assert first.status == "cancelled" and central.mode == "central"
    assert (central.counted_from, central.ends_on) == (first.counted_from, first.ends_on)


def test_reserve_forecast_and_one_alert_a_day(regions, commander):
    h.activate("cn-8th-2021")
    f = h.facility(regions, floors=(1,), per_floor=6)
    people = [h.person(regions) for _ in range(4)]
    for p in people:
        h.contact(p, last_exposure=at(1, 8))
    arrive(people[:2], f, at(2, 9))
    arrive(people[2:], f, at(3, 9))
    cap = reserve.facility_capacity([f], at=at(3, 12))[0]
    assert (cap.free_rooms, cap.free_beds, cap.people) == (2, 2, 4)
    assert cap.arrivals_per_day == pytest.approx(4 / 3, abs=0.01)  # 4 arrivals over the 3-day window
    assert cap.days_left == 1.5 and cap.alert is True  # under the 3-day threshold
    alerts = events("isolation.capacity_alert")
    assert {e.subject_type for e in alerts} == {"isolation.facility", "geo.region"}
    assert len(alerts) == 2  # the second arrival the same day did not alert again
    district = reserve.district_capacity("330206", facilities=[f], at=at(3, 12))
    assert district.target_beds == 4 and district.below_target is True  # 3 days × 4/3 per day


def test_cli_release_due_and_reserve(regions, capsys):
    from django.core.management import call_command

    h.activate("cn-9th-2022")
    f = h.facility(regions, code="CLI-HOTEL")
    p = h.person(regions)
    h.contact(p, last_exposure=at(1, 8))
    arrive([p], f, at(2, 9))
    for day in (2, 3, 4, 6, 8):
        h.sample(p, at(day, 10))
    with clock.frozen(at(8, 20)):
        call_command("orders_release_due", facility="CLI-HOTEL")
        call_command("facilities_reserve", alert=True)
    out = capsys.readouterr().out
    assert "1 orders due: 1 released, 0 blocked" in out and "330206" in out
    assert IsolationOrder.objects.get(person=p, previous__isnull=True).status == "released"


def test_grouping_for_a_home_destination_orders_home_quarantine(regions):
    from jingkong.isolation.models import TransferBatch

    h.activate("cn-9th-2022")
    p, q = h.person(regions), h.person(regions)
    h.contact(p, tier="secondary", last_exposure=at(1, 8))
    h.contact(q, tier="close", last_exposure=at(1, 8))
    now = at(2, 9)
    home = TransferBatch.objects.create(ref="TB-H", region_code=p.grid.code, pickup_lon=121.8, pickup_lat=29.9,
                                        destination_type="home", created_at=now, updated_at=now)
    central = TransferBatch.objects.create(ref="TB-C", region_code=q.grid.code, pickup_lon=121.8, pickup_lat=29.9,
                                           destination_type="central", created_at=now, updated_at=now)
    with clock.frozen(now), transaction.atomic():
        emit_many([{"type": "isolation.grouped", "subject_type": "people.person", "subject_id": person.pk,
                    "region_code": person.grid.code, "payload": {"batch_id": batch.pk, "role": role}}
                   for person, batch, role in ((p, home, "secondary"), (q, central, "close"))])
    order = IsolationOrder.objects.get(person=p)
    assert (order.mode, order.tier, order.ends_on) == ("home_quarantine", "secondary", D(2022, 1, 8))
    assert not IsolationOrder.objects.filter(person=q).exists()  # central: the order starts on arrival
