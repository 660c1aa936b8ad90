from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse
from django.template.loader import render_to_string

from jingkong.core.exceptions import ApplicationError, NotAuthenticated


class ApplicationErrorMiddleware:
    """Turn an ApplicationError raised by a page view into a proper page (the API maps its own errors)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exc):
        if not isinstance(exc, ApplicationError):
            return None
        if isinstance(exc, NotAuthenticated):
            return redirect_to_login(request.get_full_path())
        body = render_to_string("error.html", {"message": exc.message, "status": exc.status_code}, request=request)
        return HttpResponse(body, status=exc.status_code)
