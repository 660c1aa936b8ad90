from __future__ import annotations

from django.conf import settings
from django.shortcuts import render
from django.utils.translation import gettext as _

from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.geo.models import Level
from jingkong.geo.selectors import scope_has_synthetic


def map_strings() -> dict:
    """UI strings of the map script, translated for the request's language (rendered into the page as JSON)."""
    return {
        "levels": {value: str(label) for value, label in Level.choices},
        "layers": {
            "children": _("Drill-down (children)"),
            "street": _("Streets"),
            "community": _("Communities"),
            "grid": _("Grids"),
            "buildings": _("Buildings"),
        },
        "layer_title": _("Layer"),
        "legend_title": _("Population density (persons / km²)"),
        "no_data": _("no data"),
        "population": _("Population"),
        "households": _("Households"),
        "buildings": _("Buildings"),
        "density": _("Density (persons / km²)"),
        "area": _("Area (km²)"),
        "code": _("Code"),
        "level": _("Level"),
        "children": _("Sub-regions"),
        "no_children": _("No sub-regions."),
        "counts_updated": _("Counts updated"),
        "never": _("never"),
        "synthetic_note": _(
            "Synthetic: grids, buildings and people below street level in this area are generated, not real data."
        ),
        "load_error": _("Could not load map data."),
        "loading": _("Loading…"),
        "up": _("Up one level"),
        "too_many_buildings": _("Showing the first %(n)s buildings."),
        "attribution": _("Boundaries: district directory (no online tiles)"),
        "select_hint": _("Click a region to open it."),
    }


@require(Perm.MAP_VIEW)
def home(request):
    """Landing page: the base map of the user's region (the district's own polygons; no internet tiles)."""
    region = request.jk_user.region
    config = {
        "api": "/api/v1/geo",
        "root": region.code if region else "",
        "time_zone": settings.TIME_ZONE,
        "language": getattr(request, "LANGUAGE_CODE", settings.LANGUAGE_CODE),
    }
    return render(
        request,
        "dashboard/home.html",
        {
            "scope_region": region,
            "map_config": config,
            "map_strings": map_strings(),
            "has_synthetic": scope_has_synthetic(scope=request.scope),
        },
    )
