"""The application's error tree. The API maps each class to an HTTP status once (jingkong.api)."""

from __future__ import annotations


class ApplicationError(Exception):
    """A failure the user can act on. ``message`` is shown; ``extra`` carries structured detail (field, row...)."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.extra = extra or {}


class ValidationFailed(ApplicationError):
    status_code = 422
    code = "validation_failed"


class NotAuthenticated(ApplicationError):
    status_code = 401
    code = "not_authenticated"


class PermissionDenied(ApplicationError):
    status_code = 403
    code = "permission_denied"


class NotFound(ApplicationError):
    """Also raised for objects outside the user's region scope, so that scope does not leak existence."""

    status_code = 404
    code = "not_found"


class Conflict(ApplicationError):
    status_code = 409
    code = "conflict"
