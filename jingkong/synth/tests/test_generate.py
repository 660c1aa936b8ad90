"""The synthetic district generator: determinism, geography containment, people, check-ins (small populations)."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import Counter
from pathlib import Path

import duckdb
import numpy as np
import pytest
import shapely
from shapely.geometry import shape

from jingkong.people import idnumber as people_idnumber
from jingkong.synth import idnumber
from jingkong.synth.generate import generate_district
from jingkong.synth.geography import GRID_BAND, allocate_grid_households

POP = 20_000
DAYS = 2
START = dt.date(2022, 1, 3)  # a Monday: work and school check-ins happen
NOW = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def district(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("district")
    generate_district(out, population=POP, seed=7, days=DAYS, start_date=START, now=NOW)
    return out


def read_csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def regions_by_code(district: Path) -> dict[str, dict]:
    features = json.loads((district / "regions.geojson").read_text(encoding="utf-8"))["features"]
    return {f["properties"]["code"]: {**f["properties"], "geom": shape(f["geometry"])} for f in features}


def file_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


# --- check digit -------------------------------------------------------------------------------------------------

def test_check_char_matches_the_standard_examples():
    assert idnumber.check_char("11010519491231002") == "X"
    assert idnumber.check_char("44052418800101001") == "4"
    assert idnumber.is_valid("11010519491231002X")
    assert not idnumber.is_valid("110105194912310021")
    with pytest.raises(ValueError):
        idnumber.check_char("1234")


def test_vectorised_check_chars_agree_with_the_scalar_function():
    rng = np.random.default_rng(0)
    digits = rng.integers(0, 10, (2000, 17)).astype(np.uint8)
    got = idnumber.check_chars_ascii(digits)
    for row, ch in zip(digits, got, strict=True):
        first17 = "".join(map(str, row))
        assert chr(ch) == idnumber.check_char(first17) == people_idnumber.check_char(first17)


# --- determinism ---------------------------------------------------------------------------------------------------

def test_same_seed_gives_identical_files_and_another_seed_different_ones(tmp_path):
    kwargs = {"population": 3000, "days": 1, "start_date": START, "now": NOW}
    generate_district(tmp_path / "a", seed=11, **kwargs)
    generate_district(tmp_path / "b", seed=11, **kwargs)
    generate_district(tmp_path / "c", seed=12, **kwargs)
    a, b, c = (file_bytes(tmp_path / x) for x in "abc")
    assert a.keys() == b.keys() == c.keys()
    assert "checkins/day=2022-01-03/part-0.parquet" in a
    assert a == b
    for name in ("persons.csv", "buildings.csv", "regions.geojson", "checkins/day=2022-01-03/part-0.parquet"):
        assert a[name] != c[name], name


def test_chunk_size_does_not_change_any_file(tmp_path):
    """Persons/households CSV and check-ins are produced in slices; slices of 777 people (cutting through households
    and buildings) give the same bytes as one slice for everybody."""
    kwargs = {"population": 5000, "days": 2, "seed": 3, "start_date": START, "now": NOW}
    generate_district(tmp_path / "one", chunk_size=10_000_000, **kwargs)
    generate_district(tmp_path / "many", chunk_size=777, **kwargs)
    one, many = file_bytes(tmp_path / "one"), file_bytes(tmp_path / "many")
    assert one.keys() == many.keys()
    for name in one:
        assert one[name] == many[name], name
    persons = read_csv(tmp_path / "many" / "persons.csv")
    households = {h["household_code"]: h for h in read_csv(tmp_path / "many" / "households.csv")}
    assert len(persons) == 5000
    for p in persons:
        h = households[p["household_code"]]
        assert (p["building_code"], p["unit"], p["room"]) == (h["building_code"], h["unit"], h["room"])


def test_row_groups_carry_their_own_dictionaries_without_changing_the_rows(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from jingkong.synth import writer

    kwargs = {"population": 3000, "days": 1, "seed": 4, "start_date": START, "now": NOW}
    generate_district(tmp_path / "whole", **kwargs)
    monkeypatch.setattr(writer, "ROW_GROUP", 1000)
    generate_district(tmp_path / "split", **kwargs)
    path = "checkins/day=2022-01-03/part-0.parquet"
    whole, split = pq.ParquetFile(tmp_path / "whole" / path), pq.ParquetFile(tmp_path / "split" / path)
    assert whole.metadata.num_row_groups == 1 and split.metadata.num_row_groups > 5
    a, b = whole.read(), split.read()
    assert a.num_rows == b.num_rows > 10_000
    for col in ("venue_code", "id_number", "checkin_at", "checkout_at"):
        assert a.column(col).to_pylist() == b.column(col).to_pylist(), col
    group = split.read_row_group(0).column("id_number").chunk(0)
    assert len(group.dictionary) <= 1000  # only the people in that group, not all 3000
    assert group.dictionary.to_pylist() == sorted(group.dictionary.to_pylist())


def test_manifest(district):
    manifest = json.loads((district / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format"] == "jingkong-district/1"
    assert manifest["district_code"] == "330206" and manifest["district_name"] == "北仑区"
    assert (manifest["population"], manifest["days"], manifest["seed"]) == (POP, DAYS, 7)
    assert manifest["start_date"] == "2022-01-03" and manifest["synthetic"] is True
    assert manifest["generated_at"].startswith("2024-01-01T00:00:00")


# --- people --------------------------------------------------------------------------------------------------------

def test_every_id_number_is_valid_unique_and_matches_sex_and_birth_date(district):
    persons = read_csv(district / "persons.csv")
    assert len(persons) == POP
    ids = [p["id_number"] for p in persons]
    assert len(set(ids)) == POP
    for p in persons:
        number = p["id_number"]
        assert people_idnumber.validate(number, today=START) == number
        assert people_idnumber.sex_of(number) == p["sex"]
        assert people_idnumber.birth_date_of(number).isoformat() == p["birth_date"]
    assert sum(p["id_number"].startswith("330206") for p in persons) / POP > 0.45


def test_age_sex_structure_and_registration_follow_the_2020_census(district):
    persons = read_csv(district / "persons.csv")
    ages = np.array([(START - dt.date.fromisoformat(p["birth_date"])).days // 365.2425 for p in persons])
    males = sum(p["sex"] == "M" for p in persons)
    assert 0.155 <= (ages < 15).mean() <= 0.205  # China 2020: 17.95 %
    assert 0.165 <= (ages >= 60).mean() <= 0.215  # China 2020: 18.70 %
    assert 0.60 <= ((ages >= 15) & (ages < 60)).mean() <= 0.67  # 63.35 %
    assert 1.00 <= males / (POP - males) <= 1.10  # sex ratio 105
    local = np.mean([p["is_registered_local"] == "1" for p in persons])
    assert 0.54 <= local <= 0.66  # ~40 % migrants
    migrants = [p for p in persons if p["is_registered_local"] == "0"]
    assert all(not p["id_number"].startswith("3302") for p in migrants[:500])
    assert all("北仑区" in p["registered_address"] for p in persons if p["is_registered_local"] == "1")


def test_vulnerable_tags_and_key_industries(district):
    persons = read_csv(district / "persons.csv")
    tags = Counter(t for p in persons for t in p["vulnerable"].split(";") if t)
    assert set(tags) <= {"elderly", "young_child", "pregnant", "chronic", "limited_mobility"}
    assert all(tags[t] > 0 for t in ("elderly", "young_child", "pregnant", "chronic", "limited_mobility"))
    for p in persons:
        age = (START - dt.date.fromisoformat(p["birth_date"])).days // 365.2425
        if "elderly" in p["vulnerable"]:
            assert age >= 60
        if "pregnant" in p["vulnerable"]:
            assert p["sex"] == "F" and 18 <= age <= 45
    industries = Counter(p["industry"] for p in persons)
    assert set(industries) <= {"", "port", "cold_chain", "airport", "hospital", "transport", "ship_crew"}
    assert industries["port"] > 0 and industries["cold_chain"] > 0
    venues = {v["venue_code"]: v for v in read_csv(district / "venues.csv")}
    for p in persons:
        if p["industry"] == "port":
            assert venues[p["workplace_venue_code"]]["type"] == "port_terminal" and p["employer"]
        if p["workplace_venue_code"]:
            assert p["workplace_venue_code"] in venues


def test_household_sizes_and_grid_household_counts(district):
    households = read_csv(district / "households.csv")
    persons = read_csv(district / "persons.csv")
    assert len({h["household_code"] for h in households}) == len(households)
    sizes = Counter(p["household_code"] for p in persons)
    assert set(sizes) == {h["household_code"] for h in households}
    assert 2.3 <= POP / len(households) <= 2.9
    buildings = {b["building_code"]: b for b in read_csv(district / "buildings.csv")}
    per_building = Counter(h["building_code"] for h in households)
    assert all(int(buildings[code]["households"]) == n for code, n in per_building.items())
    per_grid = Counter(buildings[h["building_code"]]["grid_code"] for h in households)
    # at 20 k people the 300–500 band is scaled down but keeps its 3:5 proportion
    assert max(per_grid.values()) <= min(per_grid.values()) * 5 / 3 + 2


def test_full_scale_allocation_keeps_every_grid_in_the_300_to_500_band():
    rng = np.random.default_rng(3)
    weights = rng.lognormal(0, 0.8, 230)
    n_grids, households, band = allocate_grid_households(325_000, weights, rng)
    assert band == (300.0, 500.0) and GRID_BAND == (300, 500)
    assert households.min() >= 300 and households.max() <= 500
    assert len(households) == n_grids.sum() and (n_grids >= 1).all()
    assert abs(households.sum() - 325_000) / 325_000 < 0.05


# --- geography -----------------------------------------------------------------------------------------------------

def test_regions_nest_and_grids_lie_inside_their_community_and_street(district):
    regions = regions_by_code(district)
    levels = Counter(r["level"] for r in regions.values())
    assert levels["district"] == 1 and levels["street"] == 12 and levels["community"] == 230
    assert regions["330206401"]["name"] == "保税区" and regions["330206401"]["synthetic"] is True
    assert regions["330206002"]["synthetic"] is False
    assert regions["330206401"]["geom"].intersection(regions["330206002"]["geom"]).area < 1e-9
    seen = set()
    features = json.loads((district / "regions.geojson").read_text(encoding="utf-8"))["features"]
    for f in features:  # parents come before children
        code, parent = f["properties"]["code"], f["properties"]["parent_code"]
        assert parent in seen or f["properties"]["level"] == "district"
        seen.add(code)
    for r in regions.values():
        if r["level"] in ("community", "grid"):
            parent = regions[r["parent_code"]]
            assert r["code"].startswith(parent["code"])
            assert r["geom"].is_valid and r["geom"].area > 0
            assert parent["geom"].buffer(2e-6).contains(r["geom"]), r["code"]
        if r["level"] == "grid":
            assert len(r["code"]) == 15 and r["name"].startswith("第") and r["name"].endswith("网格")
            street = regions[r["code"][:9]]
            assert street["geom"].buffer(4e-6).contains(r["geom"]), r["code"]


def test_every_building_point_lies_inside_its_grid(district):
    regions = regions_by_code(district)
    buildings = read_csv(district / "buildings.csv")
    by_grid: dict[str, list] = {}
    for b in buildings:
        assert b["building_code"].startswith(b["grid_code"])
        assert int(b["households"]) >= 1 and int(b["floors"]) >= 1 and int(b["units"]) >= 1
        by_grid.setdefault(b["grid_code"], []).append((float(b["lon"]), float(b["lat"])))
    for grid_code, points in by_grid.items():
        pts = np.array(points)
        assert shapely.contains_xy(regions[grid_code]["geom"], pts[:, 0], pts[:, 1]).all(), grid_code
    def high_rise_share(street: str) -> float:
        here = [b for b in buildings if b["grid_code"].startswith(street)]
        return sum(int(b["households"]) for b in here if int(b["floors"]) >= 6) / sum(int(b["households"]) for b in here)

    assert high_rise_share("330206002") > 0.6  # 新碶: most households live in apartment blocks
    assert high_rise_share("330206010") < 0.5  # 郭巨: mostly village houses


def test_venues_have_unique_codes_valid_types_and_the_garment_factory(district):
    venues = read_csv(district / "venues.csv")
    codes = [v["venue_code"] for v in venues]
    assert len(set(codes)) == len(codes)
    allowed = {"supermarket", "wet_market", "restaurant", "pharmacy", "clinic", "school", "factory", "office",
               "port_terminal", "cold_chain", "station", "hotel", "gym", "government", "other"}
    assert {v["type"] for v in venues} <= allowed
    assert {"port_terminal", "cold_chain", "school", "factory", "wet_market"} <= {v["type"] for v in venues}
    garment = [v for v in venues if "服饰" in v["name"]]
    assert len(garment) == 1 and garment[0]["grid_code"].startswith("330206002")
    regions = regions_by_code(district)
    for v in venues:
        assert shapely.contains_xy(regions[v["grid_code"]]["geom"], float(v["lon"]), float(v["lat"])), v["venue_code"]


# --- check-ins -----------------------------------------------------------------------------------------------------

def test_checkins_are_readable_by_duckdb_with_the_documented_schema(district):
    con = duckdb.connect()
    glob = str(district / "checkins" / "*" / "*.parquet")
    schema = dict(con.execute(f"describe select * from read_parquet('{glob}')").fetchall()[i][:2] for i in range(4))
    assert schema == {"venue_code": "VARCHAR", "id_number": "VARCHAR", "checkin_at": "TIMESTAMP WITH TIME ZONE",
                      "checkout_at": "TIMESTAMP WITH TIME ZONE"}
    con.execute(f"create view c as select * from read_parquet('{glob}', hive_partitioning=true)")
    con.execute(f"create view v as select * from read_csv('{district / 'venues.csv'}', all_varchar=true)")
    con.execute(f"create view p as select * from read_csv('{district / 'persons.csv'}', all_varchar=true)")
    rows, people = con.execute("select count(*), count(distinct id_number) from c").fetchone()
    assert 3.0 <= rows / (POP * DAYS) <= 7.0
    assert people > 0.9 * POP
    assert con.execute("select count(*) from c anti join v using (venue_code)").fetchone()[0] == 0
    assert con.execute("select count(*) from c anti join p using (id_number)").fetchone()[0] == 0
    assert con.execute("select count(*) from c where checkout_at <= checkin_at").fetchone()[0] == 0
    days = con.execute(
        "select distinct day::varchar, (checkin_at at time zone 'Asia/Shanghai')::date::varchar from c"
    ).fetchall()
    assert all(a == b for a, b in days) and len(days) == DAYS
    # commuters check in at their workplace on a Monday
    at_work = con.execute(
        "select count(*) from c join p using (id_number) where c.venue_code = p.workplace_venue_code and c.day = '2022-01-03'"
    ).fetchone()[0]
    workers = con.execute("select count(*) from p where workplace_venue_code is not null").fetchone()[0]
    assert at_work > 0.6 * workers


def test_checkin_columns_are_dictionary_encoded(district):
    import pyarrow.parquet as pq

    table = pq.read_table(next((district / "checkins").rglob("*.parquet")))
    assert str(table.schema.field("venue_code").type).startswith("dictionary")
    assert str(table.schema.field("id_number").type).startswith("dictionary")
    assert str(table.schema.field("checkin_at").type) == "timestamp[us, tz=UTC]"


# --- command and job -----------------------------------------------------------------------------------------------

def test_command_writes_a_district(tmp_path, capsys):
    from django.core.management import call_command

    call_command("generate", "--population", "2000", "--days", "1", "--seed", "5", "--out", str(tmp_path / "d"))
    summary = json.loads(capsys.readouterr().out)
    assert summary["population"] == 2000 and summary["checkins"] > 0
    assert (tmp_path / "d" / "checkins" / "day=2022-01-01" / "part-0.parquet").exists()


@pytest.mark.django_db
def test_generate_runs_as_a_background_job(tmp_path):
    from jingkong.core import jobs
    from jingkong.core.models import Job

    job = jobs.run_now("synth.generate", {"out": str(tmp_path / "j"), "population": 2000, "days": 1, "seed": 2})
    assert job.status == Job.Status.SUCCEEDED, job.message
    assert job.result["population"] == 2000
    assert job.progress == job.total
    assert (tmp_path / "j" / "persons.csv").exists()
