from __future__ import annotations

from django.contrib import admin
from django.db.models import Count
from django.utils.translation import gettext_lazy as _

from jingkong.people.models import Household, Person


@admin.register(Person)
class PersonAdmin(admin.ModelAdmin):
    """Masked ID only; the lookup hash is read-only (a clear ID number never reaches the back office)."""

    list_display = ("name", "id_masked", "sex", "birth_date", "grid", "industry", "source")
    list_filter = ("source", "industry", "sex", "needs_review")
    search_fields = ("name", "household__code", "building__code")
    readonly_fields = ("id_hash", "id_masked", "created_at", "updated_at")
    raw_id_fields = ("household", "building", "grid", "workplace")


@admin.register(Household)
class HouseholdAdmin(admin.ModelAdmin):
    list_display = ("code", "building", "grid", "unit", "room", "members")
    search_fields = ("code", "building__code")
    raw_id_fields = ("building", "grid")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("members"))

    @admin.display(description=_("members"), ordering="member_count")
    def members(self, obj):
        return obj.member_count
