"""Every route goes through the one enforcement point (jingkong.access.guard.require), discovered automatically.

* The Ninja API is walked (every router, every path operation): each view must carry the guard's permission; each
  answers 401 without credentials and 403 to a role without that permission (session and bearer token alike).
* Region scope, generically: for every route whose path has a parameter, an object is created in street B by the
  factory registered for that parameter name (FACTORIES below) and requested by a street-A user whose role holds the
  route's permission: 404 (or 403). A street-B user with the same role reads it (so the 404 is about scope, not a bad
  id). Every GET route without parameters (lists) is requested by street-A users while street B is full of objects:
  nothing of street B may appear in the answer.
* The Django URLconf is walked: every page view is decorated with ``require`` or explicitly ``public`` and listed in
  PUBLIC_PAGES; the admin is behind JingkongAdminSite.has_permission.

Adding a route with a new path parameter name? Register a factory for it in FACTORIES (or, for a route whose object is
not region data, an entry in UNSCOPED_ROUTES with the reason). A write route whose body must be valid to reach the
scope check gets an entry in BODIES. Apps other than access/core/geo/people/policy register theirs in their own
``tests/guard_registry.py`` (loaded by _load_app_registries below).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from jingkong.access.guard import PERMISSION_ATTR, PUBLIC_ATTR
from jingkong.access.roles import Role, roles_with, roles_without
from jingkong.conftest import make_user

API_ROOT = "/api/v1/"
STREET_B = "330206004"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

# Pages that need no login, by URL name. Adding one is a security decision: say why.
PUBLIC_PAGES = {
    "login": "the login form itself",
    "logout": "ends the caller's own session (POST with CSRF token)",
    "health": "liveness probe: no data",
    "set_language": "Django's i18n view: stores the UI language in a cookie",
    "api-v1:openapi-json": "the OpenAPI description of the API (no data)",
    "api-v1:openapi-view": "the interactive API docs page (no data)",
    "api-v1:api-root": "Ninja's API root (no data)",
}
# Views that are not ours to decorate and are allowed by name even though they carry no `public` mark.
NOT_OURS = {"set_language", "api-v1:openapi-json", "api-v1:openapi-view", "api-v1:api-root"}
# API operations that need no login, by label ("GET /api/v1/..."), each marked with guard.public and given
# ``auth=None``. Adding one is a security decision: say why. Apps list theirs as PUBLIC_API in their guard_registry.
PUBLIC_API: dict[str, str] = {}


# --- discovery ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiRoute:
    method: str
    template: str  # full path with {params}, e.g. /api/v1/core/jobs/{job_id}
    view: Callable
    perm: str | None
    params: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.method} {self.template}"

    def url(self, values: dict[str, str]) -> str:
        return re.sub(r"{(?:\w+:)?(\w+)}", lambda m: str(values[m.group(1)]), self.template)


def api_routes() -> list[ApiRoute]:
    from jingkong.api import api

    get_resolver().url_patterns  # noqa: B018 - building the URLconf binds the API's routers
    api.urls  # noqa: B018
    routes = []
    for prefix, router in api._routers:  # every router, nested ones included (Ninja keeps this list for us)
        for path, path_view in router.path_operations.items():
            template = "/" + "/".join(p.strip("/") for p in (API_ROOT, prefix, path) if p.strip("/"))
            if path.endswith("/") and not template.endswith("/"):
                template += "/"
            params = tuple(re.findall(r"{(?:\w+:)?(\w+)}", template))
            for operation in path_view.operations:
                for method in operation.methods:
                    routes.append(ApiRoute(method.upper(), template, operation.view_func,
                                           getattr(operation.view_func, PERMISSION_ATTR, None), params))
    assert routes, "no API route discovered: the walker is broken"
    return routes


def page_views() -> list[tuple[str, str, Callable]]:
    """(url name, route, view) of every URL pattern outside the API and the admin."""
    found = []

    def walk(patterns, prefix, namespace):
        for p in patterns:
            if isinstance(p, URLResolver):
                ns = p.namespace or namespace
                if p.app_name == "admin":
                    continue  # guarded by JingkongAdminSite.has_permission (test_admin_is_behind_the_admin_guard)
                walk(p.url_patterns, prefix + str(p.pattern), ns)
            elif isinstance(p, URLPattern):
                name = f"{namespace}:{p.name}" if namespace and p.name else (p.name or "")
                found.append((name, prefix + str(p.pattern), p.callback))

    walk(get_resolver().url_patterns, "/", None)
    return found


def _is_api_operation(name: str) -> bool:
    return name.startswith("api-v1:") and name not in PUBLIC_PAGES


# --- personas ---------------------------------------------------------------------------------------------------------

PREFERRED_ROLES = [Role.STREET_OFFICER, Role.ADMINISTRATOR, Role.COMMANDER, Role.TRACER, Role.GRID_WORKER]


def role_for(perm: str) -> str:
    holders = roles_with(perm)
    assert holders, f"no role holds {perm}: nobody could call its routes"
    for role in PREFERRED_ROLES:
        if role in holders:
            return role
    return holders[0]


class People:
    """Users created on demand: one per (role, street), plus tokens."""

    def __init__(self, regions):
        self.regions = regions
        self._users = {}
        self._headers = {}

    def user(self, role: str, side: str = "a"):
        key = (role, side)
        if key not in self._users:
            region = self.regions[f"street_{side}"]
            self._users[key] = make_user(f"{role or 'norole'}_{side}", role, region)
        return self._users[key]

    def holder(self, perm: str, side: str = "a"):
        return self.user(role_for(perm), side)

    def bearer(self, user) -> dict:
        if user.pk not in self._headers:
            from jingkong.access.services import token_create

            _, token = token_create(user=user, name="route-walk", actor=user)
            self._headers[user.pk] = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        return self._headers[user.pk]


def session_client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def send(client: Client, method: str, url: str, body: dict | None = None, **headers):
    if method == "GET":
        return client.get(url, **headers)
    return client.generic(method, url, data=_json(body or {}), content_type="application/json", **headers)


def _json(data) -> str:
    import json

    return json.dumps(data)


# --- registries: extend these when you add routes ---------------------------------------------------------------------


@dataclass
class OutOfScope:
    """Builds objects in street B for one route. ``value(name)`` memoises, so factories can share parents."""

    regions: dict
    people: People
    values: dict = field(default_factory=dict)
    markers: set = field(default_factory=set)

    @property
    def street(self):
        return self.regions["street_b"]

    @property
    def grid(self):
        return self.regions["grid_b1"]

    def value(self, name: str, route: ApiRoute | None = None):
        key = name
        factory = None
        if route is not None and (route.template, name) in ROUTE_FACTORIES:
            factory = ROUTE_FACTORIES[(route.template, name)]
            key = (route.template, name)
        elif name in FACTORIES:
            factory = FACTORIES[name]
        if factory is None:
            where = route.label if route else name
            pytest.fail(
                f"no out-of-scope factory for path parameter {name!r} (used by {where}). Register one in "
                f"FACTORIES in jingkong/access/tests/test_route_guard.py: a function that creates an object inside "
                f"street B ({STREET_B}) and returns the value to put in the path (or, if the route serves no region "
                f"data, add the route to UNSCOPED_ROUTES with the reason)."
            )
        if key not in self.values:
            self.values[key] = factory(self)
        return self.values[key]

    def mark(self, text: str) -> str:
        """Remember a string that must never show up in a street-A answer."""
        self.markers.add(text)
        return text


FACTORIES: dict[str, Callable[[OutOfScope], object]] = {}
ROUTE_FACTORIES: dict[tuple[str, str], Callable[[OutOfScope], object]] = {}  # (template, param) overrides
SEEDS: list[Callable[[OutOfScope], None]] = []  # more street-B data for the list check (no path parameter)

# Routes whose path parameters do not name region data (district-wide configuration): the reason is required.
UNSCOPED_ROUTES: dict[str, str] = {
    "/api/v1/policy/profiles/{code}": "policy profiles are district-wide configuration, not region data",
}
# Bodies for write routes that must validate before the handler (and so the scope check) runs.
BODIES: dict[str, Callable[[OutOfScope], dict]] = {
    "POST /api/v1/access/users/{user_id}/tokens": lambda ctx: {"name": "out-of-scope"},
}
# Query strings for GET routes that need one to answer at all.
QUERIES: dict[str, str] = {}


def factory(*names: str, route: str | None = None):
    def register(fn):
        for name in names:
            if route:
                ROUTE_FACTORIES[(route, name)] = fn
            else:
                FACTORIES[name] = fn
        return fn

    return register


_serial = itertools.count(1)


@factory("user_id")
def _user_in_b(ctx: OutOfScope):
    user = make_user(ctx.mark(f"out_of_scope_user_b{next(_serial)}"), Role.STREET_OFFICER, ctx.street)
    return user.pk


@factory("token_id")
def _token_in_b(ctx: OutOfScope):
    from jingkong.access.models import User
    from jingkong.access.services import token_create

    owner = User.objects.get(pk=ctx.value("user_id"))
    row, _ = token_create(user=owner, name=ctx.mark("out-of-scope-token-b"), actor=owner)
    return row.pk


@factory("job_id")
def _job_in_b(ctx: OutOfScope):
    from jingkong.core import clock
    from jingkong.core.models import Job

    owner = ctx.people.user(Role.STREET_OFFICER, "b")
    job = Job.objects.create(kind="test.out_of_scope", message=ctx.mark("out-of-scope-job-b"), created_by=owner,
                             region_code=ctx.grid.code, created_at=clock.now())
    return job.pk


@factory("code", "region_code")
def _region_in_b(ctx: OutOfScope):
    return ctx.street.code


@factory("grid_code")
def _grid_in_b(ctx: OutOfScope):
    return ctx.grid.code


def _building(ctx: OutOfScope):
    from jingkong.geo.models import Building

    if "_building" not in ctx.values:
        ctx.values["_building"] = Building.objects.create(
            code=ctx.mark(f"BLD-OUT-OF-SCOPE-B{next(_serial)}"), grid=ctx.grid, address="out of scope", lon=121.825, lat=29.905
        )
    return ctx.values["_building"]


factory("building_id")(lambda ctx: _building(ctx).pk)
factory("building_code")(lambda ctx: _building(ctx).code)


@factory("venue_code")
def _venue_in_b(ctx: OutOfScope):
    from jingkong.geo.models import Venue

    v = Venue.objects.create(code=ctx.mark(f"VENUE-OUT-OF-SCOPE-B{next(_serial)}"), name="out of scope", type="other",
                             lon=121.825, lat=29.905, grid=ctx.grid)
    return v.code


def _household(ctx: OutOfScope):
    from jingkong.people.models import Household

    if "_household" not in ctx.values:
        ctx.values["_household"] = Household.objects.create(
            code=ctx.mark(f"HH-OUT-OF-SCOPE-B{next(_serial)}"), building=_building(ctx), grid=ctx.grid
        )
    return ctx.values["_household"]


factory("household_id")(lambda ctx: _household(ctx).pk)
factory("household_code")(lambda ctx: _household(ctx).code)


@factory("person_id")
def _person_in_b(ctx: OutOfScope):
    import datetime as dt

    from jingkong.core import clock
    from jingkong.people.models import Person

    now = clock.now()
    p = Person.objects.create(id_hash=f"out-of-scope-b{next(_serial):050d}", id_masked="3302**********0000",
                              name=ctx.mark("越界测试"), sex="F", birth_date=dt.date(1980, 1, 1), grid=ctx.grid,
                              created_at=now, updated_at=now)
    return p.pk


@SEEDS.append
def _audit_and_event_in_b(ctx: OutOfScope):
    from django.db import transaction

    from jingkong.access import audit
    from jingkong.core.events import emit

    audit.record(actor=None, action="test.out_of_scope", object_type="people.person", object_id="b",
                 region_code=ctx.grid.code, detail={"marker": ctx.mark("out-of-scope-audit-b")})
    with transaction.atomic():
        emit("test.out_of_scope", subject_type="people.person", subject_id="b", region_code=ctx.grid.code,
             payload={"marker": ctx.mark("out-of-scope-event-b")})


def _load_app_registries() -> None:
    """Each app may register its own factories, seeds, bodies and queries in ``jingkong/<app>/tests/guard_registry*.py``
    (importing ``factory``, ``SEEDS``, ``BODIES``, ``QUERIES``, ``UNSCOPED_ROUTES`` from this module), so apps grow
    their routes without editing this file."""
    import importlib
    import pkgutil

    from django.apps import apps

    for config in apps.get_app_configs():
        if not config.name.startswith("jingkong."):
            continue
        try:
            tests = importlib.import_module(f"{config.name}.tests")
        except ModuleNotFoundError:
            continue
        for info in pkgutil.iter_modules(tests.__path__):
            if info.name.startswith("guard_registry"):
                module = importlib.import_module(f"{config.name}.tests.{info.name}")
                PUBLIC_API.update(getattr(module, "PUBLIC_API", {}))


_load_app_registries()


def _public(route: ApiRoute) -> bool:
    return route.label in PUBLIC_API


def _hint(status: int) -> str:
    if status == 405:
        return (" (405: the URL is caught by an earlier path pattern of the same router, e.g. /things/{id} declared "
                "before /things/lookup; declare the fixed path first)")
    return ""


# --- the checks -------------------------------------------------------------------------------------------------------


def test_every_api_operation_carries_the_guard():
    missing = [r.label for r in api_routes() if r.perm is None and not _public(r)]
    assert not missing, (
        "API operations without @require(Perm.X) directly below @router.<method> (the guard):\n  "
        + "\n  ".join(missing)
    )
    unmarked = [r.label for r in api_routes() if _public(r) and (r.perm or not getattr(r.view, PUBLIC_ATTR, False))]
    assert not unmarked, "PUBLIC_API routes must be marked @public and carry no permission:\n  " + "\n  ".join(unmarked)


def test_the_walker_sees_every_api_url():
    """Cross-check: every URL Ninja serves (except the docs) is one of the discovered routes."""
    from jingkong.api import api

    discovered = {re.sub(r"{(?:\w+:)?(\w+)}", r"<\1>", r.template) for r in api_routes()}
    served = set()
    for pattern in api.urls[0]:
        if pattern.name in ("openapi-json", "openapi-view", "api-root"):
            continue
        route = "/" + API_ROOT.strip("/") + "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", str(pattern.pattern))
        served.add(route)
    assert served <= discovered, f"URLs served by Ninja but not discovered by the walker: {sorted(served - discovered)}"


def test_every_page_is_guarded_or_explicitly_public():
    unguarded, unlisted_public = [], []
    seen = set()
    for name, route, view in page_views():
        if _is_api_operation(name):
            continue  # covered by the API walk
        seen.add(name)
        if getattr(view, PERMISSION_ATTR, None):
            continue
        if name in PUBLIC_PAGES and (getattr(view, PUBLIC_ATTR, False) or name in NOT_OURS):
            continue
        if getattr(view, PUBLIC_ATTR, False):
            unlisted_public.append(f"{route} ({name or 'unnamed'})")
        else:
            unguarded.append(f"{route} ({name or 'unnamed'})")
    assert not unguarded, "page views without @require(Perm.X) or @public:\n  " + "\n  ".join(unguarded)
    assert not unlisted_public, (
        "views marked @public but not listed in PUBLIC_PAGES (a public page is a security decision: list it with the "
        "reason):\n  " + "\n  ".join(unlisted_public)
    )
    assert set(PUBLIC_PAGES) <= seen, f"PUBLIC_PAGES lists pages that no longer exist: {set(PUBLIC_PAGES) - seen}"


@pytest.mark.django_db
def test_pages_refuse_anonymous_and_unpermitted_users(regions, client_for):
    people = People(regions)
    for _name, route, view in page_views():
        perm = getattr(view, PERMISSION_ATTR, None)
        if not perm or "<" in route:
            continue
        anon = Client().get(route)
        assert anon.status_code == 302 and anon["Location"].startswith("/login/"), f"{route} anonymous: {anon.status_code}"
        lacking = roles_without(perm)
        if lacking:
            r = client_for(people.user(lacking[0])).get(route)
            assert r.status_code == 403, f"{route} as {lacking[0]}: {r.status_code}"
        r = client_for(people.user("")).get(route)
        assert r.status_code == 403, f"{route} as a user without a role: {r.status_code}"


@pytest.mark.django_db
def test_admin_is_behind_the_admin_guard(regions, commander, officer_a, admin_user, client_for):
    anon = Client().get("/admin/", follow=True)
    assert anon.redirect_chain[-1][0].startswith("/login/?next=")
    for user in (officer_a, commander):  # commander: district-wide but no user administration
        assert client_for(user).get("/admin/", follow=True).status_code == 403
        assert client_for(user).get("/admin/access/auditlog/", follow=True).status_code == 403
    assert client_for(admin_user).get("/admin/").status_code == 200


@pytest.mark.django_db
def test_every_api_route_refuses_anonymous_requests(regions):
    failures = []
    for route in api_routes():
        if _public(route):
            continue
        url = route.url(dict.fromkeys(route.params, "1"))
        for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer jk_not-a-token"}):
            r = send(Client(), route.method, url, **headers)
            if r.status_code != 401:
                failures.append(f"{route.label} {'with a bogus token' if headers else 'anonymous'}: {r.status_code}"
                                + _hint(r.status_code))
    assert not failures, "routes that did not answer 401:\n  " + "\n  ".join(failures)


@pytest.mark.django_db
def test_every_api_route_refuses_roles_without_its_permission(regions):
    people = People(regions)
    failures = []
    for route in api_routes():
        if _public(route):
            continue
        url = route.url(dict.fromkeys(route.params, "1"))
        lacking = roles_without(route.perm)
        user = people.user(lacking[0] if lacking else "")  # no role lacks it: a user without a role
        for how, client, headers in (("session", session_client(user), {}),
                                     ("token", Client(), people.bearer(user))):
            r = send(client, route.method, url, **headers)
            if r.status_code != 403 or r.json().get("code") != "permission_denied":
                failures.append(f"{route.label} as {user.role or 'no role'} ({how}): {r.status_code}" + _hint(r.status_code))
    assert not failures, "routes that did not answer 403 to a role without the permission:\n  " + "\n  ".join(failures)


@pytest.mark.django_db
def test_objects_of_another_region_are_not_found(regions):
    people = People(regions)
    failures = []
    for route in api_routes():
        if not route.params or route.template in UNSCOPED_ROUTES or _public(route):
            continue
        ctx = OutOfScope(regions, people)
        values = {name: ctx.value(name, route) for name in route.params}
        url = route.url(values)
        body = BODIES[route.label](ctx) if route.label in BODIES else {}
        officer_a = people.holder(route.perm, "a")
        r = send(session_client(officer_a), route.method, url, body)
        if r.status_code == 422 and route.method != "GET" and route.label not in BODIES:
            failures.append(f"{route.label}: 422 before the scope check; register a valid body in BODIES")
        elif r.status_code not in (403, 404):
            failures.append(f"{route.label} as {officer_a.role} of street A on street-B data: {r.status_code}")
        if route.method == "GET":
            same_role_b = people.user(officer_a.role, "b")
            ok = send(session_client(same_role_b), "GET", url)
            if ok.status_code != 200:
                failures.append(
                    f"{route.label}: a {same_role_b.role} of street B cannot read the factory's object either "
                    f"({ok.status_code}), so the check above proves nothing: fix the factory for {route.params}"
                )
    assert not failures, "scope leaks (or broken factories):\n  " + "\n  ".join(failures)


@pytest.mark.django_db
def test_lists_show_nothing_of_another_region(regions):
    people = People(regions)
    ctx = OutOfScope(regions, people)
    for name in list(FACTORIES):
        ctx.value(name)
    for seed in SEEDS:
        seed(ctx)
    assert ctx.markers
    failures = []
    for route in api_routes():
        if route.method != "GET" or route.params:
            continue
        url = route.template + (("?" + QUERIES[route.label]) if route.label in QUERIES else "")
        if _public(route):  # what anybody gets
            r = send(Client(), "GET", url)
            user = None
        else:
            user = people.holder(route.perm, "a")
            r = send(session_client(user), "GET", url)
        if r.status_code not in (200, 404):  # 404: nothing to show (e.g. no active policy yet)
            failures.append(f"{route.label} as {user.role if user else 'anonymous'} of street A: {r.status_code} "
                            "(register a query in QUERIES)")
            continue
        text = b"".join(r.streaming_content).decode() if r.streaming else r.content.decode()
        leaked = [m for m in ctx.markers | {STREET_B} if m in text or _json(m)[1:-1] in text]
        if leaked:
            failures.append(f"{route.label} as {user.role if user else 'anonymous'} of street A shows street-B data: "
                            f"{leaked}")
    assert not failures, "\n  ".join(failures)


def test_registries_name_existing_routes():
    labels = {r.label for r in api_routes()}
    templates = {r.template for r in api_routes()}
    stale = [k for k in BODIES if k not in labels] + [k for k in QUERIES if k not in labels]
    stale += [k for k in UNSCOPED_ROUTES if k not in templates] + [k for k in PUBLIC_API if k not in labels]
    assert not stale, f"registry entries for routes that no longer exist: {stale}"
