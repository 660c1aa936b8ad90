"""Room assignment rules (pure) and the assignment service (set-based writes, locking, events)."""

from __future__ import annotations

import random

import pytest

from jingkong.isolation import assignment as a
from jingkong.isolation.tests.facilities_helpers import fresh_policy_cache  # noqa: F401 - autouse fixture


def rooms(floors=(1, 2), singles=4, family=(), accessible=()):
    out, n = [], 0
    for f in floors:
        for i in range(singles):
            n += 1
            out.append(a.FreeRoom(room_id=n, floor=f, kind="single", beds=1, number=f"{f}{i:02d}"))
    for f, beds in family:
        n += 1
        out.append(a.FreeRoom(room_id=n, floor=f, kind="family", beds=beds, number=f"{f}F{n}"))
    for f in accessible:
        n += 1
        out.append(a.FreeRoom(room_id=n, floor=f, kind="accessible", beds=1, number=f"{f}A{n}"))
    return out


def floor_of(rs, room_id):
    return next(r.floor for r in rs if r.room_id == room_id)


def test_a_family_shares_one_family_room_with_enough_beds_the_smallest_that_fits():
    rs = rooms(family=[(1, 4), (1, 3)])
    fam = [a.Arrival(person_id=i, tier="close", household_id=7) for i in (1, 2, 3)]
    result = a.assign(fam, rs, hospital=False, mixing_forbidden=True)
    assert len({result.rooms[i] for i in (1, 2, 3)}) == 1
    assert next(r for r in rs if r.room_id == result.rooms[1]).beds == 3


def test_a_family_without_a_big_enough_room_stays_on_one_floor_and_is_flagged():
    rs = rooms(floors=(1, 2), singles=2)
    fam = [a.Arrival(person_id=i, tier="close", household_id=7) for i in (1, 2)]
    result = a.assign(fam, rs, hospital=False, mixing_forbidden=True)
    assert len({floor_of(rs, result.rooms[i]) for i in (1, 2)}) == 1
    assert result.flags == {1: "split", 2: "split"}


def test_accessible_rooms_go_to_people_with_limited_mobility_and_nobody_else():
    rs = rooms(floors=(1,), singles=1, accessible=(1,))
    people = [a.Arrival(person_id=1, tier="close"), a.Arrival(person_id=2, tier="close", needs_accessible=True),
              a.Arrival(person_id=3, tier="close")]
    result = a.assign(people, rs, hospital=False, mixing_forbidden=True)
    assert next(r for r in rs if r.room_id == result.rooms[2]).kind == "accessible"
    assert result.unassigned == {3: a.NO_ROOM}
    none = a.assign([a.Arrival(person_id=9, tier="close", needs_accessible=True)], rooms(floors=(1,)), hospital=False,
                    mixing_forbidden=True)
    assert none.unassigned == {9: a.NO_ACCESSIBLE_ROOM}


def test_tiers_never_share_a_floor_when_mixing_is_forbidden():
    rs = rooms(floors=(1, 2, 3), singles=3)
    people = [a.Arrival(person_id=i, tier="close" if i % 2 else "secondary") for i in range(1, 9)]
    result = a.assign(people, rs, hospital=False, mixing_forbidden=True, floor_tiers={3: "secondary"})
    tiers_by_floor: dict[int, set] = {}
    for p in people:
        if p.person_id in result.rooms:
            tiers_by_floor.setdefault(floor_of(rs, result.rooms[p.person_id]), set()).add(p.tier)
    assert all(len(t) == 1 for t in tiers_by_floor.values())
    assert tiers_by_floor.get(3, {"secondary"}) == {"secondary"}  # floor 3 already held secondary contacts
    # 4 close contacts fit floors 1-2 (6 rooms) but only one floor may be theirs when the other goes to secondary.
    assert sum(1 for p in people if p.person_id in result.rooms) == 7
    assert list(result.unassigned.values()) == [a.NO_FLOOR_FOR_TIER]


def test_mixing_allowed_fills_floors_regardless_of_tier():
    rs = rooms(floors=(1,), singles=4)
    people = [a.Arrival(person_id=i, tier="close" if i % 2 else "secondary") for i in range(1, 5)]
    assert len(a.assign(people, rs, hospital=False, mixing_forbidden=False).rooms) == 4


def test_cases_only_to_designated_hospitals_and_contacts_never_there():
    rs = rooms(floors=(1,), singles=4)
    people = [a.Arrival(person_id=1, tier="case"), a.Arrival(person_id=2, tier="close")]
    hotel = a.assign(people, rs, hospital=False, mixing_forbidden=True)
    hospital = a.assign(people, rs, hospital=True, mixing_forbidden=True)
    assert hotel.unassigned == {1: a.CASE_NEEDS_HOSPITAL} and 2 in hotel.rooms
    assert hospital.unassigned == {2: a.CONTACT_NOT_TO_HOSPITAL} and 1 in hospital.rooms


@pytest.mark.parametrize("seed", range(8))
def test_random_arrivals_never_overfill_a_room_nor_break_a_rule(seed):
    rng = random.Random(seed)
    rs = rooms(floors=tuple(range(1, 6)), singles=rng.randint(2, 12),
               family=[(rng.randint(1, 5), rng.randint(2, 5)) for _ in range(rng.randint(0, 8))],
               accessible=[rng.randint(1, 5) for _ in range(rng.randint(0, 4))])
    people = []
    for i in range(rng.randint(1, 80)):
        hh = rng.choice([None, None, rng.randint(1, 10)])
        people.append(a.Arrival(person_id=i, tier=rng.choice(["close", "secondary"]), household_id=hh,
                                needs_accessible=rng.random() < 0.1))
    result = a.assign(people, rs, hospital=False, mixing_forbidden=True)
    by_room: dict[int, list] = {}
    for p in people:
        assert (p.person_id in result.rooms) != (p.person_id in result.unassigned)
        if p.person_id in result.rooms:
            by_room.setdefault(result.rooms[p.person_id], []).append(p)
    kinds = {r.room_id: r for r in rs}
    floor_tiers: dict[int, set] = {}
    households: dict[int, list] = {}
    for p in people:
        if p.household_id is not None:
            households.setdefault(p.household_id, []).append(p)
    for room_id, occupants in by_room.items():
        room = kinds[room_id]
        assert len(occupants) <= room.beds
        assert len({o.household_id for o in occupants}) == 1  # only a household shares a room
        if len(occupants) == 1 and occupants[0].household_id is None:
            assert room.kind != "accessible" or occupants[0].needs_accessible
        for o in occupants:
            if o.needs_accessible and room.kind != "accessible":
                assert result.flags.get(o.person_id) == "family_not_accessible"
        # A household counts with its most severe member's tier (it stays together, split or not).
        group = households.get(occupants[0].household_id, occupants) if occupants[0].household_id else occupants
        tier = a._tier_of(group)
        floor_tiers.setdefault(room.floor, set()).add(tier)
    for p in people:
        if p.person_id in result.rooms:
            assert p.needs_accessible is False or kinds[result.rooms[p.person_id]].kind in ("accessible", "family")
    assert all(len(t) == 1 for t in floor_tiers.values())


def test_first_fit_baseline_places_people_in_list_order():
    rs = rooms(floors=(1,), singles=2, accessible=(1,))
    out = a.first_fit([a.Arrival(1, "close"), a.Arrival(2, "close", needs_accessible=True), a.Arrival(3, "close")], rs)
    assert out == {1: 1, 2: 3, 3: 2}


# --- the service ------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_assign_service_writes_stays_and_room_states_set_based(regions, commander, django_assert_max_num_queries):
    from jingkong.core.models import DomainEvent
    from jingkong.isolation import facilities
    from jingkong.isolation.models import Room, RoomStay
    from jingkong.isolation.tests import facilities_helpers as h

    h.activate()
    f = h.facility(regions, floors=(1, 2, 3), per_floor=20, family=2)
    hh = h.household(regions)
    people = [h.person(regions, household=hh) for _ in range(3)] + [h.person(regions) for _ in range(40)]
    for p in people:
        h.contact(p)
    with django_assert_max_num_queries(40):
        report = facilities.assign(facility=f, person_ids=[p.pk for p in people], actor=commander)
    assert len(report.assigned) == 43 and not report.unassigned
    assert RoomStay.objects.filter(checked_out_at__isnull=True, checked_in_at__isnull=False).count() == 43
    assert Room.objects.filter(facility=f, state="occupied").count() == 41  # the family shares one room
    family_rooms = {report.assigned[p.pk] for p in people[:3]}
    assert len(family_rooms) == 1 and Room.objects.get(pk=family_rooms.pop()).kind == "family"
    event = DomainEvent.objects.get(type="isolation.rooms_assigned")
    assert sorted(p for p, _room in event.payload["assignments"]) == sorted(p.pk for p in people)
    from jingkong.access.models import AuditLog

    audited = AuditLog.objects.get(action="facility.assign")  # one record per grid, naming its people
    assert sorted(audited.detail["person_ids"]) == sorted(p.pk for p in people)
    again = facilities.assign(facility=f, person_ids=[people[0].pk], actor=commander)
    assert not again.assigned and not again.unassigned  # already in a room here: nothing happens


@pytest.mark.django_db
def test_reservation_then_arrival_checks_in_and_checkout_leaves_the_room_for_cleaning(regions, commander):
    from jingkong.core.exceptions import Conflict
    from jingkong.isolation import facilities
    from jingkong.isolation.models import Room
    from jingkong.isolation.tests import facilities_helpers as h

    h.activate()
    f = h.facility(regions, floors=(1,), per_floor=2)
    p = h.person(regions)
    report = facilities.assign(facility=f, person_ids=[p.pk], actor=commander, check_in=False)
    room = Room.objects.get(pk=report.assigned[p.pk])
    assert room.state == "reserved"
    arrived = facilities.assign(facility=f, person_ids=[p.pk], actor=commander, check_in=True)
    assert arrived.checked_in == [p.pk]
    room.refresh_from_db()
    assert room.state == "occupied"
    with pytest.raises(Conflict):
        facilities.room_state_set(actor=commander, room=room, state="free")
    assert facilities.checkout(actor=commander, person_ids=[p.pk]) == 1
    room.refresh_from_db()
    assert room.state == "cleaning"
    facilities.room_state_set(actor=commander, room=room, state="free")
    room.refresh_from_db()
    assert room.state == "free"
    other = h.facility(regions, floors=(1,), per_floor=1)
    facilities.assign(facility=other, person_ids=[p.pk], actor=commander)
    elsewhere = facilities.assign(facility=f, person_ids=[p.pk], actor=commander)
    assert elsewhere.unassigned == {p.pk: "already_elsewhere"}


def test_room_transitions():
    from jingkong.isolation.facilities import transition_error

    assert transition_error("free", "reserved") is None
    assert transition_error("cleaning", "free") is None
    assert transition_error("occupied", "free") is not None
    assert transition_error("free", "free") is not None
    assert transition_error("free", "bogus") is not None
    assert transition_error("reserved", "free", open_stays=1) is not None
