from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext
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

    def login(self, request, extra_context=None):
        """One login page for the whole platform (with its lockout): send people there, not to the admin's own."""
        if request.user.is_authenticated and self.has_permission(request):
            from django.urls import reverse
            from django.utils.http import url_has_allowed_host_and_scheme

            target = request.GET.get("next", "")
            if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
                target = reverse("admin:index", current_app=self.name)
            return HttpResponseRedirect(target)
        if request.user.is_authenticated:
            # Logged in but not allowed here: say so (redirecting to the login page would loop).
            return TemplateResponse(
                request, "error.html",
                {"status": 403, "message": gettext("The back office is for platform administrators only.")}, status=403,
            )
        target = request.GET.get("next") or request.path
        return HttpResponseRedirect(f"{settings.LOGIN_URL}?{urlencode({'next': target})}")


class JingkongAdminConfig(AdminConfig):
    """Django admin (back office) behind the same guard: administrators with district-wide scope only."""

    default_site = "jingkong.access.admin_site.JingkongAdminSite"
