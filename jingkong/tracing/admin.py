"""Back office for tracing: read-only.

Cases, contacts and timelines change only through the services (API, pages, the contact-finding job), which audit and
emit events. The lists here carry no names (case number, masked ID number, region, status); opening a case or a
contact is audited like any other read of person data.
"""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from jingkong.access import audit
from jingkong.core.admin_mixins import ReadOnlyAdmin
from jingkong.tracing.models import Case, Cluster, Contact, ContactReason, Handoff, Link, Stay


class _AuditedAdmin(ReadOnlyAdmin):
    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        obj = self.model.objects.filter(pk=object_id).first()
        if obj is not None and response.status_code == 200:
            audit.record(actor=request.user, action="person.view", object_type="people.person",
                         object_id=obj.person_id, region_code=obj.region_code, request=request,
                         detail={"via": "admin", "object": obj._meta.label_lower, "id": obj.pk})
        return response


class StayInline(admin.TabularInline):
    model = Stay
    fields = ("kind", "venue", "place", "start", "end", "source", "flag_overlap", "flag_inverted", "flag_unknown_venue")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Case)
class CaseAdmin(_AuditedAdmin):
    list_display = ("ref", "masked_id", "classification", "status", "found_by", "region_code", "first_positive_at",
                    "contacts_found_at")
    list_filter = ("status", "classification", "found_by", "source_category")
    search_fields = ("ref", "region_code")
    fields = ("ref", "masked_id", "classification", "severity", "onset_date", "first_positive_at", "found_by",
              "source_category", "variant", "current_place", "isolated_at", "status", "region_code", "tracer",
              "created_at", "contacts_found_at")
    readonly_fields = fields
    inlines = [StayInline]
    list_select_related = ("person",)  # the masked ID number of every row in one query

    @admin.display(description=_("ID number (masked)"))
    def masked_id(self, obj):
        return obj.person.id_masked


class ReasonInline(admin.TabularInline):
    model = ContactReason
    fk_name = "contact"
    fields = ("case", "tier", "kind", "exposure_start", "exposure_end", "active", "evidence")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Contact)
class ContactAdmin(_AuditedAdmin):
    list_display = ("pk", "masked_id", "tier", "status", "region_code", "queue_region_code", "last_exposure_at",
                    "due_at")
    list_filter = ("tier", "status")
    search_fields = ("region_code", "queue_region_code")
    fields = ("masked_id", "tier", "status", "region_code", "queue_region_code", "last_exposure_at",
              "first_identified_at", "due_at", "notified_at", "located_at", "handed_over_at", "handed_to",
              "in_quarantine_at", "closed_at", "close_reason")
    readonly_fields = fields
    inlines = [ReasonInline]
    list_select_related = ("person",)

    @admin.display(description=_("ID number (masked)"))
    def masked_id(self, obj):
        return obj.person.id_masked


@admin.register(Handoff)
class HandoffAdmin(ReadOnlyAdmin):
    list_display = ("contact", "from_region_code", "to_region_code", "status", "requested_at", "accepted_at")
    list_filter = ("status",)


@admin.register(Link)
class LinkAdmin(ReadOnlyAdmin):
    list_display = ("infector", "infectee", "status", "kind", "confidence", "suggested_at", "decided_at")
    list_filter = ("status", "confidence", "kind")


@admin.register(Cluster)
class ClusterAdmin(ReadOnlyAdmin):
    list_display = ("name", "setting", "region_code", "active", "updated_at")
    list_filter = ("active", "setting")
