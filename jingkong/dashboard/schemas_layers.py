"""Input types and documented answers of the map layers (/api/v1/dashboard/layers/…).

The routes answer compact JSON built by :mod:`jingkong.dashboard.layers` (tens of thousands of points: no per-item
validation on the way out); the schemas below document the shapes in the OpenAPI description and are what the tests
and the screen's JavaScript rely on (see /work/notes/contract.md, "Layers").
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from ninja import Field, Schema

# A division code (district 6 digits, street 9, community 12, grid longer); empty = the caller's own region.
RegionCode = Annotated[str, Field(pattern=r"^[0-9]{0,32}$", description="Region code inside your region "
                                  "(default: your own region).")]


class CasesOut(Schema):
    points: list[list[Any]] = Field(description='[[lat, lng, "confirmed|asymptomatic", "quarantine|control|community", '
                                                '"case ref"], ...] newest first')
    count: int = Field(description="cases in the region (the points are the newest of them, at most `limit`)")
    truncated: bool
    unlocated: int = Field(0, description="cases without any coordinate (no home building, no region centre)")


class FeatureOut(Schema):
    type: Literal["Feature"] = "Feature"
    geometry: dict[str, Any]
    properties: dict[str, Any]


class FeatureCollectionOut(Schema):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[FeatureOut]
