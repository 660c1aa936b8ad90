"""Tube results from FHIR R4 Bundles (validated with fhir.resources' R4B models)."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest

from jingkong.conftest import T0
from jingkong.core import clock
from jingkong.core.exceptions import ValidationFailed
from jingkong.testing.fhir import parse_bundle
from jingkong.testing.models import TubeResult
from jingkong.testing.results import load_results_file
from jingkong.testing.tests.labs_helpers import make_lab, make_persons, make_tube

SNOMED = "http://snomed.info/sct"


def observation(tube: str | None = "T1", code: str = "260385009", *, components=(), effective="2022-01-01T16:30:00+08:00",
                status="final", performer=None, device=None, specimen=None, **extra) -> dict:
    obs = {
        "resourceType": "Observation", "status": status,
        "code": {"coding": [{"system": "http://loinc.org", "code": "94500-6"}], "text": "SARS-CoV-2 RNA"},
        "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": code}]},
    }
    if effective:
        obs["effectiveDateTime"] = effective
    if specimen is not None:
        obs["specimen"] = specimen
    elif tube:
        obs["specimen"] = {"identifier": {"value": tube}}
    if components:
        obs["component"] = [{"code": {"text": gene}, "valueQuantity": {"value": value}} for gene, value in components]
    if performer:
        obs["performer"] = [performer]
    if device:
        obs["device"] = device
    obs.update(extra)
    return obs


def bundle(*resources, full_urls=None) -> dict:
    entries = []
    for i, r in enumerate(resources):
        entry = {"resource": r}
        if full_urls and i in full_urls:
            entry["fullUrl"] = full_urls[i]
        entries.append(entry)
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def test_observations_with_snomed_codes_ct_components_performer_and_device():
    doc = bundle(
        observation("T1", "260385009", performer={"display": "王芳"}, device={"display": "ABI7500-2"}),
        observation("T2", "10828004", components=[("ORF1ab", 31.2), ("N", 29.8)]),
        observation("T3", "455371000124106"),
        observation("T4", "260415000"),  # Not detected
    )
    rows, errors = parse_bundle(json.dumps(doc).encode())
    assert errors == []
    assert [(r.row, r.tube, r.outcome) for r in rows] == [(0, "T1", "negative"), (1, "T2", "positive"),
                                                          (2, "T3", "invalid"), (3, "T4", "negative")]
    assert rows[0].operator == "王芳" and rows[0].instrument == "ABI7500-2"
    assert rows[1].ct_values == {"ORF1ab": 31.2, "N": 29.8}
    assert rows[0].tested_at == dt.datetime(2022, 1, 1, 8, 30, tzinfo=dt.UTC)


def test_outcome_from_text_and_interpretation_codes():
    doc = bundle(
        observation("T1", valueCodeableConcept={"text": "阳性"}),
        observation("T2", valueCodeableConcept={"coding": [{"display": "Negative"}]}),
        observation("T3", valueCodeableConcept={"coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "POS"}]}),
    )
    rows, errors = parse_bundle(doc)
    assert errors == [] and [r.outcome for r in rows] == ["positive", "negative", "positive"]


def test_specimen_references_device_and_practitioner_resolve_inside_the_bundle():
    specimen = {"resourceType": "Specimen", "id": "sp1", "accessionIdentifier": {"value": "T7"}}
    device = {"resourceType": "Device", "id": "d1", "deviceName": [{"name": "SLAN-96P", "type": "model-name"}]}
    practitioner = {"resourceType": "Practitioner", "id": "p1", "name": [{"family": "李", "given": ["娜"]}]}
    obs = observation(None, specimen={"reference": "urn:uuid:aaa"}, device={"reference": "Device/d1"},
                      performer={"reference": "Practitioner/p1"})
    doc = bundle(specimen, device, practitioner, obs, full_urls={0: "urn:uuid:aaa"})
    rows, errors = parse_bundle(doc)
    assert errors == []
    (r,) = rows
    assert (r.row, r.tube, r.instrument, r.operator) == (3, "T7", "SLAN-96P", "李娜")


def test_a_diagnostic_report_lends_specimen_and_time_and_separate_ct_observations_merge():
    specimen = {"resourceType": "Specimen", "id": "s9", "identifier": [{"value": "T9"}]}
    outcome = observation(None, id="o1", effective=None)
    ct_n = {"resourceType": "Observation", "id": "o2", "status": "final", "code": {"text": "N gene Ct"},
            "valueQuantity": {"value": 27.5}}
    report = {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "SARS-CoV-2"},
              "specimen": [{"reference": "Specimen/s9"}], "effectiveDateTime": "2022-01-01T09:00:00Z",
              "performer": [{"display": "检测员甲"}],
              "result": [{"reference": "Observation/o1"}, {"reference": "Observation/o2"}]}
    rows, errors = parse_bundle(bundle(specimen, outcome, ct_n, report))
    assert errors == []
    (r,) = rows
    assert (r.tube, r.outcome, r.ct_values, r.operator) == ("T9", "negative", {"N": 27.5}, "检测员甲")
    assert r.tested_at == dt.datetime(2022, 1, 1, 9, tzinfo=dt.UTC)


def test_a_diagnostic_report_with_a_conclusion_code_is_a_result():
    report = {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "SARS-CoV-2"},
              "specimen": [{"identifier": {"value": "T5"}}], "effectiveDateTime": "2022-01-01T09:00:00Z",
              "conclusionCode": [{"coding": [{"system": SNOMED, "code": "10828004"}]}]}
    rows, errors = parse_bundle(bundle(report))
    assert errors == [] and [(r.row, r.tube, r.outcome) for r in rows] == [(0, "T5", "positive")]


def test_invalid_entries_are_reported_by_index_and_path_and_the_rest_is_kept():
    doc = bundle(
        observation("T1"),
        {"resourceType": "Observation", "code": {"text": "x"}},  # status missing
        observation("T3", effective="2022-01-01T08:00:00"),  # no offset: invalid FHIR dateTime
        observation("T4", effective="2022-01-01"),  # a date only
        observation("T5", code="999999"),
        observation(None),
        observation("T7", status="preliminary"),
        observation("T8", components=[("N", "abc")]),
        {"resourceType": "Bogus"},
        {"resourceType": "Patient", "id": "p1", "birthDate": "not a date"},
        observation("T11", components=[("N", 55)]),
    )
    rows, errors = parse_bundle(doc)
    assert [r.tube for r in rows] == ["T1"]
    fields = {e.row: e.field for e in errors}
    assert fields[1] == "entry[1].resource.status"
    assert fields[2] == "entry[2].resource.effectiveDateTime"
    assert fields[3] == "entry[3].resource.effectiveDateTime"
    assert fields[4] == "entry[4].resource.valueCodeableConcept"
    assert fields[5] == "entry[5].resource.specimen"
    assert fields[6] == "entry[6].resource.status"
    assert fields[7].startswith("entry[7].resource.component")
    assert fields[8] == "entry[8].resource.resourceType"
    assert fields[9] == "entry[9].resource.birthDate"
    assert fields[10] == "entry[10].resource.component[0].valueQuantity.value"
    assert {e.row for e in errors} == set(range(1, 11))


def test_two_entries_contradicting_each_other_reject_both():
    rows, errors = parse_bundle(bundle(observation("T1", "260385009"), observation("T1", "10828004"),
                                       observation("T2")))
    assert [r.tube for r in rows] == ["T2"] and {e.row for e in errors} == {0, 1}


def test_a_ct_observation_without_a_result_is_reported():
    ct = {"resourceType": "Observation", "status": "final", "code": {"text": "ORF1ab"},
          "valueQuantity": {"value": 30}, "specimen": {"identifier": {"value": "T3"}}}
    rows, errors = parse_bundle(bundle(ct))
    assert rows == [] and errors[0].row == 0 and "without a result" in errors[0].reason


@pytest.mark.parametrize("data,needle", [
    (b"{not json", "not JSON"),
    (b"[1, 2]", "not a FHIR resource"),
    (json.dumps({"resourceType": "Observation", "status": "final"}).encode(), "send a Bundle"),
    (json.dumps({"resourceType": "Bundle", "type": "collection", "entry": "x"}).encode(), "entry must be a list"),
    (json.dumps({"resourceType": "Bundle", "type": 7, "entry": []}).encode(), "invalid Bundle"),
    ("阴性".encode("gbk"), "UTF-8"),
])
def test_malformed_documents_get_one_clear_error(data, needle):
    with pytest.raises(ValidationFailed) as exc:
        parse_bundle(data)
    assert needle in exc.value.message


def test_a_bundle_file_end_to_end(regions, tmp_path):
    with clock.frozen(T0 + dt.timedelta(hours=6)):
        lab = make_lab(regions["district"])
        people = make_persons(regions["grid_a1"], 3)
        make_tube("T1", people[:2], capacity=10)
        make_tube("T2", people[2:], capacity=1)
        doc = bundle(observation("T1", effective="2022-01-01T20:00:00+08:00"),
                     observation("T2", "10828004", components=[("N", 25)], effective="2022-01-01T20:00:00+08:00"),
                     observation("T3"))
        path = tmp_path / "bundle.json"
        path.write_text(json.dumps(doc), encoding="utf-8")
        report = load_results_file(path, lab=lab)
        assert (report.accepted, report.rejected_rows) == (2, 1)
        assert report.errors[0].row == 2 and "unknown tube" in report.errors[0].reason
        result = TubeResult.objects.get(tube__barcode="T2")
        assert result.source == "fhir" and result.source_ref == "bundle.json#1" and result.ct_values == {"N": 25.0}
        again = load_results_file(path, lab=lab)
        assert (again.accepted, again.unchanged) == (0, 2)
        changed = copy.deepcopy(doc)
        changed["entry"][0]["resource"]["valueCodeableConcept"]["coding"][0]["code"] = "10828004"
        path.write_text(json.dumps(changed), encoding="utf-8")
        conflict = load_results_file(path, lab=lab)
        assert conflict.accepted == 0 and any(e.row == 0 and "conflicts" in e.reason for e in conflict.errors)
