"""The policy commands and the read-only back office."""

from __future__ import annotations

import copy
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from jingkong.access.models import AuditLog
from jingkong.policy.models import PolicyActivation, PolicyProfile
from jingkong.policy.services import builtin_documents


def _run(*args, **kwargs) -> str:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out, **kwargs)
    return out.getvalue()


def test_install_then_list_and_show(db):
    assert "cn-8th-2021 v1: installed" in _run("policy_install")
    assert "cn-8th-2021 v1: unchanged" in _run("policy_install")
    listed = _run("policy_list")
    assert "cn-8th-2021" in listed and "cn-9th-2022" in listed
    shown = _run("policy_show", "cn-9th-2022", "--version", "1")
    assert "quarantine.close_contact.central_days = 7  [S]" in shown
    as_json = json.loads(_run("policy_show", "cn-8th-2021", "--json"))
    assert as_json["rules"]["quarantine"]["close_contact"]["central_days"] == 14
    with pytest.raises(CommandError, match="not found"):
        _run("policy_show", "cn-8th-2021", "--version", "7")


def test_validate_prints_each_error_with_its_path(tmp_path):
    doc = copy.deepcopy(dict(builtin_documents())["cn-8th-2021.json"])
    good = tmp_path / "good.json"
    good.write_text(json.dumps(doc), encoding="utf-8")
    assert "valid profile" in _run("policy_validate", str(good))

    doc["rules"]["quarantine"]["secondary_contact"]["test_days"] = [1, 4, 8]
    doc["rules"]["contacts"]["lookback_days"] = -1
    doc["rules"]["contacts"]["typo"] = 3
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    from io import StringIO

    out = StringIO()
    with pytest.raises(CommandError, match="3 errors"):
        call_command("policy_validate", str(bad), stdout=out)
    lines = out.getvalue().splitlines()
    assert "rules.contacts.lookback_days: Input should be greater than or equal to 0" in lines
    assert "rules.contacts.typo: unknown key (not part of the rules schema)" in lines
    assert ("rules.quarantine.secondary_contact.test_days: test day 8 is after the end of the 7-day quarantine"
            in lines)

    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(CommandError, match="not valid JSON"):
        _run("policy_validate", str(broken))


def test_activate_from_the_command_line(regions):
    _run("policy_install")
    out = _run("policy_activate", "cn-8th-2021", region="330206", reason="demo", at="2022-01-01T00:00+08:00")
    assert "cn-8th-2021 v1 in force for 330206" in out
    assert "nothing changed" in _run("policy_activate", "cn-8th-2021", region="330206", reason="demo",
                                     if_changed=True, at="2022-01-02T00:00+08:00")
    assert PolicyActivation.objects.count() == 1
    assert AuditLog.objects.filter(action="policy.activate", user_agent="cli").count() == 1
    with pytest.raises(CommandError, match="no such region"):
        _run("policy_activate", "cn-8th-2021", region="999999", reason="x")
    with pytest.raises(CommandError, match="reason"):
        _run("policy_activate", "cn-8th-2021", region="330206", reason=" ")


def test_the_back_office_shows_profiles_read_only(regions, admin_user, client_for):
    _run("policy_install")
    profile = PolicyProfile.objects.get(code="cn-9th-2022")
    client = client_for(admin_user)
    assert client.get("/admin/policy/policyprofile/").status_code == 200
    page = client.get(f"/admin/policy/policyprofile/{profile.pk}/change/")
    assert page.status_code == 200 and b"central_test_days" in page.content and b'name="_save"' not in page.content
    assert client.get("/admin/policy/policyprofile/add/").status_code == 403
    assert client.post(f"/admin/policy/policyprofile/{profile.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/policy/policyactivation/").status_code == 200
    assert PolicyProfile.objects.filter(pk=profile.pk).exists()
