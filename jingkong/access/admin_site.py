from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.utils.translation import gettext_lazy as _

from jingkong.access.guard import scope_of
from jingkong.access.roles import Perm


class JingkongAdminSite(admin.AdminSite):
    site_header = _("Jingkong back office")
    site_title = _("Jingkong")
    index_title = _("Back office")

    def has_permission(self, request):
        user = request.user
        return bool(
            user.is_active
            and user.is_staff
            and user.has_role_perm(Perm.USER_ADMIN)
            and scope_of(user).is_everything
        )


class JingkongAdminConfig(AdminConfig):
    """Django admin (back office) behind the same guard: administrators with district-wide scope only."""

    default_site = "jingkong.access.admin_site.JingkongAdminSite"
