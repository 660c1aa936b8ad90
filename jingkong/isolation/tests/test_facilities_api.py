"""The facilities and orders API: what users rely on, bad input (422 naming the field, never a 500), and scope."""

from __future__ import annotations

import datetime as dt

import pytest

from jingkong.conftest import make_user
from jingkong.core import clock
from jingkong.isolation.models import Facility, IsolationOrder, Room
from jingkong.isolation.tests import facilities_helpers as h
from jingkong.isolation.tests.facilities_helpers import at, fresh_policy_cache  # noqa: F401 - autouse fixture

pytestmark = pytest.mark.django_db
API = "/api/v1/isolation"


@pytest.fixture
def now():
    with clock.frozen(at(3, 10)) as t:
        yield t


@pytest.fixture
def manager_a(regions):
    return make_user("manager_a", "facility_manager", regions["street_a"])


def post(client, url, body, method="post"):
    return getattr(client, method)(url, data=body, content_type="application/json")


def test_create_a_facility_add_rooms_and_read_its_board(regions, commander, client_for, now):
    h.activate()
    c = client_for(commander)
    r = post(c, f"{API}/facilities", {"code": "H-01", "name": "海景酒店", "kind": "quarantine_hotel",
                                      "region_code": regions["street_a"].code, "lon": 121.81, "lat": 29.91})
    assert r.status_code == 201, r.content
    fid = r.json()["id"]
    r = post(c, f"{API}/facilities/{fid}/rooms", {"floors": [3, 4], "rooms_per_floor": 12})
    assert r.json() == {"created": 24, "existing": 0, "numbers": r.json()["numbers"]}
    assert r.json()["numbers"][:2] == ["301", "302"]
    assert post(c, f"{API}/facilities/{fid}/rooms", {"floors": [4], "rooms_per_floor": 12}).json()["created"] == 0
    post(c, f"{API}/facilities/{fid}/rooms", {"floors": [2], "rooms_per_floor": 2, "kind": "family", "beds": 4,
                                              "first_number": 50})
    board = c.get(f"{API}/facilities/{fid}/board").json()
    assert board["rooms"] == 26 and [f["floor"] for f in board["floors"]] == [2, 3, 4]
    assert board["counts"]["free"] == 26 and board["facility"]["capacity"]["free_beds"] == 32


def test_bad_input_is_a_422_naming_the_field_never_a_500(regions, commander, client_for, now):
    h.activate()
    c = client_for(commander)
    f = h.facility(regions)
    base = {"code": "H-02", "name": "x", "kind": "quarantine_hotel", "region_code": regions["street_a"].code,
            "lon": 121.8, "lat": 29.9}
    for field, value in (("kind", "palace"), ("lon", 500), ("code", "bad code"), ("name", "a\x00b"),
                         ("region_code", "abc")):
        r = post(c, f"{API}/facilities", {**base, field: value})
        assert r.status_code == 422, (field, r.status_code)
        assert field in r.content.decode(), field
    assert post(c, f"{API}/facilities", {**base, "code": f.code}).status_code == 409
    assert post(c, f"{API}/facilities/{f.pk}/rooms", {"floors": [1], "rooms_per_floor": 0}).status_code == 422
    assert post(c, f"{API}/facilities/{f.pk}/rooms", {"floors": [], "rooms_per_floor": 3}).status_code == 422
    assert post(c, f"{API}/facilities/{f.pk}/rooms", {"floors": [1], "rooms_per_floor": 3, "kind": "family",
                                                      "beds": 1}).status_code == 422
    assert post(c, f"{API}/facilities/{f.pk}/assign", {"person_ids": [2**70]}).status_code == 422
    assert post(c, f"{API}/facilities/{f.pk}/assign", {"person_ids": []}).status_code == 422
    assert post(c, f"{API}/facilities/{f.pk}/assign", {"person_ids": [1], "tiers": {"x": "close"}}).status_code in (
        404, 422)
    room = Room.objects.filter(facility=f).first()
    assert post(c, f"{API}/facilities/{f.pk}/rooms/{room.pk}", {"state": "melted"}, "patch").status_code == 422
    assert post(c, f"{API}/facilities/{f.pk}/rooms/{room.pk}", {"state": "occupied"}, "patch").status_code == 409
    assert c.get(f"{API}/facilities/{2**70}").status_code in (404, 422)
    assert c.get(f"{API}/orders/{2**63 + 5}").status_code in (404, 422)
    assert c.get(f"{API}/orders?status=bogus").status_code == 422
    assert c.get(f"{API}/orders?region=33%00").status_code == 422
    assert post(c, f"{API}/orders", {"items": [{"person_id": 1, "mode": "prison"}]}).status_code == 422
    assert post(c, f"{API}/orders", {"items": [{"person_id": 1, "last_exposure": "yesterday"}]}).status_code == 422


def test_assignment_api_reserves_then_checks_in_a_family(regions, commander, client_for, now):
    h.activate()
    c = client_for(commander)
    f = h.facility(regions, family=1, accessible=1)
    hh = h.household(regions)
    family = [h.person(regions, household=hh) for _ in range(2)]
    wheelchair = h.person(regions, vulnerable=16)
    ids = [p.pk for p in (*family, wheelchair)]
    r = post(c, f"{API}/facilities/{f.pk}/assign", {"person_ids": ids, "tiers": {str(i): "close" for i in ids}})
    body = r.json()
    assert r.status_code == 200 and body["assigned"] == 3
    assert body["rooms"][str(family[0].pk)] == body["rooms"][str(family[1].pk)]
    assert Room.objects.get(pk=body["rooms"][str(wheelchair.pk)]).kind == "accessible"
    assert Room.objects.get(pk=body["rooms"][str(family[0].pk)]).state == "reserved"
    r = post(c, f"{API}/facilities/{f.pk}/assign", {"person_ids": ids, "check_in": True})
    assert r.json()["checked_in"] == 3
    grid = c.get(f"{API}/facilities/{f.pk}/rooms").json()
    names = [o["name"] for rooms in grid["floors"].values() for room in rooms for o in room["occupants"]]
    assert sorted(names) == sorted(p.name for p in (*family, wheelchair))
    r = post(c, f"{API}/facilities/{f.pk}/checkout", {"person_ids": [wheelchair.pk]})
    assert r.json() == {"checked_out": 1}
    assert post(c, f"{API}/facilities/{f.pk}/checkout", {"person_ids": [wheelchair.pk]}).status_code == 404


def test_orders_api_home_quarantine_worklist_check_and_release(regions, commander, client_for):
    h.activate("cn-9th-2022")
    c = client_for(commander)
    p = h.person(regions)
    h.contact(p, tier="secondary", last_exposure=at(1, 8))
    with clock.frozen(at(2, 9)):
        r = post(c, f"{API}/orders", {"items": [{"person_id": p.pk}]})
        assert r.status_code == 201, r.content
        oid = r.json()["created"][0]
        work = c.get(f"{API}/orders/worklist").json()
        assert [w["order_id"] for w in work["due_tests"]] == [oid] and work["due_tests"][0]["day"] == 1
        assert [w["order_id"] for w in work["checks_today"]] == [oid]
        r = post(c, f"{API}/orders/{oid}/checks", {"temperature": 38.1})
        assert r.status_code == 201 and r.json()["flagged"] is True
    for day in (2, 5, 8):
        h.sample(p, at(day, 10))
    with clock.frozen(at(8, 20)):
        detail = c.get(f"{API}/orders/{oid}").json()
        assert detail["mode"] == "home_quarantine" and detail["ends_on"] == "2022-01-08"
        assert [t["status"] for t in detail["tests"]] == ["negative", "negative", "negative"]
        assert detail["releasable"] is True and detail["checks"][0]["flagged"] is True
        r = post(c, f"{API}/orders/{oid}/release", {})
        assert r.json()["released"] == [oid] and r.json()["next_orders"] == {str(oid): None}
        assert post(c, f"{API}/orders/{oid}/release", {}).status_code == 409


def test_extend_and_cancel_refuse_bad_dates_and_empty_reasons(regions, commander, client_for):
    h.activate()
    c = client_for(commander)
    p = h.person(regions)
    with clock.frozen(at(3, 9)):
        oid = post(c, f"{API}/orders", {"items": [{"person_id": p.pk, "last_exposure": "2022-01-01"}]}).json()[
            "created"][0]
        assert post(c, f"{API}/orders/{oid}/extend", {"new_exposure": "2022-01-09", "reason": "x"}).status_code == 422
        assert post(c, f"{API}/orders/{oid}/extend", {"new_exposure": "2021-12-30", "reason": "x"}).status_code == 422
        assert post(c, f"{API}/orders/{oid}/extend", {"new_exposure": "2022-01-03", "reason": ""}).status_code == 422
        r = post(c, f"{API}/orders/{oid}/extend", {"new_exposure": "2022-01-03", "reason": "同户阳性"})
        assert r.json()["ends_on"] == "2022-01-17" and r.json()["extended_days"] == 2
        assert post(c, f"{API}/orders/{oid}/cancel", {"reason": ""}).status_code == 422
        assert post(c, f"{API}/orders/{oid}/cancel", {"reason": "误判"}).json()["status"] == "cancelled"


def test_facility_managers_see_their_facilities_only(regions, manager_a, client_for, now):
    h.activate()
    mine = h.facility(regions, code="MINE")
    theirs = h.facility(regions, code="THEIRS")
    mine.staff.add(manager_a)
    c = client_for(manager_a)
    assert [f["code"] for f in c.get(f"{API}/facilities").json()] == ["MINE"]
    assert c.get(f"{API}/facilities/{theirs.pk}/board").status_code == 404
    assert c.get(f"{API}/facilities/{mine.pk}/board").status_code == 200
    # Staff of a facility see its guests' orders, wherever the guests live.
    guest = h.person(regions, side="b")
    h.contact(guest, last_exposure=at(1, 8))
    from jingkong.isolation import orders

    orders.on_arrival(mine, [guest.pk], at=at(3, 9))
    assert [o["person_id"] for o in c.get(f"{API}/orders?facility_id={mine.pk}").json()["items"]] == [guest.pk]


def test_orders_of_another_street_are_not_found_nor_listed(regions, officer_a, client_for, now):
    h.activate()
    b = h.person(regions, side="b")
    with clock.frozen(at(3, 9)):
        from jingkong.isolation import orders

        order = orders.orders_start([orders.OrderRequest(person_id=b.pk, mode="home_quarantine")]).orders[0]
    c = client_for(officer_a)
    assert c.get(f"{API}/orders/{order.pk}").status_code == 404
    assert c.get(f"{API}/orders").json()["count"] == 0
    assert IsolationOrder.objects.count() == 1
    assert Facility.objects.count() == 0


def test_reserve_panel_targets_from_the_profile(regions, commander, client_for, now):
    from jingkong.geo.models import Region

    h.activate()
    Region.objects.filter(code="330206").update(population=50_000)
    h.facility(regions, floors=(1,), per_floor=60)
    h.facility(regions, kind="designated_hospital", floors=(1,), per_floor=5)
    body = client_for(commander).get(f"{API}/reserve").json()
    district = body["districts"][0]
    assert (district["residents"], district["target_rooms"], district["free_rooms"]) == (50_000, 100, 60)
    assert district["below_target"] is True
    assert len(body["facilities"]) == 1 and len(body["hospitals"]) == 1


def test_schedule_dates_follow_the_active_profile(regions, commander, client_for):
    for code, end in (("cn-8th-2021", "2022-01-15"), ("cn-9th-2022", "2022-01-08")):
        IsolationOrder.objects.all().delete()
        h.activate(code)
        p = h.person(regions)
        with clock.frozen(at(2, 9)):
            r = post(client_for(commander), f"{API}/orders", {"items": [{"person_id": p.pk,
                                                                         "last_exposure": "2022-01-01"}]})
        order = IsolationOrder.objects.get(pk=r.json()["created"][0])
        assert order.ends_on == dt.date.fromisoformat(end) and order.profile.code == code
