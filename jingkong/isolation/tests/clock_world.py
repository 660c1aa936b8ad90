"""A small hand-timed world for the five-stage clock tests (times relative to T0 = 2022-01-05 08:00 Shanghai)."""

from __future__ import annotations

import datetime as dt
import itertools

T0 = dt.datetime(2022, 1, 5, 0, 0, tzinfo=dt.UTC)
NOW = T0 + dt.timedelta(hours=4)
DAY = dt.date(2022, 1, 5)
_serial = itertools.count(1)


def h(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def activate(code: str = "cn-9th-2022"):
    from jingkong.isolation.tests.transfer_world import activate as act

    act(code)


class ClockWorld:
    def __init__(self, regions):
        self.regions = regions
        self.facility = None

    def person(self, side="a"):
        from jingkong.people.models import Person

        n = next(_serial)
        return Person.objects.create(id_hash=f"clock-{n:058d}", id_masked="3302**********0000", name=f"时钟{n}",
                                     sex="F", birth_date=dt.date(1980, 1, 1), grid=self.regions[f"grid_{side}1"],
                                     created_at=T0, updated_at=T0)

    def case(self, *, detected=None, confirmed, investigated=None, isolated=None, tracer=None, side="a"):
        from jingkong.tracing.models import Case

        p = self.person(side)
        return Case.objects.create(ref=f"C{next(_serial)}", person=p, first_positive_at=detected, created_at=confirmed,
                                   updated_at=confirmed, investigated_at=investigated, isolated_at=isolated,
                                   tracer=tracer, region_code=p.grid.code)

    def contact(self, *, tier="close", identified, located=None, in_quarantine=None, status="identified", side="a",
                cases=(), queue=None):
        from jingkong.tracing.models import Contact, ContactReason

        p = self.person(side)
        k = Contact.objects.create(person=p, tier=tier, status=status, region_code=p.grid.code,
                                   queue_region_code=queue or self.regions[f"street_{side}"].code,
                                   first_identified_at=identified, located_at=located, in_quarantine_at=in_quarantine,
                                   created_at=identified, updated_at=identified)
        for case, at in cases:
            ContactReason.objects.create(contact=k, case=case, tier=tier, kind="household", key=f"k{case.pk}",
                                         created_at=at)
        return k

    def hotel(self):
        from jingkong.isolation.models import Facility, Room

        if self.facility is None:
            self.facility = Facility.objects.create(code=f"HOTEL-{next(_serial)}", name="隔离酒店", kind="quarantine_hotel",
                                                    region_code=self.regions["street_a"].code, lon=121.8, lat=29.9)
            self.room = Room.objects.create(facility=self.facility, number="101", floor=1, kind="single",
                                            state_since=T0)
        return self.facility

    def group(self, person, *, at, role="close", destination="central", contact=None, case=None):
        from jingkong.isolation.models import BatchMember, TransferBatch

        b = TransferBatch.objects.create(ref=f"TB{next(_serial)}", region_code=person.grid.code, pickup_lon=121.8,
                                         pickup_lat=29.9, destination_type=destination, created_at=at, updated_at=at,
                                         facility=self.hotel() if destination != "home" else None)
        BatchMember.objects.create(batch=b, person=person, role=role, region_code=person.grid.code, contact=contact,
                                   case=case)
        return b

    def event(self, kind, person, *, at):
        from jingkong.core.models import DomainEvent

        DomainEvent.objects.create(type=f"isolation.{kind}", subject_type="people.person", subject_id=str(person.pk),
                                   region_code=person.grid.code, occurred_at=at, recorded_at=at, payload={})

    def stay(self, person, *, at, tier="close"):
        from jingkong.isolation.models import RoomStay

        self.hotel()
        RoomStay.objects.create(room=self.room, person=person, tier=tier, region_code=person.grid.code,
                                reserved_at=at, checked_in_at=at)

    def home_order(self, person, *, at):
        from jingkong.isolation.models import IsolationOrder

        IsolationOrder.objects.create(person=person, tier="secondary", mode="home_quarantine",
                                      region_code=person.grid.code, counted_from=DAY, starts_on=DAY,
                                      ends_on=DAY + dt.timedelta(days=7), created_at=at, updated_at=at)


def build(regions, tracer_x=None, tracer_y=None) -> dict:
    """C1 full path to hospital; C2 straight to hospital, investigation overdue; K1 close contact of C1 and C2 to a
    hotel; K2 secondary at home; K3 close, not located (previous day, overdue); K4 close, on the way; K5 closed;
    K6 in street B."""
    w = ClockWorld(regions)
    c1 = w.case(detected=h(-2), confirmed=h(0), investigated=h(3), tracer=tracer_x)
    w.group(c1.person, at=h(1), role="case", destination="hospital", case=c1)
    w.event("transfer_started", c1.person, at=h(1.5))
    w.event("arrived", c1.person, at=h(2))
    w.stay(c1.person, at=h(2.5), tier="case")
    c2 = w.case(confirmed=h(-1), isolated=h(0), tracer=tracer_y)
    k1 = w.contact(identified=h(0.5), located=h(1), in_quarantine=h(3), status="in_quarantine",
                   cases=[(c1, h(0.5)), (c2, h(0.2))])
    w.group(k1.person, at=h(1.5), contact=k1)
    w.event("transfer_started", k1.person, at=h(2))
    w.event("arrived", k1.person, at=h(3))
    w.stay(k1.person, at=h(3.25))
    k2 = w.contact(tier="secondary", identified=h(0), located=h(2), status="handed_over")
    w.group(k2.person, at=h(2.5), role="secondary", destination="home", contact=k2)
    w.home_order(k2.person, at=h(2.5))
    k3 = w.contact(identified=h(-10))
    k4 = w.contact(identified=h(0), located=h(1), status="handed_over")
    w.group(k4.person, at=h(1.5), contact=k4)
    w.event("transfer_started", k4.person, at=h(2))
    k5 = w.contact(identified=h(0), status="closed")
    k6 = w.contact(identified=h(0), located=h(3), side="b")
    return {"c1": c1, "c2": c2, "k1": k1, "k2": k2, "k3": k3, "k4": k4, "k5": k5, "k6": k6, "world": w}
