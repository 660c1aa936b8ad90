"""Authentication for the API: bearer tokens for devices and integrations, the session for the web UI."""

from __future__ import annotations

import hashlib
import secrets

from ninja.security import HttpBearer, SessionAuth

from jingkong.core import clock

TOKEN_PREFIX = "jk_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class TokenAuth(HttpBearer):
    """``Authorization: Bearer jk_...``; the token's user must be active, the token neither revoked nor expired."""

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
        return row.user


class SessionUserAuth(SessionAuth):
    """The logged-in web session (CSRF-checked for unsafe methods)."""

    def authenticate(self, request, key):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.is_active:
            return user
        return None


API_AUTH = [TokenAuth(), SessionUserAuth()]
