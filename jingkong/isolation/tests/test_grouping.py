"""快编组: the pure grouping rules, and the service over located contacts and cases."""

from __future__ import annotations

import datetime as dt

import pytest

from jingkong.isolation import grouping as g
from jingkong.isolation.grouping import Candidate

T = dt.datetime(2022, 1, 5, 4, 0, tzinfo=dt.UTC)
DEST_2021 = {"case": "hospital", "close": "central", "secondary": "central"}
DEST_2022 = {"case": "hospital", "close": "central", "secondary": "home"}


def c(pid, role="close", *, hh=None, bld=1, vul=0, age=40, due=None, lon=121.8, lat=29.9):
    return Candidate(person_id=pid, role=role, region_code="330206002001001", household_id=hh, building_id=bld,
                     lon=lon, lat=lat, vulnerable=vul, age=age, due_at=due)


def test_vulnerable_bits_match_the_people_enum():
    from jingkong.people.models import Vulnerable

    assert (g.ELDERLY, g.YOUNG_CHILD, g.PREGNANT, g.CHRONIC, g.LIMITED_MOBILITY) == (
        Vulnerable.ELDERLY, Vulnerable.YOUNG_CHILD, Vulnerable.PREGNANT, Vulnerable.CHRONIC,
        Vulnerable.LIMITED_MOBILITY)


def test_a_buildings_contacts_go_together_and_buildings_apart():
    groups, skipped = g.group([c(1, bld=1), c(2, bld=1, hh=7), c(3, bld=2)], destinations=DEST_2021, max_size=40)
    assert not skipped
    assert sorted(sorted(m.person_id for m in x.members) for x in groups) == [[1, 2], [3]]


def test_tiers_travel_apart_with_their_own_destination():
    groups, _ = g.group([c(1, "case", hh=1), c(2, "close", hh=1), c(3, "secondary", hh=1)],
                        destinations=DEST_2021, max_size=40)
    by_role = {x.role: x for x in groups}
    assert {r: x.destination for r, x in by_role.items()} == {"case": "hospital", "close": "central",
                                                              "secondary": "central"}
    groups, _ = g.group([c(3, "secondary")], destinations=DEST_2022, max_size=40)
    assert groups[0].destination == "home"


def test_priority_cases_then_close_then_secondary_vulnerable_first_within_a_tier():
    groups, _ = g.group([c(1, "secondary", bld=1), c(2, "close", bld=2), c(3, "close", bld=3, vul=g.ELDERLY),
                         c(4, "case", bld=4), c(5, "secondary", bld=5, vul=g.PREGNANT)],
                        destinations=DEST_2021, max_size=40)
    assert [x.members[0].person_id for x in groups] == [4, 3, 2, 5, 1]
    assert [x.priority for x in groups] == [1, 2, 3, 4, 5]


def test_split_keeps_households_whole_and_respects_capacity():
    people = [c(i, hh=i // 3) for i in range(1, 13)]  # households {1,2} {3,4,5} {6,7,8} {9,10,11} {12}
    groups, _ = g.group(people, destinations=DEST_2021, max_size=5)
    assert all(x.size <= 5 for x in groups)
    assert sum(x.size for x in groups) == 12
    for x in groups:
        households = {m.household_id for m in x.members}
        for hh in households:
            assert all(m.household_id != hh for y in groups if y is not x for m in y.members), "household split"


def test_a_household_larger_than_a_vehicle_is_split_and_nobody_is_lost():
    groups, _ = g.group([c(i, hh=1) for i in range(1, 8)], destinations=DEST_2021, max_size=3)
    assert sorted(x.size for x in groups) == [1, 3, 3]


def test_carer_and_accessibility_flags():
    alone, _ = g.group([c(1, vul=g.ELDERLY, age=80)], destinations=DEST_2021, max_size=40)
    assert alone[0].needs_carer and not alone[0].needs_accessible
    with_carer, _ = g.group([c(1, vul=g.ELDERLY | g.LIMITED_MOBILITY, age=80, hh=1), c(2, hh=1, age=50)],
                            destinations=DEST_2021, max_size=40)
    assert not with_carer[0].needs_carer and with_carer[0].needs_accessible
    child_only, _ = g.group([c(1, vul=g.YOUNG_CHILD, age=4, hh=1), c(2, age=9, hh=1)],
                            destinations=DEST_2021, max_size=40)
    assert child_only[0].needs_carer  # a 9-year-old is nobody's carer


def test_due_time_is_the_earliest_of_the_members():
    groups, _ = g.group([c(1, due=T + dt.timedelta(hours=5)), c(2, due=T + dt.timedelta(hours=3)), c(3)],
                        destinations=DEST_2021, max_size=40)
    assert groups[0].due_at == T + dt.timedelta(hours=3)


def test_skips_people_without_address_and_tiers_not_grouped():
    groups, skipped = g.group([c(1, lon=None, lat=None, bld=None), c(2, "secondary"), c(3, "companion")],
                              destinations={**DEST_2021, "secondary": "none"}, max_size=40)
    assert not groups
    assert {(s.person_id, s.reason) for s in skipped} == {(1, "no_address"), (2, "tier_not_grouped"),
                                                          (3, "unknown_role")}
    # someone staying home needs no address to be picked up from
    groups, skipped = g.group([c(4, "secondary", lon=None, lat=None, bld=None)], destinations=DEST_2022, max_size=4)
    assert [x.destination for x in groups] == ["home"] and not skipped


def test_max_size_must_be_positive():
    with pytest.raises(ValueError):
        g.split([c(1)], 0)


def test_age_on():
    assert g.age_on(dt.date(2000, 6, 1), dt.date(2022, 5, 31)) == 21
    assert g.age_on(dt.date(2000, 6, 1), dt.date(2022, 6, 1)) == 22
    assert g.age_on(None, dt.date(2022, 6, 1)) is None


# --- the service -------------------------------------------------------------------------------------------------------


@pytest.fixture
def world(regions):
    from jingkong.core import clock
    from jingkong.isolation.tests.transfer_world import NOW, TransferWorld, activate
    from jingkong.policy.selectors import active_profile_cache_clear

    with clock.frozen(NOW):
        activate()
        yield TransferWorld(regions)
    active_profile_cache_clear()


@pytest.fixture
def dispatcher_a(regions):
    from jingkong.conftest import make_user

    return make_user("dispatcher_a", "transfer_dispatcher", regions["street_a"])


def _scope(user):
    from jingkong.access.guard import scope_of

    return scope_of(user)


def test_service_groups_located_contacts_and_cases_once(world, dispatcher_a):
    from jingkong.core.models import DomainEvent
    from jingkong.isolation.models import BatchMember, TransferBatch
    from jingkong.tracing.models import Contact

    p1 = world.person("甲", household="H1")
    p2 = world.person("乙", household="H1")
    p3 = world.person("丙", building="B2")
    p4 = world.person("丁", building="B3")
    world.contact(p1)
    world.contact(p2)
    world.contact(p3, tier="secondary")
    world.contact(world.person("未定位"), status="notified")
    world.contact(world.person("乙街", side="b", building="BB"))  # street B: not the dispatcher's
    world.case(p4)
    out = g.group_waiting(actor=dispatcher_a, scope=_scope(dispatcher_a))
    assert out["people"] == 4 and out["batches"] == 3
    assert out["by_destination"] == {"central": 3, "hospital": 1}
    batches = {b.destination_type: b for b in TransferBatch.objects.all()}
    assert set(BatchMember.objects.filter(batch=batches["hospital"]).values_list("person_id", flat=True)) == {p4.pk}
    assert DomainEvent.objects.filter(type="isolation.grouped").count() == 4
    ev = DomainEvent.objects.filter(type="isolation.grouped", subject_id=str(p1.pk)).get()
    assert ev.subject_type == "people.person" and ev.payload["batch_id"] == BatchMember.objects.get(person=p1).batch_id
    assert set(Contact.objects.filter(person__in=[p1, p2, p3]).values_list("status", "handed_to")) == {
        ("handed_over", "grouping")}
    again = g.group_waiting(actor=dispatcher_a, scope=_scope(dispatcher_a))
    assert again["people"] == 0 and BatchMember.objects.count() == 4


def test_service_refs_are_unique_and_numbered_by_day(world, dispatcher_a):
    from jingkong.isolation.models import TransferBatch

    for i in range(3):
        world.contact(world.person(f"人{i}", building=f"X{i}"))
    g.group_waiting(actor=dispatcher_a, scope=_scope(dispatcher_a))
    refs = sorted(TransferBatch.objects.values_list("ref", flat=True))
    assert refs == ["TB-20220105-0001", "TB-20220105-0002", "TB-20220105-0003"]


def test_service_regroups_people_of_a_cancelled_batch(world, dispatcher_a):
    from jingkong.isolation.models import BatchStatus, TransferBatch

    world.case(world.person("病例"))
    g.group_waiting(actor=dispatcher_a, scope=_scope(dispatcher_a))
    TransferBatch.objects.update(status=BatchStatus.CANCELLED)
    assert g.group_waiting(actor=dispatcher_a, scope=_scope(dispatcher_a))["people"] == 1


def test_service_2022_profile_sends_secondary_contacts_home(regions, dispatcher_a):
    from jingkong.core import clock
    from jingkong.isolation.models import TransferBatch
    from jingkong.isolation.tests.transfer_world import NOW, TransferWorld, activate

    with clock.frozen(NOW):
        activate("cn-9th-2022")
        w = TransferWorld(regions)
        w.contact(w.person("次密"), tier="secondary")
        g.group_waiting(actor=dispatcher_a, scope=_scope(dispatcher_a))
    b = TransferBatch.objects.get()
    assert (b.destination_type, b.wait_reason, b.status) == ("home", "home", "delivered")  # nothing to wait for


def test_large_runs_hand_contacts_over_in_a_background_job(world, dispatcher_a, monkeypatch,
                                                           django_capture_on_commit_callbacks):
    from jingkong.core import jobs
    from jingkong.core.models import Job
    from jingkong.isolation import transfers  # noqa: F401 - registers the job kind (as the URLconf does)
    from jingkong.tracing.models import Contact

    monkeypatch.setattr(g, "HAND_OVER_SYNC", 1)
    for i in range(3):
        world.contact(world.person(f"密{i}", household="H9"))
    with django_capture_on_commit_callbacks(execute=True):
        out = g.group_waiting(actor=dispatcher_a, scope=_scope(dispatcher_a))
    assert out["people"] == 3 and out["hand_over_queued"] and out["contacts_handed_over"] == 0
    assert set(Contact.objects.values_list("status", flat=True)) == {"located"}
    job = Job.objects.get(kind=g.HAND_OVER_JOB)
    assert jobs.work(once=True) == 1
    job.refresh_from_db()
    assert job.status == "succeeded" and job.result["handed_over"] == 3
    assert set(Contact.objects.values_list("status", flat=True)) == {"handed_over"}
