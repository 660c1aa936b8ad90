"""The health-code engine: every fact source, full and incremental recomputes, overrides (both databases).

The 8th-edition profile is in force (cn-8th-2021): close contacts 14 days central + 7 days home monitoring counted
from the last exposure, secondary contacts 7 days central, arrivals count 14 days, key industries' intervals.
"Today" is 10 January 2022 in Shanghai.
"""

from __future__ import annotations

import datetime as dt

import pytest

from jingkong.codes import engine
from jingkong.codes.tests import engine_helpers as H
from jingkong.codes.tests.engine_helpers import (
    NOW,
    arrival,
    case,
    code_of,
    contact,
    order,
    person,
    referral,
    risk_area,
    set_test_state,
    zone,
)

pytestmark = pytest.mark.django_db
now, district = H.now, H.district  # fixtures
TODAY = dt.date(2022, 1, 10)
D = dt.date


def _codes(*people):
    engine.recompute_all()
    return [code_of(p) for p in people]


def _rules(code):
    return [r["rule"] for r in code.reasons]


def test_every_person_gets_a_code_green_without_facts(district):
    people = [person(district["grid_a1"]) for _ in range(3)] + [person(district["grid_b2"])]
    nowhere = person(None)
    result = engine.recompute_all()
    assert result["inserted_green"] == 5 and result["people_with_facts"] == 0
    for p in people:
        c = code_of(p)
        assert (c.colour, c.rule_id, c.reasons, c.green_on, c.cites) == ("green", "", [], None, "")
        assert c.region_code == p.grid.code
    assert code_of(nowhere).colour == "green" and code_of(nowhere).region_code == ""
    again = engine.recompute_all()
    assert (again["written"], again["cleared"], again["inserted_green"], again["colour_changes"]) == (0, 0, 0, 0)


def test_cases_are_red_with_no_known_end_closed_cases_are_not(district):
    g = district["grid_a1"]
    confirmed, asymptomatic, closed = person(g), person(g), person(g)
    case(confirmed)
    case(asymptomatic, "asymptomatic")
    case(closed, status="closed")
    a, b, c = _codes(confirmed, asymptomatic, closed)
    assert (a.colour, a.rule_id, a.green_on) == ("red", "confirmed_case", None)
    assert (b.colour, b.rule_id) == ("red", "asymptomatic_infection")
    assert c.colour == "green"
    assert a.reasons == [{"rule": "confirmed_case", "colour": "red", "reason": "Confirmed case", "until": None}]
    assert a.cites == " confirmed_case " and a.profile_id is not None


def test_test_states(district):
    g = district["grid_a1"]
    screen, pool, resample, negative, positive_case = (person(g) for _ in range(5))
    set_test_state(screen, "positive", controlled=True)
    set_test_state(pool, "pool_positive", controlled=True)
    set_test_state(resample, "resample")
    set_test_state(negative, "negative")
    set_test_state(positive_case, "positive")
    case(positive_case)
    s, p, r, n, pc = _codes(screen, pool, resample, negative, positive_case)
    assert (s.colour, s.rule_id) == ("red", "initial_screen_positive")
    assert (p.colour, p.rule_id) == ("yellow", "pool_positive_retest")
    assert r.colour == "green"  # test.resample is a fact no shipped rule uses
    assert n.colour == "green"
    assert (pc.colour, _rules(pc)) == ("red", ["confirmed_case"])  # a case is no longer "initial screen positive"


def test_close_contact_quarantine_is_derived_from_the_last_exposure_until_isolation_takes_over(district):
    g = district["grid_a1"]
    fresh, home, done, ordered = person(g), person(g), person(g), person(g)
    contact(fresh, exposure=NOW - dt.timedelta(days=3))   # exposed 7 January
    contact(home, exposure=NOW - dt.timedelta(days=16))   # exposed 25 December: 14 days central are over
    contact(done, exposure=NOW - dt.timedelta(days=30))   # 14 + 7 days are over
    contact(ordered, exposure=NOW - dt.timedelta(days=30))
    order(ordered, "central", starts=D(2022, 1, 8), ends=D(2022, 1, 21))  # the isolation feature's order wins
    f, h, d, o = _codes(fresh, home, done, ordered)
    assert (f.colour, f.rule_id, f.green_on) == ("red", "close_contact_central", D(2022, 1, 22))
    assert f.reasons[0]["until"] == "2022-01-22"
    assert (h.colour, h.rule_id, h.green_on) == ("yellow", "close_contact_home_monitoring", D(2022, 1, 16))
    assert d.colour == "green"
    assert (o.colour, o.rule_id, o.green_on) == ("red", "close_contact_central", D(2022, 1, 22))
    assert _rules(o) == ["close_contact_central", "under_quarantine"]


def test_secondary_contacts_companions_and_closed_contacts(district):
    g = district["grid_a1"]
    secondary, companion, closed = person(g), person(g), person(g)
    contact(secondary, "secondary", exposure=NOW - dt.timedelta(days=2))
    contact(companion, "companion", exposure=NOW - dt.timedelta(days=2))
    contact(closed, exposure=NOW - dt.timedelta(days=2), status="closed")
    s, c, x = _codes(secondary, companion, closed)
    assert (s.colour, s.rule_id, s.green_on) == ("red", "secondary_contact_central", D(2022, 1, 16))
    assert (c.colour, c.rule_id, c.green_on) == ("yellow", "space_time_companion", None)
    assert x.colour == "green"


def test_isolation_orders(district):
    g = district["grid_a1"]
    home_q, monitoring, overdue, released, future = (person(g) for _ in range(5))
    order(home_q, "home_quarantine", tier="other", starts=D(2022, 1, 5), ends=D(2022, 1, 11))
    order(monitoring, "home_monitoring", tier="other", starts=D(2022, 1, 5), ends=D(2022, 1, 11))
    order(overdue, "central", tier="other", starts=D(2021, 12, 20), ends=D(2022, 1, 2))  # release pending
    order(released, "central", tier="other", starts=D(2022, 1, 5), ends=D(2022, 1, 11), status="released")
    order(future, "central", tier="other", starts=D(2022, 1, 12), ends=D(2022, 1, 20))
    h, m, o, r, f = _codes(home_q, monitoring, overdue, released, future)
    assert (h.colour, h.rule_id, h.green_on) == ("red", "under_quarantine", D(2022, 1, 12))
    assert (m.colour, m.rule_id, m.green_on) == ("yellow", "home_health_monitoring", D(2022, 1, 12))
    assert (o.colour, o.green_on) == ("red", None)
    assert r.colour == "green" and f.colour == "green"


def test_zone_residents(district):
    g = district["grid_a1"]
    locked, controlled, prevention, outside = person(g), person(g), person(g), person(g)
    zone("lockdown", [locked])
    zone("control", [controlled])
    zone("prevention", [prevention])
    lk, ct, pv, out = _codes(locked, controlled, prevention, outside)
    assert (lk.colour, lk.rule_id, lk.green_on) == ("red", "lockdown_zone_resident", None)
    assert (ct.colour, ct.rule_id) == ("yellow", "control_zone_resident")
    assert pv.colour == "green" and out.colour == "green"


def test_arrivals_from_risk_areas_within_the_window(district):
    g = district["grid_a1"]
    risk_area("420106", "medium")
    risk_area("310115001", "high")
    withdrawn = risk_area("320100", "high")
    withdrawn.withdrawn_at = NOW - dt.timedelta(days=1)
    withdrawn.save()
    medium, high, old, safe, was_risky = (person(g) for _ in range(5))
    arrival(medium, "420106005", days_ago=3)
    arrival(high, "310115001002", days_ago=1)
    arrival(old, "420106005", days_ago=20)
    arrival(safe, "330100", days_ago=1)
    arrival(was_risky, "320100001", days_ago=2)
    m, h, o, s, w = _codes(medium, high, old, safe, was_risky)
    # arrived 7 January (Shanghai): counts 14 days, green from 22 January
    assert (m.colour, m.rule_id, m.green_on) == ("yellow", "risk_area_arrival", D(2022, 1, 22))
    assert (h.colour, h.green_on) == ("yellow", D(2022, 1, 24))
    assert o.colour == s.colour == w.colour == "green"


def test_fever_referrals_symptoms_and_key_industry(district):
    from jingkong.isolation.models import SymptomCheck
    from jingkong.testing.tests.labs_helpers import make_tube

    g = district["grid_a1"]
    fever, cleared, ill = person(g), person(g), person(g)
    worker, tested = person(g, industry="port"), person(g, industry="cold_chain")
    referral(fever)
    referral(cleared, "cleared")
    o = order(ill, "central", tier="other", starts=D(2022, 1, 5), ends=D(2022, 1, 18))
    SymptomCheck.objects.create(order=o, day=1, checked_at=NOW - dt.timedelta(days=2), symptoms=[])
    SymptomCheck.objects.create(order=o, day=2, checked_at=NOW - dt.timedelta(days=1), symptoms=["cough"])
    make_tube("T-IND", [tested], sampled_at=NOW - dt.timedelta(days=2))  # cold chain: every 7 days
    f, c, i, w, t = _codes(fever, cleared, ill, worker, tested)
    assert (f.colour, f.rule_id) == ("yellow", "fever_clinic_referral")
    assert c.colour == "green"
    assert i.colour == "red" and _rules(i) == ["under_quarantine", "symptoms_reported"]
    assert (w.colour, w.rule_id) == ("yellow", "key_industry_test_overdue")
    assert t.colour == "green"


def test_facts_gone_turn_codes_green_again_and_changes_are_announced_and_audited(district):
    from jingkong.access.models import AuditLog
    from jingkong.core.models import DomainEvent
    from jingkong.tracing.models import Case

    g = district["grid_a1"]
    sick, fever = person(g), person(g)
    c = case(sick)
    r = referral(fever)
    first = engine.recompute_all()
    assert first["colour_changes"] == 2 and first["by_colour"] == {"red": 1, "yellow": 1}
    (event,) = DomainEvent.objects.filter(type="codes.changed")
    assert event.payload["count"] == 2 and event.payload["by_colour"] == {"red": 1, "yellow": 1}
    assert sorted(event.payload["person_ids"]) == sorted([sick.pk, fever.pk])
    assert set(AuditLog.objects.filter(action="codes.colour").values_list("object_id", flat=True)) == \
        {str(sick.pk), str(fever.pk)}
    changed_at = code_of(sick).changed_at
    Case.objects.filter(pk=c.pk).update(status="closed")
    r.status = "cleared"
    r.save()
    second = engine.recompute_all()
    assert second["cleared"] == 2 and second["by_colour"] == {"green": 2}
    assert code_of(sick).colour == "green" and code_of(sick).cites == "" and code_of(sick).changed_at >= changed_at
    assert DomainEvent.objects.filter(type="codes.changed").count() == 2


def test_only_reasons_changing_keeps_the_colour_time(district):
    from jingkong.core import clock

    p = person(district["grid_a1"])
    case(p)
    engine.recompute_all()
    before = code_of(p).changed_at
    referral(p)
    with clock.frozen(NOW + dt.timedelta(hours=1)):
        result = engine.recompute_all()
    after = code_of(p)
    assert result["written"] == 1 and result["colour_changes"] == 0
    assert _rules(after) == ["confirmed_case", "fever_clinic_referral"] and after.changed_at == before
    assert after.computed_at == NOW + dt.timedelta(hours=1)


def test_people_who_move_keep_their_code_in_their_new_grid(district):
    from django.db import transaction

    from jingkong.core.events import emit
    from jingkong.people.models import Person

    p, q, r = person(district["grid_a1"]), person(district["grid_a1"]), person(district["grid_a1"])
    engine.recompute_all()
    Person.objects.filter(pk__in=[p.pk, q.pk, r.pk]).update(grid=district["grid_b1"])
    assert engine.recompute_all()["region_moves"] == 0  # the routine recompute does not read every person's grid
    assert engine.recompute_all(follow_moves=True)["region_moves"] == 3
    assert code_of(p).region_code == district["grid_b1"].code
    Person.objects.filter(pk=q.pk).update(grid=district["grid_a2"])
    with transaction.atomic():  # what the people feature emits when a person is edited
        emit("people.person_updated", subject=q, region_code=district["grid_a2"].code)
    assert code_of(q).region_code == district["grid_a2"].code
    Person.objects.filter(pk=r.pk).update(grid=district["grid_a2"])
    newcomer = person(district["grid_b2"])
    with transaction.atomic():  # an import: codes follow moves, newcomers get a green code
        emit("people.imported", payload={"created": 1})
    assert code_of(r).region_code == district["grid_a2"].code
    assert code_of(newcomer).colour == "green" and code_of(newcomer).region_code == district["grid_b2"].code


def test_recompute_people_touches_only_them(district):
    g = district["grid_a1"]
    a, b = person(g), person(g)
    case(a)
    case(b)
    result = engine.recompute_people([a.pk])
    assert result["colour_changes"] == 1
    assert code_of(a).colour == "red" and code_of(b) is None
    assert engine.recompute_people([a.pk])["written"] == 0
    assert engine.recompute_people([])["people"] == 0


def test_a_street_running_another_profile_gets_its_rules(district):
    from jingkong.codes.tests.engine_helpers import activate

    activate("cn-9th-2022", region_code="330206004")
    a, b = person(district["grid_a1"]), person(district["grid_b1"])
    for p in (a, b):
        contact(p, exposure=NOW - dt.timedelta(days=9))  # 8th: 14 days central; 9th: 7 central + 3 home
    ca, cb = _codes(a, b)
    assert (ca.colour, ca.rule_id) == ("red", "close_contact_central")
    assert (cb.colour, cb.rule_id, cb.green_on) == ("yellow", "close_contact_home_monitoring", D(2022, 1, 12))


def test_without_a_profile_in_force_the_full_recompute_refuses(regions, now):
    from jingkong.policy.selectors import PolicyNotActive

    with pytest.raises(PolicyNotActive):
        engine.recompute_all()


# --- overrides ---------------------------------------------------------------------------------------------------------


def test_an_override_wins_while_active_and_shows_as_the_reason(district):
    from jingkong.access.guard import Scope
    from jingkong.codes import services
    from jingkong.core import clock

    p = person(district["grid_a1"])
    case(p)
    engine.recompute_all()
    row = services.override_create(actor=None, scope=Scope(""), person_id=p.pk, colour="green",
                                   reason="复核为误报", expires_at=NOW + dt.timedelta(days=2))
    c = code_of(p)
    assert (c.colour, c.rule_id, c.overridden) == ("green", "override", True)
    assert c.reasons[0]["reason"] == "复核为误报" and c.reasons[0]["rule"] == "override"
    assert _rules(c) == ["override", "confirmed_case"]
    assert engine.recompute_all()["written"] == 0  # the full recompute keeps it
    with clock.frozen(NOW + dt.timedelta(days=3)):  # expired
        engine.recompute_all()
    assert (code_of(p).colour, code_of(p).overridden) == ("red", False)
    services.override_revoke(actor=None, scope=Scope(""), override_id=row.pk)
    assert code_of(p).colour == "red"


def test_a_revoked_override_stops_at_once_and_overrides_are_audited(district):
    from jingkong.access.guard import Scope
    from jingkong.access.models import AuditLog
    from jingkong.codes import services
    from jingkong.core.exceptions import Conflict, NotFound, ValidationFailed

    p = person(district["grid_a1"])
    row = services.override_create(actor=None, scope=Scope(""), person_id=p.pk, colour="red", reason="拒不配合")
    assert code_of(p).colour == "red" and code_of(p).green_on is None
    services.override_revoke(actor=None, scope=Scope(""), override_id=row.pk, reason="已配合")
    assert code_of(p).colour == "green"
    with pytest.raises(Conflict):
        services.override_revoke(actor=None, scope=Scope(""), override_id=row.pk)
    actions = list(AuditLog.objects.filter(object_id=str(p.pk)).values_list("action", flat=True))
    assert "codes.override" in actions and "codes.override_revoke" in actions
    with pytest.raises(ValidationFailed):
        services.override_create(actor=None, scope=Scope(""), person_id=p.pk, colour="red", reason="   ")
    with pytest.raises(ValidationFailed):
        services.override_create(actor=None, scope=Scope(""), person_id=p.pk, colour="red", reason="x",
                                 expires_at=NOW - dt.timedelta(hours=1))
    with pytest.raises(NotFound):  # outside the caller's street
        services.override_create(actor=None, scope=Scope("330206004"), person_id=p.pk, colour="red", reason="x")


# --- events ------------------------------------------------------------------------------------------------------------


def test_a_positive_pool_turns_its_members_yellow_in_the_same_transaction_and_a_negative_retest_clears(regions):
    from jingkong.codes.tests.engine_helpers import activate
    from jingkong.conftest import T0
    from jingkong.core import clock
    from jingkong.testing.models import RetestTask
    from jingkong.testing.results import results_apply
    from jingkong.testing.tests.labs_helpers import make_campaign, make_lab, make_persons, make_tube, row

    later = T0 + dt.timedelta(hours=6)
    with clock.frozen(later):
        activate()
        lab, campaign = make_lab(regions["district"]), make_campaign(regions["district"])
        people = make_persons(regions["grid_b1"], 6)
        make_tube("T-POOL", people[:5], campaign=campaign, capacity=10)
        results_apply(lab=lab, rows=[row("T-POOL", "positive")], actor=None)
        assert [code_of(p).colour for p in people[:5]] == ["yellow"] * 5
        assert code_of(people[5]) is None  # not in the tube: untouched
        task = RetestTask.objects.get(person=people[0])
        make_tube("R-1", [people[0]], kind="retest", capacity=1, sampled_at=T0 + dt.timedelta(hours=3),
                  retest_of=task)
        RetestTask.objects.filter(pk=task.pk).update(status="sampled")
        results_apply(lab=lab, rows=[row("R-1", "negative")], actor=None)
        assert code_of(people[0]).colour == "green"
        assert code_of(people[1]).colour == "yellow"


def test_tracing_zones_and_isolation_events_update_the_people_concerned(district):
    from django.db import transaction

    from jingkong.core.events import emit, emit_many
    from jingkong.zones.models import ZoneResident

    g = district["grid_a1"]
    a, b, c, d = person(g), person(g), person(g), person(g)
    engine.recompute_all()
    x = case(a)
    contact(b, exposure=NOW - dt.timedelta(days=1))
    z = zone("lockdown", [c])
    o = order(d, "central", tier="other", starts=D(2022, 1, 9), ends=D(2022, 1, 20))
    with transaction.atomic():
        emit("tracing.case_created", subject_type="tracing.case", subject_id=x.pk,
             payload={"ref": x.ref, "person_id": a.pk})
        emit_many([{"type": "tracing.contacts_identified", "subject_type": "tracing.contact", "subject_id": "",
                    "payload": {"count": 1, "contacts": [{"id": 1, "person_id": b.pk, "tier": "close"}]}}])
        emit("zones.zone_approved", subject=z, payload={"ref": z.ref, "type": "lockdown"})
        emit("isolation.order_started", subject_type="people.person", subject_id=d.pk,
             payload={"order_id": o.pk, "mode": "central", "ends_on": "2022-01-20"})
    assert [code_of(p).colour for p in (a, b, c, d)] == ["red", "red", "red", "red"]
    # the zone is lifted: its residents (no longer in ZoneResident) are found through the rule their code cites
    ZoneResident.objects.filter(zone=z).delete()
    with transaction.atomic():
        emit("zones.zone_lifted", subject=z, payload={"ref": z.ref, "type": "lockdown"})
    assert code_of(c).colour == "green"


def test_a_failing_handler_never_undoes_the_change_that_emitted_the_event(district, monkeypatch):
    from django.db import transaction

    from jingkong.codes import engine as eng
    from jingkong.core.events import emit
    from jingkong.tracing.models import Case

    p = person(district["grid_a1"])

    def boom(*args, **kwargs):
        raise RuntimeError("simulated")

    monkeypatch.setattr(eng, "recompute_people", boom)
    with transaction.atomic():
        x = case(p)
        emit("tracing.case_created", subject_type="tracing.case", subject_id=x.pk, payload={"person_id": p.pk})
    assert Case.objects.filter(pk=x.pk).exists()


def test_the_job_and_the_command_report_progress(district, capsys):
    from django.core.management import call_command

    from jingkong.core.models import Job

    case(person(district["grid_a1"]))
    call_command("codes_recompute")
    out = capsys.readouterr().out
    assert "1 people with facts" in out.replace(",", "") or "(1 with facts" in out
    job = Job.objects.get(kind="codes.recompute")
    assert job.status == "succeeded" and job.progress == job.total and job.result["colour_changes"] == 1


def test_the_first_load_path_restores_indexes_and_foreign_keys(district, monkeypatch):
    from django.db import IntegrityError, connection, transaction

    def shape():
        with connection.cursor() as c:
            if connection.vendor == "postgresql":
                c.execute("SELECT COUNT(*) FROM pg_indexes WHERE tablename = 'codes_healthcode'")
                indexes = c.fetchone()[0]
                c.execute("SELECT COUNT(*) FROM pg_constraint WHERE conrelid = 'codes_healthcode'::regclass "
                          "AND contype = 'f' AND convalidated")
                return indexes, c.fetchone()[0]
            c.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'codes_healthcode'")
            return c.fetchone()[0], None

    before = shape()
    monkeypatch.setattr(engine, "BULK_MISSING", 2)
    people = [person(district["grid_a1"]) for _ in range(4)]
    case(people[0])
    result = engine.recompute_all()
    assert result["inserted_green"] == 3 and code_of(people[0]).colour == "red"
    assert shape() == before
    if connection.vendor == "postgresql":
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as c:
            c.execute("SET CONSTRAINTS ALL IMMEDIATE")
            c.execute("UPDATE codes_healthcode SET person_id = 999999999 WHERE person_id = %s", [people[1].pk])


def test_a_zone_type_no_code_rule_reads_does_not_recompute_its_residents(district, monkeypatch):
    """A district-wide prevention zone (a million residents) must not recompute every resident in the approval's
    transaction when no health-code rule reads ``zone.prevention.*``; a lockdown zone still does."""
    from django.db import transaction

    from jingkong.codes import engine as eng
    from jingkong.core.events import emit

    g = district["grid_a1"]
    a, b = person(g), person(g)
    wide, tight = zone("prevention", [a]), zone("lockdown", [b])
    seen: list[int] = []
    real = eng.recompute_people

    def spy(ids, *args, **kwargs):
        seen.extend(ids)
        return real(ids, *args, **kwargs)

    monkeypatch.setattr(eng, "recompute_people", spy)
    with transaction.atomic():
        emit("zones.zone_approved", subject=wide, payload={"ref": wide.ref, "type": "prevention"})
    assert a.pk not in seen
    with transaction.atomic():
        emit("zones.zone_approved", subject=tight, payload={"ref": tight.ref, "type": "lockdown"})
    assert b.pk in seen and code_of(b).colour == "red"
