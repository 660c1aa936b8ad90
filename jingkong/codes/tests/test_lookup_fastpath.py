"""The lean WSGI path for device lookups answers exactly what the Ninja route answers, and hands everything that is not
a plain success (no token, refused token, missing permission, bad input, other routes) to the full stack."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections

from jingkong.codes import api_tokens, lookup_wsgi, tokens
from jingkong.codes import keys as keyring
from jingkong.codes.tests.tokens_helpers import NOW, RED_REASONS, activate, resident
from jingkong.conftest import make_user
from jingkong.core import clock

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _isolated():
    from jingkong.policy.selectors import active_profile_cache_clear

    keyring.cache_clear()
    api_tokens.LOOKUP_AUTH.clear()
    active_profile_cache_clear()
    # as Django's test client does: the test's transaction must survive the request lifecycle signals
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)
    keyring.cache_clear()
    api_tokens.LOOKUP_AUTH.clear()


@pytest.fixture
def world(regions):
    activate()
    with clock.frozen(NOW):
        yield regions


@pytest.fixture
def apps():
    full = WSGIHandler()
    return full, lookup_wsgi.with_lookup_fast_path(full)


def call(app, body, *, token=None, path=lookup_wsgi.LOOKUP_PATH, method="POST", host="testserver"):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "SERVER_NAME": "testserver", "SERVER_PORT": "80",
               "HTTP_HOST": host, "wsgi.input": io.BytesIO(raw), "CONTENT_LENGTH": str(len(raw)),
               "CONTENT_TYPE": "application/json", "wsgi.url_scheme": "http", "REMOTE_ADDR": "127.0.0.1",
               "wsgi.errors": io.StringIO()}
    if token:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"] = int(status.split()[0])
        seen["headers"] = dict(headers)

    content = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], content


@pytest.fixture
def device(world):
    from jingkong.access.services import token_create

    guard = make_user("guard_fast", "checkpoint_officer", world["street_a"])
    return token_create(user=guard, name="device", actor=guard)[1]


def test_the_same_answers_as_the_ninja_route(world, apps, device, monkeypatch):
    full, fast = apps
    green, _ = resident(world["grid_a1"], name="李四")
    red, _ = resident(world["grid_b1"], colour="red", reasons=RED_REASONS, green_on=dt.date(2022, 1, 27))
    good = tokens.issue(green)
    prefix, kid, payload, sig = tokens.issue(red).split(".")
    altered = f"{prefix}.{kid}.{payload}.{sig[:-1]}{'A' if sig[-1] != 'A' else 'B'}"
    slow_path_used = []
    monkeypatch.setattr(lookup_wsgi, "_answer", _spy(lookup_wsgi._answer, slow_path_used))
    for value in (good, tokens.issue(red), altered, "garbage"):
        a = call(full, {"token": value}, token=device)
        b = call(fast, {"token": value}, token=device)
        assert a[0] == b[0] == 200
        assert json.loads(a[2]) == json.loads(b[2]), value
        assert b[1]["Cache-Control"] == "private, no-store" and b[1]["X-Content-Type-Options"] == "nosniff"
    assert slow_path_used == ["answered"] * 4  # every one of them on the lean path
    with clock.frozen(NOW + dt.timedelta(hours=2)):
        a, b = call(full, {"token": good}, token=device), call(fast, {"token": good}, token=device)
    assert json.loads(a[2]) == json.loads(b[2]) and json.loads(b[2])["reason_code"] == "expired"


def _spy(fn, calls):
    def wrapped(request, body):
        out = fn(request, body)
        calls.append("answered")
        return out

    return wrapped


def test_everything_else_goes_through_the_full_stack(world, apps, device, bearer):
    full, fast = apps
    person, _ = resident(world["grid_a1"])
    token = tokens.issue(person)
    sampler_token = bearer(make_user("sampler_fast", "sampler", world["street_a"]))["HTTP_AUTHORIZATION"][7:]
    cases = [
        dict(body={"token": token}),  # no bearer token: 401
        dict(body={"token": token}, token="jk_not-a-token"),  # 401
        dict(body={"token": token}, token=sampler_token),  # a role without CHECKPOINT_VERIFY: 403
        dict(body={"token": token}, token=sampler_token),  # again (the cached token check): still 403
        dict(body=b"{not json", token=device),  # 422/400 from Ninja
        dict(body={"nothing": 1}, token=device),  # 422
        dict(body={"token": token}, token=device, host="evil.example"),  # disallowed host: 400
        dict(body={"token": token}, token=device, method="GET"),  # 405
        dict(body={"id_number": "x"}, token=device, path="/api/v1/codes/lookup/id-number"),  # another route: 422
    ]
    for case in cases:
        a, b = call(full, **case), call(fast, **case)
        assert a[0] == b[0] and a[0] >= 400, (case, a[0], b[0])
        assert a[2] == b[2], case
    assert call(fast, {"token": token}, token=sampler_token)[0] == 403
    assert json.loads(call(fast, {"token": token}, token=sampler_token)[2])["code"] == "permission_denied"


def test_the_lean_path_still_runs_the_guard(world, apps, device, monkeypatch):
    from jingkong.access import guard

    _, fast = apps
    person, _ = resident(world["grid_a1"])
    token = tokens.issue(person)
    checked = []
    real = guard.authorize
    monkeypatch.setattr(guard, "authorize", lambda request, perm: checked.append(perm) or real(request, perm))
    assert call(fast, {"token": token}, token=device)[0] == 200
    assert checked == ["checkpoint.verify"]


# A refused bearer token falls back to the session auth, which answers 401, or 403 for the missing CSRF cookie.
REFUSED = (401, 403)


def test_a_revoked_token_an_inactive_user_or_an_expired_token_is_refused_within_seconds(world, apps, monkeypatch):
    """The lean path enforces what the guard enforces: revoked or expired API tokens and inactive users get 401 — at
    once when the change is saved in this process, within AUTH_CACHE_SECONDS when another process saved it."""
    from jingkong.access.models import ApiToken, User
    from jingkong.access.services import token_create, token_revoke

    full, fast = apps
    person, _ = resident(world["grid_a1"])
    token = tokens.issue(person)
    guard = make_user("guard_rev", "checkpoint_officer", world["street_a"])
    row, secret = token_create(user=guard, name="device", actor=guard)
    assert call(fast, {"token": token}, token=secret)[0] == 200  # the check is cached now

    token_revoke(token=row, actor=guard)  # in this process: refused at once
    assert call(fast, {"token": token}, token=secret)[0] in REFUSED
    assert call(full, {"token": token}, token=secret)[0] in REFUSED

    # another process revokes (no signal here): refused once the cache time has passed
    ticks = [1000.0]
    monkeypatch.setattr(api_tokens.time, "monotonic", lambda: ticks[0])
    row2, secret2 = token_create(user=guard, name="device 2", actor=guard)
    assert call(fast, {"token": token}, token=secret2)[0] == 200
    ApiToken.objects.filter(pk=row2.pk).update(revoked_at=NOW)
    ticks[0] += api_tokens.AUTH_CACHE_SECONDS + 0.01
    assert call(fast, {"token": token}, token=secret2)[0] in REFUSED

    # a deactivated user, by another process and in this one
    row3, secret3 = token_create(user=guard, name="device 3", actor=guard)
    assert call(fast, {"token": token}, token=secret3)[0] == 200
    User.objects.filter(pk=guard.pk).update(is_active=False)
    ticks[0] += api_tokens.AUTH_CACHE_SECONDS + 0.01
    assert call(fast, {"token": token}, token=secret3)[0] in REFUSED
    other = make_user("guard_rev2", "checkpoint_officer", world["street_a"])
    row4, secret4 = token_create(user=other, name="device 4", actor=other)
    assert call(fast, {"token": token}, token=secret4)[0] == 200
    other.is_active = False
    other.save(update_fields=["is_active"])
    assert call(fast, {"token": token}, token=secret4)[0] in REFUSED

    # an API token that expires while its check is cached: refused at its expiry
    fresh = make_user("guard_rev3", "checkpoint_officer", world["street_a"])
    row5, secret5 = token_create(user=fresh, name="device 5", actor=fresh)
    ApiToken.objects.filter(pk=row5.pk).update(expires_at=NOW + dt.timedelta(seconds=2))
    assert call(fast, {"token": token}, token=secret5)[0] == 200
    with clock.frozen(NOW + dt.timedelta(seconds=3)):
        assert call(fast, {"token": token}, token=secret5)[0] in REFUSED


def test_the_bearer_header_is_read_as_ninja_reads_it(world, apps, device):
    full, fast = apps
    person, _ = resident(world["grid_a1"])
    token = tokens.issue(person)
    for header_token in (f" {device}", f"{device} "):
        a, b = call(full, {"token": token}, token=header_token), call(fast, {"token": token}, token=header_token)
        assert a[0] == b[0] and a[0] in REFUSED and a[2] == b[2], header_token
