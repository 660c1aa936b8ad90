from __future__ import annotations

import pytest

from jingkong.zones import selectors, services
from jingkong.zones.models import Zone, ZoneResident

pytestmark = pytest.mark.django_db


def _by_type(zones):
    return {z.type: z for z in zones}


def test_proposal_from_a_case_2021(town, case, commander):
    zones = _by_type(services.propose_from_case(case, actor=commander))
    lock, ctrl, prev = zones["lockdown"], zones["control"], zones["prevention"]
    assert (lock.people, lock.households, lock.vulnerable) == (3, 1, 1)
    assert [u.kind for u in lock.units.all()] == ["entrance"]
    assert (ctrl.people, ctrl.households) == (5, 3)
    assert (prev.people, prev.households) == (2, 1)
    assert lock.region_code == town.regions["grid_a1"].code
    assert ctrl.region_code == town.regions["community_a"].code
    assert prev.region_code == "330206"
    assert ctrl.around_id == lock.pk and prev.around_id == ctrl.pk
    assert lock.geometry["type"] in ("Polygon", "MultiPolygon")
    assert not ZoneResident.objects.exists()  # proposals have no residents
    assert lock.last_infection_at == case.first_positive_at
    for z in (lock, ctrl, prev):
        assert z.changes.get().action == "propose"


def test_approve_materialises_residents(town, case, commander):
    zones = _by_type(services.propose_from_case(case, actor=commander))
    for t in ("prevention", "control", "lockdown"):  # any order: exclusions follow
        services.zone_approve(zones[t], actor=commander)
    p = town.people
    types = selectors.zone_types_for_people([x.pk for x in p.values()])
    assert types[p["甲"].pk] == ["lockdown"]
    assert types[p["邻1"].pk] == ["control"]
    assert types[p["路1"].pk] == ["control"]
    assert types[p["乙1"].pk] == ["prevention"]
    for z in zones.values():
        z.refresh_from_db()
    assert (zones["lockdown"].people, zones["control"].people, zones["prevention"].people) == (3, 5, 2)
    assert ZoneResident.objects.count() == 10
    assert selectors.risk_level_of(town.regions["grid_a1"].code + "", None) == "high"
    assert selectors.risk_level_of(town.regions["grid_a2"].code) == "medium"
    assert selectors.risk_level_of(town.regions["grid_b1"].code) is None
    assert Zone.objects.count() == 3


def _approved(case, commander):
    zones = _by_type(services.propose_from_case(case, actor=commander))
    for t in ("lockdown", "control", "prevention"):
        zones[t] = services.zone_approve(zones[t], actor=commander)
    return zones


def _events(kind):
    from jingkong.core.models import DomainEvent

    return list(DomainEvent.objects.filter(type=kind).order_by("pk"))


def test_events_history_and_audit(town, case, commander):
    from jingkong.access.models import AuditLog

    zones = _approved(case, commander)
    assert [e.payload["type"] for e in _events("zones.zone_proposed")] == ["lockdown", "control", "prevention"]
    approved = _events("zones.zone_approved")
    assert [e.payload["people"] for e in approved] == [3, 5, 2]
    assert approved[0].subject_type == "zones.zone" and approved[0].payload["ref"] == zones["lockdown"].ref
    assert list(zones["lockdown"].changes.values_list("action", flat=True)) == ["propose", "approve"]
    assert AuditLog.objects.filter(action="zone.approve").count() == 3


def test_edit_units_of_an_approved_zone_refreshes_residents_and_the_ring(town, case, commander):
    zones = _approved(case, commander)
    lock, ctrl = zones["lockdown"], zones["control"]
    services.zone_edit(lock, actor=commander, scope=selectors.Scope(""),
                       add_units=[services.UnitIn(kind="building", building_id=town.buildings["BA2"].pk)],
                       reason="2幢 too")
    lock.refresh_from_db()
    ctrl.refresh_from_db()
    assert lock.people == 5 and ctrl.people == 3  # 楼1/楼2 moved from the ring into the lockdown
    types = selectors.zone_types_for_people([town.people["楼1"].pk])
    assert types[town.people["楼1"].pk] == ["lockdown"]
    changed = _events("zones.zone_changed")
    assert changed[-1].payload["ref"] == lock.ref and changed[-1].payload["people"] == 5
    # Removing the unit again puts them back in the ring.
    unit = lock.units.get(building=town.buildings["BA2"])
    services.zone_edit(lock, actor=commander, scope=selectors.Scope(""), remove_unit_ids=[unit.pk])
    ctrl.refresh_from_db()
    assert ctrl.people == 5


def test_edit_refuses_bad_units_and_scope(town, case, commander, officer_a, officer_b):
    from jingkong.core.exceptions import NotFound, PermissionDenied, ValidationFailed

    lock = _by_type(services.propose_from_case(case, actor=commander))["lockdown"]
    scope_a = selectors.Scope(town.regions["street_a"].code)
    with pytest.raises(ValidationFailed) as err:
        services.zone_edit(lock, actor=officer_a, scope=scope_a,
                           add_units=[services.UnitIn(kind="building", building_id=999999)])
    assert err.value.extra["field"] == "add_units[0].building_id"
    with pytest.raises(NotFound):  # a building of street B
        services.zone_edit(lock, actor=officer_a, scope=scope_a,
                           add_units=[services.UnitIn(kind="building", building_id=town.buildings["BB1"].pk)])
    with pytest.raises(ValidationFailed) as err:
        services.zone_edit(lock, actor=officer_a, scope=scope_a,
                           add_units=[services.UnitIn(kind="grid", region_code=town.regions["community_a"].code)])
    assert err.value.extra["field"] == "add_units[0].kind"
    with pytest.raises(ValidationFailed) as err:
        services.zone_edit(lock, actor=officer_a, scope=scope_a, name="a\x00b")
    assert err.value.extra["field"] == "name"
    with pytest.raises(ValidationFailed) as err:
        services.zone_edit(lock, actor=officer_a, scope=scope_a,
                           remove_unit_ids=list(lock.units.values_list("pk", flat=True)))
    assert err.value.extra["field"] == "remove_unit_ids"
    services.zone_approve(lock, actor=commander)
    with pytest.raises(PermissionDenied):  # a zone in force is changed by a commander only
        services.zone_edit(lock, actor=officer_a, scope=scope_a, name="改名")
    assert lock.units.count() == 1


def test_upgrade_downgrade_lift_and_risk_areas(town, case, commander):
    from jingkong.core.exceptions import Conflict, ValidationFailed
    from jingkong.zones.models import RiskArea

    zones = _approved(case, commander)
    lock, ctrl = zones["lockdown"], zones["control"]
    a2 = town.regions["grid_a2"].code
    with pytest.raises(ValidationFailed):
        services.zone_regrade(ctrl, actor=commander, direction=-1, reason="")
    with pytest.raises(Conflict):
        services.zone_regrade(lock, actor=commander, direction=-1, reason="already the most severe")
    services.zone_regrade(ctrl, actor=commander, direction=-1, reason="spread in the community")
    ctrl.refresh_from_db()
    assert ctrl.type == "lockdown" and selectors.risk_level_of(a2) == "high"
    assert selectors.zone_types_for_people([town.people["路1"].pk])[town.people["路1"].pk] == ["lockdown"]
    services.zone_regrade(ctrl, actor=commander, direction=1, reason="contained")
    ctrl.refresh_from_db()
    assert ctrl.type == "control" and selectors.risk_level_of(a2) == "medium"
    ev = _events("zones.zone_changed")
    assert [(e.payload["from_type"], e.payload["to_type"]) for e in ev] == [("control", "lockdown"),
                                                                             ("lockdown", "control")]
    services.zone_lift(lock, actor=commander, reason="14 days clear")
    lock.refresh_from_db()
    ctrl.refresh_from_db()
    assert lock.status == "lifted" and not lock.residents.exists()
    assert ctrl.people == 8  # the lifted lockdown's residents are back in the control ring
    assert selectors.risk_level_of(town.regions["grid_a1"].code) == "medium"  # the ring's community area
    services.zone_lift(ctrl, actor=commander, reason="clear")
    assert selectors.risk_level_of(a2) is None
    assert RiskArea.objects.filter(withdrawn_at__isnull=True, source="district").count() == 0
    assert _events("zones.zone_lifted")[-1].payload["ref"] == ctrl.ref
    history = list(ctrl.changes.values_list("action", flat=True))
    assert history == ["propose", "approve", "upgrade", "downgrade", "residents", "lift"]
    with pytest.raises(Conflict):
        services.zone_lift(ctrl, actor=commander, reason="again")


def test_reject_needs_a_reason(town, case, commander):
    from jingkong.core.exceptions import ValidationFailed

    lock = _by_type(services.propose_from_case(case, actor=commander))["lockdown"]
    with pytest.raises(ValidationFailed):
        services.zone_reject(lock, actor=commander, reason="  ")
    services.zone_reject(lock, actor=commander, reason="wrong building")
    lock.refresh_from_db()
    assert lock.status == "rejected" and _events("zones.zone_rejected")[0].payload["ref"] == lock.ref


def test_control_and_prevention_zones_are_reused_by_a_second_case(town, case, commander):
    from jingkong.tracing.tests.helpers import at, make_cases

    first = _by_type(services.propose_from_case(case, actor=commander))
    second_case = make_cases((town.people["楼1"], at(4, 20)))[0]
    second = _by_type(services.propose_from_case(second_case, actor=commander))
    assert second["control"].pk == first["control"].pk and second["prevention"].pk == first["prevention"].pk
    assert second["lockdown"].pk != first["lockdown"].pk
    assert Zone.objects.count() == 4


def test_a_positive_in_a_control_zone_proposes_an_upgrade_and_moves_the_clock(town, case, commander):
    from jingkong.tracing.tests.helpers import at, make_cases

    zones = _approved(case, commander)
    ctrl = zones["control"]
    make_cases((town.people["路1"], at(5, 8)))
    ctrl.refresh_from_db()
    assert ctrl.last_infection_at == at(5, 8)
    upgrade = Zone.objects.get(status="proposed", type="lockdown")
    assert upgrade.units.get().kind == "entrance" and upgrade.people == 1
    assert upgrade.changes.get().action == "propose_upgrade"
    ev = _events("zones.zone_proposed")[-1]
    assert (ev.payload["from_type"], ev.payload["to_type"]) == ("control", "lockdown")
    # Approving it takes 路1 out of the ring.
    services.zone_approve(upgrade, actor=commander)
    ctrl.refresh_from_db()
    assert ctrl.people == 4
    # A positive inside a lockdown zone proposes nothing more.
    make_cases((town.people["妻"], at(5, 9)))
    assert Zone.objects.filter(status="proposed").count() == 0


def test_clock_inputs_exposure_and_screening(town, case, commander):
    from jingkong.core import clock
    from jingkong.testing.models import PersonTestState
    from jingkong.tracing.models import Contact, ContactReason
    from jingkong.tracing.tests.helpers import at

    zones = _approved(case, commander)
    lock = zones["lockdown"]
    now = clock.now()
    contact = Contact.objects.create(person=town.people["乙1"], tier="close", region_code="330206004001001",
                                     queue_region_code="330206004", last_exposure_at=at(3, 18),
                                     first_identified_at=now, created_at=now, updated_at=now)
    ContactReason.objects.create(contact=contact, case=case, tier="close", kind="venue", key="k", created_at=now)
    for name in ("甲", "妻", "老人"):
        PersonTestState.objects.create(person=town.people[name], region_code=lock.region_code, status="negative",
                                       last_negative_sampled_at=at(5, 6) if name != "老人" else at(5, 7),
                                       updated_at=now)
    result = services.review_all()
    lock.refresh_from_db()
    assert lock.last_exposure_at == at(3, 18)  # a contact of the zone's case, living elsewhere
    assert lock.last_screening_at == at(5, 6)  # the earliest of everyone's latest negative
    assert result["zones"] == 3 and result["ready"] == [] or all(r["ref"] != lock.ref for r in result["ready"])
    PersonTestState.objects.filter(person=town.people["妻"]).update(status="pool_positive")
    services.review_all()
    lock.refresh_from_db()
    assert lock.last_screening_at is None
    cd = selectors.countdown_of(lock)
    assert {b.code for b in cd.blockers} >= {"new_infection", "last_exposure", "screening"}


def test_lifting_countdown_becomes_ready(town, case, commander):
    from jingkong.core import clock
    from jingkong.testing.models import PersonTestState
    from jingkong.tracing.tests.helpers import at

    zones = _approved(case, commander)
    lock = zones["lockdown"]
    # The case's positive sampling on 4 Jan 09:00 (Shanghai) is day 0: 14 whole days are 5-18 Jan, lifting from 19 Jan
    # 00:00 local (a 24-h count said 18 Jan 09:00: the command centre counts calendar days).
    later = at(19, 0)
    for name in ("甲", "妻", "老人"):
        PersonTestState.objects.create(person=town.people[name], region_code=lock.region_code, status="negative",
                                       last_negative_sampled_at=at(17, 9), updated_at=later)
    with clock.frozen(at(18, 23, 59)):
        early = services.review_all()
    assert lock.ref not in {r["ref"] for r in early["ready"]}
    lock.refresh_from_db()
    assert [b.code for b in selectors.countdown_of(lock, at=at(18, 23, 59)).blockers] == ["new_infection"]
    with clock.frozen(later):
        result = services.review_all()
    assert lock.ref in {r["ref"] for r in result["ready"]}
    lock.refresh_from_db()
    assert selectors.countdown_of(lock, at=later).ready


def test_risk_areas_2022_profile_compound(regions, now, commander):
    from jingkong.geo.models import Building
    from jingkong.people.models import Household
    from jingkong.tracing.tests.helpers import activate, at, make_cases
    from jingkong.zones.tests.conftest import _person

    activate("cn-9th-2022")
    g = regions["grid_a1"]
    b1 = Building.objects.create(code="C1", grid=g, address="明州花园1幢", lon=121.803, lat=29.903)
    b2 = Building.objects.create(code="C2", grid=g, address="明州花园2幢", lon=121.804, lat=29.904)
    b3 = Building.objects.create(code="C3", grid=g, address="银杏苑1幢", lon=121.806, lat=29.906)
    people = []
    for i, b in enumerate((b1, b2, b3)):
        hh = Household.objects.create(code=f"K{i}", building=b, grid=g, unit="1")
        people.append(_person(f"住户{i}", hh, b))
    case = make_cases((people[0], at(4, 9)))[0]
    zones = _by_type(services.propose_from_case(case, actor=commander))
    high = zones["high_risk"]
    assert sorted(u.building_id for u in high.units.all()) == [b1.pk, b2.pk]  # the compound 明州花园
    assert {u.kind for u in high.units.all()} == {"compound"}
    assert high.people == 2 and zones["medium_risk"].people == 1
    high = services.zone_approve(high, actor=commander)
    assert selectors.risk_level_of(g.code) == "high"
    cd = selectors.countdown_of(high)
    assert cd.action == "downgrade" and cd.to_type == "medium_risk"


# --- imported risk-area lists --------------------------------------------------------------------------------------------

CSV = ("code,name,level,published_at\n"
       "310115,上海市浦东新区,high,2021-12-01\n"
       "330212003,鄞州区某街道,中风险,2021-12-02T10:00:00+08:00\n"
       "abc,坏代码,high,\n"
       "330213,,high,\n"
       "330211,镇海区,extreme,\n"
       "330282,慈溪市,low,yesterday\n")


def test_import_risk_areas_utf8_gbk_errors_and_idempotence(db, now, tmp_path):
    from jingkong.zones.models import RiskArea

    r = services.risk_areas_import(CSV.encode("utf-8"), list_name="上海", error_file=tmp_path / "e.csv")
    assert (r["rows"], r["created"], r["rejected"]) == (6, 2, 4)
    assert [(e["line"], e["field"]) for e in r["errors_sample"]] == [(4, "code"), (5, "name"), (6, "level"),
                                                                     (7, "published_at")]
    assert (tmp_path / "e.csv").read_text(encoding="utf-8").startswith("line,field,reason,value")
    assert selectors.risk_level_of("310115004001") == "high"  # county code covers the whole county
    assert selectors.risk_level_of("330212003002") == "medium"
    assert selectors.risk_level_of("330212004") is None
    again = services.risk_areas_import(CSV.encode("gb18030"), list_name="上海")
    assert (again["created"], again["unchanged"], again["encoding"]) == (0, 2, "gb18030")
    assert RiskArea.objects.count() == 2
    newer = services.risk_areas_import("code,name,level,published_at\n310115,浦东,medium,2021-12-20\n".encode())
    assert newer["created"] == 1
    assert selectors.risk_level_of("310115") == "medium"
    import datetime as dt

    assert selectors.risk_level_of("310115", dt.datetime(2021, 12, 10, tzinfo=dt.UTC)) == "high"


def test_import_refuses_a_file_without_the_columns(db, now):
    from django.utils import translation

    from jingkong.core.exceptions import ValidationFailed

    with translation.override("en"):
        with pytest.raises(ValidationFailed, match="missing column"):
            services.risk_areas_import(b"foo,bar\n1,2\n")
        with pytest.raises(ValidationFailed, match="empty"):
            services.risk_areas_import(b"")
        r = services.risk_areas_import(b"code,name,level\n330212,a\x00b,high\n")
    assert r["rejected"] == 1 and "NUL" in r["errors_sample"][0]["reason"]


def test_contacts_found_move_the_last_exposure(town, case, commander):
    from django.db import transaction

    from jingkong.core.events import emit
    from jingkong.tracing.tests.helpers import at

    zones = _approved(case, commander)
    item = {"id": 1, "person_id": town.people["乙1"].pk, "tier": "close", "cases": [case.ref],
            "last_exposure_at": at(4, 8).isoformat(), "due_at": None}
    with transaction.atomic():
        emit("tracing.contacts_identified", subject_type="tracing.contact", region_code="330206004001001",
             payload={"count": 1, "contacts": [item]})
    for z in zones.values():
        z.refresh_from_db()
    assert zones["lockdown"].last_exposure_at == at(4, 8)  # the zone's case
    assert zones["control"].last_exposure_at == at(4, 8)  # drawn for the same case
    assert zones["prevention"].last_exposure_at == at(4, 8)  # and the contact lives there
    # A later exposure of somebody living in the prevention zone only, exposed to another case, moves it alone.
    later = {**item, "cases": ["BL-OTHER"], "last_exposure_at": at(5, 8).isoformat()}
    with transaction.atomic():
        emit("tracing.contacts_raised", subject_type="tracing.contact", payload={"count": 1, "contacts": [later]})
    for z in zones.values():
        z.refresh_from_db()
    assert zones["prevention"].last_exposure_at == at(5, 8) and zones["lockdown"].last_exposure_at == at(4, 8)


def test_edit_judges_status_and_permission_on_the_locked_zone(town, case, commander, officer_a, monkeypatch):
    """A street officer's edit of a proposal that a commander approves meanwhile is refused (it was applied to the zone
    in force: the status was read before the row lock)."""
    from jingkong.core.exceptions import PermissionDenied

    lock = _by_type(services.propose_from_case(case, actor=commander))["lockdown"]
    stale = Zone.objects.get(pk=lock.pk)
    real = services._resolve_unit

    def approve_meanwhile(*args, **kwargs):
        Zone.objects.filter(pk=lock.pk).update(status="approved")  # the other commander's approval commits now
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "_resolve_unit", approve_meanwhile)
    scope_a = selectors.Scope(town.regions["street_a"].code)
    with pytest.raises(PermissionDenied):
        services.zone_edit(stale, actor=officer_a, scope=scope_a, reason="bigger",
                           add_units=[services.UnitIn(kind="building", building_id=town.buildings["BA2"].pk)])
    assert lock.units.count() == 1


def _update(person, **changes):
    from jingkong.people.services import person_update

    return person_update(actor=None, scope=selectors.Scope(""), person=person, **changes)


def test_a_person_moving_house_leaves_and_enters_zones(town, case, commander):
    zones = _approved(case, commander)
    p = town.people
    _update(p["妻"], building_code="BB1", household_code="H5")  # moves to street B: out of the lockdown
    types = selectors.zone_types_for_people([p["妻"].pk])
    assert types[p["妻"].pk] == ["prevention"]
    zones["lockdown"].refresh_from_db()
    zones["prevention"].refresh_from_db()
    assert (zones["lockdown"].people, zones["prevention"].people) == (2, 3)
    _update(p["楼1"], building_code="BA1", household_code="H1")  # moves into the lockdown entrance
    assert selectors.zone_types_for_people([p["楼1"].pk])[p["楼1"].pk] == ["lockdown"]
    zones["lockdown"].refresh_from_db()
    zones["control"].refresh_from_db()
    assert (zones["lockdown"].people, zones["control"].people) == (3, 4)


def test_people_imported_later_become_residents(town, case, commander):
    from jingkong.core.events import emit
    from jingkong.zones.tests.conftest import _person

    zones = _approved(case, commander)
    newcomer = _person("新", town.households["H3"], town.buildings["BA2"])  # written by a bulk import
    emit("people.imported", region_code="", actor=None, payload={"rows": 1, "created": 1})
    assert selectors.zone_types_for_people([newcomer.pk])[newcomer.pk] == ["control"]
    zones["control"].refresh_from_db()
    assert zones["control"].people == 6
    assert [e.payload["ref"] for e in _events("zones.zone_changed")] == [zones["control"].ref]


def test_deleting_a_person_or_a_zone_leaves_no_resident_rows(town, case, commander):
    """zones_zoneresident has no database foreign keys (migration 0003): the ORM cascades must remove the rows."""
    zones = _approved(case, commander)
    person = town.people["妻"]
    assert ZoneResident.objects.filter(person_id=person.pk).exists()
    person.delete()
    assert not ZoneResident.objects.filter(person_id=person.pk).exists()
    lock_pk = zones["lockdown"].pk
    zones["lockdown"].delete()
    assert not ZoneResident.objects.filter(zone_id=lock_pk).exists()
    from jingkong.people.models import Person

    assert set(ZoneResident.objects.values_list("person_id", flat=True)) <= set(Person.objects.values_list("pk",
                                                                                                          flat=True))


def test_import_reports_out_of_range_publication_times_per_row(db, now):
    """A published_at with no UTC instant (0001-01-01 in Shanghai, 9999-12-31 at -14:00) was an OverflowError (500)."""
    data = (b"code,name,level,published_at\n330212,a,high,0001-01-01\n330213,b,high,9999-12-31T23:59:59-14:00\n"
            b"330214,c,high,1899-05-01\n330215,d,medium,2022-01-03\n")
    r = services.risk_areas_import(data)
    assert (r["created"], r["rejected"]) == (1, 3)
    assert [(e["line"], e["field"]) for e in r["errors_sample"]] == [(2, "published_at"), (3, "published_at"),
                                                                     (4, "published_at")]


def test_the_rings_history_says_why_its_people_changed(town, case, commander):
    zones = _by_type(services.propose_from_case(case, actor=commander))
    services.zone_approve(zones["control"], actor=commander)  # the ring first: everyone of community A inside
    services.zone_approve(zones["lockdown"], actor=commander)  # then 3 of them leave it for the lockdown
    change = zones["control"].changes.get(action="residents")
    assert change.detail == {"people": [8, 5], "because": zones["lockdown"].ref}


def test_a_case_with_an_open_proposal_is_not_proposed_twice(town, case, commander):
    from jingkong.core.exceptions import Conflict

    zones = _by_type(services.propose_from_case(case, actor=commander))
    with pytest.raises(Conflict) as err:  # a double click made a second lockdown for the commander to approve
        services.propose_from_case(case, actor=commander)
    assert err.value.extra["zone"] == zones["lockdown"].ref
    assert Zone.objects.filter(type="lockdown").count() == 1
    services.zone_reject(zones["lockdown"], actor=commander, reason="redraw")
    again = _by_type(services.propose_from_case(case, actor=commander))
    assert again["lockdown"].pk != zones["lockdown"].pk


def test_a_person_becoming_vulnerable_is_counted(town, case, commander):
    lock = _approved(case, commander)["lockdown"]
    assert lock.vulnerable == 1
    _update(town.people["妻"], vulnerable=["pregnant"])
    lock.refresh_from_db()
    assert lock.vulnerable == 2
    _update(town.people["妻"], phone="13800000000")  # not a place or a count: nothing to refresh
    lock.refresh_from_db()
    assert (lock.people, lock.vulnerable) == (3, 2)
