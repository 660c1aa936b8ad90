"""Writes of the access app: users, API tokens, login records. Each writes its audit record in the same transaction."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction

from jingkong.access import audit
from jingkong.access.auth import hash_token, new_token, token_prefix
from jingkong.access.models import ApiToken, User
from jingkong.access.roles import Role
from jingkong.core import clock
from jingkong.core.events import emit
from jingkong.core.exceptions import Conflict, ValidationFailed

MAX_TOKEN_DAYS = 3650


def _region_code(user: User) -> str:
    return user.region.code if user.region_id else ""


@transaction.atomic
def token_create(*, user: User, name: str, actor, expires_at: dt.datetime | None = None, request=None) -> tuple[ApiToken, str]:
    """Create a bearer token for ``user``; the clear token is returned once and never stored."""
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("a token needs a name (e.g. the device or integration using it)", extra={"field": "name"})
    if expires_at is not None and expires_at <= clock.now():
        raise ValidationFailed("the expiry lies in the past", extra={"field": "expires_at"})
    token = new_token()
    row = ApiToken.objects.create(
        user=user, name=name[:64], token_hash=hash_token(token), prefix=token_prefix(token), created_at=clock.now(),
        expires_at=expires_at,
    )
    audit.record(actor=actor, action="token.create", object_type="access.apitoken", object_id=row.pk,
                 region_code=_region_code(user), request=request,
                 detail={"user": user.username, "name": row.name,
                         "expires_at": expires_at.isoformat() if expires_at else None})
    emit("access.token_created", subject=row, region_code=_region_code(user), actor=actor)
    return row, token


@transaction.atomic
def token_revoke(*, token: ApiToken, actor, request=None) -> ApiToken:
    """Revoke a token (idempotent: revoking twice keeps the first time)."""
    if token.revoked_at is not None:
        return token
    token.revoked_at = clock.now()
    token.save(update_fields=["revoked_at"])
    audit.record(actor=actor, action="token.revoke", object_type="access.apitoken", object_id=token.pk,
                 region_code=_region_code(token.user), request=request,
                 detail={"user": token.user.username, "name": token.name})
    emit("access.token_revoked", subject=token, region_code=_region_code(token.user), actor=actor)
    return token


@transaction.atomic
def user_create(
    *,
    username: str,
    role: str,
    region_code: str | None,
    actor,
    password: str | None = None,
    display_name: str = "",
    request=None,
    source: str = "",
) -> User:
    """Create a platform user with a role and a region scope.

    ``region_code`` may be empty only for administrators (platform-wide). Without a password the account cannot log
    in to the web UI (a device or integration account that uses tokens).
    """
    from jingkong.geo.models import Region

    username = (username or "").strip()
    if not username:
        raise ValidationFailed("a username is required", extra={"field": "username"})
    if role not in Role.values:
        raise ValidationFailed(
            f"unknown role {role!r}; choose one of: {', '.join(Role.values)}", extra={"field": "role"}
        )
    region = None
    if region_code:
        region = Region.objects.filter(code=region_code).first()
        if region is None:
            raise ValidationFailed(
                f"unknown region code {region_code!r}: no region with this division code has been imported "
                "(import the base map first, or check the code)",
                extra={"field": "region"},
            )
    elif role != Role.ADMINISTRATOR:
        raise ValidationFailed(
            f"a {role} needs a region (--region CODE): the user sees only that region's subtree",
            extra={"field": "region"},
        )
    if User.objects.filter(username=username).exists():
        raise Conflict(f"a user named {username!r} already exists", extra={"field": "username"})
    user = User(username=username, role=role, region=region, display_name=display_name[:64],
                is_staff=role == Role.ADMINISTRATOR)
    try:
        User._meta.get_field("username").run_validators(username)
        if password is not None:
            validate_password(password, user)
    except DjangoValidationError as exc:
        raise ValidationFailed("; ".join(exc.messages), extra={"field": "password" if password else "username"}) from None
    if password is None:
        user.set_unusable_password()
    else:
        user.set_password(password)
    user.save()
    audit.record(actor=actor, action="user.create", object_type="access.user", object_id=user.pk,
                 region_code=region.code if region else "", request=request, source=source,
                 detail={"username": username, "role": role})
    emit("access.user_created", subject=user, region_code=region.code if region else "", actor=actor)
    return user


def login_succeeded(*, user: User, request) -> None:
    """Record a successful web login (also resets the failed-login count of the username)."""
    audit.record(actor=user, action=audit.LOGIN, object_type=audit.LOGIN_OBJECT, object_id=user.get_username(),
                 region_code=_region_code(user), request=request)


def login_failed(*, username: str, request, locked: bool = False) -> None:
    """Record a failed web login: wrong password or unknown user, or (``locked``) refused during a lockout.

    Refusals during a lockout are recorded under their own action so that they do not prolong the lockout.
    """
    audit.record(actor=None, action=audit.LOGIN_LOCKED if locked else audit.LOGIN_FAILED,
                 object_type=audit.LOGIN_OBJECT, object_id=username[:64], request=request)


def logged_out(*, user: User, request) -> None:
    audit.record(actor=user, action=audit.LOGOUT, object_type=audit.LOGIN_OBJECT, object_id=user.get_username(),
                 region_code=_region_code(user), request=request)


def audit_export_record(*, actor, filters: dict, rows: int, request=None, source: str = "") -> None:
    """Exporting the audit log is itself audited."""
    audit.record(actor=actor, action=audit.EXPORT, object_type="access.auditlog", request=request, source=source,
                 region_code=_region_code(actor) if getattr(actor, "pk", None) else "",
                 detail={"filters": {k: v for k, v in filters.items() if v}, "rows": rows})
