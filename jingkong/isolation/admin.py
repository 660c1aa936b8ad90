"""Back office for facilities and isolation orders: read-only.

Facilities, rooms, stays and orders change only through the services (API, pages, the arrival subscriber), which
audit and emit events. Lists carry no names; opening a stay, an order or a check is audited as a read of person data.
"""

from __future__ import annotations

from django.contrib import admin

from jingkong.access import audit
from jingkong.core.admin_mixins import ReadOnlyAdmin
from jingkong.isolation.models import Facility, IsolationOrder, Room, RoomStay, SymptomCheck


class _AuditedAdmin(ReadOnlyAdmin):
    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        obj = self.model.objects.filter(pk=object_id).first()
        if obj is not None and response.status_code == 200:
            order = getattr(obj, "order", None)
            person_id = getattr(obj, "person_id", None) or getattr(order, "person_id", "")
            region = getattr(obj, "region_code", None) or getattr(order, "region_code", "")
            audit.record(actor=request.user, action="person.view", object_type="people.person", object_id=person_id,
                         region_code=region, request=request,
                         detail={"via": "admin", "object": obj._meta.label_lower, "id": obj.pk})
        return response


@admin.register(Facility)
class FacilityAdmin(ReadOnlyAdmin):
    list_display = ("code", "name", "kind", "region_code", "mixing_tiers_forbidden", "active")
    list_filter = ("kind", "active")
    search_fields = ("code", "name")


@admin.register(Room)
class RoomAdmin(ReadOnlyAdmin):
    list_display = ("facility", "number", "floor", "kind", "beds", "state", "state_since")
    list_filter = ("state", "kind")
    search_fields = ("facility__code", "number")


@admin.register(RoomStay)
class RoomStayAdmin(_AuditedAdmin):
    list_display = ("pk", "room", "person_id", "tier", "region_code", "reserved_at", "checked_in_at", "checked_out_at")
    list_filter = ("tier",)
    raw_id_fields = ("room", "person")


@admin.register(IsolationOrder)
class IsolationOrderAdmin(_AuditedAdmin):
    list_display = ("pk", "person_id", "tier", "mode", "status", "region_code", "starts_on", "ends_on")
    list_filter = ("status", "mode", "tier")
    raw_id_fields = ("person", "contact", "case", "facility", "previous", "profile", "created_by")


@admin.register(SymptomCheck)
class SymptomCheckAdmin(_AuditedAdmin):
    list_display = ("pk", "order_id", "day", "checked_at", "temperature")
    raw_id_fields = ("order", "checked_by")
