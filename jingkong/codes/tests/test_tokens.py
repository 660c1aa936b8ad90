"""The signed health-code token: what it carries, and that forged, altered, expired, premature, truncated or garbage
tokens are refused with the right reason — verifiable offline with the published public keys alone."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jingkong.codes import keys as keyring
from jingkong.codes import tokens
from jingkong.codes.tests.tokens_helpers import NOW, RED_REASONS, activate, resident
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
def world(regions):
    activate()
    with clock.frozen(NOW):
        yield regions


@pytest.fixture
def red(world):
    return resident(world["grid_a1"], name="张三丰", colour="red", reasons=RED_REASONS, green_on=dt.date(2022, 1, 27))


def _document():
    """The key set as a device holds it (what GET /api/v1/codes/keys serves), round-tripped through JSON."""
    return json.loads(json.dumps({"keys": [keyring.public_key_from(r).as_dict() for r in keyring.published()]}))


def test_a_token_carries_the_code_and_verifies(red):
    person, number = red
    token = tokens.issue(person)
    assert token.startswith("JKC1.") and token.isascii() and len(token) < 400
    v = tokens.verify(token)
    assert v.person_id == person.pk
    assert v.colour == "red"
    assert v.green_on == dt.date(2022, 1, 27)
    assert v.reasons == ("close_contact_central", "lockdown_zone_resident")
    assert v.name_masked == "张*丰" and "三" not in token
    assert v.id_masked == person.id_masked and number not in token
    assert v.issued_at == NOW
    # the validity is the profile's health_codes.token_minutes
    from jingkong.policy.selectors import active_profile

    minutes = active_profile(region_code=person.grid.code).rules.health_codes.token_minutes
    assert minutes and v.expires_at == NOW + dt.timedelta(minutes=minutes)


def test_name_masks():
    assert tokens.mask_name("张三") == "张*"
    assert tokens.mask_name("张三丰") == "张*丰"
    assert tokens.mask_name("欧阳小明") == "欧**明"
    assert tokens.mask_name("李") == "*"
    assert tokens.mask_name("") == ""


def test_a_profile_without_token_minutes_refuses_to_issue(red, monkeypatch):
    from jingkong.policy import selectors
    from jingkong.policy.schema import RulesIncomplete

    real = selectors.active_profile

    def without_minutes(**kwargs):
        active = real(**kwargs)
        codes = active.rules.health_codes.model_copy(update={"token_minutes": None})
        rules = active.rules.model_copy(update={"health_codes": codes})
        return selectors.ActiveProfile(profile=active.profile, rules=rules, activation=active.activation,
                                       region_code=active.region_code, at=active.at)

    monkeypatch.setattr(selectors, "active_profile", without_minutes)
    with pytest.raises(RulesIncomplete, match="token_minutes"):
        tokens.issue(red[0])


def test_offline_verification_needs_only_the_published_keys(red, django_assert_num_queries):
    token = tokens.issue(red[0])
    document = _document()
    keyring.cache_clear()
    with django_assert_num_queries(0):
        v = tokens.verify(token, public_keys=document)
        assert v.person_id == red[0].pk
        # the list of entries and a {kid: entry} mapping work too
        tokens.verify(token, public_keys=document["keys"])
        tokens.verify(token, public_keys={k["kid"]: k for k in document["keys"]})
        with pytest.raises(tokens.InvalidToken) as err:
            tokens.verify(token, public_keys={"keys": []})
        assert err.value.reason == "unknown_key"


def _reason(token, document, at=None):
    try:
        tokens.verify(token, public_keys=document, at=at)
    except tokens.InvalidToken as exc:
        return exc.reason
    return None


def test_every_altered_character_is_refused(red):
    token = tokens.issue(red[0])
    document = _document()
    assert _reason(token, document) is None
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
    for i, ch in enumerate(token):
        other = alphabet[(alphabet.index(ch) + 1) % len(alphabet)] if ch in alphabet else "A"
        altered = token[:i] + other + token[i + 1:]
        assert _reason(altered, document) in ("malformed", "bad_signature", "unknown_key"), (i, altered)


def test_every_altered_payload_byte_breaks_the_signature(red):
    token = tokens.issue(red[0])
    document = _document()
    prefix, kid, payload, signature = token.split(".")
    body = keyring.b64d(payload)
    for i in range(len(body)):
        for bit in (0x01, 0x80):
            changed = bytearray(body)
            changed[i] ^= bit
            altered = f"{prefix}.{kid}.{keyring.b64e(bytes(changed))}.{signature}"
            assert _reason(altered, document) == "bad_signature", i
    sig = keyring.b64d(signature)
    for i in range(len(sig)):
        changed = bytearray(sig)
        changed[i] ^= 0x01
        assert _reason(f"{prefix}.{kid}.{payload}.{keyring.b64e(bytes(changed))}", document) == "bad_signature", i


def test_a_colour_changed_in_the_payload_is_refused(red):
    token = tokens.issue(red[0])
    document = _document()
    prefix, kid, payload, signature = token.split(".")
    data = json.loads(keyring.b64d(payload))
    data["c"] = "g"
    forged_body = keyring.b64e(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode())
    assert _reason(f"{prefix}.{kid}.{forged_body}.{signature}", document) == "bad_signature"


def test_forged_tokens_are_refused(red):
    token = tokens.issue(red[0])
    document = _document()
    kid = token.split(".")[1]
    payload = json.loads(keyring.b64d(token.split(".")[2]))
    payload["c"] = "g"
    intruder = Ed25519PrivateKey.generate()
    # signed with a key of the intruder's, claiming our key id
    assert _reason(tokens.encode(payload, kid=kid, private_key=intruder), document) == "bad_signature"
    # signed with the intruder's key under a key id nobody published
    assert _reason(tokens.encode(payload, kid="intruder", private_key=intruder), document) == "unknown_key"
    # the right key id, but the device holds a different public key under it
    wrong = [dict(k, public_key=keyring.b64e(intruder.public_key().public_bytes_raw())) for k in document["keys"]]
    assert _reason(token, {"keys": wrong}) == "bad_signature"


def test_expired_and_not_yet_valid(red):
    token = tokens.issue(red[0])
    document = _document()
    v = tokens.verify(token, public_keys=document)
    assert _reason(token, document, at=v.expires_at - dt.timedelta(seconds=1)) is None
    assert _reason(token, document, at=v.expires_at) == "expired"
    assert _reason(token, document, at=v.expires_at + dt.timedelta(days=3)) == "expired"
    with pytest.raises(tokens.InvalidToken) as err:
        tokens.verify(token, public_keys=document, at=v.expires_at)
    assert err.value.token is not None and err.value.token.person_id == red[0].pk  # whose it was, for the officer
    assert _reason(token, document, at=v.issued_at - keyring.CLOCK_SKEW) is None  # a device clock slightly behind
    assert _reason(token, document, at=v.issued_at - keyring.CLOCK_SKEW - dt.timedelta(seconds=1)) == "not_yet_valid"
    # issued (genuinely signed) in the future
    later = tokens.issue(red[0], at=NOW + dt.timedelta(hours=1))
    assert _reason(later, document, at=NOW) == "not_yet_valid"


def test_truncated_tokens_are_refused(red):
    token = tokens.issue(red[0])
    document = _document()
    for n in range(len(token)):
        assert _reason(token[:n], document) in ("malformed", "bad_signature", "unknown_key"), n
    assert _reason(token + "A", document) in ("malformed", "bad_signature")
    assert _reason(token + ".x", document) == "malformed"


@pytest.mark.parametrize("garbage", [
    "", " ", "JKC1", "JKC1...", "JKC1.a.b.c", "JKC2.abc.def.ghi", "hello world", "null", "{}", "\x00" * 10,
    "JKC1.健康码.abc.def", "健康码", "JKC1.abcdefgh.eyJwIjoxfQ.AAAA", "😀" * 50, "A" * 5000, "JKC1." + "." * 3000,
    "https://example.org/?code=JKC1.x.y.z", "jkc1.abcdefgh.eyJw.AAAA",
])
def test_garbage_is_malformed(garbage, world):
    assert _reason(garbage, {"keys": []}) == "malformed"


@pytest.mark.parametrize("garbage", [None, 12, b"JKC1.a.b.c", ["JKC1"]])
def test_non_strings_are_malformed(garbage):
    assert _reason(garbage, {"keys": []}) == "malformed"


def test_a_genuinely_signed_but_unreadable_payload_is_malformed(red):
    kid, private = keyring.signing_key()
    document = _document()
    base = {"p": 1, "c": "g", "g": None, "r": [], "n": "", "i": "", "t": 1_700_000_000, "e": 1_700_000_300}
    bad = [dict(base, p=True), dict(base, p=-1), dict(base, c="blue"), dict(base, g="2022-13-45"), dict(base, r=[1]),
           dict(base, e=base["t"]), dict(base, e=base["t"] + 86_401), {k: v for k, v in base.items() if k != "n"},
           dict(base, extra=1)]
    for payload in bad:
        assert _reason(tokens.encode(payload, kid=kid, private_key=private), document,
                       at=dt.datetime(2023, 11, 14, 22, 14, tzinfo=dt.UTC)) == "malformed", payload


def test_the_server_verifies_from_its_cached_key_set(red, django_assert_num_queries):
    token = tokens.issue(red[0])
    tokens.verify(token)  # loads the key set
    with django_assert_num_queries(0):
        tokens.verify(token)
