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
    """Refuse any request carrying a NUL character in its path, query string, form or JSON body.

    PostgreSQL cannot store NUL in text (it raises a DataError, a 500) and SQLite stores it silently; no legitimate
    field of this platform contains one. One check here covers every route, present and future: the API answers 422
    in its usual error shape, pages 400. Multipart uploads are not inspected here (files are binary; their importers
    validate each field).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        where = self._nul_in(request)
        if where:
            return self._refuse(request, where)
        return self.get_response(request)

    @staticmethod
    def _nul_in(request) -> str:
        if "\x00" in request.path:
            return "path"
        query = request.META.get("QUERY_STRING", "")
        if "%00" in query or "\x00" in query:
            return "query"
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            content_type = request.META.get("CONTENT_TYPE", "")
            if content_type.startswith("multipart/"):
                return ""
            body = request.body
            if b"\x00" in body:
                return "body"
            if "json" in content_type and b"\\u0000" in body:
                return "body"
            if content_type.startswith("application/x-www-form-urlencoded") and b"%00" in body:
                return "body"
        return ""

    @staticmethod
    def _refuse(request, where: str) -> HttpResponse:
        from django.utils.translation import gettext

        message = gettext("the request contains a NUL character (in its %(where)s); remove it and send again") % {
            "where": where}
        if request.path.startswith("/api/"):
            import json

            body = {"message": message, "code": "validation_failed",
                    "extra": {"fields": [{"field": where, "reason": "NUL character"}]}}
            return HttpResponse(json.dumps(body, ensure_ascii=False), status=422, content_type="application/json")
        page = render_to_string("error.html", {"message": message, "status": 400}, request=request)
        return HttpResponse(page, status=400)
