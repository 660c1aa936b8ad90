"""/api/v1/policy/: reading, validating, versioning and activating, with role and region-scope checks."""

from __future__ import annotations

import copy
import json

import pytest

from jingkong.access.models import AuditLog
from jingkong.conftest import make_user
from jingkong.core.models import DomainEvent
from jingkong.policy.models import PolicyActivation, PolicyProfile
from jingkong.policy.services import profile_activate

URL = "/api/v1/policy"


def _post(client, path, body):
    return client.post(URL + path, data=json.dumps(body), content_type="application/json")


@pytest.fixture
def analyst(regions):
    return make_user("analyst", "analyst", regions["district"])


@pytest.fixture
def commander_b(regions):
    """A commander whose scope is street B only."""
    return make_user("commander_b", "commander", regions["street_b"])


@pytest.fixture
def in_force(installed, regions):
    return profile_activate(profile=installed["cn-8th-2021"], region=regions["district"], actor=None, reason="8th")


def test_profiles_are_listed_and_shown_with_sources(installed, analyst, client_for):
    client = client_for(analyst)
    listed = client.get(URL + "/profiles").json()
    assert [(p["code"], p["version"]) for p in listed] == [("cn-8th-2021", 1), ("cn-9th-2022", 1)]
    detail = client.get(URL + "/profiles/cn-9th-2022").json()
    assert detail["rules"]["quarantine"]["close_contact"]["central_days"] == 7
    assert detail["sources"]["quarantine.close_contact.central_days"]["status"] == "S"
    assert client.get(URL + "/profiles/cn-9th-2022?version=1").status_code == 200
    assert client.get(URL + "/profiles/cn-9th-2022?version=9").status_code == 404
    assert client.get(URL + "/profiles/nope").status_code == 404


def test_a_volunteer_cannot_read_policy(installed, volunteer_a, client_for):
    assert client_for(volunteer_a).get(URL + "/profiles").status_code == 403


def test_the_active_profile_for_the_users_district(in_force, officer_a, regions, client_for):
    client = client_for(officer_a)
    body = client.get(URL + "/active").json()
    assert (body["region_code"], body["profile"]["code"]) == ("330206002", "cn-8th-2021")
    assert body["activation"]["region_code"] == "330206"
    assert body["profile"]["rules"]["zones"]["scheme"] == "three_zones"
    outside = client.get(URL + "/active", {"region": regions["community_b"].code})
    assert outside.status_code == 404
    before = client.get(URL + "/active", {"at": "2000-01-01T00:00:00+08:00"})
    assert (before.status_code, before.json()["code"]) == (404, "policy_not_active")


def test_validate_returns_errors_with_paths(installed, analyst, client_for):
    client = client_for(analyst)
    rules = copy.deepcopy(installed["cn-8th-2021"].rules)
    assert _post(client, "/validate", {"rules": rules}).json() == {"valid": True, "errors": []}
    rules["quarantine"]["close_contact"]["central_days"] = -2
    rules["zones"]["lifting"]["extra"] = 1
    body = _post(client, "/validate", {"rules": rules}).json()
    assert body["valid"] is False
    assert {e["path"] for e in body["errors"]} == {"quarantine.close_contact.central_days", "zones.lifting.extra"}
    assert PolicyProfile.objects.count() == 2  # nothing stored


def test_creating_a_version_needs_policy_edit(installed, analyst, commander, client_for):
    rules = copy.deepcopy(installed["cn-9th-2022"].rules)
    rules["quarantine"]["transfer_deadline_hours"]["close_contact"] = 6
    body = {"code": "cn-9th-2022", "rules": rules, "note": "faster transfer"}
    assert _post(client_for(analyst), "/profiles", body).status_code == 403
    created = _post(client_for(commander), "/profiles", body)
    assert created.status_code == 201
    assert (created.json()["version"], created.json()["created_by"]) == (2, "commander")
    assert created.json()["sources"]["quarantine.transfer_deadline_hours.close_contact"]["status"] == "local"


def test_an_invalid_version_is_refused_with_paths(installed, commander, client_for):
    rules = copy.deepcopy(installed["cn-9th-2022"].rules)
    rules["testing"]["pool_sizes_allowed"] = [5, 10]
    response = _post(client_for(commander), "/profiles", {"code": "cn-9th-2022", "rules": rules})
    assert response.status_code == 422
    assert response.json()["extra"]["errors"][0]["path"] == "rules.testing.pool_sizes_allowed"
    assert PolicyProfile.objects.filter(code="cn-9th-2022").count() == 1


def test_the_commander_activates_for_the_district(installed, commander, client_for):
    response = _post(client_for(commander), "/activations",
                     {"profile_code": "cn-9th-2022", "region_code": "330206", "reason": "9th edition issued"})
    assert response.status_code == 201
    assert (response.json()["profile_code"], response.json()["activated_by"]) == ("cn-9th-2022", "commander")
    row = PolicyActivation.objects.get()
    assert AuditLog.objects.filter(action="policy.activate", object_id=str(row.pk), user=commander).exists()
    assert DomainEvent.objects.filter(type="policy.activated", subject_id=str(row.pk)).exists()


def test_an_analyst_cannot_activate(installed, analyst, client_for):
    response = _post(client_for(analyst), "/activations",
                     {"profile_code": "cn-9th-2022", "region_code": "330206", "reason": "x"})
    assert response.status_code == 403
    assert not PolicyActivation.objects.exists()


def test_officer_b_cannot_activate_for_street_a(installed, officer_b, regions, client_for):
    response = _post(client_for(officer_b), "/activations",
                     {"profile_code": "cn-9th-2022", "region_code": regions["street_a"].code, "reason": "x"})
    assert response.status_code == 403
    assert not PolicyActivation.objects.exists()


def test_activation_is_limited_to_the_users_scope(installed, commander_b, regions, client_for):
    client = client_for(commander_b)
    body = {"profile_code": "cn-9th-2022", "reason": "street pilot"}
    assert _post(client, "/activations", {**body, "region_code": regions["street_a"].code}).status_code == 404
    assert _post(client, "/activations", {**body, "region_code": "330206"}).status_code == 404  # the whole district
    assert _post(client, "/activations", {**body, "region_code": "330206999"}).status_code == 404  # no such region
    assert not PolicyActivation.objects.exists()
    assert _post(client, "/activations", {**body, "region_code": regions["street_b"].code}).status_code == 201


def test_activation_needs_a_reason_and_a_known_profile(installed, commander, client_for):
    client = client_for(commander)
    assert _post(client, "/activations", {"profile_code": "cn-9th-2022", "region_code": "330206",
                                          "reason": ""}).status_code == 422
    assert _post(client, "/activations", {"profile_code": "cn-10th", "region_code": "330206",
                                          "reason": "x"}).status_code == 404


def test_activation_history_is_scoped(in_force, installed, officer_a, regions, client_for):
    profile_activate(profile=installed["cn-9th-2022"], region=regions["street_b"], actor=None, reason="street B")
    profile_activate(profile=installed["cn-9th-2022"], region=regions["street_a"], actor=None, reason="street A")
    seen = client_for(officer_a).get(URL + "/activations").json()
    assert sorted(a["region_code"] for a in seen) == ["330206", "330206002"]
