"""GeoJSON builders for the base-map tests."""

from __future__ import annotations


def square(lon: float, lat: float, size: float) -> dict:
    return {
        "type": "Polygon",
        "coordinates": [[[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]],
    }


def bow_tie(lon: float, lat: float, size: float) -> dict:
    """A self-intersecting polygon (the two diagonals cross)."""
    return {
        "type": "Polygon",
        "coordinates": [[[lon, lat], [lon + size, lat + size], [lon + size, lat], [lon, lat + size], [lon, lat]]],
    }


def feature(code, name, level, parent_code, geometry, synthetic=False) -> dict:
    return {
        "type": "Feature",
        "geometry": geometry,
        "properties": {"code": code, "name": name, "level": level, "parent_code": parent_code, "synthetic": synthetic},
    }


def district_collection() -> dict:
    """District 330206 with two streets side by side, one community each, two grids per community (clean)."""
    features = [feature("330206", "北仑区", "district", None, square(121.80, 29.90, 0.04))]
    for street_code, lon in (("330206002", 121.80), ("330206004", 121.82)):
        features.append(feature(street_code, f"街道{street_code[-1]}", "street", "330206", square(lon, 29.90, 0.02)))
        community = street_code + "001"
        features.append(feature(community, "社区", "community", street_code, square(lon, 29.90, 0.02), True))
        features.append(feature(community + "001", "第一网格", "grid", community, square(lon, 29.90, 0.01), True))
        features.append(feature(community + "002", "第二网格", "grid", community, square(lon + 0.01, 29.90, 0.01), True))
    return {"type": "FeatureCollection", "features": features}
