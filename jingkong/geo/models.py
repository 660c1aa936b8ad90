"""The base map (基础底图): district → street → community → grid, with buildings and venues.

Region codes are the national statistical division codes (district 6 digits, street 9, community 12); grids add a
3-digit suffix to their community's code (15 digits). Because every code starts with its parent's code, a region's
subtree is exactly the set of codes that start with its code — the basis of region scoping everywhere.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Level(models.TextChoices):
    DISTRICT = "district", _("district")
    STREET = "street", _("street / town")
    COMMUNITY = "community", _("community / village")
    GRID = "grid", _("grid")


LEVEL_ORDER = [Level.DISTRICT, Level.STREET, Level.COMMUNITY, Level.GRID]
LEVEL_DEPTH = {level.value: i for i, level in enumerate(LEVEL_ORDER)}


class Region(models.Model):
    code = models.CharField(_("division code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=128)
    level = models.CharField(_("level"), max_length=16, choices=Level.choices)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children", verbose_name=_("parent")
    )
    geometry = models.JSONField(_("geometry (GeoJSON, WGS-84)"), null=True, blank=True)
    geometry_simplified = models.JSONField(_("simplified geometry"), null=True, blank=True)
    min_lon = models.FloatField(null=True, blank=True)
    min_lat = models.FloatField(null=True, blank=True)
    max_lon = models.FloatField(null=True, blank=True)
    max_lat = models.FloatField(null=True, blank=True)
    center_lon = models.FloatField(null=True, blank=True)
    center_lat = models.FloatField(null=True, blank=True)
    area_km2 = models.FloatField(_("area (km²)"), null=True, blank=True)
    synthetic = models.BooleanField(_("synthetic"), default=False, help_text=_("Generated, not real geography."))
    population = models.IntegerField(_("population"), default=0)
    households = models.IntegerField(_("households"), default=0)
    buildings = models.IntegerField(_("buildings"), default=0)
    counts_updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("region")
        verbose_name_plural = _("regions")
        ordering = ["code"]
        indexes = [
            models.Index(fields=["level", "code"], name="geo_region_level"),
            models.Index(fields=["min_lon", "max_lon", "min_lat", "max_lat"], name="geo_region_bbox"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Building(models.Model):
    code = models.CharField(_("building code"), max_length=40, unique=True)
    grid = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="building_set", verbose_name=_("grid"))
    address = models.CharField(_("address"), max_length=255, blank=True)
    lon = models.FloatField(_("longitude"))
    lat = models.FloatField(_("latitude"))
    units = models.PositiveSmallIntegerField(_("units (entrances)"), default=1)
    floors = models.PositiveSmallIntegerField(_("floors"), default=1)
    household_count = models.PositiveIntegerField(_("households"), default=0)

    class Meta:
        verbose_name = _("building")
        verbose_name_plural = _("buildings")

    def __str__(self) -> str:
        return self.address or self.code


class VenueType(models.TextChoices):
    SUPERMARKET = "supermarket", _("supermarket")
    WET_MARKET = "wet_market", _("wet market")
    RESTAURANT = "restaurant", _("restaurant")
    PHARMACY = "pharmacy", _("pharmacy")
    CLINIC = "clinic", _("clinic / hospital")
    SCHOOL = "school", _("school")
    FACTORY = "factory", _("factory")
    OFFICE = "office", _("office")
    PORT_TERMINAL = "port_terminal", _("port terminal")
    COLD_CHAIN = "cold_chain", _("cold-chain warehouse")
    STATION = "station", _("station")
    HOTEL = "hotel", _("hotel")
    GYM = "gym", _("gym / leisure")
    GOVERNMENT = "government", _("government office")
    OTHER = "other", _("other")


class Venue(models.Model):
    code = models.CharField(_("venue code (场所码)"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=255)
    type = models.CharField(_("type"), max_length=32, choices=VenueType.choices)
    lon = models.FloatField(_("longitude"))
    lat = models.FloatField(_("latitude"))
    grid = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="venue_set", verbose_name=_("grid"))
    building = models.ForeignKey(
        Building, null=True, blank=True, on_delete=models.SET_NULL, related_name="venues", verbose_name=_("building")
    )

    class Meta:
        verbose_name = _("venue")
        verbose_name_plural = _("venues")
        indexes = [models.Index(fields=["type"], name="geo_venue_type")]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"
