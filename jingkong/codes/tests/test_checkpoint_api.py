"""Checkpoint verification through the API: people and vehicles, every reason, the crossing log, arrivals, offline
batches (idempotent by client_id), hourly counts, scope and bad input."""

from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest

from jingkong.codes.models import Arrival, Crossing, HealthCode
from jingkong.codes.tests.checkpoint_helpers import (
    NOW,
    a_pass,
    activate,
    checkpoint,
    lockdown_zone,
    negative_test,
    new_id,
    resident,
    risk_area,
    token_of,
)
from jingkong.conftest import make_user
from jingkong.core import clock

pytestmark = pytest.mark.django_db

VERIFY = "/api/v1/codes/checkpoints/{code}/verify"
SYNC = "/api/v1/codes/checkpoints/{code}/sync"


@pytest.fixture(autouse=True)
def _now():
    from jingkong.policy.selectors import active_profile_cache_clear

    active_profile_cache_clear()
    with clock.frozen(NOW):
        yield
    active_profile_cache_clear()


@pytest.fixture
def world(regions, officer_a, client_for):
    activate()
    return {"regions": regions, "cp": checkpoint(regions["street_a"]), "client": client_for(officer_a)}


def post(client, url, body):
    return client.post(url, data=json.dumps(body), content_type="application/json")


_ids = itertools.count(1)


def verify(w, body, code="CP-A1", *, derive: bool = False):
    """POST a verification; each gets its own client_id unless ``derive`` (the server derives one from the record:
    the same record at the same second is then a retry)."""
    if not derive and "client_id" not in body:
        body = {**body, "client_id": f"t-{next(_ids)}"}
    return post(w["client"], VERIFY.format(code=code), body)


def codes_of(answer) -> list[str]:
    return [r["code"] for r in answer["reasons"]]


# --- people -----------------------------------------------------------------------------------------------------------


def test_a_green_token_is_allowed_and_the_crossing_logged(world):
    from jingkong.access.models import AuditLog
    from jingkong.core.models import DomainEvent

    person, _ = resident(world["regions"]["grid_a1"])
    r = verify(world, {"token": token_of(person), "direction": "in"})
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["decision"] == "allow" and body["colour"] == "green" and body["reasons"] == []
    assert body["people"][0]["id_masked"] == person.id_masked
    c = Crossing.objects.get(pk=body["crossing_id"])
    assert (c.person_id, c.decision, c.subject, c.direction, c.offline) == (person.pk, "allow", "person", "in", False)
    assert c.region_code == "330206002"
    assert AuditLog.objects.filter(action="person.verify", object_id=str(person.pk)).exists()
    assert DomainEvent.objects.filter(type="codes.crossing_recorded").count() == 1


def test_the_code_on_record_is_fresher_than_the_token(world):
    person, _ = resident(world["regions"]["grid_a1"])
    token = token_of(person)
    HealthCode.objects.filter(person=person).update(colour="red")
    body = verify(world, {"token": token}).json()
    assert body["decision"] == "deny" and body["colour"] == "red" and codes_of(body) == ["code_colour"]


@pytest.mark.parametrize(("colour", "decision"), [("green", "allow"), ("yellow", "refer"), ("red", "deny")])
def test_an_id_number_is_looked_up(world, colour, decision):
    _, number = resident(world["regions"]["grid_b1"], colour=colour)  # people from anywhere cross
    body = verify(world, {"id_number": number}).json()
    assert body["decision"] == decision and body["colour"] == colour


def test_forged_and_expired_tokens_are_logged_with_the_tokens_reason(world):
    person, _ = resident(world["regions"]["grid_a1"])
    old = token_of(person, at=NOW - dt.timedelta(hours=1))  # (the signing key is made at its first use)
    token = token_of(person)
    head, kid, payload, sig = token.split(".")
    forged = ".".join([head, kid, payload, ("A" if sig[0] != "A" else "B") + sig[1:]])
    body = verify(world, {"token": forged}).json()
    assert body["decision"] == "deny" and codes_of(body) == ["token_invalid"]
    assert Crossing.objects.get(pk=body["crossing_id"]).person_id is None
    body = verify(world, {"token": old}).json()
    assert body["decision"] == "refer" and codes_of(body) == ["token_expired"]
    assert Crossing.objects.count() == 2


def test_an_unregistered_id_number_is_referred(world):
    body = verify(world, {"id_number": new_id()}).json()
    assert body["decision"] == "refer" and codes_of(body) == ["unknown_person"]


def test_no_one_leaves_a_lockdown_zone(world):
    regions = world["regions"]
    person, number = resident(regions["grid_a1"])
    zone = lockdown_zone(regions["grid_a1"], person)
    checkpoint(regions["grid_a1"], "CP-ZONE", kind="zone_boundary", zone=zone)
    body = verify(world, {"id_number": number, "direction": "out"}, code="CP-ZONE").json()
    assert body["decision"] == "deny" and "zone_exit" in codes_of(body)
    neighbour, n2 = resident(regions["grid_a1"])
    assert verify(world, {"id_number": n2, "direction": "out"}, code="CP-ZONE").json()["decision"] == "allow"
    # and outbound at any road checkpoint
    body = verify(world, {"id_number": number, "direction": "out"}).json()
    assert body["decision"] == "deny" and "zone_exit" in codes_of(body)


def test_a_highway_exit_asks_for_a_recent_negative_test(world):
    regions = world["regions"]
    checkpoint(regions["street_a"], "CP-HWY", kind="highway_exit")
    person, number = resident(regions["grid_a1"])
    body = verify(world, {"id_number": number, "direction": "in"}, code="CP-HWY").json()
    assert body["decision"] == "refer" and codes_of(body) == ["no_negative_test"]
    negative_test(person, hours_ago=50)
    assert verify(world, {"id_number": number, "direction": "in"}, code="CP-HWY").json()["decision"] == "refer"
    negative_test(person, hours_ago=10)
    assert verify(world, {"id_number": number, "direction": "in"}, code="CP-HWY").json()["decision"] == "allow"
    assert verify(world, {"id_number": number, "direction": "out"}, code="CP-HWY").json()["decision"] == "allow"


def test_origin_in_a_risk_area_and_arrivals_from_elsewhere(world):
    risk_area("310115", "high")
    risk_area("320102", "medium")
    person, number = resident(world["regions"]["grid_a1"])
    body = verify(world, {"id_number": number, "direction": "in", "origin_code": "310115001"}).json()
    assert body["decision"] == "deny" and codes_of(body) == ["origin_risk"]
    assert not Arrival.objects.exists()  # turned back: did not arrive
    body = verify(world, {"id_number": number, "direction": "in", "origin_code": "320102005"}).json()
    assert body["decision"] == "refer" and body["arrivals"] == 1
    arrival = Arrival.objects.get()
    assert (arrival.person_id, arrival.origin_code, arrival.source, arrival.region_code) == (
        person.pk, "320102005", "checkpoint", "330206002001001")
    # the code rules read the arrival: the person's code is recomputed at once
    assert HealthCode.objects.get(person=person).colour == "yellow"
    # from a place without risk: an arrival, code unchanged; from inside the district: no arrival
    other, n2 = resident(world["regions"]["grid_a1"])
    assert verify(world, {"id_number": n2, "direction": "in", "origin_code": "440305"}).json()["arrivals"] == 1
    assert HealthCode.objects.get(person=other).colour == "green"
    assert verify(world, {"id_number": n2, "direction": "in", "origin_code": "330206004"}).json()["arrivals"] == 0


# --- vehicles ---------------------------------------------------------------------------------------------------------


def test_a_medical_vehicle_with_a_pass_keeps_flowing_with_the_reasons_recorded(world):
    regions = world["regions"]
    driver, d_number = resident(regions["grid_a1"], colour="yellow")
    patient, p_number = resident(regions["grid_b1"], colour="red")
    a_pass("浙B12345", "medical", number="TX-MED-1")
    body = verify(world, {"plate": "浙B·12345", "driver": {"id_number": d_number}, "passengers": [p_number],
                          "direction": "in"}).json()
    assert body["decision"] == "allow" and body["pass_number"] == "TX-MED-1"
    assert body["colour"] == "red"
    waived = [r for r in body["reasons"] if r.get("waived")]
    assert {r["who"] for r in waived} == {"driver", "passenger 1"}
    c = Crossing.objects.get(pk=body["crossing_id"])
    assert (c.subject, c.plate, c.passengers, c.pass_used.number, c.person_id) == (
        "vehicle", "浙B12345", 2, "TX-MED-1", driver.pk)


def test_a_pass_does_not_let_a_red_driver_through_and_a_revoked_pass_helps_nothing(world):
    regions = world["regions"]
    _, red = resident(regions["grid_a1"], colour="red")
    _, yellow = resident(regions["grid_a1"], colour="yellow")
    a_pass("浙B00001", "essential_supply", number="TX-SUP-1")
    body = verify(world, {"plate": "浙B00001", "driver": red}).json()
    assert body["decision"] == "deny" and "pass_driver_colour" in codes_of(body)
    a_pass("浙B00002", "medical", number="TX-REV-1", revoked=True)
    body = verify(world, {"plate": "浙B00002", "driver": yellow, "pass_number": "TX-REV-1"}).json()
    assert body["decision"] == "refer" and codes_of(body)[-1] == "pass_invalid"
    body = verify(world, {"plate": "浙B00003", "driver": yellow, "pass_number": "TX-SUP-1"}).json()
    from django.conf import settings
    from django.utils import translation

    from jingkong.codes import checkpoint_rules as cr

    with translation.override(settings.LANGUAGE_CODE):  # the answer speaks the default language
        issued_for_another = cr.pass_text("plate_mismatch", "TX-SUP-1")
    assert body["decision"] == "refer" and body["reasons"][-1]["text"] == issued_for_another


def test_a_vehicle_without_a_pass_takes_the_worst_occupant(world):
    regions = world["regions"]
    _, green = resident(regions["grid_a1"])
    _, yellow = resident(regions["grid_a1"], colour="yellow")
    body = verify(world, {"plate": "浙A88888", "driver": green, "passengers": [green, yellow]}).json()
    assert body["decision"] == "refer" and [r["who"] for r in body["reasons"]] == ["passenger 2"]
    assert len(body["people"]) == 3


# --- idempotency ------------------------------------------------------------------------------------------------------


def test_a_record_sent_again_returns_the_stored_result_and_a_reused_id_is_refused(world):
    _, number = resident(world["regions"]["grid_a1"], colour="yellow")
    body = {"client_id": "dev1-0001", "id_number": number, "at": "2022-01-10T09:55:00+08:00", "direction": "in"}
    first = verify(world, body)
    assert first.status_code == 201
    again = verify(world, body)
    assert again.status_code == 200 and again.json()["status"] == "replayed"
    assert again.json()["crossing_id"] == first.json()["crossing_id"]
    assert again.json()["decision"] == "refer"
    clash = verify(world, {**body, "direction": "out"})
    assert clash.status_code == 409 and clash.json()["extra"]["field"] == "direction"
    _, other = resident(world["regions"]["grid_a1"])
    clash = verify(world, {**body, "id_number": other})
    assert clash.status_code == 409 and clash.json()["extra"]["field"] == "person"
    assert Crossing.objects.count() == 1


def test_without_a_client_id_the_same_record_in_the_same_second_is_a_retry(world):
    _, number = resident(world["regions"]["grid_a1"])
    first = verify(world, {"id_number": number}, derive=True)
    again = verify(world, {"id_number": number}, derive=True)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["client_id"].startswith("d:") and again.json()["client_id"] == first.json()["client_id"]
    assert Crossing.objects.count() == 1


# --- offline batches --------------------------------------------------------------------------------------------------


def test_offline_crossings_sync_without_duplicates(world):
    regions = world["regions"]
    green, _ = resident(regions["grid_a1"])
    red, _ = resident(regions["grid_a1"], colour="red")
    _, number = resident(regions["grid_a1"])
    zone_resident, _ = resident(regions["grid_a1"])
    lockdown_zone(regions["grid_a1"], zone_resident)
    at = "2022-01-10T09:30:00+08:00"
    items = [
        {"client_id": "off-1", "token": token_of(green, at=NOW - dt.timedelta(minutes=31)), "at": at,
         "direction": "in"},
        {"client_id": "off-2", "token": token_of(red, at=NOW - dt.timedelta(minutes=31)), "at": at},
        {"client_id": "off-3", "id_number": number, "at": at, "decision": "allow"},
        {"client_id": "off-4", "id_number": number, "at": at},  # no token, no decision
        {"token": token_of(green, at=NOW - dt.timedelta(minutes=31)), "at": at},  # no client_id
        {"client_id": "off-6", "token": token_of(zone_resident, at=NOW - dt.timedelta(minutes=31)), "at": at,
         "direction": "out", "decision": "deny"},
    ]
    r = post(world["client"], SYNC.format(code="CP-A1"), {"device": "pda-7", "crossings": items})
    assert r.status_code == 200, r.content
    out = r.json()
    assert out["counts"] == {"recorded": 4, "replayed": 0, "rejected": 2}
    res = out["results"]
    # the tokens were verified at the crossing time (they had expired by the time of the sync)
    assert [x["decision"] for x in res[:3]] == ["allow", "deny", "allow"]
    assert (res[3]["field"], res[4]["field"]) == ("decision", "client_id")
    # offline: only the token was checked; the device's deny (a zone exit it saw) is what happened, and is kept
    assert res[5]["decision"] == "deny" and codes_of(res[5]) == ["device_decision"]
    stored = Crossing.objects.get(client_id="off-1")
    assert stored.offline and stored.at == dt.datetime(2022, 1, 10, 1, 30, tzinfo=dt.UTC)
    again = post(world["client"], SYNC.format(code="CP-A1"), {"crossings": items}).json()
    assert again["counts"] == {"recorded": 0, "replayed": 4, "rejected": 2}
    assert Crossing.objects.count() == 4
    changed = [{**items[1], "at": "2022-01-10T09:31:00+08:00"}, {**items[0]}, {**items[0], "direction": "out"}]
    out = post(world["client"], SYNC.format(code="CP-A1"), {"crossings": changed}).json()
    assert [x["status"] for x in out["results"]] == ["rejected", "replayed", "rejected"]
    assert out["results"][0]["field"] == "at" and out["results"][2]["field"] == "direction"
    assert Crossing.objects.count() == 4


def test_a_batch_is_at_most_500(world):
    r = post(world["client"], SYNC.format(code="CP-A1"), {"crossings": [{"client_id": str(i)} for i in range(501)]})
    assert r.status_code == 422


def test_repeats_inside_one_batch(world):
    person, _ = resident(world["regions"]["grid_a1"])
    t = token_of(person)
    items = [{"client_id": "x1", "token": t}, {"client_id": "x1", "token": t}, {"client_id": "x1", "token": t,
                                                                                 "direction": "in"}]
    out = post(world["client"], SYNC.format(code="CP-A1"), {"crossings": items}).json()
    assert [x["status"] for x in out["results"]] == ["recorded", "replayed", "rejected"]
    assert out["results"][2]["field"] == "direction"
    assert Crossing.objects.count() == 1


# --- counts per hour --------------------------------------------------------------------------------------------------


def test_counts_and_denials_per_checkpoint_per_hour(world):
    regions = world["regions"]
    _, green = resident(regions["grid_a1"])
    _, red = resident(regions["grid_a1"], colour="red")
    checkpoint(regions["street_a"], "CP-A2")
    for at, number, code in [("08:10", green, "CP-A1"), ("08:50", red, "CP-A1"), ("09:05", red, "CP-A1"),
                             ("09:40", green, "CP-A2")]:
        assert verify(world, {"id_number": number, "at": f"2022-01-10T{at}:00+08:00"}, code=code).status_code == 201
    out = world["client"].get("/api/v1/codes/checkpoints/hourly?day=2022-01-10").json()
    got = [(h["checkpoint"], h["hour"][11:16], h["total"], h["denied"]) for h in out["hours"]]
    assert got == [("CP-A1", "08:00", 2, 1), ("CP-A1", "09:00", 1, 1), ("CP-A2", "09:00", 1, 0)]
    assert out["totals"]["total"] == 4 and out["totals"]["denied"] == 2
    one = world["client"].get("/api/v1/codes/checkpoints/CP-A2/hourly?day=2022-01-10").json()
    assert [h["checkpoint"] for h in one["hours"]] == ["CP-A2"]
    recent = world["client"].get("/api/v1/codes/checkpoints/CP-A1/crossings?decision=deny").json()
    assert len(recent) == 2 and all(c["decision"] == "deny" for c in recent)


# --- scope and staff --------------------------------------------------------------------------------------------------


def test_a_checkpoint_of_street_b_is_not_found_for_street_a(world, regions, client_for, officer_b):
    _, number = resident(regions["grid_a1"])
    checkpoint(regions["street_b"], "CP-B1")
    assert verify(world, {"id_number": number}, code="CP-B1").status_code == 404
    assert world["client"].get("/api/v1/codes/checkpoints/CP-B1").status_code == 404
    assert post(world["client"], SYNC.format(code="CP-B1"), {"crossings": [{"client_id": "1"}]}).status_code == 404
    assert post(client_for(officer_b), VERIFY.format(code="CP-B1"), {"id_number": number}).status_code == 201
    assert [c["code"] for c in world["client"].get("/api/v1/codes/checkpoints").json()] == ["CP-A1"]


def test_checkpoint_officers_verify_only_at_their_own_checkpoints(world, regions, client_for):
    _, number = resident(regions["grid_a1"])
    officer = make_user("cp_officer_a", "checkpoint_officer", regions["street_a"])
    cp = checkpoint(regions["street_a"], "CP-A9", staff=[officer])
    c = client_for(officer)
    assert post(c, VERIFY.format(code="CP-A1"), {"id_number": number}).status_code == 403
    assert post(c, VERIFY.format(code="CP-A9"), {"id_number": number}).status_code == 201
    assert [x["code"] for x in c.get("/api/v1/codes/checkpoints").json()] == ["CP-A9"]
    cp.active = False
    cp.save()
    r = post(c, VERIFY.format(code="CP-A9"), {"id_number": number})
    assert r.status_code == 422 and r.json()["extra"]["field"] == "checkpoint"


# --- bad input --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "field"), [
    ({"token": "JKC1.abc\x00"}, "person.token"),
    ({"id_number": "33020619800101\x00123"}, "person.id_number"),
    ({"id_number": "123"}, "person.id_number"),
    ({}, "person"),
    ({"token": "x", "id_number": "330206198001010011"}, "person"),
    ({"id_number": "x", "direction": "sideways"}, "direction"),
    ({"id_number": "x", "origin_code": "Shanghai"}, "origin_code"),
    ({"id_number": "x", "at": "yesterday"}, "at"),
    ({"id_number": "x", "at": "2030-01-01T00:00:00+08:00"}, "at"),
    ({"id_number": "x", "client_id": "a b"}, "client_id"),
    ({"id_number": "x", "client_id": "x" * 65}, "client_id"),
    ({"plate": "浙B\x0012345"}, "plate"),
    ({"plate": "!!"}, "plate"),
    ({"subject": "horse"}, "subject"),
])
def test_bad_input_is_a_422_naming_the_field(world, body, field):
    r = verify(world, body)
    assert r.status_code == 422, (r.status_code, r.content)
    assert r.json()["extra"]["field"] == field
    assert not Crossing.objects.exists()


@pytest.mark.parametrize("code", ["NOPE", "CP%00A1", "x" * 41, "CP-A1'--"])
def test_unknown_checkpoints_are_not_found(world, code):
    assert verify(world, {"id_number": "x"}, code=code).status_code == 404


def test_without_checkpoint_rules_in_force_the_answer_says_so(regions, officer_a, client_for):
    checkpoint(regions["street_a"])
    _, number = resident(regions["grid_a1"])
    r = post(client_for(officer_a), VERIFY.format(code="CP-A1"), {"id_number": number})
    assert r.status_code == 409 and r.json()["code"] == "policy_incomplete"
