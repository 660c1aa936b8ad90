"""Planning a round through the API: building → site assignment with slots, the round estimate, door-to-door lists of
limited-mobility residents, recent positivity with the recommended pool size per area."""

from __future__ import annotations

import datetime as dt

import pytest

from jingkong.access.models import AuditLog
from jingkong.conftest import T0
from jingkong.core.models import DomainEvent
from jingkong.people.models import Vulnerable
from jingkong.testing.models import CampaignArea, SiteAssignment
from jingkong.testing.tests.campaign_helpers import (
    activate_policy,
    make_campaign,
    make_lab,
    make_residents,
    make_site,
    make_town,
    mark_positive,
    swab,
)

pytestmark = pytest.mark.django_db
API = "/api/v1/testing"


@pytest.fixture
def town(regions, frozen_clock):
    activate_policy(regions)
    return make_town(regions)  # 2 buildings × 10 residents in each of the 4 grids


def post(client, url, body=None):
    return client.post(url, body or {}, content_type="application/json")


# --- building → site ---------------------------------------------------------------------------------------------------


def test_assign_buildings_writes_one_row_per_building_with_slots(town, regions, commander, client_for):
    c = make_campaign(regions["district"], starts_at=T0 + dt.timedelta(hours=1))
    site_a = make_site(regions["grid_a1"], "SA", capacity=100)
    site_b = make_site(regions["grid_b1"], "SB", capacity=100)
    r = post(client_for(commander), f"{API}/campaigns/{c.pk}/assign-buildings", {"slot_minutes": 30, "utilisation": 0.5})
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["buildings"] == 8 and body["residents"] == 80 and not body["skipped"]
    rows = list(SiteAssignment.objects.filter(campaign=c).select_related("building", "site"))
    assert len(rows) == 8
    # each street's buildings go to the street's own (nearest) site
    assert {r.site.code for r in rows if r.region_code.startswith("330206002")} == {site_a.code}
    assert {r.site.code for r in rows if r.region_code.startswith("330206004")} == {site_b.code}
    # 50 people per hour at 0.5 utilisation = 25 per half-hour slot: 10-resident buildings, slots from the start on
    slots = sorted((r.slot_start, r.slot_end) for r in rows if r.site_id == site_a.pk)
    assert slots[0][0] == c.starts_at
    assert all(s0 >= c.starts_at and s1 > s0 for s0, s1 in slots)
    assert all(r.residents == 10 for r in rows)
    assert DomainEvent.objects.get(type="testing.buildings_assigned").payload["buildings"] == 8
    # re-running replaces the rows instead of adding to them
    post(client_for(commander), f"{API}/campaigns/{c.pk}/assign-buildings")
    assert SiteAssignment.objects.filter(campaign=c).count() == 8
    listed = client_for(commander).get(f"{API}/campaigns/{c.pk}/assignments?site_id={site_a.pk}").json()
    assert listed["count"] == 4 and listed["items"][0]["site_code"] == "SA"


def test_a_street_replans_only_its_own_part_of_a_district_round(town, regions, commander, officer_a, client_for):
    c = make_campaign(regions["district"])
    make_site(regions["grid_a1"], "SA")
    make_site(regions["grid_b1"], "SB")
    post(client_for(commander), f"{API}/campaigns/{c.pk}/assign-buildings")
    b_rows = list(SiteAssignment.objects.filter(region_code__startswith="330206004").values_list("pk", flat=True))
    r = post(client_for(officer_a), f"{API}/campaigns/{c.pk}/assign-buildings")
    assert r.status_code == 200 and r.json()["buildings"] == 4 and r.json()["region_code"] == "330206002"
    assert list(SiteAssignment.objects.filter(region_code__startswith="330206004").values_list("pk", flat=True)) == b_rows
    seen = client_for(officer_a).get(f"{API}/campaigns/{c.pk}/assignments").json()
    assert {i["region_code"][:9] for i in seen["items"]} == {"330206002"}


def test_door_to_door_areas_go_to_door_teams(town, regions, officer_a, client_for):
    c = make_campaign(regions["street_a"])
    CampaignArea.objects.create(campaign=c, region=regions["grid_a2"], region_code=regions["grid_a2"].code,
                                mode="building", pool_size=1)
    make_site(regions["grid_a1"], "SA")
    r = post(client_for(officer_a), f"{API}/campaigns/{c.pk}/assign-buildings")
    assert r.json()["buildings"] == 2  # grid a1 only
    assert r.json()["skipped"]["door_to_door"] == {"buildings": 2, "residents": 20,
                                                   "reason": "no active door-to-door team"}
    team = make_site(regions["grid_a2"], "TEAM", kind="door_team", capacity=30)
    r = post(client_for(officer_a), f"{API}/campaigns/{c.pk}/assign-buildings")
    assert r.json()["buildings"] == 4 and not r.json()["skipped"]
    assert set(SiteAssignment.objects.filter(region_code=regions["grid_a2"].code).values_list("site_id", flat=True)) \
        == {team.pk}


def test_assigning_without_sites_or_after_the_deadline(town, regions, officer_a, client_for):
    c = make_campaign(regions["street_a"])
    r = post(client_for(officer_a), f"{API}/campaigns/{c.pk}/assign-buildings")
    assert r.status_code == 200 and r.json()["skipped"]["sites"]["buildings"] == 4
    late = make_campaign(regions["street_a"], starts_at=T0 - dt.timedelta(days=2))
    make_site(regions["grid_a1"])
    assert post(client_for(officer_a), f"{API}/campaigns/{late.pk}/assign-buildings").status_code == 409
    bad = post(client_for(officer_a), f"{API}/campaigns/{c.pk}/assign-buildings", {"slot_minutes": 1})
    assert bad.status_code == 422


# --- the estimate ------------------------------------------------------------------------------------------------------


def test_plan_uses_the_population_sites_and_labs_of_the_callers_part(town, regions, commander, officer_a, client_for):
    c = make_campaign(regions["district"], hours=12, pool_size=10)
    make_site(regions["grid_a1"], "SA", capacity=10, staff=2, desks=1)
    make_site(regions["grid_b1"], "SB", capacity=10)
    make_lab(regions["district"], "LAB-D", capacity=100)  # a district lab serves the streets too
    r = post(client_for(officer_a), f"{API}/campaigns/{c.pk}/plan", {"transport_hours": 1})
    assert r.status_code == 200, r.content
    est = r.json()
    assert est["region_code"] == "330206002" and est["population"] == 40 and est["tubes_needed"] == 4
    assert est["site_count"] == 1 and [lab["code"] for lab in est["labs"]] == ["LAB-D"]
    assert est["sampling_hours"] == pytest.approx(4.0, abs=0.1)  # 40 people at 10/h
    assert est["binding"] == "sites"
    whole = post(client_for(commander), f"{API}/campaigns/{c.pk}/plan").json()
    assert whole["population"] == 80 and whole["site_count"] == 2


def test_plan_household_tubes_and_area_pool_sizes(town, regions, commander, client_for):
    c = make_campaign(regions["district"], pool_size=10)
    CampaignArea.objects.create(campaign=c, region=regions["grid_a1"], region_code=regions["grid_a1"].code,
                                mode="building", pool_size=1, one_tube_per_household=True)
    CampaignArea.objects.create(campaign=c, region=regions["street_b"], region_code="330206004", mode="street",
                                pool_size=5)
    make_site(regions["grid_a1"])
    make_lab(regions["district"])
    est = post(client_for(commander), f"{API}/campaigns/{c.pk}/plan", {"tubes_available": 5}).json()
    groups = {(g["pool_size"], g["one_tube_per_household"]): g for g in est["pool_groups"]}
    assert groups[(1, True)] == {"pool_size": 1, "one_tube_per_household": True, "persons": 20, "tubes": 2}
    assert groups[(5, False)]["tubes"] == 8 and groups[(10, False)]["tubes"] == 2
    assert est["tubes_needed"] == 12 and est["binding"] == "tubes"
    assert est["constraints"]["tubes"]["short"] == 7


def test_plan_of_a_running_round_plans_what_is_left(town, regions, officer_a, client_for):
    from jingkong.people.models import Person

    c = make_campaign(regions["street_a"], status="running")
    make_site(regions["grid_a1"])
    make_lab(regions["district"])
    swab(list(Person.objects.filter(grid=regions["grid_a1"])[:10]), campaign=c, at=T0)
    est = post(client_for(officer_a), f"{API}/campaigns/{c.pk}/plan").json()
    assert est["target_population"] == 40 and est["already_sampled"] == 10 and est["population"] == 30
    bad = post(client_for(officer_a), f"{API}/campaigns/{c.pk}/plan", {"transport_hours": -1})
    assert bad.status_code == 422 and "transport_hours" in bad.json()["message"]


# --- door to door ------------------------------------------------------------------------------------------------------


def test_limited_mobility_residents_are_listed_for_the_door_team_and_audited(town, regions, grid_worker_a, officer_b,
                                                                             client_for):
    c = make_campaign(regions["district"])
    bedridden = make_residents(town["B-a1-0"], 2, vulnerable=int(Vulnerable.LIMITED_MOBILITY | Vulnerable.ELDERLY))
    make_residents(town["B-a1-1"], 1, vulnerable=int(Vulnerable.ELDERLY))  # elderly but mobile: not on the list
    make_residents(town["B-b1-0"], 1, vulnerable=int(Vulnerable.LIMITED_MOBILITY))  # street B
    swab([bedridden[0]], campaign=c)
    r = client_for(grid_worker_a).get(f"{API}/campaigns/{c.pk}/door-to-door")
    assert r.status_code == 200
    body = r.json()
    assert [b["building"] for b in body] == ["B-a1-0"]
    persons = body[0]["persons"]
    assert [p["sampled"] for p in persons] == [True, False]
    assert persons[0]["phone"].startswith("139")  # grid workers phone residents: unmasked
    todo = client_for(grid_worker_a).get(f"{API}/campaigns/{c.pk}/door-to-door?only_unsampled=true").json()
    assert [p["id"] for p in todo[0]["persons"]] == [bedridden[1].pk]
    log = AuditLog.objects.filter(action="person.list", username="grid_worker_a").order_by("id").first()
    assert log.detail["list"] == "testing.door_to_door" and log.detail["count"] == 2
    masked = client_for(officer_b).get(f"{API}/campaigns/{c.pk}/door-to-door").json()
    assert [b["building"] for b in masked] == ["B-b1-0"] and "*" in masked[0]["persons"][0]["phone"]


# --- positivity --------------------------------------------------------------------------------------------------------


def test_positivity_per_area_recommends_allowed_pool_sizes(town, regions, commander, client_for):
    from jingkong.people.models import Person

    c = make_campaign(regions["district"], pool_size=10)
    a1 = list(Person.objects.filter(grid=regions["grid_a1"]).order_by("id"))
    a2 = list(Person.objects.filter(grid=regions["grid_a2"]).order_by("id"))
    day = T0 - dt.timedelta(days=1)
    swab(a1[:10], campaign=c, at=day, outcome="positive")
    swab(a1[10:], campaign=c, at=day, outcome="negative")
    mark_positive(a1[0], day)
    mark_positive(a1[1], day)
    swab(a2[:10], at=day, outcome="negative")
    swab(a2[10:], at=T0 - dt.timedelta(days=30), outcome="positive")  # outside the 7-day window
    r = client_for(commander).get(f"{API}/campaigns/{c.pk}/positivity?level=grid&days=7")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["pool_sizes_allowed"] == [1, 5, 10]
    rows = {row["code"]: row for row in body["rows"]}
    assert set(rows) == {"330206002001001", "330206002001002", "330206004001001", "330206004001002"}
    g1, g2, b1 = rows["330206002001001"], rows["330206002001002"], rows["330206004001001"]
    assert (g1["tested"], g1["positives"], g1["pools"], g1["pools_positive"]) == (20, 2, 2, 1)
    assert g1["positivity"] == 0.1 and g1["pool_positivity"] == 0.5
    assert g1["name"] == "第一网格"
    assert (g2["tested"], g2["positives"]) == (10, 0)
    assert b1["tested"] == 0 and b1["positivity"] is None
    # few tested: the current size stays (the default threshold is 200 people)
    assert g1["reason"] == "too_few_tested" and g1["recommended_pool_size"] == 10
    # enough tested: 10 % positivity → 5-in-1 (fewest tests among 1, 5, 10); none positive → the largest, 10
    low_bar = {row["code"]: row for row in client_for(commander).get(
        f"{API}/campaigns/{c.pk}/positivity?level=grid&min_tested=10").json()["rows"]}
    assert (low_bar["330206002001001"]["recommended_pool_size"], low_bar["330206002001001"]["reason"]) == (5, "positivity")
    assert low_bar["330206002001001"]["prevalence_used"] == 0.1
    assert low_bar["330206002001002"]["recommended_pool_size"] == 10
    street = client_for(commander).get(f"{API}/campaigns/{c.pk}/positivity?level=street").json()
    assert [row["code"] for row in street["rows"]] == ["330206002", "330206004"]
    bad = client_for(commander).get(f"{API}/campaigns/{c.pk}/positivity?level=building")
    assert bad.status_code == 422 and bad.json()["extra"]["field"] == "level"


def test_a_key_group_round_plans_only_that_group(town, regions, officer_a, client_for):
    from jingkong.geo.models import Venue
    from jingkong.testing.tests.campaign_helpers import make_building

    port = Venue.objects.create(code="V-PORT", name="码头", type="port_terminal", lon=121.805, lat=29.905,
                                grid=regions["grid_a1"])
    make_residents(town["B-a1-0"], 3, industry="port", employer="港务")
    commuter_home = make_building(regions["grid_b1"], "HOME-B")
    make_residents(commuter_home, 2, industry="port", employer="港务", workplace=port)  # lives in B, works in A
    make_residents(town["B-a2-0"], 4, industry="cold_chain")
    c = make_campaign(regions["street_a"])
    c.key_industry = "port"
    c.save()
    make_site(regions["grid_a1"])
    est = post(client_for(officer_a), f"{API}/campaigns/{c.pk}/plan").json()
    assert est["population"] == 5  # the port workers living or working in street A
    r = post(client_for(officer_a), f"{API}/campaigns/{c.pk}/assign-buildings")
    assert r.status_code == 200, r.content
    assert r.json()["buildings"] == 1 and r.json()["residents"] == 3  # only buildings in street A where they live


def test_a_key_group_rounds_door_to_door_list_names_only_residents_of_the_callers_area(
        town, regions, commander, officer_a, officer_b, client_for):
    """Regression: the door team visits homes, so a worker living in street B but working in street A is on street
    B's list — never on street A's (that leaked a person of another region, with their flat, to street A)."""
    from jingkong.geo.models import Venue

    port = Venue.objects.create(code="V-PORT2", name="码头", type="port_terminal", lon=121.805, lat=29.905,
                                grid=regions["grid_a1"])
    here = make_residents(town["B-a1-0"], 1, industry="port", vulnerable=int(Vulnerable.LIMITED_MOBILITY))
    commuter = make_residents(town["B-b1-0"], 1, industry="port", workplace=port,
                              vulnerable=int(Vulnerable.LIMITED_MOBILITY))  # lives in B, works in A
    c = make_campaign(regions["district"])
    c.key_industry = "port"
    c.save()

    def listed(user):
        body = client_for(user).get(f"{API}/campaigns/{c.pk}/door-to-door").json()
        return {p["id"] for b in body for p in b["persons"]}

    assert listed(officer_a) == {here[0].pk}
    assert listed(officer_b) == {commuter[0].pk}
    assert listed(commander) == {here[0].pk, commuter[0].pk}
    page = client_for(officer_a).get(f"/testing/campaigns/{c.pk}/")
    assert [d["building"] for d in page.context["door_counts"]] == ["B-a1-0"]


def test_a_site_closed_during_the_whole_window_gives_valid_json(town, regions, officer_a, client_for):
    """Regression: a site with no opening hours inside the round's window has no capacity there; its load was
    float('inf'), written as the bare word Infinity — not JSON, so clients could not read the answer."""
    import json

    c = make_campaign(regions["street_a"], starts_at=T0, hours=4)  # 16:30–20:30 local
    site = make_site(regions["grid_a1"], capacity=50)
    site.opens_at, site.closes_at = dt.time(21), dt.time(23)
    site.save()
    r = post(client_for(officer_a), f"{API}/campaigns/{c.pk}/assign-buildings")
    assert r.status_code == 200

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    body = json.loads(r.content, parse_constant=refuse)
    (load,) = body["sites"]
    assert load["capacity"] == 0 and load["load"] is None and load["residents_after_deadline"] == 40
