"""Person tokens (jingkong.people.tokens): pure functions, no database."""

from __future__ import annotations

import re

import pytest

from jingkong.people import tokens
from jingkong.people.tokens import InvalidToken, person_token, resolve_token


@pytest.fixture(autouse=True)
def _english():
    """The reasons are translated (the UI defaults to Chinese): these tests read the English source strings."""
    from django.utils import translation

    with translation.override("en"):
        yield


def test_a_token_resolves_to_its_person_and_is_short_and_url_safe():
    for pid in (1, 35, 36, 123_456, 10**12):
        token = person_token(pid, key="k" * 40)
        assert resolve_token(token, key="k" * 40) == pid
        assert token.startswith("JK1.")
        assert re.fullmatch(r"[A-Za-z0-9._\-]+", token)
        assert len(token) <= 32


def test_the_same_person_always_gets_the_same_token_and_different_people_different_ones():
    assert person_token(7, key="a" * 40) == person_token(7, key="a" * 40)
    assert person_token(7, key="a" * 40) != person_token(8, key="a" * 40)


def test_default_key_comes_from_settings(settings):
    settings.ID_HASH_KEY = "one-key-" + "x" * 32
    token = person_token(42)
    assert resolve_token(token) == 42
    settings.ID_HASH_KEY = "another-key-" + "y" * 32
    with pytest.raises(InvalidToken, match="not genuine"):
        resolve_token(token)


def test_a_token_for_another_person_cannot_be_made_by_editing_the_number():
    token = person_token(41, key="k" * 40)
    body, mac = token.rsplit(".", 1)
    forged = body[:-1] + ("2" if body[-1] != "2" else "3") + "." + mac
    with pytest.raises(InvalidToken, match="not genuine"):
        resolve_token(forged, key="k" * 40)


def test_a_token_under_another_key_is_refused():
    with pytest.raises(InvalidToken, match="not genuine"):
        resolve_token(person_token(5, key="a" * 40), key="b" * 40)


@pytest.mark.parametrize("bad, reason", [
    ("", "missing"),
    ("   ", "missing"),
    ("330206199001011234", "not a person code"),
    ("JK2.1.AAAAAAAAAAAAAAAA", "not a person code"),
    ("JK1.", "malformed"),
    ("JK1.abc", "malformed"),
    ("JK1..AAAAAAAAAAAAAAAA", "malformed"),
    ("JK1.0a.AAAAAAAAAAAAAAAA", "malformed"),
    ("JK1.A1.AAAAAAAAAAAAAAAA", "malformed"),
    ("JK1.1.short", "malformed"),
    ("JK1.1." + "A" * 60, "not a person code"),
    ("JK1.1.ÄAAAAAAAAAAAAAAA", "not genuine"),
])
def test_malformed_tokens_say_what_is_wrong(bad, reason):
    with pytest.raises(InvalidToken, match=reason):
        resolve_token(bad, key="k" * 40)


def test_person_ids_must_be_positive_integers():
    for bad in (0, -1, True, "7"):
        with pytest.raises(ValueError):
            person_token(bad, key="k" * 40)


def test_looks_like_token():
    assert tokens.looks_like_token(" JK1.1.x")
    assert not tokens.looks_like_token("330206199001011234")
