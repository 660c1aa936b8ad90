"""快流调: cases, their activity timelines, contacts (deduplicated across cases), hand-offs, chains and clusters.

* A :class:`Case` is one infected person (one case per person), created automatically from an individual-positive
  test result (jingkong.tracing.subscribers) or by a tracer. Its :class:`Stay` rows are the activity timeline
  (行程轨迹): drafted from the registry (home, workplace) and venue check-ins, corrected after the interview. Problem
  rows (inverted times, overlaps, unknown venue codes) are kept and flagged, never dropped.
* A :class:`Contact` is one person, whatever the number of cases they were exposed to: every exposure is a
  :class:`ContactReason` (case, kind, evidence, window). The contact's tier is the highest of its reasons (close >
  secondary > companion), its last exposure the latest, its status only moves forward (jingkong.tracing.rules).
* A contact living outside the case's jurisdiction is handed to the queue of its own street with a
  :class:`Handoff` (requested → accepted): explicit and tracked, never dropped.
* :class:`Link` (infector → infectee) rows are suggested by the platform and confirmed or rejected by a tracer;
  confirmed links form :class:`Cluster` rows (connected components).

Region scoping: a case carries the grid code of its person (``region_code``), a contact the grid code of the contact
(``region_code``); selectors filter with ``Scope.q("region_code")``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Classification(models.TextChoices):
    CONFIRMED = "confirmed", _("confirmed case")
    ASYMPTOMATIC = "asymptomatic", _("asymptomatic infection")


class Severity(models.TextChoices):
    UNKNOWN = "", _("not assessed")
    MILD = "mild", _("mild")
    MODERATE = "moderate", _("moderate")
    SEVERE = "severe", _("severe")
    CRITICAL = "critical", _("critical")


class FoundBy(models.TextChoices):
    ROUTINE_SCREENING = "routine_screening", _("routine screening")
    ROUND = "round", _("testing round")
    FEVER_CLINIC = "fever_clinic", _("fever clinic")
    QUARANTINE_TEST = "quarantine_test", _("test in quarantine")
    CONTACT_FOLLOWUP = "contact_followup", _("contact follow-up")
    OTHER = "other", _("other")


class SourceCategory(models.TextChoices):
    IMPORTED = "imported", _("imported")
    LOCAL = "local", _("local")
    UNKNOWN = "unknown", _("unknown")


class CaseStatus(models.TextChoices):
    INVESTIGATING = "investigating", _("under investigation")
    INVESTIGATED = "investigated", _("core investigation done")
    CLOSED = "closed", _("closed")


class Case(models.Model):
    """One infected person. ``ref`` is the human-readable number used on the phone and in reports."""

    ref = models.CharField(_("case number"), max_length=32, unique=True)
    person = models.OneToOneField("people.Person", on_delete=models.PROTECT, related_name="tracing_case",
                                  verbose_name=_("person"))
    classification = models.CharField(_("classification"), max_length=16, choices=Classification.choices,
                                      default=Classification.ASYMPTOMATIC)
    severity = models.CharField(_("severity"), max_length=16, choices=Severity.choices, blank=True, default="")
    onset_date = models.DateField(_("symptom onset"), null=True, blank=True)
    first_positive_at = models.DateTimeField(_("first positive sample taken"), null=True, blank=True)
    found_by = models.CharField(_("how found"), max_length=24, choices=FoundBy.choices, default=FoundBy.OTHER)
    source_category = models.CharField(_("source"), max_length=16, choices=SourceCategory.choices,
                                       default=SourceCategory.UNKNOWN)
    # A case flagged with a variant (e.g. "Delta") uses the profile's longer look-back when it has one.
    variant = models.CharField(_("variant"), max_length=32, blank=True, default="")
    current_place = models.CharField(_("current place (hospital)"), max_length=255, blank=True, default="")
    isolated_at = models.DateTimeField(pgettext_lazy("time of", "isolated"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=CaseStatus.choices, default=CaseStatus.INVESTIGATING)
    region_code = models.CharField(_("region code"), max_length=32, db_index=True)  # the person's grid
    source_event = models.ForeignKey("core.DomainEvent", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+", db_constraint=False, verbose_name=_("created from event"))
    source_sample = models.ForeignKey("testing.Sample", null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="+", db_constraint=False, verbose_name=_("positive sample"))
    tracer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+", verbose_name=_("tracer"))
    note = models.TextField(_("note"), blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", verbose_name=_("created by"))
    created_at = models.DateTimeField(_("created"))
    updated_at = models.DateTimeField(_("updated"))
    contacts_found_at = models.DateTimeField(_("contacts last searched"), null=True, blank=True)
    investigated_at = models.DateTimeField(_("investigation done"), null=True, blank=True)

    class Meta:
        verbose_name = _("case")
        verbose_name_plural = _("cases")
        indexes = [models.Index(fields=["region_code", "status"], name="tracing_case_region_status")]

    def __str__(self) -> str:
        return self.ref


class RefCounter(models.Model):
    """The last case number handed out per prefix and year (locked while numbers are allocated)."""

    prefix = models.CharField(max_length=16)
    year = models.PositiveSmallIntegerField()
    last = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["prefix", "year"], name="tracing_refcounter_uniq")]

    def __str__(self) -> str:
        return f"{self.prefix}-{self.year}: {self.last}"


class StayKind(models.TextChoices):
    HOME = "home", _("home")
    WORKPLACE = "workplace", _("workplace")
    VENUE = "venue", _("venue")
    TRANSPORT = "transport", _("transport")
    OTHER = "other", _("other")


class StaySource(models.TextChoices):
    CHECKIN = "checkin", _("venue check-in")
    REGISTRY = "registry", _("population registry")
    INTERVIEW = "interview", _("interview")
    TRANSPORT = "transport", _("transport record")


class TransportMode(models.TextChoices):
    NONE = "", _("—")
    FLIGHT = "flight", _("flight")
    TRAIN = "train", _("train")
    BUS = "bus", _("bus / coach")
    SHIP = "ship", _("ship / ferry")
    METRO = "metro", _("metro")
    TAXI = "taxi", _("taxi / ride-hailing")
    OTHER = "other", _("other")


class Stay(models.Model):
    """One entry of a case's activity timeline: a place (or a vehicle) and a time window, with its source.

    Drafted rows with problems are kept and flagged (``flag_*``); the API refuses the same problems when a tracer
    enters or edits a row (jingkong.tracing.services.stay_save).
    """

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="stays", verbose_name=_("case"))
    kind = models.CharField(_("kind"), max_length=16, choices=StayKind.choices)
    venue = models.ForeignKey("geo.Venue", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                              verbose_name=_("venue"))
    venue_code = models.CharField(_("venue code as given"), max_length=40, blank=True, default="")
    place = models.CharField(_("place"), max_length=255, blank=True, default="")
    start = models.DateTimeField(_("from"))
    end = models.DateTimeField(_("to"))
    transport_mode = models.CharField(_("transport"), max_length=16, choices=TransportMode.choices, blank=True,
                                      default="")
    transport_number = models.CharField(_("flight / train / bus number"), max_length=32, blank=True, default="")
    carriage = models.CharField(_("carriage"), max_length=16, blank=True, default="")
    seat = models.CharField(_("seat"), max_length=16, blank=True, default="")
    source = models.CharField(_("source"), max_length=16, choices=StaySource.choices)
    # Drafted rows carry a stable reference (registry:home, checkin:<venue>:<time>) so that re-drafting is a no-op.
    source_ref = models.CharField(_("source reference"), max_length=128, blank=True, default="")
    flag_overlap = models.BooleanField(_("overlaps another stay"), default=False)
    flag_inverted = models.BooleanField(_("ends before it starts"), default=False)
    flag_unknown_venue = models.BooleanField(_("unknown venue code"), default=False)
    publish = models.BooleanField(_("in the public notice"), default=True)
    public_label = models.CharField(_("label in the public notice"), max_length=128, blank=True, default="")
    note = models.TextField(_("note"), blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(_("created"))
    updated_at = models.DateTimeField(_("updated"))

    class Meta:
        verbose_name = _("stay")
        verbose_name_plural = _("stays")
        ordering = ["case", "start", "id"]
        constraints = [
            models.UniqueConstraint(fields=["case", "source_ref"], condition=~models.Q(source_ref=""),
                                    name="tracing_stay_source_ref_uniq"),
        ]
        indexes = [models.Index(fields=["venue", "start"], name="tracing_stay_venue_start")]

    def __str__(self) -> str:
        return f"{self.case_id} {self.kind} {self.start:%Y-%m-%d %H:%M}"

    @property
    def flagged(self) -> bool:
        return self.flag_overlap or self.flag_inverted or self.flag_unknown_venue


class Tier(models.TextChoices):
    CLOSE = "close", _("close contact")
    SECONDARY = "secondary", _("secondary contact")
    COMPANION = "companion", _("space-time companion")


class ContactStatus(models.TextChoices):
    IDENTIFIED = "identified", _("identified")
    NOTIFIED = "notified", _("notified")
    LOCATED = "located", _("located")
    HANDED_OVER = "handed_over", _("handed over (grouping / transfer)")
    IN_QUARANTINE = "in_quarantine", _("in quarantine")
    CLOSED = "closed", _("closed")


class HandedTo(models.TextChoices):
    NONE = "", _("—")
    GROUPING = "grouping", _("grouping")
    TRANSFER = "transfer", _("transfer")


class Contact(models.Model):
    """One person exposed to one or more cases (one row per person). Tier, last exposure and status follow
    jingkong.tracing.rules.merge_contact; ``due_at`` is the earliest transfer deadline of its reasons."""

    person = models.OneToOneField("people.Person", on_delete=models.PROTECT, related_name="tracing_contact",
                                  verbose_name=_("person"))
    tier = models.CharField(_("tier"), max_length=16, choices=Tier.choices)
    status = models.CharField(_("status"), max_length=16, choices=ContactStatus.choices,
                              default=ContactStatus.IDENTIFIED)
    region_code = models.CharField(_("region code"), max_length=32, db_index=True)  # the contact's grid
    queue_region_code = models.CharField(_("queue (region)"), max_length=32, db_index=True)
    last_exposure_at = models.DateTimeField(_("last exposure"), null=True, blank=True)
    first_identified_at = models.DateTimeField(pgettext_lazy("time of", "identified"))
    due_at = models.DateTimeField(_("action due"), null=True, blank=True)
    notified_at = models.DateTimeField(pgettext_lazy("time of", "notified"), null=True, blank=True)
    located_at = models.DateTimeField(pgettext_lazy("time of", "located"), null=True, blank=True)
    handed_over_at = models.DateTimeField(pgettext_lazy("time of", "handed over"), null=True, blank=True)
    handed_to = models.CharField(_("handed to"), max_length=16, choices=HandedTo.choices, blank=True, default="")
    in_quarantine_at = models.DateTimeField(_("in quarantine since"), null=True, blank=True)
    closed_at = models.DateTimeField(pgettext_lazy("time of", "closed"), null=True, blank=True)
    close_reason = models.CharField(_("reason for closing"), max_length=255, blank=True, default="")
    note = models.TextField(_("note"), blank=True, default="")
    created_at = models.DateTimeField(_("created"))
    updated_at = models.DateTimeField(_("updated"))

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        indexes = [
            models.Index(fields=["region_code", "status"], name="tracing_contact_region_status"),
            models.Index(fields=["queue_region_code", "status"], name="tracing_contact_queue"),
        ]

    def __str__(self) -> str:
        return f"contact {self.person_id} ({self.tier}, {self.status})"


class ReasonKind(models.TextChoices):
    HOUSEHOLD = "household", _("same household")
    WORKPLACE = "workplace", _("same workplace")
    VENUE = "venue", _("same venue, overlapping time")
    TRANSPORT = "transport", _("same vehicle")
    COMPANION = "companion", _("space-time companion")
    TRACER = "tracer", _("named by the tracer")


class ContactReason(models.Model):
    """Why a person is a contact of a case: one exposure with its evidence (venue, overlap window, relation)."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="reasons")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="contact_reasons")
    via_contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                    verbose_name=_("via close contact"))
    tier = models.CharField(_("tier"), max_length=16, choices=Tier.choices)
    kind = models.CharField(_("kind"), max_length=16, choices=ReasonKind.choices)
    evidence = models.JSONField(_("evidence"), default=dict, blank=True)
    exposure_start = models.DateTimeField(_("exposure from"), null=True, blank=True)
    exposure_end = models.DateTimeField(_("exposure to"), null=True, blank=True)
    key = models.CharField(max_length=64)  # identity of the exposure: re-runs update instead of duplicating
    digest = models.CharField(max_length=32, blank=True, default="")  # of tier, evidence and window: changed or not
    # False: a later search of the case no longer found this exposure (e.g. the timeline was corrected).
    active = models.BooleanField(_("still supported"), default=True)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")
    created_at = models.DateTimeField(_("created"))

    class Meta:
        verbose_name = _("contact reason")
        verbose_name_plural = _("contact reasons")
        constraints = [models.UniqueConstraint(fields=["contact", "key"], name="tracing_reason_contact_key_uniq")]
        indexes = [models.Index(fields=["case", "kind"], name="tracing_reason_case_kind")]

    def __str__(self) -> str:
        return f"{self.contact_id} ← {self.case_id} ({self.kind})"


class HandoffStatus(models.TextChoices):
    REQUESTED = "requested", _("requested")
    ACCEPTED = "accepted", _("accepted")


class Handoff(models.Model):
    """A contact living outside the case's jurisdiction, handed to the queue of its own region."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="handoffs")
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    from_region_code = models.CharField(_("from region"), max_length=32, db_index=True)
    to_region_code = models.CharField(_("to region"), max_length=32, db_index=True)
    status = models.CharField(_("status"), max_length=16, choices=HandoffStatus.choices,
                              default=HandoffStatus.REQUESTED)
    requested_at = models.DateTimeField(pgettext_lazy("time of", "requested"))
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    accepted_at = models.DateTimeField(pgettext_lazy("time of", "accepted"), null=True, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    note = models.CharField(_("note"), max_length=255, blank=True, default="")

    class Meta:
        verbose_name = _("hand-off")
        verbose_name_plural = _("hand-offs")
        constraints = [models.UniqueConstraint(fields=["contact", "to_region_code"], name="tracing_handoff_uniq")]

    def __str__(self) -> str:
        return f"{self.contact_id}: {self.from_region_code} → {self.to_region_code} ({self.status})"


class LinkStatus(models.TextChoices):
    SUGGESTED = "suggested", _("suggested")
    CONFIRMED = "confirmed", _("confirmed")
    REJECTED = "rejected", _("rejected")


class Confidence(models.TextChoices):
    HIGH = "high", _("high")
    MEDIUM = "medium", _("medium")
    LOW = "low", _("low")


class Link(models.Model):
    """A transmission link infector → infectee, with the evidence behind it."""

    infector = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="links_out", verbose_name=_("infector"))
    infectee = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="links_in", verbose_name=_("infectee"))
    status = models.CharField(_("status"), max_length=16, choices=LinkStatus.choices, default=LinkStatus.SUGGESTED)
    kind = models.CharField(_("main evidence"), max_length=16, blank=True, default="")
    confidence = models.CharField(_("confidence"), max_length=8, choices=Confidence.choices)
    evidence = models.JSONField(_("evidence"), default=list, blank=True)
    exposure_at = models.DateTimeField(_("likely exposure"), null=True, blank=True)
    suggested_at = models.DateTimeField(pgettext_lazy("time of", "suggested"), null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_at = models.DateTimeField(pgettext_lazy("time of", "decided"), null=True, blank=True)
    note = models.TextField(_("note"), blank=True, default="")

    class Meta:
        verbose_name = _("transmission link")
        verbose_name_plural = _("transmission links")
        constraints = [
            models.UniqueConstraint(fields=["infector", "infectee"], name="tracing_link_pair_uniq"),
            models.CheckConstraint(condition=~models.Q(infector=models.F("infectee")), name="tracing_link_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.infector_id} → {self.infectee_id} ({self.status})"


class Setting(models.TextChoices):
    HOUSEHOLD = "household", _("household")
    WORKPLACE = "workplace", _("workplace")
    VENUE = "venue", _("venue")
    TRANSPORT = "transport", _("transport")
    COMMUNITY = "community", _("community")
    MIXED = "mixed", _("mixed")
    UNKNOWN = "unknown", _("unknown")


class Cluster(models.Model):
    """A connected component of confirmed links (聚集性疫情), kept stable as it grows or merges."""

    name = models.CharField(_("name"), max_length=128)
    setting = models.CharField(_("setting"), max_length=16, choices=Setting.choices, default=Setting.UNKNOWN)
    named_by_tracer = models.BooleanField(_("name and setting set by a tracer"), default=False)
    region_code = models.CharField(_("region code"), max_length=32, db_index=True)  # common region of the members
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"))
    updated_at = models.DateTimeField(_("updated"))

    class Meta:
        verbose_name = _("cluster")
        verbose_name_plural = _("clusters")

    def __str__(self) -> str:
        return self.name


class ClusterMember(models.Model):
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="members")
    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="cluster_membership")
    joined_at = models.DateTimeField(_("joined"))

    class Meta:
        verbose_name = _("cluster member")
        verbose_name_plural = _("cluster members")

    def __str__(self) -> str:
        return f"{self.cluster_id}: {self.case_id}"
