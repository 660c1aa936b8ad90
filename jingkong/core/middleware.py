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


class NulCharacterMiddleware:
    """Last resort for NUL characters that reached the database: a clear 422 (API) or 400 (page), never a 500.

    PostgreSQL cannot store NUL in text (psycopg raises before the statement runs). Routes refuse NUL per field
    themselves (a batch keeps its good items); this catches any route that does not, so the answer is still clear.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exc):
        from django.db import DataError

        if not isinstance(exc, DataError | ValueError) or "NUL" not in str(exc):
            return None
        from django.utils.translation import gettext

        message = gettext("the request contains a NUL character; remove it and send again")
        if request.path.startswith("/api/"):
            import json

            body = {"message": message, "code": "validation_failed",
                    "extra": {"fields": [{"field": "", "reason": "NUL character"}]}}
            return HttpResponse(json.dumps(body, ensure_ascii=False), status=422, content_type="application/json")
        page = render_to_string("error.html", {"message": message, "status": 400}, request=request)
        return HttpResponse(page, status=400)
