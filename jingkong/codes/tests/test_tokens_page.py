"""The 亮码 page: a resident shows their code with their ID number and registered phone number."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client

from jingkong.access.models import AuditLog
from jingkong.codes import keys as keyring
from jingkong.codes import tokens, views_tokens
from jingkong.codes.tests.tokens_helpers import NOW, RED_REASONS, activate, make_id, resident
from jingkong.core import clock

pytestmark = pytest.mark.django_db
URL = "/codes/show/"


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
    return resident(world["grid_a1"], name="王小红", phone="13912345678", colour="red", reasons=RED_REASONS,
                    green_on=dt.date(2022, 1, 27))


def show(client, id_number, phone, **extra):
    return client.post(URL, {"id_number": id_number, "phone": phone}, REMOTE_ADDR=extra.pop("ip", "10.0.0.1"), **extra)


def test_the_form_is_public_and_mobile_friendly(world):
    r = Client().get(URL)
    assert r.status_code == 200
    html = r.content.decode()
    assert 'name="id_number"' in html and 'name="phone"' in html and 'name="viewport"' in html
    assert "http://" not in html and "https://" not in html  # nothing fetched from elsewhere


def test_the_right_phone_shows_the_code_with_a_qr_and_is_audited(red):
    person, number = red
    client = Client(REMOTE_ADDR="10.0.0.1")
    r = show(client, number, "139 1234 5678")
    assert r.status_code == 302 and r["Location"] == URL
    page = client.get(URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-colour="red"' in html and "王*红" in html and person.id_masked in html
    assert "2022-01-27" in html  # the date it may turn green
    assert "Close contact in centralised quarantine" in html or "密切接触" in html
    assert "<svg" in html and "<script src" not in html  # inline QR, no external script
    token = page.context["token"]
    assert tokens.verify(token).person_id == person.pk and tokens.verify(token).colour == "red"
    refresh = int(re.search(r'http-equiv="refresh" content="(\d+)"', html).group(1))
    assert 0 < refresh < (tokens.verify(token).expires_at - NOW).total_seconds()  # renewed before it expires
    shown = AuditLog.objects.filter(action=views_tokens.SHOW_ACTION, object_type="people.person",
                                    object_id=str(person.pk))
    assert shown.count() == 1 and shown.get().ip == "10.0.0.1" and shown.get().region_code == person.grid.code
    assert number not in html and number not in str(shown.get().detail)
    # the page renews: a reload issues a new token (and is audited again)
    with clock.frozen(NOW + dt.timedelta(minutes=4)):
        again = client.get(URL)
    assert again.context["token"] != token and shown.count() == 2
    # "not me" forgets the person
    client.post(URL, {"action": "forget"})
    assert 'name="id_number"' in client.get(URL).content.decode()


def test_a_wrong_phone_and_an_unknown_id_get_the_same_answer(red):
    _, number = red
    unknown = make_id(dt.date(1991, 3, 4), 321)
    wrong_phone = show(Client(), number, "13900000000")
    unknown_id = show(Client(), unknown, "13912345678")
    no_phone = show(Client(), number, "")
    assert wrong_phone.status_code == unknown_id.status_code == no_phone.status_code == 403
    error = re.compile(r'<p class="cd-error" role="alert">(.*?)</p>', re.S)
    assert error.search(wrong_phone.content.decode()).group(1) == error.search(unknown_id.content.decode()).group(1)
    assert AuditLog.objects.filter(action=views_tokens.FAILED_ACTION).count() == 3
    assert "王" not in wrong_phone.content.decode()


def test_a_bad_id_number_is_refused(red):
    _, number = red
    wrong_check = number[:-1] + ("1" if number[-1] != "1" else "2")
    for value in (wrong_check, "12345", "33020619800101123", "", "330206198013011234", "3302\x0019800101123X"):
        r = show(Client(), value, "13912345678")
        assert r.status_code == 422, value
        assert 'class="cd-error"' in r.content.decode()


def test_attempts_are_limited_per_address(red):
    _, number = red
    for i in range(views_tokens.FAILURES_PER_ADDRESS):  # a different ID number each time (not the per-number limit)
        assert show(Client(), make_id(dt.date(1991, 3, 4), 100 + i), "13900000000", ip="10.9.9.9").status_code == 403
    locked = show(Client(), number, "13912345678", ip="10.9.9.9")  # even the right answer, now
    assert locked.status_code == 429
    assert show(Client(), number, "13912345678", ip="10.9.9.8").status_code == 302  # another address is not affected
    with clock.frozen(NOW + views_tokens.FAILURE_WINDOW + dt.timedelta(seconds=1)):
        assert show(Client(), number, "13912345678", ip="10.9.9.9").status_code == 302


def test_attempts_are_limited_per_id_number_from_any_address(red):
    """A guesser spread over many addresses cannot try phone numbers for one person; an unregistered number is refused
    exactly alike (the lockout tells nothing about who is registered); other numbers are not affected."""
    _, number = red
    unknown = make_id(dt.date(1991, 3, 4), 321)
    for value in (number, unknown):
        for i in range(views_tokens.FAILURES_PER_ID):
            assert show(Client(), value, f"1390000{i:04d}", ip=f"10.8.{i}.1").status_code == 403
    locked = show(Client(), number, "13912345678", ip="10.7.0.1")  # the right phone, a fresh address: still refused
    locked_unknown = show(Client(), unknown, "13912345678", ip="10.7.0.2")
    assert locked.status_code == locked_unknown.status_code == 429
    error = re.compile(r'<p class="cd-error" role="alert">(.*?)</p>', re.S)
    assert error.search(locked.content.decode()).group(1) == error.search(locked_unknown.content.decode()).group(1)
    assert not AuditLog.objects.filter(action=views_tokens.FAILED_ACTION, object_id__contains=number[:6]).exists()
    other, other_number = resident(red[0].grid, phone="13700001111")
    assert show(Client(), other_number, "13700001111", ip="10.7.0.3").status_code == 302
    with clock.frozen(NOW + views_tokens.FAILURE_WINDOW + dt.timedelta(seconds=1)):
        assert show(Client(), number, "13912345678", ip="10.7.0.1").status_code == 302


def test_legacy_15_digit_and_lowercase_x_numbers_work(world):
    legacy = "330206800101123"  # 1980-01-01, sequence 123: the 18-character form is computed
    from jingkong.people.idnumber import upgrade_15

    person, _ = resident(world["grid_a1"], id_number=upgrade_15(legacy), phone="13700001111")
    assert show(Client(), legacy, "13700001111").status_code == 302
    x_number = make_id(dt.date(1975, 5, 5), 4)
    while not x_number.endswith("X"):
        x_number = make_id(dt.date(1975, 5, 5), int(x_number[14:17]) + 1)
    resident(world["grid_a1"], id_number=x_number, phone="13700002222")
    assert show(Client(), x_number.lower(), "+86 137-0000-2222").status_code == 302


def test_english_and_chinese(red):
    _, number = red
    client = Client()
    show(client, number, "13912345678")
    zh = client.get(URL, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    en = client.get(URL, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Red code" in en
    assert 'lang="zh-hans"' in zh


def test_a_person_without_a_computed_code(world, monkeypatch):
    from jingkong.codes.models import HealthCode

    person, number = resident(world["grid_a1"], phone="13600000000")
    HealthCode.objects.filter(person=person).delete()
    from jingkong.codes import engine

    monkeypatch.setattr(engine, "recompute_people", lambda ids, at=None: {})  # the engine computes nothing
    client = Client()
    show(client, number, "13600000000")
    r = client.get(URL)
    assert r.status_code == 404 and 'class="cd-error"' in r.content.decode()
