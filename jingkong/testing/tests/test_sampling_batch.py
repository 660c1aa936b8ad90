"""Batches of scans through POST /api/v1/testing/scans/batch: per-item results, bad items alone rejected, retries,
repeats inside a batch, provisional persons, retests, and the state of every tube afterwards."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from jingkong.conftest import T0, make_user
from jingkong.testing.tests import sampling_helpers as h

pytestmark = pytest.mark.django_db
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}  # reasons are translated (the UI defaults to Chinese): read the English source
URL = "/api/v1/testing/scans/batch"


@pytest.fixture
def world(regions, frozen_clock, bearer):
    sampler = make_user("sampler_a", "sampler", regions["street_a"])
    round_ = h.campaign(regions["district"], "R1", pool_size=10)
    site = h.site(regions["grid_a1"], "SITE-A1", samplers=[sampler])
    people = [h.person(regions["grid_a1"], i) for i in range(1, 41)]
    return {"regions": regions, "sampler": sampler, "auth": bearer(sampler) | EN, "campaign": round_, "site": site,
            "people": people, "numbers": [n for _, n in people]}


def post(client, body, auth):
    return client.post(URL, data=json.dumps(body), content_type="application/json", **auth)


def batch(scans, site="SITE-A1", **extra):
    return {"site": site, "device": "pad-7", "scans": scans, **extra}


def samples(**filters):
    from jingkong.testing.models import Sample

    return Sample.objects.filter(**filters)


def tube_row(barcode):
    from jingkong.testing.models import Tube

    return Tube.objects.get(barcode=barcode)


def test_a_batch_fills_tubes_in_order_and_reports_every_item_and_tube(client, world):
    n = world["numbers"]
    scans = [{"tube": "B1", "id_number": n[i], "client_scan_id": f"s{i}"} for i in range(11)]
    scans += [{"tube": "B2", "id_number": n[i], "client_scan_id": f"s{i}"} for i in range(11, 14)]
    r = post(client, batch(scans), world["auth"])
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["counts"] == {"recorded": 13, "duplicate": 0, "rejected": 1, "provisional": 0, "replayed": 0}
    statuses = [x["status"] for x in body["results"]]
    assert statuses == ["recorded"] * 10 + ["rejected"] + ["recorded"] * 3
    assert [x["position"] for x in body["results"][:10]] == list(range(1, 11))
    assert body["results"][10]["field"] == "tube" and "sealed" in body["results"][10]["reason"]
    assert body["tubes"] == [
        {"barcode": "B1", "kind": "routine", "capacity": 10, "member_count": 10, "status": "sealed"},
        {"barcode": "B2", "kind": "routine", "capacity": 10, "member_count": 3, "status": "open"},
    ]
    assert [x["index"] for x in body["results"]] == list(range(14))
    b1 = tube_row("B1")
    assert (b1.member_count, b1.status, b1.sealed_at, b1.campaign) == (10, "sealed", T0, world["campaign"])
    assert samples(tube=b1).count() == 10 and samples().count() == 13
    s = samples().get(client_scan_id="s0")
    assert (s.device, s.sampler, s.site, s.position) == ("pad-7", world["sampler"], world["site"], 1)
    ids = {x["sample_id"] for x in body["results"] if x["status"] == "recorded"}
    assert ids == set(samples().values_list("id", flat=True))


def test_bad_items_are_rejected_alone_and_the_rest_is_kept(client, world, regions):
    n = world["numbers"]
    h.site(regions["grid_b1"], "SITE-B1")  # outside the sampler's scope
    h.site(regions["grid_a2"], "SITE-A2")  # not assigned
    scans = [
        {"tube": "B1", "id_number": n[0]},
        {"tube": "B1", "id_number": "330206199001011230"},  # check digit
        {"tube": "", "id_number": n[1]},
        {"tube": "B1", "id_number": n[2], "pool_size": "abc"},
        {"tube": "B1", "id_number": n[3], "tube_kind": "mixed"},
        {"tube": "B1", "id_number": n[4], "site": "SITE-B1"},
        {"tube": "B1", "id_number": n[5], "site": "SITE-A2"},
        {"tube": "B1", "id_number": n[6], "sampled_at": "tomorrow"},
        {"tube": "B1", "person_token": "JK1.1.AAAAAAAAAAAAAAAA"},
        {"tube": "B1"},
        {"tube": 12345, "id_number": n[7]},  # a numeric barcode is read as text
        {"tube": "B1", "id_number": n[8], "campaign": "NOPE"},
        {"tube": "B1", "id_number": n[9], "sampled_at": 1641024000},
    ]
    r = post(client, batch(scans), world["auth"])
    assert r.status_code == 200, r.content
    got = [(x["status"], x["field"]) for x in r.json()["results"]]
    assert got == [("recorded", ""), ("rejected", "id_number"), ("rejected", "tube"), ("rejected", "pool_size"),
                   ("rejected", "tube_kind"), ("rejected", "site"), ("rejected", "site"), ("rejected", "sampled_at"),
                   ("rejected", "person_token"), ("rejected", "id_number"), ("recorded", ""), ("rejected", "campaign"),
                   ("rejected", "sampled_at")]
    results = r.json()["results"]
    assert "check digit" in results[1]["reason"] and "not found" in results[5]["reason"]
    assert "not assigned" in results[6]["reason"]
    assert samples().count() == 2 and tube_row("12345").member_count == 1


def test_a_retried_batch_returns_the_original_results_and_writes_nothing(client, world):
    from jingkong.core.models import DomainEvent

    n = world["numbers"]
    body = batch([{"tube": f"B{i // 10}", "id_number": n[i], "client_scan_id": f"x{i}"} for i in range(25)])
    first = post(client, body, world["auth"]).json()
    events, count = DomainEvent.objects.count(), samples().count()
    again = post(client, body, world["auth"]).json()
    assert again["counts"] == {"recorded": 25, "duplicate": 0, "rejected": 0, "provisional": 0, "replayed": 25}
    assert [(x["sample_id"], x["position"]) for x in again["results"]] == \
           [(x["sample_id"], x["position"]) for x in first["results"]]
    assert again["tubes"] == first["tubes"]
    assert samples().count() == count == 25 and DomainEvent.objects.count() == events


def test_a_batch_without_scan_ids_run_again_gives_duplicates(client, world):
    n = world["numbers"]
    body = batch([{"tube": "B9", "id_number": n[i]} for i in range(5)])
    assert post(client, body, world["auth"]).json()["counts"]["recorded"] == 5
    again = post(client, body, world["auth"]).json()
    assert again["counts"]["duplicate"] == 5 and again["counts"]["replayed"] == 0
    assert tube_row("B9").member_count == 5


def test_repeats_inside_one_batch(client, world):
    n = world["numbers"]
    scans = [
        {"tube": "B1", "id_number": n[0], "client_scan_id": "a"},
        {"tube": "B1", "id_number": n[0], "client_scan_id": "a"},  # the device sent it twice: a retry
        {"tube": "B1", "id_number": n[0], "client_scan_id": "b"},  # same person, same tube: duplicate
        {"tube": "B1", "id_number": n[1], "client_scan_id": "a"},  # same id, another person: refused
        {"tube": "B2", "id_number": n[0], "client_scan_id": "c"},  # same person, another tube: recorded
    ]
    results = post(client, batch(scans), world["auth"]).json()["results"]
    assert [(x["status"], x["replayed"]) for x in results] == [
        ("recorded", False), ("recorded", True), ("duplicate", False), ("rejected", False), ("recorded", False)]
    assert results[1]["sample_id"] == results[2]["sample_id"] == results[0]["sample_id"]
    assert results[3]["field"] == "client_scan_id"
    assert tube_row("B1").member_count == 1 and samples().count() == 2


def test_a_scan_id_already_used_for_another_scan_is_refused(client, world):
    n = world["numbers"]
    post(client, batch([{"tube": "B1", "id_number": n[0], "client_scan_id": "k"}]), world["auth"])
    r = post(client, batch([{"tube": "B1", "id_number": n[1], "client_scan_id": "k"}]), world["auth"]).json()
    assert r["results"][0]["status"] == "rejected" and r["results"][0]["field"] == "client_scan_id"


def test_unknown_persons_are_registered_once(client, world):
    from jingkong.core.models import DomainEvent
    from jingkong.people.models import Person

    new = h.new_id(3)
    scans = [{"tube": "B1", "id_number": new, "name": "李四"}, {"tube": "B2", "id_number": new},
             {"tube": "B1", "id_number": world["numbers"][0]}]
    body = post(client, batch(scans), world["auth"]).json()
    assert [x["provisional"] for x in body["results"]] == [True, False, False]
    assert body["counts"]["provisional"] == 1
    p = Person.objects.get(source="provisional")
    assert p.name == "李四" and p.grid == world["regions"]["grid_a1"] and p.needs_review
    assert samples(person=p).count() == 2
    assert DomainEvent.objects.filter(type="people.person_created", payload__provisional=True).count() == 1
    summary = DomainEvent.objects.get(type="testing.scans_recorded")
    assert summary.payload["provisional"] == 1 and summary.payload["recorded"] == 3


def test_retest_scans_in_a_batch_claim_their_tasks(client, world):
    p0, n0 = world["people"][0]
    p1, n1 = world["people"][1]
    t0 = h.retest_task(p0)
    scans = [{"tube": "R1", "id_number": n0, "tube_kind": "retest"},
             {"tube": "R1", "id_number": n1, "tube_kind": "retest"},  # a retest tube holds one person
             {"tube": "R2", "id_number": n1, "tube_kind": "retest"}]
    results = post(client, batch(scans), world["auth"]).json()["results"]
    assert [x["status"] for x in results] == ["recorded", "rejected", "recorded"]
    assert results[0]["retest_task"] == t0.pk and results[2]["retest_task"] is None
    t0.refresh_from_db()
    assert t0.status == "sampled" and t0.sample_id == results[0]["sample_id"]
    assert samples().get(pk=results[0]["sample_id"]).retest_of == t0


def test_a_tube_whose_opening_scan_is_refused_is_opened_by_the_next_one(client, world):
    h.campaign(world["regions"]["street_a"], "R-PLANNED", status="planned")
    n = world["numbers"]
    scans = [{"tube": "B1", "id_number": n[0], "campaign": "R-PLANNED"}, {"tube": "B1", "id_number": n[1]}]
    body = post(client, batch(scans), world["auth"]).json()
    assert [x["status"] for x in body["results"]] == ["rejected", "recorded"]
    assert body["results"][1]["position"] == 1 and tube_row("B1").campaign == world["campaign"]


def test_a_tube_nobody_could_open_is_not_left_behind(client, world):
    from jingkong.testing.models import Tube

    h.campaign(world["regions"]["street_a"], "R-PLANNED", status="planned")
    body = post(client, batch([{"tube": "B1", "id_number": world["numbers"][0], "campaign": "R-PLANNED"}]),
                world["auth"]).json()
    assert body["results"][0]["status"] == "rejected" and body["tubes"] == []
    assert not Tube.objects.exists()


def test_a_replayed_scan_whose_tube_it_opened_stays_consistent(client, world):
    """A scan id reused for another tube: the new tube's only scan is refused, and the tube is not created."""
    from jingkong.testing.models import Tube

    n = world["numbers"]
    post(client, batch([{"tube": "B1", "id_number": n[0], "client_scan_id": "z"}]), world["auth"])
    body = post(client, batch([{"tube": "B7", "id_number": n[0], "client_scan_id": "z"}]), world["auth"]).json()
    assert body["results"][0]["field"] == "client_scan_id"
    assert not Tube.objects.filter(barcode="B7").exists()


def test_the_batch_site_must_be_reachable(client, world, regions):
    from jingkong.people.models import Person

    h.site(regions["grid_b1"], "SITE-B1")
    persons = Person.objects.count()
    r = post(client, batch([{"tube": "B1", "id_number": h.new_id(9)}], site="SITE-B1"), world["auth"])
    assert r.status_code == 404
    assert Person.objects.count() == persons and not samples().exists()


def test_items_name_their_own_site_when_the_batch_names_none(client, world):
    r = post(client, {"scans": [{"tube": "B1", "id_number": world["numbers"][0], "site": "SITE-A1"},
                                {"tube": "B1", "id_number": world["numbers"][1]}]}, world["auth"])
    assert [(x["status"], x["field"]) for x in r.json()["results"]] == [("recorded", ""), ("rejected", "site")]


def test_batch_limits(client, world):
    r = post(client, batch([{"tube": "B1", "id_number": world["numbers"][0]}] * 501), world["auth"])
    assert r.status_code == 422 and "scans" in r.json()["message"]
    assert post(client, batch([]), world["auth"]).status_code == 422
    assert post(client, {"site": "SITE-A1", "scans": "nope"}, world["auth"]).status_code == 422


def test_one_summary_event_per_batch(client, world):
    from jingkong.core.models import DomainEvent

    n = world["numbers"]
    post(client, batch([{"tube": f"B{i // 10}", "id_number": n[i]} for i in range(30)]), world["auth"])
    events = list(DomainEvent.objects.filter(type="testing.scans_recorded"))
    assert len(events) == 1
    assert events[0].payload["recorded"] == 30 and sorted(events[0].payload["sealed"]) == ["B0", "B1", "B2"]
    assert events[0].payload["tubes_opened"] == 3 and events[0].payload["device"] == "pad-7"
    assert events[0].region_code == world["regions"]["grid_a1"].code


def test_scans_already_in_a_tube_from_single_scans_count_toward_its_capacity(client, world):
    n = world["numbers"]
    for i in range(8):
        client.post("/api/v1/testing/scans", data=json.dumps(h.scan("B1", n[i], "SITE-A1")),
                    content_type="application/json", **world["auth"])
    body = post(client, batch([{"tube": "B1", "id_number": n[i]} for i in range(6, 12)]), world["auth"]).json()
    assert [x["status"] for x in body["results"]] == ["duplicate", "duplicate", "recorded", "recorded", "rejected",
                                                       "rejected"]
    assert body["tubes"][0]["member_count"] == 10


def test_a_sealed_tube_takes_nothing_more(client, world):
    from jingkong.testing.models import Tube

    n = world["numbers"]
    post(client, batch([{"tube": "B1", "id_number": n[0]}]), world["auth"])
    Tube.objects.filter(barcode="B1").update(status="sealed", sealed_at=T0)
    body = post(client, batch([{"tube": "B1", "id_number": n[1]}]), world["auth"]).json()
    assert body["results"][0]["status"] == "rejected" and "sealed" in body["results"][0]["reason"]


def test_the_first_swab_time_is_the_earliest(client, world):
    n = world["numbers"]
    at = [(T0 - dt.timedelta(minutes=m)).isoformat() for m in (5, 20, 10)]
    post(client, batch([{"tube": "B1", "id_number": n[i], "sampled_at": at[i]} for i in range(3)]), world["auth"])
    assert tube_row("B1").opened_at == T0 - dt.timedelta(minutes=20)


def test_answers_have_exactly_the_documented_shape(client, world):
    """The scan routes render their JSON themselves: it must match the OpenAPI schemas key for key."""
    from jingkong.testing.schemas.sampling import BatchOut, ScanOut

    n = world["numbers"]
    body = post(client, batch([{"tube": "B1", "id_number": n[0]}, {"tube": "", "id_number": n[1]}]),
                world["auth"]).json()
    assert BatchOut.model_validate(body).model_dump() == body
    single = client.post("/api/v1/testing/scans", data=json.dumps(h.scan("B2", n[2], "SITE-A1")),
                         content_type="application/json", **world["auth"]).json()
    assert ScanOut.model_validate(single).model_dump() == single
