"""Priority and deadline of service requests (pure rule), tested against both shipped profiles."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from jingkong.command import service_rules
from jingkong.policy.schema import ProfileDocument

T = dt.datetime(2022, 1, 3, 2, 0, tzinfo=dt.UTC)
PROFILES = sorted((Path(__file__).resolve().parents[2] / "policy" / "profiles").glob("cn-*.json"))
ELDERLY, CHILD, PREGNANT, CHRONIC, MOBILITY = 1, 2, 4, 8, 16


def services_of(path: Path):
    return ProfileDocument.model_validate(json.loads(path.read_text())).rules.services


@pytest.fixture(params=PROFILES, ids=lambda p: p.stem)
def services(request):
    return services_of(request.param)


def test_both_profiles_are_tested():
    assert {p.stem for p in PROFILES} >= {"cn-8th-2021", "cn-9th-2022"}


def test_every_category_and_subcategory_gets_the_profile_values(services):
    for category in service_rules.CATEGORIES:
        rule = services.categories[category]
        tri = service_rules.triage(services, category=category, submitted_at=T)
        assert (tri.priority, tri.hours, tri.escort) == (rule.priority, rule.hours, False)
        assert tri.deadline == T + dt.timedelta(hours=rule.hours)
        for sub, sub_rule in rule.subcategories.items():
            tri = service_rules.triage(services, category=category, subcategory=sub, submitted_at=T)
            assert (tri.priority, tri.hours, tri.escort) == (sub_rule.priority, sub_rule.hours, sub_rule.escort)
            assert tri.deadline == T + dt.timedelta(hours=sub_rule.hours)


def test_urgent_medical_needs_request_an_escort(services):
    subs = services.categories["medical_visit"].subcategories
    for need in ("emergency", "dialysis", "chemotherapy", "pregnancy_check"):
        assert service_rules.triage(services, category="medical_visit", subcategory=need, submitted_at=T).escort
    assert subs["emergency"].priority == 1
    assert not service_rules.triage(services, category="food", subcategory="daily_food", submitted_at=T).escort


@pytest.mark.parametrize("bit,group", [(ELDERLY, "elderly"), (CHILD, "young_child"), (PREGNANT, "pregnant"),
                                       (CHRONIC, "chronic"), (MOBILITY, "limited_mobility")])
def test_a_vulnerable_group_caps_priority_and_hours(services, bit, group):
    base = service_rules.triage(services, category="garbage", submitted_at=T)
    tri = service_rules.triage(services, category="garbage", vulnerable=bit, submitted_at=T)
    assert tri.priority == min(base.priority, getattr(services.priority_by_group, group))
    assert tri.hours == min(base.hours, getattr(services.priority_hours_by_group, group))
    assert tri.groups == (group,)
    assert tri.priority < base.priority and tri.hours < base.hours  # garbage is never the most urgent


def test_several_groups_take_the_most_urgent(services):
    tri = service_rules.triage(services, category="other", vulnerable=ELDERLY | PREGNANT, submitted_at=T)
    assert tri.priority == min(services.priority_by_group.elderly, services.priority_by_group.pregnant)
    assert tri.hours == min(services.priority_hours_by_group.elderly, services.priority_hours_by_group.pregnant)
    assert set(tri.groups) == {"elderly", "pregnant"}


def test_a_group_never_makes_an_emergency_slower(services):
    alone = service_rules.triage(services, category="medical_visit", subcategory="emergency", submitted_at=T)
    everyone = service_rules.triage(services, category="medical_visit", subcategory="emergency", vulnerable=31,
                                    submitted_at=T)
    assert everyone.priority <= alone.priority and everyone.hours <= alone.hours and everyone.escort


def test_unknown_category_or_subcategory_is_refused_naming_the_field(services):
    with pytest.raises(service_rules.UnknownCategory) as exc:
        service_rules.triage(services, category="haircut", submitted_at=T)
    assert exc.value.field == "category"
    with pytest.raises(service_rules.UnknownCategory) as exc:
        service_rules.triage(services, category="food", subcategory="dialysis", submitted_at=T)
    assert exc.value.field == "subcategory"


def test_an_older_profile_without_categories_falls_back_to_the_first_fields(services):
    legacy = services.model_copy(update={"categories": None, "priority_by_group": None})
    by_cat = legacy.priority_hours_by_category
    visit = service_rules.triage(legacy, category="medical_visit", submitted_at=T)
    garbage = service_rules.triage(legacy, category="garbage", submitted_at=T)
    assert visit.hours == by_cat.medical_emergency and garbage.hours == by_cat.daily_needs
    assert visit.priority < garbage.priority and not visit.escort
    assert "legacy_profile" in visit.reasons
    elderly = service_rules.triage(legacy, category="garbage", vulnerable=ELDERLY, submitted_at=T)
    assert elderly.hours == min(by_cat.daily_needs, legacy.priority_hours_by_group.elderly)


def test_confirmation_window(services):
    assert service_rules.confirmation_due(services, T) == T + dt.timedelta(hours=services.confirmation_window_hours)
    assert service_rules.confirmation_due(services.model_copy(update={"confirmation_window_hours": None}), T) is None


def test_status_flow():
    assert service_rules.may_move("assigned", "in_progress")
    assert service_rules.may_move("in_progress", "delivered")
    assert not service_rules.may_move("delivered", "confirmed")  # only the resident confirms
    assert service_rules.may_move("delivered", "confirmed", by_resident=True)
    assert not service_rules.may_move("in_progress", "cancelled", by_resident=True)  # someone is on the way
    assert not service_rules.may_move("confirmed", "in_progress")
    assert not service_rules.may_move("cancelled", "assigned")
