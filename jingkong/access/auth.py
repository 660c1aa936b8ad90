"""Authentication for the API: bearer tokens for devices and integrations, the session for the web UI."""

from __future__ import annotations

import hashlib
import secrets

from ninja.security import HttpBearer, SessionAuth

from jingkong.access.guard import check_required_perm
from jingkong.core import clock

TOKEN_PREFIX = "jk_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_prefix(token: str) -> str:
    """The part of a token kept in clear to recognise it in lists (``jk_`` and 7 characters)."""
    return token[:10]


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class TokenAuth(HttpBearer):
    """``Authorization: Bearer jk_...``; the token's user must be active, the token neither revoked nor expired.

    Once the user is known, the operation's permission (see ``guard.require``) is checked: 403 before input parsing.
    """

    def authenticate(self, request, token: str):
        from jingkong.access.models import ApiToken

        if not token.startswith(TOKEN_PREFIX):
            return None
        row = ApiToken.objects.select_related("user", "user__region").filter(token_hash=hash_token(token)).first()
        if row is None or row.revoked_at is not None or not row.user.is_active:
            return None
        now = clock.now()
        if row.expires_at is not None and row.expires_at <= now:
            return None
        if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
        request.user = row.user
        request.jk_token = row
        check_required_perm(request, row.user)
        return row.user


class SessionUserAuth(SessionAuth):
    """The logged-in web session (CSRF-checked for unsafe methods)."""

    def authenticate(self, request, key):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.is_active:
            check_required_perm(request, user)
            return user
        return None


API_AUTH = [TokenAuth(), SessionUserAuth()]
