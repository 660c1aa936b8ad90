"""Back office for users, tokens and the (read-only) audit log. Only district-wide administrators get in."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from jingkong.access import audit as services_audit
from jingkong.access import services
from jingkong.access.models import ApiToken, AuditLog, User
from jingkong.access.roles import Perm
from jingkong.core.admin_mixins import ReadOnlyAdmin


class _ScopeRequired:
    """Every role but the administrator acts inside a region: the form refuses a user without one."""

    def clean(self):
        from jingkong.access.roles import Role

        data = super().clean()
        if data.get("role") and data.get("role") != Role.ADMINISTRATOR and not data.get("region"):
            self.add_error("region", _("Only administrators may have no region (platform-wide scope)."))
        return data


class UserChangeForm(_ScopeRequired, auth_forms.UserChangeForm):
    pass


class UserCreationForm(_ScopeRequired, auth_forms.AdminUserCreationForm):
    pass


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    list_display = ("username", "display_name", "role", "region", "is_active", "last_login")
    list_filter = ("role", "is_active", "is_staff")
    search_fields = ("username", "display_name", "region__code", "region__name")
    raw_id_fields = ("region",)
    list_select_related = ("region",)
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Role and scope"), {"fields": ("role", "region", "display_name")}),
        (_("Status"), {"fields": ("is_active", "is_staff", "is_superuser")}),
        (_("Dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "password1", "password2", "role", "region",
                                                 "display_name")}),
    )
    readonly_fields = ("last_login", "date_joined")

    def save_model(self, request, obj, form, change):
        """Role and scope changes are security-relevant: validate the scope, audit and emit like a service would."""
        from django.db import transaction

        from jingkong.core.events import emit

        with transaction.atomic():
            super().save_model(request, obj, form, change)
            fields = sorted(form.changed_data) if change else ["created"]
            region = obj.region.code if obj.region_id else ""
            services_audit.record(actor=request.user, action="user.change" if change else "user.create",
                                  object_type="access.user", object_id=obj.pk, region_code=region, request=request,
                                  detail={"username": obj.username, "fields": [f for f in fields if "password" not in f]
                                          + (["password"] if any("password" in f for f in fields) else [])})
            emit("access.user_changed" if change else "access.user_created", subject=obj, region_code=region,
                 actor=request.user, payload={"role": obj.role})


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created through the API or ``jingkong createuser --token`` (the token is shown once); here they are
    listed and revoked."""

    list_display = ("name", "user", "prefix", "created_at", "expires_at", "revoked_at", "last_used_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "user__username", "prefix")
    list_select_related = ("user",)
    fields = ("user", "name", "prefix", "created_at", "expires_at", "revoked_at", "last_used_at")
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Revoke the selected tokens"))
    def revoke(self, request, queryset):
        count = 0
        for token in queryset.select_related("user").filter(revoked_at__isnull=True).order_by("pk"):
            services.token_revoke(token=token, actor=request.user, request=request)
            count += 1
        self.message_user(request, _("%(count)d tokens revoked.") % {"count": count}, messages.SUCCESS)


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    """Read-only, for everyone (superusers included): the audit log cannot be edited through the application."""

    list_display = ("at", "username", "role", "action", "object_type", "object_id", "region_code", "ip")
    list_filter = ("action", "role")
    search_fields = ("username", "action", "object_type", "object_id", "region_code")
    date_hierarchy = "at"
    ordering = ("-at", "-id")
    readonly_fields = [f.name for f in AuditLog._meta.fields]

    def has_view_permission(self, request, obj=None):
        return bool(request.user.is_active and request.user.has_role_perm(Perm.AUDIT_VIEW))

    def has_module_permission(self, request):
        return self.has_view_permission(request)
