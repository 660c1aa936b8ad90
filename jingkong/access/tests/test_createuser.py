from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation

from jingkong.access.models import ApiToken, AuditLog, User
from jingkong.cli import _jingkong_commands, _resolve


def run(*args, stdin: str | None = None, monkeypatch=None) -> str:
    out = io.StringIO()
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    call_command("createuser", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_creates_a_user_with_role_region_and_a_token(regions):
    out = run("zhang", "--role", "grid_worker", "--region", "330206002001001", "--password", "Long-enough-9", "--token")
    user = User.objects.get(username="zhang")
    assert (user.role, user.region.code, user.is_staff) == ("grid_worker", "330206002001001", False)
    assert user.check_password("Long-enough-9")
    token = out.split("store it now): ")[1].strip()
    assert ApiToken.objects.get(user=user).prefix == token[:10]
    assert AuditLog.objects.filter(action="user.create", object_id=str(user.pk), user_agent="cli").exists()


@pytest.mark.django_db
def test_reads_the_password_from_stdin(regions, monkeypatch):
    run("li", "--role", "commander", "--region", "330206", "--password-stdin", stdin="Long-enough-9\n",
        monkeypatch=monkeypatch)
    assert User.objects.get(username="li").check_password("Long-enough-9")


@pytest.mark.django_db
def test_an_administrator_may_be_platform_wide_and_gets_the_back_office(regions):
    out = run("root2", "--role", "administrator")
    user = User.objects.get(username="root2")
    assert user.region is None and user.is_staff and not user.has_usable_password()
    assert "tokens only" in out


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x", "--role", "major", "--region", "330206"], "unknown role 'major'; choose one of: commander, analyst"),
        (["x", "--role", "analyst", "--region", "999999"], "unknown region code '999999'"),
        (["x", "--role", "analyst"], "a analyst needs a region"),
        (["x", "--role", "analyst", "--region", "330206", "--password", "short"], "too short"),
        (["bad name!", "--role", "analyst", "--region", "330206"], "valid username"),
    ],
)
def test_invalid_input_is_a_clear_error(regions, args, message):
    with translation.override("en"), pytest.raises(CommandError, match=message):
        run(*args)
    assert not User.objects.filter(username=args[0]).exists()


@pytest.mark.django_db
def test_an_existing_username_is_refused(officer_a):
    with pytest.raises(CommandError, match="already exists"):
        run("officer_a", "--role", "analyst", "--region", "330206")


def test_the_jingkong_cli_maps_the_commands():
    commands = _jingkong_commands()
    assert _resolve(["createuser", "x"], commands) == ["createuser", "x"]
    assert _resolve(["users", "list"], commands) == ["users_list"]
    assert _resolve(["audit", "export", "--out", "f"], commands) == ["audit_export", "--out", "f"]


@pytest.mark.django_db
def test_users_list_shows_role_and_region(regions):
    run("wang", "--role", "tracer", "--region", "330206004")
    out = io.StringIO()
    call_command("users_list", "--region", "330206004", stdout=out)
    assert "wang" in out.getvalue() and "tracer" in out.getvalue() and "330206004" in out.getvalue()
