"""The one enforcement point for role and region scope.

* Every API operation and every page view is wrapped by :func:`require` with exactly one permission. The wrapper
  authenticates (session or bearer token) and checks the user's role (:data:`jingkong.access.roles.ROLE_PERMISSIONS`).
* On API operations the permission is checked already when Ninja authenticates (before the input is parsed), so a
  role without the permission gets 403 whatever it sends; the wrapper checks again and sets ``request.jk_user`` and
  ``request.scope`` for the handler.
* Region scope is a :class:`Scope` (the user's region code as a prefix). Selectors take a scope and filter with it, and
  single-object reads go through :meth:`Scope.check`, which answers "not found" for anything outside the subtree.

``jingkong/access/tests/test_route_guard.py`` walks every URL and proves that nothing is reachable without this.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.utils.translation import gettext
from ninja.utils import contribute_operation_callback

from jingkong.access.roles import ALL_PERMISSIONS, Role
from jingkong.core.exceptions import NotAuthenticated, NotFound, PermissionDenied

PERMISSION_ATTR = "jk_permission"
PUBLIC_ATTR = "jk_public"
REQUIRED_PERM_REQUEST_ATTR = "jk_required_perm"  # set on API requests before authentication (see auth.py)


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

    def covers(self, other: Scope) -> bool:
        """True when ``other`` lies entirely inside this scope (e.g. managing another user's tokens)."""
        if self.prefix is None or other.prefix is None:
            return False
        return other.prefix.startswith(self.prefix)


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
        raise NotAuthenticated(gettext("authentication required"))
    if not user.has_role_perm(perm):
        raise PermissionDenied(gettext("your role may not do this (%(perm)s)") % {"perm": perm}, extra={"permission": perm})
    request.jk_user = user
    request.scope = scope_of(user)
    return user


def require(perm: str) -> Callable:
    """Decorate an API operation or a page view: only users whose role holds ``perm`` get through.

    Put it *below* the router decorator::

        @router.get("/things/{thing_id}", response=ThingOut)
        @require(Perm.MAP_VIEW)
        def thing_get(request, thing_id: int): ...
    """
    if perm not in ALL_PERMISSIONS:
        raise ValueError(f"unknown permission {perm!r}; use a constant of jingkong.access.roles.Perm")

    def decorator(fn: Callable) -> Callable:
        if hasattr(fn, "_ninja_operation"):
            raise TypeError(
                f"@require({perm!r}) is above @router.<method> on {fn.__qualname__}: put it below, "
                "otherwise Ninja registers the unguarded function"
            )

        @functools.wraps(fn)
        def wrapper(request, *args, **kwargs):
            authorize(request, perm)
            return fn(request, *args, **kwargs)

        setattr(wrapper, PERMISSION_ATTR, perm)
        _keep_signature(wrapper, fn)
        # For Ninja: tell the authentication step which permission this operation needs, so that the role check
        # happens before input parsing (403 rather than 422 for a role that may not call the route at all).
        wrapper.__dict__.pop("_ninja_contribute_to_operation", None)  # copied by wraps(); do not share fn's list
        for callback in getattr(fn, "_ninja_contribute_to_operation", ()):
            contribute_operation_callback(wrapper, callback)
        contribute_operation_callback(wrapper, functools.partial(_guard_operation, perm))
        return wrapper

    return decorator


def _keep_signature(wrapper: Callable, fn: Callable) -> None:
    """Give the wrapper ``fn``'s signature with string annotations resolved in ``fn``'s module.

    Ninja evaluates string annotations (``from __future__ import annotations``) in the *wrapper's* module globals,
    where the handler's schemas are unknown; resolving them here keeps ``payload: ThingIn`` working.
    """
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    params = []
    for param in sig.parameters.values():
        annotation = param.annotation
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, getattr(fn, "__globals__", {}))  # noqa: S307 - the module's own annotation
            except Exception:  # noqa: BLE001 - leave unresolved names to Ninja's own error message
                pass
        params.append(param.replace(annotation=annotation))
    wrapper.__signature__ = sig.replace(parameters=params)


def _guard_operation(perm: str, operation) -> None:
    """Ninja hook: wrap the operation's ``run`` so the request carries the required permission into authentication."""

    def deco(run):
        @functools.wraps(run)
        def guarded_run(request, *args, **kwargs):
            setattr(request, REQUIRED_PERM_REQUEST_ATTR, perm)
            return run(request, *args, **kwargs)

        return guarded_run

    if not hasattr(operation, "_run_decorators"):
        operation._run_decorators = []
    operation.run = deco(operation.run)
    operation._run_decorators.append(deco)  # re-applied when Ninja clones the operation for mounting


def check_required_perm(request, user) -> None:
    """Called by the API authenticators once they know the user: refuse a role without the operation's permission."""
    perm = getattr(request, REQUIRED_PERM_REQUEST_ATTR, None)
    if perm and not user.has_role_perm(perm):
        raise PermissionDenied(gettext("your role may not do this (%(perm)s)") % {"perm": perm}, extra={"permission": perm})


def public(fn: Callable) -> Callable:
    """Mark a view as deliberately public (login page, health check). The route walk lists these explicitly."""
    setattr(fn, PUBLIC_ATTR, True)
    fn.login_required = False  # the same as django.contrib.auth.decorators.login_not_required
    return fn
