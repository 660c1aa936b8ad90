"""Tubes: sealing by hand, reading a tube (members only for person-level roles, audited), a site's open tubes."""

from __future__ import annotations

import json

import pytest

from jingkong.conftest import T0, make_user
from jingkong.testing.tests import sampling_helpers as h

pytestmark = pytest.mark.django_db
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}  # reasons are translated (the UI defaults to Chinese): read the English source


@pytest.fixture
def world(regions, frozen_clock, bearer, client):
    sampler = make_user("sampler_a", "sampler", regions["street_a"])
    h.campaign(regions["district"], "R1", pool_size=10)
    site = h.site(regions["grid_a1"], "SITE-A1", samplers=[sampler])
    people = [h.person(regions["grid_a1"], i) for i in range(1, 6)]
    auth = bearer(sampler) | EN
    scans = [{"tube": "T1", "id_number": n} for _, n in people[:3]] + [{"tube": "T2", "id_number": people[3][1]}]
    r = client.post("/api/v1/testing/scans/batch", data=json.dumps({"site": "SITE-A1", "scans": scans}),
                    content_type="application/json", **auth)
    assert r.json()["counts"]["recorded"] == 4
    return {"regions": regions, "sampler": sampler, "auth": auth, "site": site, "people": people, "bearer": bearer}


def test_a_tube_can_be_sealed_early_and_then_takes_no_more(client, world):
    from jingkong.core.models import DomainEvent

    r = client.post("/api/v1/testing/tubes/T1/seal", **world["auth"])
    assert r.status_code == 200, r.content
    assert (r.json()["status"], r.json()["member_count"], r.json()["capacity"]) == ("sealed", 3, 10)
    assert r.json()["sealed_at"].startswith("2022-01-01T08:30")
    event = DomainEvent.objects.get(type="testing.tube_sealed")
    assert event.payload == {"barcode": "T1", "members": 3, "capacity": 10, "early": True}
    assert event.region_code == world["regions"]["grid_a1"].code
    again = client.post("/api/v1/testing/tubes/T1/seal", **world["auth"])
    assert again.status_code == 200 and DomainEvent.objects.filter(type="testing.tube_sealed").count() == 1
    scan = client.post("/api/v1/testing/scans", data=json.dumps(h.scan("T1", world["people"][4][1], "SITE-A1")),
                       content_type="application/json", **world["auth"])
    assert scan.status_code == 409 and "sealed" in scan.json()["extra"]["reason"]


def test_only_the_sites_samplers_seal_its_tubes(client, world, regions):
    other = make_user("sampler_other", "sampler", regions["street_a"])
    assert client.post("/api/v1/testing/tubes/T1/seal", **world["bearer"](other)).status_code == 403
    outsider = make_user("sampler_b", "sampler", regions["street_b"])
    assert client.post("/api/v1/testing/tubes/T1/seal", **world["bearer"](outsider)).status_code == 404
    assert client.post("/api/v1/testing/tubes/NOPE/seal", **world["auth"]).status_code == 404


def test_a_sampler_sees_the_tube_but_not_its_members(client, world):
    r = client.get("/api/v1/testing/tubes/T1", **world["auth"])
    assert r.status_code == 200
    body = r.json()
    assert (body["member_count"], body["status"], body["site"], body["campaign"]) == (3, "open", "SITE-A1", "R1")
    assert body["members"] is None


def test_a_person_level_role_sees_masked_members_and_the_read_is_audited(client, world, officer_a):
    from jingkong.access.models import AuditLog

    r = client.get("/api/v1/testing/tubes/T1", **world["bearer"](officer_a))
    members = r.json()["members"]
    assert [m["position"] for m in members] == [1, 2, 3]
    p0, n0 = world["people"][0]
    assert members[0]["person_id"] == p0.pk and members[0]["id_masked"] == p0.id_masked
    assert n0 not in r.content.decode()
    record = AuditLog.objects.get(action="person.list")
    assert record.detail == {"tube": "T1", "count": 3} and record.user == officer_a


def test_tubes_of_another_region_are_not_found(client, world, officer_b):
    assert client.get("/api/v1/testing/tubes/T1", **world["bearer"](officer_b)).status_code == 404


def test_a_sites_open_tubes(client, world):
    client.post("/api/v1/testing/tubes/T2/seal", **world["auth"])
    r = client.get("/api/v1/testing/sites/SITE-A1/open-tubes", **world["auth"])
    assert r.status_code == 200
    assert r.json() == {"site": "SITE-A1", "tubes": [
        {"barcode": "T1", "kind": "routine", "capacity": 10, "member_count": 3, "status": "open",
         "opened_at": T0.isoformat().replace("+00:00", "Z")}]}
    assert client.get("/api/v1/testing/sites/NOPE/open-tubes", **world["auth"]).status_code == 404
