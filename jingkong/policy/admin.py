"""Back office: profiles and activations are shown read-only (versions are immutable; changes go through services)."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from jingkong.core.admin_mixins import ReadOnlyAdmin
from jingkong.policy.models import PolicyActivation, PolicyProfile


@admin.register(PolicyProfile)
class PolicyProfileAdmin(ReadOnlyAdmin):
    list_display = ("code", "version", "edition", "name_en", "issued_on", "origin", "created_at", "created_by")
    list_filter = ("code", "origin")
    search_fields = ("code", "name_zh", "name_en")
    exclude = ("rules", "sources")
    readonly_fields = ("rules_pretty", "sources_pretty")

    @admin.display(description=_("rules"))
    def rules_pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.rules, indent=2, ensure_ascii=False))

    @admin.display(description=_("sources"))
    def sources_pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.sources, indent=2, ensure_ascii=False))


@admin.register(PolicyActivation)
class PolicyActivationAdmin(ReadOnlyAdmin):
    list_display = ("activated_at", "region", "profile", "activated_by", "reason", "recorded_at")
    list_filter = ("profile__code",)
    list_select_related = ("region", "profile", "activated_by")
    date_hierarchy = "activated_at"
