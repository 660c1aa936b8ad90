"""The pure checkpoint and venue-entry rules (jingkong/codes/checkpoint_rules.py), with the shipped profiles' values
and variants of them: every check, its verdict from the profile, and how a pass overrules the occupants' checks."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from jingkong.codes import checkpoint_rules as cr
from jingkong.codes.checkpoint_rules import CheckpointFacts, PassFacts, PersonFacts
from jingkong.policy.schema import CheckpointRules, PolicyRules

AT = dt.datetime(2022, 1, 10, 2, 0, tzinfo=dt.UTC)
PROFILES = Path(__file__).resolve().parents[2] / "policy" / "profiles"


def _rules(name: str = "cn-8th-2021") -> CheckpointRules:
    doc = json.loads((PROFILES / f"{name}.json").read_text(encoding="utf-8"))
    return PolicyRules.model_validate(doc["rules"], strict=False).section("checkpoints")


@pytest.fixture(params=["cn-8th-2021", "cn-9th-2022"])
def rules(request) -> CheckpointRules:
    return _rules(request.param)


ROAD_IN = CheckpointFacts(kind="road", direction="in")
EXIT_IN = CheckpointFacts(kind="highway_exit", direction="in")
ROAD_OUT = CheckpointFacts(kind="road", direction="out")
GREEN = PersonFacts(person_id=1, colour="green", last_negative_at=AT - dt.timedelta(hours=5))


def codes(verdict) -> list[str]:
    return [r.code for r in verdict.reasons]


# --- the profile section ----------------------------------------------------------------------------------------------


def test_both_profiles_have_the_section_with_the_issue_values(rules):
    assert rules.fever_threshold_celsius == 37.3
    assert rules.negative_test_hours == 48
    assert "red" in rules.deny_colours and "yellow" in rules.refer_colours
    assert {"medical", "essential_supply"} <= set(rules.flowing_pass_kinds)


def test_a_colour_cannot_be_both_denied_and_referred():
    data = _rules().model_dump()
    data["refer_colours"] = ["yellow", "red"]
    with pytest.raises(ValueError, match="both denied and referred"):
        CheckpointRules.model_validate(data)
    data["refer_colours"] = ["green"]
    with pytest.raises(ValueError, match="green"):
        CheckpointRules.model_validate(data)


# --- colour -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("colour", "decision"), [("green", "allow"), ("yellow", "refer"), ("red", "deny")])
def test_colour_decides_as_the_profile_says(rules, colour, decision):
    v = cr.judge_person(PersonFacts(person_id=1, colour=colour), ROAD_IN, rules, at=AT)
    assert v.decision == decision
    assert v.colour == colour
    assert ("code_colour" in codes(v)) == (colour != "green")


def test_a_profile_that_denies_yellow_denies_it():
    rules = _rules().model_copy(update={"deny_colours": ["red", "yellow"], "refer_colours": []})
    assert cr.judge_person(PersonFacts(colour="yellow"), ROAD_IN, rules, at=AT).decision == "deny"


def test_orange_not_listed_is_allowed_but_a_missing_code_is_referred(rules):
    assert cr.judge_person(PersonFacts(colour="orange"), ROAD_IN, rules, at=AT).decision == "allow"
    v = cr.judge_person(PersonFacts(colour=""), ROAD_IN, rules, at=AT)
    assert v.decision == "refer" and codes(v) == ["no_code"]


# --- tokens and the register ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("problem", ["malformed", "bad_signature", "unknown_key", "not_yet_valid"])
def test_forged_or_unreadable_tokens_take_the_invalid_token_verdict(rules, problem):
    v = cr.judge_person(PersonFacts(token_problem=problem), ROAD_IN, rules, at=AT)
    assert v.decision == rules.invalid_token == "deny"
    assert codes(v) == ["token_invalid"]


def test_an_expired_token_takes_the_expired_verdict_and_nothing_else_is_checked(rules):
    v = cr.judge_person(PersonFacts(token_problem="expired", colour="red"), EXIT_IN, rules, at=AT,
                        origin_risk="high")
    assert v.decision == rules.expired_token == "refer"
    assert codes(v) == ["token_expired"]


def test_the_token_verdicts_follow_the_profile():
    rules = _rules().model_copy(update={"expired_token": "deny", "invalid_token": "refer"})
    assert cr.judge_person(PersonFacts(token_problem="expired"), ROAD_IN, rules, at=AT).decision == "deny"
    assert cr.judge_person(PersonFacts(token_problem="bad_signature"), ROAD_IN, rules, at=AT).decision == "refer"


def test_an_unknown_id_number_is_referred(rules):
    v = cr.judge_person(PersonFacts(found=False), EXIT_IN, rules, at=AT, origin_risk="high")
    assert v.decision == "refer" and codes(v) == ["unknown_person"]


# --- zones ------------------------------------------------------------------------------------------------------------


def test_no_one_leaves_a_lockdown_zone_through_its_checkpoint():
    rules = _rules()
    resident = PersonFacts(colour="green", zones=((7, "lockdown"),))
    for direction in ("out", ""):
        v = cr.judge_person(resident, CheckpointFacts("zone_boundary", direction, zone_id=7), rules, at=AT)
        assert v.decision == "deny" and "zone_exit" in codes(v)
    # coming back in through the zone's own checkpoint is not leaving it
    v = cr.judge_person(resident, CheckpointFacts("zone_boundary", "in", zone_id=7), rules, at=AT)
    assert "zone_exit" not in codes(v)


def test_a_lockdown_resident_travelling_outbound_anywhere_is_stopped():
    rules = _rules()
    resident = PersonFacts(colour="green", zones=((7, "lockdown"),))
    assert cr.judge_person(resident, CheckpointFacts("road", "out", zone_id=None), rules, at=AT).decision == "deny"
    assert cr.judge_person(resident, CheckpointFacts("road", "out", zone_id=99), rules, at=AT).decision == "deny"
    # another zone's checkpoint, inbound or direction unknown: not their zone, not outbound
    v = cr.judge_person(resident, CheckpointFacts("zone_boundary", "", zone_id=99), rules, at=AT)
    assert "zone_exit" not in codes(v)


def test_zone_types_allowed_to_leave_follow_the_profile():
    r2021, r2022 = _rules("cn-8th-2021"), _rules("cn-9th-2022")
    out = CheckpointFacts("road", "out")
    prevention = PersonFacts(colour="green", zones=((3, "prevention"),))
    assert cr.judge_person(prevention, out, r2021, at=AT).decision == "allow"
    control = PersonFacts(colour="green", zones=((3, "control"),))
    assert cr.judge_person(control, out, r2021, at=AT).decision == "deny"
    medium = PersonFacts(colour="green", zones=((3, "medium_risk"),))
    assert cr.judge_person(medium, out, r2022, at=AT).decision == "deny"
    low = PersonFacts(colour="green", zones=((3, "low_risk"),))
    assert cr.judge_person(low, out, r2022, at=AT).decision == "allow"


# --- origin -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("risk", "decision"), [(None, "allow"), ("high", "deny"), ("medium", "refer"),
                                                ("low", "allow")])
def test_origin_in_a_risk_area(rules, risk, decision):
    v = cr.judge_person(GREEN, ROAD_IN, rules, at=AT, origin_risk=risk)
    assert v.decision == decision
    assert ("origin_risk" in codes(v)) == (decision != "allow")


# --- negative test ----------------------------------------------------------------------------------------------------


def test_a_highway_exit_inbound_asks_for_a_negative_test_within_the_profile_hours(rules):
    hours = rules.negative_test_hours
    fresh = PersonFacts(colour="green", last_negative_at=AT - dt.timedelta(hours=hours) + dt.timedelta(minutes=1))
    stale = PersonFacts(colour="green", last_negative_at=AT - dt.timedelta(hours=hours, minutes=1))
    never = PersonFacts(colour="green")
    assert cr.judge_person(fresh, EXIT_IN, rules, at=AT).decision == "allow"
    for p in (stale, never):
        v = cr.judge_person(p, EXIT_IN, rules, at=AT)
        assert v.decision == rules.no_negative_test and codes(v) == ["no_negative_test"]
    exactly = PersonFacts(colour="green", last_negative_at=AT - dt.timedelta(hours=hours))
    assert cr.judge_person(exactly, EXIT_IN, rules, at=AT).decision == "allow"


def test_the_test_is_asked_only_for_the_profile_kinds_and_directions(rules):
    never = PersonFacts(colour="green")
    assert cr.judge_person(never, ROAD_IN, rules, at=AT).decision == "allow"  # a road is not listed
    assert cr.judge_person(never, CheckpointFacts("highway_exit", "out"), rules, at=AT).decision == "allow"
    assert cr.judge_person(never, CheckpointFacts("port", "in"), rules, at=AT).decision == "refer"
    strict = rules.model_copy(update={"negative_test_kinds": ["road"], "negative_test_directions": ["in", "out"],
                                      "no_negative_test": "deny"})
    assert cr.judge_person(never, CheckpointFacts("road", "out"), strict, at=AT).decision == "deny"
    assert cr.judge_person(never, EXIT_IN, strict, at=AT).decision == "allow"


def test_a_test_sampled_after_the_crossing_does_not_count(rules):
    later = PersonFacts(colour="green", last_negative_at=AT + dt.timedelta(hours=3))
    assert cr.judge_person(later, EXIT_IN, rules, at=AT).decision == "refer"


# --- combining --------------------------------------------------------------------------------------------------------


def test_every_reason_is_kept_and_the_most_severe_decides(rules):
    p = PersonFacts(colour="yellow", zones=((1, rules.no_exit_zone_types[0]),))
    v = cr.judge_person(p, CheckpointFacts("highway_exit", "in", zone_id=1), rules, at=AT, origin_risk="medium")
    assert codes(v) == ["code_colour", "origin_risk", "no_negative_test"]  # coming in: no zone exit
    assert v.decision == "refer"
    v = cr.judge_person(p, CheckpointFacts("highway_exit", "out", zone_id=1), rules, at=AT, origin_risk="medium")
    assert codes(v) == ["code_colour", "zone_exit", "origin_risk"] and v.decision == "deny"
    assert all(r["text"] and r["verdict"] in ("allow", "refer", "deny") for r in v.reasons_dicts())


def test_offline_checks_only_what_the_token_says(rules):
    p = PersonFacts(colour="green", zones=((1, rules.no_exit_zone_types[0]),))
    v = cr.judge_person(p, CheckpointFacts("highway_exit", "out", zone_id=1), rules, at=AT, origin_risk="high",
                        offline=True)
    assert v.decision == "allow" and v.reasons == []
    assert cr.judge_person(PersonFacts(colour="red"), ROAD_IN, rules, at=AT, offline=True).decision == "deny"


def test_decide_ignores_waived_reasons():
    assert cr.decide([]) == "allow"
    assert cr.decide([cr.Reason("a", "", "refer"), cr.Reason("b", "", "deny", waived=True)]) == "refer"


# --- vehicles ---------------------------------------------------------------------------------------------------------


def test_a_vehicle_takes_the_worst_of_its_occupants(rules):
    v = cr.judge_vehicle(GREEN, [GREEN, PersonFacts(colour="yellow")], ROAD_IN, rules, at=AT)
    assert v.decision == "refer" and v.colour == "yellow"
    assert [r.who for r in v.reasons] == ["passenger 2"]
    v = cr.judge_vehicle(PersonFacts(colour="red"), [GREEN], ROAD_IN, rules, at=AT)
    assert v.decision == "deny" and v.reasons[0].who == "driver"


def test_a_vehicle_without_a_checked_driver_is_referred(rules):
    v = cr.judge_vehicle(None, [], ROAD_IN, rules, at=AT)
    assert v.decision == "refer" and codes(v) == ["no_driver"]


@pytest.mark.parametrize("kind", ["medical", "transfer"])
def test_a_valid_pass_keeps_medical_and_transfer_vehicles_flowing_with_the_reasons_recorded(rules, kind):
    yellow_driver = PersonFacts(colour="yellow")
    red_passenger = PersonFacts(colour="red")
    v = cr.judge_vehicle(yellow_driver, [red_passenger], EXIT_IN, rules, at=AT, origin_risk="high",
                         pass_=PassFacts("TX-1", kind))
    assert v.decision == "allow" and v.pass_used
    assert v.colour == "red"
    waived = [r for r in v.reasons if r.waived]
    assert {r.code for r in waived} >= {"code_colour", "origin_risk"}
    assert {r.who for r in waived} == {"driver", "passenger 1"}
    assert codes(v)[-1] == "pass_valid"
    assert all(d.get("waived") for d in v.reasons_dicts() if d["verdict"] != "allow")


@pytest.mark.parametrize("kind", ["essential_supply", "official"])
def test_a_supply_pass_keeps_its_crew_flowing_but_carries_no_one_out_of_a_lockdown_zone(rules, kind):
    yellow_driver = PersonFacts(colour="yellow")
    v = cr.judge_vehicle(yellow_driver, [PersonFacts(colour="yellow")], EXIT_IN, rules, at=AT,
                         origin_risk="medium", pass_=PassFacts("TX-1", kind))
    assert v.decision == "allow" and v.pass_used  # the crew's yellow codes and risk origin are waived
    v = cr.judge_vehicle(yellow_driver, [], EXIT_IN, rules, at=AT, origin_risk="high", pass_=PassFacts("TX-1", kind))
    assert v.decision == "allow"  # the driver of a supply truck from a high-risk area keeps it flowing
    locked = PersonFacts(person_id=7, colour="green", zones=((3, rules.no_exit_zone_types[0]),))  # 封控区
    v = cr.judge_vehicle(yellow_driver, [locked], ROAD_OUT, rules, at=AT, pass_=PassFacts("TX-1", kind))
    assert v.decision == "deny"
    assert [(r.code, r.who) for r in v.reasons if r.verdict == "deny" and not r.waived] == [
        ("zone_exit", "passenger 1"), ("pass_passengers", "pass")]
    v = cr.judge_vehicle(yellow_driver, [PersonFacts(colour="red")], ROAD_IN, rules, at=AT,
                         pass_=PassFacts("TX-1", kind))
    assert v.decision == "deny"
    v = cr.judge_vehicle(yellow_driver, [locked], ROAD_OUT, rules, at=AT, pass_=PassFacts("TX-1", "transfer"))
    assert v.decision == "allow"  # a transfer vehicle takes lockdown residents to isolation


def test_which_passes_carry_denied_passengers_follows_the_profile(rules):
    red = [PersonFacts(colour="red")]
    only_medical = rules.model_copy(update={"pass_carries_denied_kinds": ["medical"]})
    assert cr.judge_vehicle(PersonFacts(colour="green"), red, ROAD_IN, only_medical, at=AT,
                            pass_=PassFacts("TX-1", "transfer")).decision == "deny"
    everyone = rules.model_copy(update={"pass_carries_denied_kinds": ["medical", "transfer", "essential_supply"]})
    assert cr.judge_vehicle(PersonFacts(colour="green"), red, ROAD_IN, everyone, at=AT,
                            pass_=PassFacts("TX-1", "essential_supply")).decision == "allow"
    unset = rules.model_copy(update={"pass_carries_denied_kinds": None})  # an older profile: medical and transfer
    assert cr.judge_vehicle(PersonFacts(colour="green"), red, ROAD_IN, unset, at=AT,
                            pass_=PassFacts("TX-1", "essential_supply")).decision == "deny"


def test_a_pass_does_not_let_a_red_driver_through(rules):
    v = cr.judge_vehicle(PersonFacts(colour="red"), [], ROAD_IN, rules, at=AT, pass_=PassFacts("TX-1", "medical"))
    assert v.decision == "deny" and not v.pass_used
    assert "pass_driver_colour" in codes(v)


def test_a_pass_does_not_cover_a_driver_whose_code_cannot_be_verified(rules):
    v = cr.judge_vehicle(PersonFacts(token_problem="bad_signature"), [], ROAD_IN, rules, at=AT,
                         pass_=PassFacts("TX-1", "medical"))
    assert v.decision == "deny" and not v.pass_used
    v = cr.judge_vehicle(None, [], ROAD_IN, rules, at=AT, pass_=PassFacts("TX-1", "medical"))
    assert v.decision == "refer" and not v.pass_used


@pytest.mark.parametrize("problem", ["unknown", "revoked", "expired", "not_yet_valid", "plate_mismatch"])
def test_an_unusable_pass_is_recorded_and_helps_nothing(rules, problem):
    v = cr.judge_vehicle(PersonFacts(colour="yellow"), [], ROAD_IN, rules, at=AT,
                         pass_=PassFacts("TX-9", "medical", problem))
    assert v.decision == "refer" and not v.pass_used
    assert codes(v) == ["code_colour", "pass_invalid"]
    assert "TX-9" in v.reasons[-1].text


def test_a_pass_of_a_kind_the_profile_does_not_keep_flowing_helps_nothing():
    rules = _rules().model_copy(update={"flowing_pass_kinds": ["medical"]})
    v = cr.judge_vehicle(PersonFacts(colour="yellow"), [], ROAD_IN, rules, at=AT,
                         pass_=PassFacts("TX-2", "official"))
    assert v.decision == "refer" and codes(v)[-1] == "pass_invalid"
    v = cr.judge_vehicle(PersonFacts(colour="yellow"), [], ROAD_IN, rules, at=AT,
                         pass_=PassFacts("TX-3", "medical"))
    assert v.decision == "allow"


def test_a_driver_colour_the_profile_lets_through_with_a_pass():
    rules = _rules().model_copy(update={"pass_driver_deny_colours": []})
    v = cr.judge_vehicle(PersonFacts(colour="red"), [], ROAD_IN, rules, at=AT, pass_=PassFacts("TX-1", "medical"))
    assert v.decision == "allow" and v.pass_used


# --- venue entry ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("temperature", "fever"), [(None, False), (Decimal("36.5"), False), (Decimal("37.2"), False),
                                                    (Decimal("37.3"), True), (38.4, True)])
def test_fever_is_at_or_above_the_profile_threshold(rules, temperature, fever):
    assert cr.is_fever(temperature, rules) is fever
    v = cr.judge_venue_entry(PersonFacts(colour="green"), rules, temperature=temperature, masked=True)
    assert v.decision == ("refer" if fever else "allow")
    assert ("fever" in codes(v)) is fever


def test_the_threshold_is_read_from_the_profile():
    rules = _rules().model_copy(update={"fever_threshold_celsius": 38.0})
    assert not cr.is_fever(Decimal("37.5"), rules) and cr.is_fever(Decimal("38.0"), rules)


def test_venue_entry_without_a_mask(rules):
    v = cr.judge_venue_entry(PersonFacts(colour="green"), rules, temperature=Decimal("36.6"), masked=False)
    assert v.decision == rules.no_mask and codes(v) == ["no_mask"]
    assert cr.judge_venue_entry(PersonFacts(colour="green"), rules, temperature=None, masked=None).decision == "allow"
    lax = rules.model_copy(update={"mask_required": False})
    assert cr.judge_venue_entry(PersonFacts(colour="green"), lax, temperature=None, masked=False).decision == "allow"


def test_venue_entry_checks_the_code(rules):
    v = cr.judge_venue_entry(PersonFacts(colour="red"), rules, temperature=Decimal("38.0"), masked=False)
    assert v.decision == "deny" and codes(v) == ["code_colour", "fever", "no_mask"]
    v = cr.judge_venue_entry(PersonFacts(token_problem="expired"), rules, temperature=None, masked=True)
    assert codes(v) == ["token_expired"]
