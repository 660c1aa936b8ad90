"""快编组 · 快转运 · 快隔离: transfer batches, vehicles and runs, quarantine facilities and rooms, isolation orders.

* :class:`TransferBatch` (编组) — located people waiting for transfer, grouped by pickup point (a household stays
  together, a building's contacts go together), priority, destination type and vehicle capacity;
  :class:`BatchMember` — one person in a batch (with the contact or case it comes from).
* :class:`Vehicle` and :class:`Transfer` (转运) — a vehicle's run: the ordered :class:`TransferStop` rows (pickups and
  drop-offs) planned by the optimiser, editable by the dispatcher, with route polyline and live status; every
  handover timestamped.
* :class:`Facility` (集中隔离场所, designated hospital, shelter) with :class:`Room` rows and :class:`RoomStay`
  (who is in which room, from when to when).
* :class:`IsolationOrder` — one person's isolation: mode (centralised, home quarantine, home health monitoring), the
  stage's start (last exposure), end and test days from the profile, status; the next stage is a new order linked by
  ``previous``. :class:`SymptomCheck` — daily checks.

Region scoping: batches, members, orders carry the person's grid code; vehicles, facilities and transfers the
region code of the unit that runs them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Destination(models.TextChoices):
    HOSPITAL = "hospital", _("designated hospital")
    CENTRAL = "central", _("centralised quarantine")
    HOME = "home", _("home quarantine")
    SEPARATE_SITE = "separate_site", _("separate site")


class BatchStatus(models.TextChoices):
    WAITING = "waiting", _("waiting for a vehicle")
    PLANNED = "planned", _("planned")
    IN_TRANSIT = "in_transit", _("in transit")
    DELIVERED = "delivered", _("delivered")
    CANCELLED = "cancelled", _("cancelled")


class TransferBatch(models.Model):
    ref = models.CharField(_("batch number"), max_length=32, unique=True)
    region_code = models.CharField(_("region code"), max_length=32, db_index=True)
    pickup_building = models.ForeignKey("geo.Building", null=True, blank=True, on_delete=models.PROTECT,
                                        related_name="+", verbose_name=_("pickup building"))
    pickup_lon = models.FloatField(_("pickup longitude"))
    pickup_lat = models.FloatField(_("pickup latitude"))
    pickup_label = models.CharField(_("pickup point"), max_length=255, blank=True, default="")
    destination_type = models.CharField(_("destination type"), max_length=16, choices=Destination.choices)
    facility = models.ForeignKey("isolation.Facility", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="batches", verbose_name=_("facility"))
    priority = models.PositiveSmallIntegerField(_("priority (1 = first)"), default=5)
    size = models.PositiveSmallIntegerField(_("people"), default=0)
    needs_accessible = models.BooleanField(_("needs an accessible vehicle or room"), default=False)
    status = models.CharField(_("status"), max_length=16, choices=BatchStatus.choices, default=BatchStatus.WAITING)
    due_at = models.DateTimeField(_("transfer due"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"))
    updated_at = models.DateTimeField(_("updated"))
    # Added by the transfer feature: a vulnerable member without a carer in the batch, and why a batch still waits.
    needs_carer = models.BooleanField(_("needs a carer"), default=False)
    wait_reason = models.CharField(_("why still waiting"), max_length=64, blank=True, default="")

    class Meta:
        verbose_name = _("transfer batch")
        verbose_name_plural = _("transfer batches")
        ordering = ["priority", "created_at"]

    def __str__(self) -> str:
        return str(self.ref)


class MemberRole(models.TextChoices):
    CASE = "case", _("case")
    CLOSE = "close", _("close contact")
    SECONDARY = "secondary", _("secondary contact")
    CARER = "carer", _("carer")
    OTHER = "other", _("other")


class BatchMember(models.Model):
    batch = models.ForeignKey(TransferBatch, on_delete=models.CASCADE, related_name="members",
                              verbose_name=_("batch"))
    person = models.ForeignKey("people.Person", on_delete=models.PROTECT, related_name="+", verbose_name=_("person"))
    contact = models.ForeignKey("tracing.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    case = models.ForeignKey("tracing.Case", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    role = models.CharField(_("role"), max_length=16, choices=MemberRole.choices)
    household = models.ForeignKey("people.Household", null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    region_code = models.CharField(_("region code"), max_length=32, db_index=True)
    picked_up_at = models.DateTimeField(pgettext_lazy("time of", "picked up"), null=True, blank=True)
    arrived_at = models.DateTimeField(pgettext_lazy("time of", "arrived"), null=True, blank=True)
    removed_at = models.DateTimeField(_("removed from the batch"), null=True, blank=True)

    class Meta:
        verbose_name = _("batch member")
        verbose_name_plural = _("batch members")
        constraints = [models.UniqueConstraint(fields=["batch", "person"], name="isolation_member_unique")]

    def __str__(self) -> str:
        return f"BatchMember {self.pk} (person {self.person_id})"


class VehicleType(models.TextChoices):
    BUS = "bus", _("bus")
    MINIBUS = "minibus", _("minibus")
    AMBULANCE = "ambulance", _("negative-pressure ambulance")
    CAR = "car", _("car")


class Disinfection(models.TextChoices):
    CLEAN = "clean", _("disinfected")
    DUE = "due", _("disinfection due")


class Vehicle(models.Model):
    code = models.CharField(_("code"), max_length=32, unique=True)
    plate = models.CharField(_("plate"), max_length=16)
    type = models.CharField(_("type"), max_length=16, choices=VehicleType.choices)
    seats = models.PositiveSmallIntegerField(_("seats for passengers"))
    accessible = models.BooleanField(_("wheelchair accessible"), default=False)
    depot_lon = models.FloatField(_("depot longitude"))
    depot_lat = models.FloatField(_("depot latitude"))
    depot_label = models.CharField(_("depot"), max_length=255, blank=True, default="")
    driver_name = models.CharField(_("driver"), max_length=64, blank=True, default="")
    driver_phone = models.CharField(_("driver phone"), max_length=20, blank=True, default="")
    region_code = models.CharField(_("region code"), max_length=32, db_index=True)
    disinfection = models.CharField(_("disinfection"), max_length=8, choices=Disinfection.choices,
                                    default=Disinfection.CLEAN)
    available = models.BooleanField(_("available"), default=True)

    class Meta:
        verbose_name = _("vehicle")
        verbose_name_plural = _("vehicles")
        ordering = ["code"]

    def __str__(self) -> str:
        return str(self.code)


class TransferStatus(models.TextChoices):
    PLANNED = "planned", _("planned")
    DISPATCHED = "dispatched", _("dispatched")
    AT_PICKUP = "at_pickup", _("at pickup")
    PICKED_UP = "picked_up", _("picked up")
    ARRIVED = "arrived", _("arrived")
    CANCELLED = "cancelled", _("cancelled")


class Transfer(models.Model):
    ref = models.CharField(_("run number"), max_length=32, unique=True)
    vehicle = models.ForeignKey(Vehicle, on_delete=models.PROTECT, related_name="transfers",
                                verbose_name=_("vehicle"))
    region_code = models.CharField(_("region code"), max_length=32, db_index=True)
    status = models.CharField(_("status"), max_length=16, choices=TransferStatus.choices,
                              default=TransferStatus.PLANNED)
    plan_id = models.CharField(_("plan"), max_length=32, blank=True, default="")
    route = models.JSONField(_("route (GeoJSON LineString)"), null=True, blank=True)
    distance_m = models.PositiveIntegerField(_("distance (m)"), default=0)
    planned_start = models.DateTimeField(_("planned start"), null=True, blank=True)
    planned_end = models.DateTimeField(_("planned arrival"), null=True, blank=True)
    dispatched_at = models.DateTimeField(pgettext_lazy("time of", "dispatched"), null=True, blank=True)
    arrived_at = models.DateTimeField(pgettext_lazy("time of", "arrived"), null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(_("created"))
    updated_at = models.DateTimeField(_("updated"))

    class Meta:
        verbose_name = _("transfer run")
        verbose_name_plural = _("transfer runs")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return str(self.ref)


class StopKind(models.TextChoices):
    PICKUP = "pickup", _("pickup")
    DROPOFF = "dropoff", _("drop-off")


class TransferStop(models.Model):
    transfer = models.ForeignKey(Transfer, on_delete=models.CASCADE, related_name="stops")
    seq = models.PositiveSmallIntegerField(_("order"))
    kind = models.CharField(_("kind"), max_length=8, choices=StopKind.choices)
    batch = models.ForeignKey(TransferBatch, on_delete=models.PROTECT, related_name="stops")
    facility = models.ForeignKey("isolation.Facility", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")
    lon = models.FloatField()
    lat = models.FloatField()
    eta = models.DateTimeField(_("expected"), null=True, blank=True)
    done_at = models.DateTimeField(_("done"), null=True, blank=True)
    arrived_at = models.DateTimeField(_("vehicle at the stop"), null=True, blank=True)  # added by the transfer feature

    class Meta:
        ordering = ["transfer", "seq"]
        constraints = [models.UniqueConstraint(fields=["transfer", "seq"], name="isolation_stop_seq")]

    def __str__(self) -> str:
        return f"TransferStop {self.pk}"


class TransferRefCounter(models.Model):
    """Last number handed out per kind ("TB" batches, "TR" runs) and local day; locked while numbers are taken (which
    also serialises grouping runs, so two at once never put a person into two batches)."""

    kind = models.CharField(max_length=4)
    day = models.DateField()
    last = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "day"], name="isolation_transfer_ref_unique")]

    def __str__(self) -> str:
        return f"{self.kind} {self.day}: {self.last}"


class FacilityKind(models.TextChoices):
    QUARANTINE_HOTEL = "quarantine_hotel", _("quarantine hotel")
    DESIGNATED_HOSPITAL = "designated_hospital", _("designated hospital")
    SHELTER = "shelter", _("shelter (方舱)")


class Facility(models.Model):
    code = models.CharField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=255)
    kind = models.CharField(_("kind"), max_length=24, choices=FacilityKind.choices)
    region_code = models.CharField(_("region code"), max_length=32, db_index=True)
    lon = models.FloatField(_("longitude"))
    lat = models.FloatField(_("latitude"))
    address = models.CharField(_("address"), max_length=255, blank=True, default="")
    staff = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="facilities",
                                   verbose_name=_("staff"))
    mixing_tiers_forbidden = models.BooleanField(_("no mixing of risk tiers on a floor"), default=True)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("facility")
        verbose_name_plural = _("facilities")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class RoomKind(models.TextChoices):
    SINGLE = "single", _("single")
    FAMILY = "family", _("family")
    ACCESSIBLE = "accessible", _("accessible")


class RoomState(models.TextChoices):
    FREE = "free", _("free")
    RESERVED = "reserved", _("reserved")
    OCCUPIED = "occupied", _("occupied")
    CLEANING = "cleaning", _("cleaning")
    OUT_OF_SERVICE = "out_of_service", _("out of service")


class Room(models.Model):
    facility = models.ForeignKey(Facility, on_delete=models.CASCADE, related_name="rooms")
    number = models.CharField(_("room"), max_length=16)
    floor = models.SmallIntegerField(_("floor"))
    kind = models.CharField(_("kind"), max_length=16, choices=RoomKind.choices)
    beds = models.PositiveSmallIntegerField(_("beds"), default=1)
    state = models.CharField(_("state"), max_length=16, choices=RoomState.choices, default=RoomState.FREE)
    state_since = models.DateTimeField(_("state since"))

    class Meta:
        verbose_name = _("room")
        verbose_name_plural = _("rooms")
        ordering = ["facility", "floor", "number"]
        constraints = [models.UniqueConstraint(fields=["facility", "number"], name="isolation_room_unique")]
        indexes = [models.Index(fields=["facility", "state"], name="isolation_room_state")]

    def __str__(self) -> str:
        return str(self.number)


class RoomStay(models.Model):
    room = models.ForeignKey(Room, on_delete=models.PROTECT, related_name="stays")
    person = models.ForeignKey("people.Person", on_delete=models.PROTECT, related_name="+")
    tier = models.CharField(_("tier"), max_length=16, choices=MemberRole.choices)
    region_code = models.CharField(_("region code"), max_length=32, db_index=True)
    reserved_at = models.DateTimeField(_("reserved"))
    checked_in_at = models.DateTimeField(_("checked in"), null=True, blank=True)
    checked_out_at = models.DateTimeField(_("checked out"), null=True, blank=True)

    class Meta:
        verbose_name = _("room stay")
        verbose_name_plural = _("room stays")
        constraints = [
            models.UniqueConstraint(fields=["person"], condition=models.Q(checked_out_at__isnull=True),
                                    name="isolation_one_open_stay"),
        ]

    def __str__(self) -> str:
        return f"RoomStay {self.pk} (person {self.person_id})"


class IsolationMode(models.TextChoices):
    CENTRAL = "central", _("centralised quarantine")
    HOME_QUARANTINE = "home_quarantine", _("home quarantine")
    HOME_MONITORING = "home_monitoring", _("home health monitoring")
    HOSPITAL = "hospital", _("designated hospital")


class OrderStatus(models.TextChoices):
    ACTIVE = "active", _("active")
    RELEASED = "released", _("released")
    CONVERTED = "converted", _("became a case")
    CANCELLED = "cancelled", _("cancelled")


class IsolationOrder(models.Model):
    """One stage of one person's isolation. The health-code feature reads active orders: ``mode`` central or hospital
    → red, home_quarantine → red, home_monitoring → yellow (as the profile's code rules say), until ``ends_on``."""

    person = models.ForeignKey("people.Person", on_delete=models.PROTECT, related_name="isolation_orders",
                               verbose_name=_("person"))
    contact = models.ForeignKey("tracing.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    case = models.ForeignKey("tracing.Case", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    tier = models.CharField(_("tier"), max_length=16, choices=MemberRole.choices)
    mode = models.CharField(_("mode"), max_length=16, choices=IsolationMode.choices)
    status = models.CharField(_("status"), max_length=16, choices=OrderStatus.choices, default=OrderStatus.ACTIVE)
    region_code = models.CharField(_("region code"), max_length=32, db_index=True)
    counted_from = models.DateField(_("counted from (last exposure)"))
    starts_on = models.DateField(_("first day"))
    ends_on = models.DateField(_("last day"))
    test_days = models.JSONField(_("test days"), default=list, blank=True)
    facility = models.ForeignKey(Facility, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders")
    previous = models.OneToOneField("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="next")
    profile = models.ForeignKey("policy.PolicyProfile", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="+")
    released_at = models.DateTimeField(pgettext_lazy("time of", "released"), null=True, blank=True)
    extended_days = models.PositiveSmallIntegerField(_("days added"), default=0)
    note = models.TextField(_("note"), blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(_("created"))
    updated_at = models.DateTimeField(_("updated"))

    class Meta:
        verbose_name = _("isolation order")
        verbose_name_plural = _("isolation orders")
        ordering = ["-starts_on"]
        constraints = [
            models.UniqueConstraint(fields=["person"], condition=models.Q(status="active"),
                                    name="isolation_one_active_order"),
        ]
        indexes = [models.Index(fields=["status", "ends_on"], name="isolation_order_status_end")]

    def __str__(self) -> str:
        return f"IsolationOrder {self.pk} (person {self.person_id})"


class SymptomCheck(models.Model):
    order = models.ForeignKey(IsolationOrder, on_delete=models.CASCADE, related_name="checks")
    day = models.PositiveSmallIntegerField(_("day"))
    checked_at = models.DateTimeField(_("checked"))
    temperature = models.DecimalField(_("temperature (°C)"), max_digits=4, decimal_places=1, null=True, blank=True)
    symptoms = models.JSONField(_("symptoms"), default=list, blank=True)
    note = models.TextField(_("note"), blank=True, default="")
    checked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        verbose_name = _("symptom check")
        verbose_name_plural = _("symptom checks")
        constraints = [models.UniqueConstraint(fields=["order", "day"], name="isolation_check_day")]

    def __str__(self) -> str:
        return f"SymptomCheck {self.pk}"
