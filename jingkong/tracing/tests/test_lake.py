"""The check-in lake: loading raw exports (normalized, bad rows reported, idempotent re-loads, GBK CSV), and reads."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jingkong.analytics.tests.lakes import World, at
from jingkong.people.tests.helpers import make_id
from jingkong.tracing.lake import CheckinLake, checkins_load, pings_load, transport_load, validate_ids

pytestmark = pytest.mark.django_db

RAW_SCHEMA = pa.schema([
    ("venue_code", pa.dictionary(pa.int32(), pa.string())),
    ("id_number", pa.dictionary(pa.int32(), pa.string())),
    ("checkin_at", pa.timestamp("us", tz="UTC")),
    ("checkout_at", pa.timestamp("us", tz="UTC")),
])


@pytest.fixture
def world(regions):
    w = World(regions)
    for name in ("ann", "bo", "cai"):
        w.person(name)
    for code in ("V1", "V2"):
        w.venue(code)
    return w


@pytest.fixture
def lake(tmp_path):
    return CheckinLake(tmp_path / "lake")


def write_raw(directory, rows, day="2022-01-03"):
    """A synthetic-generator-shaped day file: rows of (venue_code, id_number, checkin_at, checkout_at)."""
    path = directory / f"day={day}" / "part-0.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(zip(*rows, strict=True))
    table = pa.table({
        "venue_code": pa.array(columns[0], pa.string()).dictionary_encode(),
        "id_number": pa.array(columns[1], pa.string()).dictionary_encode(),
        "checkin_at": pa.array(columns[2], RAW_SCHEMA.field("checkin_at").type),
        "checkout_at": pa.array(columns[3], RAW_SCHEMA.field("checkout_at").type),
    })
    pq.write_table(table.cast(RAW_SCHEMA), path)
    return path


def lake_rows(lake, table="checkins"):
    files = lake.files(table)
    return pa.concat_tables([pq.read_table(f) for f in files]).to_pylist() if files else []


def test_a_synthetic_export_is_normalized_by_day(world, lake, tmp_path):
    raw = tmp_path / "export" / "checkins"
    n = world.numbers
    write_raw(raw, [("V1", n["ann"], at(3, 10), at(3, 11)), ("V2", n["bo"], at(3, 7), at(3, 8)),
                    ("V1", n["bo"], at(3, 9), at(3, 10))])
    write_raw(raw, [("V2", n["cai"], at(4, 0, 30), at(4, 1))], day="2022-01-04")
    report = checkins_load(tmp_path / "export", lake=lake)
    assert (report.rows, report.loaded, report.rejected, report.errors) == (4, 4, 0, {})
    assert report.source == "export" and report.days == {"2022-01-03": 3, "2022-01-04": 1}
    day3 = lake.root / "checkins" / "day=2022-01-03" / "src-export.parquet"
    table = pq.read_table(day3)
    assert table.schema.field("person_id").type == pa.int64() and table.schema.field("venue_id").type == pa.int32()
    assert table.schema.field("checkin_at").type == pa.timestamp("us", tz="UTC")
    # sorted by venue, then time
    assert table.to_pylist() == [
        {"person_id": world["bo"], "venue_id": world.v("V1"), "checkin_at": at(3, 9), "checkout_at": at(3, 10)},
        {"person_id": world["ann"], "venue_id": world.v("V1"), "checkin_at": at(3, 10), "checkout_at": at(3, 11)},
        {"person_id": world["bo"], "venue_id": world.v("V2"), "checkin_at": at(3, 7), "checkout_at": at(3, 8)},
    ]
    # 00:30 on the 4th in Shanghai is the 3rd in UTC: the partition is the local day
    assert lake.days() == [dt.date(2022, 1, 3), dt.date(2022, 1, 4)]
    assert lake.status()["checkins"]["rows"] == 4


def test_bad_rows_are_reported_with_masked_ids_and_good_rows_kept(world, lake, tmp_path):
    n = world.numbers
    unknown_person = make_id(dt.date(1990, 5, 5), 777)
    bad_check = n["ann"][:-1] + ("0" if n["ann"][-1] != "0" else "1")
    raw = tmp_path / "export"
    write_raw(raw, [
        ("V1", n["ann"], at(3, 10), at(3, 11)),  # good
        ("V9", n["ann"], at(3, 10), at(3, 11)),  # unknown venue
        ("V9", n["bo"], at(3, 12), at(3, 13)),  # unknown venue
        ("V1", unknown_person, at(3, 10), at(3, 11)),  # unknown person
        ("V1", bad_check, at(3, 10), at(3, 11)),  # invalid ID number
        ("V2", n["cai"], at(3, 11), at(3, 10)),  # checkout before checkin
    ])
    report = checkins_load(raw, lake=lake)
    assert (report.rows, report.loaded, report.rejected) == (6, 1, 5)
    errors = report.errors
    assert errors["venue_code: unknown venue (not on the base map)"]["rows"] == 2
    assert errors["id_number: unknown person (not in the registry)"]["rows"] == 1
    assert errors["id_number: the check digit is wrong (mistyped ID number)"]["rows"] == 1
    assert errors["checkout_at: before checkin_at"]["rows"] == 1
    assert report.unknown_venues == {"V9": 2}
    sample = errors["id_number: unknown person (not in the registry)"]["samples"][0]
    assert sample["row"] == 4 and sample["file"] == "day=2022-01-03/part-0.parquet"
    assert sample["id_number"] == unknown_person[:6] + "********" + unknown_person[-4:]
    text = json.dumps(report.as_dict(), default=str)
    for number in [*n.values(), unknown_person, bad_check]:
        assert number not in text  # no ID number in clear anywhere in the report
    assert [r["person_id"] for r in lake_rows(lake)] == [world["ann"]]


def test_reloading_is_idempotent_and_replaces_the_sources_days(world, lake, tmp_path):
    n = world.numbers
    raw = tmp_path / "feed"
    write_raw(raw, [("V1", n["ann"], at(3, 10), at(3, 11))])
    write_raw(raw, [("V1", n["bo"], at(4, 10), at(4, 11))], day="2022-01-04")
    checkins_load(raw, lake=lake)
    def contents():
        return {p.relative_to(lake.root): pq.read_table(p).to_pylist() for p in lake.root.rglob("*.parquet")}

    first = contents()
    again = checkins_load(raw, lake=lake)
    assert contents() == first
    assert again.loaded == 2
    # Another source on the same day is kept next to it.
    other = tmp_path / "other"
    write_raw(other, [("V2", n["cai"], at(3, 12), at(3, 13))])
    checkins_load(other, lake=lake)
    assert len(lake_rows(lake)) == 3
    # The feed now lacks the 4th and has changed the 3rd: its files follow, the other source stays.
    (raw / "day=2022-01-04" / "part-0.parquet").unlink()
    write_raw(raw, [("V1", n["ann"], at(3, 14), at(3, 15))])
    report = checkins_load(raw, lake=lake)
    assert report.removed_days == ["2022-01-04"]
    assert sorted((r["person_id"], r["checkin_at"]) for r in lake_rows(lake)) == [
        (world["ann"], at(3, 14)), (world["cai"], at(3, 12))]
    assert lake.days() == [dt.date(2022, 1, 3)]
    assert not list(lake.root.rglob(".*.tmp"))


def test_gbk_csv_with_chinese_headers_and_local_times(world, lake, tmp_path):
    n = world.numbers
    path = tmp_path / "scans" / "导出.csv"
    path.parent.mkdir()
    path.write_bytes((
        "场所码,身份证号,进入时间,离开时间\n"
        f"V1,{n['ann']},2022-01-03 10:00:00,2022-01-03 11:00:00\n"
        f"V2,{n['bo']},2022/1/3 07:30,2022-01-03T08:00:00+08:00\n"
        f"V2,{n['cai']},2022-01-03T09:00:00Z,\n"
        f"V2,{n['cai']},昨天,\n"
        "V1,,2022-01-03 10:00:00,2022-01-03 11:00:00\n"
    ).encode("gbk"))
    report = checkins_load(path.parent, lake=lake)
    assert (report.rows, report.loaded, report.rejected) == (5, 3, 2)
    assert report.errors["checkin_at: not a date-time"]["samples"][0]["row"] == 5
    assert report.errors["id_number: missing"]["samples"][0]["row"] == 6
    assert report.flags["time without a zone: read as Asia/Shanghai time"]["rows"] == 2
    assert report.flags["checkout_at missing: check-in + 30 min assumed"]["rows"] == 1
    rows = {r["person_id"]: r for r in lake_rows(lake)}
    assert (rows[world["ann"]]["checkin_at"], rows[world["ann"]]["checkout_at"]) == (at(3, 10), at(3, 11))
    assert (rows[world["bo"]]["checkin_at"], rows[world["bo"]]["checkout_at"]) == (at(3, 7, 30), at(3, 8))
    assert rows[world["cai"]]["checkin_at"] == at(3, 17)  # 09:00 UTC
    assert rows[world["cai"]]["checkout_at"] == at(3, 17, 30)


def test_legacy_numbers_duplicates_and_missing_columns(world, lake, tmp_path):
    legacy_person = world.person("dan", seq=40)
    number = world.numbers["dan"]
    legacy = number[:6] + number[8:17]  # the 15-digit form of a 19xx number
    raw = tmp_path / "x"
    write_raw(raw, [("V1", legacy, at(3, 10), at(3, 11)), ("V1", number, at(3, 10), at(3, 11))])
    (raw / "broken.csv").write_text("venue_code,checkin_at\nV1,2022-01-03 10:00\n", encoding="utf-8")
    report = checkins_load(raw, lake=lake)
    assert report.loaded == 1 and lake_rows(lake)[0]["person_id"] == legacy_person.pk
    assert report.flags["duplicate row (the same row more than once; kept once)"]["rows"] == 1
    problem = report.errors["file: unreadable or missing columns"]
    assert problem["samples"][0]["file"] == "broken.csv" and "id_number" in problem["samples"][0]["detail"]
    assert report.partial  # the source's other days are not removed after a failed file


def test_validate_ids_in_bulk():
    good = make_id(dt.date(1980, 2, 29), 12)
    normalized, reasons = validate_ids(pa.array([good, good.lower() + " ", "33020619800230123X", "12345", None]))
    assert normalized.to_pylist()[:2] == [good, good]
    assert normalized.to_pylist()[2:] == [None, None, None]
    assert reasons.to_pylist()[2] == "id_number: the birth date inside the ID number is not a real date"
    assert reasons.to_pylist()[3].startswith("id_number: an ID number has 18 characters")
    assert reasons.to_pylist()[4] == "id_number: the ID number is missing"


def test_stays_of_gives_a_persons_own_checkins_with_venue_names(world, lake, tmp_path):
    n = world.numbers
    raw = tmp_path / "export"
    write_raw(raw, [("V1", n["ann"], at(3, 10), at(3, 11)), ("V2", n["ann"], at(3, 18), at(3, 19)),
                    ("V1", n["bo"], at(3, 10), at(3, 11))])
    checkins_load(raw, lake=lake)
    checkins_load(raw, lake=lake, source="copy")  # the same rows from a second source appear once
    stays = lake.stays_of([world["ann"]], at(3, 10, 30), at(3, 18, 30))
    assert stays == [
        {"person_id": world["ann"], "venue_id": world.v("V1"), "checkin_at": at(3, 10), "checkout_at": at(3, 11),
         "venue_code": "V1", "venue_name": "场所V1"},
        {"person_id": world["ann"], "venue_id": world.v("V2"), "checkin_at": at(3, 18), "checkout_at": at(3, 19),
         "venue_code": "V2", "venue_name": "场所V2"},
    ]
    assert lake.stays_of([world["ann"]], at(3, 11), at(3, 18)) == []
    assert lake.stays_of([], at(3, 0), at(4, 0)) == []


def test_pings_and_transport_lists(world, lake, tmp_path):
    n = world.numbers
    (tmp_path / "pings").mkdir()
    (tmp_path / "pings" / "p.csv").write_text(
        "id_number,lon,lat,at\n"
        f"{n['ann']},121.80,29.90,2022-01-03 10:00:00\n"
        f"{n['bo']},200,29.90,2022-01-03 10:00:00\n", encoding="utf-8")
    report = pings_load(tmp_path / "pings", lake=lake)
    assert (report.loaded, report.rejected) == (1, 1) and "lon: not a longitude" in report.errors
    assert lake_rows(lake, "pings") == [{"person_id": world["ann"], "lon": 121.8, "lat": 29.9, "at": at(3, 10)}]
    (tmp_path / "trains").mkdir()
    (tmp_path / "trains" / "list.csv").write_text(
        "身份证号,交通方式,车次,日期,车厢,座位\n"
        f"{n['ann']},高铁,g 1234,2022-01-03,05车,12F\n"
        f"{n['bo']},马车,X1,2022-01-03,,\n", encoding="utf-8")
    report = transport_load(tmp_path / "trains", lake=lake)
    assert (report.loaded, report.rejected) == (1, 1) and "mode: not one of train, flight, bus, ship" in report.errors
    assert lake_rows(lake, "transport") == [{"person_id": world["ann"], "mode": "train", "number": "G1234",
                                             "date": dt.date(2022, 1, 3), "carriage": "5", "seat": "12F"}]


def test_load_checkins_command(world, lake, tmp_path, capsys):
    from django.core.management import call_command

    from jingkong.core.models import DomainEvent, Job

    n = world.numbers
    raw = tmp_path / "export"
    write_raw(raw, [("V1", n["ann"], at(3, 10), at(3, 11)), ("V9", n["bo"], at(3, 10), at(3, 11))])
    with pytest.raises(SystemExit) as exit_:
        call_command("tracing_load_checkins", str(raw), lake=str(lake.root))
    assert exit_.value.code == 3  # rows were rejected; the good one is in the lake
    out = capsys.readouterr().out
    assert "1 rejected" in out and "V9" in out
    job = Job.objects.get(kind="tracing.load_checkins")
    assert job.status == Job.Status.SUCCEEDED and job.result["loaded"] == 1
    assert DomainEvent.objects.filter(type="tracing.checkins_loaded").count() == 1
    assert len(lake_rows(lake)) == 1


def test_load_district_ingests_the_checkins(tmp_path, settings):
    from jingkong.people.loader import load_district
    from jingkong.people.tests.helpers import person_row
    from jingkong.people.tests.test_load import _district

    settings.DATA_DIR = tmp_path / "data"
    (tmp_path / "district").mkdir()
    directory = _district(tmp_path / "district")

    write_raw(directory / "checkins", [("V1", person_row(0)["id_number"], at(3, 10), at(3, 11)),
                                       ("V1", person_row(1)["id_number"], at(3, 10), at(3, 11))])
    report = load_district(directory)
    assert report["checkins"]["loaded"] == 2 and report["checkins"]["rejected"] == 0
    assert CheckinLake().days() == [dt.date(2022, 1, 3)]


@pytest.mark.parametrize("dwell", [0, -30, 24 * 60 + 1])
def test_an_impossible_default_dwell_is_refused(world, lake, tmp_path, dwell):
    """Regression: a dwell of 0 or less wrote stays whose check-out is not after their check-in."""
    from jingkong.core.exceptions import ValidationFailed

    (tmp_path / "scans").mkdir()
    (tmp_path / "scans" / "s.csv").write_text(f"venue_code,id_number,checkin_at\nV1,{world.numbers['ann']},"
                                              "2022-01-03 10:00\n", encoding="utf-8")
    with pytest.raises(ValidationFailed) as err:
        checkins_load(tmp_path / "scans", lake=lake, default_dwell_minutes=dwell)
    assert err.value.extra["field"] == "default_dwell_minutes"
    assert lake.files("checkins") == []


def test_a_district_directory_with_an_empty_checkins_folder_still_loads(tmp_path, settings):
    """Regression: an empty checkins/ folder stopped ``jingkong load`` after the persons, before the counts."""
    from jingkong.people.loader import load_district
    from jingkong.people.tests.test_load import _district

    settings.DATA_DIR = tmp_path / "data"
    (tmp_path / "district").mkdir()
    directory = _district(tmp_path / "district")
    (directory / "checkins").mkdir(exist_ok=True)
    report = load_district(directory)
    assert "checkins" not in report and report["counts"]


def test_a_lake_under_a_directory_with_a_quote_in_its_name(world, tmp_path):
    """Regression: the staging and day files were written with unquoted paths in DuckDB's COPY (a data directory such
    as /home/o'brien/var made every load fail)."""
    from jingkong.analytics.contacts import IndexWindow, find_contacts

    lake = CheckinLake(tmp_path / "o'brien" / "lake")
    n = world.numbers
    raw = tmp_path / "export"
    write_raw(raw, [("V1", n["ann"], at(3, 10), at(3, 11)), ("V1", n["bo"], at(3, 10), at(3, 11))])
    assert checkins_load(raw, lake=lake).loaded == 2
    (tmp_path / "trains").mkdir()
    (tmp_path / "trains" / "t.csv").write_text(f"id_number,mode,number,date\n{n['ann']},bus,K1,2022-01-03\n",
                                               encoding="utf-8")
    assert transport_load(tmp_path / "trains", lake=lake).loaded == 1
    found = find_contacts([IndexWindow(1, world["ann"], at(3, 0), at(4, 0))], overlap_minutes=15, lake=lake)
    assert [(f.kind, f.person_id) for f in found] == [("venue", world["bo"])]


def test_nul_characters_in_an_export_are_reported_readably(world, lake, tmp_path):
    """Regression: raw values with a NUL character went into the report's sample rows as they were; PostgreSQL cannot
    store that in the job's result (a DataError), so the load failed after writing the lake."""
    from django.core.management import call_command

    from jingkong.core.models import Job

    n = world.numbers
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "a.csv").write_bytes(
        ("venue_code,id_number,checkin_at\n"
         f"V\x009,{n['ann']},2022-01-03 10:00\n"
         f"V1,{n['bo']},2022-01-03 1\x000:00\n"
         f"V1,{n['cai']},2022-01-03 10:00\n").encode())
    with pytest.raises(SystemExit) as exit_:
        call_command("tracing_load_checkins", str(tmp_path / "x"), lake=str(lake.root))
    assert exit_.value.code == 3
    job = Job.objects.get(kind="tracing.load_checkins")
    assert job.status == Job.Status.SUCCEEDED and job.result["loaded"] == 1 and job.result["rejected"] == 2
    text = json.dumps(job.result)
    assert "\\u0000" not in text and "V\\\\x009" in text  # shown escaped
