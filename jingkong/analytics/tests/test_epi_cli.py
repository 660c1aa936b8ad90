"""`jingkong epi rt`: through call_command and through the real `jingkong` entry point, with files in tmp_path."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from jingkong.analytics import rt
from jingkong.analytics.epi_files import InputError, read_incidence, read_si_distr
from jingkong.analytics.tests.test_rt import FLU2009, FLU2009_PUBLISHED

HEADER = "t_start,t_end,mean_r,std_r,q025,q50,q975"
FLU_START = dt.date(2009, 4, 27)
# Flu2009$si_distr as printed by EpiEstim (sums to 1.000)
FLU_SI_DISTR = [0.000, 0.233, 0.359, 0.198, 0.103, 0.053, 0.027, 0.014, 0.007, 0.003, 0.002, 0.001]


def _incidence_csv(counts, *, imported=None, start=FLU_START, header="date,local") -> str:
    lines = [header + (",imported" if imported is not None else "")]
    for i, n in enumerate(counts):
        day = (start + dt.timedelta(days=i)).isoformat()
        lines.append(f"{day},{n}" + (f",{imported[i]}" if imported is not None else ""))
    return "\n".join(lines) + "\n"


def _write(path, text: str, encoding: str = "utf-8"):
    path.write_bytes(text.encode(encoding))
    return str(path)


def _run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("epi_rt", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def _fails(*args) -> str:
    with translation.override("en"), pytest.raises(CommandError) as info:
        _run(*args)
    return str(info.value)


# --------------------------------------------------------------------------------------------------------- output


def test_flu2009_through_the_command_matches_epiestim(tmp_path):
    path = _write(tmp_path / "flu.csv", _incidence_csv(FLU2009))
    out, err = _run("--incidence", path, "--si-mean", "2.6", "--si-sd", "1.5")
    assert out.splitlines()[0] == HEADER
    rows = _rows(out)
    assert len(rows) == len(FLU2009) - 7
    for row, (t_start, t_end, mean, std, q025, median, q975) in zip(rows, FLU2009_PUBLISHED, strict=False):
        assert row["t_start"] == (FLU_START + dt.timedelta(days=t_start - 1)).isoformat()
        assert row["t_end"] == (FLU_START + dt.timedelta(days=t_end - 1)).isoformat()  # inclusive
        for key, expected in (("mean_r", mean), ("std_r", std), ("q025", q025), ("q50", median), ("q975", q975)):
            assert float(row[key]) == pytest.approx(expected, rel=1e-5)
    # the early windows hold fewer than 11 local cases: said on stderr, the CSV stays clean
    assert "fewer than 11 local cases" in err


def test_out_file_and_window(tmp_path):
    path = _write(tmp_path / "flu.csv", _incidence_csv(FLU2009))
    target = tmp_path / "rt.csv"
    out, err = _run("--incidence", path, "--si-mean", "2.6", "--si-sd", "1.5", "--window", "14", "--out", str(target))
    assert out == "" and "written to" in err
    rows = _rows(target.read_text(encoding="utf-8"))
    assert len(rows) == len(FLU2009) - 14
    first = dt.date.fromisoformat(rows[0]["t_start"])
    assert (dt.date.fromisoformat(rows[0]["t_end"]) - first).days == 13 and first == FLU_START + dt.timedelta(days=1)


def test_prior_options_change_the_posterior(tmp_path):
    path = _write(tmp_path / "c.csv", _incidence_csv([10] * 9))
    distr = _write(tmp_path / "si.txt", "0\n1\n")
    out, _ = _run("--incidence", path, "--si-distr", distr, "--mean-prior", "2", "--std-prior", "1")
    # one-day serial interval, 10 cases a day: gamma(4 + 70, 1/(2 + 70)) with the prior mean 2, sd 1
    assert float(_rows(out)[0]["mean_r"]) == pytest.approx(74 / 72, rel=1e-5)


def test_imported_column_counts_as_sources_only(tmp_path):
    local = [0, 5, 5, 5, 5, 5, 5, 5, 5, 5]
    imported = [5] * 10
    distr = _write(tmp_path / "si.txt", "0\n1\n")
    path = _write(tmp_path / "i.csv", _incidence_csv(local, imported=imported))
    out, _ = _run("--incidence", path, "--si-distr", distr)
    # one-day serial interval; the first window (days 1..7) has 5 local offspring a day and, as sources, the day
    # before's cases: 5 (imported only) for day 1, then 10: gamma(1 + 35, 1/(1/5 + 5 + 6·10))
    assert float(_rows(out)[0]["mean_r"]) == pytest.approx(36 / (0.2 + 65), rel=1e-5)


def test_without_imported_column_the_first_day_is_imported(tmp_path):
    counts = [7, 3, 4, 6, 5, 8, 9, 12, 10, 11]
    plain = _write(tmp_path / "a.csv", _incidence_csv(counts))
    explicit = _write(tmp_path / "b.csv", _incidence_csv([0, *counts[1:]], imported=[7] + [0] * 9))
    args = ("--si-mean", "3", "--si-sd", "1.5")
    assert _run("--incidence", plain, *args)[0] == _run("--incidence", explicit, *args)[0]


def test_si_distribution_file_plain_and_csv(tmp_path):
    path = _write(tmp_path / "flu.csv", _incidence_csv(FLU2009))
    plain = _write(tmp_path / "si.txt", "\n".join(str(v) for v in FLU_SI_DISTR) + "\n")
    column = _write(tmp_path / "si.csv", "day,si\n" + "".join(f"{k},{v}\n" for k, v in enumerate(FLU_SI_DISTR)))
    out_plain, _ = _run("--incidence", path, "--si-distr", plain)
    out_csv, _ = _run("--incidence", path, "--si-distr", column)
    assert out_plain == out_csv
    # hand computation of the first window (days 2..8 counted from 1) with Flu2009$si_distr
    lam = [sum(FLU_SI_DISTR[s] * FLU2009[t - s] for s in range(1, min(t, 11) + 1)) for t in range(len(FLU2009))]
    shape, scale = 1 + sum(FLU2009[1:8]), 1 / (1 / 5 + sum(lam[1:8]))
    assert float(_rows(out_plain)[0]["mean_r"]) == pytest.approx(shape * scale, rel=1e-5)


def test_si_distribution_within_tolerance_is_normalised_with_a_note(tmp_path):
    path = _write(tmp_path / "c.csv", _incidence_csv([10] * 9))
    distr = _write(tmp_path / "si.txt", "0\n0.5\n0.495\n")
    with translation.override("en"):
        _, err = _run("--incidence", path, "--si-distr", distr)
        values, note = read_si_distr(b"0\n0.5\n0.495\n")
    assert "normalised to 1" in err and "0.995" in err
    assert sum(values) == pytest.approx(1.0) and values[1] == pytest.approx(0.5 / 0.995) and note


def test_no_serial_interval_uses_the_documented_default(tmp_path):
    path = _write(tmp_path / "flu.csv", _incidence_csv(FLU2009))
    out, err = _run("--incidence", path)
    explicit, _ = _run("--incidence", path, "--si-mean", str(rt.DEFAULT_SI_MEAN), "--si-sd", str(rt.DEFAULT_SI_SD))
    assert out == explicit and "no serial interval given" in err


def test_too_short_a_series_gives_the_header_only(tmp_path):
    path = _write(tmp_path / "s.csv", _incidence_csv([1, 2, 3]))
    out, err = _run("--incidence", path, "--si-mean", "2.6", "--si-sd", "1.5")
    assert out == HEADER + "\n" and "no estimate" in err


# --------------------------------------------------------------------------------------------------------- encodings


def test_gbk_and_utf8_bom_files_with_chinese_headers(tmp_path):
    text = _incidence_csv(FLU2009, header="日期,本地")
    gbk = _write(tmp_path / "gbk.csv", text, "gbk")
    bom = _write(tmp_path / "bom.csv", text, "utf-8-sig")
    utf8 = _write(tmp_path / "utf8.csv", _incidence_csv(FLU2009))
    args = ("--si-mean", "2.6", "--si-sd", "1.5")
    expected = _run("--incidence", utf8, *args)[0]
    assert _run("--incidence", gbk, *args)[0] == expected
    assert _run("--incidence", bom, *args)[0] == expected


def test_undecodable_file_is_refused(tmp_path):
    path = tmp_path / "bin.csv"
    path.write_bytes(b"date,local\n\x80\xff\xfe,1\n")
    assert "neither UTF-8 nor GBK" in _fails("--incidence", str(path), "--si-mean", "2.6", "--si-sd", "1.5")


# -------------------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("body", "line", "field", "reason"), [
    ("2022-03-01,1\n2022-13-02,1\n", 3, "date", "not a date"),
    ("2022-03-01,1\n2022-03-02,-3\n", 3, "local", "negative"),
    ("2022-03-01,1\n2022-03-02,2.5\n", 3, "local", "not a whole number"),
    ("2022-03-01,1\n2022-03-02,two\n", 3, "local", "not a number"),
    ("2022-03-01,1\n2022-03-02,\n", 3, "local", "empty"),
    ("2022-03-01,1\n2022-03-02,1\n2022-03-02,4\n", 4, "date", "appears again (first on line 3)"),
    ("2022-03-01,1\n2022-03-04,1\n", 3, "date", "no row for 2022-03-02..2022-03-03"),
    ("2022-03-02,1\n2022-03-01,1\n", 3, "date", "ascending"),
])
def test_bad_rows_are_named_by_line_and_field(tmp_path, body, line, field, reason):
    path = _write(tmp_path / "bad.csv", "date,local\n" + body)
    message = _fails("--incidence", path, "--si-mean", "2.6", "--si-sd", "1.5")
    assert f"line {line}, {field}: " in message and reason in message


def test_every_bad_row_is_listed_at_once(tmp_path):
    path = _write(tmp_path / "bad.csv", "date,local,imported\n2022-03-01,1,0\n2022-03-02,-1,x\nfoo,1,1\n", "gbk")
    message = _fails("--incidence", path, "--si-mean", "2.6", "--si-sd", "1.5")
    assert "3 problem(s)" in message
    assert "line 3, local" in message and "line 3, imported" in message and "line 4, date" in message


@pytest.mark.parametrize(("text", "field"), [("day,count\n2022-03-01,1\n", "date"), ("date,imported\n", "local"),
                                             ("", "file"), ("date,local\n", "file")])
def test_missing_columns_and_empty_files(tmp_path, text, field):
    path = _write(tmp_path / "bad.csv", text)
    message = _fails("--incidence", path, "--si-mean", "2.6", "--si-sd", "1.5")
    assert f", {field}: " in message


def test_read_incidence_reports_problems_as_data():
    with translation.override("en"), pytest.raises(InputError) as info:
        read_incidence(b"date,local\n2022-03-01,1\n2022-03-01,2\n")
    assert [(p.line, p.field) for p in info.value.problems] == [(3, "date")]
    ok = read_incidence(b"date,local,imported\n2022-03-01,1,\n2022-03-02,2.0,1\n\n2022/03/03, 4 ,0\n")
    assert ok.local == [1, 2, 4] and ok.imported == [0, 1, 0] and ok.dates[-1] == dt.date(2022, 3, 3)


@pytest.mark.parametrize(("args", "reason"), [
    (("--si-mean", "2.6", "--si-sd", "1.5", "--si-distr", "x"), "not both"),
    (("--si-mean", "2.6"), "go together"),
    (("--si-sd", "1.5"), "go together"),
    (("--si-mean", "1", "--si-sd", "1.5"), "greater than 1"),
    (("--si-mean", "3", "--si-sd", "0"), "--si-sd"),
    (("--si-mean", "3", "--si-sd", "1", "--window", "0"), "--window"),
    (("--si-mean", "3", "--si-sd", "1", "--mean-prior", "-1"), "--mean-prior"),
    (("--si-mean", "3", "--si-sd", "1", "--std-prior", "0"), "--std-prior"),
])
def test_bad_options(tmp_path, args, reason):
    path = _write(tmp_path / "c.csv", _incidence_csv([3] * 10))
    assert reason in _fails("--incidence", path, *args)


@pytest.mark.parametrize(("text", "reason"), [
    ("0.2\n0.8\n", "must be 0"),
    ("0\n0.5\n0.3\n", "sum to 1"),
    ("0\n-0.5\n1.5\n", "≥ 0"),
    ("0\nabc\n1\n", "not a number"),
    ("0\n", "at least two"),
    ("day,w\n0,0\n1,1\n", "missing column si"),
    ("", "empty"),
])
def test_bad_si_distribution_files(tmp_path, text, reason):
    path = _write(tmp_path / "c.csv", _incidence_csv([3] * 10))
    distr = _write(tmp_path / "si.txt", text)
    message = _fails("--incidence", path, "--si-distr", distr)
    assert reason in message and "--si-distr" in message


def test_missing_files(tmp_path):
    assert "no such file" in _fails("--incidence", str(tmp_path / "nope.csv"), "--si-mean", "3", "--si-sd", "1")
    path = _write(tmp_path / "c.csv", _incidence_csv([3] * 10))
    assert "no such file" in _fails("--incidence", path, "--si-distr", str(tmp_path / "nope.txt"))


# ------------------------------------------------------------------------------------------------ the entry point


def test_jingkong_entry_point_resolves_epi_rt():
    from jingkong.cli import _jingkong_commands, _resolve

    assert _resolve(["epi", "rt", "--window", "7"], _jingkong_commands()) == ["epi_rt", "--window", "7"]


def _jingkong(*args, tmp_path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JINGKONG_", "DJANGO_")) and k != "DATABASE_URL"}
    env |= {"JINGKONG_DEBUG": "1", "JINGKONG_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run([sys.executable, "-m", "jingkong.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.slow
def test_entry_point_end_to_end(tmp_path):
    good = _write(tmp_path / "flu.csv", _incidence_csv(FLU2009, header="日期,本地"), "gb18030")
    done = _jingkong("epi", "rt", "--incidence", good, "--si-mean", "2.6", "--si-sd", "1.5", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = _rows(done.stdout)
    assert done.stdout.splitlines()[0] == HEADER and len(rows) == len(FLU2009) - 7
    assert float(rows[0]["mean_r"]) == pytest.approx(FLU2009_PUBLISHED[0][2], rel=1e-5)

    bad = _write(tmp_path / "bad.csv", "date,local\n2022-03-01,1\n2022-03-02,-4\n", "gbk")
    failed = _jingkong("epi", "rt", "--incidence", bad, "--si-mean", "2.6", "--si-sd", "1.5", tmp_path=tmp_path)
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert "3" in failed.stderr and "local" in failed.stderr and "-4" in failed.stderr
