"""The lab-side API: labs and technicians, results entry and upload, batches, follow-up list, turnaround, overdue."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from jingkong.conftest import T0, make_user
from jingkong.core import clock
from jingkong.testing.models import Lab, RetestTask, Tube, TubeResult
from jingkong.testing.tests.labs_helpers import make_lab, make_persons, make_site, make_tube

pytestmark = pytest.mark.django_db
LATER = T0 + dt.timedelta(hours=6)
API = "/api/v1/testing"


@pytest.fixture
def world(regions, client_for):
    with clock.frozen(LATER):
        tech = make_user("tech", "lab_technician", regions["district"])
        lab = make_lab(regions["district"], technicians=[tech])
        people = make_persons(regions["grid_a1"], 12)
        site = make_site(regions["grid_a1"], "SA")
        make_tube("T1", people[:5], capacity=10, site=site)
        make_tube("T2", people[5:10], capacity=10, site=site)
        yield {"tech": tech, "lab": lab, "people": people, "site": site, "regions": regions, "client_for": client_for}


def post(client, url, body):
    return client.post(url, data=json.dumps(body), content_type="application/json")


def test_labs_create_update_and_technicians(world, regions, commander, officer_a, client_for):
    make_user("tech2", "lab_technician", regions["street_a"])
    c = client_for(officer_a)
    r = post(c, f"{API}/labs", {"code": "LAB-A", "name": "新碶实验室", "region_code": regions["street_a"].code,
                                "capacity_per_hour": 300, "technicians": ["tech2"]})
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["technicians"] == ["tech2"] and body["capacity_per_hour"] == 300 and body["region_name"] == "新碶街道"
    # A non-technician or an unknown user cannot be made a technician.
    r = c.patch(f"{API}/labs/{body['id']}", data=json.dumps({"technicians": ["officer_a", "ghost"]}),
                content_type="application/json")
    body_err = r.json()
    assert r.status_code == 422 and body_err["extra"]["field"] == "technicians"
    assert len(body_err["extra"]["problems"]) == 2 and "ghost" in body_err["message"] and "officer_a" in body_err["message"]
    r = c.patch(f"{API}/labs/{body['id']}", data=json.dumps({"target_hours": 8, "technicians": []}),
                content_type="application/json")
    assert r.status_code == 200 and r.json()["target_hours"] == 8 and r.json()["technicians"] == []
    # The district lab is visible to the street officer (it serves the street) but only the district may edit it.
    labs = {x["code"] for x in c.get(f"{API}/labs").json()}
    assert labs == {"LAB1", "LAB-A"}
    r = c.patch(f"{API}/labs/{world['lab'].pk}", data=json.dumps({"target_hours": 1}), content_type="application/json")
    assert r.status_code == 404 and Lab.objects.get(code="LAB1").target_hours == 12
    # A duplicate code is a conflict.
    r = post(client_for(commander), f"{API}/labs", {"code": "LAB-A", "name": "x", "region_code": "330206"})
    assert r.status_code == 409
    from jingkong.access.models import AuditLog

    assert AuditLog.objects.filter(action="lab.technicians").count() == 2


def test_results_entry_by_technicians_of_the_lab_only(world, regions, client_for):
    stranger = make_user("tech_x", "lab_technician", regions["district"])
    body = {"results": [{"tube": "T1", "outcome": "阴性"}, {"tube": "T2", "outcome": "positive",
                                                             "ct_values": {"ORF1ab": 30.5, "N": "29"}},
                        {"tube": "NOPE", "outcome": "negative"}], "source_ref": "plate-7"}
    with clock.frozen(LATER):
        r = post(client_for(stranger), f"{API}/labs/{world['lab'].pk}/results", body)
        assert r.status_code == 403 and not TubeResult.objects.exists()
        r = post(client_for(world["tech"]), f"{API}/labs/{world['lab'].pk}/results", body)
    assert r.status_code == 200, r.content
    out = r.json()
    assert (out["accepted"], out["unchanged"], out["rejected"]) == (2, 0, 1)
    assert out["errors"] == [{"row": 2, "field": "tube", "reason": out["errors"][0]["reason"], "tube": "NOPE"}]
    assert out["tubes_pool_positive"] == 1 and out["persons_controlled"] == 5 and out["tasks_created"] == 5
    assert TubeResult.objects.get(tube__barcode="T2").source_ref == "plate-7#1"
    with clock.frozen(LATER):
        again = post(client_for(world["tech"]), f"{API}/labs/{world['lab'].pk}/results", body).json()
    assert (again["accepted"], again["unchanged"]) == (0, 2)
    # A malformed body is a 422 naming the field, never a 500.
    with clock.frozen(LATER):
        r = post(client_for(world["tech"]), f"{API}/labs/{world['lab'].pk}/results", {"results": [{"tube": "T1"}]})
    assert r.status_code == 422 and "outcome" in r.json()["message"]
    results_page = client_for(world["tech"]).get(f"{API}/labs/{world['lab'].pk}/results?outcome=positive").json()
    assert results_page["count"] == 1 and results_page["items"][0]["tube"] == "T2"


def test_results_upload_runs_as_a_job(world, client_for, settings, tmp_path):
    from jingkong.core import jobs

    settings.DATA_DIR = tmp_path
    c = client_for(world["tech"])
    csv_bytes = "管码,结果,N基因\nT1,阴性,\nT2,阳性,28.5\nNOPE,阴性,\n".encode("gbk")
    from django.core.files.uploadedfile import SimpleUploadedFile

    with clock.frozen(LATER):
        r = c.post(f"{API}/labs/{world['lab'].pk}/results/upload",
                   {"file": SimpleUploadedFile("run-1.csv", csv_bytes, content_type="text/csv")})
        assert r.status_code == 202, r.content
        job_id = r.json()["id"]
        assert jobs.work(once=True) == 1
    job = c.get(f"/api/v1/core/jobs/{job_id}").json()
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert (result["accepted"], result["rejected"], result["encoding"]) == (2, 1, "gb18030")
    assert result["errors"][0]["row"] == 4
    uploads = [p.name for p in (tmp_path / "uploads").iterdir()]
    assert len(uploads) == 1 and uploads[0].endswith(".csv.errors.csv")  # the upload itself is removed
    assert TubeResult.objects.get(tube__barcode="T2").source_ref == "run-1.csv#3"
    # No file: a clear 422.
    r = c.post(f"{API}/labs/{world['lab'].pk}/results/upload", {})
    assert r.status_code == 422 and r.json()["extra"]["field"] == "file"


def test_batches_through_the_api(world, regions, client_for):
    sampler = make_user("sampler_a", "sampler", regions["street_a"])
    world["site"].samplers.add(sampler)
    with clock.frozen(LATER):
        s = client_for(sampler)
        r = post(s, f"{API}/batches", {"lab_id": world["lab"].pk, "site_id": world["site"].pk,
                                        "barcodes": ["T1", "T2"], "code": "BOX-9"})
        assert r.status_code == 201, r.content
        batch = r.json()["batch"]
        assert batch["code"] == "BOX-9" and batch["tube_count"] == 2 and r.json()["added"] == ["T1", "T2"]
        r = post(s, f"{API}/batches/{batch['id']}/handover", {"courier": "张师傅"})
        assert r.status_code == 200 and r.json()["status"] == "handed_over"
        # The sampler may not receive; the lab's technician does, scanning one tube only.
        assert post(s, f"{API}/batches/{batch['id']}/receive", {}).status_code == 403
        t = client_for(world["tech"])
        r = post(t, f"{API}/batches/{batch['id']}/receive", {"barcodes": ["T1"]})
        assert r.status_code == 200 and r.json()["received"] == ["T1"] and r.json()["missing"] == ["T2"]
        detail = t.get(f"{API}/batches/{batch['id']}").json()
        assert {x["barcode"]: x["status"] for x in detail["tubes"]} == {"T1": "received", "T2": "in_transit"}
        assert detail["received_by"] == "tech" and detail["courier"] == "张师傅"
        r = post(t, f"{API}/labs/{world['lab'].pk}/receive", {"barcodes": ["T2"]})
        assert r.json()["received"] == ["T2"]
        assert [b["code"] for b in t.get(f"{API}/batches?status=received").json()] == ["BOX-9"]
        r = post(s, f"{API}/batches", {"lab_id": world["lab"].pk, "site_id": world["site"].pk, "barcodes": ["T1"]})
        assert r.status_code == 422 and r.json()["extra"]["errors"][0]["tube"] == "T1"


def test_followup_list_is_person_level_audited_and_masks_phones(world, regions, client_for, grid_worker_a):
    from jingkong.access.models import AuditLog
    from jingkong.people.models import Person
    from jingkong.testing.results import results_apply
    from jingkong.testing.tests.labs_helpers import row

    Person.objects.filter(pk=world["people"][0].pk).update(phone="13800001111")
    with clock.frozen(LATER):
        results_apply(actor=None, lab=world["lab"], rows=[row("T1", "positive")])
    analyst = make_user("analyst", "analyst", regions["street_a"])
    assert client_for(analyst).get(f"{API}/retest-tasks").status_code == 403
    officer = make_user("officer", "street_officer", regions["street_a"])
    body = client_for(officer).get(f"{API}/retest-tasks?status=open").json()
    assert body["count"] == 5
    first = next(i for i in body["items"] if i["person_id"] == world["people"][0].pk)
    assert first["controlled_in_place"] and first["test_status"] == "pool_positive" and first["source_tube"] == "T1"
    assert first["phone"] != "13800001111"  # officers see masked phones
    grid_body = client_for(grid_worker_a).get(f"{API}/retest-tasks").json()
    assert next(i for i in grid_body["items"] if i["person_id"] == world["people"][0].pk)["phone"] == "13800001111"
    assert AuditLog.objects.filter(action="person.list", detail__list="testing.retest_tasks").count() == 2
    summary = client_for(analyst).get(f"{API}/retest-summary").json()
    assert summary == [{"region_code": regions["grid_a1"].code, "name": "第一网格", "open": 5, "sampled": 0,
                        "negative": 0, "positive": 0, "cancelled": 0, "pool_positive": 5, "invalid_tube": 0,
                        "controlled": 5}]
    officer_b = make_user("officer_b2", "street_officer", regions["street_b"])
    assert client_for(officer_b).get(f"{API}/retest-tasks").json()["count"] == 0


def test_turnaround_overdue_and_board(world, client_for, officer_a):
    Tube.objects.filter(barcode="T1").update(lab=world["lab"], status="received", received_at=T0 + dt.timedelta(hours=1))
    from jingkong.testing.results import results_apply
    from jingkong.testing.tests.labs_helpers import row

    with clock.frozen(T0 + dt.timedelta(hours=3)):
        results_apply(actor=None, lab=world["lab"], rows=[row("T1", "negative")])
    Tube.objects.filter(barcode="T2").update(lab=world["lab"], status="received", received_at=T0 + dt.timedelta(hours=1))
    c = client_for(officer_a)
    out = c.get(f"{API}/turnaround").json()
    assert out["tubes"] == 2 and out["overall"]["sample_to_result"]["p50"] == 3.0
    assert out["by_site"][0]["code"] == "SA"
    r = c.get(f"{API}/turnaround?since=2022-01-02T00:00:00&until=2022-01-01T00:00:00")
    assert r.status_code == 422
    with clock.frozen(T0 + dt.timedelta(hours=20)):
        overdue = c.get(f"{API}/overdue").json()
        assert [i["barcode"] for i in overdue["items"]] == ["T2"] and overdue["items"][0]["reasons"] == ["result_overdue"]
        board = c.get(f"{API}/labs/{world['lab'].pk}/board").json()
    assert board["backlog"]["tubes"] == 1 and board["backlog"]["swabs"] == 5
    assert board["overdue"]["total"] == 1 and board["lab"]["code"] == "LAB1"
    assert c.get(f"{API}/overdue?transit_hours=0").status_code == 422


def test_no_task_or_state_changes_for_a_refused_technician(world, regions, client_for):
    stranger = make_user("tech_y", "lab_technician", regions["district"])
    other = make_lab(regions["district"], "LAB2", technicians=[stranger])
    with clock.frozen(LATER):
        r = post(client_for(stranger), f"{API}/labs/{world['lab'].pk}/receive", {"barcodes": ["T1"]})
        assert r.status_code == 403
        r = post(client_for(stranger), f"{API}/labs/{other.pk}/results", {"results": [{"tube": "T1",
                                                                                        "outcome": "positive"}]})
    assert r.status_code == 200 and r.json()["accepted"] == 1  # T1 was never received by another lab
    assert RetestTask.objects.count() == 5


def test_a_district_labs_results_are_read_by_street_and_worked_only_by_its_technicians_or_the_district(
        world, regions, client_for, officer_b, commander):
    """Regression: a street officer read every result of the district lab (street B's positive tubes included) and a
    street-level commander could receive and result other streets' tubes at the district lab."""
    people_b = make_persons(regions["grid_b1"], 3)
    make_tube("TB", people_b, capacity=10)
    with clock.frozen(LATER):
        r = post(client_for(world["tech"]), f"{API}/labs/{world['lab'].pk}/results",
                 {"results": [{"tube": "T1", "outcome": "negative"}, {"tube": "TB", "outcome": "positive"}]})
        assert r.json()["accepted"] == 2
    url = f"{API}/labs/{world['lab'].pk}/results"
    officer_a = make_user("officer_a2", "street_officer", regions["street_a"])
    assert [i["tube"] for i in client_for(officer_a).get(url).json()["items"]] == ["T1"]
    assert [i["tube"] for i in client_for(officer_b).get(url).json()["items"]] == ["TB"]
    assert {i["tube"] for i in client_for(world["tech"]).get(url).json()["items"]} == {"T1", "TB"}
    assert {i["tube"] for i in client_for(commander).get(url).json()["items"]} == {"T1", "TB"}
    # A commander of street A may not work the district lab (it would change street B's people); the district may.
    street_commander = make_user("cmd_a", "commander", regions["street_a"])
    make_tube("TB2", make_persons(regions["grid_b1"], 2), capacity=10)
    with clock.frozen(LATER):
        r = post(client_for(street_commander), url, {"results": [{"tube": "TB2", "outcome": "positive"}]})
        assert r.status_code == 403 and "LAB1" in r.json()["message"]
        assert post(client_for(street_commander), f"{API}/labs/{world['lab'].pk}/receive",
                    {"barcodes": ["TB2"]}).status_code == 403
        assert not TubeResult.objects.filter(tube__barcode="TB2").exists()
        assert Tube.objects.get(barcode="TB2").received_at is None
        lab_a = make_lab(regions["street_a"], "LAB-A")
        assert post(client_for(street_commander), f"{API}/labs/{lab_a.pk}/results",
                    {"results": [{"tube": "T2", "outcome": "negative"}]}).json()["accepted"] == 1
        assert post(client_for(commander), url, {"results": [{"tube": "TB2", "outcome": "negative"}]}
                    ).json()["accepted"] == 1


def test_the_lab_board_shows_a_technician_every_overdue_tube_of_the_lab(world, regions, client_for, officer_a):
    """Regression: a technician registered in street A working for the district lab saw only street A's overdue tubes
    on their lab's board."""
    tech_a = make_user("tech_street_a", "lab_technician", regions["street_a"])
    world["lab"].technicians.add(tech_a)
    make_tube("OLD-B", make_persons(regions["grid_b1"], 2), capacity=10, lab=world["lab"], status="received",
              received_at=T0)
    make_tube("OLD-A", world["people"][10:12], capacity=10, site=world["site"], lab=world["lab"], status="received",
              received_at=T0)
    with clock.frozen(T0 + dt.timedelta(hours=20)):
        tech_board = client_for(tech_a).get(f"{API}/labs/{world['lab'].pk}/board").json()
        officer_board = client_for(officer_a).get(f"{API}/labs/{world['lab'].pk}/board").json()
        page = client_for(tech_a).get(f"/testing/labs/{world['lab'].pk}/").content.decode()
    assert {i["barcode"] for i in tech_board["overdue"]["items"]} == {"OLD-A", "OLD-B"}
    assert {i["barcode"] for i in officer_board["overdue"]["items"]} == {"OLD-A"}
    assert "OLD-B" in page
