from __future__ import annotations

import pytest

from jingkong.geo.models import Building, Region, Venue
from jingkong.geo.tests.factories import district_collection

pytestmark = pytest.mark.django_db
URL = "/api/v1/geo"


def _codes(resp):
    assert resp.status_code == 200, resp.content
    return [f["properties"]["code"] for f in resp.json()["features"]]


def test_commander_sees_every_level_as_geojson(regions, commander, client_for):
    c = client_for(commander)
    resp = c.get(f"{URL}/regions", {"level": "grid"})
    assert _codes(resp) == ["330206002001001", "330206002001002", "330206004001001", "330206004001002"]
    feature = resp.json()["features"][0]
    assert feature["type"] == "Feature" and feature["geometry"]["type"] == "Polygon"
    assert set(feature["properties"]) >= {"code", "name", "level", "parent_code", "population", "households",
                                          "buildings", "synthetic"}
    assert feature["properties"]["parent_code"] == "330206002001"
    assert _codes(c.get(f"{URL}/regions", {"parent": "330206"})) == ["330206002", "330206004"]


def test_officer_b_cannot_see_street_a(regions, officer_b, client_for, bearer):
    c = client_for(officer_b)
    codes = _codes(c.get(f"{URL}/regions"))
    assert codes and all(code.startswith("330206004") for code in codes)
    assert "330206002001" not in codes and "330206002001001" not in codes
    assert _codes(c.get(f"{URL}/regions", {"parent": "330206"})) == ["330206004"]
    for path in ("330206002001", "330206002001001", "330206002001001/children", "330206002001/buildings",
                 "330206002001001/venues", "330206002/ancestors", "330206"):
        assert c.get(f"{URL}/regions/{path}").status_code == 404, path
    # the same with a bearer token
    assert c.get(f"{URL}/regions/330206002001", **bearer(officer_b)).status_code == 404
    assert c.get(f"{URL}/regions/330206004001", **bearer(officer_b)).status_code == 200


def test_region_detail_shows_ancestors_as_context_only(regions, officer_b, client_for):
    c = client_for(officer_b)
    body = c.get(f"{URL}/regions/330206004001").json()
    assert body["properties"]["code"] == "330206004001"
    assert body["ancestors"] == [
        {"code": "330206", "name": "北仑区", "level": "district", "in_scope": False},
        {"code": "330206004", "name": "大碶街道", "level": "street", "in_scope": True},
    ]
    assert [ch["code"] for ch in body["children"]] == ["330206004001001", "330206004001002"]
    roots = _codes(c.get(f"{URL}/regions/roots"))
    assert roots == ["330206004"]


def test_bbox_filter(regions, commander, client_for):
    c = client_for(commander)
    # only the western grid of street A intersects this small box
    codes = _codes(c.get(f"{URL}/regions", {"level": "grid", "bbox": "121.801,29.901,121.805,29.905"}))
    assert codes == ["330206002001001"]
    assert c.get(f"{URL}/regions", {"bbox": "1,2,3"}).status_code == 422
    assert c.get(f"{URL}/regions", {"bbox": "5,5,1,1"}).status_code == 422


def test_full_geometry_on_request(db, admin_user, client_for):
    from jingkong.geo import services

    services.regions_import_geojson(district_collection(), actor=None)
    region = Region.objects.get(code="330206002")
    c = client_for(admin_user)
    detail = c.get(f"{URL}/regions/330206002", {"full": "true"}).json()
    assert detail["geometry"] == region.geometry
    assert c.get(f"{URL}/regions/330206002").json()["geometry"] == region.geometry_simplified


def test_buildings_and_venues_paginated_scoped_and_bbox(regions, officer_a, officer_b, client_for):
    for i in range(5):
        Building.objects.create(code=f"A{i}", grid=regions["grid_a1"], lon=121.801 + i * 0.001, lat=29.905)
    Building.objects.create(code="B0", grid=regions["grid_b1"], lon=121.825, lat=29.905)
    Venue.objects.create(code="V1", name="超市", type="supermarket", grid=regions["grid_a1"], lon=121.802, lat=29.905)
    c = client_for(officer_a)
    page = c.get(f"{URL}/regions/330206002/buildings", {"page": 2, "page_size": 2}).json()
    assert (page["count"], page["page"], [b["code"] for b in page["items"]]) == (5, 2, ["A2", "A3"])
    box = c.get(f"{URL}/regions/330206002/buildings", {"bbox": "121.800,29.9,121.8025,29.91"}).json()
    assert [b["code"] for b in box["items"]] == ["A0", "A1"]
    venues = c.get(f"{URL}/regions/330206002001001/venues").json()
    assert venues["items"][0]["code"] == "V1" and venues["items"][0]["grid_code"] == "330206002001001"
    assert client_for(officer_b).get(f"{URL}/regions/330206002/buildings").status_code == 404
    assert [b["code"] for b in client_for(officer_b).get(f"{URL}/regions/330206004/buildings").json()["items"]] == ["B0"]


def test_writes_need_map_edit_and_stay_in_scope(regions, officer_a, commander, admin_user, client_for):
    collection = district_collection()
    assert client_for(officer_a).post(f"{URL}/regions/import", collection, content_type="application/json").status_code == 403
    assert client_for(commander).post(f"{URL}/regions/validate").status_code == 200
    resp = client_for(admin_user).post(f"{URL}/regions/import", collection, content_type="application/json")
    assert resp.status_code == 200, resp.content
    assert resp.json()["updated"] >= 1
    assert client_for(admin_user).post(f"{URL}/counts/refresh").json()["regions"] == 9
    assert client_for(commander).post(f"{URL}/counts/refresh").status_code == 403  # global: platform-wide users only


def test_anonymous_is_refused(regions, client_for):
    assert client_for(None).get(f"{URL}/regions").status_code == 401
