"""Back office for the population baseline: read-only.

Person records change only through the services (API, imports), which audit and emit events; the back office lists
them with masked ID numbers and phones (always masked here), and every opened person record is audited like any other detail read.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count
from django.utils.translation import gettext_lazy as _

from jingkong.access import audit
from jingkong.core.admin_mixins import ReadOnlyAdmin
from jingkong.people.idnumber import phone_mask
from jingkong.people.models import Household, Person


@admin.register(Person)
class PersonAdmin(ReadOnlyAdmin):
    list_display = ("name", "id_masked", "sex", "birth_date", "grid", "industry", "source")
    list_filter = ("source", "industry", "sex", "needs_review")
    search_fields = ("name", "household__code", "building__code")
    fields = ("name", "id_masked", "sex", "birth_date", "phone_shown", "household", "building", "grid", "unit", "room",
              "registered_address", "is_registered_local", "vulnerable", "industry", "employer", "workplace",
              "source", "needs_review", "created_at", "updated_at")
    readonly_fields = fields

    @admin.display(description=_("phone"))
    def phone_shown(self, obj):
        return phone_mask(obj.phone)  # the back office never needs to phone a resident

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        person = Person.objects.select_related("grid").filter(pk=object_id).first()
        if person is not None and response.status_code == 200:
            audit.record(actor=request.user, action="person.view", object_type="people.person", object_id=person.pk,
                         region_code=person.grid.code if person.grid_id else "", request=request,
                         detail={"via": "admin"})
        return response


@admin.register(Household)
class HouseholdAdmin(ReadOnlyAdmin):
    list_display = ("code", "building", "grid", "unit", "room", "members")
    search_fields = ("code", "building__code")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("members"))

    @admin.display(description=_("members"), ordering="member_count")
    def members(self, obj):
        return obj.member_count
