from __future__ import annotations

from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.views.i18n import set_language


class PageLoginRequiredMiddleware(LoginRequiredMiddleware):
    """Pages need a logged-in session. The API (/api/) answers 401 itself, through its own auth (session or token).

    Django's ``set_language`` (the language switch, also on the login page) only stores the chosen UI language.
    """

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path_info.startswith("/api/") or view_func is set_language:
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)
