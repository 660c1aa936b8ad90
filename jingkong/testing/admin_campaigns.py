"""Back office for rounds and sites: read-only (changes go through the services so that every change is evented and
checked against the policy in force). Imported by TestingConfig.ready(); models another module registered already are
left alone."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from jingkong.core.admin_mixins import ReadOnlyAdmin
from jingkong.testing.models import Campaign, CampaignArea, SamplingSite, SiteAssignment


class CampaignAreaInline(admin.TabularInline):
    model = CampaignArea
    fields = ("region_code", "mode", "pool_size", "one_tube_per_household", "reason")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class CampaignAdmin(ReadOnlyAdmin):
    list_display = ("code", "name", "region_code", "status", "mode", "pool_size", "key_industry", "starts_at",
                    "deadline", "policy_profile")
    list_filter = ("status", "mode", "pool_size")
    search_fields = ("code", "name", "region_code")
    date_hierarchy = "starts_at"
    inlines = [CampaignAreaInline]


class SamplingSiteAdmin(ReadOnlyAdmin):
    list_display = ("code", "name", "kind", "region_code", "desks", "staff", "capacity_per_hour", "opens_at",
                    "closes_at", "campaign", "active", "sampler_count")
    list_filter = ("kind", "active")
    search_fields = ("code", "name", "region_code")
    list_select_related = ("campaign",)

    @admin.display(description=_("samplers"))
    def sampler_count(self, obj):
        return obj.samplers.count()


class SiteAssignmentAdmin(ReadOnlyAdmin):
    list_display = ("campaign", "building", "site", "region_code", "residents", "distance_m", "slot_start", "slot_end")
    list_filter = ("campaign",)
    search_fields = ("region_code", "building__code", "site__code")
    list_select_related = ("campaign", "building", "site")


for _model, _admin in ((Campaign, CampaignAdmin), (SamplingSite, SamplingSiteAdmin),
                       (SiteAssignment, SiteAssignmentAdmin)):
    if not admin.site.is_registered(_model):
        admin.site.register(_model, _admin)
