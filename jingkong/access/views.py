"""Pages of the access app: login (with a lockout after repeated failures), logout, health check."""

from __future__ import annotations

from django import forms
from django.contrib.auth import authenticate
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.http import JsonResponse
from django.utils.translation import gettext_lazy as _

from jingkong.access import selectors, services
from jingkong.access.guard import public
from jingkong.core import clock


class LockoutAuthenticationForm(AuthenticationForm):
    """Django's login form, refusing (without checking the password) a username or address with too many failures."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "locked": _(
            "Too many failed attempts. Sign-in for this account is paused for %(minutes)d minutes; "
            "ask your administrator if you cannot wait."
        ),
    }

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is None or not password:
            return self.cleaned_data
        ip = self.request.META.get("REMOTE_ADDR") if self.request else None
        if selectors.login_locked(username=username, ip=ip, now=clock.now()):
            services.login_failed(username=username, request=self.request, locked=True)
            raise forms.ValidationError(
                self.error_messages["locked"], code="locked",
                params={"minutes": int(selectors.LOCKOUT_WINDOW.total_seconds() // 60)},
            )
        self.user_cache = authenticate(self.request, username=username, password=password)
        if self.user_cache is None:
            services.login_failed(username=username, request=self.request)
            raise self.get_invalid_login_error()
        self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


class LoginView(auth_views.LoginView):
    authentication_form = LockoutAuthenticationForm
    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        services.login_succeeded(user=form.get_user(), request=self.request)
        return response


class LogoutView(auth_views.LogoutView):
    def post(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            services.logged_out(user=request.user, request=request)
        return super().post(request, *args, **kwargs)


@public
def health(request):
    """Liveness probe for load balancers: no data, no database."""
    return JsonResponse({"status": "ok"})


login_view = public(LoginView.as_view())
# Logging out needs no permission: it only ends the caller's own session (POST with CSRF token).
logout_view = public(LogoutView.as_view())
