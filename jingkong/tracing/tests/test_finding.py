"""Contact finding end to end: the real engine over a small check-in lake, merged and stored."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from jingkong.access.models import AuditLog
from jingkong.core.models import DomainEvent
from jingkong.tracing import finding, services
from jingkong.tracing.models import Contact, ContactReason, Handoff, Stay
from jingkong.tracing.tests.helpers import at, make_cases

pytestmark = pytest.mark.django_db


def _contacts():
    return {c.person.name: c for c in Contact.objects.select_related("person")}


def test_contacts_are_found_merged_across_cases_and_ranked(outbreak):
    result = services.find_run(case_ids=[outbreak.jia.pk, outbreak.yi.pk])
    contacts = _contacts()
    assert {n: c.tier for n, c in contacts.items()} == {
        "妻": "close", "同事": "close", "顾客": "close", "顾客子": "secondary", "店员": "secondary",
    }  # 路人 overlapped 甲 by 10 minutes only (the 2021 profile asks for 15)
    assert "甲" not in contacts and "乙" not in contacts  # cases are never contacts
    assert "旧客" not in contacts  # outside the look-back window
    customer = contacts["顾客"]
    reasons = ContactReason.objects.filter(contact=customer, tier="close")
    assert sorted(r.case.ref for r in reasons) == sorted([outbreak.jia.ref, outbreak.yi.ref])
    jia_reason = reasons.get(case=outbreak.jia)
    assert jia_reason.kind == "venue" and jia_reason.evidence["venue_code"] == "S1"
    assert jia_reason.evidence["overlap_minutes"] == 30
    assert customer.last_exposure_at == at(2, 10, 50)
    assert customer.due_at == at(5, 12) + dt.timedelta(hours=12)  # 2021 profile: transfer within 12 h
    son = ContactReason.objects.filter(contact=contacts["顾客子"])
    assert {(r.case.ref, r.kind, r.via_contact, r.tier) for r in son} == {
        (outbreak.jia.ref, "household", customer, "secondary"), (outbreak.yi.ref, "household", customer, "secondary")}
    shop = ContactReason.objects.filter(contact=contacts["店员"]).first()
    assert shop.kind == "venue" and shop.via_contact == customer
    assert result["cases"] == 2 and result["close"] == 3


def test_a_contact_outside_the_case_jurisdiction_is_handed_to_its_own_street(outbreak):
    services.find_run(case_ids=[outbreak.jia.pk])
    customer = Contact.objects.get(person__name="顾客")
    assert (customer.region_code, customer.queue_region_code) == ("330206004001001", "330206004")
    handoff = Handoff.objects.get(contact=customer)
    assert (handoff.from_region_code, handoff.to_region_code, handoff.status) == ("330206002", "330206004", "requested")
    (event,) = DomainEvent.objects.filter(type="tracing.handoffs_requested")  # one per receiving region
    assert (event.region_code, event.payload["count"], event.payload["from_region"]) == ("330206004", 3, "330206002")
    assert not Handoff.objects.filter(contact__person__name="妻").exists()  # same street as the case


def test_rerunning_is_idempotent_and_never_moves_a_status_back(outbreak):
    ids = [outbreak.jia.pk, outbreak.yi.pk]
    services.find_run(case_ids=ids)
    before = (Contact.objects.count(), ContactReason.objects.count(), Handoff.objects.count(),
              AuditLog.objects.filter(action="contact.identify").count(),
              DomainEvent.objects.filter(type="tracing.contacts_identified").count())
    customer = Contact.objects.get(person__name="顾客")
    services.contact_status_set(actor=None, contact=customer, status="located")
    again = services.find_run(case_ids=ids)
    after = (Contact.objects.count(), ContactReason.objects.count(), Handoff.objects.count(),
             AuditLog.objects.filter(action="contact.identify").count(),
             DomainEvent.objects.filter(type="tracing.contacts_identified").count())
    assert after == before
    assert (again["contacts_new"], again["reasons_new"], again["reasons_inactive"], again["handoffs_new"]) == (0, 0, 0, 0)
    assert Contact.objects.get(person__name="顾客").status == "located"


def test_the_timeline_gets_the_cases_check_ins(outbreak):
    services.find_run(case_ids=[outbreak.jia.pk])
    venue_stays = Stay.objects.filter(case=outbreak.jia, source="checkin")
    assert [(s.venue.code, s.start, s.end) for s in venue_stays] == [("S1", at(2, 10), at(2, 11))]
    services.find_run(case_ids=[outbreak.jia.pk])
    assert Stay.objects.filter(case=outbreak.jia, source="checkin").count() == 1


def test_a_tracer_flagged_person_is_a_close_contact_and_their_household_secondary(outbreak, tracer_a):
    from jingkong.access.guard import Scope

    friend = outbreak.w.person("朋友", side="b", household="H9")
    outbreak.w.person("朋友妻", side="b", household="H9")
    contact = services.contact_flag(actor=tracer_a, scope=Scope("330206002"), case=outbreak.jia,
                                    id_number=outbreak.w.numbers["朋友"], exposure_end=at(2, 20), relation="dinner")
    assert (contact.person, contact.tier, contact.queue_region_code) == (friend, "close", "330206004")
    assert Handoff.objects.filter(contact=contact, to_region_code="330206004").exists()
    services.find_run(case_ids=[outbreak.jia.pk])
    contacts = _contacts()
    assert contacts["朋友"].tier == "close"
    assert ContactReason.objects.get(contact=contacts["朋友"]).kind == "tracer"  # kept by the automatic run
    assert contacts["朋友妻"].tier == "secondary"


def _fake_engine(findings_by_kinds):
    """An engine returning fixed findings per requested kinds (for the keys asked), recording its calls."""
    from jingkong.analytics.contacts import IndexStay, IndexWindow

    calls = []

    def find_contacts(windows, *, overlap_minutes, lake=None, kinds=(), companion=None):
        calls.append((tuple(w.key for w in windows), tuple(kinds), companion))
        keys = {w.key for w in windows}
        return [f for f in findings_by_kinds.get(tuple(kinds), []) if f.key in keys]

    return SimpleNamespace(find_contacts=find_contacts, IndexWindow=IndexWindow, IndexStay=IndexStay, calls=calls)


def test_merge_with_a_fake_engine_companions_and_upgrades(world):
    from jingkong.analytics.contacts import Finding

    a, b = world.person("甲"), world.person("乙")
    x, y = world.person("X"), world.person("Y")
    case_a, case_b = make_cases((a, at(3, 9)), (b, at(3, 10)))
    index = finding.INDEX_KINDS
    engine = _fake_engine({index: [
        Finding(case_a.pk, x.pk, "companion", at(2, 9), at(2, 9, 30), {"cell_metres": 800}),
        Finding(case_a.pk, b.pk, "venue", at(2, 9), at(2, 10), {"venue_id": 1}),  # b is a case
    ]})
    finding.contacts_find(case_ids=[case_a.pk, case_b.pk], lake=None, engine=engine)
    assert Contact.objects.get(person=x).tier == "companion"
    assert Contact.objects.get(person=x).due_at is None
    assert not Contact.objects.filter(person=b).exists()
    assert engine.calls[0][2] == (800, 10)  # the profile's space-time companion rule
    # Later a venue exposure to case B makes X a close contact: raised once, one event.
    engine = _fake_engine({index: [Finding(case_b.pk, x.pk, "venue", at(2, 15), at(2, 16), {"venue_id": 2}),
                                   Finding(case_b.pk, y.pk, "household", at(1, 10), at(5, 12), {"household_id": 9})]})
    finding.contacts_find(case_ids=[case_b.pk], lake=None, engine=engine)
    xc = Contact.objects.get(person=x)
    assert xc.tier == "close" and xc.last_exposure_at == at(2, 16)
    assert ContactReason.objects.filter(contact=xc).count() == 2
    (raised,) = DomainEvent.objects.filter(type="tracing.contacts_raised")
    assert [(c["id"], c["tier"]) for c in raised.payload["contacts"]] == [(xc.pk, "close")]
    assert raised.region_code == x.grid.code
    # A re-run of case A no longer finding X's companion exposure marks it inactive; X stays close.
    engine = _fake_engine({index: []})
    result = finding.contacts_find(case_ids=[case_a.pk], lake=None, engine=engine)
    assert result["reasons_inactive"] == 1
    assert ContactReason.objects.get(contact=xc, case=case_a).active is False
    assert Contact.objects.get(person=x).tier == "close"


def test_cases_without_a_policy_or_an_anchor_are_skipped_with_the_reason(regions, now):
    from jingkong.tracing.tests.helpers import World

    world = World(regions)
    (case,) = make_cases((world.person("甲"), at(3, 9)))
    engine = _fake_engine({})
    result = finding.contacts_find(case_ids=[case.pk], lake=None, engine=engine)
    assert result["cases"] == 0 and "no policy profile" in result["skipped"][0]["reason"]
    assert engine.calls == []


def test_a_contact_named_without_times_was_last_exposed_when_the_case_was_isolated(outbreak, tracer_a):
    """Regression: the last exposure of a contact named without times was "now" (days after the case was isolated),
    which pushed back the end of the contact's quarantine."""
    from jingkong.access.guard import Scope

    contact = services.contact_flag(actor=tracer_a, scope=Scope("330206002"), case=outbreak.jia,
                                    person_id=outbreak.w["路人"].pk, relation="colleague")
    assert outbreak.jia.isolated_at == at(3, 17)
    assert contact.last_exposure_at == at(3, 17)
    assert ContactReason.objects.get(contact=contact).exposure_end == at(3, 17)


def test_secondary_contacts_count_from_the_close_contacts_first_exposure(world, lake):
    """Regression: 次密接 were looked for only from the close contact's *last* exposure to the case — for a household
    member that is the case's isolation, so everyone the wife met during the window was missed. The 8th-edition
    definition runs from the close contact's first contact with the case until the close contact is isolated."""
    from jingkong.tracing.tests.helpers import write_checkins

    case_person, wife = world.person("甲", household="H1"), world.person("妻", household="H1")
    friend, later = world.person("牌友"), world.person("后来的人")
    parlour = world.venue("M1", type="gym", name="棋牌室")
    write_checkins(lake.root, [
        (wife, parlour, at(2, 14), at(2, 16)),  # during the case's window (Jan 1 09:00 – Jan 3 17:00)
        (friend, parlour, at(2, 14, 30), at(2, 15, 30)),
        (wife, parlour, at(4, 14), at(4, 15)),  # after the case's isolation, before hers: also counts
        (later, parlour, at(4, 14), at(4, 15)),
    ])
    (case,) = make_cases((case_person, at(3, 9)))
    services.find_run(case_ids=[case.pk])
    contacts = _contacts()
    assert contacts["妻"].tier == "close"
    assert contacts["牌友"].tier == "secondary" and contacts["后来的人"].tier == "secondary"
    reason = ContactReason.objects.get(contact=contacts["牌友"])
    assert (reason.via_contact, reason.kind, reason.exposure_start) == (contacts["妻"], "venue", at(2, 14, 30))
