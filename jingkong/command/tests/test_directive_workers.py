"""The field worker registry: areas and buildings inside the registrar's region, one worker per account, phones
masked for roles that do not phone residents, the page form; bad input."""

from __future__ import annotations

import pytest

from jingkong.command.models import FieldWorker
from jingkong.command.tests import directive_helpers as dh
from jingkong.command.tests.directive_helpers import make_building
from jingkong.conftest import make_user

pytestmark = pytest.mark.django_db
now, _fresh_policy_cache = dh.now, dh._fresh_policy_cache  # fixtures
API = "/api/v1/command/workers"


def _post(c, body):
    return c.post(API, body, content_type="application/json")


def test_register_update_and_list(regions, officer_a, grid_worker_a, client_for, now):
    b = make_building(regions["grid_a1"])
    c = client_for(officer_a)
    r = _post(c, {"name": "张楼长", "role": "building_captain", "region_code": regions["grid_a1"].code,
                  "phone": "13911112222", "building_ids": [b.pk], "user_id": grid_worker_a.pk})
    assert r.status_code == 201, r.content
    w = r.json()
    assert w["building_ids"] == [b.pk] and w["user"] == "grid_worker_a"
    assert w["phone"] == "139****2222"  # a street officer sees phones masked (no PERSON_VIEW_PHONE)
    again = _post(c, {"name": "重复", "role": "volunteer", "region_code": regions["grid_a1"].code,
                      "user_id": grid_worker_a.pk})
    assert again.status_code == 409 and "user_id" in again.content.decode()
    r = c.patch(f"{API}/{w['id']}", {"region_code": regions["grid_a2"].code}, content_type="application/json")
    assert r.status_code == 422  # its building is not in the new area
    r = c.patch(f"{API}/{w['id']}", {"region_code": regions["grid_a2"].code, "building_ids": [], "user_id": 0,
                                     "active": False}, content_type="application/json")
    assert r.status_code == 200, r.content
    assert r.json()["user"] is None and r.json()["active"] is False and r.json()["building_ids"] == []
    full = client_for(make_user("community_a", "community_officer", regions["community_a"])).get(API).json()
    assert full[0]["phone"] == "13911112222"  # community officers phone residents and workers
    analyst = make_user("analyst_a", "analyst", regions["street_a"])
    listed = client_for(analyst).get(API).json()
    assert [x["name"] for x in listed] == ["张楼长"] and listed[0]["phone"] != "13911112222"  # masked


@pytest.mark.parametrize("body, status, field", [
    ({"region_code": "330206004001001"}, 404, ""),  # street B
    ({"region_code": "330206002009999"}, 404, ""),  # no such region
    ({"role": "boss"}, 422, "role"),
    ({"name": ""}, 422, "name"),
    ({"phone": "call me"}, 422, "phone"),
    ({"building_ids": [10**12]}, 422, "building_ids"),
    ({"user_id": 10**12}, 404, ""),
])
def test_bad_registrations(regions, officer_a, client_for, now, body, status, field):
    good = {"name": "李网格员", "role": "grid_worker", "region_code": regions["grid_a1"].code}
    r = _post(client_for(officer_a), {**good, **body})
    assert r.status_code == status, r.content
    assert field in r.content.decode()
    assert not FieldWorker.objects.exists()


def test_an_account_of_another_street_cannot_be_linked(regions, officer_a, officer_b, client_for, now):
    r = _post(client_for(officer_a), {"name": "x", "role": "volunteer", "region_code": regions["grid_a1"].code,
                                      "user_id": officer_b.pk})
    assert r.status_code == 404 and not FieldWorker.objects.exists()


def test_the_registry_pages(regions, officer_a, volunteer_a, client_for, now):
    b = make_building(regions["grid_a1"])
    c = client_for(officer_a)
    r = c.post("/command/workers/new/", {"name": "王志愿者", "role": "volunteer", "region_code": regions["grid_a1"].code,
                                         "phone": "13900000000", "building_ids": [str(b.pk)],
                                         "username": "volunteer_a"})
    assert r.status_code == 302, r.content.decode()[:300]
    w = FieldWorker.objects.get()
    assert w.user == volunteer_a and list(w.buildings.all()) == [b]
    page = c.get("/command/workers/").content.decode()
    assert "王志愿者" in page
    assert c.get(f"/command/workers/{w.pk}/").status_code == 200
    bad = c.post("/command/workers/new/", {"name": "x", "role": "volunteer", "region_code": regions["grid_a1"].code,
                                           "username": "nobody"})
    assert bad.status_code == 422
    assert client_for(volunteer_a).get("/command/workers/").status_code == 403
