"""Venue entry (测温+亮码+戴口罩): decisions, fever-clinic referrals that turn the code yellow in the same transaction,
the referral list and its follow-up, check-ins appended to the tracing lake, offline sync, scope and bad input."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow.parquet as pq
import pytest

from jingkong.codes.models import FeverReferral, HealthCode, VenueEntry
from jingkong.codes.tests.checkpoint_helpers import NOW, activate, new_id, resident, token_of, venue
from jingkong.core import clock

pytestmark = pytest.mark.django_db(transaction=False)

ENTRY = "/api/v1/codes/venues/{code}/entries"
SYNC = "/api/v1/codes/venues/{code}/entries/sync"


@pytest.fixture(autouse=True)
def _now():
    from jingkong.policy.selectors import active_profile_cache_clear

    active_profile_cache_clear()
    with clock.frozen(NOW):
        yield
    active_profile_cache_clear()


@pytest.fixture
def lake(tmp_path, settings):
    from jingkong.tracing.lake import CheckinLake

    settings.DATA_DIR = tmp_path
    return CheckinLake(tmp_path / "lake")


@pytest.fixture
def world(regions, officer_a, client_for, lake, django_capture_on_commit_callbacks):
    activate()
    return {"regions": regions, "venue": venue(regions["grid_a1"]), "client": client_for(officer_a), "lake": lake,
            "commit": django_capture_on_commit_callbacks}


def post(client, url, body):
    return client.post(url, data=json.dumps(body), content_type="application/json")


def enter(w, body, code="V-A1"):
    with w["commit"](execute=True):
        return post(w["client"], ENTRY.format(code=code), body)


def lake_rows(lake) -> list[dict]:
    from jingkong.codes import checkpoint_lake

    rows = []
    for f in checkpoint_lake.files(lake):
        rows += pq.read_table(f).to_pylist()
    return rows


def test_a_green_person_with_a_mask_enters_and_the_scan_is_a_check_in(world):
    person, _ = resident(world["regions"]["grid_a1"])
    r = enter(world, {"token": token_of(person), "temperature": 36.5, "masked": True})
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["decision"] == "allow" and body["referral_id"] is None
    entry = VenueEntry.objects.get(pk=body["entry_id"])
    assert (entry.person_id, entry.venue_id, str(entry.temperature), entry.masked) == (
        person.pk, world["venue"].pk, "36.5", True)
    rows = lake_rows(world["lake"])
    assert [(r["person_id"], r["venue_id"], r["checkin_at"]) for r in rows] == [(person.pk, world["venue"].pk, NOW)]
    assert rows[0]["checkout_at"] > rows[0]["checkin_at"]
    # tracing reads it like any other check-in
    stays = world["lake"].stays_of([person.pk], NOW - dt.timedelta(hours=1), NOW + dt.timedelta(hours=1))
    assert [s["venue_code"] for s in stays] == ["V-A1"]


def test_a_fever_refers_to_the_fever_clinic_and_turns_the_code_yellow(world):
    from jingkong.core.models import DomainEvent

    person, number = resident(world["regions"]["grid_a1"])
    body = enter(world, {"id_number": number, "temperature": "37.3", "masked": True}).json()
    assert body["decision"] == "refer" and [r["code"] for r in body["reasons"]] == ["fever"]
    referral = FeverReferral.objects.get(pk=body["referral_id"])
    assert (referral.person_id, referral.status, str(referral.temperature), referral.venue_id) == (
        person.pk, "referred", "37.3", world["venue"].pk)
    assert referral.region_code == "330206002001001"
    assert HealthCode.objects.get(person=person).colour == "yellow" and body["colour_now"] == "yellow"
    assert DomainEvent.objects.filter(type="codes.fever_referred", subject_id=str(person.pk)).exists()
    below, n2 = resident(world["regions"]["grid_a1"])
    body = enter(world, {"id_number": n2, "temperature": "37.2", "masked": True}).json()
    assert body["decision"] == "allow" and body["referral_id"] is None
    assert HealthCode.objects.get(person=below).colour == "green"


def test_the_referral_list_and_its_follow_up(world, regions, client_for, officer_b, grid_worker_a):
    person, number = resident(regions["grid_a1"])
    rid = enter(world, {"id_number": number, "temperature": 38.1}).json()["referral_id"]
    listed = world["client"].get("/api/v1/codes/referrals").json()
    assert [i["id"] for i in listed["items"]] == [rid] and listed["items"][0]["name"] == person.name
    assert client_for(grid_worker_a).get("/api/v1/codes/referrals").json()["count"] == 1
    assert client_for(officer_b).get("/api/v1/codes/referrals").json()["count"] == 0
    url = f"/api/v1/codes/referrals/{rid}/status"
    assert post(client_for(officer_b), url, {"status": "visited"}).status_code == 404
    assert post(client_for(grid_worker_a), url, {"status": "visited"}).status_code == 403  # follow-up: managers
    r = post(world["client"], url, {"status": "visited", "note": "发热门诊已接诊"})
    assert r.status_code == 200 and r.json()["status"] == "visited"
    assert HealthCode.objects.get(person=person).colour == "yellow"  # still open
    r = post(world["client"], url, {"status": "cleared"})
    assert r.status_code == 200 and r.json()["closed_at"]
    assert HealthCode.objects.get(person=person).colour == "green"  # recomputed in the same call
    back = post(world["client"], url, {"status": "referred"})
    assert back.status_code == 409
    assert world["client"].get("/api/v1/codes/referrals?status=cleared").json()["count"] == 1
    assert post(world["client"], url, {"status": "visited", "note": "x\x00"}).status_code == 422


def test_no_mask_and_bad_codes(world):
    person, number = resident(world["regions"]["grid_a1"])
    body = enter(world, {"id_number": number, "temperature": 36.4, "masked": False}).json()
    assert body["decision"] == "refer" and [r["code"] for r in body["reasons"]] == ["no_mask"]
    red, red_number = resident(world["regions"]["grid_a1"], colour="red")
    assert enter(world, {"id_number": red_number, "masked": True}).json()["decision"] == "deny"
    r = enter(world, {"id_number": new_id(), "temperature": 36.5})
    assert r.status_code == 200 and r.json()["status"] == "not_recorded" and r.json()["decision"] == "refer"
    assert VenueEntry.objects.count() == 2


@pytest.mark.parametrize(("body", "field"), [
    ({"temperature": "abc"}, "temperature"),
    ({"temperature": 50}, "temperature"),
    ({"temperature": 12}, "temperature"),
    ({"temperature": "NaN"}, "temperature"),
    ({"temperature": "36.5\x00"}, "temperature"),
    ({"temperature": 36.5, "at": "2022-13-01T00:00:00"}, "at"),
    ({"temperature": 36.5, "client_id": "a\x00b"}, "client_id"),
])
def test_bad_input_is_a_422_naming_the_field(world, body, field):
    _, number = resident(world["regions"]["grid_a1"])
    r = enter(world, {"id_number": number, **body})
    assert r.status_code == 422, r.content
    assert r.json()["extra"]["field"] == field
    assert not VenueEntry.objects.exists() and not FeverReferral.objects.exists()


def test_a_venue_of_street_b_is_not_found(world, regions, client_for, officer_b):
    venue(regions["grid_b1"], "V-B1")
    _, number = resident(regions["grid_a1"])
    assert enter(world, {"id_number": number}, code="V-B1").status_code == 404
    assert enter(world, {"id_number": number}, code="NOPE").status_code == 404
    assert post(client_for(officer_b), ENTRY.format(code="V-B1"), {"id_number": number}).status_code == 201


def test_a_scan_sent_again_is_stored_once_and_a_reused_id_is_refused(world):
    person, number = resident(world["regions"]["grid_a1"])
    body = {"client_id": "gate-1", "id_number": number, "temperature": 37.9, "masked": True}
    first = enter(world, body)
    assert first.status_code == 201
    again = enter(world, body)
    assert again.status_code == 200 and again.json()["status"] == "replayed"
    assert again.json()["referral_id"] == first.json()["referral_id"]
    clash = enter(world, {**body, "temperature": 36.6})
    assert clash.status_code == 409 and clash.json()["extra"]["field"] == "temperature"
    assert (VenueEntry.objects.count(), FeverReferral.objects.count()) == (1, 1)
    assert len(lake_rows(world["lake"])) == 1


def test_offline_venue_scans_sync_without_duplicates(world):
    regions = world["regions"]
    a, na = resident(regions["grid_a1"])
    b, _ = resident(regions["grid_a1"])
    items = [
        {"client_id": "v-1", "id_number": na, "temperature": 36.6, "masked": True, "at": "2022-01-10T09:00:00+08:00"},
        {"client_id": "v-2", "token": token_of(b, at=NOW - dt.timedelta(hours=1) + dt.timedelta(minutes=1)),
         "temperature": 38.0, "masked": True, "at": "2022-01-10T09:02:00+08:00"},
        {"client_id": "v-3", "id_number": na, "temperature": "hot"},
        {"id_number": na, "temperature": 36.6},
    ]
    with world["commit"](execute=True):
        out = post(world["client"], SYNC.format(code="V-A1"), {"entries": items}).json()
    assert out["counts"] == {"recorded": 2, "replayed": 0, "rejected": 2, "not_recorded": 0}
    assert [r["field"] for r in out["results"][2:]] == ["temperature", "client_id"]
    assert out["results"][1]["referral_id"] and HealthCode.objects.get(person=b).colour == "yellow"
    with world["commit"](execute=True):
        again = post(world["client"], SYNC.format(code="V-A1"), {"entries": items}).json()
    assert again["counts"]["replayed"] == 2 and again["counts"]["recorded"] == 0
    assert (VenueEntry.objects.count(), FeverReferral.objects.count()) == (2, 1)
    rows = lake_rows(world["lake"])
    assert sorted((r["person_id"], r["checkin_at"]) for r in rows) == [
        (a.pk, dt.datetime(2022, 1, 10, 1, 0, tzinfo=dt.UTC)), (b.pk, dt.datetime(2022, 1, 10, 1, 2, tzinfo=dt.UTC))]
    assert post(world["client"], SYNC.format(code="V-A1"), {"entries": [{}] * 501}).status_code == 422


def test_the_lake_file_can_be_rebuilt_from_the_database(world):
    from jingkong.codes import checkpoint_lake

    person, number = resident(world["regions"]["grid_a1"])
    enter(world, {"id_number": number, "temperature": 36.5})
    for f in checkpoint_lake.files(world["lake"]):
        f.unlink()
    assert checkpoint_lake.rebuild_days([dt.date(2022, 1, 10)], lake=world["lake"]) == {"2022-01-10": 1}
    assert [r["person_id"] for r in lake_rows(world["lake"])] == [person.pk]
    assert checkpoint_lake.append_checkins([(person.pk, world["venue"].pk, NOW)], lake=world["lake"]) == 1
    assert len(lake_rows(world["lake"])) == 1  # the same check-in twice is kept once
