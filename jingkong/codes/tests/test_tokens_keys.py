"""Signing keys: created on first use, private key encrypted, rotation keeps tokens in flight valid, CLI."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command

from jingkong.codes import keys as keyring
from jingkong.codes import tokens
from jingkong.codes.models import SigningKey
from jingkong.codes.tests.tokens_helpers import NOW, activate, resident
from jingkong.core import clock

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_caches():
    from jingkong.policy.selectors import active_profile_cache_clear

    keyring.cache_clear()
    active_profile_cache_clear()
    yield
    keyring.cache_clear()


@pytest.fixture
def person(regions):
    activate()
    with clock.frozen(NOW):
        yield resident(regions["grid_a1"])[0]


def test_the_first_token_creates_a_key(person):
    assert not SigningKey.objects.exists()
    token = tokens.issue(person)
    row = SigningKey.objects.get()
    assert token.split(".")[1] == row.kid and row.retired_at is None and row.verify_until is None
    assert tokens.issue(person).split(".")[1] == row.kid  # and keeps using it
    from jingkong.access.models import AuditLog

    assert AuditLog.objects.filter(action="codes.key_create", object_id=row.kid).exists()


def test_the_private_key_is_stored_encrypted(person):
    tokens.issue(person)
    row = SigningKey.objects.get()
    assert row.private_key.startswith("v1.")
    raw = keyring.decrypt_private_key(row.private_key, kid=row.kid)
    assert len(raw) == 32 and keyring.b64e(raw) not in row.private_key
    with pytest.raises(keyring.KeyUnavailable, match="rotate-key"):
        keyring.decrypt_private_key(row.private_key, kid=row.kid, secret="another-secret-key-" + "y" * 32)
    with pytest.raises(keyring.KeyUnavailable):  # bound to its key id
        keyring.decrypt_private_key(row.private_key, kid="otherkid")


def test_a_changed_secret_key_stops_signing_until_a_rotation(person, settings):
    tokens.issue(person)
    keyring.cache_clear()
    settings.SECRET_KEY = "a-new-secret-key-" + "z" * 40
    with pytest.raises(keyring.KeyUnavailable):
        tokens.issue(person)
    keyring.rotate()
    assert tokens.verify(tokens.issue(person))


def test_rotation_keeps_tokens_in_flight_valid(person):
    old_token = tokens.issue(person)
    old_kid = old_token.split(".")[1]
    minutes = tokens.token_minutes(person.grid.code, at=NOW)
    rotated_at = NOW + dt.timedelta(minutes=2)
    with clock.frozen(rotated_at):
        rotation = keyring.rotate()
        new_token = tokens.issue(person)
    assert [r.kid for r in rotation.retired] == [old_kid]
    new_kid = new_token.split(".")[1]
    assert new_kid == rotation.key.kid != old_kid
    old = SigningKey.objects.get(kid=old_kid)
    assert old.retired_at == rotated_at
    assert old.verify_until == rotated_at + dt.timedelta(minutes=minutes) + keyring.CLOCK_SKEW
    # the old token verifies to its own expiry, on the server and on a device holding the published set
    with clock.frozen(rotated_at + dt.timedelta(minutes=1)):
        document = {"keys": [keyring.public_key_from(r).as_dict() for r in keyring.published()]}
        assert {k["kid"] for k in document["keys"]} == {old_kid, new_kid}
        assert tokens.verify(old_token).kid == old_kid
        assert tokens.verify(old_token, public_keys=document).kid == old_kid
        assert tokens.verify(new_token, public_keys=document).kid == new_kid
    expiry = tokens.verify(old_token, at=NOW).expires_at
    assert expiry <= old.verify_until
    assert tokens.reason_of(old_token, at=expiry) == "expired"
    # after verify_until the old key is no longer published
    with clock.frozen(old.verify_until + dt.timedelta(seconds=1)):
        assert [r.kid for r in keyring.published()] == [new_kid]


def test_a_retired_key_does_not_verify_after_its_window(person):
    token = tokens.issue(person)
    kid = token.split(".")[1]
    with clock.frozen(NOW + dt.timedelta(seconds=10)):
        keyring.rotate()
    row = SigningKey.objects.get(kid=kid)
    key = keyring.public_key_from(row)
    assert key.valid_at(row.verify_until) and not key.valid_at(row.verify_until + dt.timedelta(seconds=1))


def test_rotation_is_audited_with_an_event(person):
    from jingkong.access.models import AuditLog
    from jingkong.core.models import DomainEvent

    tokens.issue(person)
    rotation = keyring.rotate(source="test")
    record = AuditLog.objects.get(action="codes.key_rotate")
    assert record.object_id == rotation.key.kid and record.detail["retired"] == [r.kid for r in rotation.retired]
    assert DomainEvent.objects.filter(type="codes.key_rotated", payload__kid=rotation.key.kid).exists()


def test_another_process_rotating_is_seen_at_once(person):
    """A token signed by a key this process has not cached yet (made elsewhere) verifies without waiting."""
    import time

    tokens.verify(tokens.issue(person))  # caches the set
    stale = dict(keyring._cache.keys)
    new = keyring._create(NOW)  # as if made by another process: this one keeps its fresh (30 s) but stale cache
    keyring._cache.keys, keyring._cache.loaded = stale, time.monotonic() - 0.5
    token = tokens.encode({"p": person.pk, "c": "g", "g": None, "r": [], "n": "", "i": "", "t": int(NOW.timestamp()),
                           "e": int(NOW.timestamp()) + 60}, kid=new.kid,
                          private_key=keyring.Ed25519PrivateKey.from_private_bytes(
                              keyring.decrypt_private_key(new.private_key, kid=new.kid)))
    assert tokens.verify(token).kid == new.kid


def test_cli_rotate_key(person):
    out = io.StringIO()
    call_command("codes_rotate_key", "--if-none", stdout=out)
    first = SigningKey.objects.get()
    assert first.kid in out.getvalue()
    call_command("codes_rotate_key", "--if-none", stdout=(out := io.StringIO()))
    assert "nothing changed" in out.getvalue() and SigningKey.objects.count() == 1
    call_command("codes_rotate_key", stdout=(out := io.StringIO()))
    assert SigningKey.objects.count() == 2
    assert f"{first.kid} stopped signing" in out.getvalue()


def test_the_jingkong_command_resolves_codes_rotate_key():
    from jingkong.cli import _jingkong_commands, _resolve

    assert _resolve(["codes", "rotate-key"], _jingkong_commands()) == ["codes_rotate_key"]
