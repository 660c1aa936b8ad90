"""Back office for testing (lab side; other areas may append their registrations below).

Labs are edited here (name, capacity, target, active, technicians); an edit is evented and a change of technicians is
audited like the API does. The chain of custody, tubes, results, retest tasks and person states are read-only: they
change only through the services (a wrong result is never overwritten by hand). Opening a retest task or a person's
testing state shows person data and is audited like a person read.
"""

from __future__ import annotations

from django.contrib import admin
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from jingkong.access import audit
from jingkong.access.roles import Role
from jingkong.core.admin_mixins import ReadOnlyAdmin
from jingkong.testing.models import Lab, PersonTestState, RetestTask, TransportBatch, Tube, TubeResult


@admin.register(Lab)
class LabAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "region_code", "capacity_per_hour", "target_hours", "active", "technician_count")
    list_filter = ("active",)
    search_fields = ("code", "name")
    fields = ("code", "name", "region", "capacity_per_hour", "target_hours", "active", "technicians")
    filter_horizontal = ("technicians",)
    raw_id_fields = ("region",)
    actions = None

    def get_readonly_fields(self, request, obj=None):
        return ("code", "region") if obj is not None else ()

    def has_delete_permission(self, request, obj=None):
        return False  # results and batches refer to labs: deactivate instead

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "technicians":
            from jingkong.access.models import User

            kwargs["queryset"] = User.objects.filter(role=Role.LAB_TECHNICIAN, is_active=True).order_by("username")
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    @admin.display(description=_("technicians"))
    def technician_count(self, obj):
        return obj.technicians.count()

    def save_model(self, request, obj, form, change):
        obj.region_code = obj.region.code
        request._jk_lab_before = sorted(obj.technicians.values_list("username", flat=True)) if change else []
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        from jingkong.testing.labs import _record

        with transaction.atomic():
            super().save_related(request, form, formsets, change)
            lab = form.instance
            after = sorted(lab.technicians.values_list("username", flat=True))
            detail = {"changed": {f: str(form.cleaned_data.get(f)) for f in form.changed_data if f != "technicians"},
                      "via": "admin"}
            before = getattr(request, "_jk_lab_before", [])
            if before != after:
                detail["technicians"] = {"before": before, "after": after}
            _record(request.user, lab, "testing.lab_updated" if change else "testing.lab_created", detail, request)


@admin.register(TransportBatch)
class TransportBatchAdmin(ReadOnlyAdmin):
    list_display = ("code", "lab", "site", "status", "tube_count", "packed_at", "handed_over_at", "courier",
                    "received_at")
    list_filter = ("status", "lab")
    search_fields = ("code", "courier")
    date_hierarchy = "packed_at"


@admin.register(Tube)
class TubeAdmin(ReadOnlyAdmin):
    list_display = ("barcode", "kind", "capacity", "member_count", "status", "outcome", "region_code", "site", "lab",
                    "opened_at", "received_at", "resulted_at")
    list_filter = ("status", "kind", "outcome", "lab")
    search_fields = ("barcode",)
    date_hierarchy = "opened_at"


@admin.register(TubeResult)
class TubeResultAdmin(ReadOnlyAdmin):
    list_display = ("tube", "lab", "outcome", "ct_values", "instrument", "operator", "tested_at", "recorded_at",
                    "source", "source_ref")
    list_filter = ("outcome", "source", "lab")
    search_fields = ("tube__barcode", "source_ref")
    list_select_related = ("tube", "lab")


class _AuditedPersonAdmin(ReadOnlyAdmin):
    """Lists show person ids only; opening a record shows the person and is audited as a person read."""

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        obj = self.model.objects.filter(pk=object_id).first()
        if obj is not None and response.status_code == 200:
            audit.record(actor=request.user, action="person.view", object_type="people.person",
                         object_id=obj.person_id, region_code=obj.region_code, request=request,
                         detail={"via": "admin", "record": self.model._meta.label_lower})
        return response


@admin.register(RetestTask)
class RetestTaskAdmin(_AuditedPersonAdmin):
    list_display = ("id", "person_id", "reason", "status", "region_code", "source_tube", "created_at", "resolved_at")
    list_filter = ("status", "reason")
    search_fields = ("region_code", "source_tube__barcode")
    list_select_related = ("source_tube",)
    fields = ("person", "campaign", "source_tube", "reason", "status", "region_code", "created_at", "sample",
              "resolved_at")
    readonly_fields = fields


@admin.register(PersonTestState)
class PersonTestStateAdmin(_AuditedPersonAdmin):
    list_display = ("person_id", "status", "controlled_in_place", "controlled_since", "region_code",
                    "last_sampled_at", "updated_at")
    list_filter = ("status", "controlled_in_place")
    search_fields = ("region_code",)
    fields = ("person", "region_code", "status", "controlled_in_place", "controlled_since", "last_sampled_at",
              "last_negative_sampled_at", "positive_sampled_at", "updated_at")
    readonly_fields = fields
