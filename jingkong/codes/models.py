"""健康码 health codes, their signing keys, and 卡口 checkpoints with venue entry.

* :class:`HealthCode` — one row per person: the colour the policy profile's rules give (or a manual override), the
  reasons (every matching rule, in order, with the date each stops applying), and the date the code may turn green.
  Recomputed set-based for the whole population and incrementally on domain events.
* :class:`CodeOverride` — a manual colour set by an authorised role, with a reason and an expiry; audited.
* :class:`SigningKey` — asymmetric keys (Ed25519) that sign the token shown to the person (亮码); the public keys are
  published so checkpoint and venue devices verify offline. Rotation: a new key signs, old keys keep verifying until
  the last token they signed has expired.
* :class:`Arrival` — a person arriving from elsewhere (declared, imported, or seen at a checkpoint), judged against the
  risk-area list; :class:`FeverReferral` — a fever-clinic referral from a venue or checkpoint temperature check.
* :class:`Checkpoint`, :class:`Pass` (通行证 for medical and essential-supply vehicles), :class:`Crossing` (every
  verification logged, idempotent by the device's ``client_id`` so offline devices sync later without duplicates),
  :class:`VenueEntry` (测温+亮码+戴口罩; also a check-in for tracing).

Region scoping: codes, arrivals, referrals carry the person's grid code; checkpoints and their crossings the
checkpoint's region code.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Colour(models.TextChoices):
    GREEN = "green", _("green")
    YELLOW = "yellow", _("yellow")
    ORANGE = "orange", _("orange")
    RED = "red", _("red")


class HealthCode(models.Model):
    person = models.OneToOneField("people.Person", primary_key=True, on_delete=models.CASCADE,
                                  related_name="health_code", verbose_name=_("person"))
    colour = models.CharField(_("colour"), max_length=8, choices=Colour.choices)
    rule_id = models.CharField(_("deciding rule"), max_length=64, blank=True, default="")
    reasons = models.JSONField(_("reasons"), default=list, blank=True)
    green_on = models.DateField(_("may turn green on"), null=True, blank=True)
    region_code = models.CharField(_("region code"), max_length=32, db_index=True)
    profile = models.ForeignKey("policy.PolicyProfile", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="+", verbose_name=_("policy profile"))
    overridden = models.BooleanField(_("manual override"), default=False)
    computed_at = models.DateTimeField(_("computed"))
    changed_at = models.DateTimeField(_("colour changed"))
    # The ids of every rule listed in ``reasons`` as " id1 id2 " (space-delimited, leading and trailing space; "" when
    # none), so event handlers find the people whose code cites a rule (``cites LIKE '% id %'``) over the few rows that
    # cite anything (partial index) instead of reading JSON.
    cites = models.CharField(_("rules cited"), max_length=1000, blank=True, default="")

    class Meta:
        verbose_name = _("health code")
        verbose_name_plural = _("health codes")
        indexes = [
            models.Index(fields=["region_code", "colour"], name="codes_code_region_colour"),
            models.Index(fields=["cites"], name="codes_code_cites", condition=~models.Q(cites="")),
        ]

    def __str__(self) -> str:
        return f"HealthCode {self.pk} (person {self.person_id})"


class CodeOverride(models.Model):
    person = models.ForeignKey("people.Person", on_delete=models.CASCADE, related_name="+", verbose_name=_("person"))
    colour = models.CharField(_("colour"), max_length=8, choices=Colour.choices)
    reason = models.TextField(_("reason"))
    region_code = models.CharField(_("region code"), max_length=32, db_index=True)
    starts_at = models.DateTimeField(_("from"))
    expires_at = models.DateTimeField(_("until"), null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+",
                                   verbose_name=_("set by"))
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", verbose_name=_("revoked by"))

    class Meta:
        verbose_name = _("code override")
        verbose_name_plural = _("code overrides")
        ordering = ["-starts_at"]

    def __str__(self) -> str:
        return f"CodeOverride {self.pk} (person {self.person_id})"


class SigningKey(models.Model):
    kid = models.CharField(_("key id"), max_length=32, unique=True)
    algorithm = models.CharField(_("algorithm"), max_length=16, default="Ed25519")
    public_key = models.TextField(_("public key (base64url, raw)"))
    private_key = models.TextField(_("private key (encrypted)"), blank=True, default="")
    created_at = models.DateTimeField(_("created"))
    retired_at = models.DateTimeField(_("stopped signing"), null=True, blank=True)
    verify_until = models.DateTimeField(_("verifies until"), null=True, blank=True)

    class Meta:
        verbose_name = _("signing key")
        verbose_name_plural = _("signing keys")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return str(self.kid)


class ArrivalSource(models.TextChoices):
    DECLARATION = "declaration", _("declared")
    CHECKPOINT = "checkpoint", _("seen at a checkpoint")
    IMPORT = "import", _("imported")


class Arrival(models.Model):
    person = models.ForeignKey("people.Person", on_delete=models.CASCADE, related_name="+", verbose_name=_("person"))
    origin_code = models.CharField(_("origin division code"), max_length=32)
    origin_name = models.CharField(_("origin"), max_length=255, blank=True, default="")
    arrived_at = models.DateTimeField(_("arrived"))
    source = models.CharField(_("source"), max_length=16, choices=ArrivalSource.choices)
    region_code = models.CharField(_("region code"), max_length=32, db_index=True)
    created_at = models.DateTimeField(_("created"))

    class Meta:
        verbose_name = _("arrival")
        verbose_name_plural = _("arrivals")
        indexes = [models.Index(fields=["person", "arrived_at"], name="codes_arrival_person")]
        constraints = [models.UniqueConstraint(fields=["person", "origin_code", "arrived_at"],
                                               name="codes_arrival_unique")]

    def __str__(self) -> str:
        return f"Arrival {self.pk} (person {self.person_id})"


class ReferralStatus(models.TextChoices):
    REFERRED = "referred", _("referred")
    VISITED = "visited", _("visited the fever clinic")
    CLEARED = "cleared", _("cleared")


class FeverReferral(models.Model):
    person = models.ForeignKey("people.Person", on_delete=models.CASCADE, related_name="+", verbose_name=_("person"))
    temperature = models.DecimalField(_("temperature (°C)"), max_digits=4, decimal_places=1)
    measured_at = models.DateTimeField(_("measured"))
    venue = models.ForeignKey("geo.Venue", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                              verbose_name=_("venue"))
    checkpoint = models.ForeignKey("codes.Checkpoint", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", verbose_name=_("checkpoint"))
    status = models.CharField(_("status"), max_length=16, choices=ReferralStatus.choices,
                              default=ReferralStatus.REFERRED)
    region_code = models.CharField(_("region code"), max_length=32, db_index=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    note = models.TextField(_("note"), blank=True, default="")

    class Meta:
        verbose_name = _("fever-clinic referral")
        verbose_name_plural = _("fever-clinic referrals")
        ordering = ["-measured_at"]

    def __str__(self) -> str:
        return f"FeverReferral {self.pk} (person {self.person_id})"


class CheckpointKind(models.TextChoices):
    HIGHWAY_EXIT = "highway_exit", _("highway exit")
    ROAD = "road", _("road")
    ZONE_BOUNDARY = "zone_boundary", _("zone boundary")
    PORT = "port", _("port or station")


class Checkpoint(models.Model):
    code = models.CharField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=255)
    kind = models.CharField(_("kind"), max_length=16, choices=CheckpointKind.choices)
    region_code = models.CharField(_("region code"), max_length=32, db_index=True)
    lon = models.FloatField(_("longitude"))
    lat = models.FloatField(_("latitude"))
    zone = models.ForeignKey("zones.Zone", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                             verbose_name=_("zone guarded"))
    staff = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="checkpoints",
                                   verbose_name=_("staff"))
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"))

    class Meta:
        verbose_name = _("checkpoint")
        verbose_name_plural = _("checkpoints")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class PassKind(models.TextChoices):
    MEDICAL = "medical", _("medical")
    ESSENTIAL_SUPPLY = "essential_supply", _("essential supply")
    TRANSFER = "transfer", _("transfer vehicle")
    OFFICIAL = "official", _("official duty")


class Pass(models.Model):
    number = models.CharField(_("pass number"), max_length=40, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=PassKind.choices)
    plate = models.CharField(_("plate"), max_length=16, db_index=True)
    holder = models.CharField(_("holder"), max_length=128)
    organisation = models.CharField(_("organisation"), max_length=255, blank=True, default="")
    region_code = models.CharField(_("issued by region"), max_length=32, db_index=True)
    valid_from = models.DateTimeField(_("valid from"))
    valid_until = models.DateTimeField(_("valid until"))
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+",
                                   verbose_name=_("issued by"))
    created_at = models.DateTimeField(_("created"))

    class Meta:
        verbose_name = _("pass (通行证)")
        verbose_name_plural = _("passes")
        ordering = ["-valid_from"]

    def __str__(self) -> str:
        return str(self.number)


class Decision(models.TextChoices):
    ALLOW = "allow", _("allow")
    DENY = "deny", _("deny")
    REFER = "refer", _("refer")


class Crossing(models.Model):
    client_id = models.CharField(_("device record id"), max_length=64, unique=True)
    checkpoint = models.ForeignKey(Checkpoint, on_delete=models.PROTECT, related_name="crossings",
                                   verbose_name=_("checkpoint"))
    region_code = models.CharField(_("region code"), max_length=32, db_index=True)
    at = models.DateTimeField(_("time"))
    direction = models.CharField(_("direction"), max_length=8, blank=True, default="")
    subject = models.CharField(_("subject"), max_length=8)  # person | vehicle
    person = models.ForeignKey("people.Person", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                               verbose_name=_("person"))
    plate = models.CharField(_("plate"), max_length=16, blank=True, default="")
    passengers = models.PositiveSmallIntegerField(_("people in the vehicle"), default=0)
    pass_used = models.ForeignKey(Pass, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                  verbose_name=_("pass"))
    origin_code = models.CharField(_("origin division code"), max_length=32, blank=True, default="")
    colour = models.CharField(_("colour"), max_length=8, blank=True, default="")
    decision = models.CharField(_("decision"), max_length=8, choices=Decision.choices)
    reasons = models.JSONField(_("reasons"), default=list, blank=True)
    offline = models.BooleanField(_("decided offline"), default=False)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+", verbose_name=_("recorded by"))
    received_at = models.DateTimeField(_("received"))

    class Meta:
        verbose_name = _("crossing")
        verbose_name_plural = _("crossings")
        indexes = [models.Index(fields=["checkpoint", "at"], name="codes_crossing_cp_at")]

    def __str__(self) -> str:
        return str(self.client_id)


class VenueEntry(models.Model):
    client_id = models.CharField(_("device record id"), max_length=64, unique=True)
    venue = models.ForeignKey("geo.Venue", on_delete=models.PROTECT, related_name="+", verbose_name=_("venue"))
    person = models.ForeignKey("people.Person", on_delete=models.CASCADE, related_name="+", verbose_name=_("person"))
    at = models.DateTimeField(_("time"))
    temperature = models.DecimalField(_("temperature (°C)"), max_digits=4, decimal_places=1, null=True, blank=True)
    masked = models.BooleanField(_("wearing a mask"), null=True)
    colour = models.CharField(_("colour"), max_length=8, blank=True, default="")
    decision = models.CharField(_("decision"), max_length=8, choices=Decision.choices)
    reasons = models.JSONField(_("reasons"), default=list, blank=True)
    region_code = models.CharField(_("region code"), max_length=32, db_index=True)
    received_at = models.DateTimeField(_("received"))

    class Meta:
        verbose_name = _("venue entry")
        verbose_name_plural = _("venue entries")
        indexes = [models.Index(fields=["venue", "at"], name="codes_venueentry_venue_at")]

    def __str__(self) -> str:
        return str(self.client_id)
