from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from jingkong.access.auth import hash_token
from jingkong.access.models import ApiToken, AuditLog
from jingkong.access.services import token_create, token_revoke
from jingkong.conftest import make_user
from jingkong.core import clock


def _auth(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.mark.django_db
def test_a_valid_token_authenticates_and_records_its_use(officer_a):
    row, token = token_create(user=officer_a, name="tablet", actor=officer_a)
    r = Client().get("/api/v1/access/me", **_auth(token))
    assert r.status_code == 200
    assert r.json()["username"] == "officer_a" and r.json()["auth"] == "token"
    row.refresh_from_db()
    assert row.last_used_at is not None
    assert row.token_hash == hash_token(token) and token not in row.prefix + row.token_hash  # only a hash is kept


@pytest.mark.django_db
def test_a_revoked_token_is_refused(officer_a):
    row, token = token_create(user=officer_a, name="tablet", actor=officer_a)
    token_revoke(token=row, actor=officer_a)
    assert Client().get("/api/v1/access/me", **_auth(token)).status_code == 401


@pytest.mark.django_db
def test_an_expired_token_is_refused(officer_a):
    t0 = dt.datetime(2022, 1, 1, tzinfo=dt.UTC)
    with clock.frozen(t0):
        _, token = token_create(user=officer_a, name="tablet", actor=officer_a, expires_at=t0 + dt.timedelta(days=1))
    with clock.frozen(t0 + dt.timedelta(hours=23)):
        assert Client().get("/api/v1/access/me", **_auth(token)).status_code == 200
    with clock.frozen(t0 + dt.timedelta(days=1)):
        assert Client().get("/api/v1/access/me", **_auth(token)).status_code == 401


@pytest.mark.django_db
def test_a_token_with_the_wrong_prefix_or_unknown_is_refused(officer_a):
    _, token = token_create(user=officer_a, name="tablet", actor=officer_a)
    assert Client().get("/api/v1/access/me", **_auth("xx_" + token[3:])).status_code == 401
    assert Client().get("/api/v1/access/me", **_auth(token + "x")).status_code == 401
    assert Client().get("/api/v1/access/me", HTTP_AUTHORIZATION=f"Token {token}").status_code == 401


@pytest.mark.django_db
def test_a_deactivated_users_token_is_refused(officer_a):
    _, token = token_create(user=officer_a, name="tablet", actor=officer_a)
    officer_a.is_active = False
    officer_a.save()
    assert Client().get("/api/v1/access/me", **_auth(token)).status_code == 401


@pytest.mark.django_db
def test_me_tells_role_region_and_permissions(officer_a, admin_user, client_for):
    me = client_for(officer_a).get("/api/v1/access/me").json()
    assert me["role"] == "street_officer" and me["region"]["code"] == "330206002" and me["scope"] == "330206002"
    assert "person.view" in me["permissions"] and "user.admin" not in me["permissions"]
    assert me["auth"] == "session"
    admin = client_for(admin_user).get("/api/v1/access/me").json()
    assert admin["region"] is None and admin["scope"] == "" and "user.admin" in admin["permissions"]


@pytest.mark.django_db
def test_own_tokens_are_created_shown_once_listed_and_revoked(officer_a, client_for):
    c = client_for(officer_a)
    created = c.post("/api/v1/access/tokens", {"name": "phone", "expires_in_days": 30}, content_type="application/json")
    assert created.status_code == 201
    body = created.json()
    assert body["token"].startswith("jk_") and body["prefix"] == body["token"][:10]
    listed = c.get("/api/v1/access/tokens").json()
    assert [t["name"] for t in listed] == ["phone"] and "token" not in listed[0]
    assert Client().get("/api/v1/access/me", **_auth(body["token"])).status_code == 200
    assert c.delete(f"/api/v1/access/tokens/{body['id']}").json()["revoked_at"] is not None
    assert Client().get("/api/v1/access/me", **_auth(body["token"])).status_code == 401
    actions = list(AuditLog.objects.filter(object_type="access.apitoken").values_list("action", flat=True))
    assert sorted(actions) == ["token.create", "token.revoke"]


@pytest.mark.django_db
def test_nobody_revokes_someone_elses_token_through_the_own_tokens_route(officer_a, officer_b, client_for):
    row, _ = token_create(user=officer_b, name="b", actor=officer_b)
    assert client_for(officer_a).delete(f"/api/v1/access/tokens/{row.pk}").status_code == 404
    row.refresh_from_db()
    assert row.revoked_at is None


@pytest.mark.django_db
def test_user_admins_manage_tokens_of_users_in_their_scope_only(regions, officer_a, officer_b, admin_user, client_for):
    street_admin = make_user("street_admin", "administrator", regions["street_a"])
    c = client_for(street_admin)
    made = c.post(f"/api/v1/access/users/{officer_a.pk}/tokens", {"name": "scanner"}, content_type="application/json")
    assert made.status_code == 201
    assert ApiToken.objects.get(pk=made.json()["id"]).user == officer_a
    assert c.post(f"/api/v1/access/users/{officer_b.pk}/tokens", {"name": "x"},
                  content_type="application/json").status_code == 404
    assert c.get(f"/api/v1/access/users/{admin_user.pk}/tokens").status_code == 404  # platform-wide user: not inside
    assert [u["username"] for u in c.get("/api/v1/access/users").json()] == ["officer_a", "street_admin"]
    # the platform administrator reaches everyone
    assert client_for(admin_user).get(f"/api/v1/access/users/{officer_b.pk}/tokens").status_code == 200
    revoked = c.delete(f"/api/v1/access/users/{officer_a.pk}/tokens/{made.json()['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]


@pytest.mark.django_db
def test_token_creation_validates_its_input(officer_a, client_for):
    c = client_for(officer_a)
    assert c.post("/api/v1/access/tokens", {"name": ""}, content_type="application/json").status_code == 422
    assert c.post("/api/v1/access/tokens", {"name": "x", "expires_in_days": 0},
                  content_type="application/json").status_code == 422
