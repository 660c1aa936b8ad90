"""The rule schema, without a database: the shipped profiles validate; wrong values fail with a path."""

from __future__ import annotations

import copy
import datetime as dt

import pytest

from jingkong.policy.schema import (
    PolicyRules,
    RulesIncomplete,
    rule_paths,
    source_for,
    validate_any,
    validate_document,
    validate_rules,
)
from jingkong.policy.services import builtin_documents

SHIPPED = dict(builtin_documents())


def _rules(name="cn-8th-2021.json"):
    return copy.deepcopy(SHIPPED[name]["rules"])


def _paths(errors):
    return {e.path: e.reason for e in errors}


def test_both_editions_are_shipped():
    codes = {doc["code"] for doc in SHIPPED.values()}
    assert codes == {"cn-8th-2021", "cn-9th-2022"}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_profiles_validate(name):
    doc, errors = validate_document(SHIPPED[name])
    assert errors == []
    assert doc.code + ".json" == name


def test_shipped_values_match_the_editions():
    eighth = PolicyRules.model_validate(_rules("cn-8th-2021.json"))
    ninth = PolicyRules.model_validate(_rules("cn-9th-2022.json"))
    assert (eighth.quarantine.close_contact.central_days, eighth.quarantine.close_contact.home_days) == (14, 7)
    assert eighth.quarantine.close_contact.central_test_days == [1, 4, 7, 14]
    assert eighth.quarantine.close_contact.release_double_sampling is True
    assert eighth.quarantine.secondary_contact.mode == "central"
    assert eighth.zones.types == ["lockdown", "control", "prevention"]
    assert eighth.zones.lifting.no_new_infection_days == 14
    assert (ninth.quarantine.close_contact.central_days, ninth.quarantine.close_contact.home_days) == (7, 3)
    assert ninth.quarantine.close_contact.central_test_days == [1, 2, 3, 5, 7]
    assert ninth.quarantine.secondary_contact.mode == "home"
    assert ninth.zones.scheme == "risk_areas" and ninth.zones.downgrade.high_to_medium_days == 7
    assert ninth.testing.default_pool_size_by_zone["low_risk"] == 20


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_value_has_its_provenance(name):
    doc = SHIPPED[name]
    missing = [p for p in sorted(rule_paths(doc["rules"])) if source_for(doc["sources"], p) is None]
    assert missing == []
    assert {s["status"] for s in doc["sources"].values()} <= {"S", "SW", "M"}


def test_negative_days_are_rejected_with_the_path():
    rules = _rules()
    rules["quarantine"]["close_contact"]["central_days"] = -1
    _, errors = validate_rules(rules)
    assert "quarantine.close_contact.central_days" in _paths(errors)
    assert "greater than or equal to 0" in _paths(errors)["quarantine.close_contact.central_days"]


def test_a_test_day_beyond_the_quarantine_is_rejected():
    rules = _rules()
    rules["quarantine"]["close_contact"]["central_test_days"] = [1, 4, 7, 15]
    _, errors = validate_rules(rules)
    assert _paths(errors) == {
        "quarantine.close_contact.central_test_days": "test day 15 is after the end of the 14-day central quarantine"
    }


def test_secondary_contact_test_day_beyond_its_days_is_rejected():
    rules = _rules("cn-9th-2022.json")
    rules["quarantine"]["secondary_contact"]["days"] = 5
    _, errors = validate_rules(rules)
    assert list(_paths(errors)) == ["quarantine.secondary_contact.test_days"]


def test_unknown_keys_are_rejected_at_any_depth():
    rules = _rules()
    rules["zones"]["lifting"]["no_new_case_days"] = 14
    rules["surprise"] = {}
    _, errors = validate_rules(rules)
    paths = _paths(errors)
    assert paths["zones.lifting.no_new_case_days"] == "unknown key (not part of the rules schema)"
    assert paths["surprise"] == "unknown key (not part of the rules schema)"


def test_types_are_strict():
    rules = _rules()
    rules["contacts"]["lookback_days"] = "2"
    rules["quarantine"]["close_contact"]["release_double_sampling"] = 1
    _, errors = validate_rules(rules)
    assert set(_paths(errors)) == {"contacts.lookback_days", "quarantine.close_contact.release_double_sampling"}


def test_a_missing_value_is_reported():
    rules = _rules()
    del rules["testing"]["key_industry_interval_days"]["ship_crew"]
    _, errors = validate_rules(rules)
    assert _paths(errors) == {"testing.key_industry_interval_days.ship_crew": "required value is missing"}


def test_zone_scheme_and_types_must_agree():
    rules = _rules()
    rules["zones"]["types"] = ["lockdown", "high_risk"]
    _, errors = validate_rules(rules)
    assert list(_paths(errors)) == ["zones.types"]

    rules = _rules()
    rules["zones"]["scheme"] = "risk_areas"
    _, errors = validate_rules(rules)
    assert "zones.types" in _paths(errors)


def test_three_zones_needs_lifting_rules():
    rules = _rules()
    del rules["zones"]["lifting"]
    _, errors = validate_rules(rules)
    assert list(_paths(errors)) == ["zones.lifting"]


def test_default_pool_sizes_cover_the_zones_in_use_and_are_allowed():
    rules = _rules()
    rules["testing"]["default_pool_size_by_zone"]["control"] = 20  # 20-in-1 not allowed in the 8th edition
    assert list(_paths(validate_rules(rules)[1])) == ["testing.default_pool_size_by_zone.control"]

    rules = _rules()
    del rules["testing"]["default_pool_size_by_zone"]["prevention"]
    assert list(_paths(validate_rules(rules)[1])) == ["testing.default_pool_size_by_zone.prevention"]

    rules = _rules()
    rules["testing"]["default_pool_size_by_zone"]["nowhere"] = 10
    assert list(_paths(validate_rules(rules)[1])) == ["testing.default_pool_size_by_zone.nowhere"]


def test_health_code_rules_need_unique_ids_and_colours_in_use():
    rules = _rules()
    rules["health_codes"]["rules"][1]["id"] = rules["health_codes"]["rules"][0]["id"]
    assert list(_paths(validate_rules(rules)[1])) == ["health_codes.rules[1].id"]

    rules = _rules()
    rules["health_codes"]["rules"][0]["colour"] = "orange"  # not among the colours in use
    assert list(_paths(validate_rules(rules)[1])) == ["health_codes.rules[0].colour"]

    rules = _rules()
    rules["health_codes"]["rules"][0]["id"] = "Not An Id"
    assert list(_paths(validate_rules(rules)[1])) == ["health_codes.rules[0].id"]


def test_health_code_rules_must_list_the_most_restrictive_colour_first():
    # The first matching rule decides: a yellow rule before a red one would show a case who matches both as yellow.
    rules = _rules()
    listed = rules["health_codes"]["rules"]
    first_yellow = next(i for i, r in enumerate(listed) if r["colour"] == "yellow")
    listed.insert(0, listed.pop(first_yellow))
    assert list(_paths(validate_rules(rules)[1])) == ["health_codes.rules[1].colour"]


def test_variant_override_cannot_shorten_the_lookback():
    rules = _rules()
    rules["contacts"]["lookback_days_delta_override"] = 1
    assert list(_paths(validate_rules(rules)[1])) == ["contacts.lookback_days_delta_override"]


def test_sources_must_point_at_rule_values():
    doc = copy.deepcopy(SHIPPED["cn-8th-2021.json"])
    doc["sources"]["quarantine.close_contact.centre_days"] = {"status": "S", "ref": "typo"}
    _, errors = validate_document(doc)
    assert list(_paths(errors)) == ["sources.quarantine.close_contact.centre_days"]


def test_document_header_errors_have_paths():
    doc = copy.deepcopy(SHIPPED["cn-8th-2021.json"])
    doc["issued_on"] = "2021-13-40"
    doc["code"] = "Bad Code"
    doc["rules"]["clock_targets"]["testing"] = 0
    _, errors = validate_document(doc)
    assert set(_paths(errors)) == {"issued_on", "code", "rules.clock_targets.testing"}


def test_validate_any_accepts_a_bare_rule_set_or_a_document():
    assert isinstance(validate_any(_rules())[0], PolicyRules)
    doc, errors = validate_any(SHIPPED["cn-9th-2022.json"])
    assert errors == [] and doc.issued_on == dt.date(2022, 6, 28)


def test_sections_added_later_are_optional():
    """A section or field added after the first profiles must default to None: stored versions never change."""
    first_sections = {"contacts", "quarantine", "zones", "testing", "health_codes", "clock_targets", "services"}
    for name, field in PolicyRules.model_fields.items():
        if name not in first_sections:
            assert not field.is_required() and field.default is None, f"PolicyRules.{name} must default to None"


def test_section_raises_when_a_version_predates_it():
    rules = PolicyRules.model_validate(_rules())
    assert rules.section("zones") is rules.zones
    with pytest.raises(KeyError):
        rules.section("no_such_section")
    partial = rules.model_copy(update={"services": None})
    with pytest.raises(RulesIncomplete, match="services"):
        partial.section("services")


def test_a_profile_may_carry_the_serial_interval_for_rt_both_values_together():
    rules = _rules()
    rules["transmission"].update(serial_interval_mean_days=3.5, serial_interval_sd_days=2.4)
    parsed, errors = validate_rules(rules)
    assert not errors and parsed.transmission.serial_interval_mean_days == 3.5
    rules["transmission"].pop("serial_interval_sd_days")
    _, errors = validate_rules(rules)
    assert "together" in _paths(errors)["transmission.serial_interval_mean_days"]
    rules["transmission"].update(serial_interval_mean_days=0.8, serial_interval_sd_days=1.0)
    _, errors = validate_rules(rules)
    assert "transmission.serial_interval_mean_days" in _paths(errors)  # Cori's discretisation needs a mean > 1
