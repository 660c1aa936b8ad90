"""Back office for the directives area: read-only.

Directives, tasks, field workers and problems change only through the services (API, pages, the loop's
subscribers, ``jingkong command escalate``), which audit and emit events; the back office lists them for support.
"""

from __future__ import annotations

from django.contrib import admin

from jingkong.command.models import Directive, FieldWorker, Problem, ProblemUpdate, Task, TaskReport
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
