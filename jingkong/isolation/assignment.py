"""Room assignment of arrivals (pure: no database). The facilities service feeds it rows and writes its answer
set-based (jingkong.isolation.facilities.assign).

Rules, in order of precedence:

1. **Cases only to designated hospitals**, and contacts never to one: the others are left unassigned with a reason.
2. **Families together**: arrivals of one household form a group and get one family room with enough beds (the
   smallest that fits). Without one they get neighbouring rooms on one floor (``split``), never scattered floors.
3. **Accessible rooms** for people with limited mobility (a family with such a member: an accessible room if it has
   the beds, else a family room, flagged). Nobody else takes an accessible room while other rooms are free.
4. **No mixing of risk tiers on a floor** when forbidden (by the facility or the profile): a floor holding close
   contacts takes no secondary contact and vice versa (a family's tier is its most severe member's). Floors already
   holding a tier are filled first, then empty floors, lowest first.
5. Single people take single rooms; family rooms are used for one person only when no single room is left.

Cost: groups are placed in O(groups × floors) with free rooms kept per (floor, kind) in stacks; 5,000 arrivals into a
6,000-room site take well under a second (benchmarks/bench_assignment.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

SINGLE, FAMILY, ACCESSIBLE = "single", "family", "accessible"
TIER_ORDER = {"case": 0, "close": 1, "secondary": 2, "carer": 3, "other": 4}
ANY = "*"

# Reasons a person is left unassigned (codes; pages translate them).
CASE_NEEDS_HOSPITAL = "case_needs_hospital"
CONTACT_NOT_TO_HOSPITAL = "contact_not_to_hospital"
NO_ROOM = "no_room"
NO_ACCESSIBLE_ROOM = "no_accessible_room"
NO_FLOOR_FOR_TIER = "no_floor_for_tier"


@dataclass(frozen=True)
class Arrival:
    person_id: int
    tier: str
    household_id: int | None = None
    needs_accessible: bool = False


@dataclass(frozen=True)
class FreeRoom:
    room_id: int
    floor: int
    kind: str
    beds: int
    number: str = ""


@dataclass
class Result:
    rooms: dict[int, int] = field(default_factory=dict)  # person_id -> room_id
    unassigned: dict[int, str] = field(default_factory=dict)  # person_id -> reason
    flags: dict[int, str] = field(default_factory=dict)  # person_id -> "split" / "family_not_accessible" / ...
    floor_tiers: dict[int, str] = field(default_factory=dict)  # the tier of each floor afterwards

    @property
    def room_ids(self) -> set[int]:
        return set(self.rooms.values())


def _group(arrivals: Iterable[Arrival]) -> list[list[Arrival]]:
    families: dict[int, list[Arrival]] = defaultdict(list)
    groups: list[list[Arrival]] = []
    for a in arrivals:
        if a.household_id is None:
            groups.append([a])
        else:
            families[a.household_id].append(a)
    groups.extend(families.values())
    return groups


def _tier_of(group: Sequence[Arrival]) -> str:
    return min((a.tier for a in group), key=lambda t: TIER_ORDER.get(t, 9))


class _Floors:
    """Free rooms per (floor, kind), with each floor's tier."""

    def __init__(self, rooms: Iterable[FreeRoom], floor_tiers: dict[int, str], mixing_forbidden: bool):
        self.mixing_forbidden = mixing_forbidden
        self.free: dict[tuple[int, str], list[FreeRoom]] = defaultdict(list)
        floors = set()
        for r in sorted(rooms, key=lambda r: (r.floor, r.number, r.room_id), reverse=True):
            self.free[(r.floor, r.kind)].append(r)  # reversed: pop() gives the lowest number first
            floors.add(r.floor)
        self.floors = sorted(floors | set(floor_tiers))
        self.tiers: dict[int, str] = dict(floor_tiers)

    def candidates(self, tier: str) -> list[int]:
        """Floors a group of ``tier`` may use: its own floors first, then empty ones (lowest first)."""
        if not self.mixing_forbidden:
            return self.floors
        own = [f for f in self.floors if self.tiers.get(f) == tier]
        empty = [f for f in self.floors if f not in self.tiers]
        return own + empty

    def take(self, floor: int, kind: str, beds: int = 1) -> FreeRoom | None:
        stack = self.free.get((floor, kind))
        if not stack:
            return None
        if beds <= 1:
            return stack.pop()
        best = None
        for i in range(len(stack) - 1, -1, -1):  # the smallest room that fits, lowest number first
            r = stack[i]
            if r.beds >= beds and (best is None or r.beds < stack[best].beds):
                best = i
                if r.beds == beds:
                    break
        return stack.pop(best) if best is not None else None

    def count(self, floor: int, kind: str) -> int:
        return len(self.free.get((floor, kind), ()))

    def claim(self, floor: int, tier: str) -> None:
        if self.mixing_forbidden:
            self.tiers.setdefault(floor, tier)


def assign(arrivals: Sequence[Arrival], rooms: Sequence[FreeRoom], *, hospital: bool,
           mixing_forbidden: bool, floor_tiers: dict[int, str] | None = None) -> Result:
    """Assign ``arrivals`` to the free ``rooms`` of one facility.

    ``floor_tiers``: the tier already living on each floor (from the open stays); ``hospital``: the facility is a
    designated hospital.
    """
    result = Result()
    floors = _Floors(rooms, floor_tiers or {}, mixing_forbidden)
    eligible = []
    for a in arrivals:
        if hospital and a.tier != "case":
            result.unassigned[a.person_id] = CONTACT_NOT_TO_HOSPITAL
        elif not hospital and a.tier == "case":
            result.unassigned[a.person_id] = CASE_NEEDS_HOSPITAL
        else:
            eligible.append(a)
    groups = _group(eligible)
    # Hardest first: accessible needs, then large families, then singles; within each, by tier.
    groups.sort(key=lambda g: (not any(a.needs_accessible for a in g), -len(g), TIER_ORDER.get(_tier_of(g), 9),
                               min(a.person_id for a in g)))
    for group in groups:
        tier = _tier_of(group) if mixing_forbidden else ANY
        if len(group) == 1:
            _place_single(group[0], tier, floors, result)
        else:
            _place_family(group, tier, floors, result)
    result.floor_tiers = dict(floors.tiers)
    return result


def _place_single(a: Arrival, tier: str, floors: _Floors, result: Result) -> None:
    kinds = (ACCESSIBLE,) if a.needs_accessible else (SINGLE, FAMILY)
    for kind in kinds:
        for floor in floors.candidates(tier):
            room = floors.take(floor, kind)
            if room is not None:
                floors.claim(floor, tier)
                result.rooms[a.person_id] = room.room_id
                return
    if a.needs_accessible:
        result.unassigned[a.person_id] = NO_ACCESSIBLE_ROOM
    else:
        result.unassigned[a.person_id] = NO_FLOOR_FOR_TIER if floors.mixing_forbidden and _any_free(floors) else NO_ROOM


def _any_free(floors: _Floors) -> bool:
    return any(stack for (floor, kind), stack in floors.free.items() if kind != ACCESSIBLE)


def _place_family(group: list[Arrival], tier: str, floors: _Floors, result: Result) -> None:
    size = len(group)
    accessible = any(a.needs_accessible for a in group)
    candidates = floors.candidates(tier)
    kinds = (ACCESSIBLE, FAMILY) if accessible else (FAMILY,)
    for kind in kinds:
        for floor in candidates:
            room = floors.take(floor, kind, beds=size)
            if room is not None:
                floors.claim(floor, tier)
                for a in group:
                    result.rooms[a.person_id] = room.room_id
                    if accessible and kind != ACCESSIBLE:
                        result.flags[a.person_id] = "family_not_accessible"
                return
    # No room big enough: neighbouring rooms on one floor (accessible ones for those who need them).
    for floor in candidates:
        needs = sum(1 for a in group if a.needs_accessible)
        others = size - needs
        if floors.count(floor, ACCESSIBLE) < needs:
            continue
        if floors.count(floor, SINGLE) + floors.count(floor, FAMILY) < others:
            continue
        floors.claim(floor, tier)
        for a in sorted(group, key=lambda a: not a.needs_accessible):
            kind_order = (ACCESSIBLE,) if a.needs_accessible else (SINGLE, FAMILY)
            for kind in kind_order:
                room = floors.take(floor, kind)
                if room is not None:
                    result.rooms[a.person_id] = room.room_id
                    result.flags[a.person_id] = "split"
                    break
        return
    for a in group:
        result.unassigned[a.person_id] = NO_ACCESSIBLE_ROOM if a.needs_accessible else NO_ROOM


def first_fit(arrivals: Sequence[Arrival], rooms: Sequence[FreeRoom]) -> dict[int, int]:
    """The naive baseline of the benchmark: each person, in turn, takes the first free room of the list that suits
    them (accessible if needed), scanning from the start every time; no families, no floors."""
    taken = [False] * len(rooms)
    out: dict[int, int] = {}
    for a in arrivals:
        for i, r in enumerate(rooms):
            if taken[i]:
                continue
            if a.needs_accessible and r.kind != ACCESSIBLE:
                continue
            taken[i] = True
            out[a.person_id] = r.room_id
            break
    return out
