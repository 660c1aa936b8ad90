"""Policy profiles (versioned, immutable rule sets) and their activation history per region.

A profile version never changes once stored: a change is a new version of the same code (``profile_create``). Which
rules are in force for a region at an instant is the latest :class:`PolicyActivation` at or before that instant on the
region or one of its ancestors (``selectors.active_profile``). Both tables are append-only.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ImmutableRecord(PermissionError):
    """Raised on an attempt to change or delete a stored profile version or activation."""


class PolicyProfile(models.Model):
    class Origin(models.TextChoices):
        BUILTIN = "builtin", _("shipped with the platform")
        CUSTOM = "custom", _("created by a user")

    code = models.CharField(_("code"), max_length=64)
    version = models.PositiveIntegerField(_("version"))
    edition = models.CharField(_("edition"), max_length=32)
    name_zh = models.CharField(_("name (Chinese)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200)
    summary_zh = models.TextField(_("summary (Chinese)"), blank=True)
    summary_en = models.TextField(_("summary (English)"), blank=True)
    issued_on = models.DateField(_("issued on"))
    valid_from = models.DateField(_("valid from"))
    rules = models.JSONField(_("rules"))
    sources = models.JSONField(_("sources (provenance per value)"), default=dict, blank=True)
    content_hash = models.CharField(_("content hash"), max_length=64)
    origin = models.CharField(_("origin"), max_length=16, choices=Origin.choices, default=Origin.CUSTOM)
    based_on = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("based on")
    )
    note = models.TextField(_("note"), blank=True, help_text=_("Why this version was created."))
    created_at = models.DateTimeField(_("created at"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("created by"),
    )

    class Meta:
        verbose_name = _("policy profile")
        verbose_name_plural = _("policy profiles")
        ordering = ["code", "version"]
        constraints = [
            models.UniqueConstraint(fields=["code", "version"], name="policy_profile_code_version"),
            models.CheckConstraint(condition=models.Q(version__gte=1), name="policy_profile_version_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.code} v{self.version}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ImmutableRecord("a policy profile version cannot be changed; create a new version")
        return super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableRecord("a policy profile version cannot be deleted")


class PolicyActivation(models.Model):
    """From ``activated_at`` on, ``profile`` is in force for ``region`` and its subtree (until a later activation)."""

    region = models.ForeignKey("geo.Region", on_delete=models.PROTECT, related_name="+", verbose_name=_("region"))
    profile = models.ForeignKey(
        PolicyProfile, on_delete=models.PROTECT, related_name="activations", verbose_name=_("profile")
    )
    activated_at = models.DateTimeField(_("in force from"))
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("activated by"),
    )
    reason = models.TextField(_("reason"))
    recorded_at = models.DateTimeField(_("recorded at"))

    class Meta:
        verbose_name = _("policy activation")
        verbose_name_plural = _("policy activations")
        ordering = ["-activated_at", "-id"]
        indexes = [models.Index(fields=["region", "activated_at"], name="policy_activation_region_time")]

    def __str__(self) -> str:
        return f"{self.profile} @ {self.region_id} from {self.activated_at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ImmutableRecord("an activation cannot be changed; activate again")
        return super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableRecord("an activation cannot be deleted; activate another profile")
