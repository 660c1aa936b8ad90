"""The rules in force for a case and its look-back window (policy profile → jingkong.tracing.rules)."""

from __future__ import annotations

import datetime as dt

from jingkong.core import clock
from jingkong.policy.selectors import ActiveProfile, PolicyNotActive, active_profile
from jingkong.tracing import rules
from jingkong.tracing.models import Case


def profile_for(region_code: str, at: dt.datetime) -> ActiveProfile:
    """The profile in force for the region at ``at``; when none was active yet (an activation recorded after the
    first onset, e.g. in a replay), the one in force now. Raises PolicyNotActive when there is none at all."""
    try:
        return active_profile(region_code=region_code, at=at)
    except PolicyNotActive:
        return active_profile(region_code=region_code, at=max(at, clock.now()))


def case_anchor(case: Case) -> dt.datetime:
    return rules.anchor_of(onset_date=case.onset_date, first_positive_at=case.first_positive_at,
                           tz=clock.local_time_zone())


def case_window(case: Case, *, now: dt.datetime) -> tuple[rules.Window, ActiveProfile]:
    """The case's contact window and the profile it comes from. Raises rules.NoAnchor or PolicyNotActive."""
    anchor = case_anchor(case)
    profile = profile_for(case.region_code, anchor)
    contacts = profile.rules.contacts
    days = rules.lookback_days(lookback=contacts.lookback_days, variant_override=contacts.lookback_days_delta_override,
                               variant=case.variant)
    return rules.case_window(anchor=anchor, days=days, isolated_at=case.isolated_at, now=now), profile


def jurisdiction_of(case: Case) -> str:
    """The region that investigates a case: its tracer's region, or else the street of the case's residence.
    Contacts living outside it are handed off to their own street's queue."""
    tracer = case.tracer
    if tracer is not None and tracer.region_id is not None:
        return tracer.region.code
    return case.region_code[:9]


def queue_of(region_code: str, fallback: str) -> str:
    """The queue (street) that works on a contact living in ``region_code``."""
    return region_code[:9] if region_code else fallback


def common_region(codes: list[str]) -> str:
    """The smallest region containing every code (codes are prefixes of their children: 6, 9, 12, 15 digits)."""
    codes = [c for c in codes if c]
    if not codes:
        return ""
    first, last = min(codes), max(codes)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    for length in (15, 12, 9, 6):
        if length <= n:
            return first[:length]
    return ""
