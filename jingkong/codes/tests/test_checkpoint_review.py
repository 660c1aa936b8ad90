"""Regression tests from the review of the checkpoints area: retries of vehicle crossings, bad dates, the lake append
failing after commit, query counts of an online verification."""

from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest

from jingkong.codes.models import Crossing
from jingkong.codes.tests.checkpoint_helpers import NOW, activate, checkpoint, resident, token_of, venue
from jingkong.core import clock

pytestmark = pytest.mark.django_db

VERIFY = "/api/v1/codes/checkpoints/{code}/verify"
SYNC = "/api/v1/codes/checkpoints/{code}/sync"
_ids = itertools.count(1)


@pytest.fixture(autouse=True)
def _now():
    from jingkong.policy.selectors import active_profile_cache_clear

    active_profile_cache_clear()
    with clock.frozen(NOW):
        yield
    active_profile_cache_clear()


@pytest.fixture
def world(regions, officer_a, client_for, tmp_path, settings):
    settings.DATA_DIR = tmp_path
    activate()
    return {"regions": regions, "cp": checkpoint(regions["street_a"]), "client": client_for(officer_a),
            "venue": venue(regions["grid_a1"])}


def post(client, url, body):
    return client.post(url, data=json.dumps(body), content_type="application/json")


def test_a_vehicle_crossing_sent_again_is_a_replay_not_a_conflict(world):
    driver, d_number = resident(world["regions"]["grid_a1"])
    _, p_number = resident(world["regions"]["grid_a1"])
    body = {"plate": "浙B12345", "driver": {"id_number": d_number}, "passengers": [p_number], "client_id": "veh-1"}
    first = post(world["client"], VERIFY.format(code="CP-A1"), body)
    assert first.status_code == 201, first.content
    again = post(world["client"], VERIFY.format(code="CP-A1"), body)
    assert again.status_code == 200, again.content
    assert again.json()["crossing_id"] == first.json()["crossing_id"]
    assert Crossing.objects.count() == 1


def test_an_offline_vehicle_batch_sent_again_is_replayed(world):
    driver, _ = resident(world["regions"]["grid_a1"])
    item = {"client_id": "dev-v-1", "plate": "浙B54321", "driver": token_of(driver), "at": NOW.isoformat(),
            "decision": "allow"}
    first = post(world["client"], SYNC.format(code="CP-A1"), {"crossings": [item]}).json()
    assert first["counts"]["recorded"] == 1, first
    again = post(world["client"], SYNC.format(code="CP-A1"), {"crossings": [item]}).json()
    assert again["counts"] == {"recorded": 0, "replayed": 1, "rejected": 0}, again
    assert Crossing.objects.count() == 1


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_hourly_counts_for_an_extreme_day_are_not_a_500(world, day):
    r = world["client"].get(f"/api/v1/codes/checkpoints/hourly?day={day}")
    assert r.status_code in (200, 422), r.content
    r = world["client"].get(f"/api/v1/codes/checkpoints/CP-A1/hourly?day={day}")
    assert r.status_code in (200, 422), r.content


@pytest.mark.parametrize("day", ["2022-02-30", "9999-12-31", "0001-01-01", "2022-1-x"])
def test_pages_with_a_bad_day_are_not_a_500(world, day):
    for url in ("/codes/checkpoints/", "/codes/checkpoints/CP-A1/"):
        r = world["client"].get(url, {"day": day})
        assert r.status_code in (200, 302, 404), (url, r.status_code)


def test_a_pass_with_an_impossible_end_date_is_not_a_500(world, commander, client_for):
    c = client_for(commander)
    for until in ("2022-13-45T10:00", "2022-02-30T10:00", "9999-12-31T23:59"):
        r = c.post("/codes/checkpoints/passes/issue/", {"kind": "medical", "plate": "浙B11111", "holder": "王",
                                                        "valid_until": until})
        assert r.status_code in (200, 302), (until, r.status_code)


# --- the check-in lake after commit -----------------------------------------------------------------------------------


def _lake_people(tmp_path) -> list[int]:
    import pyarrow.parquet as pq

    from jingkong.codes import checkpoint_lake
    from jingkong.tracing.lake import CheckinLake

    rows = []
    for f in checkpoint_lake.files(CheckinLake(tmp_path / "lake")):
        rows += pq.read_table(f).to_pylist()
    return sorted(r["person_id"] for r in rows)


def _enter(world, capture, person, minutes: int):
    at = (NOW + dt.timedelta(minutes=minutes)).isoformat()
    with capture(execute=True):
        return post(world["client"], "/api/v1/codes/venues/V-A1/entries",
                    {"token": token_of(person), "temperature": 36.4, "masked": True, "at": at})


def test_an_unreadable_lake_file_is_not_a_500_and_is_rebuilt_from_the_database(
        world, tmp_path, django_capture_on_commit_callbacks):
    from jingkong.codes import checkpoint_lake
    from jingkong.tracing.lake import CheckinLake

    a, _ = resident(world["regions"]["grid_a1"])
    b, _ = resident(world["regions"]["grid_a1"])
    assert _enter(world, django_capture_on_commit_callbacks, a, -30).status_code == 201
    (target,) = checkpoint_lake.files(CheckinLake(tmp_path / "lake"))
    target.write_bytes(b"not a parquet file")  # a torn or damaged file
    r = _enter(world, django_capture_on_commit_callbacks, b, -20)
    assert r.status_code == 201, r.content
    assert _lake_people(tmp_path) == sorted([a.pk, b.pk])


def test_a_day_that_cannot_be_written_is_rebuilt_by_the_next_append(
        world, tmp_path, monkeypatch, django_capture_on_commit_callbacks):
    from jingkong.codes import checkpoint_lake

    a, _ = resident(world["regions"]["grid_a1"])
    b, _ = resident(world["regions"]["grid_a1"])
    real = checkpoint_lake._write_day

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint_lake, "_write_day", full_disk)
    assert _enter(world, django_capture_on_commit_callbacks, a, -30).status_code == 201
    assert _lake_people(tmp_path) == []
    monkeypatch.setattr(checkpoint_lake, "_write_day", real)  # the disk has room again
    assert _enter(world, django_capture_on_commit_callbacks, b, -20).status_code == 201
    assert _lake_people(tmp_path) == sorted([a.pk, b.pk])  # the first entry was not lost



def _queries(world, body) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        r = post(world["client"], VERIFY.format(code="CP-A1"), {**body, "client_id": f"q-{next(_ids)}"})
    assert r.status_code == 201, r.content
    return len(ctx.captured_queries)


def test_an_online_verification_costs_a_few_queries_whatever_the_number_of_occupants(world):
    grid = world["regions"]["grid_a1"]
    people = [resident(grid)[0] for _ in range(6)]
    tokens = [token_of(p) for p in people]
    _queries(world, {"token": tokens[0]})  # warm the policy cache
    one = _queries(world, {"token": tokens[0], "direction": "in"})
    # session, user, region (the request) + checkpoint, policy, person with code and test, zones, the writes
    assert one <= 13, one
    small = _queries(world, {"plate": "浙B10001", "driver": tokens[0], "passengers": tokens[1:2]})
    large = _queries(world, {"plate": "浙B10002", "driver": tokens[0], "passengers": tokens[1:]})
    assert large == small  # set-based: no query per occupant


def test_pages_show_colours_and_directions_in_the_reader_s_language(world, django_capture_on_commit_callbacks):
    c = world["client"]
    c.cookies["django_language"] = "zh-hans"
    _, red = resident(world["regions"]["grid_a1"], colour="red")
    page = c.post("/codes/checkpoints/CP-A1/verify/", {"subject": "person", "who": red, "direction": "out"})
    assert "红色" in page.content.decode()
    board = c.get("/codes/checkpoints/CP-A1/").content.decode()
    assert "红色" in board and "离开" in board
    assert ">red<" not in board and "· out" not in board
    _, green = resident(world["regions"]["grid_a1"])
    with django_capture_on_commit_callbacks(execute=True):
        page = c.post("/codes/venues/V-A1/", {"who": green, "temperature": "38.0", "masked": "yes"})
    assert "黄色" in page.content.decode()  # the code is now yellow, in Chinese


def test_two_people_under_one_record_id_in_a_batch_are_not_merged(world):
    grid = world["regions"]["grid_a1"]
    a, b = resident(grid)[0], resident(grid)[0]
    items = [{"client_id": "dup-1", "token": token_of(a), "at": NOW.isoformat()},
             {"client_id": "dup-1", "token": token_of(b), "at": NOW.isoformat()}]
    out = post(world["client"], SYNC.format(code="CP-A1"), {"crossings": items}).json()
    assert [x["status"] for x in out["results"]] == ["recorded", "rejected"]  # not a silent "replayed"
    assert out["results"][1]["field"] == "person"
    v1 = {"client_id": "dup-2", "plate": "浙B22222", "driver": token_of(a), "passengers": [token_of(b)],
          "at": NOW.isoformat(), "decision": "allow"}
    v2 = {**v1, "passengers": [token_of(b), token_of(a)]}
    out = post(world["client"], SYNC.format(code="CP-A1"), {"crossings": [v1, v2]}).json()
    assert [x["status"] for x in out["results"]] == ["recorded", "rejected"]
    assert out["results"][1]["field"] == "passengers"
    assert Crossing.objects.count() == 2


def test_an_automatic_pass_number_skips_one_typed_by_hand(world, commander, client_for):
    c = client_for(commander)
    until = (NOW + dt.timedelta(days=3)).isoformat()
    taken = "TX-330206002-20220110-0002"  # what the next automatic number would be
    r = post(c, "/api/v1/codes/passes", {"kind": "medical", "plate": "浙B30001", "holder": "王", "valid_until": until,
                                         "region_code": "330206002", "number": taken})
    assert r.status_code == 201, r.content
    r = post(c, "/api/v1/codes/passes", {"kind": "medical", "plate": "浙B30002", "holder": "李", "valid_until": until,
                                         "region_code": "330206002"})
    assert r.status_code == 201, r.content
    assert r.json()["number"] not in (taken, "")
    r = post(c, "/api/v1/codes/passes", {"kind": "medical", "plate": "浙B30003", "holder": "张", "valid_until": until,
                                         "region_code": "330206002", "number": taken})
    assert r.status_code == 409 and r.json()["extra"]["field"] == "number"
