"""The population baseline (人口底数): who lives where, and who belongs to a vulnerable or key group.

Resident ID numbers are never stored in clear: ``id_hash`` is a keyed BLAKE2b-128 (32 hex) for lookup and ``id_masked`` is the
display form (see jingkong.people.idnumber). ``grid`` is the actual residence; region scoping filters on its code.
"""

from __future__ import annotations

import enum

from django.db import models
from django.utils.translation import gettext_lazy as _


class Vulnerable(enum.IntFlag):
    """Vulnerable groups (重点群体), stored as bit flags in ``Person.vulnerable``."""

    ELDERLY = 1
    YOUNG_CHILD = 2
    PREGNANT = 4
    CHRONIC = 8
    LIMITED_MOBILITY = 16


VULNERABLE_LABELS = {
    Vulnerable.ELDERLY: _("elderly"),
    Vulnerable.YOUNG_CHILD: _("young child"),
    Vulnerable.PREGNANT: _("pregnant"),
    Vulnerable.CHRONIC: _("chronic illness"),
    Vulnerable.LIMITED_MOBILITY: _("limited mobility"),
}
# Names accepted in import files (English identifiers and the Chinese terms).
VULNERABLE_NAMES = {
    "elderly": Vulnerable.ELDERLY, "老人": Vulnerable.ELDERLY, "老年人": Vulnerable.ELDERLY,
    "young_child": Vulnerable.YOUNG_CHILD, "child": Vulnerable.YOUNG_CHILD, "儿童": Vulnerable.YOUNG_CHILD,
    "婴幼儿": Vulnerable.YOUNG_CHILD,
    "pregnant": Vulnerable.PREGNANT, "孕妇": Vulnerable.PREGNANT,
    "chronic": Vulnerable.CHRONIC, "chronic_illness": Vulnerable.CHRONIC, "慢性病": Vulnerable.CHRONIC,
    "limited_mobility": Vulnerable.LIMITED_MOBILITY, "行动不便": Vulnerable.LIMITED_MOBILITY,
}


class Industry(models.TextChoices):
    """Key industries (重点行业) with periodic testing."""

    NONE = "", _("none")
    PORT = "port", _("port")
    COLD_CHAIN = "cold_chain", _("cold chain")
    AIRPORT = "airport", _("airport")
    HOSPITAL = "hospital", _("hospital")
    TRANSPORT = "transport", _("transport")
    SHIP_CREW = "ship_crew", _("ship crew")


class Sex(models.TextChoices):
    MALE = "M", _("male")
    FEMALE = "F", _("female")


class Household(models.Model):
    code = models.CharField(_("household code"), max_length=48, unique=True)
    building = models.ForeignKey(
        "geo.Building", on_delete=models.PROTECT, related_name="household_set", verbose_name=_("building")
    )
    grid = models.ForeignKey("geo.Region", on_delete=models.PROTECT, related_name="+", verbose_name=_("grid"))
    unit = models.CharField(_("unit"), max_length=16, blank=True)
    room = models.CharField(_("room"), max_length=16, blank=True)

    class Meta:
        verbose_name = _("household")
        verbose_name_plural = _("households")

    def __str__(self) -> str:
        return self.code


class Source(models.TextChoices):
    IMPORT = "import", _("registry import")
    SYNTHETIC = "synthetic", _("synthetic")
    PROVISIONAL = "provisional", _("provisional (unknown at a scan)")
    MANUAL = "manual", _("entered by hand")


class Person(models.Model):
    # 32 hex characters (jingkong.people.idnumber.id_hash); the column allows 64 for hashes of other origins.
    id_hash = models.CharField(_("ID number hash"), max_length=64)
    id_masked = models.CharField(_("ID number (masked)"), max_length=24)
    name = models.CharField(_("name"), max_length=64)
    sex = models.CharField(_("sex"), max_length=1, choices=Sex.choices)
    birth_date = models.DateField(_("birth date"))
    phone = models.CharField(_("phone"), max_length=20, blank=True)
    household = models.ForeignKey(
        Household, null=True, blank=True, on_delete=models.SET_NULL, related_name="members", verbose_name=_("household")
    )
    building = models.ForeignKey(
        "geo.Building", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("building")
    )
    grid = models.ForeignKey(
        "geo.Region", null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("grid (actual residence)")
    )
    unit = models.CharField(_("unit"), max_length=16, blank=True)
    room = models.CharField(_("room"), max_length=16, blank=True)
    registered_address = models.CharField(_("registered residence (户籍)"), max_length=255, blank=True)
    is_registered_local = models.BooleanField(_("registered locally"), default=True)
    vulnerable = models.PositiveSmallIntegerField(_("vulnerable groups"), default=0)
    industry = models.CharField(_("key industry"), max_length=16, choices=Industry.choices, blank=True, default="")
    employer = models.CharField(_("employer"), max_length=255, blank=True)
    workplace = models.ForeignKey(
        "geo.Venue", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("workplace"),
        db_index=False,  # indexed partially below: most residents have no registered workplace
    )
    source = models.CharField(_("source"), max_length=16, choices=Source.choices, default=Source.IMPORT)
    needs_review = models.BooleanField(_("needs review by the grid worker"), default=False)
    created_at = models.DateTimeField(_("created"))
    updated_at = models.DateTimeField(_("updated"))

    class Meta:
        verbose_name = _("person")
        verbose_name_plural = _("persons")
        # grid, building, household: the FKs' own indexes. Workplace and industry are empty for most residents, so
        # their indexes hold only the rows that have one (smaller, and cheaper to build on a million-row load); a
        # query by industry says industry != '' explicitly so that SQLite can use the partial index.
        indexes = [
            models.Index(fields=["industry"], name="people_person_industry", condition=~models.Q(industry="")),
            models.Index(fields=["workplace"], name="people_person_workplace", condition=models.Q(workplace__isnull=False)),
        ]
        constraints = [
            # An expression constraint is created as a named CREATE UNIQUE INDEX on both databases (a plain
            # unique=True column is an undroppable autoindex on SQLite): the fresh-load fast path drops and rebuilds it.
            models.UniqueConstraint(models.F("id_hash"), name="people_person_id_hash_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.id_masked}"

    @property
    def vulnerable_groups(self) -> list[Vulnerable]:
        return [flag for flag in Vulnerable if self.vulnerable & flag]
