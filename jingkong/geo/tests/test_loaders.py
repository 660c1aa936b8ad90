from __future__ import annotations

import pytest

from jingkong.geo.loaders import buildings_load, venues_load
from jingkong.geo.models import Building, Venue

pytestmark = pytest.mark.django_db

# conftest regions: grid 330206002001001 covers lon 121.80–121.81, lat 29.90–29.91; grid …002 covers 121.81–121.82.
HEADER = "building_code,grid_code,address,lon,lat,units,floors,households\n"


def test_bad_coordinates_are_rejected_and_misplaced_points_reported(regions, tmp_path):
    path = tmp_path / "buildings.csv"
    path.write_text(
        HEADER
        + "B1,330206002001001,一号楼,121.805,29.905,2,6,24\n"  # inside its grid
        + "B2,330206002001001,二号楼,121.815,29.905,1,6,12\n"  # inside the neighbouring grid
        + "B3,330206002001001,三号楼,100.0,20.0,1,1,1\n"  # outside every grid
        + "B4,330206002001001,四号楼,east,29.9,1,1,1\n"  # not a number
        + "B5,330206002001001,五号楼,121.8,95,1,1,1\n",  # latitude out of range
        encoding="utf-8",
    )
    report = buildings_load(path)
    assert (report.rows, report.written) == (5, 3)
    assert [(e["line"], e["reason"].split(":")[0]) for e in report.errors] == [(5, "lon"), (6, "lat")]
    assert "not a number" in report.errors[0]["reason"] and "WGS-84" in report.errors[1]["reason"]
    reasons = {w["code"]: w["reason"] for w in report.warnings}
    assert set(reasons) == {"B2", "B3"}
    assert "in grid 330206002001002, not in the stated grid 330206002001001" in reasons["B2"]
    assert "outside every grid" in reasons["B3"]
    assert set(Building.objects.values_list("code", flat=True)) == {"B1", "B2", "B3"}  # warnings keep the row
    assert buildings_load(path).written == 3 and Building.objects.count() == 3  # idempotent


def test_gbk_venues_with_unknown_codes_are_reported(regions, tmp_path):
    buildings = tmp_path / "buildings.csv"
    buildings.write_text(HEADER + "B1,330206002001001,一号楼,121.805,29.905,2,6,24\n", encoding="utf-8")
    buildings_load(buildings)
    venues = tmp_path / "venues.csv"
    venues.write_bytes(
        ("venue_code,name,type,lon,lat,grid_code,building_code\n"
         "V1,联华超市,supermarket,121.805,29.905,330206002001001,B1\n"
         "V2,菜场,bazaar,121.805,29.905,330206002001001,\n"
         "V3,药店,pharmacy,121.805,29.905,330206002001001,B9\n"
         "V4,饭店,restaurant,121.805,29.905,330206999001001,\n").encode("gb18030")
    )
    report = venues_load(venues)
    assert report.written == 1 and Venue.objects.get().name == "联华超市"
    assert [(e["line"], e["reason"].split(":")[0]) for e in report.errors] == [
        (3, "type"), (4, "building_code"), (5, "grid_code")]
