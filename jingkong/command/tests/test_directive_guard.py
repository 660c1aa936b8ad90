"""The route walk of jingkong/access/tests (401/403/out-of-scope 404/no leak in lists/bodies naming street B) run on
the directives area's API routes alone, so this area's guarantees are checked even while other areas' routes are
being built."""

from __future__ import annotations

import pytest

from jingkong.access.tests import test_route_guard as walk
from jingkong.access.tests import test_scope_writes as writes

pytestmark = pytest.mark.django_db

OURS = ("/api/v1/command/directives", "/api/v1/command/tasks", "/api/v1/command/workers",
        "/api/v1/command/problems", "/api/v1/command/rollup")
_all_routes = walk.api_routes


def _ours():
    return [r for r in _all_routes() if r.template.startswith(OURS)]


@pytest.fixture
def only_ours(monkeypatch):
    assert len(_ours()) >= 20
    monkeypatch.setattr(walk, "api_routes", _ours)
    monkeypatch.setattr(writes, "api_routes", _ours)


def test_every_route_is_guarded(only_ours):
    walk.test_every_api_operation_carries_the_guard()


def test_anonymous_and_unpermitted_are_refused(only_ours, regions):
    walk.test_every_api_route_refuses_anonymous_requests(regions)
    walk.test_every_api_route_refuses_roles_without_its_permission(regions)


def test_other_regions_objects_are_not_found(only_ours, regions):
    walk.test_objects_of_another_region_are_not_found(regions)


def test_lists_show_nothing_of_another_region(only_ours, regions, monkeypatch):
    from jingkong.command.tests import guard_registry_directives as ours

    names = ("directive_id", "task_id", "worker_id", "problem_id")
    monkeypatch.setattr(walk, "FACTORIES", {n: walk.FACTORIES[n] for n in names})
    monkeypatch.setattr(walk, "SEEDS", [])
    assert ours  # registered
    walk.test_lists_show_nothing_of_another_region(regions)


@pytest.mark.parametrize("label", sorted(k for k in writes.WRITES_NAMING_B if k.split(" ", 1)[1].startswith(OURS)))
def test_bodies_naming_street_b_are_refused(only_ours, label, regions):
    from jingkong.command.models import Directive, FieldWorker, Problem, Task
    from jingkong.conftest import make_user

    role, body = writes.WRITES_NAMING_B[label]
    user = make_user(f"{role}_street_a", role, regions["street_a"])
    method, url = label.split(" ", 1)
    before = (Directive.objects.count(), Task.objects.count(), FieldWorker.objects.count(), Problem.objects.count())
    r = walk.send(walk.session_client(user), method, url, body({"regions": regions}))
    assert r.status_code in (403, 404), (label, r.status_code, r.content[:300])
    assert (Directive.objects.count(), Task.objects.count(), FieldWorker.objects.count(),
            Problem.objects.count()) == before
