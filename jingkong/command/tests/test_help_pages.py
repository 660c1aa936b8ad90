"""The public resident pages (/command/help/): no account, mobile-first, zh-Hans and English."""

from __future__ import annotations

import pytest
from django.test import Client

from jingkong.command import requests as svc
from jingkong.command.models import ServiceRequest
from jingkong.command.tests import test_services_fixtures as fx
from jingkong.command.tests.test_services_fixtures import make_resident

pytestmark = pytest.mark.django_db
sv_now, sv_world = fx.sv_now, fx.sv_world  # shared fixtures


def _form(number, phone, **extra):
    data = {"how": "id", "id_number": number, "phone": phone, "via": "resident", "category": "food",
            "subcategory": "", "description": "米和油", "client_key": "form-key-1"}
    data.update(extra)
    return data


def test_the_form_is_public_and_speaks_both_languages(sv_world):
    zh = Client(HTTP_ACCEPT_LANGUAGE="zh-hans").get("/command/help/")
    en = Client(HTTP_ACCEPT_LANGUAGE="en").get("/command/help/")
    assert zh.status_code == en.status_code == 200
    assert 'name="viewport"' in zh.content.decode()
    assert "dialysis" in en.content.decode()  # the profile's subcategories are offered
    assert Client().get("/command/help/status/").status_code == 200


def test_a_resident_submits_and_a_double_submit_makes_one_request(sv_world):
    person, number = make_resident(sv_world["regions"]["grid_a1"], phone="13811112222")
    c = Client()
    first = c.post("/command/help/", _form(number, "13811112222"))
    assert first.status_code == 302
    req = ServiceRequest.objects.get(person=person)
    assert first["Location"].endswith(f"/command/help/done/{req.ref}/")
    again = c.post("/command/help/", _form(number, "13811112222"))
    assert again["Location"] == first["Location"] and ServiceRequest.objects.count() == 1
    done = c.get(first["Location"])
    assert done.status_code == 200 and req.ref in done.content.decode()
    assert person.name not in done.content.decode()  # masked
    # Another browser cannot open the confirmation page by guessing the number.
    assert Client().get(first["Location"]).status_code == 302


def test_unknown_id_and_wrong_phone_read_the_same(sv_world):
    import datetime as dt

    from jingkong.people.tests.helpers import make_id

    _person, number = make_resident(sv_world["regions"]["grid_a1"], phone="13811112222")
    wrong = Client().post("/command/help/", _form(number, "13900000000"))
    unknown = Client().post("/command/help/", _form(make_id(dt.date(1966, 6, 6), 66), "13811112222"))
    assert wrong.status_code == unknown.status_code == 422
    strip = [line for line in wrong.content.decode().splitlines() if 'class="error"' in line]
    assert strip and strip == [line for line in unknown.content.decode().splitlines() if 'class="error"' in line]
    assert not ServiceRequest.objects.exists()


@pytest.mark.parametrize("override,status", [
    ({"id_number": "33020619500101001X"}, 422),  # bad check digit
    ({"description": "药\x00"}, 422),
    ({"category": "haircut"}, 422),
    ({"subcategory": "dialysis"}, 422),  # not a kind of food request
])
def test_bad_input_is_refused_without_a_500(sv_world, override, status):
    _person, number = make_resident(sv_world["regions"]["grid_a1"], phone="13811112222")
    r = Client().post("/command/help/", _form(number, "13811112222", **override))
    assert r.status_code == status
    assert not ServiceRequest.objects.exists()


def test_too_many_failures_from_one_address_are_refused(sv_world):
    _person, number = make_resident(sv_world["regions"]["grid_a1"], phone="13811112222")
    c = Client(REMOTE_ADDR="10.7.7.7")
    for _ in range(svc.FAILURE_LIMIT):
        assert c.post("/command/help/", _form(number, "13000000000")).status_code == 422
    assert c.post("/command/help/", _form(number, "13811112222")).status_code == 429
    assert Client(REMOTE_ADDR="10.8.8.8").post("/command/help/", _form(number, "13811112222")).status_code == 302


def test_the_requester_follows_confirms_and_rates(sv_world, officer_a):
    person, number = make_resident(sv_world["regions"]["grid_a1"], phone="13811112222")
    req, _ = svc.request_submit(person=person, category="food")
    c = Client()
    assert c.post("/command/help/status/", {"ref": req.ref, "phone": "13900000000"}).status_code == 422
    # Without looking it up first, nobody can answer for the request.
    c.post("/command/help/status/", {"ref": req.ref, "action": "cancel"})
    req.refresh_from_db()
    assert req.status == "assigned"
    found = c.post("/command/help/status/", {"ref": req.ref, "phone": "13811112222"})
    assert found.status_code == 302
    page = c.get(found["Location"]).content.decode()
    assert req.ref in page and "网格员甲" in page
    svc.request_status(actor=officer_a, req=req, status="delivered")
    c.post("/command/help/status/", {"ref": req.ref, "action": "confirm", "satisfaction": "4"})
    req.refresh_from_db()
    assert req.status == "confirmed" and req.satisfaction == 4


def test_the_requester_cancels_before_anyone_starts(sv_world):
    person, number = make_resident(sv_world["regions"]["grid_a1"], phone="13811112222")
    req, _ = svc.request_submit(person=person, category="garbage")
    c = Client()
    c.post("/command/help/status/", {"ref": req.ref, "phone": "13811112222"})
    c.post("/command/help/status/", {"ref": req.ref, "action": "cancel"})
    req.refresh_from_db()
    assert req.status == "cancelled" and req.updates.filter(status="cancelled", by__isnull=True).exists()


def test_a_real_code_token_identifies_the_person(sv_world):
    from jingkong.codes import tokens

    person, _number = make_resident(sv_world["regions"]["grid_a1"])
    token = tokens.issue(person)
    c = Client()
    assert token in c.get("/command/help/", {"t": token}).content.decode()  # pre-filled from a link
    r = c.post("/command/help/", {"how": "token", "token": token, "category": "medicine", "client_key": "tok-1"})
    assert r.status_code == 302, r.content.decode()[:500]
    assert ServiceRequest.objects.get(person=person).category == "medicine"
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    bad = Client().post("/command/help/", {"how": "token", "token": forged, "category": "food"})
    assert bad.status_code == 422 and ServiceRequest.objects.count() == 1
