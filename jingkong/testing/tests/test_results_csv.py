"""Lab results from CSV files: encodings, Chinese headers, Ct columns, malformed files, the command line."""

from __future__ import annotations

import csv
import datetime as dt

import pytest

from jingkong.conftest import T0
from jingkong.core import clock
from jingkong.core.exceptions import ValidationFailed
from jingkong.testing.models import PersonTestState, TubeResult
from jingkong.testing.results import gene_name, load_results_file, parse_csv, parse_ct, parse_outcome, parse_time
from jingkong.testing.tests.labs_helpers import make_lab, make_persons, make_tube

LATER = T0 + dt.timedelta(hours=6)


# --- pure parsing --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("阴性", "negative"), ("Negative", "negative"), (" neg ", "negative"), ("未检出", "negative"),
    ("阳性", "positive"), ("POS", "positive"), ("+", "positive"), ("无效", "invalid"), ("invalid", "invalid"),
])
def test_outcome_words(text, expected):
    assert parse_outcome(text) == expected


@pytest.mark.parametrize("text", ["", "可疑", "maybe", "1"])
def test_unknown_outcomes_are_refused(text):
    with pytest.raises(ValueError):
        parse_outcome(text)


@pytest.mark.parametrize("header,gene", [
    ("ct_orf1ab", "ORF1ab"), ("ORF1ab", "ORF1ab"), ("N基因", "N"), ("ct_n", "N"), ("CT_E", "E"), ("E基因Ct值", "E"),
    ("Ct值(ORF1ab)", "ORF1ab"), ("RdRp", "RdRp"), ("ct_rdrp", "RdRp"), ("姓名", None), ("notes", None),
])
def test_ct_column_headers(header, gene):
    assert gene_name(header, ct_column=True) == gene


@pytest.mark.parametrize("value,expected", [("31.2", 31.2), (28, 28.0), ("", None), ("Undetermined", None),
                                            ("未检出", None), ("-", None), ("35.456", 35.46)])
def test_ct_values(value, expected):
    assert parse_ct(value) == expected


@pytest.mark.parametrize("value", ["0", "-3", "51", "abc", "nan", True])
def test_bad_ct_values(value):
    with pytest.raises(ValueError):
        parse_ct(value)


def test_times_are_local_unless_an_offset_is_given(settings):
    assert parse_time("2022-01-01 16:30") == dt.datetime(2022, 1, 1, 8, 30, tzinfo=dt.UTC)
    assert parse_time("2022/1/1 8:30:15") == dt.datetime(2022, 1, 1, 0, 30, 15, tzinfo=dt.UTC)
    assert parse_time("2022-01-01T08:30:00Z") == dt.datetime(2022, 1, 1, 8, 30, tzinfo=dt.UTC)
    assert parse_time("2022-01-01T10:30:00+02:00") == dt.datetime(2022, 1, 1, 8, 30, tzinfo=dt.UTC)
    assert parse_time("") is None
    for bad in ("2022-01-01", "yesterday", "2022-13-01 08:00"):
        with pytest.raises(ValueError):
            parse_time(bad)


def _csv(rows: list[list[str]], encoding="utf-8") -> bytes:
    import io

    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue().encode(encoding)


def test_parse_gbk_with_chinese_headers_and_gene_columns():
    data = _csv([["样本管编号", "结果", "ORF1ab基因", "N基因", "仪器", "检测人", "检测时间"],
                 ["T1", "阴性", "", "", "ABI7500-1", "王芳", "2022-01-01 16:30"],
                 ["T2", "阳性", "31.2", "29.8", "ABI7500-1", "王芳", "2022-01-01 16:31"]], encoding="gbk")
    rows, errors, encoding = parse_csv(data)
    assert errors == [] and encoding == "gb18030"
    assert [(r.row, r.tube, r.outcome, r.ct_values, r.instrument, r.operator) for r in rows] == [
        (2, "T1", "negative", {}, "ABI7500-1", "王芳"),
        (3, "T2", "positive", {"ORF1ab": 31.2, "N": 29.8}, "ABI7500-1", "王芳"),
    ]
    assert rows[0].tested_at == dt.datetime(2022, 1, 1, 8, 30, tzinfo=dt.UTC)


def test_parse_reports_each_bad_cell_with_its_line():
    data = _csv([["tube", "outcome", "ct_orf1ab", "ct_n", "tested_at"],
                 ["T1", "negative", "", "", ""],
                 ["T2", "maybe", "", "", ""],
                 ["T3", "positive", "abc", "99", ""],
                 ["", "negative", "", "", ""],
                 ["T5", "negative", "", "", "tomorrow"]])
    rows, errors, _ = parse_csv(data)
    assert [r.tube for r in rows] == ["T1"] and rows[0].tested_at is None
    assert [(e.row, e.field) for e in errors] == [(3, "outcome"), (4, "ct_ORF1ab"), (4, "ct_N"), (5, "tube"),
                                                  (6, "tested_at")]


def test_malformed_records_are_reported_by_line():
    data = b"tube,outcome\nT1,negative\nT2,negative,extra\nT3,positive\n"
    rows, errors, _ = parse_csv(data)
    assert [r.tube for r in rows] == ["T1", "T3"] and [r.row for r in rows] == [2, 4]
    assert [(e.row, e.field) for e in errors] == [(3, "record")]


@pytest.mark.parametrize("data,needle", [
    (b"", "empty"),
    (b"name,phone\nx,y\n", "no tube column"),
    (b"tube,ct_n\nT1,30\n", "no result column"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a CSV"),
    (b"tube,outcome,ct_n,N\nT1,negative,1,2\n", "two columns give the Ct of N"),
])
def test_a_malformed_file_gets_one_clear_error(data, needle):
    with pytest.raises(ValidationFailed) as exc:
        parse_csv(data)
    assert needle in exc.value.message


# --- files end to end ------------------------------------------------------------------------------------------------

@pytest.fixture
def lab_world(regions):
    with clock.frozen(LATER):
        lab = make_lab(regions["district"])
        people = make_persons(regions["grid_a1"], 20)
        make_tube("T1", people[:10], capacity=10)
        make_tube("T2", people[10:20], capacity=10)
        yield {"lab": lab, "people": people}


def test_load_a_file_writes_the_error_file_and_rerun_is_unchanged(lab_world, tmp_path):
    path = tmp_path / "results.csv"
    path.write_bytes(_csv([["管码", "结果", "ct_orf1ab", "ct_n"], ["T1", "阴性", "", ""], ["T2", "阳性", "30.1", "29"],
                           ["T9", "阴性", "", ""]], encoding="gb18030"))
    report = load_results_file(path, lab=lab_world["lab"])
    assert (report.accepted, report.unchanged, report.rejected_rows) == (2, 0, 1)
    assert report.error_file == str(path) + ".errors.csv"
    with open(report.error_file, encoding="utf-8-sig") as fh:
        (err,) = list(csv.DictReader(fh))
    assert err["line"] == "4" and err["tube"] == "T9" and err["field"] == "tube" and "unknown tube" in err["reason"]
    assert TubeResult.objects.get(tube__barcode="T2").ct_values == {"ORF1ab": 30.1, "N": 29.0}
    assert TubeResult.objects.get(tube__barcode="T2").source == "csv"
    again = load_results_file(path, lab=lab_world["lab"])
    assert (again.accepted, again.unchanged) == (0, 2)
    assert PersonTestState.objects.filter(status="pool_positive").count() == 10


def test_command_line(lab_world, tmp_path, capsys):
    from django.core.management import call_command

    good = tmp_path / "good.csv"
    good.write_text("tube,outcome\nT1,negative\n", encoding="utf-8")
    with clock.frozen(LATER):
        call_command("testing_load_results", str(good), "--lab", "LAB1")
    out = capsys.readouterr().out
    assert "1 rows: 1 accepted, 0 unchanged, 0 rejected" in out
    bad = tmp_path / "bad.csv"
    bad.write_text("tube,outcome\nT2,negative\nNOPE,negative\n", encoding="utf-8")
    with clock.frozen(LATER), pytest.raises(SystemExit) as exited:
        call_command("testing_load_results", str(bad), "--lab", "LAB1", "--error-file", str(tmp_path / "e.csv"))
    assert exited.value.code == 3
    out = capsys.readouterr().out
    assert "row 3: tube: unknown tube NOPE" in out and str(tmp_path / "e.csv") in out
    assert TubeResult.objects.filter(tube__barcode="T2").exists()  # good rows are committed
    malformed = tmp_path / "m.csv"
    malformed.write_text("name\nx\n", encoding="utf-8")
    from django.core.management.base import CommandError

    with clock.frozen(LATER), pytest.raises(CommandError, match="no tube column"):
        call_command("testing_load_results", str(malformed), "--lab", "LAB1")
    with clock.frozen(LATER), pytest.raises(CommandError, match="lab NOLAB not found"):
        call_command("testing_load_results", str(good), "--lab", "NOLAB")


@pytest.mark.django_db
def test_re_running_a_file_without_test_times_is_unchanged_not_a_conflict(regions, tmp_path):
    """Regression: a row without a test time takes the time of the upload; re-running the same file an hour later
    compared that stand-in time with the stored one and rejected every row as a conflict (exit status 3)."""
    lab = make_lab(regions["district"])
    make_tube("T1", make_persons(regions["grid_a1"], 2), capacity=10)
    make_tube("T2", make_persons(regions["grid_a1"], 1), capacity=1)
    path = tmp_path / "run.csv"
    path.write_bytes("管码,结果,检测时间\nT1,阴性,\nT2,阴性,2022-01-01 17:00\n".encode())
    with clock.frozen(LATER):
        first = load_results_file(path, lab=lab)
    assert (first.accepted, first.errors) == (2, [])
    with clock.frozen(LATER + dt.timedelta(hours=1)):
        again = load_results_file(path, lab=lab)
    assert (again.accepted, again.unchanged, again.errors) == (0, 2, [])
    assert TubeResult.objects.get(tube__barcode="T1").tested_at == LATER  # the first upload's time stays
    # A row that now gives a different time than the stored one is still a conflict.
    path.write_bytes("管码,结果,检测时间\nT2,阴性,2022-01-01 18:00\n".encode())
    with clock.frozen(LATER + dt.timedelta(hours=1)):
        changed = load_results_file(path, lab=lab)
    assert changed.unchanged == 0 and [e.field for e in changed.errors] == ["result"]
