"""Lab-side pages: labs overview, lab board (scoped by lab), pool-positive follow-up (person-level, audited)."""

from __future__ import annotations

import datetime as dt

import pytest

from jingkong.conftest import T0, make_user
from jingkong.core import clock
from jingkong.testing.results import results_apply
from jingkong.testing.tests.labs_helpers import make_lab, make_persons, make_site, make_tube, row

pytestmark = pytest.mark.django_db
LATER = T0 + dt.timedelta(hours=6)


@pytest.fixture
def world(regions):
    with clock.frozen(LATER):
        lab = make_lab(regions["district"], "LAB1")
        lab_b = make_lab(regions["street_b"], "LAB-B")
        site = make_site(regions["grid_a1"], "SA")
        people_a = make_persons(regions["grid_a1"], 6)
        people_b = make_persons(regions["grid_b1"], 4)
        make_tube("TA", people_a, capacity=10, site=site)
        make_tube("TB", people_b, capacity=10)
        make_tube("LATE", people_a[:1], capacity=1, site=site, lab=lab, status="received", received_at=T0)
        results_apply(actor=None, lab=lab, rows=[row("TA", "positive"), row("TB", "positive")])
        yield {"lab": lab, "lab_b": lab_b, "people_a": people_a, "people_b": people_b}


def test_labs_overview_and_board(world, officer_a, client_for):
    c = client_for(officer_a)
    with clock.frozen(LATER + dt.timedelta(hours=10)):
        page = c.get("/testing/labs/")
        assert page.status_code == 200
        text = page.content.decode()
        assert "LAB1" in text and "LAB-B" not in text  # a street-B lab is not shown in street A
        assert "LATE" in text  # overdue: received 16 h ago, target 12 h
        board = c.get(f"/testing/labs/{world['lab'].pk}/")
        assert board.status_code == 200
        assert 'http-equiv="refresh"' in board.content.decode() and "LATE" in board.content.decode()
        assert c.get(f"/testing/labs/{world['lab_b'].pk}/").status_code == 404
        assert c.get("/testing/labs/999999/").status_code == 404


def test_followup_page_lists_only_the_area_and_is_audited(world, regions, client_for, grid_worker_a):
    from jingkong.access.models import AuditLog

    analyst = make_user("analyst", "analyst", regions["street_a"])
    assert client_for(analyst).get("/testing/retests/").status_code == 403
    officer = make_user("officer", "street_officer", regions["street_a"])
    page = client_for(officer).get("/testing/retests/")
    assert page.status_code == 200
    text = page.content.decode()
    assert all(p.name in text for p in world["people_a"]) and not any(p.name in text for p in world["people_b"])
    assert "就地管控" in text
    assert AuditLog.objects.filter(action="person.list", detail__list="testing.retest_tasks",
                                   user=officer).count() == 1
    csv = client_for(grid_worker_a).get("/testing/retests/?status=all&format=csv")
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    body = csv.content.decode("utf-8-sig").splitlines()
    assert body[0].startswith("region_code,building") and len(body) == 1 + 6
    assert AuditLog.objects.filter(action="person.export", user=grid_worker_a).count() == 1
    # A region outside the area: a message, no data, still audited as a read attempt.
    other = client_for(officer).get(f"/testing/retests/?region={regions['grid_b1'].code}")
    assert other.status_code == 200 and not any(p.name in other.content.decode() for p in world["people_b"])


def test_subnav_offers_the_lab_pages_to_roles_that_may_open_them(world, regions, client_for):
    lab_tech = make_user("tech", "lab_technician", regions["district"])
    text = client_for(lab_tech).get("/testing/labs/").content.decode()
    assert "/testing/labs/" in text and "/testing/retests/" not in text  # no person data for technicians


# --- working at a lab from its board: receive a batch, enter a result, upload a file ---------------------------------


@pytest.fixture
def bench(regions):
    """A district lab with a technician, a batch on its way from a street-A site and a walk-in tube."""
    from jingkong.testing.models import TransportBatch

    with clock.frozen(LATER):
        tech = make_user("tech_lab1", "lab_technician", regions["street_a"], display_name="李检验")
        lab = make_lab(regions["district"], "LAB1", technicians=[tech])
        site = make_site(regions["grid_a1"], "SA")
        people = make_persons(regions["grid_a1"], 30)
        batch = TransportBatch.objects.create(code="BOX-7", lab=lab, site=site, region_code=site.region_code,
                                              status="handed_over", courier="张师傅", packed_at=T0,
                                              handed_over_at=T0 + dt.timedelta(minutes=30), tube_count=3)
        for i in range(3):
            make_tube(f"B{i}", people[i * 10:(i + 1) * 10], capacity=10, site=site, batch=batch, status="in_transit")
        make_tube("WALK", people[:1], kind="retest", capacity=1, site=site)
        yield {"tech": tech, "lab": lab, "batch": batch, "people": people, "site": site}


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_a_technician_receives_a_batch_from_the_board_scanning_the_tubes(bench, client_for):
    from jingkong.testing.models import Tube

    c = client_for(bench["tech"])
    c.cookies["django_language"] = "en"
    with clock.frozen(LATER):
        board = c.get(f"/testing/labs/{bench['lab'].pk}/").content.decode()
        assert f'action="/testing/labs/{bench["lab"].pk}/receive/"' in board and "BOX-7" in board
        assert 'http-equiv="refresh"' not in board  # a form being filled is not wiped by a refresh
        r = c.post(f"/testing/labs/{bench['lab'].pk}/receive/", {"batch": "BOX-7", "barcodes": "B0\nB2, STRAY"},
                   follow=True)
    text = " | ".join(_messages(r))
    assert r.status_code == 200 and "2 tube(s) received" in text and "B1" in text and "STRAY" in text
    assert {t.barcode: t.status for t in Tube.objects.filter(batch=bench["batch"])} == {
        "B0": "received", "B1": "in_transit", "B2": "received"}
    bench["batch"].refresh_from_db()
    assert bench["batch"].status == "received" and bench["batch"].received_by == bench["tech"]
    # The missing tube turns up: walk-in receipt (no batch code).
    with clock.frozen(LATER):
        r = c.post(f"/testing/labs/{bench['lab'].pk}/receive/", {"batch": "", "barcodes": "B1 WALK"}, follow=True)
    assert "2 tube(s) received" in " ".join(_messages(r))
    assert Tube.objects.get(barcode="WALK").lab == bench["lab"]
    # An unknown batch code is a message, nothing changes.
    with clock.frozen(LATER):
        r = c.post(f"/testing/labs/{bench['lab'].pk}/receive/", {"batch": "BOX-404"}, follow=True)
    assert "no batch BOX-404" in " ".join(_messages(r))


def test_entering_one_result_from_the_board(bench, client_for):
    from jingkong.testing.models import PersonTestState, TubeResult

    c = client_for(bench["tech"])
    c.cookies["django_language"] = "en"
    with clock.frozen(LATER):
        r = c.post(f"/testing/labs/{bench['lab'].pk}/result/", {
            "tube": "B0", "outcome": "positive", "ct_orf1ab": "31.5", "ct_n": "", "instrument": "ABI 7500",
            "operator": "李检验", "tested_at": "2022-01-01T18:00"}, follow=True)
    text = " ".join(_messages(r))
    assert "10 person(s) controlled in place" in text
    result = TubeResult.objects.get(tube__barcode="B0")
    assert result.ct_values == {"ORF1ab": 31.5} and result.entered_by == bench["tech"] and result.source_ref == "page#1"
    assert result.tested_at == dt.datetime(2022, 1, 1, 10, 0, tzinfo=dt.UTC)  # local time (UTC+8)
    assert PersonTestState.objects.filter(status="pool_positive").count() == 10
    with clock.frozen(LATER):
        r = c.post(f"/testing/labs/{bench['lab'].pk}/result/", {"tube": "B1", "outcome": "", "ct_n": "99"},
                   follow=True)
    text = " ".join(_messages(r))
    assert "outcome" in text and "ct_values.N" in text and not TubeResult.objects.filter(tube__barcode="B1").exists()


def test_uploading_a_results_file_from_the_board_links_to_its_progress_and_report(bench, client_for, settings,
                                                                                  tmp_path, regions):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from jingkong.core import jobs
    from jingkong.testing.models import TubeResult

    settings.DATA_DIR = tmp_path
    c = client_for(bench["tech"])
    c.cookies["django_language"] = "en"
    csv_bytes = "管码,结果,N基因\nB0,阴性,\nB1,阳性,28.5\nNOPE,阴性,\nB2,可疑,\n".encode("gbk")
    with clock.frozen(LATER):
        r = c.post(f"/testing/labs/{bench['lab'].pk}/upload/",
                   {"file": SimpleUploadedFile("run-7.csv", csv_bytes, content_type="text/csv"), "format": "auto"})
        assert r.status_code == 302
        status_url = r["Location"]
        assert status_url.startswith(f"/testing/labs/{bench['lab'].pk}/uploads/")
        waiting = c.get(status_url).content.decode()
        assert 'http-equiv="refresh"' in waiting and "Waiting for the background worker" in waiting
        assert jobs.work(once=True) == 1
        page = c.get(status_url).content.decode()
    assert 'http-equiv="refresh"' not in page and "run-7.csv" in page
    assert "NOPE" in page and "可疑" in page and "Download CSV" in page
    assert TubeResult.objects.filter(tube__barcode__in=["B0", "B1"]).count() == 2
    download = c.get(status_url + "?format=csv")
    assert download["Content-Type"].startswith("text/csv")
    lines = download.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "line,tube,field,reason" and len(lines) == 3 and lines[1].startswith("4,NOPE,tube,")
    board = c.get(f"/testing/labs/{bench['lab'].pk}/").content.decode()
    assert "run-7.csv" in board and status_url in board  # recent uploads
    # Another lab's technician cannot see this upload; nor can it be read under another lab's address.
    other_tech = make_user("tech_other", "lab_technician", regions["street_a"])
    other_lab = make_lab(regions["street_a"], "LAB-A", technicians=[other_tech])
    job_id = status_url.rstrip("/").rsplit("/", 1)[1]
    assert client_for(other_tech).get(status_url).status_code == 404
    assert c.get(f"/testing/labs/{other_lab.pk}/uploads/{job_id}/").status_code == 404
    # No file: a message on the board, no job.
    with clock.frozen(LATER):
        r = c.post(f"/testing/labs/{bench['lab'].pk}/upload/", {"format": "auto"}, follow=True)
    assert "attach the results file" in " ".join(_messages(r))


def test_only_the_labs_technicians_and_its_region_may_work_it_from_the_board(bench, regions, client_for, officer_a,
                                                                             commander):
    from jingkong.testing.models import Tube, TubeResult

    lab = bench["lab"]
    stranger = make_user("tech_stranger", "lab_technician", regions["district"])
    street_commander = make_user("cmd_street_a", "commander", regions["street_a"])
    lab_b = make_lab(regions["street_b"], "LAB-B", technicians=[bench["tech"]])
    outsider = make_user("tech_b_only", "lab_technician", regions["street_a"])
    actions = [(f"/testing/labs/{lab.pk}/receive/", {"batch": "BOX-7"}),
               (f"/testing/labs/{lab.pk}/result/", {"tube": "B0", "outcome": "negative"}),
               (f"/testing/labs/{lab.pk}/upload/", {"format": "auto"})]
    from django.test import Client

    with clock.frozen(LATER):
        for url, body in actions:
            anonymous = Client().post(url, body)
            assert anonymous.status_code == 302 and "login" in anonymous["Location"]
            assert client_for(officer_a).post(url, body).status_code == 403  # no TESTING_RESULT
            assert client_for(stranger).post(url, body).status_code == 403  # not a technician of this lab
            assert client_for(street_commander).post(url, body).status_code == 403  # the lab is the district's
            assert client_for(bench["tech"]).get(url).status_code == 405  # POST only
        # A street-B lab is not found for a street-A technician who does not work for it.
        assert client_for(outsider).post(f"/testing/labs/{lab_b.pk}/receive/", {"batch": "X"}).status_code == 404
        board = client_for(stranger).get(f"/testing/labs/{lab.pk}/").content.decode()
        assert "/receive/" not in board and "/upload/" not in board
        assert "/receive/" in client_for(commander).get(f"/testing/labs/{lab.pk}/").content.decode()
    assert not TubeResult.objects.exists() and Tube.objects.filter(status="received").count() == 0


@pytest.mark.parametrize("language,words", [
    ("en", ["Work at this lab", "Receive a batch", "Upload results", "Transport batches", "Overdue tubes"]),
    ("zh-hans", ["实验室 LAB1", "张师傅"]),
])
def test_lab_pages_render_in_both_languages_with_realistic_data(bench, client_for, commander, language, words):
    """Board (with its forms, batches, overdue tubes, turnaround), overview and follow-up, in English and Chinese."""
    from jingkong.testing import custody
    from jingkong.testing.results import results_apply
    from jingkong.testing.tests.labs_helpers import row

    with clock.frozen(LATER):
        custody.batch_receive(actor=bench["tech"], batch=bench["batch"], barcodes=["B0", "B1", "B2"])
        custody.tubes_receive(actor=bench["tech"], lab=bench["lab"], barcodes=["WALK"])  # left without a result
        results_apply(actor=None, lab=bench["lab"], rows=[row("B0", "positive", ct={"N": 30.1}),
                                                          row("B1", "negative"), row("B2", "invalid")])
    c = client_for(commander)
    c.cookies["django_language"] = language
    with clock.frozen(LATER + dt.timedelta(hours=14)):
        pages = {url: c.get(url) for url in (f"/testing/labs/{bench['lab'].pk}/", "/testing/labs/", "/testing/retests/")}
    for url, response in pages.items():
        assert response.status_code == 200, url
        html = response.content.decode()
        assert f'<html lang="{language}">' in html
        assert "{%" not in html and "{{" not in html
    board = pages[f"/testing/labs/{bench['lab'].pk}/"].content.decode()
    retests = pages["/testing/retests/"].content.decode()
    assert "BOX-7" in board and "WALK" in board  # the batch; the walk-in tube, overdue
    assert bench["people"][0].name in retests and bench["people"][25].name in retests  # pool positive; invalid
    for word in words:
        assert word in board
