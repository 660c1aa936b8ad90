from __future__ import annotations

import io
import json

import pytest

from jingkong.access.models import AuditLog
from jingkong.core.models import DomainEvent
from jingkong.geo import services
from jingkong.geo.models import Region
from jingkong.geo.tests.factories import bow_tie, district_collection, feature, square

pytestmark = pytest.mark.django_db


def test_import_creates_the_tree_with_derived_geometry():
    report = services.regions_import_geojson(district_collection(), actor=None)
    assert (report.total, report.created, report.updated, report.problems) == (9, 9, 0, [])
    grid = Region.objects.get(code="330206002001002")
    assert grid.parent.code == "330206002001"
    assert grid.parent.parent.parent.code == "330206"
    assert grid.synthetic is True and Region.objects.get(code="330206002").synthetic is False
    assert (grid.min_lon, grid.min_lat) == pytest.approx((121.81, 29.90))
    assert (grid.max_lon, grid.max_lat) == pytest.approx((121.82, 29.91))
    assert (grid.center_lon, grid.center_lat) == pytest.approx((121.815, 29.905))
    assert grid.geometry_simplified["type"] == "Polygon"
    assert grid.area_km2 == pytest.approx(1.0 * 1.1132 * 1.1132 * 0.8669, rel=0.01)
    assert DomainEvent.objects.filter(type="geo.regions_imported").count() == 1
    assert AuditLog.objects.filter(action="geo.regions_import").count() == 1


def test_import_is_idempotent_and_updates_changes():
    services.regions_import_geojson(district_collection(), actor=None)
    ids = dict(Region.objects.values_list("code", "pk"))
    again = services.regions_import_geojson(district_collection(), actor=None)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 9)
    assert dict(Region.objects.values_list("code", "pk")) == ids

    changed = district_collection()
    changed["features"][1]["properties"]["name"] = "新碶街道"
    third = services.regions_import_geojson(changed, actor=None)
    assert (third.created, third.updated) == (0, 1)
    assert Region.objects.get(code="330206002").name == "新碶街道"


def test_import_accepts_children_before_parents_paths_and_files(tmp_path):
    collection = district_collection()
    collection["features"].reverse()
    path = tmp_path / "regions.geojson"
    path.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
    report = services.regions_import_geojson(str(path), actor=None)
    assert report.created == 9
    assert Region.objects.get(code="330206004001001").parent.code == "330206004001"
    with open(path, "rb") as fh:
        assert services.regions_import_geojson(fh, actor=None).unchanged == 9
    assert services.regions_import_geojson(io.StringIO(path.read_text("utf-8")), actor=None).unchanged == 9


def test_replace_deletes_regions_missing_from_the_file():
    services.regions_import_geojson(district_collection(), actor=None)
    smaller = district_collection()
    smaller["features"] = [f for f in smaller["features"] if f["properties"]["code"] != "330206004001002"]
    report = services.regions_import_geojson(smaller, actor=None, replace=True)
    assert report.deleted == 1
    assert not Region.objects.filter(code="330206004001002").exists()


def test_import_reports_bad_polygons_without_crashing():
    collection = district_collection()
    collection["features"] += [
        feature("330206004001003", "蝴蝶网格", "grid", "330206004001", bow_tie(121.82, 29.91, 0.005)),
        # overlaps grid 001 of the same community by half
        feature("330206002001003", "重叠网格", "grid", "330206002001", square(121.805, 29.90, 0.01)),
        feature("330206002001004", "界外网格", "grid", "330206002001", square(121.90, 29.90, 0.01)),
        feature("330299001001005", "错码网格", "grid", "330206002001", square(121.80, 29.91, 0.005)),
        feature("330206002001006", "无图网格", "grid", "330206002001", None),
        {"type": "Feature", "geometry": None, "properties": {"name": "no code"}},
    ]
    report = services.regions_import_geojson(collection, actor=None)
    kinds = {(p["kind"], p["code"]) for p in report.problems}
    assert ("invalid_geometry", "330206004001003") in kinds
    assert any(p["kind"] == "invalid_geometry" and "Self-intersection" in p["message"] for p in report.problems)
    assert ("sibling_overlap", "330206002001001") in kinds or ("sibling_overlap", "330206002001003") in kinds
    assert ("outside_parent", "330206002001004") in kinds
    assert ("bad_code", "330299001001005") in kinds
    assert ("missing_geometry", "330206002001006") in kinds
    assert ("unreadable_feature", "") in kinds
    assert report.skipped == 1
    # bad regions are stored (reported, not hidden)
    assert Region.objects.filter(code="330206004001003").exists()
    assert Region.objects.get(code="330206002001006").geometry is None
    event = DomainEvent.objects.get(type="geo.regions_imported")
    assert event.payload["problem_count"] == len(report.problems)


def test_not_a_feature_collection_is_rejected():
    from jingkong.core.exceptions import ValidationFailed

    with pytest.raises(ValidationFailed):
        services.regions_import_geojson({"type": "Feature"}, actor=None)
    with pytest.raises(ValidationFailed):
        services.regions_import_geojson(io.StringIO("{not json"), actor=None)


def test_a_bad_reimport_reports_and_never_wipes_stored_geometry_or_parent():
    services.regions_import_geojson(district_collection(), actor=None)
    before = Region.objects.get(code="330206002001001")
    bad = {"type": "FeatureCollection", "features": [
        feature("330206002001001", "第一网格", "grid", "330206002999", {"type": "Polygon", "coordinates": [[1, 2]]}),
        feature("330206002001002", "第二网格", "grid", "330206002001", square(500.0, 29.9, 0.01)),
    ]}
    report = services.regions_import_geojson(bad, actor=None)
    kinds = {(p["code"], p["kind"]) for p in report.problems}
    assert ("330206002001001", "malformed_geometry") in kinds
    assert ("330206002001001", "unknown_parent") in kinds
    assert ("330206002001002", "coordinates_out_of_range") in kinds
    after = Region.objects.get(code="330206002001001")
    assert after.geometry == before.geometry and after.parent_id == before.parent_id
    assert Region.objects.get(code="330206002001002").min_lon == pytest.approx(121.81)


def test_a_gb18030_regions_file_is_read(tmp_path):
    path = tmp_path / "regions.geojson"
    path.write_bytes(json.dumps(district_collection(), ensure_ascii=False).encode("gb18030"))
    assert services.regions_import_geojson(str(path), actor=None).created == 9
    assert Region.objects.get(code="330206").name == "北仑区"
