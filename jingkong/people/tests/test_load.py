import json

import pytest

from jingkong.geo.models import Building, Region, Venue
from jingkong.people.loader import load_district
from jingkong.people.models import Household, Person
from jingkong.people.tests.helpers import person_row, write_persons

pytestmark = pytest.mark.django_db


def _square(lon, lat, size=0.01):
    return {"type": "Polygon", "coordinates": [[[lon, lat], [lon + size, lat], [lon + size, lat + size],
                                                [lon, lat + size], [lon, lat]]]}


def _district(tmp_path):
    features = []
    for code, name, level, parent, lon in [
        ("330206", "北仑区", "district", "", 121.80), ("330206002", "新碶街道", "street", "330206", 121.80),
        ("330206002001", "一社区", "community", "330206002", 121.80),
        ("330206002001001", "第一网格", "grid", "330206002001", 121.80),
        ("330206002001002", "第二网格", "grid", "330206002001", 121.81),
    ]:
        features.append({"type": "Feature", "geometry": _square(lon, 29.9, 0.02 if level != "grid" else 0.01),
                         "properties": {"code": code, "name": name, "level": level, "parent_code": parent,
                                        "synthetic": True}})
    (tmp_path / "regions.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "jingkong-district/1", "synthetic": True}), "utf-8")
    (tmp_path / "buildings.csv").write_text(
        "building_code,grid_code,address,lon,lat,units,floors,households\n"
        "B-a1-1,330206002001001,1号楼,121.805,29.905,2,6,24\n"
        "B-b1-1,330206002001002,2号楼,121.815,29.905,1,6,12\n", "utf-8")
    (tmp_path / "venues.csv").write_text(
        "venue_code,name,type,lon,lat,grid_code,building_code\n"
        "V1,超市,supermarket,121.805,29.905,330206002001001,B-a1-1\n"
        "V2,码头,port_terminal,121.815,29.905,330206002001002,\n", "utf-8")
    (tmp_path / "households.csv").write_text(
        "household_code,building_code,unit,room\nH00000,B-a1-1,1,101\nH00001,B-b1-1,1,102\n", "utf-8")
    rows = [person_row(i, household_code=f"H{i % 2:05d}", building_code="B-a1-1" if i % 2 == 0 else "B-b1-1",
                       workplace_venue_code="V2" if i == 3 else "") for i in range(6)]
    write_persons(tmp_path / "persons.csv", rows)
    return tmp_path


def _snapshot():
    return (
        list(Region.objects.order_by("code").values_list("code", "population", "households", "buildings")),
        list(Building.objects.order_by("code").values_list("code", "grid__code", "household_count")),
        list(Venue.objects.order_by("code").values_list("code", "type", "building__code")),
        list(Household.objects.order_by("code").values_list("code", "building__code")),
        list(Person.objects.order_by("id_hash").values_list("id_hash", "name", "grid__code", "household__code",
                                                            "workplace__code", "source")),
    )


def test_loading_a_district_twice_gives_the_same_rows(tmp_path):
    directory = _district(tmp_path)
    report = load_district(directory)
    assert report["persons"]["created"] == 6 and report["buildings"]["written"] == 2
    first = _snapshot()
    assert Region.objects.get(code="330206").population == 6
    assert Region.objects.get(code="330206002001001").households == 1
    assert Person.objects.filter(source="synthetic").count() == 6
    load_district(directory)
    assert _snapshot() == first


def test_load_command_prints_progress(tmp_path, capsys):
    from django.core.management import call_command

    call_command("load", str(_district(tmp_path)))
    assert "population 6" in capsys.readouterr().out


def test_a_directory_without_regions_is_refused(tmp_path):
    from jingkong.core.exceptions import ValidationFailed

    with pytest.raises(ValidationFailed, match="not a district directory"):
        load_district(tmp_path)
