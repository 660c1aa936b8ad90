"""`jingkong trace contacts` and `jingkong trace find`."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command

from jingkong.access.models import AuditLog
from jingkong.tracing.models import Contact

pytestmark = pytest.mark.django_db


def _run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_trace_find_runs_contact_finding_for_a_case_and_for_all_open_cases(outbreak):
    text = _run("trace_find", "--case", outbreak.jia.ref)
    assert text.startswith("1 case(s): 3 close, 2 secondary, 0 companion contacts (5 new")
    assert Contact.objects.count() == 5
    text = _run("trace_find", "--all-open")
    assert text.startswith("2 case(s):") and "(0 new" in text
    with pytest.raises(CommandError, match="no case BL-1999-0001"):
        _run("trace_find", "--case", "BL-1999-0001")


def test_trace_contacts_prints_json_and_csv_with_masked_id_numbers(outbreak):
    _run("trace_find", "--case", outbreak.jia.ref)
    body = json.loads(_run("trace_contacts", "--case", outbreak.jia.ref))
    assert body["case"] == outbreak.jia.ref and body["count"] == 5
    rows = {c["name"]: c for c in body["contacts"]}
    assert rows["顾客"]["tier"] == "close" and rows["顾客"]["handoff_pending"] is True
    assert rows["顾客"]["last_exposure"] == "2022-01-02T10:50+08:00"
    assert rows["顾客"]["reasons"][0]["evidence"]["venue_code"] == "S1"
    assert rows["顾客子"]["reasons"][0]["via_contact"] == rows["顾客"]["contact_id"]
    text = _run("trace_contacts", "--case", outbreak.jia.ref, "--format", "csv")
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == 5 and {r["tier"] for r in table} == {"close", "secondary"}
    for name, number in outbreak.w.numbers.items():
        assert number not in text
        if name == "顾客":
            assert outbreak.w["顾客"].id_masked in text
    assert AuditLog.objects.filter(action="person.list", user_agent="cli").count() == 2
    with pytest.raises(CommandError):
        _run("trace_contacts", "--case", "nope")


def test_the_jingkong_command_resolves_trace_groups():
    """With the commands actually installed (the test used a made-up list before, so it held whatever was shipped)."""
    from jingkong.cli import _jingkong_commands, _resolve

    commands = _jingkong_commands()
    assert _resolve(["trace", "contacts", "--case", "X"], commands) == ["trace_contacts", "--case", "X"]
    assert _resolve(["trace", "find", "--all-open"], commands) == ["trace_find", "--all-open"]
    assert _resolve(["tracing", "load-checkins", "DIR"], commands) == ["tracing_load_checkins", "DIR"]
    assert commands["trace_contacts"].startswith("Print a case's contacts")
