"""The pure tracing rules: merging, tiers, statuses, windows, timeline problems, confidence, estimates, notice."""

from __future__ import annotations

import datetime as dt

import pytest

from jingkong.tracing import rules
from jingkong.tracing.rules import ContactState, Exposure
from jingkong.tracing.tests.helpers import at


def test_a_person_exposed_to_several_cases_gets_the_highest_tier_latest_exposure_and_earliest_deadline():
    state = rules.merge_contact(None, [
        Exposure("secondary", at(2, 10), due_at=at(3, 10)),
        Exposure("close", at(1, 18), due_at=at(3, 20)),
        Exposure("companion", at(4, 9), due_at=None),
    ])
    assert state.tier == "close"
    assert state.last_exposure_at == at(4, 9)
    assert state.due_at == at(3, 10)
    assert state.status == "identified"


def test_merging_never_lowers_the_tier_nor_moves_the_status_back():
    existing = ContactState(tier="close", status="located", last_exposure_at=at(3, 8), due_at=at(3, 20))
    state = rules.merge_contact(existing, [Exposure("secondary", at(2, 8), due_at=at(4, 8))])
    assert (state.tier, state.status, state.last_exposure_at, state.due_at) == ("close", "located", at(3, 8), at(3, 20))


def test_a_secondary_contact_found_close_is_raised_and_keeps_its_status():
    existing = ContactState(tier="secondary", status="notified", last_exposure_at=at(2, 8), due_at=at(3, 8))
    state = rules.merge_contact(existing, [Exposure("close", at(2, 20), due_at=at(3, 2))])
    assert (state.tier, state.status, state.due_at) == ("close", "notified", at(3, 2))


def test_a_closed_contact_is_reopened_only_by_a_later_exposure_and_never_after_becoming_a_case():
    closed = ContactState(tier="close", status="closed", last_exposure_at=at(1, 8), closed_at=at(2, 8),
                          close_reason="released")
    assert rules.merge_contact(closed, [Exposure("close", at(1, 20))]).status == "closed"
    reopened = rules.merge_contact(closed, [Exposure("secondary", at(3, 9), due_at=at(4, 9))])
    assert (reopened.status, reopened.tier, reopened.due_at, reopened.closed_at) == (
        "identified", "secondary", at(4, 9), None)
    became_case = ContactState(tier="close", status="closed", closed_at=at(2, 8), close_reason=rules.BECAME_CASE)
    assert rules.merge_contact(became_case, [Exposure("close", at(3, 9))]).status == "closed"


def test_reopening_a_closed_contact_does_not_depend_on_the_order_of_the_exposures():
    """Regression: a run finding an old exposure (before the closing) and a new one (after it) gave a close contact
    in one order and a companion in the other, and the old exposure's deadline leaked into the new episode."""
    closed = ContactState(tier="close", status="closed", last_exposure_at=at(1, 8), due_at=at(1, 20),
                          closed_at=at(2, 8), close_reason="released")
    old = Exposure("close", at(1, 20), due_at=at(2, 9))
    new = Exposure("companion", at(3, 9), due_at=None)
    one, other = rules.merge_contact(closed, [old, new]), rules.merge_contact(closed, [new, old])
    assert one == other
    assert (one.status, one.tier, one.due_at, one.last_exposure_at) == ("identified", "companion", None, at(3, 9))
    still = rules.merge_contact(closed, [old])
    assert (still.status, still.due_at, still.closed_at) == ("closed", at(1, 20), at(2, 8))


def test_merging_without_anything_is_an_error():
    with pytest.raises(ValueError):
        rules.merge_contact(None, [])


@pytest.mark.parametrize(("current", "target", "allowed"), [
    ("identified", "notified", True),
    ("identified", "located", True),  # a step may be skipped
    ("located", "notified", False),  # never backwards
    ("notified", "notified", False),
    ("in_quarantine", "handed_over", False),
    ("handed_over", "closed", True),
    ("closed", "identified", False),
    ("closed", "in_quarantine", False),
    ("identified", "lost", False),
])
def test_contact_status_moves_forward_only(current, target, allowed):
    assert (rules.transition_error(current, target) is None) is allowed


def test_the_lookback_counts_from_onset_or_sampling_whichever_is_earlier():
    tz = "Asia/Shanghai"
    assert rules.anchor_of(onset_date=None, first_positive_at=at(3, 9), tz=tz) == at(3, 9)
    assert rules.anchor_of(onset_date=dt.date(2022, 1, 2), first_positive_at=at(3, 9), tz=tz) == at(2, 0)
    assert rules.anchor_of(onset_date=dt.date(2022, 1, 4), first_positive_at=at(3, 9), tz=tz) == at(3, 9)
    with pytest.raises(rules.NoAnchor):
        rules.anchor_of(onset_date=None, first_positive_at=None, tz=tz)


def test_the_variant_override_applies_only_to_flagged_cases_and_only_when_the_profile_has_one():
    assert rules.lookback_days(lookback=2, variant_override=4, variant="") == 2
    assert rules.lookback_days(lookback=2, variant_override=4, variant="Delta") == 4
    assert rules.lookback_days(lookback=4, variant_override=None, variant="Omicron") == 4
    # Regression: "unknown" / "待测序" (sequencing pending) counted as a variant flag and doubled the window.
    for placeholder in ("unknown", "Unknown ", "待测序", "未知", "-"):
        assert rules.lookback_days(lookback=2, variant_override=4, variant=placeholder) == 2
    assert rules.lookback_days(lookback=2, variant_override=4, variant="德尔塔") == 4


def test_the_window_ends_at_isolation_or_now():
    w = rules.case_window(anchor=at(3, 9), days=2, isolated_at=None, now=at(5, 12))
    assert (w.start, w.end) == (at(1, 9), at(5, 12))
    assert rules.case_window(anchor=at(3, 9), days=2, isolated_at=at(3, 20), now=at(5, 12)).end == at(3, 20)


def test_overlapping_outings_are_found_but_home_and_workplace_rows_do_not_count():
    spans = [
        rules.StaySpan(1, "home", at(1, 0), at(5, 0)),
        rules.StaySpan(2, "venue", at(2, 9), at(2, 10)),
        rules.StaySpan(3, "venue", at(2, 9, 30), at(2, 11)),
        rules.StaySpan(4, "venue", at(2, 11), at(2, 12)),  # touches, does not overlap
        rules.StaySpan(5, "workplace", at(2, 8), at(2, 18)),
        rules.StaySpan(6, "transport", at(2, 12), at(2, 11)),  # inverted: judged elsewhere
    ]
    assert rules.overlapping(spans) == {2, 3}


def test_a_long_stay_overlaps_every_later_one_inside_it():
    spans = [rules.StaySpan(1, "venue", at(2, 8), at(2, 18)), rules.StaySpan(2, "venue", at(2, 9), at(2, 10)),
             rules.StaySpan(3, "venue", at(2, 12), at(2, 13))]
    assert rules.overlapping(spans) == {1, 2, 3}


def test_the_reason_key_is_stable_and_distinguishes_exposures():
    assert rules.reason_key(1, "", "venue", 7, "2022") == rules.reason_key(1, "", "venue", 7, "2022")
    assert rules.reason_key(1, "", "venue", 7, "2022") != rules.reason_key(2, "", "venue", 7, "2022")
    assert rules.reason_key(1, None, "household") == rules.reason_key(1, "", "household")


def test_link_confidence_is_the_strongest_evidence_and_lower_for_a_guessed_direction():
    assert rules.link_confidence(["venue_same_day", "household"]) == "high"
    assert rules.link_confidence(["venue_overlap"]) == "medium"
    assert rules.link_confidence(["venue_overlap"], tie=True) == "low"
    assert rules.link_confidence(["something_new"]) == "low"


def test_incubation_checks():
    assert rules.within_incubation(infector_anchor=at(1, 8), infectee_anchor=at(10, 8), max_days=14)
    assert not rules.within_incubation(infector_anchor=at(1, 8), infectee_anchor=at(20, 8), max_days=14)
    assert not rules.within_incubation(infector_anchor=at(5, 8), infectee_anchor=at(4, 8), max_days=14)
    assert rules.exposure_in_window(at=at(3, 8), infectee_anchor=at(6, 8), min_days=1, max_days=14)
    assert not rules.exposure_in_window(at=at(6, 0), infectee_anchor=at(6, 8), min_days=1, max_days=14)


def test_cluster_setting():
    assert rules.cluster_setting(["household", "contact_household"]) == "household"
    assert rules.cluster_setting(["household", "venue_overlap"]) == "mixed"
    assert rules.cluster_setting(["manual", "venue_overlap"]) == "venue"
    assert rules.cluster_setting([]) == "unknown"


def test_estimates_need_a_minimum_sample_and_always_say_n():
    few = rules.summarize([3, 4], min_n=5)
    assert few["n"] == 2 and few["sufficient"] is False and few["median"] is None and few["min"] == 3
    enough = rules.summarize([2, 3, 4, 5, 6, 10], min_n=5)
    assert enough["sufficient"] is True
    assert enough["median"] == 4.5 and enough["mean"] == 5.0
    assert (enough["q1"], enough["q3"]) == (3.25, 5.75)
    assert rules.summarize([], min_n=5)["n"] == 0


def test_notice_rounds_times_outwards_to_quarter_hours():
    lo, hi = rules.round_out(at(2, 9, 7), at(2, 10, 1))
    assert (lo, hi) == (at(2, 9, 0), at(2, 10, 15))
    assert rules.round_out(at(2, 9, 0), at(2, 9, 30)) == (at(2, 9, 0), at(2, 9, 30))


def test_notice_places_remove_personal_details():
    home = rules.notice_place(kind="home", community="一社区")
    assert home == {"kind": "home", "place": "一社区", "community": "一社区"}
    shop = rules.notice_place(kind="venue", venue_name="大润发", venue_type="supermarket", community="一社区")
    assert shop["place"] == "大润发"
    small = rules.notice_place(kind="workplace", venue_name="张记五金厂", venue_type="factory", venue_workers=8,
                               community="二社区")
    assert small["place"] == "" and small["withheld"] is True and small["community"] == "二社区"
    big = rules.notice_place(kind="workplace", venue_name="港务集团", venue_type="factory", venue_workers=800)
    assert big["place"] == "港务集团"
    train = rules.notice_place(kind="transport", transport_mode="train", transport_number="G7501", carriage="5")
    assert train["place"] == "G7501 5" and "seat" not in train
    assert rules.notice_place(kind="other") is None
    assert rules.notice_place(kind="other", public_label="某公园")["place"] == "某公园"


def test_a_private_ride_is_not_published_without_a_public_label():
    """Regression: the free-text number of an "other" ride (a private car's plate, the driver's name) was published."""
    assert rules.notice_place(kind="transport", transport_mode="other", transport_number="浙B88888 张师傅") is None
    assert rules.notice_place(kind="transport", transport_mode="other", transport_number="浙B88888",
                              public_label="网约车")["place"] == "网约车"
    assert rules.notice_place(kind="transport", transport_mode="taxi", transport_number="浙B·T1234")["place"] == (
        "浙B·T1234")
