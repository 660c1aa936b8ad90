"""The dashboard's aggregates: one number per (metric, key, region, day), kept current from the domain event stream.

Counts are stored at the deepest region a record is located to (normally its grid), so the figure for any region is
the SUM over the codes under it, and a region's figure always equals the sum of its drill-down (plus an explicit
"not located further" remainder). Non-additive figures (the five-stage clock's quantiles) are stored once per region
at every level; :data:`jingkong.dashboard.metrics.METRICS` says which is which.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Figure(models.Model):
    family = models.CharField(_("family"), max_length=32)
    metric = models.CharField(_("metric"), max_length=48)
    key = models.CharField(_("key"), max_length=64, blank=True, default="")
    region_code = models.CharField(_("region code"), max_length=32)
    day = models.DateField(_("day"), null=True, blank=True)  # reporting day (Asia/Shanghai) where the metric has one
    value = models.FloatField(_("value"))

    class Meta:
        verbose_name = _("dashboard figure")
        verbose_name_plural = _("dashboard figures")
        indexes = [
            # pattern ops: `region_code LIKE '330206002%'` uses the index on PostgreSQL whatever the collation
            # (SQLite ignores opclasses)
            models.Index(fields=["metric", "region_code"], name="dashboard_fig_metric_pat",
                         opclasses=["varchar_pattern_ops", "varchar_pattern_ops"]),
            models.Index(fields=["family"], name="dashboard_fig_family"),
        ]

    def __str__(self) -> str:
        return f"{self.metric}[{self.key}] {self.region_code} {self.day or ''} = {self.value}"


class RefreshState(models.Model):
    """Where each family of figures stands: the last domain event it has taken in, and when it was recomputed."""

    family = models.CharField(_("family"), max_length=32, unique=True)
    last_event_id = models.BigIntegerField(_("last event taken in"), default=0)
    marks = models.JSONField(_("source marks"), default=dict, blank=True)
    refreshed_at = models.DateTimeField(_("refreshed"), null=True, blank=True)
    duration_ms = models.IntegerField(_("duration (ms)"), default=0)
    rows = models.IntegerField(_("rows"), default=0)
    claimed_until = models.DateTimeField(_("claimed until"), null=True, blank=True)
    error = models.TextField(_("last error"), blank=True, default="")
    version = models.BigIntegerField(_("version"), default=0)

    class Meta:
        verbose_name = _("dashboard refresh state")
        verbose_name_plural = _("dashboard refresh states")

    def __str__(self) -> str:
        return f"{self.family} @ {self.refreshed_at}"
