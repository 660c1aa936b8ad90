"""Checkpoints and their staff, and passes (通行证), through the API: who may change them, inside which region, and
what bad input answers."""

from __future__ import annotations

import json

import pytest

from jingkong.codes.models import Checkpoint, Crossing, Pass
from jingkong.codes.tests.checkpoint_helpers import NOW, a_pass, activate, checkpoint, lockdown_zone, resident
from jingkong.conftest import make_user
from jingkong.core import clock

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _now():
    with clock.frozen(NOW):
        yield


def send(client, method, url, body=None):
    return client.generic(method, url, data=json.dumps(body or {}), content_type="application/json")


BODY = {"code": "CP-NEW", "name": "大碶高速出口", "kind": "highway_exit", "region_code": "330206002", "lon": 121.81,
        "lat": 29.90}


def test_create_update_and_staff(regions, officer_a, client_for):
    from jingkong.access.models import AuditLog
    from jingkong.core.models import DomainEvent

    c = client_for(officer_a)
    cp_officer = make_user("cpo_a", "checkpoint_officer", regions["street_a"])
    person, _ = resident(regions["grid_a1"])
    zone = lockdown_zone(regions["grid_a1"], person)
    r = send(c, "POST", "/api/v1/codes/checkpoints", {**BODY, "zone": zone.ref, "staff": ["cpo_a"]})
    assert r.status_code == 201, r.content
    assert r.json()["staff"] == ["cpo_a"] and r.json()["zone"] == zone.ref
    assert AuditLog.objects.filter(action="checkpoint.create").exists()
    assert DomainEvent.objects.filter(type="codes.checkpoint_created").exists()
    assert send(c, "POST", "/api/v1/codes/checkpoints", BODY).status_code == 409
    r = send(c, "PATCH", "/api/v1/codes/checkpoints/CP-NEW", {"name": "新名字", "active": False, "staff": [],
                                                              "zone": ""})
    assert r.status_code == 200 and r.json()["name"] == "新名字" and r.json()["staff"] == []
    cp = Checkpoint.objects.get(code="CP-NEW")
    assert not cp.active and cp.zone_id is None
    assert cp_officer.checkpoints.count() == 0


@pytest.mark.parametrize(("change", "status", "field"), [
    ({"region_code": "330206004"}, 404, "region_code"),  # street B
    ({"region_code": "999999"}, 404, "region_code"),
    ({"staff": ["nobody"]}, 404, "staff"),
    ({"staff": ["sampler_a"]}, 422, "staff"),  # may not verify at checkpoints
    ({"staff": ["officer_b"]}, 404, "staff"),  # outside the region
    ({"zone": "Z-NONE"}, 404, "zone"),
    ({"kind": "castle"}, 422, None),
    ({"lon": 200}, 422, None),
    ({"name": "x\x00"}, 422, None),
    ({"code": "a b"}, 422, None),
])
def test_bad_checkpoints_are_refused(regions, officer_a, officer_b, client_for, change, status, field):
    make_user("sampler_a", "sampler", regions["street_a"])
    r = send(client_for(officer_a), "POST", "/api/v1/codes/checkpoints", {**BODY, **change})
    assert r.status_code == status, r.content
    if field:
        assert r.json()["extra"]["field"] == field
    assert not Checkpoint.objects.exists()


def test_only_managers_change_checkpoints_and_never_another_streets(regions, officer_a, client_for):
    checkpoint(regions["street_b"], "CP-B1")
    checkpoint(regions["street_a"], "CP-A1")
    c = client_for(officer_a)
    assert send(c, "PATCH", "/api/v1/codes/checkpoints/CP-B1", {"name": "越界"}).status_code == 404
    cpo = make_user("cpo", "checkpoint_officer", regions["street_a"])
    assert send(client_for(cpo), "PATCH", "/api/v1/codes/checkpoints/CP-A1", {"name": "x"}).status_code == 403
    assert send(client_for(cpo), "POST", "/api/v1/codes/checkpoints", BODY).status_code == 403
    assert Checkpoint.objects.get(code="CP-B1").name != "越界"


def test_passes_issue_list_by_plate_and_revoke(regions, officer_a, officer_b, client_for):
    activate()
    checkpoint(regions["street_b"], "CP-B1")
    c = client_for(officer_a)
    r = send(c, "POST", "/api/v1/codes/passes", {"kind": "medical", "plate": "浙B·12345", "holder": "120 急救",
                                                  "valid_until": "2022-01-12T00:00:00+08:00"})
    assert r.status_code == 201, r.content
    number = r.json()["number"]
    assert r.json()["plate"] == "浙B12345" and r.json()["state"] == "valid" and r.json()["region_code"] == "330206002"
    a_pass("浙A99999", number="TX-OTHER", region_code="330206004")
    listed = c.get("/api/v1/codes/passes?plate=浙b1").json()
    assert [p["number"] for p in listed["items"]] == [number]
    assert c.get("/api/v1/codes/passes").json()["count"] == 1  # street B's pass is not listed
    # a pass issued by street A works at street B's checkpoints: vehicles cross the district
    _, driver = resident(regions["grid_b1"], colour="yellow")
    body = send(client_for(officer_b), "POST", "/api/v1/codes/checkpoints/CP-B1/verify",
                {"plate": "浙B12345", "driver": driver, "client_id": "p-1"}).json()
    assert body["decision"] == "allow" and body["pass_number"] == number
    assert send(c, "POST", "/api/v1/codes/passes/TX-OTHER/revoke", {}).status_code == 404
    r = send(c, "POST", f"/api/v1/codes/passes/{number}/revoke", {"reason": "车辆报修"})
    assert r.status_code == 200 and r.json()["state"] == "revoked"
    body = send(client_for(officer_b), "POST", "/api/v1/codes/checkpoints/CP-B1/verify",
                {"plate": "浙B12345", "driver": driver, "client_id": "p-2"}).json()
    assert body["decision"] == "refer" and body["pass_number"] is None
    assert Crossing.objects.count() == 2


@pytest.mark.parametrize(("change", "status"), [
    ({"region_code": "330206004"}, 404),
    ({"plate": "??"}, 422),
    ({"kind": "vip"}, 422),
    ({"valid_until": "2022-01-01T00:00:00+08:00"}, 422),  # before it starts (now)
    ({"valid_until": "2024-01-01T00:00:00+08:00"}, 422),  # more than a year
    ({"holder": "x\x00"}, 422),
])
def test_bad_passes_are_refused(regions, officer_a, client_for, change, status):
    body = {"kind": "medical", "plate": "浙B12345", "holder": "x", "valid_until": "2022-01-12T00:00:00+08:00", **change}
    assert send(client_for(officer_a), "POST", "/api/v1/codes/passes", body).status_code == status
    assert not Pass.objects.exists()
