"""The lookup API for checkpoint and venue devices, the public key set, and key rotation through the API."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client

from jingkong.codes import api_tokens, tokens
from jingkong.codes import keys as keyring
from jingkong.codes.models import HealthCode, SigningKey
from jingkong.codes.tests.tokens_helpers import NOW, RED_REASONS, activate, resident
from jingkong.conftest import make_user
from jingkong.core import clock

pytestmark = pytest.mark.django_db
LOOKUP = "/api/v1/codes/lookup"
BY_ID = "/api/v1/codes/lookup/id-number"


@pytest.fixture(autouse=True)
def _fresh_caches():
    from jingkong.policy.selectors import active_profile_cache_clear

    keyring.cache_clear()
    api_tokens.LOOKUP_AUTH.clear()
    active_profile_cache_clear()
    yield
    keyring.cache_clear()
    api_tokens.LOOKUP_AUTH.clear()


@pytest.fixture
def world(regions):
    activate()
    with clock.frozen(NOW):
        yield regions


@pytest.fixture
def guard_a(world):
    return make_user("guard_a", "checkpoint_officer", world["street_a"])


@pytest.fixture
def device_a(guard_a, bearer):
    return bearer(guard_a)


def post(url, body, **headers):
    return Client().post(url, data=json.dumps(body), content_type="application/json", **headers)


def test_a_valid_token_gives_the_current_colour_beside_the_tokens(world, device_a):
    person, _ = resident(world["grid_a1"], name="李四", colour="green")
    token = tokens.issue(person)
    r = post(LOOKUP, {"token": token}, **device_a)
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["valid"] is True and body["reason_code"] is None
    assert body["colour"] == "green" and body["token_colour"] == "green"
    assert body["person_id"] == person.pk and body["name_masked"] == "李*" and body["id_masked"] == person.id_masked
    assert body["expires_at"] and body["kid"] == token.split(".")[1]
    # the code turns red after the token was shown: the lookup says so
    HealthCode.objects.filter(person=person).update(colour="red", reasons=RED_REASONS, green_on=dt.date(2022, 1, 27))
    body = post(LOOKUP, {"token": token}, **device_a).json()
    assert body["valid"] is True and body["token_colour"] == "green" and body["colour"] == "red"
    assert body["green_on"] == "2022-01-27"
    assert [r["rule"] for r in body["reasons"]] == ["close_contact_central", "lockdown_zone_resident"]
    assert body["reasons"][0]["until"] == "2022-01-20"


def test_invalid_tokens_answer_their_reason(world, device_a):
    person, _ = resident(world["grid_a1"], colour="yellow")
    token = tokens.issue(person)
    prefix, kid, payload, sig = token.split(".")
    cases = {
        "malformed": "not a token",
        "bad_signature": f"{prefix}.{kid}.{payload}.{sig[:-2]}{'A' if sig[-2] != 'A' else 'B'}{sig[-1]}",
        "unknown_key": f"{prefix}.nosuchkey.{payload}.{sig}",
    }
    for reason, value in cases.items():
        body = post(LOOKUP, {"token": value}, **device_a).json()
        assert body["valid"] is False and body["reason_code"] == reason, (reason, body)
        assert body["colour"] is None and body["person_id"] is None  # nothing about anyone
    with clock.frozen(NOW + dt.timedelta(hours=1)):
        body = post(LOOKUP, {"token": token}, **device_a).json()
    assert body["valid"] is False and body["reason_code"] == "expired"
    assert body["person_id"] == person.pk and body["colour"] == "yellow"  # genuine but old: ask for a fresh code


def test_bad_input_is_never_a_500(world, device_a):
    for body in ({}, {"token": None}, {"token": 5}, {"token": "x" * 5000}, {"token": "JKC1.\x00.a.b"}, {"tok": "x"}):
        r = post(LOOKUP, body, **device_a)
        assert r.status_code in (200, 422), (body, r.status_code)
        if r.status_code == 200:
            assert r.json()["reason_code"] == "malformed"
    r = Client().post(LOOKUP, data="not json", content_type="application/json", **device_a)
    assert r.status_code in (400, 422)


def test_token_lookup_is_not_region_limited(world, device_a):
    person_b, _ = resident(world["grid_b1"], colour="red", reasons=RED_REASONS)
    body = post(LOOKUP, {"token": tokens.issue(person_b)}, **device_a).json()
    assert body["valid"] is True and body["colour"] == "red"


def test_lookup_needs_the_checkpoint_permission(world, bearer, client_for):
    person, _ = resident(world["grid_a1"])
    token = tokens.issue(person)
    assert post(LOOKUP, {"token": token}).status_code == 401
    assert post(LOOKUP, {"token": token}, HTTP_AUTHORIZATION="Bearer jk_nope").status_code == 401
    sampler = make_user("sampler_a", "sampler", world["street_a"])
    headers = bearer(sampler)
    for _ in range(2):  # the second answer comes from the cached token check: still refused
        r = post(LOOKUP, {"token": token}, **headers)
        assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    officer = make_user("officer_x", "street_officer", world["street_a"])  # holds CHECKPOINT_VERIFY too
    assert client_for(officer).post(LOOKUP, data=json.dumps({"token": token}),
                                    content_type="application/json").status_code == 200


def test_the_hot_path_is_one_select(world, device_a, django_assert_num_queries):
    person, _ = resident(world["grid_a1"])
    token = tokens.issue(person)
    assert post(LOOKUP, {"token": token}, **device_a).status_code == 200  # warms the token check and the key set
    with django_assert_num_queries(1) as ctx:
        r = post(LOOKUP, {"token": token}, **device_a)
    assert r.status_code == 200 and r.json()["valid"] is True
    assert "codes_healthcode" in ctx.captured_queries[0]["sql"]
    assert "sessionid" not in r.cookies and not r.has_header("Set-Cookie")


def test_a_revoked_device_token_is_refused_within_the_cache_time(world, guard_a):
    from jingkong.access.services import token_create, token_revoke

    person, _ = resident(world["grid_a1"])
    token = tokens.issue(person)
    row, secret = token_create(user=guard_a, name="device", actor=guard_a)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    assert post(LOOKUP, {"token": token}, **headers).status_code == 200
    token_revoke(token=row, actor=guard_a)
    api_tokens.LOOKUP_AUTH.clear()  # what AUTH_CACHE_SECONDS of waiting does
    assert post(LOOKUP, {"token": token}, **headers).status_code == 401


def test_id_number_lookup_is_scoped_and_audited(world, device_a):
    from jingkong.access.models import AuditLog

    person_a, number_a = resident(world["grid_a1"], colour="yellow")
    person_b, number_b = resident(world["grid_b1"], colour="red")
    r = post(BY_ID, {"id_number": number_a.lower()}, **device_a)
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["source"] == "id_number" and body["colour"] == "yellow" and body["person_id"] == person_a.pk
    assert AuditLog.objects.filter(action="codes.lookup", object_id=str(person_a.pk), user__username="guard_a").exists()
    assert post(BY_ID, {"id_number": number_b}, **device_a).status_code == 404  # another street
    from jingkong.codes.tests.tokens_helpers import make_id

    assert post(BY_ID, {"id_number": make_id(dt.date(1990, 1, 1), 999)}, **device_a).status_code == 404  # unknown
    bad = post(BY_ID, {"id_number": number_a[:-1] + ("0" if number_a[-1] != "0" else "1")}, **device_a)
    assert bad.status_code == 422 and "id_number" in bad.json()["message"]
    assert post(BY_ID, {"id_number": "1\x002"}, **device_a).status_code == 422


def test_the_key_set_is_public_and_cacheable(world):
    r = Client().get("/api/v1/codes/keys")
    assert r.status_code == 200
    doc = r.json()
    assert len(doc["keys"]) == 1 and SigningKey.objects.count() == 1  # made on first use
    key = doc["keys"][0]
    assert set(key) == {"kid", "alg", "public_key", "not_before", "verify_until"} and key["alg"] == "Ed25519"
    assert "private" not in r.content.decode()
    assert "max-age" in r["Cache-Control"] and r["ETag"]
    again = Client().get("/api/v1/codes/keys", HTTP_IF_NONE_MATCH=r["ETag"])
    assert again.status_code == 304
    # a device verifies with exactly this document
    person, _ = resident(world["grid_a1"])
    assert tokens.verify(tokens.issue(person), public_keys=doc).person_id == person.pk


def test_rotation_through_the_api(world, commander, officer_a, client_for):
    person, _ = resident(world["grid_a1"])
    old = tokens.issue(person)
    assert client_for(officer_a).post("/api/v1/codes/keys/rotate").status_code == 403  # role without the permission
    street_commander = make_user("street_commander", "commander", world["street_a"])
    assert client_for(street_commander).post("/api/v1/codes/keys/rotate").status_code == 403  # not district-wide
    r = client_for(commander).post("/api/v1/codes/keys/rotate")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["kid"] != old.split(".")[1] and [k["kid"] for k in body["retired"]] == [old.split(".")[1]]
    assert body["retired"][0]["verify_until"]
    keys = Client().get("/api/v1/codes/keys").json()["keys"]
    assert {k["kid"] for k in keys} == {body["kid"], old.split(".")[1]}
    assert tokens.verify(old, public_keys={"keys": keys})
    assert tokens.issue(person).split(".")[1] == body["kid"]
