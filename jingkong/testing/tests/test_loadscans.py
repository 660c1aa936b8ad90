"""`jingkong testing load-scans FILE`: a file of scans, set-based, with the rules of the scan API."""

from __future__ import annotations

import csv
import datetime as dt
import json

import pytest
from django.core.management import call_command

from jingkong.conftest import T0, make_user
from jingkong.testing.loadscans import load_scans
from jingkong.testing.tests import sampling_helpers as h

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():
    """The reasons are translated (the UI defaults to Chinese): these tests read the English source strings."""
    from django.utils import translation

    with translation.override("en"):
        yield
HEADER = ["client_scan_id", "tube", "id_number", "name", "site", "sampled_at", "pool_size", "campaign", "tube_kind",
          "device"]


@pytest.fixture
def world(regions, frozen_clock):
    round_ = h.campaign(regions["district"], "R1", pool_size=10)
    site = h.site(regions["grid_a1"], "SITE-A1")
    site_b = h.site(regions["grid_b1"], "SITE-B1")
    people = [h.person(regions["grid_a1"], i) for i in range(1, 61)]
    return {"regions": regions, "campaign": round_, "site": site, "site_b": site_b, "people": people,
            "numbers": [n for _, n in people]}


def row(tube, number, *, site="SITE-A1", at=None, **extra) -> dict:
    return {"tube": tube, "id_number": number, "site": site,
            "sampled_at": at or (T0 - dt.timedelta(minutes=30)).isoformat(), **extra}


def write(path, rows, *, header=HEADER, encoding="utf-8"):
    with open(path, "w", newline="", encoding=encoding) as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for r in rows:
            w.writerow([r.get(c, "") for c in HEADER])
    return path


def read_errors(path):
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def samples(**filters):
    from jingkong.testing.models import Sample

    return Sample.objects.filter(**filters)


def tube(barcode):
    from jingkong.testing.models import Tube

    return Tube.objects.get(barcode=barcode)


def test_a_round_loads_into_tubes_of_its_pool_size(world, tmp_path):
    n = world["numbers"]
    rows = [row(f"T{i // 10}", n[i], client_scan_id=f"f{i}", device="pad-1") for i in range(25)]
    rows += [row("T9", n[30 + i], pool_size="5") for i in range(5)]
    result = load_scans(write(tmp_path / "scans.csv", rows))
    assert (result.rows, result.recorded, result.rejected, result.duplicate) == (30, 30, 0, 0)
    assert (result.tubes_opened, result.tubes_sealed) == (4, 3)
    t0, t2, t9 = tube("T0"), tube("T2"), tube("T9")
    assert (t0.capacity, t0.member_count, t0.status, t0.campaign) == (10, 10, "sealed", world["campaign"])
    assert (t2.member_count, t2.status) == (5, "open") and (t9.capacity, t9.status) == (5, "sealed")
    assert t0.site == world["site"] and t0.region_code == world["regions"]["grid_a1"].code
    assert t0.opened_at == T0 - dt.timedelta(minutes=30) and t0.sealed_at == t0.opened_at
    s = samples().get(client_scan_id="f3")
    assert (s.person, s.tube, s.position, s.device, s.sampler) == (world["people"][3][0], t0, 4, "pad-1", None)
    assert s.campaign == world["campaign"] and s.sampled_at == T0 - dt.timedelta(minutes=30)
    assert sorted(samples(tube=t2).values_list("position", flat=True)) == [1, 2, 3, 4, 5]


def test_loading_the_same_file_again_records_nothing(world, tmp_path):
    from jingkong.core.models import DomainEvent

    n = world["numbers"]
    with_ids = write(tmp_path / "a.csv", [row(f"A{i // 10}", n[i], client_scan_id=f"a{i}") for i in range(20)])
    without = write(tmp_path / "b.csv", [row(f"B{i // 10}", n[i]) for i in range(15)])
    for path in (with_ids, without):
        assert load_scans(path).recorded > 0
    count, events = samples().count(), DomainEvent.objects.filter(type="testing.scans_recorded").count()
    for path, rows in ((with_ids, 20), (without, 15)):
        again = load_scans(path)
        assert (again.recorded, again.already_recorded, again.rejected) == (0, rows, 0)
    assert samples().count() == count == 35
    assert tube("B1").member_count == 5
    assert DomainEvent.objects.filter(type="testing.scans_recorded").count() == events


def test_a_tube_takes_no_more_than_its_capacity(world, tmp_path):
    n = world["numbers"]
    result = load_scans(write(tmp_path / "s.csv", [row("T1", n[i]) for i in range(12)]))
    assert (result.recorded, result.rejected) == (10, 2)
    assert all(e.field == "tube" and "full" in e.reason for e in result.errors)
    assert tube("T1").member_count == 10 and samples().count() == 10


def test_the_earliest_scans_fill_a_tube_first(world, tmp_path):
    n = world["numbers"]
    rows = [row("T1", n[i], at=(T0 - dt.timedelta(minutes=i)).isoformat(), pool_size="2") for i in range(3)]
    result = load_scans(write(tmp_path / "s.csv", rows))
    assert result.recorded == 2 and result.errors[0].line == 2  # the latest scan (first line) is the one refused
    assert samples().get(position=1).person == world["people"][2][0]


def test_room_left_by_earlier_scans_is_respected(world, tmp_path, client, bearer):
    sampler = make_user("sampler_a", "sampler", world["regions"]["street_a"])
    world["site"].samplers.add(sampler)
    n = world["numbers"]
    auth = bearer(sampler)
    for i in range(7):
        client.post("/api/v1/testing/scans", data=json.dumps(h.scan("T1", n[i], "SITE-A1")),
                    content_type="application/json", **auth)
    result = load_scans(write(tmp_path / "s.csv", [row("T1", n[i]) for i in range(5, 12)]))
    # the first two were scanned without scan ids, like these rows: the same derived ids, so already recorded
    assert (result.already_recorded, result.recorded, result.rejected) == (2, 3, 2)
    t = tube("T1")
    assert (t.member_count, t.status) == (10, "sealed")
    assert sorted(samples(tube=t).values_list("position", flat=True)) == list(range(1, 11))


def test_bad_rows_are_reported_and_the_good_ones_kept(world, tmp_path, regions):
    n = world["numbers"]
    h.site(regions["grid_a2"], "SITE-OFF", active=False)
    bad_check = n[1][:-1] + ("0" if n[1][-1] != "0" else "1")
    later = (T0 + dt.timedelta(hours=2)).isoformat()
    rows = [
        row("T1", n[0]),
        row("T1", bad_check),
        row("T1", n[2], site="NOPE"),
        row("T1", n[3], at="yesterday"),
        row("T1", n[4], at=later),
        row("T1", n[5], pool_size="30"),
        row("T1", n[6], tube_kind="mixed"),
        row("", n[7]),
        row("T 1", n[8]),
        row("T1", n[9], site="SITE-OFF"),
        row("T1", n[10], campaign="NOPE"),
        row("T1", ""),
        row("T1", n[11]),
    ]
    path = write(tmp_path / "s.csv", rows)
    result = load_scans(path)
    assert (result.recorded, result.rejected) == (2, 11)
    got = {(e.line, e.field) for e in result.errors}
    assert got == {(3, "id_number"), (4, "site"), (5, "sampled_at"), (6, "sampled_at"), (7, "pool_size"),
                   (8, "tube_kind"), (9, "tube"), (10, "tube"), (11, "site"), (12, "campaign"), (13, "id_number")}
    errors = read_errors(result.error_file)
    assert errors[0]["line"] == "3" and "check digit" in errors[0]["reason"]
    assert errors[0]["id_masked"] == bad_check[:6] + "********" + bad_check[-4:]
    assert bad_check not in open(result.error_file, encoding="utf-8-sig").read()
    assert errors[2]["field"] == "sampled_at" and errors[2]["value"] == "yesterday"


def test_repeats_inside_the_file(world, tmp_path):
    n = world["numbers"]
    rows = [
        row("T1", n[0], client_scan_id="x"),
        row("T1", n[0], client_scan_id="x"),  # the same row twice
        row("T1", n[0], client_scan_id="y"),  # the same person and tube under another id
        row("T1", n[1], client_scan_id="x"),  # the same id for another person: refused
        row("T2", n[0], client_scan_id="z"),  # the same person in another tube: recorded
    ]
    result = load_scans(write(tmp_path / "s.csv", rows))
    assert (result.recorded, result.duplicate, result.rejected) == (2, 2, 1)
    assert result.errors[0].line == 5 and result.errors[0].field == "client_scan_id"
    assert tube("T1").member_count == 1


def test_a_scan_id_already_used_by_another_tube_is_refused_and_the_rest_kept(world, tmp_path):
    n = world["numbers"]
    load_scans(write(tmp_path / "a.csv", [row("T1", n[0], client_scan_id="k")]))
    rows = [row("T2", n[1], client_scan_id="k")] + [row("T2", n[i]) for i in range(2, 6)]
    result = load_scans(write(tmp_path / "b.csv", rows))
    assert (result.recorded, result.rejected) == (4, 1) and result.errors[0].field == "client_scan_id"
    assert tube("T2").member_count == 4
    assert sorted(samples(tube=tube("T2")).values_list("position", flat=True)) == [1, 2, 3, 4]


def test_tubes_keep_their_kind_site_and_campaign(world, tmp_path):
    n = world["numbers"]
    h.campaign(world["regions"]["street_a"], "R-A")
    h.site(world["regions"]["grid_a2"], "SITE-A2")
    load_scans(write(tmp_path / "a.csv", [row("T1", n[0], campaign="R1")]))
    rows = [row("T1", n[1], tube_kind="retest"), row("T1", n[2], site="SITE-A2"), row("T1", n[3], campaign="R-A"),
            row("T1", n[4])]
    result = load_scans(write(tmp_path / "b.csv", rows))
    assert [e.field for e in result.errors] == ["tube_kind", "tube", "campaign"] and result.recorded == 1


def test_sealed_tubes_take_nothing(world, tmp_path):
    from jingkong.testing.models import Tube

    n = world["numbers"]
    load_scans(write(tmp_path / "a.csv", [row("T1", n[0])]))
    Tube.objects.filter(barcode="T1").update(status="sealed")
    result = load_scans(write(tmp_path / "b.csv", [row("T1", n[1])]))
    assert result.rejected == 1 and "sealed" in result.errors[0].reason


def test_unknown_persons_are_registered_provisionally(world, tmp_path):
    from jingkong.access.models import AuditLog
    from jingkong.core.models import DomainEvent
    from jingkong.people.models import Person

    new = h.new_id(4)
    rows = [row("T1", new, name="王五"), row("T2", new), row("T1", world["numbers"][0])]
    result = load_scans(write(tmp_path / "s.csv", rows))
    assert (result.recorded, result.persons_created) == (3, 1)
    p = Person.objects.get(source="provisional")
    assert (p.name, p.needs_review, p.grid) == ("王五", True, world["regions"]["grid_a1"])
    assert samples(person=p).count() == 2
    record = AuditLog.objects.get(action="person.create")
    assert record.detail["ids"] == [[p.pk, p.pk]] and record.region_code == world["regions"]["grid_a1"].code
    assert DomainEvent.objects.get(type="people.person_created").payload["provisional"] is True
    assert load_scans(write(tmp_path / "s2.csv", [row("T3", new)])).persons_created == 0


def test_retest_rows_claim_the_open_task(world, tmp_path):
    p, number = world["people"][0]
    task = h.retest_task(p)
    result = load_scans(write(tmp_path / "s.csv", [row("R1", number, tube_kind="复核")]))
    assert (result.recorded, result.retest_tasks_claimed) == (1, 1)
    task.refresh_from_db()
    s = samples().get()
    assert task.status == "sampled" and task.sample == s and s.retest_of == task
    assert (tube("R1").capacity, tube("R1").status, tube("R1").kind) == (1, "sealed", "retest")


def test_gbk_files_with_chinese_headers(world, tmp_path):
    path = tmp_path / "gbk.csv"
    with open(path, "w", newline="", encoding="gbk") as fh:
        w = csv.writer(fh)
        w.writerow(["试管编码", "身份证号", "姓名", "采样点编码", "采样时间", "混采人数"])
        w.writerow(["T1", world["numbers"][0], "张三", "SITE-A1", "2022/01/01 16:00", "5"])
        w.writerow(["T1", h.new_id(5), "李四", "SITE-A1", "2022-01-01 16:05:30", "5"])
    result = load_scans(path)
    assert (result.recorded, result.rejected, result.encoding) == (2, 0, "gb18030")
    assert tube("T1").capacity == 5
    assert samples().get(position=1).sampled_at == dt.datetime(2022, 1, 1, 8, 0, tzinfo=dt.UTC)  # local time
    from jingkong.people.models import Person

    assert Person.objects.get(source="provisional").name == "李四"


def test_parquet_files_with_a_timestamp_column(world, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = world["numbers"]
    table = pa.table({
        "tube": ["P1", "P1", "P1"],
        "id_number": [n[0], n[1], "12345"],
        "site": ["SITE-A1"] * 3,
        "sampled_at": pa.array([T0 - dt.timedelta(minutes=m) for m in (1, 2, 3)], pa.timestamp("ms", tz="UTC")),
        "pool_size": pa.array([10, 10, 10], pa.int32()),
    })
    pq.write_table(table, tmp_path / "s.parquet")
    result = load_scans(tmp_path / "s.parquet")
    assert (result.format, result.recorded, result.rejected) == ("parquet", 2, 1)
    assert result.errors[0].line == 3 and result.errors[0].field == "id_number"
    assert samples().get(position=1).sampled_at == T0 - dt.timedelta(minutes=2)


def test_small_chunks_keep_whole_tubes_together(world, tmp_path):
    n = world["numbers"]
    rows = [row(f"T{i % 4}", n[i], pool_size="10") for i in range(40)]
    result = load_scans(write(tmp_path / "s.csv", rows), chunk_rows=7)
    assert result.recorded == 40 and result.tubes_sealed == 4
    for k in range(4):
        assert sorted(samples(tube=tube(f"T{k}")).values_list("position", flat=True)) == list(range(1, 11))


def test_a_header_without_the_required_columns_fails_as_a_whole(world, tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("tube,id_number\nT1,x\n")
    from jingkong.core.exceptions import ValidationFailed

    with pytest.raises(ValidationFailed, match="site, sampled_at"):
        load_scans(path)


def test_a_dry_run_writes_nothing(world, tmp_path):
    from jingkong.people.models import Person

    persons = Person.objects.count()
    result = load_scans(write(tmp_path / "s.csv", [row("T1", world["numbers"][0]), row("T1", h.new_id(6)),
                                                   row("T1", "bad")]), dry_run=True)
    assert result.dry_run and result.rejected == 1
    assert not samples().exists() and Person.objects.count() == persons


def test_the_command_reports_and_exits_3_when_rows_were_rejected(world, tmp_path, capsys):
    path = write(tmp_path / "s.csv", [row("T1", world["numbers"][0]), row("T1", "bad")])
    with pytest.raises(SystemExit) as exit_info:
        call_command("testing_load_scans", str(path))
    assert exit_info.value.code == 3
    out = capsys.readouterr().out
    assert "1 recorded" in out and "1 rejected" in out and "line 3: id_number" in out
    good = write(tmp_path / "g.csv", [row("T2", world["numbers"][1])])
    call_command("testing_load_scans", str(good))  # no exit status 3
    assert samples().count() == 2


def test_the_job_kind_is_registered():
    from jingkong.core import jobs

    assert "testing.load_scans" in jobs.registered_kinds()


def test_column_wise_id_validation_agrees_with_the_per_row_rules():
    """Random numbers (right and wrong check digits, impossible dates, short, legacy 15-digit, lower-case x)."""
    import random

    import numpy as np
    import pyarrow as pa

    from jingkong.people import idnumber
    from jingkong.testing.loadscans import validate_ids

    rnd = random.Random(3)
    values = []
    for _ in range(5000):
        born = dt.date(1900, 1, 1) + dt.timedelta(days=rnd.randrange(0, 45000))
        first17 = f"{rnd.randrange(110000, 660000)}{born:%Y%m%d}{rnd.randrange(1000):03d}"
        v = first17 + (idnumber.check_char(first17) if rnd.random() < 0.7 else rnd.choice("0123456789X"))
        if rnd.random() < 0.05:
            v = v[:rnd.randrange(18)]
        if rnd.random() < 0.03:
            v = v[:10] + "13" + v[12:]
        if rnd.random() < 0.02:
            v = v[:6] + v[8:17]
        values.append(v.lower() if rnd.random() < 0.1 else v)
    today = dt.date(2022, 1, 20)
    mat, ok = validate_ids(pa.array(values), today)
    expected = np.array([idnumber.is_valid(v, today=today) for v in values])
    assert (ok == expected).all() and 0 < expected.sum() < len(values)
    for row, v in zip(mat[ok], np.array(values)[ok], strict=True):
        assert row.tobytes().decode() == idnumber.validate(v, today=today)


def test_nul_characters_and_impossible_times_reject_their_rows_only(world, tmp_path):
    n = world["numbers"]
    rows = [row("T1", n[0]), row("T1", n[1], name="a\x00b"), row("T1", n[2], client_scan_id="x\x00"),
            row("T1", n[3], device="\x00"), row("T1", n[4], campaign="R\x001"),
            row("T1", n[5], at="0001-01-01T00:00:00+08:00"), row("T1", n[6], at="1999-12-31T23:00:00Z")]
    result = load_scans(write(tmp_path / "s.csv", rows))
    assert (result.recorded, result.rejected) == (1, 6)
    assert [e.field for e in result.errors] == ["name", "client_scan_id", "device", "campaign", "sampled_at",
                                                "sampled_at"]
