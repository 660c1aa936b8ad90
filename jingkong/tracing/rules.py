"""Pure tracing rules (no database): look-back windows, merging a person's exposures into one contact, status moves,
timeline problems, link confidence, interval statistics and the public-notice wording.

Everything here takes plain values and is tested directly (tests/test_rules.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

# --- tiers and statuses ---------------------------------------------------------------------------------------------

CLOSE, SECONDARY, COMPANION = "close", "secondary", "companion"
TIER_RANK = {CLOSE: 3, SECONDARY: 2, COMPANION: 1}

IDENTIFIED, NOTIFIED, LOCATED, HANDED_OVER, IN_QUARANTINE, CLOSED = (
    "identified", "notified", "located", "handed_over", "in_quarantine", "closed",
)
# The work on a contact moves one way; a step may be skipped (a grid worker who finds the person also tells them).
STATUS_FLOW = (IDENTIFIED, NOTIFIED, LOCATED, HANDED_OVER, IN_QUARANTINE)
STATUS_RANK = {s: i for i, s in enumerate(STATUS_FLOW)}
BECAME_CASE = "became a case"


def higher_tier(a: str | None, b: str | None) -> str:
    """The more severe of two tiers (close > secondary > companion)."""
    if a is None:
        return b  # type: ignore[return-value]
    if b is None:
        return a
    return a if TIER_RANK[a] >= TIER_RANK[b] else b


def transition_error(current: str, target: str) -> str | None:
    """Why ``current`` → ``target`` is not allowed (None: allowed). Status never goes backwards."""
    if target not in STATUS_RANK and target != CLOSED:
        return f"unknown status {target!r}"
    if current == CLOSED:
        return "the contact is closed"
    if target == CLOSED:
        return None
    if STATUS_RANK[target] <= STATUS_RANK[current]:
        return f"a contact cannot go back from {current!r} to {target!r}"
    return None


@dataclass(frozen=True)
class ContactState:
    tier: str
    status: str = IDENTIFIED
    last_exposure_at: dt.datetime | None = None
    due_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None
    close_reason: str = ""


@dataclass(frozen=True)
class Exposure:
    """One newly found exposure of a person: its tier, when it ended and the deadline for acting on it."""

    tier: str
    last_exposure_at: dt.datetime | None
    due_at: dt.datetime | None = None


def _latest(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _earliest(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    return b if a is None else a if b is None else min(a, b)


def merge_contact(existing: ContactState | None, exposures: Iterable[Exposure]) -> ContactState:
    """One contact from all exposures of a person, across cases and across runs.

    * tier: the highest (close > secondary > companion), never lowered;
    * last exposure: the latest;
    * due: the earliest deadline (the earliest-needed action wins);
    * status: kept — merging never moves it backwards. A closed contact is reopened (identified again) only by an
      exposure after it was closed, and never when it was closed because the person became a case. The reopened
      contact is a new episode: its tier and deadline come from the exposures after the closing only (those before
      it were dealt with), whatever order the exposures arrive in.
    """
    exposures = list(exposures)
    if existing is None and not exposures:
        raise ValueError("merge_contact needs an existing contact or at least one exposure")
    if existing is not None and existing.status == CLOSED:
        latest = existing.last_exposure_at
        for e in exposures:
            latest = _latest(latest, e.last_exposure_at)
        after = [] if existing.close_reason == BECAME_CASE or existing.closed_at is None else [
            e for e in exposures if e.last_exposure_at is not None and e.last_exposure_at > existing.closed_at]
        if after:
            episode = _fold(None, after)
            return replace(episode, last_exposure_at=latest)
        tier = existing.tier
        for e in exposures:
            tier = higher_tier(tier, e.tier)
        # Still closed: the record keeps its history (tier, last exposure); no deadline is set for closed work.
        return replace(existing, tier=tier, last_exposure_at=latest)
    return _fold(existing, exposures)


def _fold(state: ContactState | None, exposures: list[Exposure]) -> ContactState:
    for exposure in exposures:
        if state is None:
            state = ContactState(tier=exposure.tier, last_exposure_at=exposure.last_exposure_at, due_at=exposure.due_at)
            continue
        state = replace(
            state,
            tier=higher_tier(state.tier, exposure.tier),
            last_exposure_at=_latest(state.last_exposure_at, exposure.last_exposure_at),
            due_at=_earliest(state.due_at, exposure.due_at),
        )
    assert state is not None
    return state


def reason_key(*parts: object) -> str:
    """A stable identity for one exposure (case, via, kind, place/time): re-runs find the same key."""
    text = json.dumps([str(p) if p is not None else "" for p in parts], ensure_ascii=False)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


# --- windows ----------------------------------------------------------------------------------------------------------


class NoAnchor(ValueError):
    """A case with neither an onset date nor a positive sampling time: its look-back window cannot start."""


def anchor_of(*, onset_date: dt.date | None, first_positive_at: dt.datetime | None, tz: str) -> dt.datetime:
    """The instant the look-back counts from: symptom onset (start of that local day) or, for a case without one
    (asymptomatic), the first positive sampling; the earlier of the two when both are known (a case sampled before its
    symptoms began was infectious before the sampling)."""
    candidates = []
    if onset_date is not None:
        candidates.append(dt.datetime.combine(onset_date, dt.time(0), tzinfo=ZoneInfo(tz)).astimezone(dt.UTC))
    if first_positive_at is not None:
        candidates.append(first_positive_at.astimezone(dt.UTC))
    if not candidates:
        raise NoAnchor("the case has neither a symptom onset date nor a positive sampling time")
    return min(candidates)


# What tracers type while the sequencing result is not in: no variant flag yet.
NO_VARIANT = frozenset({"", "-", "—", "?", "unknown", "none", "n/a", "na", "pending", "未知", "不详", "待定", "待测序",
                        "测序中", "无"})


def lookback_days(*, lookback: int, variant_override: int | None, variant: str) -> int:
    """The profile's look-back, or its variant override when the case is flagged with a variant and the profile has
    one (e.g. 4 days for Delta in the 2021 profile). "unknown", "待测序" and the like flag nothing."""
    if variant.strip().lower() not in NO_VARIANT and variant_override is not None:
        return variant_override
    return lookback


@dataclass(frozen=True)
class Window:
    start: dt.datetime
    end: dt.datetime
    anchor: dt.datetime
    days: int


def case_window(*, anchor: dt.datetime, days: int, isolated_at: dt.datetime | None, now: dt.datetime) -> Window:
    """Contacts count from ``days`` before the anchor until the case was isolated (or now)."""
    start = anchor - dt.timedelta(days=days)
    end = isolated_at or now
    if end < start:
        end = start
    return Window(start=start, end=end, anchor=anchor, days=days)


# --- timeline problems ------------------------------------------------------------------------------------------------

BACKGROUND_KINDS = ("home", "workplace")  # registry rows spanning the window: overlapping them is normal


@dataclass(frozen=True)
class StaySpan:
    id: int
    kind: str
    start: dt.datetime
    end: dt.datetime


def overlapping(stays: Sequence[StaySpan]) -> set[int]:
    """Ids of stays that overlap another stay of the same timeline (home and workplace rows excepted: a person is
    "at home" around every outing). Inverted rows are judged elsewhere and ignored here."""
    spans = sorted((s for s in stays if s.kind not in BACKGROUND_KINDS and s.end >= s.start),
                   key=lambda s: (s.start, s.end, s.id))
    out: set[int] = set()
    running: StaySpan | None = None
    for s in spans:
        if running is not None and s.start < running.end:
            out.update((s.id, running.id))
        if running is None or s.end > running.end:
            running = s
    return out


# --- chains -----------------------------------------------------------------------------------------------------------

HIGH, MEDIUM, LOW = "high", "medium", "low"
CONFIDENCE_RANK = {HIGH: 3, MEDIUM: 2, LOW: 1}
# How strongly each kind of shared exposure points at transmission (a tracer confirms or rejects every suggestion).
EVIDENCE_CONFIDENCE = {
    "household": HIGH,
    "contact_household": HIGH,
    "contact_transport": HIGH,
    "contact_tracer": HIGH,
    "contact_venue": MEDIUM,
    "contact_workplace": MEDIUM,
    "contact_companion": LOW,
    "contact_secondary": LOW,
    "workplace": MEDIUM,
    "venue_overlap": MEDIUM,
    "venue_same_day": LOW,
}


def link_confidence(evidence_kinds: Iterable[str], *, tie: bool = False) -> str:
    """The confidence of a suggested link: its strongest evidence; one step lower when the direction is a guess
    (both cases counted from the same instant)."""
    best = max((CONFIDENCE_RANK[EVIDENCE_CONFIDENCE.get(k, LOW)] for k in evidence_kinds), default=1)
    if tie:
        best = max(1, best - 1)
    return {3: HIGH, 2: MEDIUM, 1: LOW}[best]


def within_incubation(*, infector_anchor: dt.datetime, infectee_anchor: dt.datetime, max_days: int) -> bool:
    """An earlier case can have infected a later one only if the later one's onset/sampling comes at most the longest
    incubation after the earlier one's."""
    gap = infectee_anchor - infector_anchor
    return dt.timedelta(0) <= gap <= dt.timedelta(days=max_days)


def exposure_in_window(*, at: dt.datetime, infectee_anchor: dt.datetime, min_days: int, max_days: int) -> bool:
    """A shared exposure can explain the infectee's infection when it lies inside the infectee's incubation window."""
    return infectee_anchor - dt.timedelta(days=max_days) <= at <= infectee_anchor - dt.timedelta(days=min_days)


def cluster_setting(kinds: Iterable[str]) -> str:
    """A cluster's setting from its links' main evidence: the one kind when all agree, otherwise mixed."""
    mapped = {
        {"household": "household", "contact_household": "household", "workplace": "workplace",
         "contact_workplace": "workplace", "venue_overlap": "venue", "venue_same_day": "venue",
         "contact_venue": "venue", "contact_transport": "transport"}.get(k, "unknown")
        for k in kinds
    }
    if not mapped:
        return "unknown"
    if len(mapped) == 1:
        return mapped.pop()
    mapped.discard("unknown")
    return mapped.pop() if len(mapped) == 1 else "mixed"


# --- estimates --------------------------------------------------------------------------------------------------------

MIN_PAIRS = 5  # fewer linked pairs than this: the figures are shown as "insufficient data" (n is always shown)


def summarize(values: Sequence[float], *, min_n: int = MIN_PAIRS) -> dict:
    """Mean, median and inter-quartile range of intervals in days, with the sample size."""
    values = sorted(float(v) for v in values)
    n = len(values)
    out: dict = {"n": n, "sufficient": n >= min_n, "min_n": min_n, "mean": None, "median": None, "q1": None,
                 "q3": None, "min": None, "max": None}
    if n == 0:
        return out
    out.update(min=values[0], max=values[-1], median=statistics.median(values), mean=statistics.fmean(values))
    if n >= 2:
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
        out.update(q1=q1, q3=q3)
    else:
        out.update(q1=values[0], q3=values[0])
    if not out["sufficient"]:
        for key in ("mean", "median", "q1", "q3"):
            out[key] = None
    return out


# --- public notice ----------------------------------------------------------------------------------------------------

NOTICE_ROUND_MINUTES = 15
# Workplaces with fewer registered workers than this are not named in a public notice: a small employer's name
# points at the person. Their stays appear as "a workplace in <community>".
SMALL_EMPLOYER_WORKERS = 50
PUBLIC_VENUE_TYPES = frozenset({
    "supermarket", "wet_market", "restaurant", "pharmacy", "clinic", "school", "station", "hotel", "gym",
    "government", "port_terminal",
})


# Rides whose "number" is free text about a private vehicle (a private car's plate, "张师傅的车"): published only
# through a tracer-given public label.
PRIVATE_TRANSPORT = frozenset({"other"})


def round_out(start: dt.datetime, end: dt.datetime, minutes: int = NOTICE_ROUND_MINUTES) -> tuple[dt.datetime, dt.datetime]:
    """Widen a window to whole ``minutes`` steps (start down, end up): published times do not pin a person down to
    the minute, and nobody who was there is left out."""
    step = dt.timedelta(minutes=minutes)
    epoch = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    lo = epoch + ((start - epoch) // step) * step
    hi = epoch + -((epoch - end) // step) * step
    return lo, hi


def notice_place(*, kind: str, venue_name: str = "", venue_type: str = "", venue_workers: int = 0,
                 community: str = "", public_label: str = "", transport_mode: str = "", transport_number: str = "",
                 carriage: str = "") -> dict | None:
    """What a public notice says about one stay, or None when the stay is not published.

    * a tracer-given public label always wins;
    * home: the residential community only (never the building, unit or room);
    * workplace and other non-public venues: named only when the employer is large (>= SMALL_EMPLOYER_WORKERS
      registered workers), otherwise "a workplace in <community>";
    * public venues (shops, markets, restaurants, stations...): their name and community;
    * transport: mode, number and carriage (never the seat); a ride of the "other" mode (a private car) only with a
      public label;
    * anything else without a public label is left out (free text may name people).
    """
    if public_label.strip():
        return {"kind": kind, "place": public_label.strip(), "community": community}
    if kind == "home":
        return {"kind": "home", "place": community, "community": community} if community else None
    if kind == "transport":
        if not (transport_mode or transport_number) or transport_mode in PRIVATE_TRANSPORT:
            return None
        return {"kind": "transport", "place": " ".join(p for p in (transport_number, carriage) if p),
                "transport_mode": transport_mode, "transport_number": transport_number, "carriage": carriage,
                "community": ""}
    if venue_name:
        public = venue_type in PUBLIC_VENUE_TYPES or venue_workers >= SMALL_EMPLOYER_WORKERS
        if public:
            return {"kind": kind, "place": venue_name, "community": community}
        return {"kind": kind, "place": "", "community": community, "withheld": True}
    return None
