"""A small hand-built world for the situation families' tests (cases, contacts, zones), with the figures each record
must give declared next to it, and readers of the stored figures.

Times: D = 2022-01-05 (Asia/Shanghai); NOW = D 12:00 local (04:00 UTC). Regions: the ``regions`` fixture
(district 330206 → streets a/b → one community each → grids a1, a2, b1, b2).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter, defaultdict

UTC = dt.UTC
D = dt.date(2022, 1, 5)
NOW = dt.datetime(2022, 1, 5, 4, 0, tzinfo=UTC)
_serial = itertools.count(1)


def at(day_offset: int, hour_utc: float) -> dt.datetime:
    """UTC instant on D + ``day_offset`` at ``hour_utc`` (local = UTC + 8 h)."""
    return dt.datetime(2022, 1, 5, tzinfo=UTC) + dt.timedelta(days=day_offset, hours=hour_utc)


# --- reading figures ----------------------------------------------------------------------------------------------------


def figures(family: str) -> dict[tuple, float]:
    from jingkong.dashboard.models import Figure

    return {(f.metric, f.key, f.region_code, f.day): f.value for f in Figure.objects.filter(family=family)}


def total(figs: dict[tuple, float], metric: str, prefix: str = "", *, key: str | None = None, day=None) -> float:
    """A region's additive figure as the screen reads it: the sum over the codes starting with ``prefix``."""
    return sum(v for (m, k, code, d), v in figs.items()
               if m == metric and code.startswith(prefix) and (key is None or k == key) and (day is None or d == day))


def level(figs: dict[tuple, float], metric: str, code: str, key: str):
    """A non-additive figure, read at the region itself."""
    return figs.get((metric, key, code, None))


def backdate(family: str, seconds: float) -> None:
    """Pretend the family was refreshed ``seconds`` ago (``min_interval`` counts wall time since the refresh)."""
    from jingkong.dashboard.models import RefreshState

    state = RefreshState.objects.get(family=family)
    state.refreshed_at = state.refreshed_at - dt.timedelta(seconds=seconds)
    state.save(update_fields=["refreshed_at"])


# --- records ------------------------------------------------------------------------------------------------------------


def person(grid):
    from jingkong.people.models import Person

    n = next(_serial)
    return Person.objects.create(id_hash=f"dash-sit-{n:054d}", id_masked=f"330206********{n % 10000:04d}",
                                 name=f"人{n}", sex="M", birth_date=dt.date(1985, 3, 1), grid=grid,
                                 created_at=at(-30, 0), updated_at=at(-30, 0))


def case(grid, *, created, p=None, classification="asymptomatic", found_by="other", source="local", onset=None,
         first_positive=None):
    from jingkong.tracing.models import Case

    p = p or person(grid)
    return Case.objects.create(ref=f"SIT-{next(_serial):05d}", person=p, classification=classification,
                               found_by=found_by, source_category=source, onset_date=onset,
                               first_positive_at=first_positive, region_code=grid.code, created_at=created,
                               updated_at=created)


def contact(grid, *, p=None, tier="close", identified, located=None, in_quarantine=None, closed=None,
            status="identified"):
    from jingkong.tracing.models import Contact

    p = p or person(grid)
    return Contact.objects.create(person=p, tier=tier, status=status, region_code=grid.code,
                                  queue_region_code=grid.code[:9], first_identified_at=identified, located_at=located,
                                  in_quarantine_at=in_quarantine, closed_at=closed, created_at=identified,
                                  updated_at=identified)


def order(p, *, created, status="active", released=None, tier="close", mode="central"):
    from jingkong.isolation.models import IsolationOrder

    day = created.date()
    return IsolationOrder.objects.create(person=p, tier=tier, mode=mode, status=status, region_code=p.grid.code,
                                         counted_from=day, starts_on=day, ends_on=day + dt.timedelta(days=7),
                                         released_at=released, created_at=created, updated_at=created)


def member(p, *, created, picked_up=None, arrived=None, role="close", removed=None):
    from jingkong.isolation.models import BatchMember, TransferBatch

    b = TransferBatch.objects.create(ref=f"TB-S-{next(_serial):05d}", region_code=p.grid.code, pickup_lon=121.8,
                                     pickup_lat=29.9, destination_type="central", created_at=created,
                                     updated_at=created)
    return BatchMember.objects.create(batch=b, person=p, role=role, region_code=p.grid.code, picked_up_at=picked_up,
                                      arrived_at=arrived, removed_at=removed)


def zone(type_, region, *, status="approved", approved=None, lifted=None, residents=()):
    """A zone whose single unit is ``region`` (grid, community or street); ``residents`` written as the zones
    services would (approved zones only)."""
    from jingkong.zones.models import Zone, ZoneResident, ZoneUnit

    n = next(_serial)
    z = Zone.objects.create(ref=f"ZN-S-{n:05d}", name=f"区{n}", type=type_, status=status, region_code=region.code,
                            proposed_at=(approved or at(-10, 0)) - dt.timedelta(hours=1), approved_at=approved,
                            lifted_at=lifted, type_since=approved, updated_at=lifted or approved or at(-10, 0))
    ZoneUnit.objects.create(zone=z, kind=region.level, region=region)
    ZoneResident.objects.bulk_create([ZoneResident(zone=z, person=p, zone_type=type_, region_code=p.grid.code)
                                      for p in residents])
    return z


def building(grid):
    from jingkong.geo.models import Building

    return Building.objects.create(code=f"B-S-{next(_serial):05d}", grid=grid, lon=121.81, lat=29.91)


def household(b, unit: str = ""):
    from jingkong.people.models import Household

    return Household.objects.create(code=f"H-S-{next(_serial):05d}", building=b, grid=b.grid, unit=unit)


def resident(b, *, unit: str = "", hh=None):
    """A person living in building ``b`` (``unit`` on the person, or only on their household)."""
    p = person(b.grid)
    p.building, p.unit, p.household = b, unit, hh
    p.save(update_fields=["building", "unit", "household"])
    return p


def unit_zone(type_, *, approved, household=None, building=None, entrance=""):
    """An approved zone of one household, building or entrance (building + unit) unit, without resident rows."""
    from jingkong.zones.models import Zone, ZoneUnit

    n = next(_serial)
    grid = (household or building).grid
    z = Zone.objects.create(ref=f"ZN-S-{n:05d}", name=f"区{n}", type=type_, status="approved", region_code=grid.code,
                            proposed_at=approved - dt.timedelta(hours=1), approved_at=approved, type_since=approved,
                            updated_at=approved)
    kind = "household" if household else ("entrance" if entrance else "building")
    ZoneUnit.objects.create(zone=z, kind=kind, household=household, building=building, entrance=entrance)
    return z


def regrade(z, to_type: str, *, when: dt.datetime, action: str = "upgrade"):
    from jingkong.zones.models import ZoneChange, ZoneResident

    ZoneChange.objects.create(zone=z, at=when, action=action, from_type=z.type, to_type=to_type)
    z.type, z.type_since = to_type, when
    z.save(update_fields=["type", "type_since"])
    ZoneResident.objects.filter(zone=z).update(zone_type=to_type)


# --- the world ----------------------------------------------------------------------------------------------------------


def cases_world(regions) -> dict:
    """Cases with the classification each must get (``expected``: case id → (key of cases.new, report day, onset day,
    local|imported)). See each comment for the rule being exercised."""
    g = {k: regions[f"grid_{k}"] for k in ("a1", "a2", "b1", "b2")}
    expected: dict[int, tuple[str, dt.date, dt.date, str]] = {}

    def add(c, found, report_day, onset_day, origin="local"):
        expected[c.pk] = (f"{c.classification}:{found}", report_day, onset_day, origin)

    # a1 — found in quarantine, three ways
    c = case(g["a1"], created=at(0, 1), found_by="quarantine_test", classification="confirmed", onset=D)
    add(c, "quarantine", D, D)
    p = person(g["a1"])  # an order (central) before the case, converted when the positive came
    order(p, created=at(-3, 0), status="converted")
    c = case(g["a1"], p=p, created=at(0, 2), first_positive=at(-1, 20))  # sampled 01-05 04:00 local
    add(c, "quarantine", D, D)
    p = person(g["a1"])  # a contact in quarantine, closed when it became a case
    contact(g["a1"], p=p, identified=at(-2, 0), in_quarantine=at(-2, 5), closed=at(0, 3), status="closed")
    c = case(g["a1"], p=p, created=at(0, 3), first_positive=at(-1, 10))  # sampled 01-04 18:00 local
    add(c, "quarantine", D, D - dt.timedelta(days=1))
    # a2 — community: an order released before the case; a contact closed (released) before; a case's own order
    p = person(g["a2"])
    order(p, created=at(-12, 0), status="released", released=at(-2, 0))
    contact(g["a2"], p=p, identified=at(-12, 0), in_quarantine=at(-12, 1), closed=at(-2, 0), status="closed")
    c = case(g["a2"], p=p, created=at(-1, 17), source="imported")  # 01-05 01:00 local: report day D
    add(c, "community", D, D, "imported")
    p = person(g["a2"])
    c = case(g["a2"], p=p, created=at(-1, 2), classification="confirmed", onset=D - dt.timedelta(days=3))
    order(p, created=at(-1, 3), tier="case", mode="hospital")
    add(c, "community", D - dt.timedelta(days=1), D - dt.timedelta(days=3))
    # b1 — a control zone approved D-3, lifted D-1 12:00 UTC (residents gone): found in control before the lifting,
    # in the community after it
    z1 = zone("control", regions["grid_b1"], status="lifted", approved=at(-3, 0), lifted=at(-1, 12))
    c = case(g["b1"], created=at(-2, 6))
    add(c, "control", D - dt.timedelta(days=2), D - dt.timedelta(days=2))
    c = case(g["b1"], created=at(0, 1), source="unknown")
    add(c, "community", D, D)
    # b2 — a prevention zone over grid b2 upgraded to control at D 00:00 UTC: community before, control after;
    # (a2) a lockdown drawn for a case *after* it was created does not count (approved later)
    b2_people = [person(g["b2"]) for _ in range(3)]
    z2 = zone("prevention", g["b2"], approved=at(-3, 0), residents=b2_people)
    c = case(g["b2"], p=b2_people[0], created=at(-1, 6))
    add(c, "community", D - dt.timedelta(days=1), D - dt.timedelta(days=1))
    regrade(z2, "control", when=at(0, 0))
    c = case(g["b2"], p=b2_people[1], created=at(0, 1), classification="confirmed")
    add(c, "control", D, D)
    p = person(g["a2"])
    c = case(g["a2"], p=p, created=at(0, 1))
    zone("lockdown", regions["grid_a2"], approved=at(0, 2), residents=[p])
    add(c, "community", D, D)
    return {"expected": expected, "z1": z1, "z2": z2}


def contacts_world(regions) -> dict:
    """Contacts with the (metric, grid, tier, day) each must count in; companions never count."""
    g = {k: regions[f"grid_{k}"] for k in ("a1", "a2", "b1", "b2")}
    expected: Counter = Counter()

    def exp(metric, grid, tier, day):
        expected[(metric, tier, grid.code, day)] += 1

    # k1 close in a1: identified 01-04 20:00 UTC (01-05 local), located, picked up, arrived, in quarantine
    k1 = contact(g["a1"], identified=at(-1, 20), located=at(0, 1), in_quarantine=at(0, 3.5), status="in_quarantine")
    member(k1.person, created=at(0, 1.5), picked_up=at(0, 2), arrived=at(0, 3))
    for metric in ("identified", "located", "transferred", "isolated"):
        exp(f"contacts.{metric}", g["a1"], "close", D)
    # k2 secondary in a2: all on D-1, isolated by a home-quarantine order
    k2 = contact(g["a2"], tier="secondary", identified=at(-1, 2), located=at(-1, 5), status="handed_over")
    order(k2.person, created=at(-1, 6), tier="secondary", mode="home_quarantine")
    for metric in ("identified", "located", "isolated"):
        exp(f"contacts.{metric}", g["a2"], "secondary", D - dt.timedelta(days=1))
    # k3 companion: not counted
    contact(g["a2"], tier="companion", identified=at(0, 1), located=at(0, 2))
    # k4 close in b1: an order of an earlier episode (before it was identified) does not make it isolated
    k4 = contact(g["b1"], identified=at(0, 0))
    order(k4.person, created=at(-20, 0), status="released", released=at(-10, 0))
    exp("contacts.identified", g["b1"], "close", D)
    # k5 close in b1: picked up twice (first on D-1, local 18:00) — counted once, on the first day; checked into a
    # room on D (the arrival on D-1 23:30 local is earlier: isolated on D-1)
    k5 = contact(g["b1"], identified=at(-1, 1), located=at(-1, 2))
    member(k5.person, created=at(-1, 9), picked_up=at(-1, 10), arrived=at(-1, 15.5), removed=None)
    member(k5.person, created=at(0, 0), picked_up=at(0, 1))
    for metric in ("identified", "located", "transferred", "isolated"):
        exp(f"contacts.{metric}", g["b1"], "close", D - dt.timedelta(days=1))
    # k6 secondary in b2: a case's own room stay does not isolate the contact record; nothing else
    k6 = contact(g["b2"], tier="secondary", identified=at(0, 2))
    _stay(k6.person, checked_in=at(0, 3), tier="case")
    exp("contacts.identified", g["b2"], "secondary", D)
    return {"expected": expected}


def _stay(p, *, checked_in, tier):
    from jingkong.isolation.models import Facility, Room, RoomStay

    f = Facility.objects.create(code=f"F-S-{next(_serial)}", name="定点医院", kind="designated_hospital",
                                region_code=p.grid.code[:9], lon=121.8, lat=29.9)
    room = Room.objects.create(facility=f, number="1", floor=1, kind="single", state_since=checked_in)
    return RoomStay.objects.create(room=room, person=p, tier=tier, region_code=p.grid.code, reserved_at=checked_in,
                                   checked_in_at=checked_in)


def zones_world(regions) -> dict:
    """Zones in force and not; expected counts at each zone's region and residents at each resident's grid."""
    g = {k: regions[f"grid_{k}"] for k in ("a1", "a2", "b1", "b2")}
    count: Counter = Counter()
    population: dict = defaultdict(set)
    a1 = [person(g["a1"]) for _ in range(3)]
    zone("lockdown", g["a1"], approved=at(-1, 0), residents=a1[:2])
    count[("lockdown", g["a1"].code)] += 1
    population[("lockdown", g["a1"].code)] |= {p.pk for p in a1[:2]}
    # 9th edition: a high-risk area counts as a lockdown, a medium-risk area as a control zone
    high = person(g["a2"])
    zone("high_risk", g["a2"], approved=at(-1, 0), residents=[high])
    count[("lockdown", g["a2"].code)] += 1
    population[("lockdown", g["a2"].code)] |= {high.pk}
    # two overlapping control zones over community b: a resident of both counts once
    b = [person(g["b1"]), person(g["b2"]), person(g["b2"])]
    zone("control", regions["community_b"], approved=at(-2, 0), residents=b)
    zone("medium_risk", regions["community_b"], approved=at(-2, 0), residents=b[1:])
    count[("control", regions["community_b"].code)] += 2
    population[("control", g["b1"].code)] |= {b[0].pk}
    population[("control", g["b2"].code)] |= {b[1].pk, b[2].pk}
    # prevention over street A (its residents: a1's third person)
    zone("prevention", regions["street_a"], approved=at(-2, 0), residents=[a1[2]])
    count[("prevention", regions["street_a"].code)] += 1
    population[("prevention", g["a1"].code)] |= {a1[2].pk}
    # not in force: proposed, rejected, lifted
    zone("lockdown", g["b1"], status="proposed")
    zone("control", g["b1"], status="rejected")
    zone("control", g["b1"], status="lifted", approved=at(-5, 0), lifted=at(-1, 0))
    return {"count": count, "population": {k: len(v) for k, v in population.items()}}
