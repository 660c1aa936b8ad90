"""指令一贯到底 and 暖服务: directives that cascade to every grid, tasks, field workers, problems found, service
requests from people under lockdown, and supplies.

* A :class:`Directive` is issued by a commander (or any level for its own subtree) to one or more regions; it
  cascades down the region tree as :class:`Task` rows — one per sub-region down to the grid (``parent`` links the
  chain) — each acknowledged, worked and reported done with evidence (:class:`TaskReport`). Progress rolls up level
  by level; an overdue task escalates to the level above (``escalated_at``/``escalated_to``).
* Tasks are also created automatically by the loop (``source`` names the producer: sweep untested households, retest
  pool-positive people, locate a contact, deliver to a lockdown household), landing with the worker covering the place.
* :class:`FieldWorker` — grid workers, building captains (楼道长) and volunteers, with the regions (and buildings) they
  cover; a task may be reassigned.
* :class:`Problem` (发现问题) — a field report routed to the responsible level and tracked to resolution
  (:class:`ProblemUpdate`).
* :class:`ServiceRequest` (暖服务) — medicine, medical visit, food, garbage, psychological support… with priority and
  deadline from the profile, routed to the grid's workers and volunteers; :class:`ServiceUpdate` is its history.
* Supplies (物资保障): :class:`SupplyItem`, :class:`Depot` (sites and depots), :class:`StockLevel`,
  :class:`StockMovement` (receipts, consumption, transfers), with low-stock thresholds.

Region scoping: everything carries ``region_code`` (the task's region, the problem's or request's grid, the depot's
region); selectors filter with ``Scope.q("region_code")``; a volunteer sees only what is assigned to them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class DirectiveCategory(models.TextChoices):
    SAMPLING_SWEEP = "sampling_sweep", _("sampling sweep")
    ZONE_ENFORCEMENT = "zone_enforcement", _("zone enforcement")
    CONTACT_LOCATING = "contact_locating", _("locating contacts")
    SUPPLY = "supply", _("supply")
    SERVICE = "service", _("services for residents")
    PUBLICITY = "publicity", _("publicity")
    OTHER = "other", _("other")


class DirectiveStatus(models.TextChoices):
    OPEN = "open", pgettext_lazy("work item", "open")
    DONE = "done", _("done")
    CANCELLED = "cancelled", _("cancelled")


class Directive(models.Model):
    ref = models.CharField(_("directive number"), max_length=32, unique=True)
    title = models.CharField(_("title"), max_length=255)
    text = models.TextField(_("text"))
    category = models.CharField(_("category"), max_length=24, choices=DirectiveCategory.choices)
    region_code = models.CharField(_("issued by region"), max_length=32, db_index=True)
    deadline = models.DateTimeField(_("deadline"))
    status = models.CharField(_("status"), max_length=16, choices=DirectiveStatus.choices,
                              default=DirectiveStatus.OPEN)
    attachments = models.JSONField(_("attachments"), default=list, blank=True)
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+",
                                  verbose_name=_("issued by"))
    issued_at = models.DateTimeField(_("issued"))
    updated_at = models.DateTimeField(_("updated"))
    # Added in 0004_submission_keys: the form's random submission key; issuing twice (a double tap, a resend after a
    # timeout) answers the first directive instead of cascading a second set of tasks.
    client_key = models.CharField(_("submission key"), max_length=64, blank=True, default="")

    class Meta:
        verbose_name = _("directive")
        verbose_name_plural = _("directives")
        ordering = ["-issued_at"]
        constraints = [models.UniqueConstraint(fields=["issued_by", "client_key"], condition=~models.Q(client_key=""),
                                               name="command_directive_once")]

    def __str__(self) -> str:
        return str(self.ref)


class TaskSource(models.TextChoices):
    DIRECTIVE = "directive", _("directive")
    SWEEP_UNTESTED = "sweep_untested", _("sweep untested households")
    RETEST_POOL = "retest_pool", _("retest pool-positive people")
    LOCATE_CONTACT = "locate_contact", _("locate a contact")
    DELIVER = "deliver", _("deliver to a lockdown household")
    SERVICE = "service", _("service request")
    PROBLEM = "problem", _("problem found")


class TaskStatus(models.TextChoices):
    ASSIGNED = "assigned", _("assigned")
    ACKNOWLEDGED = "acknowledged", _("acknowledged")
    IN_PROGRESS = "in_progress", _("in progress")
    DONE = "done", _("done")
    CANCELLED = "cancelled", _("cancelled")


class Task(models.Model):
    directive = models.ForeignKey(Directive, null=True, blank=True, on_delete=models.CASCADE, related_name="tasks",
                                  verbose_name=_("directive"))
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children",
                               verbose_name=_("parent task"))
    source = models.CharField(_("source"), max_length=16, choices=TaskSource.choices, default=TaskSource.DIRECTIVE)
    source_key = models.CharField(_("source reference"), max_length=64, blank=True, default="")
    title = models.CharField(_("title"), max_length=255)
    region_code = models.CharField(_("region code"), max_length=32, db_index=True)
    level = models.CharField(_("level"), max_length=16)
    building = models.ForeignKey("geo.Building", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    assignee = models.ForeignKey("command.FieldWorker", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="tasks", verbose_name=_("assigned to"))
    status = models.CharField(_("status"), max_length=16, choices=TaskStatus.choices, default=TaskStatus.ASSIGNED)
    deadline = models.DateTimeField(_("deadline"))
    target_count = models.PositiveIntegerField(_("target"), default=0)
    done_count = models.PositiveIntegerField(_("done"), default=0)
    acknowledged_at = models.DateTimeField(pgettext_lazy("time of", "acknowledged"), null=True, blank=True)
    done_at = models.DateTimeField(pgettext_lazy("time of", "done"), null=True, blank=True)
    escalated_at = models.DateTimeField(_("escalated"), null=True, blank=True)
    escalated_to = models.CharField(_("escalated to region"), max_length=32, blank=True, default="")
    payload = models.JSONField(_("detail"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created"))
    updated_at = models.DateTimeField(_("updated"))

    class Meta:
        verbose_name = _("task")
        verbose_name_plural = _("tasks")
        ordering = ["deadline"]
        indexes = [
            models.Index(fields=["assignee", "status"], name="command_task_assignee"),
            models.Index(fields=["directive", "region_code"], name="command_task_directive"),
            models.Index(fields=["status", "deadline"], name="command_task_status_due"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["source", "source_key"], condition=~models.Q(source_key=""),
                                    name="command_task_source_once"),
        ]

    def __str__(self) -> str:
        return str(self.title)


class TaskReport(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="reports")
    at = models.DateTimeField(_("time"))
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(_("status"), max_length=16, choices=TaskStatus.choices)
    count = models.PositiveIntegerField(_("count"), null=True, blank=True)
    note = models.TextField(_("note"), blank=True, default="")
    photo = models.CharField(_("photo (stored file)"), max_length=255, blank=True, default="")

    class Meta:
        ordering = ["task", "at", "id"]

    def __str__(self) -> str:
        return f"TaskReport {self.pk}"


class WorkerRole(models.TextChoices):
    GRID_WORKER = "grid_worker", _("grid worker")
    BUILDING_CAPTAIN = "building_captain", _("building captain (楼道长)")
    VOLUNTEER = "volunteer", _("volunteer")


class FieldWorker(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="field_worker", verbose_name=_("account"))
    name = models.CharField(_("name"), max_length=64)
    phone = models.CharField(_("phone"), max_length=20, blank=True, default="")
    role = models.CharField(_("role"), max_length=16, choices=WorkerRole.choices)
    region_code = models.CharField(_("grid"), max_length=32, db_index=True)
    buildings = models.ManyToManyField("geo.Building", blank=True, related_name="+", verbose_name=_("buildings"))
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("field worker")
        verbose_name_plural = _("field workers")
        ordering = ["region_code", "role", "name"]

    def __str__(self) -> str:
        return str(self.name)


class ProblemCategory(models.TextChoices):
    MOVEMENT_IN_LOCKDOWN = "movement_in_lockdown", _("people moving in a lockdown zone")
    UNMANNED_POST = "unmanned_post", _("unmanned post")
    QUEUE_TOO_LONG = "queue_too_long", _("queue too long")
    SUPPLY_SHORTAGE = "supply_shortage", _("supply shortage")
    DATA_ERROR = "data_error", _("data error")
    OTHER = "other", _("other")


class Urgency(models.TextChoices):
    NORMAL = "normal", _("normal")
    URGENT = "urgent", _("urgent")
    CRITICAL = "critical", _("critical")


class ProblemStatus(models.TextChoices):
    OPEN = "open", pgettext_lazy("work item", "open")
    IN_PROGRESS = "in_progress", _("in progress")
    RESOLVED = "resolved", _("resolved")
    REJECTED = "rejected", _("not a problem")


class Problem(models.Model):
    ref = models.CharField(_("problem number"), max_length=32, unique=True)
    category = models.CharField(_("category"), max_length=24, choices=ProblemCategory.choices)
    description = models.TextField(_("description"))
    urgency = models.CharField(_("urgency"), max_length=8, choices=Urgency.choices, default=Urgency.NORMAL)
    region_code = models.CharField(_("region code"), max_length=32, db_index=True)
    responsible_code = models.CharField(_("responsible region"), max_length=32, db_index=True)
    lon = models.FloatField(_("longitude"), null=True, blank=True)
    lat = models.FloatField(_("latitude"), null=True, blank=True)
    photo = models.CharField(_("photo (stored file)"), max_length=255, blank=True, default="")
    status = models.CharField(_("status"), max_length=16, choices=ProblemStatus.choices, default=ProblemStatus.OPEN)
    deadline = models.DateTimeField(_("deadline"))
    reported_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                    related_name="+", verbose_name=_("reported by"))
    reported_at = models.DateTimeField(_("reported"))
    resolved_at = models.DateTimeField(pgettext_lazy("time of", "resolved"), null=True, blank=True)
    resolution = models.TextField(_("resolution"), blank=True, default="")
    # Added in 0004_submission_keys: reporting twice with the same key answers the first problem.
    client_key = models.CharField(_("submission key"), max_length=64, blank=True, default="")

    class Meta:
        verbose_name = _("problem")
        verbose_name_plural = _("problems")
        ordering = ["-reported_at"]
        indexes = [models.Index(fields=["status", "category"], name="command_problem_status")]
        constraints = [models.UniqueConstraint(fields=["reported_by", "client_key"],
                                               condition=~models.Q(client_key=""), name="command_problem_once")]

    def __str__(self) -> str:
        return str(self.ref)


class ProblemUpdate(models.Model):
    problem = models.ForeignKey(Problem, on_delete=models.CASCADE, related_name="updates")
    at = models.DateTimeField(_("time"))
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(_("status"), max_length=16, choices=ProblemStatus.choices)
    responsible_code = models.CharField(_("responsible region"), max_length=32, blank=True, default="")
    note = models.TextField(_("note"), blank=True, default="")

    class Meta:
        ordering = ["problem", "at", "id"]

    def __str__(self) -> str:
        return f"ProblemUpdate {self.pk}"


class ServiceCategory(models.TextChoices):
    MEDICINE = "medicine", _("medicine")
    MEDICAL_VISIT = "medical_visit", _("medical visit")
    FOOD = "food", _("food and daily needs")
    GARBAGE = "garbage", _("garbage pickup")
    PSYCHOLOGICAL = "psychological", _("psychological support")
    OTHER = "other", _("other")


class ServiceStatus(models.TextChoices):
    SUBMITTED = "submitted", _("submitted")
    ASSIGNED = "assigned", _("assigned")
    IN_PROGRESS = "in_progress", _("on the way")
    DELIVERED = "delivered", _("delivered")
    CONFIRMED = "confirmed", _("confirmed by the resident")
    CANCELLED = "cancelled", _("cancelled")


class ServiceRequest(models.Model):
    ref = models.CharField(_("request number"), max_length=32, unique=True)
    person = models.ForeignKey("people.Person", on_delete=models.PROTECT, related_name="+", verbose_name=_("person"))
    category = models.CharField(_("category"), max_length=16, choices=ServiceCategory.choices)
    subcategory = models.CharField(_("detail"), max_length=32, blank=True, default="")
    description = models.TextField(_("description"), blank=True, default="")
    submitted_via = models.CharField(_("submitted via"), max_length=16, default="resident")
    region_code = models.CharField(_("region code"), max_length=32, db_index=True)
    vulnerable = models.PositiveSmallIntegerField(_("vulnerable groups"), default=0)
    priority = models.PositiveSmallIntegerField(_("priority (1 = first)"), default=5)
    deadline = models.DateTimeField(_("deadline"))
    status = models.CharField(_("status"), max_length=16, choices=ServiceStatus.choices,
                              default=ServiceStatus.SUBMITTED)
    assignee = models.ForeignKey(FieldWorker, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="service_requests", verbose_name=_("assigned to"))
    escort_requested = models.BooleanField(_("escort or transfer requested"), default=False)
    submitted_at = models.DateTimeField(_("submitted"))
    delivered_at = models.DateTimeField(pgettext_lazy("time of", "delivered"), null=True, blank=True)
    confirmed_at = models.DateTimeField(pgettext_lazy("time of", "confirmed"), null=True, blank=True)
    satisfaction = models.PositiveSmallIntegerField(_("satisfaction (1–5)"), null=True, blank=True)
    client_key = models.CharField(_("submission key"), max_length=64, blank=True, default="")
    # Added with the services feature (migration 0002_services): the phone to call back (a relative's or the
    # resident's own; the status page accepts it or the registry phone) and whether the closure was automatic
    # (no answer from the resident within the profile's confirmation window).
    contact_phone = models.CharField(_("phone to call back"), max_length=20, blank=True, default="")
    auto_confirmed = models.BooleanField(_("closed without the resident's answer"), default=False)

    class Meta:
        verbose_name = _("service request")
        verbose_name_plural = _("service requests")
        ordering = ["priority", "deadline"]
        indexes = [models.Index(fields=["status", "deadline"], name="command_service_status_due"),
                   models.Index(fields=["assignee", "status"], name="command_service_assignee")]
        constraints = [models.UniqueConstraint(fields=["person", "client_key"], condition=~models.Q(client_key=""),
                                               name="command_service_once")]

    def __str__(self) -> str:
        return str(self.ref)


class ServiceUpdate(models.Model):
    request = models.ForeignKey(ServiceRequest, on_delete=models.CASCADE, related_name="updates")
    at = models.DateTimeField(_("time"))
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                           related_name="+")
    status = models.CharField(_("status"), max_length=16, choices=ServiceStatus.choices)
    note = models.TextField(_("note"), blank=True, default="")

    class Meta:
        ordering = ["request", "at", "id"]

    def __str__(self) -> str:
        return f"ServiceUpdate {self.pk}"


class SupplyCategory(models.TextChoices):
    TEST_KIT = "test_kit", _("test kits")
    TUBE = "tube", _("sampling tubes")
    PROTECTIVE = "protective", _("protective gear")
    FOOD = "food", _("food packages")
    MEDICINE = "medicine", _("medicine")
    OTHER = "other", _("other")


class SupplyItem(models.Model):
    code = models.CharField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=128)
    category = models.CharField(_("category"), max_length=16, choices=SupplyCategory.choices)
    unit = models.CharField(_("unit"), max_length=16)
    # Added in 0003_supply_item_active: an item no longer stocked (no receipts); its history and stock stay.
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("supply item")
        verbose_name_plural = _("supply items")
        ordering = ["category", "code"]

    def __str__(self) -> str:
        return str(self.code)


class DepotKind(models.TextChoices):
    DEPOT = "depot", _("depot")
    SITE = "site", _("site")


class Depot(models.Model):
    code = models.CharField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=128)
    region_code = models.CharField(_("region code"), max_length=32, db_index=True)
    lon = models.FloatField(_("longitude"), null=True, blank=True)
    lat = models.FloatField(_("latitude"), null=True, blank=True)
    sampling_site = models.ForeignKey("testing.SamplingSite", null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="+", verbose_name=_("sampling site"))
    kind = models.CharField(_("kind"), max_length=8, choices=DepotKind.choices, default=DepotKind.DEPOT)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("depot")
        verbose_name_plural = _("depots")
        ordering = ["code"]

    def __str__(self) -> str:
        return str(self.code)


class StockLevel(models.Model):
    depot = models.ForeignKey(Depot, on_delete=models.CASCADE, related_name="stock")
    item = models.ForeignKey(SupplyItem, on_delete=models.PROTECT, related_name="+")
    quantity = models.IntegerField(_("in stock"), default=0)
    low_threshold = models.PositiveIntegerField(_("low-stock threshold"), default=0)
    updated_at = models.DateTimeField(_("updated"))

    class Meta:
        constraints = [models.UniqueConstraint(fields=["depot", "item"], name="command_stock_unique")]

    def __str__(self) -> str:
        return f"StockLevel {self.pk}"


class MovementKind(models.TextChoices):
    RECEIPT = "receipt", _("received")
    CONSUMPTION = "consumption", _("used")
    TRANSFER_OUT = "transfer_out", _("sent to another depot")
    TRANSFER_IN = "transfer_in", _("received from another depot")
    ADJUSTMENT = "adjustment", _("stock count adjustment")


class StockMovement(models.Model):
    depot = models.ForeignKey(Depot, on_delete=models.CASCADE, related_name="movements")
    item = models.ForeignKey(SupplyItem, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(_("kind"), max_length=16, choices=MovementKind.choices)
    quantity = models.IntegerField(_("quantity"))
    at = models.DateTimeField(_("time"))
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    client_key = models.CharField(_("submission key"), max_length=64, blank=True, default="")
    note = models.TextField(_("note"), blank=True, default="")
    # A transfer is a pair: the transfer_out row (holding the client_key) and its transfer_in row point at each other.
    pair = models.OneToOneField("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                verbose_name=_("other half of the transfer"))
    # Added in 0005_movement_counted: the counted stock of an adjustment (a resend with the same key must name the
    # same count; the signed quantity alone depends on the stock at the time).
    counted = models.IntegerField(_("counted stock"), null=True, blank=True)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["depot", "item", "kind", "at"], name="command_movement_daily")]
        constraints = [models.UniqueConstraint(fields=["client_key"], condition=~models.Q(client_key=""),
                                               name="command_movement_once")]

    def __str__(self) -> str:
        return f"StockMovement {self.pk}"
