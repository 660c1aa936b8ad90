from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.management import call_command

from jingkong.core.models import DomainEvent
from jingkong.geo import services
from jingkong.geo.models import Building, Region
from jingkong.geo.tests.factories import bow_tie, district_collection, feature, square

pytestmark = pytest.mark.django_db


def _people(grid, building, n_households, persons_per_household, start):
    from jingkong.people.models import Household, Person

    now = dt.datetime(2022, 1, 1, tzinfo=dt.UTC)
    for h in range(n_households):
        hh = Household.objects.create(code=f"{building.code}-{h}", building=building, grid=grid)
        for p in range(persons_per_household):
            i = start + h * 10 + p
            Person.objects.create(
                id_hash=f"hash{i}", id_masked="3302**********1234", name=f"p{i}", sex="F",
                birth_date=dt.date(1980, 1, 1), household=hh, building=building, grid=grid,
                created_at=now, updated_at=now,
            )


def test_counts_refresh_rolls_up_the_tree(regions):
    b1 = Building.objects.create(code="B1", grid=regions["grid_a1"], lon=121.805, lat=29.905)
    b2 = Building.objects.create(code="B2", grid=regions["grid_a2"], lon=121.815, lat=29.905)
    b3 = Building.objects.create(code="B3", grid=regions["grid_b1"], lon=121.825, lat=29.905)
    Building.objects.create(code="B4", grid=regions["grid_b1"], lon=121.826, lat=29.905)  # empty building
    _people(regions["grid_a1"], b1, 2, 3, 0)  # 2 households, 6 persons
    _people(regions["grid_a2"], b2, 1, 2, 100)  # 1 household, 2 persons
    _people(regions["grid_b1"], b3, 3, 1, 200)  # 3 households, 3 persons
    Region.objects.filter(code=regions["grid_b2"].code).update(population=99)  # stale value must be reset

    totals = services.region_counts_refresh(actor=None)

    def counts(key):
        r = Region.objects.get(pk=regions[key].pk)
        return (r.population, r.households, r.buildings)

    assert counts("grid_a1") == (6, 2, 1)
    assert counts("grid_a2") == (2, 1, 1)
    assert counts("grid_b1") == (3, 3, 2)
    assert counts("grid_b2") == (0, 0, 0)
    assert counts("community_a") == counts("street_a") == (8, 3, 2)
    assert counts("street_b") == (3, 3, 2)
    assert counts("district") == (11, 6, 4)
    assert totals["population"] == 11
    assert Region.objects.filter(counts_updated_at__isnull=True).count() == 0
    assert DomainEvent.objects.filter(type="geo.counts_refreshed").exists()


def test_validate_reports_stored_problems_and_records_an_event():
    collection = district_collection()
    collection["features"][3]["geometry"] = bow_tie(121.80, 29.90, 0.01)  # grid 330206002001001
    collection["features"].append(feature("330206004001009", "外", "grid", "330206004001", square(122.5, 30.5, 0.01)))
    services.regions_import_geojson(collection, actor=None)
    report = services.regions_validate()
    kinds = {(p["kind"], p["code"]) for p in report.problems}
    assert ("invalid_geometry", "330206002001001") in kinds
    assert ("outside_parent", "330206004001009") in kinds
    assert report.counts()["invalid_geometry"] == 1
    event = DomainEvent.objects.get(type="geo.regions_validated")
    assert event.payload["counts"] == report.counts()


def test_validate_clean_tree_has_no_problems():
    services.regions_import_geojson(district_collection(), actor=None)
    report = services.regions_validate()
    assert report.checked == 9 and report.ok, report.problems


def test_export_round_trips(tmp_path):
    original = district_collection()
    services.regions_import_geojson(original, actor=None)
    exported = services.regions_export_geojson()
    assert [f["properties"] for f in exported["features"]] == [
        f["properties"] for f in sorted(original["features"], key=lambda f: (len(f["properties"]["code"]), f["properties"]["code"]))
    ]
    assert {f["properties"]["code"]: f["geometry"] for f in exported["features"]} == {
        f["properties"]["code"]: f["geometry"] for f in original["features"]
    }
    # reimporting the export changes nothing
    assert services.regions_import_geojson(exported, actor=None).unchanged == 9
    grids = services.regions_export_geojson(level="grid", root_code="330206004")
    assert [f["properties"]["code"] for f in grids["features"]] == ["330206004001001", "330206004001002"]


def test_commands_import_export_validate(tmp_path, capsys):
    src = tmp_path / "regions.geojson"
    src.write_text(json.dumps(district_collection(), ensure_ascii=False), encoding="utf-8")
    call_command("import_regions", str(src))
    assert "9 created" in capsys.readouterr().out
    out = tmp_path / "out.geojson"
    call_command("export_regions", "--level", "street", "--out", str(out))
    streets = json.loads(out.read_text("utf-8"))
    assert [f["properties"]["code"] for f in streets["features"]] == ["330206002", "330206004"]
    call_command("geo_validate")
    assert "9 regions checked: no problems" in capsys.readouterr().out
    call_command("geo_counts")
    assert "9 regions refreshed" in capsys.readouterr().out
