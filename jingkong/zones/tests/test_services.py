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
