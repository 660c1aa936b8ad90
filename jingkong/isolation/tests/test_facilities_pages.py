"""The facilities and orders pages render with data (Chinese and English), their forms work, scope holds."""

from __future__ import annotations

import pytest

from jingkong.conftest import make_user
from jingkong.core import clock
from jingkong.isolation import orders
from jingkong.isolation.models import IsolationOrder, Room, SymptomCheck
from jingkong.isolation.tests import facilities_helpers as h
from jingkong.isolation.tests.facilities_helpers import at, fresh_policy_cache  # noqa: F401 - autouse fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(regions):
    h.activate()
    f = h.facility(regions, code="HOTEL-A", family=1)
    guest = h.person(regions, name="张隔离")
    h.contact(guest, last_exposure=at(1, 8))
    orders.on_arrival(f, [guest.pk], at=at(2, 9))
    return {"facility": f, "guest": guest, "order": IsolationOrder.objects.get(person=guest)}


@pytest.mark.parametrize("lang", ["zh-hans", "en"])
def test_pages_render_with_data(world, commander, client_for, lang):
    c = client_for(commander)
    c.cookies["django_language"] = lang
    with clock.frozen(at(5, 10)):
        pages = ["/isolation/facilities/", "/isolation/facilities/reserve/", "/isolation/facilities/HOTEL-A/",
                 "/isolation/orders/", "/isolation/orders/?facility=HOTEL-A",
                 f"/isolation/orders/{world['order'].pk}/"]
        for url in pages:
            r = c.get(url)
            assert r.status_code == 200, (url, r.status_code)
        board = c.get("/isolation/facilities/HOTEL-A/").content.decode()
        assert "张隔离" in board and "HOTEL-A" in board
        worklist = c.get("/isolation/orders/").content.decode()
        assert "张隔离" in worklist  # day 4 (5 January) is a 2021 test day
        detail = c.get(f"/isolation/orders/{world['order'].pk}/").content.decode()
        assert "2022-01-15" in detail


def test_analysts_see_the_board_without_names_and_no_orders(world, regions, client_for):
    analyst = make_user("analyst_d", "analyst", regions["district"])
    c = client_for(analyst)
    board = c.get("/isolation/facilities/HOTEL-A/")
    assert board.status_code == 200 and "张隔离" not in board.content.decode()
    assert c.get("/isolation/orders/").status_code == 403


def test_forms_create_rooms_change_state_check_and_extend(world, commander, client_for):
    c = client_for(commander)
    f, order = world["facility"], world["order"]
    r = c.post("/isolation/facilities/HOTEL-A/rooms/", {"floor_from": 5, "floor_to": 6, "rooms_per_floor": 3,
                                                          "kind": "single", "beds": 1, "first_number": 1})
    assert r.status_code == 302 and Room.objects.filter(facility=f, floor__in=[5, 6]).count() == 6
    room = Room.objects.get(facility=f, number="501")
    c.post(f"/isolation/facilities/HOTEL-A/rooms/{room.pk}/state/", {"state": "out_of_service"})
    room.refresh_from_db()
    assert room.state == "out_of_service"
    r = c.post("/isolation/facilities/HOTEL-A/rooms/", {"floor_from": "x", "floor_to": 6, "rooms_per_floor": 3})
    assert r.status_code == 302  # refused with a message, not a 500
    with clock.frozen(at(3, 10)):
        c.post(f"/isolation/orders/{order.pk}/check/", {"temperature": "38.0", "symptoms": ["cough", "bogus"]})
        check = SymptomCheck.objects.get(order=order)
        assert check.symptoms == ["cough"] and float(check.temperature) == 38.0
        c.post(f"/isolation/orders/{order.pk}/extend/", {"new_exposure": "2022-01-03", "reason": "同室阳性"})
    order.refresh_from_db()
    assert str(order.ends_on) == "2022-01-17"
    r = c.post(f"/isolation/orders/{order.pk}/extend/", {"new_exposure": "not-a-date", "reason": "x"})
    assert r.status_code == 302


def test_manual_assignment_form_refuses_people_outside_the_scope(world, regions, officer_a, commander, client_for):
    outsider = h.person(regions, side="b")
    admin_a = make_user("admin_a", "administrator", regions["street_a"])
    r = client_for(admin_a).post("/isolation/facilities/HOTEL-A/assign/", {"person_ids": f"{outsider.pk}"},
                                 follow=True)
    assert r.status_code == 200 and not outsider.isolation_orders.exists()
    from jingkong.isolation.models import RoomStay

    assert not RoomStay.objects.filter(person=outsider).exists()
    r = client_for(commander).post("/isolation/facilities/HOTEL-A/assign/", {"person_ids": f"{outsider.pk}\nabc"})
    assert r.status_code == 302 and not RoomStay.objects.filter(person=outsider).exists()
    r = client_for(commander).post("/isolation/facilities/HOTEL-A/assign/", {"person_ids": f"{outsider.pk}"})
    assert RoomStay.objects.filter(person=outsider).exists()


def test_pages_of_another_street_are_not_found(world, regions, client_for):
    officer_b = make_user("officer_b2", "street_officer", regions["street_b"])
    c = client_for(officer_b)
    assert c.get("/isolation/facilities/HOTEL-A/").status_code == 404
    assert c.get(f"/isolation/orders/{world['order'].pk}/").status_code == 404
    assert "张隔离" not in c.get("/isolation/orders/").content.decode()


def test_hostile_page_input_is_not_a_500(world, commander, client_for):
    c = client_for(commander)
    assert c.get("/isolation/facilities/HOTEL%00A/").status_code == 404
    assert c.get("/isolation/facilities/" + "X" * 40 + "/").status_code == 404
    assert c.get("/isolation/orders/?facility=HO%00&status=bogus&page=abc&region=33%00").status_code in (200, 404)
    assert c.get("/isolation/orders/99999999999999999999/").status_code == 404
    r = c.post(f"/isolation/orders/{world['order'].pk}/check/", {"temperature": "hot\x00"})
    assert r.status_code == 302


@pytest.mark.parametrize("temperature", ["NaN", "-nan", "Infinity", "1e999999"])
def test_a_temperature_that_is_not_a_number_is_refused_not_a_500(world, commander, client_for, temperature):
    with clock.frozen(at(5, 10)):
        r = client_for(commander).post(f"/isolation/orders/{world['order'].pk}/check/", {"temperature": temperature})
    assert r.status_code == 302
    assert not SymptomCheck.objects.filter(order=world["order"]).exists()


def test_the_board_names_tiers_and_room_kinds_in_words_not_codes(world, commander, client_for):
    c = client_for(commander)
    c.cookies["django_language"] = "en"
    page = c.get(f"/isolation/facilities/{world['facility'].code}/").content.decode()
    assert '<span class="tr-badge close">close contact</span>' in page
    assert 'title="single, 1"' in page and 'title="family, 3"' in page
