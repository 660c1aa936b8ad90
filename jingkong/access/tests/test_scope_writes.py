"""Writes whose *body* names another region's data are refused (the route walk covers path parameters and lists).

Every write route without path parameters is listed here: either with a body that points into street B, sent by a
street-A user holding the route's permission, or in NOT_REGION_WRITES with the reason it writes no region's data.
"""

from __future__ import annotations

import datetime as dt

import pytest

from jingkong.access.roles import Role
from jingkong.access.tests.test_route_guard import api_routes, send, session_client
from jingkong.conftest import make_user

pytestmark = pytest.mark.django_db

NOT_REGION_WRITES = {
    "POST /api/v1/access/tokens": "the caller's own token",
    "POST /api/v1/core/jobs/district": "platform-wide users only (tested in core)",
    "POST /api/v1/geo/regions/validate": "reads the caller's own subtree; writes nothing",
    "POST /api/v1/geo/counts/refresh": "platform-wide users only (tested in geo)",
    "POST /api/v1/people/imports": "multipart upload; the import's scope is tested in people/tests/test_import.py",
    "POST /api/v1/policy/profiles": "a new profile version belongs to no region; putting it in force is the activation",
    "POST /api/v1/policy/validate": "validates a posted rule set; writes nothing",
}


@pytest.fixture
def world(regions):
    from jingkong.geo.models import Building
    from jingkong.people.importer import import_persons
    from jingkong.people.tests.helpers import person_row, write_persons
    from jingkong.policy.services import profile_install_builtin

    Building.objects.create(code="B-b", grid=regions["grid_b1"], lon=121.825, lat=29.905)
    Building.objects.create(code="B-a", grid=regions["grid_a1"], lon=121.805, lat=29.905)
    resident_b = person_row(2, building_code="B-b", household_code="HB")
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        import_persons(write_persons(Path(tmp) / "b.csv", [resident_b]))
    profile_install_builtin()
    return {"regions": regions, "resident_b": resident_b}


def _new_id() -> str:
    from jingkong.people.tests.helpers import make_id

    return make_id(dt.date(1990, 5, 6), 77)


WRITES_NAMING_B = {
    "POST /api/v1/people/persons": (
        Role.STREET_OFFICER,
        lambda w: {"id_number": _new_id(), "name": "越界", "sex": "M", "birth_date": "1990-05-06", "building_code": "B-b"},
    ),
    "POST /api/v1/people/persons/lookup": (Role.STREET_OFFICER, lambda w: {"id_number": w["resident_b"]["id_number"]}),
    "POST /api/v1/policy/activations": (
        Role.COMMANDER, lambda w: {"profile_code": "cn-9th-2022", "region_code": "330206004", "reason": "越界"},
    ),
    "POST /api/v1/geo/regions/import": (
        Role.COMMANDER,
        lambda w: {"type": "FeatureCollection", "features": [{
            "type": "Feature", "geometry": None,
            "properties": {"code": "330206004001001", "name": "改名", "level": "grid", "parent_code": "330206004001"},
        }]},
    ),
}


def _merge_app_registries() -> None:
    """Apps list their write routes in ``jingkong/<app>/tests/guard_registry*.py`` as ``WRITES_NAMING_B`` (label ->
    (role, body)) and ``NOT_REGION_WRITES`` (label -> reason)."""
    import sys

    import jingkong.access.tests.test_route_guard  # noqa: F401 - loads every app's guard_registry

    for name, module in list(sys.modules.items()):
        if name.startswith("jingkong.") and ".tests.guard_registry" in name:
            WRITES_NAMING_B.update(getattr(module, "WRITES_NAMING_B", {}))
            NOT_REGION_WRITES.update(getattr(module, "NOT_REGION_WRITES", {}))


_merge_app_registries()


def _snapshot():
    from jingkong.geo.models import Region
    from jingkong.people.models import Person
    from jingkong.policy.models import PolicyActivation

    return (list(Person.objects.order_by("pk").values_list("pk", "name", "grid_id")),
            list(Region.objects.order_by("pk").values_list("code", "name", "parent_id")),
            PolicyActivation.objects.count())


def test_every_write_route_without_path_parameters_is_covered():
    writes = {f"{r.method} {r.template}" for r in api_routes() if r.method != "GET" and not r.params}
    missing = writes - set(WRITES_NAMING_B) - set(NOT_REGION_WRITES)
    assert not missing, f"write routes without a scope check of their body: {sorted(missing)} — add a body naming " \
                        "street B to WRITES_NAMING_B (or a reason to NOT_REGION_WRITES) in this file"
    assert not (set(WRITES_NAMING_B) | set(NOT_REGION_WRITES)) - writes, "registries name routes that no longer exist"


@pytest.mark.parametrize("label", sorted(WRITES_NAMING_B))
def test_a_body_naming_another_region_is_refused_and_changes_nothing(world, label):
    role, body = WRITES_NAMING_B[label]
    user = make_user(f"{role}_street_a", role, world["regions"]["street_a"])
    method, url = label.split(" ", 1)
    before = _snapshot()
    response = send(session_client(user), method, url, body(world))
    assert response.status_code in (403, 404, 422), (label, response.status_code, response.content[:300])
    assert _snapshot() == before


def test_a_region_inside_the_scope_cannot_be_hung_under_another_region(world):
    user = make_user("commander_street_a", Role.COMMANDER, world["regions"]["street_a"])
    body = {"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": None,
        "properties": {"code": "330206002001001", "name": "第一网格", "level": "grid", "parent_code": "330206004001"},
    }]}
    before = _snapshot()
    response = send(session_client(user), "POST", "/api/v1/geo/regions/import", body)
    assert response.status_code == 403, response.content[:300]
    assert _snapshot() == before
