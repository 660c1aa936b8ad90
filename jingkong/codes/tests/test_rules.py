"""The health-code condition language and decision (pure: no database)."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from jingkong.codes import rules as R
from jingkong.policy.schema import HEALTH_CODE_FACTS

D = dt.date
V = HEALTH_CODE_FACTS


# --- parsing ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, tree", [
    ("case.confirmed", ("fact", "case.confirmed")),
    ("  case.confirmed  ", ("fact", "case.confirmed")),
    ("not case.confirmed", ("not", ("fact", "case.confirmed"))),
    ("not not case.confirmed", ("not", ("not", ("fact", "case.confirmed")))),
    ("a.b and c.d", ("and", (("fact", "a.b"), ("fact", "c.d")))),
    ("a.b or c.d", ("or", (("fact", "a.b"), ("fact", "c.d")))),
    ("a.b and c.d and e.f", ("and", (("fact", "a.b"), ("fact", "c.d"), ("fact", "e.f")))),
    # and binds tighter than or
    ("a.b or c.d and e.f", ("or", (("fact", "a.b"), ("and", (("fact", "c.d"), ("fact", "e.f")))))),
    ("a.b and c.d or e.f", ("or", (("and", (("fact", "a.b"), ("fact", "c.d"))), ("fact", "e.f")))),
    ("(a.b or c.d) and e.f", ("and", (("or", (("fact", "a.b"), ("fact", "c.d"))), ("fact", "e.f")))),
    # not binds tighter than and
    ("not a.b and c.d", ("and", (("not", ("fact", "a.b")), ("fact", "c.d")))),
    ("not (a.b and c.d)", ("not", ("and", (("fact", "a.b"), ("fact", "c.d"))))),
    ("((a.b))", ("fact", "a.b")),
    ("zone.high_risk.resident", ("fact", "zone.high_risk.resident")),
    ("a.b\tand\nc.d", ("and", (("fact", "a.b"), ("fact", "c.d")))),
    ("(a.b)and(c.d)", ("and", (("fact", "a.b"), ("fact", "c.d")))),
])
def test_parse_shapes(text, tree):
    assert R.parse(text) == tree


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"),
    ("   ", "empty"),
    ("case.confirmed and", "ends where a fact name was expected"),
    ("and case.confirmed", "unexpected 'and'"),
    ("case.confirmed or or case.asymptomatic", "unexpected 'or'"),
    ("(case.confirmed", "missing ')'"),
    ("case.confirmed)", "unexpected ')'"),
    ("()", "unexpected ')'"),
    ("case.confirmed case.asymptomatic", "unexpected 'case.asymptomatic'"),
    ("case.confirmed && case.asymptomatic", "write 'and'"),
    ("case.confirmed || case.asymptomatic", "write 'or'"),
    ("!case.confirmed", "write 'not'"),
    ("case.confirmed AND case.asymptomatic", "lower case"),
    ("Case.Confirmed", "not a fact name"),
    ("confirmed", "not a fact name"),  # a fact name has at least one dot
    ("case.", "unexpected character"),
    ("case..confirmed", "unexpected character"),
    ("case.confirmed == 1", "unexpected character"),
    ("__import__('os')", "unexpected character"),
    ("__import__", "not a fact name"),
    ("case.confirmed; drop table x", "unexpected character"),
    ("1.2", "unexpected character"),
    ("a.b\x00", "NUL"),
])
def test_parse_errors_say_what_and_where(text, fragment):
    with pytest.raises(R.ConditionError) as info:
        R.parse(text)
    assert fragment in str(info.value)


def test_errors_carry_the_position():
    with pytest.raises(R.ConditionError) as info:
        R.parse("case.confirmed and and")
    assert info.value.position == len("case.confirmed and ")
    assert "character 20" in str(info.value)


def test_unknown_fact_against_the_vocabulary_with_a_suggestion():
    with pytest.raises(R.ConditionError) as info:
        R.parse("case.confirmd", vocabulary=V)
    assert "unknown fact 'case.confirmd'" in str(info.value) and "case.confirmed" in str(info.value)
    with pytest.raises(R.ConditionError, match="unknown fact 'zone.moon.resident'"):
        R.parse("case.confirmed or zone.moon.resident", vocabulary=V)
    assert R.parse("zone.lockdown.resident and not isolation.hospital", vocabulary=V)


def test_every_zone_type_has_a_resident_fact():
    from typing import get_args

    from jingkong.policy.schema import ZoneType

    for t in get_args(ZoneType):
        assert f"zone.{t}.resident" in V


def test_depth_and_length_are_bounded():
    deep = "(" * (R.MAX_DEPTH + 2) + "a.b" + ")" * (R.MAX_DEPTH + 2)
    with pytest.raises(R.ConditionError, match="nested"):
        R.parse(deep)
    with pytest.raises(R.ConditionError, match="nested"):
        R.parse("not " * (R.MAX_DEPTH + 2) + "a.b")
    assert R.parse("(" * 10 + "a.b" + ")" * 10) == ("fact", "a.b")
    with pytest.raises(R.ConditionError, match="longer"):
        R.parse(" or ".join(["case.confirmed"] * 40))
    with pytest.raises(R.ConditionError, match="text"):
        R.parse(None)  # type: ignore[arg-type]


def test_unparse_round_trips():
    texts = ["a.b", "not a.b", "a.b and c.d", "a.b or c.d and e.f", "(a.b or c.d) and e.f", "not (a.b or c.d)",
             "not not a.b", "a.b and (c.d or not e.f) and g.h", "(a.b and c.d) or (e.f and g.h)"]
    for text in texts:
        tree = R.parse(text)
        assert R.parse(R.unparse(tree)) == tree, text


def test_facts_of():
    assert R.facts_of(R.parse("a.b and (c.d or not e.f)")) == {"a.b", "c.d", "e.f"}


# --- evaluation ------------------------------------------------------------------------------------------------------

FACTS3 = ["a.x", "b.x", "c.x"]


def _truth(text: str, present: set[str]) -> bool:
    """The reference: Python's own boolean operators over the same names (test oracle only)."""
    env = {f.replace(".", "_"): f in present for f in FACTS3}
    return eval(text.replace(".", "_"), {}, env)  # noqa: S307 - the oracle, never the implementation


EXPRS = ["a.x", "not a.x", "a.x and b.x", "a.x or b.x", "a.x or b.x and c.x", "(a.x or b.x) and c.x",
         "not (a.x and b.x) and c.x", "a.x and not b.x or c.x", "not a.x or not b.x", "not (a.x or b.x or c.x)",
         "a.x and (b.x or not c.x)"]


@pytest.mark.parametrize("text", EXPRS)
def test_truth_table_matches_boolean_logic(text):
    tree = R.parse(text)
    for n in range(len(FACTS3) + 1):
        for present in itertools.combinations(FACTS3, n):
            facts = dict.fromkeys(present)
            assert R.evaluate(tree, facts)[0] is _truth(text, set(present)), (text, present)


def test_until_of_and_is_the_earliest_of_or_the_latest():
    facts = {"a.x": D(2022, 1, 5), "b.x": D(2022, 1, 9), "c.x": None}
    assert R.evaluate(R.parse("a.x"), facts) == (True, D(2022, 1, 5))
    assert R.evaluate(R.parse("a.x and b.x"), facts) == (True, D(2022, 1, 5))
    assert R.evaluate(R.parse("a.x or b.x"), facts) == (True, D(2022, 1, 9))
    # None = no known end: later than every date
    assert R.evaluate(R.parse("a.x and c.x"), facts) == (True, D(2022, 1, 5))
    assert R.evaluate(R.parse("a.x or c.x"), facts) == (True, None)
    assert R.evaluate(R.parse("c.x"), facts) == (True, None)
    # only the true parts of an 'or' count
    assert R.evaluate(R.parse("a.x or d.x"), facts) == (True, D(2022, 1, 5))
    # 'not' has no known end
    assert R.evaluate(R.parse("a.x and not d.x"), facts) == (True, D(2022, 1, 5))
    assert R.evaluate(R.parse("not d.x"), facts) == (True, None)
    assert R.evaluate(R.parse("d.x"), facts) == (False, None)


# --- decisions -------------------------------------------------------------------------------------------------------


def _rules(*items):
    return R.compile_rules([{"id": i, "colour": c, "condition": cond, "reason": f"because {i}"}
                            for i, c, cond in items], vocabulary=V)


RULES = _rules(
    ("case", "red", "case.confirmed or case.asymptomatic"),
    ("close", "red", "contact.close.quarantine"),
    ("lockdown", "red", "zone.lockdown.resident"),
    ("home", "yellow", "contact.close.home_phase"),
    ("pool", "yellow", "test.pool_positive and not case.confirmed"),
    ("arrival", "yellow", "arrival.high_risk or arrival.medium_risk"),
)


def test_first_match_decides_and_every_match_is_a_reason():
    d = R.decide(RULES, {"zone.lockdown.resident": None, "test.pool_positive": None,
                         "contact.close.quarantine": D(2022, 1, 20)})
    assert d.colour == "red" and d.rule_id == "close"
    assert [r["rule"] for r in d.reasons] == ["close", "lockdown", "pool"]
    assert d.reasons[0] == {"rule": "close", "colour": "red", "reason": "because close", "until": "2022-01-20"}
    assert d.reasons[1]["until"] is None
    assert d.green_on is None  # the lockdown has no known end


def test_green_on_is_the_latest_end_of_the_restricting_rules():
    d = R.decide(RULES, {"contact.close.quarantine": D(2022, 1, 20), "arrival.medium_risk": D(2022, 1, 24)})
    assert (d.colour, d.rule_id, d.green_on) == ("red", "close", D(2022, 1, 24))
    d = R.decide(RULES, {"contact.close.home_phase": D(2022, 1, 27)})
    assert (d.colour, d.green_on) == ("yellow", D(2022, 1, 27))


def test_no_fact_or_no_match_is_green():
    assert R.decide(RULES, {}).as_row() == ("green", "", [], None)
    assert R.decide(RULES, {"zone.prevention.resident": None}).as_row() == ("green", "", [], None)
    d = R.decide(RULES, {"test.pool_positive": None, "case.confirmed": None})
    assert d.rule_id == "case" and [r["rule"] for r in d.reasons] == ["case"]  # 'pool' excludes cases


def test_a_green_rule_is_a_reason_but_no_green_on():
    rules = _rules(("ok", "green", "test.resample"), ("arr", "yellow", "arrival.medium_risk"))
    d = R.decide(rules, {"test.resample": D(2022, 1, 3)})
    assert (d.colour, d.rule_id, d.green_on) == ("green", "ok", None)
    d = R.decide(rules, {"test.resample": None, "arrival.medium_risk": D(2022, 1, 9)})
    assert (d.colour, d.rule_id, d.green_on) == ("green", "ok", D(2022, 1, 9))


def test_rules_with_facts_and_compile_errors_name_the_rule():
    assert R.rules_with_facts(RULES, ["zone."]) == ["lockdown"]
    assert R.rules_with_facts(RULES, ["test.", "arrival."]) == ["pool", "arrival"]
    with pytest.raises(R.ConditionError, match=r"rules\[1\] \(bad\)"):
        R.compile_rules([{"id": "ok", "colour": "red", "condition": "case.confirmed", "reason": "x"},
                         {"id": "bad", "colour": "red", "condition": "case.confirmed or", "reason": "x"}])


def test_merge_until():
    assert R.merge_until(D(2022, 1, 1), D(2022, 1, 3)) == D(2022, 1, 3)
    assert R.merge_until(D(2022, 1, 1), None) is None


# --- the profile schema validates conditions --------------------------------------------------------------------------


def _profile_rules(rules, **extra):
    import json
    from pathlib import Path

    import jingkong.policy as policy

    doc = json.loads((Path(policy.__file__).parent / "profiles" / "cn-8th-2021.json").read_text())
    doc["rules"]["health_codes"]["rules"] = rules
    doc["rules"]["health_codes"].update(extra)
    return doc["rules"]


def test_the_schema_refuses_a_bad_condition_naming_the_rule_path():
    from jingkong.policy.schema import validate_rules

    rules = _profile_rules([{"id": "a", "colour": "red", "condition": "case.confirmed", "reason": "x"},
                            {"id": "b", "colour": "red", "condition": "case.confirmd", "reason": "x"}])
    _, errors = validate_rules(rules)
    assert any(e.path == "health_codes.rules[1].condition" and "unknown fact 'case.confirmd'" in e.reason
               for e in errors), errors


@pytest.mark.parametrize("condition, fragment", [
    ("case.confirmed and", "ends where"),
    ("not case.confirmed", "without any fact"),
    ("case.confirmed or not zone.lockdown.resident", "without any fact"),
    ("arrival.high_risk", "arrival_window_days"),
])
def test_the_schema_refuses(condition, fragment):
    from jingkong.policy.schema import validate_rules

    rules = _profile_rules([{"id": "a", "colour": "red", "condition": condition, "reason": "x"}])
    rules["health_codes"].pop("arrival_window_days", None)
    _, errors = validate_rules(rules)
    assert any(e.path == "health_codes.rules[0].condition" and fragment in e.reason for e in errors), errors


def test_the_shipped_profiles_hold_the_issue_examples():
    import json
    from pathlib import Path

    import jingkong.policy as policy
    from jingkong.policy.schema import PolicyRules

    for name in ("cn-8th-2021", "cn-9th-2022"):
        doc = json.loads((Path(policy.__file__).parent / "profiles" / f"{name}.json").read_text())
        rules = PolicyRules.model_validate(doc["rules"])
        compiled = R.compile_rules(rules.health_codes.rules, vocabulary=V)
        lockdown = "zone.lockdown.resident" if name == "cn-8th-2021" else "zone.high_risk.resident"
        red = ["case.confirmed", "case.asymptomatic", "contact.close.quarantine" if name == "cn-9th-2022"
               else "contact.close.central_quarantine", lockdown, "isolation.central"]
        yellow = ["test.pool_positive", "fever.referred", "arrival.high_risk", "arrival.medium_risk",
                  "key_industry.overdue", "contact.close.home_phase"]
        for fact in red:
            assert R.decide(compiled, {fact: None}).colour == "red", (name, fact)
        for fact in yellow:
            assert R.decide(compiled, {fact: None}).colour == "yellow", (name, fact)
        assert R.decide(compiled, {}).colour == "green"
        # red rules come before yellow ones: a yellow fact never hides a red one
        colours = [r.colour for r in compiled]
        assert colours == sorted(colours, key=lambda c: ["red", "orange", "yellow", "green"].index(c)), name
