"""快检测: full-population testing rounds with pooled tubes.

The chain a swab travels: a :class:`Campaign` (round) samples people at a :class:`SamplingSite`; each scan is a
:class:`Sample` (one person into one :class:`Tube`); a tube takes up to ``capacity`` swabs (1, 5, 10, 20-in-1) and is
sealed, packed into a :class:`TransportBatch`, received by a :class:`Lab` and gets one :class:`TubeResult`.
Deconvolution (jingkong.testing.deconvolution, pure) turns tube results into individual outcomes: a positive pool puts
its members under control in place (:class:`PersonTestState`) and creates a :class:`RetestTask` per member; an invalid
tube creates resampling tasks.

Region scoping: rows carry ``region_code`` (a division code; prefix matches with ``Scope.q("region_code")``) — for a
sample the residence grid of the person, for a tube the region of its site (or of its first member for door-to-door
tubes without a site), for a site/lab the region it stands in.

Hot path: samples are written with raw SQL (jingkong.testing.sampling): ``client_scan_id`` makes device retries
idempotent, ``(tube, person)`` uniqueness makes a rescan of the same person into the same tube a no-op.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Mode(models.TextChoices):
    """How an area is sampled."""

    BUILDING = "building", _("door to door by building (扫楼)")
    VILLAGE = "village", _("by village (扫村)")
    STREET = "street", _("street sites (扫街)")
    FIXED = "fixed", _("fixed sites")


class CampaignStatus(models.TextChoices):
    PLANNED = "planned", _("planned")
    RUNNING = "running", _("running")
    CLOSED = "closed", _("closed")


class Campaign(models.Model):
    """A testing round (全员/区域核酸检测): everyone living in a region subtree, or one key group in it."""

    code = models.CharField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=128)
    region = models.ForeignKey("geo.Region", on_delete=models.PROTECT, related_name="+", verbose_name=_("region"))
    region_code = models.CharField(_("region code"), max_length=32, db_index=True)  # = region.code, for scoping
    # A key-group round samples only the persons of this key industry living or working in the region.
    key_industry = models.CharField(_("key group (industry)"), max_length=16, blank=True, default="")
    mode = models.CharField(_("default mode"), max_length=16, choices=Mode.choices, default=Mode.STREET)
    pool_size = models.PositiveSmallIntegerField(_("default pool size"), default=10)
    starts_at = models.DateTimeField(_("starts"))
    deadline = models.DateTimeField(_("deadline"))
    status = models.CharField(_("status"), max_length=16, choices=CampaignStatus.choices, default=CampaignStatus.PLANNED)
    policy_profile = models.CharField(_("policy profile"), max_length=64, blank=True)
    note = models.TextField(_("note"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"))
    updated_at = models.DateTimeField(_("updated"))

    class Meta:
        verbose_name = _("testing campaign")
        verbose_name_plural = _("testing campaigns")
        constraints = [
            models.CheckConstraint(condition=models.Q(deadline__gt=models.F("starts_at")), name="testing_campaign_deadline_after_start"),
            models.CheckConstraint(condition=models.Q(pool_size__gte=1, pool_size__lte=20), name="testing_campaign_pool_size_range"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class CampaignArea(models.Model):
    """Per-area overrides of a campaign: mode and pool size for a sub-region (the most specific area wins)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="areas", verbose_name=_("campaign"))
    region = models.ForeignKey("geo.Region", on_delete=models.PROTECT, related_name="+", verbose_name=_("region"))
    region_code = models.CharField(_("region code"), max_length=32)
    mode = models.CharField(_("mode"), max_length=16, choices=Mode.choices)
    pool_size = models.PositiveSmallIntegerField(_("pool size"))
    one_tube_per_household = models.BooleanField(_("one tube per household"), default=False)
    reason = models.CharField(_("reason"), max_length=255, blank=True)  # e.g. "lockdown zone: single tubes"

    class Meta:
        verbose_name = _("campaign area")
        verbose_name_plural = _("campaign areas")
        constraints = [
            models.UniqueConstraint(fields=["campaign", "region"], name="testing_area_campaign_region_uniq"),
            models.CheckConstraint(condition=models.Q(pool_size__gte=1, pool_size__lte=20), name="testing_area_pool_size_range"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}:{self.region_code} {self.mode} {self.pool_size}-in-1"


class SiteKind(models.TextChoices):
    FIXED = "fixed", _("fixed site")
    TEMPORARY = "temporary", _("temporary site")
    DOOR_TEAM = "door_team", _("door-to-door team")  # bedridden and sealed-building residents: sampled at home


class SamplingSite(models.Model):
    """A sampling site (检测点位) or door-to-door team, with its sampling capacity."""

    code = models.CharField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=128)
    kind = models.CharField(_("kind"), max_length=16, choices=SiteKind.choices, default=SiteKind.TEMPORARY)
    region = models.ForeignKey("geo.Region", on_delete=models.PROTECT, related_name="+", verbose_name=_("region"))
    region_code = models.CharField(_("region code"), max_length=32, db_index=True)
    lon = models.FloatField(_("longitude"))
    lat = models.FloatField(_("latitude"))
    desks = models.PositiveSmallIntegerField(_("sampling desks"), default=1)
    staff = models.PositiveSmallIntegerField(_("sampling staff"), default=2)
    capacity_per_hour = models.PositiveIntegerField(_("capacity (people per hour)"), default=120)
    opens_at = models.TimeField(_("opens (local time)"), default="07:00")
    closes_at = models.TimeField(_("closes (local time)"), default="21:00")
    # A temporary site belongs to one campaign; fixed sites serve every campaign.
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.CASCADE, related_name="sites", verbose_name=_("campaign")
    )
    active = models.BooleanField(_("active"), default=True)
    samplers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="sampling_sites", verbose_name=_("samplers"),
        help_text=_("Samplers may scan only at the sites they are assigned to."),
    )

    class Meta:
        verbose_name = _("sampling site")
        verbose_name_plural = _("sampling sites")

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class SiteAssignment(models.Model):
    """Which site a building's residents go to in a campaign, and when (错峰 time slot)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="assignments")
    building = models.ForeignKey("geo.Building", on_delete=models.CASCADE, related_name="+")
    site = models.ForeignKey(SamplingSite, on_delete=models.CASCADE, related_name="assignments")
    region_code = models.CharField(max_length=32)  # the building's grid code
    residents = models.PositiveIntegerField(default=0)
    distance_m = models.PositiveIntegerField(default=0)
    slot_start = models.DateTimeField(_("slot start"))
    slot_end = models.DateTimeField(_("slot end"))

    class Meta:
        verbose_name = _("site assignment")
        verbose_name_plural = _("site assignments")
        constraints = [models.UniqueConstraint(fields=["campaign", "building"], name="testing_assignment_uniq")]
        indexes = [models.Index(fields=["campaign", "site"], name="testing_assignment_site")]

    def __str__(self) -> str:
        return f"{self.building_id} → {self.site_id} {self.slot_start:%H:%M}"


class Lab(models.Model):
    """A testing laboratory with its throughput."""

    code = models.CharField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=128)
    region = models.ForeignKey("geo.Region", on_delete=models.PROTECT, related_name="+", verbose_name=_("region"))
    region_code = models.CharField(_("region code"), max_length=32, db_index=True)
    capacity_per_hour = models.PositiveIntegerField(_("capacity (tubes per hour)"), default=500)
    target_hours = models.PositiveSmallIntegerField(_("turnaround target (hours)"), default=12)
    active = models.BooleanField(_("active"), default=True)
    technicians = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="labs", verbose_name=_("technicians"),
        help_text=_("Lab technicians may enter results only for their labs."),
    )

    class Meta:
        verbose_name = _("laboratory")
        verbose_name_plural = _("laboratories")

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class BatchStatus(models.TextChoices):
    PACKED = "packed", _("packed")
    HANDED_OVER = "handed_over", _("handed over")
    RECEIVED = "received", _("received")


class TransportBatch(models.Model):
    """Tubes travelling together from a site to a lab: chain of custody with a timestamp per hand-over."""

    code = models.CharField(_("code"), max_length=40, unique=True)
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.PROTECT, related_name="batches")
    site = models.ForeignKey(SamplingSite, null=True, blank=True, on_delete=models.PROTECT, related_name="batches")
    lab = models.ForeignKey(Lab, on_delete=models.PROTECT, related_name="batches")
    region_code = models.CharField(_("region code"), max_length=32, db_index=True)  # the site's region
    status = models.CharField(_("status"), max_length=16, choices=BatchStatus.choices, default=BatchStatus.PACKED)
    tube_count = models.PositiveIntegerField(_("tubes"), default=0)
    courier = models.CharField(_("courier"), max_length=64, blank=True)
    packed_at = models.DateTimeField(_("packed"))
    packed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    handed_over_at = models.DateTimeField(_("handed over"), null=True, blank=True)
    received_at = models.DateTimeField(_("received"), null=True, blank=True)
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = _("transport batch")
        verbose_name_plural = _("transport batches")

    def __str__(self) -> str:
        return self.code


class TubeKind(models.TextChoices):
    ROUTINE = "routine", _("round sampling")
    RETEST = "retest", _("single-tube retest of a positive pool")
    RESAMPLE = "resample", _("resampling after an invalid tube")


class TubeStatus(models.TextChoices):
    OPEN = "open", pgettext_lazy("tube", "open")
    SEALED = "sealed", _("sealed")
    IN_TRANSIT = "in_transit", _("in transit")
    RECEIVED = "received", _("received at the lab")
    RESULTED = "resulted", _("resulted")


class Outcome(models.TextChoices):
    NEGATIVE = "negative", _("negative")
    POSITIVE = "positive", _("positive")
    INVALID = "invalid", _("invalid")


class Tube(models.Model):
    """A sampling tube (采样管): a barcode holding ``member_count`` swabs, at most ``capacity``."""

    barcode = models.CharField(_("barcode"), max_length=40, unique=True)
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.PROTECT, related_name="tubes")
    site = models.ForeignKey(SamplingSite, null=True, blank=True, on_delete=models.PROTECT, related_name="tubes")
    region_code = models.CharField(_("region code"), max_length=32)
    kind = models.CharField(_("kind"), max_length=16, choices=TubeKind.choices, default=TubeKind.ROUTINE)
    capacity = models.PositiveSmallIntegerField(_("pool size"))
    member_count = models.PositiveSmallIntegerField(_("swabs"), default=0)
    status = models.CharField(_("status"), max_length=16, choices=TubeStatus.choices, default=TubeStatus.OPEN)
    opened_at = models.DateTimeField(_("first swab"))
    sealed_at = models.DateTimeField(_("sealed"), null=True, blank=True)
    batch = models.ForeignKey(TransportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="tubes")
    lab = models.ForeignKey(Lab, null=True, blank=True, on_delete=models.PROTECT, related_name="tubes")
    received_at = models.DateTimeField(_("received"), null=True, blank=True)
    outcome = models.CharField(_("result"), max_length=16, choices=Outcome.choices, blank=True, default="")
    resulted_at = models.DateTimeField(_("resulted"), null=True, blank=True)

    class Meta:
        verbose_name = _("tube")
        verbose_name_plural = _("tubes")
        indexes = [
            models.Index(fields=["campaign", "status"], name="testing_tube_campaign_status"),
            models.Index(fields=["region_code"], name="testing_tube_region"),
            models.Index(fields=["lab", "status"], name="testing_tube_lab_status"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(capacity__gte=1, capacity__lte=20), name="testing_tube_capacity_range"),
            models.CheckConstraint(condition=models.Q(member_count__lte=models.F("capacity")), name="testing_tube_not_overfilled"),
        ]

    def __str__(self) -> str:
        return f"{self.barcode} ({self.member_count}/{self.capacity})"


class Sample(models.Model):
    """One swab: a person scanned into a tube. Written by the hot path with raw SQL (see jingkong.testing.sampling)."""

    client_scan_id = models.CharField(_("scan id (from the device)"), max_length=64, unique=True)
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False)
    tube = models.ForeignKey(Tube, on_delete=models.PROTECT, related_name="samples", db_index=False)
    person = models.ForeignKey("people.Person", on_delete=models.PROTECT, related_name="+", db_index=False)
    site = models.ForeignKey(SamplingSite, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    sampler = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+", db_index=False)
    region_code = models.CharField(_("region code"), max_length=32)  # the person's grid at the time of the scan
    position = models.PositiveSmallIntegerField(_("position in the tube"), default=1)
    device = models.CharField(_("device"), max_length=64, blank=True)
    sampled_at = models.DateTimeField(_("sampled"))
    recorded_at = models.DateTimeField(_("recorded"))
    retest_of = models.ForeignKey("RetestTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                  db_index=False)

    class Meta:
        verbose_name = _("sample")
        verbose_name_plural = _("samples")
        constraints = [models.UniqueConstraint(fields=["tube", "person"], name="testing_sample_tube_person_uniq")]
        indexes = [
            # Covering (campaign, person, tube): a person's swabs of a round and their tubes from the index alone
            # (coverage reads a whole round in person order; the sampling hot path finds a person's swabs by its
            # (campaign, person) prefix). Created by testing.0002 (raw SQL), declared here since testing.0004.
            models.Index(fields=["campaign", "person", "tube"], name="testing_sample_cov_cpt"),
            models.Index(fields=["person", "sampled_at"], name="testing_sample_person_time"),
        ]

    def __str__(self) -> str:
        return f"{self.person_id} → tube {self.tube_id}"


class ResultSource(models.TextChoices):
    API = "api", _("entered")
    CSV = "csv", _("CSV file")
    FHIR = "fhir", _("FHIR bundle")


class TubeResult(models.Model):
    """The lab result of one tube (one accepted result per tube; conflicting re-sends are reported, never applied)."""

    tube = models.OneToOneField(Tube, on_delete=models.PROTECT, related_name="result", verbose_name=_("tube"))
    lab = models.ForeignKey(Lab, on_delete=models.PROTECT, related_name="results", verbose_name=_("lab"))
    outcome = models.CharField(_("result"), max_length=16, choices=Outcome.choices)
    ct_values = models.JSONField(_("Ct values per target gene"), default=dict, blank=True)  # {"ORF1ab": 31.2, "N": 29.8}
    instrument = models.CharField(_("instrument"), max_length=64, blank=True)
    operator = models.CharField(_("operator"), max_length=64, blank=True)
    tested_at = models.DateTimeField(_("tested"))
    recorded_at = models.DateTimeField(_("recorded"))
    source = models.CharField(_("source"), max_length=8, choices=ResultSource.choices, default=ResultSource.API)
    source_ref = models.CharField(_("source reference"), max_length=128, blank=True)  # file name / bundle id, row
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = _("tube result")
        verbose_name_plural = _("tube results")

    def __str__(self) -> str:
        return f"{self.tube_id}: {self.outcome}"


class RetestReason(models.TextChoices):
    POOL_POSITIVE = "pool_positive", _("member of a positive pool")
    INVALID_TUBE = "invalid_tube", _("member of an invalid tube")


class RetestStatus(models.TextChoices):
    OPEN = "open", _("to be sampled")
    SAMPLED = "sampled", _("sampled, awaiting result")
    NEGATIVE = "negative", _("negative")
    POSITIVE = "positive", _("positive")
    CANCELLED = "cancelled", _("cancelled")


class RetestTask(models.Model):
    """Single-tube retest (or resampling) of one person, usually door to door."""

    person = models.ForeignKey("people.Person", on_delete=models.PROTECT, related_name="+")
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    source_tube = models.ForeignKey(Tube, on_delete=models.PROTECT, related_name="retest_tasks")
    reason = models.CharField(_("reason"), max_length=16, choices=RetestReason.choices)
    status = models.CharField(_("status"), max_length=16, choices=RetestStatus.choices, default=RetestStatus.OPEN)
    region_code = models.CharField(_("region code"), max_length=32)  # the person's grid
    created_at = models.DateTimeField(_("created"))
    sample = models.ForeignKey(Sample, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)

    class Meta:
        verbose_name = _("retest task")
        verbose_name_plural = _("retest tasks")
        constraints = [models.UniqueConstraint(fields=["person", "source_tube"], name="testing_retest_person_tube_uniq")]
        indexes = [
            models.Index(fields=["region_code", "status"], name="testing_retest_region_status"),
            models.Index(fields=["person", "status"], name="testing_retest_person_status"),
        ]

    def __str__(self) -> str:
        return f"retest {self.person_id} ({self.reason}, {self.status})"


class TestStatus(models.TextChoices):
    __test__ = False  # not a pytest class

    NEGATIVE = "negative", _("negative")
    POOL_POSITIVE = "pool_positive", _("pool positive: control in place, retest pending")
    RESAMPLE = "resample", _("tube invalid: to be resampled")
    POSITIVE = "positive", _("positive")


class PersonTestState(models.Model):
    """A person's latest resolved testing state, written set-based when tube results are applied; health codes read it.

    The sampling hot path does not touch this table (a sample without a result is "pending", derived from Sample).

    ``controlled_in_place`` (就地管控) is set the moment a pool containing the person turns positive and cleared when
    the person's single-tube retest is negative.
    """

    person = models.OneToOneField("people.Person", on_delete=models.CASCADE, primary_key=True, related_name="test_state")
    region_code = models.CharField(_("region code"), max_length=32)
    status = models.CharField(_("status"), max_length=16, choices=TestStatus.choices)
    controlled_in_place = models.BooleanField(_("controlled in place (就地管控)"), default=False)
    controlled_since = models.DateTimeField(_("controlled since"), null=True, blank=True)
    last_sampled_at = models.DateTimeField(_("last sampled"), null=True, blank=True)
    last_negative_sampled_at = models.DateTimeField(_("last negative (sampling time)"), null=True, blank=True)
    positive_sampled_at = models.DateTimeField(_("positive (sampling time)"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"))

    class Meta:
        verbose_name = _("person test state")
        verbose_name_plural = _("person test states")
        indexes = [
            models.Index(fields=["region_code", "status"], name="testing_state_region_status"),
        ]

    def __str__(self) -> str:
        return f"{self.person_id}: {self.status}"
