"""The pure rules of directives, tasks and problems (no database)."""

from __future__ import annotations

import datetime as dt

import pytest

from jingkong.command import rules

T = dt.datetime(2022, 1, 5, 2, 0, tzinfo=dt.UTC)
GRACE = {"grid": 2, "community": 4, "street": 8}
ROUTING = {"default_level": "grid",
           "by_category": {"movement_in_lockdown": "community", "supply_shortage": "street"},
           "by_urgency": {"normal": "grid", "urgent": "community", "critical": "street"}}


@pytest.mark.parametrize("code, level, parent", [
    ("330206", "district", ""), ("330206002", "street", "330206"), ("330206002001", "community", "330206002"),
    ("330206002001001", "grid", "330206002001"),
])
def test_levels_and_parents(code, level, parent):
    assert rules.level_of(code) == level and rules.parent_code(code) == parent


def test_outermost_drops_nested_and_repeated_targets():
    assert rules.outermost(["330206002001", "330206002", "330206004001001", "330206002"]) == [
        "330206002", "330206004001001"]
    assert rules.outermost([]) == []


@pytest.mark.parametrize("level, hours_late, status, escalated, due", [
    ("grid", 1, "assigned", False, False), ("grid", 2, "assigned", False, True), ("grid", 3, "in_progress", False, True),
    ("grid", 3, "done", False, False), ("grid", 3, "cancelled", False, False), ("grid", 3, "assigned", True, False),
    ("community", 3, "acknowledged", False, False), ("community", 4, "acknowledged", False, True),
    ("street", 7, "assigned", False, False), ("street", 8, "assigned", False, True),
    ("district", 100, "assigned", False, False),
])
def test_task_escalation(level, hours_late, status, escalated, due):
    deadline = T - dt.timedelta(hours=hours_late)
    assert rules.task_escalation_due(level=level, status=status, deadline=deadline, escalated=escalated, now=T,
                                     grace_hours=GRACE) is due


@pytest.mark.parametrize("current, new, ok", [
    ("assigned", "acknowledged", True), ("assigned", "done", True), ("acknowledged", "in_progress", True),
    ("in_progress", "in_progress", True), ("in_progress", "done", True), ("done", "in_progress", False),
    ("cancelled", "done", False), ("acknowledged", "assigned", False),
])
def test_task_transitions(current, new, ok):
    if ok:
        rules.check_task_transition(current, new)
    else:
        with pytest.raises(rules.RuleError):
            rules.check_task_transition(current, new)


def test_done_needs_some_evidence():
    with pytest.raises(rules.RuleError):
        rules.check_done_evidence(count=None, note="  ", photo=False)
    rules.check_done_evidence(count=0, note="", photo=False)
    rules.check_done_evidence(count=None, note="ok", photo=False)
    rules.check_done_evidence(count=None, note="", photo=True)


@pytest.mark.parametrize("children, current, expected", [
    (["done", "done"], "in_progress", "done"), (["done", "cancelled"], "assigned", "done"),
    (["cancelled", "cancelled"], "assigned", "assigned"), (["done", "assigned"], "assigned", "in_progress"),
    (["assigned", "assigned"], "assigned", "assigned"), (["acknowledged", "assigned"], "assigned", "in_progress"),
    (["done", "in_progress"], "done", "in_progress"), (["done"], "cancelled", "cancelled"), ([], "assigned", "assigned"),
])
def test_parent_status(children, current, expected):
    assert rules.parent_status(children, current) == expected


@pytest.mark.parametrize("status, done, target, expected", [
    ("done", 0, 0, 100.0), ("in_progress", 5, 10, 50.0), ("in_progress", 12, 10, 99.9), ("assigned", 0, 0, 0.0),
    ("cancelled", 5, 10, 0.0),
])
def test_task_progress(status, done, target, expected):
    assert rules.task_progress(status=status, done_count=done, target_count=target) == expected


def test_percent():
    assert rules.percent(1, 4) == 25.0 and rules.percent(0, 0) is None


@pytest.mark.parametrize("category, urgency, level", [
    ("other", "normal", "grid"), ("other", "urgent", "community"), ("other", "critical", "street"),
    ("movement_in_lockdown", "normal", "community"), ("movement_in_lockdown", "critical", "street"),
    ("supply_shortage", "normal", "street"), ("supply_shortage", "urgent", "street"),
])
def test_problem_routing_takes_the_higher_level(category, urgency, level):
    assert rules.problem_level(category=category, urgency=urgency, routing=ROUTING) == level
    grid = "330206002001001"
    assert rules.problem_responsible(grid, category=category, urgency=urgency, routing=ROUTING) == \
        grid[:{"grid": 15, "community": 12, "street": 9}[level]]


def test_problem_deadline_and_escalation():
    hours = {"normal": 24, "urgent": 4, "critical": 1}
    assert rules.problem_deadline("urgent", at=T, hours_by_urgency=hours) == T + dt.timedelta(hours=4)
    late = T - dt.timedelta(hours=3)
    assert rules.problem_escalation_due(status="open", deadline=late, responsible_code="330206002001001", now=T,
                                        grace_hours=2)
    assert not rules.problem_escalation_due(status="open", deadline=late, responsible_code="330206002001001", now=T,
                                            grace_hours=4)
    assert not rules.problem_escalation_due(status="resolved", deadline=late, responsible_code="330206002", now=T,
                                            grace_hours=0)
    assert not rules.problem_escalation_due(status="open", deadline=late, responsible_code="330206", now=T,
                                            grace_hours=0)


@pytest.mark.parametrize("current, new, ok", [
    ("open", "in_progress", True), ("open", "resolved", True), ("open", "rejected", True),
    ("resolved", "in_progress", True), ("resolved", "rejected", False), ("in_progress", "open", False),
])
def test_problem_transitions(current, new, ok):
    if ok:
        rules.check_problem_transition(current, new)
    else:
        with pytest.raises(rules.RuleError):
            rules.check_problem_transition(current, new)


@pytest.mark.parametrize("head, kind", [
    (b"\xff\xd8\xff\xe0rest", "jpg"), (b"\x89PNG\r\n\x1a\n....", "png"), (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"),
    (b"GIF89a", None), (b"<svg", None), (b"", None), (b"RIFF\x00\x00\x00\x00WAVE", None),
])
def test_photo_kind_by_content(head, kind):
    got = rules.photo_kind(head)
    assert (got[0] if got else None) == kind


def test_the_shipped_profiles_have_consistent_directive_rules():
    import json
    from pathlib import Path

    from jingkong.policy.schema import DirectiveRules

    for path in sorted((Path(rules.__file__).parents[1] / "policy" / "profiles").glob("*.json")):
        doc = json.loads(path.read_text())
        section = DirectiveRules.model_validate(doc["rules"]["directives"])
        assert section.problem_hours_by_urgency.critical <= section.problem_hours_by_urgency.normal
        assert any(k.startswith("directives") for k in doc["sources"]), path.name
