"""三区 zones and published risk areas (中高风险地区).

* A :class:`Zone` is one lockdown / control / prevention zone (or, under the 9th edition, one high / medium / low-risk
  area), proposed by the platform from a case and the active policy profile, edited and approved by a commander (human
  in the loop), then downgraded and lifted by rule. Its geometry is the union of its :class:`ZoneUnit` rows (household,
  entrance, building, grid, community or street — the profile's smallest control unit and up).
* :class:`ZoneResident` is the set of people living inside each *approved, not lifted* zone, materialised set-based
  (INSERT … SELECT) whenever a zone is approved, edited, upgraded, downgraded or lifted. Health codes, checkpoints and
  services join on it: ``zones_zoneresident(person_id, zone_id, zone_type, region_code)``.
* :class:`ZoneChange` is the append-only history of every zone change (proposal, edit, approval, rejection, upgrade,
  downgrade, lifting) with who, when, why and the before/after.
* :class:`RiskArea` is the published list (district-own areas derived from zones, and imported lists for other places),
  by division code, used by health codes and checkpoints to judge a person's origin.

Region scoping: a zone carries ``region_code`` (the smallest region containing all its units); residents carry their
grid code; selectors filter with ``Scope.q("region_code")``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class ZoneType(models.TextChoices):
    # Identifiers match policy.schema.ZoneType; the profile says which are in use.
    LOCKDOWN = "lockdown", _("lockdown zone (封控区)")
    CONTROL = "control", _("control zone (管控区)")
    PREVENTION = "prevention", _("prevention zone (防范区)")
    HIGH_RISK = "high_risk", _("high-risk area")
    MEDIUM_RISK = "medium_risk", _("medium-risk area")
    LOW_RISK = "low_risk", _("low-risk area")


class ZoneStatus(models.TextChoices):
    PROPOSED = "proposed", _("proposed")
    APPROVED = "approved", _("in force")
    REJECTED = "rejected", _("rejected")
    LIFTED = "lifted", _("lifted")


class UnitKind(models.TextChoices):
    # Identifiers match policy.schema.ControlUnit.
    HOUSEHOLD = "household", _("household")
    ENTRANCE = "entrance", _("entrance (unit)")
    BUILDING = "building", _("building")
    COMPOUND = "compound", _("compound")
    GRID = "grid", _("grid")
    COMMUNITY = "community", _("community")
    STREET = "street", _("street")


class Zone(models.Model):
    ref = models.CharField(_("zone number"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=255)
    type = models.CharField(_("type"), max_length=16, choices=ZoneType.choices)
    status = models.CharField(_("status"), max_length=16, choices=ZoneStatus.choices, default=ZoneStatus.PROPOSED)
    region_code = models.CharField(_("region code"), max_length=32, db_index=True)
    case = models.ForeignKey("tracing.Case", null=True, blank=True, on_delete=models.SET_NULL, related_name="zones",
                             verbose_name=_("case"))
    around = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="surrounding",
                               verbose_name=_("drawn around"))
    profile = models.ForeignKey("policy.PolicyProfile", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="+", verbose_name=_("policy profile"))
    geometry = models.JSONField(_("geometry (GeoJSON, WGS-84)"), null=True, blank=True)
    people = models.PositiveIntegerField(_("people"), default=0)
    households = models.PositiveIntegerField(_("households"), default=0)
    vulnerable = models.PositiveIntegerField(_("vulnerable people"), default=0)
    # Lifting clock inputs (kept current by the zones services).
    last_infection_at = models.DateTimeField(_("last infection found inside"), null=True, blank=True)
    last_exposure_at = models.DateTimeField(_("last contact exposure"), null=True, blank=True)
    last_screening_at = models.DateTimeField(_("last all-negative screening"), null=True, blank=True)
    type_since = models.DateTimeField(_("at this level since"), null=True, blank=True)
    proposed_at = models.DateTimeField(_("proposed"))
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+", verbose_name=_("proposed by"))
    approved_at = models.DateTimeField(pgettext_lazy("time of", "approved"), null=True, blank=True)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+", verbose_name=_("approved by"))
    lifted_at = models.DateTimeField(pgettext_lazy("time of", "lifted"), null=True, blank=True)
    note = models.TextField(_("note"), blank=True, default="")
    updated_at = models.DateTimeField(_("updated"))

    class Meta:
        verbose_name = _("zone")
        verbose_name_plural = _("zones")
        ordering = ["-proposed_at"]
        indexes = [models.Index(fields=["status", "type"], name="zones_zone_status_type")]

    def __str__(self) -> str:
        return f"{self.ref} {self.name}"


class ZoneUnit(models.Model):
    """One control unit of a zone. Exactly one target is set, matching ``kind``: household; building (+ ``entrance``
    for an entrance); region (grid, community or street; a compound is a list of buildings)."""

    zone = models.ForeignKey(Zone, on_delete=models.CASCADE, related_name="units", verbose_name=_("zone"))
    kind = models.CharField(_("unit"), max_length=16, choices=UnitKind.choices)
    household = models.ForeignKey("people.Household", null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+", verbose_name=_("household"))
    building = models.ForeignKey("geo.Building", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                 verbose_name=_("building"))
    entrance = models.CharField(_("entrance (unit)"), max_length=16, blank=True, default="")
    region = models.ForeignKey("geo.Region", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                               verbose_name=_("region"))

    class Meta:
        verbose_name = _("zone unit")
        verbose_name_plural = _("zone units")
        constraints = [
            models.CheckConstraint(
                name="zones_unit_one_target",
                condition=(
                    models.Q(household__isnull=False, building__isnull=True, region__isnull=True)
                    | models.Q(household__isnull=True, building__isnull=False, region__isnull=True)
                    | models.Q(household__isnull=True, building__isnull=True, region__isnull=False)
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"ZoneUnit {self.pk}"


class ZoneResident(models.Model):
    """Who lives inside an approved zone in force (materialised set-based; see the module docstring)."""

    # No single-column indexes: (zone, person) unique and (person, zone_type) cover both foreign keys, and every
    # index costs on the INSERT … SELECT of a district-wide zone (bench_zones: 4 → 2 indexes). No database-level
    # foreign-key constraints either: the rows are selected from people_person and written by the zones services
    # only, and PostgreSQL's per-row checks of a 1 M-row refresh took 37 s (deletions still cascade through the ORM).
    zone = models.ForeignKey(Zone, on_delete=models.CASCADE, related_name="residents", db_index=False,
                             db_constraint=False)
    person = models.ForeignKey("people.Person", on_delete=models.CASCADE, related_name="+", db_index=False,
                               db_constraint=False)
    zone_type = models.CharField(max_length=16, choices=ZoneType.choices)
    region_code = models.CharField(max_length=32)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["zone", "person"], name="zones_resident_unique")]
        indexes = [models.Index(fields=["person", "zone_type"], name="zones_resident_person")]

    def __str__(self) -> str:
        return f"ZoneResident {self.pk} (person {self.person_id})"


class ZoneChange(models.Model):
    """Append-only history of a zone."""

    zone = models.ForeignKey(Zone, on_delete=models.CASCADE, related_name="changes", verbose_name=_("zone"))
    at = models.DateTimeField(_("time"))
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", verbose_name=_("by"))
    action = models.CharField(_("action"), max_length=24)
    from_type = models.CharField(_("from"), max_length=16, blank=True, default="")
    to_type = models.CharField(_("to"), max_length=16, blank=True, default="")
    reason = models.TextField(_("reason"), blank=True, default="")
    detail = models.JSONField(_("detail"), default=dict, blank=True)

    class Meta:
        verbose_name = _("zone change")
        verbose_name_plural = _("zone changes")
        ordering = ["zone", "at", "id"]

    def __str__(self) -> str:
        return f"ZoneChange {self.pk}"


class RiskLevel(models.TextChoices):
    HIGH = "high", _("high risk")
    MEDIUM = "medium", _("medium risk")
    LOW = "low", _("low risk")


class RiskAreaSource(models.TextChoices):
    DISTRICT = "district", _("published by this district")
    IMPORTED = "imported", _("imported list")


class RiskArea(models.Model):
    """One published medium/high-risk area (中高风险地区), by administrative division code (prefix match: an area
    ``330206004`` covers every code that starts with it)."""

    source = models.CharField(_("source"), max_length=16, choices=RiskAreaSource.choices)
    area_code = models.CharField(_("division code"), max_length=32, db_index=True)
    name = models.CharField(_("name"), max_length=255)
    level = models.CharField(_("level"), max_length=8, choices=RiskLevel.choices)
    zone = models.ForeignKey(Zone, null=True, blank=True, on_delete=models.SET_NULL, related_name="risk_areas",
                             verbose_name=_("zone"))
    list_name = models.CharField(_("list"), max_length=128, blank=True, default="")
    published_at = models.DateTimeField(_("published"))
    withdrawn_at = models.DateTimeField(_("withdrawn"), null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", verbose_name=_("created by"))

    class Meta:
        verbose_name = _("risk area")
        verbose_name_plural = _("risk areas")
        ordering = ["-published_at"]
        constraints = [
            models.UniqueConstraint(fields=["source", "area_code", "published_at"], name="zones_riskarea_unique"),
        ]

    def __str__(self) -> str:
        return str(self.name)
