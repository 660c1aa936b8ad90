"""Back-office views of the base map: read-mostly (names and the synthetic flag may be corrected; geometry is
replaced by importing a regions file, and shown here as JSON)."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from jingkong.geo.models import Building, Region, Venue


def _json(value, limit: int = 20_000):
    if value is None:
        return "—"
    text = json.dumps(value, ensure_ascii=False, indent=1)
    if len(text) > limit:
        text = text[:limit] + "\n…"
    return format_html('<pre style="max-height:24rem;overflow:auto">{}</pre>', text)


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "level", "parent", "population", "households", "buildings", "synthetic")
    list_filter = ("level", "synthetic")
    search_fields = ("code", "name")
    ordering = ("code",)
    list_select_related = ("parent",)
    fields = ("code", "name", "level", "parent", "synthetic", "population", "households", "buildings",
              "counts_updated_at", "area_km2", "bbox", "centre", "geometry_json", "geometry_simplified_json")
    readonly_fields = ("code", "level", "parent", "population", "households", "buildings", "counts_updated_at",
                       "area_km2", "bbox", "centre", "geometry_json", "geometry_simplified_json")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("bounding box"))
    def bbox(self, obj):
        return f"{obj.min_lon}, {obj.min_lat} — {obj.max_lon}, {obj.max_lat}"

    @admin.display(description=_("label point"))
    def centre(self, obj):
        return f"{obj.center_lon}, {obj.center_lat}"

    @admin.display(description=_("geometry (GeoJSON)"))
    def geometry_json(self, obj):
        return _json(obj.geometry)

    @admin.display(description=_("simplified geometry"))
    def geometry_simplified_json(self, obj):
        return _json(obj.geometry_simplified)


@admin.register(Building)
class BuildingAdmin(admin.ModelAdmin):
    list_display = ("code", "address", "grid", "units", "floors", "household_count")
    search_fields = ("code", "address")
    list_select_related = ("grid",)
    raw_id_fields = ("grid",)
    readonly_fields = ("code", "grid", "lon", "lat", "household_count")

    def has_add_permission(self, request):
        return False


@admin.register(Venue)
class VenueAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "type", "grid", "building")
    list_filter = ("type",)
    search_fields = ("code", "name")
    list_select_related = ("grid", "building")
    raw_id_fields = ("grid", "building")
    readonly_fields = ("code", "grid", "building", "lon", "lat")

    def has_add_permission(self, request):
        return False
