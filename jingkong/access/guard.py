"""The one enforcement point for role and region scope.

* Every API operation and every page view is wrapped by :func:`require` with exactly one permission. The wrapper
  authenticates (session or bearer token) and checks the user's role (:data:`jingkong.access.roles.ROLE_PERMISSIONS`).
* Region scope is a :class:`Scope` (the user's region code as a prefix). Selectors take a scope and filter with it, and
  single-object reads go through :meth:`Scope.check`, which answers "not found" for anything outside the subtree.

``jingkong/access/tests/test_route_guard.py`` walks every URL and proves that nothing is reachable without this.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from jingkong.access.roles import Role
from jingkong.core.exceptions import NotAuthenticated, NotFound, PermissionDenied

PERMISSION_ATTR = "jk_permission"
PUBLIC_ATTR = "jk_public"


@dataclass(frozen=True)
class Scope:
    """A region subtree, identified by the division-code prefix of its root. ``prefix=''`` is everything."""

    prefix: str | None  # None: nothing at all (a user without a region)

    @property
    def is_everything(self) -> bool:
        return self.prefix == ""

    def contains(self, region_code: str | None) -> bool:
        if self.prefix is None:
            return False
        return (region_code or "").startswith(self.prefix)

    def check(self, region_code: str | None, what: str = "record") -> None:
        """Raise NotFound when the code lies outside the scope (existence is not revealed)."""
        if not self.contains(region_code):
            raise NotFound(f"{what} not found")

    def q(self, field: str) -> Q:
        """A filter for a field holding a region code (e.g. ``grid__code`` or ``region_code``)."""
        if self.prefix is None:
            return Q(pk__in=[])
        if self.prefix == "":
            return Q()
        return Q(**{f"{field}__startswith": self.prefix})

    def filter(self, qs: QuerySet, field: str) -> QuerySet:
        return qs.filter(self.q(field))


NOTHING = Scope(None)
EVERYTHING = Scope("")


def scope_of(user) -> Scope:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return NOTHING
    region = getattr(user, "region", None)
    if region is None:
        return EVERYTHING if (user.is_superuser or user.role == Role.ADMINISTRATOR) else NOTHING
    return Scope(region.code)


def request_user(request):
    """The authenticated user of a request: set by the API's auth (``request.auth``) or the session."""
    user = getattr(request, "auth", None)
    if user is None or not getattr(user, "is_authenticated", False):
        user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    return user


def authorize(request, perm: str):
    """Return the request's user if they hold ``perm``; raise otherwise. Also sets ``request.scope``."""
    user = request_user(request)
    if user is None:
        raise NotAuthenticated("authentication required")
    if not user.has_role_perm(perm):
        raise PermissionDenied(f"your role may not do this ({perm})", extra={"permission": perm})
    request.jk_user = user
    request.scope = scope_of(user)
    return user


def require(perm: str) -> Callable:
    """Decorate an API operation or a page view: only users whose role holds ``perm`` get through."""

    def decorator(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(request, *args, **kwargs):
            authorize(request, perm)
            return fn(request, *args, **kwargs)

        setattr(wrapper, PERMISSION_ATTR, perm)
        return wrapper

    return decorator


def public(fn: Callable) -> Callable:
    """Mark a view as deliberately public (login page, health check). The route walk lists these explicitly."""
    setattr(fn, PUBLIC_ATTR, True)
    return fn
