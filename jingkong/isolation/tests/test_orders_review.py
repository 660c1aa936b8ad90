"""Review regressions of the isolation orders: what the health code makes of a release, day counting, races."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction

from jingkong.core import clock
from jingkong.core.events import emit_many
from jingkong.isolation import orders
from jingkong.isolation.models import IsolationOrder
from jingkong.isolation.tests import facilities_helpers as h
from jingkong.isolation.tests.facilities_helpers import at, fresh_policy_cache  # noqa: F401 - autouse fixture

pytestmark = pytest.mark.django_db
D = dt.date


def arrive(people, facility, when):
    with clock.frozen(when), transaction.atomic():
        emit_many([{"type": "isolation.arrived", "subject_type": "people.person", "subject_id": p.pk,
                    "region_code": p.grid.code, "at": when, "payload": {"transfer_id": None, "facility_id": facility.pk}}
                   for p in people])


def code_of(p):
    from jingkong.codes.models import HealthCode

    return HealthCode.objects.filter(person_id=p.pk).values_list("colour", "rule_id").first()


@pytest.mark.parametrize(("profile", "tests", "release_day"), [
    ("cn-8th-2021", (2, 5, 8, 15, 15), 15),  # 14 days central (双采双检 on day 14), then 7 days home monitoring
    ("cn-9th-2022", (2, 3, 4, 6, 8), 8),  # 7 days central, then 3 days home
])
def test_releasing_a_central_order_turns_the_code_from_red_to_yellow_at_once(regions, commander, profile, tests,
                                                                            release_day):
    h.activate(profile)
    f = h.facility(regions)
    p = h.person(regions)
    h.contact(p, last_exposure=at(1, 8))
    arrive([p], f, at(2, 9))
    assert code_of(p)[0] == "red"
    order = IsolationOrder.objects.get(person=p)
    for i, day in enumerate(tests):
        h.sample(p, at(day, 10 + i))
    release_at = at(release_day, 16)
    with clock.frozen(release_at):
        report = orders.orders_release([order], actor=commander, at=release_at)
    assert report.released == [order.pk]
    home = IsolationOrder.objects.get(previous=order)
    assert home.mode == "home_monitoring"
    assert code_of(p)[0] == "yellow", code_of(p)  # on the day of the release, not only from the next day
    assert home.starts_on == local(release_at)


def local(when):
    return orders.local_date(when)


API = "/api/v1/isolation"


def post(client, url, body):
    return client.post(url, data=body, content_type="application/json")


@pytest.mark.parametrize(("field", "value"), [
    ("start", "0001-01-01"), ("start", "9999-12-31"), ("last_exposure", "0001-01-01"),
    ("last_exposure", "9999-12-31"), ("start", "2031-01-01"), ("last_exposure", "2022-01-05"),
])
def test_order_dates_out_of_any_sense_are_a_422_never_a_500(regions, commander, client_for, field, value):
    h.activate("cn-9th-2022")
    p = h.person(regions)
    with clock.frozen(at(3, 10)):
        r = post(client_for(commander), f"{API}/orders", {"items": [{"person_id": p.pk, "mode": "home_quarantine",
                                                                      field: value}]})
    assert r.status_code == 422, r.content
    assert field in r.content.decode()
    assert not IsolationOrder.objects.filter(person=p).exists()


def test_the_home_phase_asks_for_symptom_checks_from_its_day_1(regions, commander):
    from jingkong.access.guard import scope_of
    from jingkong.isolation import selectors_facilities as sel

    h.activate("cn-9th-2022")
    f = h.facility(regions)
    p = h.person(regions)
    h.contact(p, last_exposure=at(1, 8))
    arrive([p], f, at(2, 9))
    order = IsolationOrder.objects.get(person=p)
    for i, day in enumerate((2, 3, 4, 6, 8)):
        h.sample(p, at(day, 10 + i))
    with clock.frozen(at(8, 16)):
        orders.orders_release([order], actor=commander, at=at(8, 16))
    home = IsolationOrder.objects.get(previous=order)
    qs = sel.order_list(scope=scope_of(commander), user=commander).filter(pk=home.pk)

    def listed(day):
        data = sel.worklist(qs, today=day)
        return ([e["day"] for e in data["checks_today"]], [e["days"] for e in data["checks_overdue"]])

    assert listed(D(2022, 1, 8)) == ([], [])  # the release day: checked in the centre that day
    assert listed(D(2022, 1, 9)) == ([1], [])
    assert listed(D(2022, 1, 10)) == ([2], [[1]])


def test_without_a_profile_in_force_the_reserve_makes_up_no_inflow_window(regions):
    from jingkong.isolation import facilities, reserve

    f = h.facility(regions, floors=(1,), per_floor=6)  # no profile activated
    people = [h.person(regions) for _ in range(3)]
    facilities.assign(facility=f, person_ids=[p.pk for p in people], check_in=True, at=at(2, 9), alert=False)
    cap = reserve.facility_capacity([f], at=at(2, 12))[0]
    assert (cap.free_rooms, cap.people) == (3, 3)
    assert (cap.arrivals_per_day, cap.days_left, cap.alert) == (0.0, None, False)


def test_a_contact_delivered_to_a_hospital_gets_no_hospital_order_and_a_case_at_a_hotel_none_either(regions):
    h.activate("cn-8th-2021")
    hospital = h.facility(regions, kind="designated_hospital")
    hotel = h.facility(regions)
    contact, case, patient = h.person(regions), h.person(regions), h.person(regions)
    h.contact(contact, last_exposure=at(1, 8))
    tiers = {contact.pk: "close", case.pk: "case", patient.pk: "case"}
    rooms, _ = orders.on_arrival(hospital, [contact.pk, patient.pk], tiers=tiers, at=at(2, 9))
    assert rooms.unassigned == {contact.pk: "contact_not_to_hospital"}
    assert not IsolationOrder.objects.filter(person=contact).exists()  # not a patient: the manager sends them on
    assert IsolationOrder.objects.get(person=patient).mode == "hospital"
    rooms, _ = orders.on_arrival(hotel, [case.pk, contact.pk], tiers=tiers, at=at(2, 10))
    assert rooms.unassigned == {case.pk: "case_needs_hospital"}
    assert not IsolationOrder.objects.filter(person=case).exists()
    assert IsolationOrder.objects.get(person=contact).mode == "central"


def test_a_central_order_replaced_by_home_quarantine_frees_the_room(regions, commander):
    from jingkong.isolation.models import RoomStay

    h.activate("cn-8th-2021")
    f = h.facility(regions)
    p = h.person(regions)
    h.contact(p, last_exposure=at(1, 8))
    arrive([p], f, at(2, 9))
    stay = RoomStay.objects.get(person=p)
    with clock.frozen(at(3, 9)):
        report = orders.orders_start([orders.OrderRequest(person_id=p.pk, mode="home_quarantine")], actor=commander)
    assert len(report.replaced) == 1
    home = IsolationOrder.objects.get(person=p, status="active")
    assert (home.mode, home.counted_from) == ("home_quarantine", D(2022, 1, 1))  # the same count goes on
    stay.refresh_from_db()
    assert stay.checked_out_at == at(3, 9)  # they went home: the room is not held for them
    assert stay.room.state == "cleaning"


def test_a_contact_taken_in_on_the_day_of_the_exposure_is_red_that_day(regions):
    h.activate("cn-9th-2022")
    f = h.facility(regions)
    p = h.person(regions)
    h.contact(p, last_exposure=at(2, 8))
    arrive([p], f, at(2, 20))  # 快转运: the same day
    order = IsolationOrder.objects.get(person=p)
    assert (order.counted_from, order.starts_on, order.ends_on) == (D(2022, 1, 2), D(2022, 1, 2), D(2022, 1, 9))
    assert order.test_days == [1, 2, 3, 5, 7]  # day 1 is the next day
    assert code_of(p)[0] == "red"


def test_a_patient_testing_positive_again_in_hospital_keeps_the_hospital_order_and_the_bed(regions):
    from jingkong.isolation.models import RoomStay

    h.activate("cn-8th-2021")
    hospital = h.facility(regions, kind="designated_hospital", family=1)
    hh = h.household(regions)
    patient, spouse = h.person(regions, household=hh), h.person(regions, household=hh)
    orders.on_arrival(hospital, [patient.pk, spouse.pk], tiers={patient.pk: "case", spouse.pk: "case"}, at=at(2, 9))
    order = IsolationOrder.objects.get(person=patient)
    ends = IsolationOrder.objects.get(person=spouse).ends_on
    with clock.frozen(at(6, 18)), transaction.atomic():  # the routine retest of a patient
        emit_many([{"type": "testing.individual_positive", "subject_type": "people.person", "subject_id": patient.pk,
                    "region_code": patient.grid.code, "at": at(6, 18), "payload": {}}])
    order.refresh_from_db()
    assert (order.status, order.mode) == ("active", "hospital")
    assert RoomStay.objects.filter(person=patient, checked_out_at__isnull=True).exists()
    assert IsolationOrder.objects.get(person=spouse).ends_on == ends


def test_a_facility_code_registered_meanwhile_is_a_409_not_a_500(regions, commander, client_for, monkeypatch):
    from django.db.models import QuerySet

    from jingkong.isolation.models import Facility

    h.activate("cn-9th-2022")
    h.facility(regions, code="H-RACE")
    real = QuerySet.exists
    # The other manager's insert commits between our check and our insert.
    monkeypatch.setattr(QuerySet, "exists", lambda qs: False if qs.model is Facility else real(qs))
    r = post(client_for(commander), f"{API}/facilities", {"code": "H-RACE", "name": "x", "kind": "quarantine_hotel",
                                                          "region_code": regions["street_a"].code, "lon": 121.8,
                                                          "lat": 29.9})
    assert r.status_code == 409, r.content
    assert "code" in r.content.decode()


def test_releasing_the_home_phase_turns_the_code_green(regions, commander):
    h.activate("cn-9th-2022")
    f = h.facility(regions)
    p = h.person(regions)
    h.contact(p, last_exposure=at(1, 8))
    arrive([p], f, at(2, 9))
    for i, day in enumerate((2, 3, 4, 6, 8)):
        h.sample(p, at(day, 10 + i))
    with clock.frozen(at(8, 16)):
        orders.orders_release([IsolationOrder.objects.get(person=p)], actor=commander, at=at(8, 16))
    home = IsolationOrder.objects.get(person=p, status="active")
    assert code_of(p)[0] == "yellow"
    with clock.frozen(at(10, 16)):
        assert orders.orders_release([home], actor=commander, at=at(10, 16)).blocked == {home.pk: ["not_yet_due",
                                                                                                   "test_missing"]}
    h.sample(p, at(11, 9))  # home day 3
    with clock.frozen(at(11, 16)):
        report = orders.orders_release([home], actor=commander, at=at(11, 16))
    assert report.released == [home.pk] and report.next_orders == {home.pk: None}
    assert code_of(p)[0] == "green"


def test_a_facility_manager_cannot_reach_home_orders_of_their_street(regions, client_for):
    from jingkong.conftest import make_user

    h.activate("cn-9th-2022")
    manager = make_user("manager_rev", "facility_manager", regions["street_a"])
    mine = h.facility(regions, code="MINE-REV")
    mine.staff.add(manager)
    neighbour, guest = h.person(regions), h.person(regions)
    with clock.frozen(at(3, 9)):
        home = orders.orders_start([orders.OrderRequest(person_id=neighbour.pk, mode="home_quarantine")]).orders[0]
    orders.on_arrival(mine, [guest.pk], at=at(3, 9))
    c = client_for(manager)
    with clock.frozen(at(3, 10)):
        assert [o["person_id"] for o in c.get(f"{API}/orders").json()["items"]] == [guest.pk]
        assert c.get(f"{API}/orders/{home.pk}").status_code == 404
        assert post(c, f"{API}/orders/{home.pk}/cancel", {"reason": "x"}).status_code == 404
    assert IsolationOrder.objects.get(pk=home.pk).status == "active"
