"""Pure zone rules (no database): proposing zones from a case's places, lifting / downgrading countdowns, upgrades.

Everything here works on plain values handed in by the services, so it is tested directly and exhaustively
(jingkong/zones/tests/test_rules.py). Rule values come from the policy profile's ``zones`` section (passed in).

Units are :class:`UnitRef` tuples: ``("household", id)``, ``("entrance", building_id, "1")``, ``("building", id)``,
``("compound", grid_code, compound_key)``, ``("region", code)`` (grid, community, street or district by its length).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _

# --- vocabulary --------------------------------------------------------------------------------------------------------

SCHEME_TYPES = {
    "three_zones": ("lockdown", "control", "prevention"),
    "risk_areas": ("high_risk", "medium_risk", "low_risk"),
}
SEVERITY = {"lockdown": 0, "high_risk": 0, "control": 1, "medium_risk": 1, "prevention": 2, "low_risk": 2}
# Published risk level of a zone type (prevention / low risk publish nothing).
RISK_LEVEL = {"lockdown": "high", "high_risk": "high", "control": "medium", "medium_risk": "medium"}
UNIT_RANK = {"household": 0, "entrance": 1, "building": 2, "compound": 3, "grid": 4, "community": 5, "street": 6,
             "district": 7}
CODE_LENGTH = {"district": 6, "street": 9, "community": 12, "grid": 15}
LEVEL_OF_LENGTH = {v: k for k, v in CODE_LENGTH.items()}


def scheme_of(zone_type: str) -> str:
    return "three_zones" if zone_type in SCHEME_TYPES["three_zones"] else "risk_areas"


def type_at(scheme: str, severity: int) -> str:
    return SCHEME_TYPES[scheme][severity]


def more_severe(zone_type: str) -> list[str]:
    """Zone types more severe than ``zone_type`` (same scheme)."""
    scheme = SCHEME_TYPES[scheme_of(zone_type)]
    return list(scheme[: SEVERITY[zone_type]])


# --- places and units --------------------------------------------------------------------------------------------------

_BUILDING_NO = re.compile(r"^(?P<compound>.+?)\s*(?P<no>[0-9０-９]+|[一二三四五六七八九十百零]+)\s*(号楼|幢|栋|座|号)(?P<rest>.*)$")
_ROAD_END = ("路", "街", "巷", "弄", "大道")


def compound_key(address: str | None) -> str | None:
    """The compound (小区) part of a building address, or None when it cannot be derived.

    ``"北仑区新碶街道明州花园12幢"`` → ``"北仑区新碶街道明州花园"``: the text before the building number (号楼/幢/栋/座/号).
    A street address (``"长江路12号"``: the part before the number ends with 路/街/巷/弄/大道) names a road, not a
    compound, so it gives None; so does an address without a building number. The services then use the grid.
    """
    if not address:
        return None
    m = _BUILDING_NO.match(address.strip())
    if not m:
        return None
    key = m.group("compound").strip()
    if not key or key.endswith(_ROAD_END):
        return None
    return key


@dataclass(frozen=True)
class Place:
    """One place of a case: where the case lives, works, or often went. Ids are database ids, codes region codes."""

    kind: str  # "home" | "workplace" | "frequent"
    grid_code: str
    building_id: int | None = None
    household_id: int | None = None
    entrance: str = ""
    compound: str | None = None  # compound_key() of the building's address
    label: str = ""


UnitRef = tuple


def region_unit(code: str) -> UnitRef:
    return ("region", code)


def lockdown_unit(place: Place, smallest: str) -> UnitRef:
    """The smallest control unit (profile) holding ``place``; a level the place cannot give falls back to the next
    larger one it can (a workplace has no household: its building; a venue without a building: its grid)."""
    rank = UNIT_RANK[smallest]
    if rank <= UNIT_RANK["household"] and place.household_id:
        return ("household", place.household_id)
    if rank <= UNIT_RANK["entrance"] and place.building_id and place.entrance:
        return ("entrance", place.building_id, place.entrance)
    if rank <= UNIT_RANK["building"] and place.building_id:
        return ("building", place.building_id)
    if rank <= UNIT_RANK["compound"] and place.building_id and place.compound:
        return ("compound", place.grid_code, place.compound)
    level = smallest if rank >= UNIT_RANK["grid"] else "grid"
    return region_unit(place.grid_code[: CODE_LENGTH[level]])


def unit_level(unit: UnitRef) -> str:
    if unit[0] == "region":
        return LEVEL_OF_LENGTH.get(len(unit[1]), "grid")
    return unit[0]


@dataclass(frozen=True)
class Visit:
    venue_id: int
    start: dt.datetime
    end: dt.datetime


def frequent_venues(visits: Iterable[Visit], *, min_visits: int | None, min_hours: int | None) -> list[int]:
    """Venues of a timeline visited at least ``min_visits`` times or for at least ``min_hours`` hours in all (an
    inverted stay counts as a visit of no time). ``None`` thresholds are not applied; both None: no venue."""
    count: dict[int, int] = {}
    seconds: dict[int, float] = {}
    for v in visits:
        count[v.venue_id] = count.get(v.venue_id, 0) + 1
        seconds[v.venue_id] = seconds.get(v.venue_id, 0.0) + max(0.0, (v.end - v.start).total_seconds())
    out = []
    for venue in count:
        if (min_visits is not None and count[venue] >= min_visits) or \
                (min_hours is not None and seconds[venue] >= min_hours * 3600):
            out.append(venue)
    return sorted(out)


@dataclass
class Proposal:
    """Units for each zone of a proposal (types of the profile's scheme, most severe first)."""

    lockdown_type: str
    control_type: str | None
    prevention_type: str | None
    lockdown: list[UnitRef] = field(default_factory=list)
    control: list[UnitRef] = field(default_factory=list)
    prevention: list[UnitRef] = field(default_factory=list)


def _ring_level(lockdown: list[UnitRef], ring: str | None) -> str:
    """The control ring's level: the profile's, or (not set) the grid; never smaller than the lockdown units."""
    level = ring or "grid"
    widest = max((UNIT_RANK[unit_level(u)] for u in lockdown), default=0)
    while UNIT_RANK[level] <= widest and level != "district":
        level = {"grid": "community", "community": "street", "street": "district"}[level]
    return level


def propose(places: list[Place], *, scheme: str, types: list[str], smallest_unit: str, control_ring: str | None,
            prevention_area: str | None) -> Proposal:
    """Zones for a case's places under the profile (pure).

    * lockdown (封控区 / high risk): the smallest control unit of each place (deduplicated);
    * control (管控区 / medium risk), when the type is in use: the regions at ``control_ring`` level (default grid)
      holding the lockdown units — the zone is "the rest" of them (its residents exclude the lockdown's);
    * prevention (防范区 / low risk), when in use: the regions at ``prevention_area`` level (default: the street)
      holding the control regions.
    """
    order = SCHEME_TYPES[scheme]
    in_use = [t for t in order if t in types]
    if not places:
        raise ValueError("no place to draw a zone around")
    lockdown_type = order[0]
    control_type = order[1] if order[1] in in_use else None
    prevention_type = order[2] if order[2] in in_use else None
    out = Proposal(lockdown_type=lockdown_type, control_type=control_type, prevention_type=prevention_type)
    for place in places:
        unit = lockdown_unit(place, smallest_unit)
        if unit not in out.lockdown:
            out.lockdown.append(unit)
    grids = []
    for place in places:
        if place.grid_code not in grids:
            grids.append(place.grid_code)
    ring = _ring_level(out.lockdown, control_ring)
    if control_type:
        for code in grids:
            unit = region_unit(code[: CODE_LENGTH[ring]])
            if unit not in out.control:
                out.control.append(unit)
    if prevention_type:
        area = prevention_area or "street"
        if UNIT_RANK[area] <= UNIT_RANK[ring]:
            area = "district" if ring != "district" else ring
        for code in grids:
            unit = region_unit(code[: CODE_LENGTH[area]])
            if unit not in out.prevention:
                out.prevention.append(unit)
    return out


def common_region(codes: Iterable[str]) -> str:
    """The smallest region (6/9/12/15-digit code) containing every code."""
    codes = [c for c in codes if c]
    if not codes:
        return ""
    prefix = codes[0]
    for c in codes[1:]:
        n = 0
        while n < min(len(prefix), len(c)) and prefix[n] == c[n]:
            n += 1
        prefix = prefix[:n]
    for length in (15, 12, 9, 6):
        if len(prefix) >= length:
            return prefix[:length]
    return prefix


# --- lifting and downgrading -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Blocker:
    code: str
    text: str
    clears_at: dt.datetime | None = None  # when it clears by itself, if known

    def as_dict(self) -> dict:
        return {"code": self.code, "text": self.text, "clears_at": self.clears_at}


@dataclass(frozen=True)
class Countdown:
    """What the rules allow next for a zone: ``action`` ("lift" or "downgrade") to ``to_type`` (None: lifted) at
    ``due_at`` (when the time conditions are met), ``ready`` now, and what still blocks it."""

    action: str
    to_type: str | None
    due_at: dt.datetime | None
    ready: bool
    blockers: list[Blocker]

    def as_dict(self) -> dict:
        return {"action": self.action, "to_type": self.to_type, "due_at": self.due_at, "ready": self.ready,
                "blockers": [b.as_dict() for b in self.blockers]}


@dataclass(frozen=True)
class ZoneClock:
    """The inputs of a zone's countdown (kept current by the services)."""

    type: str
    since: dt.datetime  # at this level since (approval, or the last up/downgrade)
    last_infection_at: dt.datetime | None = None
    last_exposure_at: dt.datetime | None = None
    last_screening_at: dt.datetime | None = None  # everyone inside negative at or after this (None: not everyone)
    downgraded_from_high: bool = False
    higher_zones_in_force: int = 0  # for prevention / low risk: lockdown/control zones around still in force


def _zone(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


def _day(moment: dt.datetime, tz: str) -> dt.date:
    """The calendar day of ``moment`` in the command centre's time zone."""
    return moment.astimezone(_zone(tz)).date()


def _after_days(moment: dt.datetime, n: int, tz: str) -> dt.datetime:
    """The instant ``n`` whole calendar days after the day of ``moment`` are over: 00:00 local of day ``n + 1`` (the
    day of ``moment`` is day 0). "14 days without a new infection" after one on 1 November (any hour) are 2–15
    November: due at 16 November 00:00 local (never earlier than 14 × 24 h, as the policy counts days, not hours)."""
    day = _day(moment, tz) + dt.timedelta(days=n + 1)
    return dt.datetime.combine(day, dt.time(0), tzinfo=_zone(tz)).astimezone(dt.UTC)


def _fmt(moment: dt.datetime | None, tz: str) -> str:
    return moment.astimezone(_zone(tz)).strftime("%Y-%m-%d %H:%M") if moment else "?"


def lifting_three_zones(clock: ZoneClock, *, no_new_infection_days: int, last_exposure_days: int,
                        screening_days_before_lift: int, at: dt.datetime, tz: str = "UTC") -> Countdown:
    """三区 (2021): a lockdown or control zone is lifted when all three hold (policy_rules.md §2.2), counted in
    calendar days of the time zone ``tz`` (the command centre's, Asia/Shanghai; the day of an event is day 0):

    1. no new infection inside for ``no_new_infection_days`` whole days (after the day of the last infection, or of
       the zone's start when none was found inside);
    2. the last contact's last exposure is more than ``last_exposure_days`` whole days old (no known contact: met);
    3. everyone inside screened negative within ``screening_days_before_lift`` days before lifting: the screening
       (``last_screening_at``, the earliest of everyone's latest negative) falls on the lifting day or one of the
       ``screening_days_before_lift`` days before it, and not before the last infection.

    ``due_at`` is when 1 and 2 are met. A prevention zone is lifted when no lockdown/control zone around it is left.
    """
    if SEVERITY[clock.type] == 2:
        blockers = []
        if clock.higher_zones_in_force:
            blockers.append(Blocker("higher_zones", _("%(n)d lockdown/control zone(s) in its area still in force")
                                    % {"n": clock.higher_zones_in_force}))
        return Countdown("lift", None, None if blockers else clock.since, not blockers, blockers)
    blockers: list[Blocker] = []
    infection_from = clock.last_infection_at or clock.since
    infection_clear = _after_days(infection_from, no_new_infection_days, tz)
    if at < infection_clear:
        blockers.append(Blocker("new_infection", _("%(n)d days without a new infection inside (last: %(last)s)")
                                % {"n": no_new_infection_days, "last": _fmt(infection_from, tz)}, infection_clear))
    exposure_clear = _after_days(clock.last_exposure_at, last_exposure_days, tz) if clock.last_exposure_at else None
    if exposure_clear and at < exposure_clear:
        blockers.append(Blocker("last_exposure", _("the last contact's exposure must be more than %(n)d days old "
                                                   "(last: %(last)s)")
                                % {"n": last_exposure_days, "last": _fmt(clock.last_exposure_at, tz)}, exposure_clear))
    due = max(d for d in (infection_clear, exposure_clear, clock.since) if d is not None)
    moment = max(at, due)
    screen = clock.last_screening_at
    first_day = _day(moment, tz) - dt.timedelta(days=screening_days_before_lift)
    if screen is None or _day(screen, tz) < first_day or (clock.last_infection_at and screen < clock.last_infection_at):
        earliest = _day(due, tz) - dt.timedelta(days=screening_days_before_lift)
        blockers.append(Blocker(
            "screening", _("everyone inside screened negative within %(n)d days before lifting (a screening from "
                           "%(day)s on; last complete: %(last)s)")
            % {"n": screening_days_before_lift, "day": earliest.isoformat(), "last": _fmt(screen, tz)}))
    return Countdown("lift", None, due, not blockers, blockers)


def downgrade_risk_areas(clock: ZoneClock, *, high_to_medium_days: int, medium_to_low_days: int,
                         downgraded_high_to_low_days: int, screening_day: int, at: dt.datetime,
                         tz: str = "UTC") -> Countdown:
    """9th edition (2022, policy_rules.md §2.3): calendar days of ``tz`` counted after the day (day 0) of the later of
    the level's start and the last infection inside —

    * high → medium after ``high_to_medium_days`` whole days with an all-negative screening of everyone inside on day
      ``screening_day`` (or later) of the period;
    * a high-risk area downgraded to medium → low after ``downgraded_high_to_low_days`` more days without infection;
    * medium → low after ``medium_to_low_days`` days with the day-``screening_day`` screening;
    * low: lifted when no high/medium area around it is left.
    """
    if SEVERITY[clock.type] == 2:
        blockers = []
        if clock.higher_zones_in_force:
            blockers.append(Blocker("higher_zones", _("%(n)d high/medium-risk area(s) in its area still in force")
                                    % {"n": clock.higher_zones_in_force}))
        return Countdown("lift", None, None if blockers else clock.since, not blockers, blockers)
    start = max(d for d in (clock.since, clock.last_infection_at) if d is not None)
    if clock.type == "high_risk":
        days, to_type, screening = high_to_medium_days, "medium_risk", True
    elif clock.downgraded_from_high:
        days, to_type, screening = downgraded_high_to_low_days, "low_risk", False
    else:
        days, to_type, screening = medium_to_low_days, "low_risk", True
    due = _after_days(start, days, tz)
    blockers: list[Blocker] = []
    if at < due:
        blockers.append(Blocker("new_infection", _("%(n)d consecutive days without a new infection inside (day 0: "
                                                   "%(start)s)") % {"n": days, "start": _fmt(start, tz)}, due))
    if screening:
        day = _day(start, tz) + dt.timedelta(days=screening_day)
        screen = clock.last_screening_at
        if screen is None or _day(screen, tz) < day:
            blockers.append(Blocker("screening", _("everyone inside screened negative on day %(n)d (%(day)s or "
                                                   "later; last complete: %(last)s)")
                                    % {"n": screening_day, "day": day.isoformat(), "last": _fmt(screen, tz)}))
    return Countdown("downgrade", to_type, due, not blockers, blockers)


def countdown(clock: ZoneClock, zone_rules, *, at: dt.datetime, tz: str = "UTC") -> Countdown:
    """The countdown of a zone under the profile's ``zones`` section (its scheme's rules), in calendar days of ``tz``
    (the services pass the command centre's time zone, settings.TIME_ZONE = Asia/Shanghai)."""
    if scheme_of(clock.type) == "three_zones":
        lifting = zone_rules.lifting
        if lifting is None:  # a three-zones zone under a risk-areas profile: the 9th-edition rule does not apply
            return Countdown("lift", None, None, False, [Blocker("no_rules", _("the policy in force has no 三区 "
                                                                               "lifting rules"))])
        return lifting_three_zones(clock, no_new_infection_days=lifting.no_new_infection_days,
                                   last_exposure_days=lifting.last_exposure_days,
                                   screening_days_before_lift=lifting.screening_days_before_lift, at=at, tz=tz)
    down = zone_rules.downgrade
    if down is None:
        return Countdown("downgrade", None, None, False, [Blocker("no_rules", _("the policy in force has no "
                                                                                "risk-area downgrade rules"))])
    return downgrade_risk_areas(clock, high_to_medium_days=down.high_to_medium_days,
                                medium_to_low_days=down.medium_to_low_days,
                                downgraded_high_to_low_days=down.downgraded_high_to_low_days,
                                screening_day=down.screening_day, at=at, tz=tz)


# --- upgrade -------------------------------------------------------------------------------------------------------


def upgrade_for_positive(zone_types: Iterable[str]) -> str | None:
    """A positive living in an approved control zone (管控区 / medium risk) and in no lockdown / high-risk zone: the
    type its unit is upgraded to (policy_rules.md §2.2: "A positive found inside → immediately converted to 封控区")."""
    types = set(zone_types)
    if types & {"lockdown", "high_risk"}:
        return None
    if "control" in types:
        return "lockdown"
    if "medium_risk" in types:
        return "high_risk"
    return None


def step(zone_type: str, direction: int) -> str | None:
    """The type one level more (direction -1) or less (+1) severe, None beyond the scheme."""
    scheme = SCHEME_TYPES[scheme_of(zone_type)]
    i = SEVERITY[zone_type] + direction
    return scheme[i] if 0 <= i < len(scheme) else None
