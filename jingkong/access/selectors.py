"""Reads of the access app: audit log, users and tokens, each limited by a :class:`Scope`."""

from __future__ import annotations

import datetime as dt

from django.db.models import Max, Q, QuerySet

from jingkong.access import audit
from jingkong.access.guard import Scope, scope_of
from jingkong.access.models import ApiToken, AuditLog, User
from jingkong.core.exceptions import NotFound

# Login throttling: a username is locked after this many failures in the window (since its last success);
# a client address after IP_FAILURES failures in the window, whatever the usernames.
LOCKOUT_FAILURES = 5
LOCKOUT_IP_FAILURES = 30
LOCKOUT_WINDOW = dt.timedelta(minutes=15)


def audit_list(
    *,
    scope: Scope,
    user: str = "",
    action: str = "",
    object: str = "",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[AuditLog]:
    """Audit records inside the scope, newest first.

    ``user``: username (exact). ``action``: exact, or a prefix ending in ``.`` (``person.``) or ``*`` (``auth.*``).
    ``object``: ``type`` or ``type:id`` (e.g. ``people.person:42``). Time bounds are half-open: ``since <= at < until``.
    Records without a region (logins, system actions) are visible only with a district-wide scope.
    """
    qs = scope.filter(AuditLog.objects.all(), "region_code")
    if user:
        qs = qs.filter(username=user)
    if action:
        if action.endswith("*"):
            qs = qs.filter(action__startswith=action[:-1])
        elif action.endswith("."):
            qs = qs.filter(action__startswith=action)
        else:
            qs = qs.filter(action=action)
    if object:
        object_type, _, object_id = object.partition(":")
        if object_type:
            qs = qs.filter(object_type=object_type)
        if object_id:
            qs = qs.filter(object_id=object_id)
    if since is not None:
        qs = qs.filter(at__gte=since)
    if until is not None:
        qs = qs.filter(at__lt=until)
    return qs.order_by("-at", "-id")


def user_region_code(user: User) -> str:
    return user.region.code if user.region_id else ""


def user_list(*, scope: Scope) -> QuerySet[User]:
    """Users whose own scope lies inside ``scope`` (a user without a region counts as platform-wide)."""
    qs = User.objects.select_related("region").order_by("username")
    if scope.is_everything:
        return qs
    if scope.prefix is None:
        return qs.none()
    return qs.filter(region__code__startswith=scope.prefix)


def user_get(*, scope: Scope, user_id: int) -> User:
    """A user the caller may manage: their whole scope must lie inside the caller's (else 'not found')."""
    target = User.objects.select_related("region").filter(pk=user_id).first()
    if target is None:
        raise NotFound("user not found")
    target_scope = Scope(user_region_code(target)) if target.region_id else Scope("")
    if not scope.covers(target_scope):
        raise NotFound("user not found")
    return target


def token_list(*, user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")


def token_get(*, user: User, token_id: int) -> ApiToken:
    row = ApiToken.objects.filter(user=user, pk=token_id).select_related("user").first()
    if row is None:
        raise NotFound("token not found")
    return row


def login_locked(*, username: str, ip: str | None, now: dt.datetime) -> bool:
    """True while the username (or the client address) has too many recent failed logins."""
    since = now - LOCKOUT_WINDOW
    logins = AuditLog.objects.filter(object_type=audit.LOGIN_OBJECT, object_id=username[:64], at__gte=since)
    last_ok = logins.filter(action=audit.LOGIN).aggregate(last=Max("at"))["last"]
    failures = logins.filter(action=audit.LOGIN_FAILED)
    if last_ok is not None:
        failures = failures.filter(at__gt=last_ok)
    if failures.count() >= LOCKOUT_FAILURES:
        return True
    if ip:
        by_ip = AuditLog.objects.filter(Q(action=audit.LOGIN_FAILED) & Q(at__gte=since) & Q(ip=ip))
        if by_ip.count() >= LOCKOUT_IP_FAILURES:
            return True
    return False


def scope_description(user: User) -> str:
    """The scope as shown to people: a region code, 'everything' or 'nothing'."""
    scope = scope_of(user)
    if scope.prefix is None:
        return "nothing"
    return scope.prefix or "everything"
