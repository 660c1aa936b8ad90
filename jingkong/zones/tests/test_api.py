from __future__ import annotations

import json

import pytest

from jingkong.conftest import make_user
from jingkong.zones.models import Zone

pytestmark = pytest.mark.django_db
API = "/api/v1/zones"


def post(client, url, body=None):
    return client.post(url, data=json.dumps(body or {}), content_type="application/json")


def patch(client, url, body):
    return client.patch(url, data=json.dumps(body), content_type="application/json")


@pytest.fixture
def proposed(town, case, officer_a, client_for):
    r = post(client_for(officer_a), f"{API}/zones/propose", {"case_ref": case.ref})
    assert r.status_code == 201, r.content
    return {z["type"]: z for z in r.json()}


def test_propose_list_detail_geojson(town, case, proposed, officer_a, officer_b, client_for):
    assert set(proposed) == {"lockdown", "control", "prevention"}
    assert proposed["lockdown"]["people"] == 3 and proposed["lockdown"]["status"] == "proposed"
    c = client_for(officer_a)
    listed = c.get(f"{API}/zones").json()
    # The prevention zone covers the whole district: outside a street officer's scope.
    assert {z["type"] for z in listed["items"]} == {"lockdown", "control"}
    d = c.get(f"{API}/zones/{proposed['lockdown']['id']}").json()
    assert d["units"][0]["kind"] == "entrance" and d["history"][0]["action"] == "propose"
    assert d["countdown"] is None  # a proposal has no countdown yet
    geo = c.get(f"{API}/zones/geojson").json()
    assert geo["type"] == "FeatureCollection" and len(geo["features"]) == 2
    # Street B sees none of it; a zone of street A is not found for them.
    cb = client_for(officer_b)
    assert cb.get(f"{API}/zones").json()["count"] == 0
    assert cb.get(f"{API}/zones/{proposed['lockdown']['id']}").status_code == 404
    assert cb.get(f"{API}/zones/geojson").json()["features"] == []


def test_propose_refuses_unknown_and_out_of_scope_cases(town, case, officer_b, client_for):
    c = client_for(officer_b)
    assert post(c, f"{API}/zones/propose", {"case_ref": case.ref}).status_code == 404
    assert post(c, f"{API}/zones/propose", {"case_ref": "NO-SUCH"}).status_code == 404
    r = post(c, f"{API}/zones/propose", {"case_ref": "BL\x00"})
    assert r.status_code == 422 and "case_ref" in r.json()["message"]
    assert not Zone.objects.exists()


def test_only_commanders_approve(town, proposed, officer_a, commander, client_for):
    zid = proposed["lockdown"]["id"]
    r = post(client_for(officer_a), f"{API}/zones/{zid}/approve")
    assert r.status_code == 403
    r = post(client_for(commander), f"{API}/zones/{zid}/approve", {"reason": "同意"})
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "approved" and body["countdown"]["action"] == "lift"
    assert {b["code"] for b in body["countdown"]["blockers"]} >= {"new_infection", "screening"}
    assert post(client_for(commander), f"{API}/zones/{zid}/approve").status_code == 409
    residents = client_for(commander).get(f"{API}/zones/{zid}/residents").json()
    assert residents["count"] == 3 and {p["name"] for p in residents["items"]} == {"甲", "妻", "老人"}


def test_edit_proposal_bad_input(town, proposed, officer_a, client_for):
    c = client_for(officer_a)
    zid = proposed["lockdown"]["id"]
    bb1 = town.buildings["BB1"].pk
    assert patch(c, f"{API}/zones/{zid}", {"add_units": [{"kind": "building", "building_id": bb1}]}).status_code == 404
    r = patch(c, f"{API}/zones/{zid}", {"add_units": [{"kind": "building", "building_id": 987654}]})
    assert r.status_code == 422 and "add_units[0].building_id" in r.json()["message"]
    r = patch(c, f"{API}/zones/{zid}", {"add_units": [{"kind": "castle", "building_id": 1}]})
    assert r.status_code == 422
    r = patch(c, f"{API}/zones/{zid}", {"name": "x\x00y"})
    assert r.status_code == 422 and "name" in r.json()["message"]
    r = patch(c, f"{API}/zones/{zid}", {"remove_unit_ids": [123456789]})
    assert r.status_code == 422
    r = patch(c, f"{API}/zones/{zid}", {"type": "high_risk"})
    assert r.status_code == 422  # not a type of the 三区 scheme
    ba2 = town.buildings["BA2"].pk
    r = patch(c, f"{API}/zones/{zid}", {"name": "明州花园封控区", "add_units": [{"kind": "building", "building_id": ba2}]})
    assert r.status_code == 200, r.content
    assert r.json()["people"] == 5 and r.json()["name"] == "明州花园封控区"
    assert r.json()["history"][-1]["action"] == "edit"


def test_actions_need_reasons_and_lift(town, proposed, commander, client_for):
    c = client_for(commander)
    zid = proposed["control"]["id"]
    post(c, f"{API}/zones/{zid}/approve")
    assert post(c, f"{API}/zones/{zid}/lift", {}).status_code == 422
    assert post(c, f"{API}/zones/{zid}/lift", {"reason": "\x00"}).status_code == 422
    assert post(c, f"{API}/zones/{zid}/upgrade", {"reason": "疫情扩散"}).json()["type"] == "lockdown"
    assert post(c, f"{API}/zones/{zid}/downgrade", {"reason": "控制住"}).json()["type"] == "control"
    r = post(c, f"{API}/zones/{zid}/lift", {"reason": "满足解封条件"})
    assert r.json()["status"] == "lifted" and r.json()["lifted_at"]
    assert post(c, f"{API}/zones/{proposed['lockdown']['id']}/reject", {"reason": "范围过大"}).json()["status"] == \
        "rejected"


def test_risk_areas_api(town, proposed, commander, officer_a, officer_b, client_for):
    c = client_for(commander)
    post(c, f"{API}/zones/{proposed['lockdown']['id']}/approve")
    grid = town.regions["grid_a1"].code
    assert c.get(f"{API}/risk-areas/level?code={grid}").json()["level"] == "high"
    assert c.get(f"{API}/risk-areas/level?code=3302x").status_code == 422
    far = c.get(f"{API}/risk-areas/level", {"code": grid, "at": "0001-01-01T00:00:00+14:00"})
    assert far.status_code == 422  # no UTC instant: was a 500
    up = c.post(f"{API}/risk-areas/import", {"file": _file("code,name,level\n310115,浦东新区,高\n330211,镇海,bad\n")})
    assert up.status_code == 200, up.content
    assert (up.json()["created"], up.json()["rejected"]) == (1, 1)
    assert up.json()["errors_sample"][0] == {"line": 3, "field": "level", "reason": up.json()["errors_sample"][0][
        "reason"], "value": "bad"}
    listed = client_for(officer_b).get(f"{API}/risk-areas").json()
    assert [a["area_code"] for a in listed["items"]] == ["310115"]  # street B: imported lists only
    listed_a = client_for(officer_a).get(f"{API}/risk-areas").json()
    assert {a["source"] for a in listed_a["items"]} == {"district", "imported"}


def _file(text: str, encoding: str = "utf-8"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("list.csv", text.encode(encoding), content_type="text/csv")


def test_import_requires_zones_edit(town, regions, client_for):
    analyst = make_user("analyst_z", "analyst", regions["district"])
    r = client_for(analyst).post(f"{API}/risk-areas/import", {"file": _file("code,name,level\n310115,a,high\n")})
    assert r.status_code == 403
