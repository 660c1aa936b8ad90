"""Back office of the command app (directives, services, supplies): read-only.

Directives, tasks, field workers and problems change only through the services (API, pages, the loop's
subscribers, ``jingkong command escalate``), which audit and emit events; the back office lists them for support.
"""

from __future__ import annotations

from django.contrib import admin

from jingkong.command.models import (
    Depot,
    Directive,
    FieldWorker,
    Problem,
    ProblemUpdate,
    ServiceRequest,
    ServiceUpdate,
    StockLevel,
    StockMovement,
    SupplyItem,
    Task,
    TaskReport,
)
from jingkong.core.admin_mixins import ReadOnlyAdmin


@admin.register(Directive)
class DirectiveAdmin(ReadOnlyAdmin):
    list_display = ("ref", "title", "category", "region_code", "status", "deadline", "issued_at")
    list_filter = ("status", "category")
    search_fields = ("ref", "title")


class TaskReportInline(admin.TabularInline):
    model = TaskReport
    fields = ("at", "by", "status", "count", "note", "photo")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Task)
class TaskAdmin(ReadOnlyAdmin):
    list_display = ("id", "title", "source", "region_code", "level", "status", "deadline", "escalated_to")
    list_filter = ("status", "source", "level")
    search_fields = ("region_code", "source_key", "title")
    raw_id_fields = ("directive", "parent", "assignee", "building")
    inlines = [TaskReportInline]


@admin.register(FieldWorker)
class FieldWorkerAdmin(ReadOnlyAdmin):
    list_display = ("name", "role", "region_code", "active", "user")
    list_filter = ("role", "active")
    search_fields = ("name", "region_code")


class ProblemUpdateInline(admin.TabularInline):
    model = ProblemUpdate
    fields = ("at", "by", "status", "responsible_code", "note")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Problem)
class ProblemAdmin(ReadOnlyAdmin):
    list_display = ("ref", "category", "urgency", "region_code", "responsible_code", "status", "deadline")
    list_filter = ("status", "category", "urgency")
    search_fields = ("ref", "region_code")
    inlines = [ProblemUpdateInline]


# --- services (暖服务) and supplies: read-only as well (writes go through requests.py / supplies.py) ------------------


class ServiceUpdateInline(admin.TabularInline):
    model = ServiceUpdate
    fields = ("at", "by", "status", "note")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ServiceRequest)
class ServiceRequestAdmin(ReadOnlyAdmin):
    # No person name, phone or ID number here: the request number leads to the audited staff page.
    list_display = ("ref", "category", "subcategory", "region_code", "priority", "status", "deadline", "assignee")
    list_filter = ("status", "category", "escort_requested")
    search_fields = ("ref", "region_code")
    fields = ("ref", "category", "subcategory", "submitted_via", "region_code", "vulnerable", "priority", "deadline",
              "status", "assignee", "escort_requested", "submitted_at", "delivered_at", "confirmed_at",
              "satisfaction", "auto_confirmed")
    raw_id_fields = ("assignee",)
    inlines = [ServiceUpdateInline]


@admin.register(SupplyItem)
class SupplyItemAdmin(ReadOnlyAdmin):
    list_display = ("code", "name", "category", "unit", "active")
    list_filter = ("category", "active")
    search_fields = ("code", "name")


@admin.register(Depot)
class DepotAdmin(ReadOnlyAdmin):
    list_display = ("code", "name", "kind", "region_code", "active")
    list_filter = ("kind", "active")
    search_fields = ("code", "name", "region_code")
    raw_id_fields = ("sampling_site",)


@admin.register(StockLevel)
class StockLevelAdmin(ReadOnlyAdmin):
    list_display = ("depot", "item", "quantity", "low_threshold", "updated_at")
    search_fields = ("depot__code", "item__code")
    raw_id_fields = ("depot", "item")


@admin.register(StockMovement)
class StockMovementAdmin(ReadOnlyAdmin):
    list_display = ("at", "depot", "item", "kind", "quantity", "by", "client_key")
    list_filter = ("kind",)
    search_fields = ("depot__code", "item__code", "client_key")
    raw_id_fields = ("depot", "item", "pair")
