"""A lean WSGI path for the device lookup (``POST /api/v1/codes/lookup`` with a bearer token): the ≥ 2,000 req/s
route of issue 5.

Measured on the 2-core machine, the route through the whole stack spends most of its time outside the lookup: the
middleware chain (sessions, locale, CSRF, messages, …: nothing a device's bearer request uses), resolving the URL
against the ~150 API patterns mounted before it, and Ninja's request/response machinery (see docs/code-tokens.md).
:func:`with_lookup_fast_path` wraps the platform's WSGI application and answers exactly that request itself:

* the request is a normal Django ``WSGIRequest`` with Django's request lifecycle signals (``request_started`` /
  ``request_finished``: persistent connections are checked and closed as usual);
* the host is validated against ``ALLOWED_HOSTS`` (``request.get_host()``);
* authorization is the guard's, unchanged: the bearer token goes through
  :class:`jingkong.codes.api_tokens.CachedTokenAuth` (the platform's ``TokenAuth`` plus ``guard.check_required_perm``
  with the permission read from the view's own ``guard.require`` mark), then the *same* guarded view function
  (``api_tokens.lookup``: ``guard.require(Perm.CHECKPOINT_VERIFY)`` → ``guard.authorize``) runs;
* the input is parsed with the route's own schema (``TokenLookupIn``); the handler's answer is rendered with Ninja's
  JSON encoder, the same bytes as the Ninja route gives (tested).

Only the success path is served here. Anything else — no bearer token, a token that does not authenticate, a role
without the permission, invalid JSON, a body over 64 KB, a disallowed host, any exception — is handed, with its body,
to the wrapped application, which answers it through the full stack (the same 401/403/422/400 as every route).

Enable it in ``jingkong/wsgi.py``: ``application = with_lookup_fast_path(get_wsgi_application())``.
"""

from __future__ import annotations

import io
import json
import logging

from django.core import signals
from django.core.handlers.wsgi import WSGIRequest
from django.urls import set_script_prefix

LOOKUP_PATH = "/api/v1/codes/lookup"
MAX_BODY = 64 * 1024
_HEADERS_BASE = [
    ("Content-Type", "application/json; charset=utf-8"),
    ("Cache-Control", "private, no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
]
log = logging.getLogger(__name__)


class _Delegate(Exception):
    """Not a plain success: let the full stack answer."""


def _answer(request, body: bytes) -> bytes:
    from ninja.responses import NinjaJSONEncoder
    from pydantic import ValidationError

    from jingkong.access.guard import PERMISSION_ATTR, REQUIRED_PERM_REQUEST_ATTR
    from jingkong.codes import api_tokens
    from jingkong.codes.schemas_tokens import TokenLookupIn

    request.get_host()  # DisallowedHost → delegated (the full stack answers 400)
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _Delegate
    view = api_tokens.lookup
    setattr(request, REQUIRED_PERM_REQUEST_ATTR, getattr(view, PERMISSION_ATTR))
    # The token exactly as Ninja's HttpBearer reads it (not stripped: "Bearer  jk_…" is refused there, so here too).
    user = api_tokens.LOOKUP_AUTH.authenticate(request, token)  # raises PermissionDenied: delegated
    if user is None:
        raise _Delegate
    request.auth = user
    try:
        payload = TokenLookupIn.model_validate_json(body)
    except ValidationError:
        raise _Delegate from None
    result = view(request, payload)  # guard.require → guard.authorize(request, perm), then the handler
    # The handler's dict has LookupOut's fields in its order and types (the tests compare both paths' answers);
    # validating it again through the Ninja schema cost as much as the signature check.
    return json.dumps(result, cls=NinjaJSONEncoder).encode()


def with_lookup_fast_path(application):
    """Wrap a Django WSGI application so that device lookups with a bearer token take the lean path."""

    def app(environ, start_response):
        if environ.get("PATH_INFO") != LOOKUP_PATH or environ.get("REQUEST_METHOD") != "POST" \
                or "HTTP_AUTHORIZATION" not in environ:
            return application(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not 0 < length <= MAX_BODY:
            return application(environ, start_response)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        set_script_prefix(environ.get("SCRIPT_NAME", "") or "/")
        signals.request_started.send(sender=WSGIRequest, environ=environ)
        try:
            answer = _answer(WSGIRequest(environ), body)
        except Exception as exc:  # noqa: BLE001 - _Delegate, or any refusal or error: the full stack answers it
            answer = None
            if not isinstance(exc, _Delegate):
                log.debug("lookup fast path delegates: %r", exc)
        finally:
            signals.request_finished.send(sender=WSGIRequest)
        if answer is None:
            environ["wsgi.input"] = io.BytesIO(body)
            return application(environ, start_response)
        start_response("200 OK", [*_HEADERS_BASE, ("Content-Length", str(len(answer)))])
        return [answer]

    app.wrapped = application
    return app
