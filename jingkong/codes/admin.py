"""Back office for health codes: read-only.

Codes change only through the engine (rules, events, the recompute job) and overrides only through the services
(API and pages), which audit and emit events. Lists carry no names (masked ID number, region, colour); opening a code
or an override is audited like any other read of person data.
"""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from jingkong.access import audit
from jingkong.codes.models import Arrival, CodeOverride, FeverReferral, HealthCode
from jingkong.core.admin_mixins import ReadOnlyAdmin


class _AuditedAdmin(ReadOnlyAdmin):
    list_select_related = ("person",)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        obj = self.model.objects.filter(pk=object_id).first() if str(object_id).isdigit() else None
        if obj is not None and response.status_code == 200:
            audit.record(actor=request.user, action="person.view", object_type="people.person",
                         object_id=obj.person_id, region_code=obj.region_code, request=request,
                         detail={"via": "admin", "object": obj._meta.label_lower, "id": obj.pk})
        return response

    @admin.display(description=_("ID number (masked)"))
    def masked_id(self, obj):
        return obj.person.id_masked


@admin.register(HealthCode)
class HealthCodeAdmin(_AuditedAdmin):
    list_display = ("person_id", "masked_id", "colour", "rule_id", "green_on", "overridden", "region_code", "changed_at")
    list_filter = ("colour", "overridden")
    search_fields = ("region_code", "rule_id")
    fields = ("masked_id", "colour", "rule_id", "reasons", "green_on", "overridden", "region_code", "profile",
              "computed_at", "changed_at")
    readonly_fields = fields


@admin.register(CodeOverride)
class CodeOverrideAdmin(_AuditedAdmin):
    list_display = ("id", "masked_id", "colour", "starts_at", "expires_at", "revoked_at", "created_by", "region_code")
    list_filter = ("colour",)
    search_fields = ("region_code",)
    fields = ("masked_id", "colour", "reason", "starts_at", "expires_at", "created_by", "revoked_at", "revoked_by",
              "region_code")
    readonly_fields = fields


@admin.register(Arrival)
class ArrivalAdmin(_AuditedAdmin):
    list_display = ("id", "masked_id", "origin_code", "origin_name", "arrived_at", "source", "region_code")
    list_filter = ("source",)
    search_fields = ("origin_code", "region_code")
    fields = ("masked_id", "origin_code", "origin_name", "arrived_at", "source", "region_code", "created_at")
    readonly_fields = fields


@admin.register(FeverReferral)
class FeverReferralAdmin(_AuditedAdmin):
    list_display = ("id", "masked_id", "temperature", "measured_at", "status", "region_code", "closed_at")
    list_filter = ("status",)
    search_fields = ("region_code",)
    fields = ("masked_id", "temperature", "measured_at", "venue", "checkpoint", "status", "region_code", "closed_at",
              "note")
    readonly_fields = fields
