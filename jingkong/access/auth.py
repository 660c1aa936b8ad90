"""Authentication for the API: bearer tokens for devices and integrations, the session for the web UI."""

from __future__ import annotations

import functools
import hashlib
import secrets

from django.db import connection
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


@functools.cache
def _token_query() -> tuple[str, list]:
    """The token lookup as one SQL statement, with the ORM's value converters per column (built once per process).

    Every bearer request runs it: the equivalent ``select_related("user", "user__region")`` query cost ~0.6 ms of ORM
    compilation per request (~25 µs as SQL, benchmarks/bench_scans.py), and it loaded the region's polygons. The
    region is loaded without its geometry columns (deferred: read on access, as usual).
    """
    from jingkong.access.models import ApiToken, User
    from jingkong.geo.models import Region

    parts = [(ApiToken, "t", ApiToken._meta.concrete_fields), (User, "u", User._meta.concrete_fields),
             (Region, "r", [Region._meta.get_field(n) for n in ("id", "code", "name", "level", "parent")])]
    qn = connection.ops.quote_name
    columns, specs = [], []
    for model, alias, fields in parts:
        for f in fields:
            columns.append(f"{alias}.{qn(f.column)}")
            col = f.get_col(alias)
            specs.append((model, f.attname, connection.ops.get_db_converters(col) + f.get_db_converters(connection),
                          col))
    sql = (f"SELECT {', '.join(columns)} FROM {qn(ApiToken._meta.db_table)} t"
           f" JOIN {qn(User._meta.db_table)} u ON u.{qn('id')} = t.{qn('user_id')}"
           f" LEFT JOIN {qn(Region._meta.db_table)} r ON r.{qn('id')} = u.{qn('region_id')}"
           f" WHERE t.{qn('token_hash')} = %s")
    return sql, specs


def token_row(token_hash: str):
    """The ApiToken with ``hash`` and its user (and the user's region) attached, or None."""
    sql, specs = _token_query()
    with connection.cursor() as cursor:
        cursor.execute(sql, [token_hash])
        values = cursor.fetchone()
    if values is None:
        return None
    by_model: dict = {}
    for (model, name, converters, col), value in zip(specs, values, strict=True):
        for convert in converters:
            value = convert(value, col, connection)
        by_model.setdefault(model, ([], []))
        by_model[model][0].append(name)
        by_model[model][1].append(value)
    (token_model, (t_names, t_values)), (user_model, (u_names, u_values)), (region_model, (r_names, r_values)) = (
        by_model.items())
    row = token_model.from_db(connection.alias, t_names, t_values)
    user = user_model.from_db(connection.alias, u_names, u_values)
    user.region = region_model.from_db(connection.alias, r_names, r_values) if user.region_id else None
    row.user = user
    return row


class TokenAuth(HttpBearer):
    """``Authorization: Bearer jk_...``; the token's user must be active, the token neither revoked nor expired.

    Once the user is known, the operation's permission (see ``guard.require``) is checked: 403 before input parsing.
    """

    def authenticate(self, request, token: str):
        from jingkong.access.models import ApiToken

        if not token.startswith(TOKEN_PREFIX):
            return None
        row = token_row(hash_token(token))
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
