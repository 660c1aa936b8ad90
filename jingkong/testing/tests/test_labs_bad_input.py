"""Bad input on the lab side never answers 500 (both databases): NUL characters (PostgreSQL refuses them in text and
JSON), times at the edge of the calendar, ids and page numbers beyond a 64-bit integer (SQLite's driver overflows).
Each case answers a clear 422 (or a per-row error naming the field) or, for an id, matches nothing.

HTTP requests carrying a NUL are refused by the core middleware before any view runs; files (CSV and FHIR: multipart
uploads, the command line) and other callers reach the services, so the services refuse NUL themselves: tested here
by calling them directly."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from jingkong.conftest import T0
from jingkong.core import clock
from jingkong.testing.models import Lab, TubeResult
from jingkong.testing.tests.labs_helpers import make_lab, make_persons, make_tube

pytestmark = pytest.mark.django_db
LATER = T0 + dt.timedelta(hours=6)
API = "/api/v1/testing"
BIG = 10**30


@pytest.fixture
def world(regions, client_for, commander):
    with clock.frozen(LATER):
        lab = make_lab(regions["district"])
        people = make_persons(regions["grid_a1"], 4)
        make_tube("T1", people[:2], capacity=10)
        # Data the extreme filters must not match: a batch, a resulted positive pool (retest tasks, turnaround).
        from jingkong.testing.models import TransportBatch
        from jingkong.testing.results import results_apply
        from jingkong.testing.tests.labs_helpers import row

        batch = TransportBatch.objects.create(code="BOX-1", lab=lab, region_code=regions["grid_a1"].code,
                                              packed_at=T0, tube_count=1)
        make_tube("T0", people[2:4], capacity=10, batch=batch, lab=lab, status="received", received_at=T0)
        results_apply(actor=None, lab=lab, rows=[row("T0", "positive")])
        client = client_for(commander)
        client.raise_request_exception = False  # a 500 is an answer to assert on, not an exception in the test
        yield {"lab": lab, "client": client}


def _post(world, url: str, body) -> tuple[int, dict]:
    with clock.frozen(LATER):
        r = world["client"].post(url.format(lab=world["lab"].pk), data=json.dumps(body),
                                 content_type="application/json")
    assert r.status_code != 500, r.content[:300]
    return r.status_code, r.json()


NUL_ROWS = {
    "tube": ({"tube": "T\x001"}, "tube"),
    "instrument": ({"instrument": "ABI\x00"}, "instrument"),
    "operator": ({"operator": "王\x00"}, "operator"),
    "gene": ({"ct_values": {"N\x00": 30}}, "ct_values.N\\x00"),
}


@pytest.mark.parametrize("case", list(NUL_ROWS))
def test_a_row_with_a_nul_character_is_a_row_error_naming_the_field(world, case):
    from jingkong.testing.results import ResultRow, results_apply

    fields, field = NUL_ROWS[case]
    v = {"tube": "T1", "ct_values": {}, "instrument": "", "operator": ""} | fields
    with clock.frozen(LATER):
        report = results_apply(actor=None, lab=world["lab"], rows=[
            ResultRow(2, v["tube"], "negative", v["ct_values"], v["instrument"], v["operator"])])
    out = report.as_dict()
    assert (out["accepted"], out["rejected"]) == (0, 1)
    assert out["errors"][0]["field"] == field and "\x00" not in json.dumps(out)
    assert not TubeResult.objects.filter(tube__barcode="T1").exists()


ROW_CASES = {
    "year 1 with offset": ({"tube": "T1", "outcome": "negative", "tested_at": "0001-01-01T00:00:00+08:00"},
                           "tested_at"),
    "year 1 local": ({"tube": "T1", "outcome": "negative", "tested_at": "0001-01-01T00:00:00"}, "tested_at"),
    "year 9999 behind UTC": ({"tube": "T1", "outcome": "negative", "tested_at": "9999-12-31T23:59:59-10:00"},
                             "tested_at"),
    "far future": ({"tube": "T1", "outcome": "negative", "tested_at": "2099-01-01T00:00:00+08:00"}, "tested_at"),
    "infinite Ct": ({"tube": "T1", "outcome": "negative", "ct_values": {"N": "1e400"}}, "ct_values.N"),
}


@pytest.mark.parametrize("case", list(ROW_CASES))
def test_a_bad_result_row_is_a_row_error_naming_the_field(world, case):
    body, field = ROW_CASES[case]
    status, out = _post(world, API + "/labs/{lab}/results", {"results": [body]})
    assert status == 200
    assert (out["accepted"], out["rejected"]) == (0, 1)
    assert out["errors"][0]["field"] == field
    assert not TubeResult.objects.filter(tube__barcode="T1").exists()


def test_a_csv_time_at_the_edge_of_the_calendar_is_a_row_error():
    from jingkong.testing.results import parse_csv

    rows, errors, _ = parse_csv("管码,结果,检测时间\nT1,阴性,0001-01-01 00:00\nT2,阴性,2022-01-01 09:00\n".encode())
    assert [r.tube for r in rows] == ["T2"] and [(e.row, e.field) for e in errors] == [(2, "tested_at")]


REQUEST_CASES = {
    "walk-in at year 1": (API + "/labs/{lab}/receive", {"barcodes": ["T1"], "at": "0001-01-01T00:00:00+08:00"},
                          "at"),
    "walk-in at in the future": (API + "/labs/{lab}/receive", {"barcodes": ["T1"], "at": "2099-01-01T00:00:00Z"},
                                 "at"),
    "pack at year 1": (API + "/batches", {"lab_id": "{lab}", "barcodes": ["T1"], "at": "0001-01-01T00:00:00+08:00"},
                       "at"),
}


@pytest.mark.parametrize("case", list(REQUEST_CASES))
def test_a_bad_request_is_a_422_naming_the_field(world, case):
    url, body, field = REQUEST_CASES[case]
    if body.get("lab_id") == "{lab}":
        body = {**body, "lab_id": world["lab"].pk}
    status, out = _post(world, url, body)
    assert status == 422 and out["extra"]["field"] == field
    assert TubeResult.objects.count() == 1 and Lab.objects.count() == 1


def _nul_calls(world, regions) -> dict:
    from jingkong.access.guard import EVERYTHING
    from jingkong.testing import custody, labs
    from jingkong.testing.models import TransportBatch
    from jingkong.testing.results import results_apply
    from jingkong.testing.tests.labs_helpers import row

    lab, batch = world["lab"], TransportBatch.objects.get(code="BOX-1")
    return {
        "source_ref": lambda: results_apply(actor=None, lab=lab, rows=[row("T1", "negative")], source_ref="p\x00"),
        "barcodes": lambda: custody.tubes_receive(actor=None, lab=lab, barcodes=["T\x001"]),
        "barcodes (batch)": lambda: custody.batch_receive(actor=None, batch=batch, barcodes=["T\x001"]),
        "code": lambda: custody.batch_pack(actor=None, scope=EVERYTHING, lab=lab, barcodes=["T1"], code="B\x00"),
        "courier": lambda: custody.batch_hand_over(actor=None, batch=batch, courier="张\x00"),
        "code (lab)": lambda: labs.lab_create(actor=None, scope=EVERYTHING, code="L\x00", name="n",
                                              region_code=regions["district"].code),
        "name": lambda: labs.lab_update(actor=None, scope=EVERYTHING, lab=lab, name="n\x00"),
        "technicians": lambda: labs.lab_update(actor=None, scope=EVERYTHING, lab=lab, technicians=["t\x00"]),
    }


@pytest.mark.parametrize("case", ["source_ref", "barcodes", "barcodes (batch)", "code", "courier", "code (lab)",
                                  "name", "technicians"])
def test_services_refuse_nul_characters_naming_the_field(world, regions, case):
    from jingkong.core.exceptions import ValidationFailed
    from jingkong.testing.models import TransportBatch

    with clock.frozen(LATER), pytest.raises(ValidationFailed) as caught:
        _nul_calls(world, regions)[case]()
    assert caught.value.extra["field"] == case.split(" (")[0]
    assert TubeResult.objects.count() == 1 and Lab.objects.count() == 1 and TransportBatch.objects.count() == 1
    assert world["lab"].technicians.count() == 0 and all("\x00" not in name for name in Lab.objects.values_list("name", flat=True))


@pytest.mark.parametrize("filters", [{"region": "330206\x00"}, {"building": "b\x00"}])
def test_followup_filters_with_a_nul_character_are_a_422(world, filters):
    from jingkong.access.guard import EVERYTHING
    from jingkong.core.exceptions import ValidationFailed
    from jingkong.testing import followup

    with pytest.raises(ValidationFailed) as caught:
        followup.retest_task_list(scope=EVERYTHING, **filters)
    assert caught.value.extra["field"] == next(iter(filters))
    if "region" in filters:
        with pytest.raises(ValidationFailed):
            followup.followup_summary(scope=EVERYTHING, **filters)


def test_a_json_row_with_a_nul_character_is_rejected_and_the_good_rows_kept(world, regions):
    make_tube("T2", make_persons(regions["grid_a1"], 1), capacity=1)
    status, out = _post(world, API + "/labs/{lab}/results", {"results": [
        {"tube": "T\x001", "outcome": "negative"}, {"tube": "T1", "outcome": "negative", "operator": "王\x00"},
        {"tube": "T2", "outcome": "negative"}]})
    assert status == 200 and (out["accepted"], out["rejected"]) == (1, 2)
    assert [(e["row"], e["field"]) for e in out["errors"]] == [(0, "tube"), (1, "operator")]
    assert TubeResult.objects.filter(tube__barcode="T2").exists()


@pytest.mark.parametrize("query", ["retest-tasks?building=b%00", "retest-tasks?region=330206%00",
                                   "retest-summary?region=330206%00"])
def test_query_filters_with_a_nul_character_are_a_422(world, query):
    r = world["client"].get(f"{API}/{query}")
    assert r.status_code == 422 and r.json()["extra"]["field"] == query.split("?")[1].split("=")[0]


@pytest.mark.parametrize("query", ["region=330206%00", "building=b%00", "status=x%00"])
def test_followup_page_with_a_nul_filter_shows_a_message_and_audits_safely(world, query):
    from jingkong.access.models import AuditLog

    r = world["client"].get(f"/testing/retests/?{query}")
    assert r.status_code == 200
    entry = AuditLog.objects.get(detail__list="testing.retest_tasks")
    assert "\x00" not in json.dumps(entry.detail) and "\x00" not in entry.region_code


QUERY_CASES = {
    # ids beyond 64 bits match nothing
    "batches?lab_id={big}": (200, None),
    "batches?site_id={big}": (200, None),
    "retest-tasks?campaign_id={big}": (200, None),
    "retest-summary?campaign_id={big}": (200, None),
    "turnaround?campaign_id={big}": (200, None),
    "turnaround?lab_id={big}": (200, None),
    "turnaround?site_id={big}": (200, None),
    "overdue?lab_id={big}": (200, None),
    "overdue?campaign_id={big}": (200, None),
    "overdue?site_id={big}": (200, None),
    "labs/{big}": (404, None),
    "batches/{big}": (404, None),
    # pages and times
    "labs/{lab}/results?page={big}": (422, "page"),
    "retest-tasks?page=99999999999999999": (422, "page"),
    "turnaround?since=0001-01-01T00:00:00": (422, "since"),
    "turnaround?until=0001-01-01T00:00:00%2B08:00": (422, "until"),
    "overdue?transit_hours=nan": (422, "transit_hours"),
}


@pytest.mark.parametrize("query", list(QUERY_CASES))
def test_queries_with_extreme_values(world, query):
    status, field = QUERY_CASES[query]
    r = world["client"].get(f"{API}/" + query.format(big=BIG, lab=world["lab"].pk))
    assert r.status_code == status, r.content[:300]
    if field:
        assert r.json()["extra"]["field"] == field
    elif status == 200:
        body = r.json()
        if isinstance(body, list):  # batches: none; retest summary: no task (people under control still count)
            assert all(not item.get("pool_positive") and not item.get("code") for item in body)
        else:
            assert body.get("items", []) == [] and body.get("tubes", 0) == 0 and body.get("count", 0) == 0
            assert body.get("total", 0) == 0


def test_a_csv_upload_with_nul_characters_reports_them(world, regions, tmp_path):
    """A NUL after the first 4 KB (not caught as 'binary'): the rows are rejected with a reason, the report and the
    results_applied event are stored (PostgreSQL refuses NUL in JSON) and the good rows are applied."""
    from jingkong.testing.models import Tube
    from jingkong.testing.results import load_results_file

    make_tube("T2", make_persons(regions["grid_a1"], 1), capacity=1)
    padding = "".join(f"PAD{i:05d},negative,,\n" for i in range(300))
    path = tmp_path / "run.csv"
    path.write_bytes(("tube,result,instrument,operator\n" + padding + "T1,negative,ABI\x007500,\nT\x002,positive,,\n"
                      "T2,negative,,\n").encode())
    with clock.frozen(LATER):
        report = load_results_file(path, lab=world["lab"])
    assert report.accepted == 1 and Tube.objects.get(barcode="T2").outcome == "negative"
    by_line = {e["row"]: e for e in report.as_dict()["errors"]}
    assert by_line[302]["field"] == "instrument" and by_line[303]["tube"] == "T\\x002"
    from jingkong.core.models import DomainEvent

    summary = DomainEvent.objects.filter(type="testing.results_applied").latest("id").payload
    assert summary["error_count"] == 302 and "\x00" not in json.dumps(summary)


def test_a_fhir_bundle_with_nul_characters_is_refused_naming_it_safely(world):
    from jingkong.core.exceptions import ValidationFailed
    from jingkong.testing import fhir

    with pytest.raises(ValidationFailed) as caught:
        fhir.parse_bundle(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [], "x\x00": 1}))
    assert "\x00" not in caught.value.message and "\x00" not in json.dumps(caught.value.extra)
