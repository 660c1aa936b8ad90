"""Rounds, areas and sites through the API: validation against the policy in force, scope, state transitions, events."""

from __future__ import annotations

import datetime as dt

import pytest

from jingkong.conftest import make_user
from jingkong.core.models import DomainEvent
from jingkong.testing.models import Campaign, CampaignArea, SamplingSite
from jingkong.testing.tests.campaign_helpers import activate_policy, make_campaign, make_site

pytestmark = pytest.mark.django_db

API = "/api/v1/testing"


@pytest.fixture
def policy(regions, frozen_clock):
    return activate_policy(regions)


def post(client, url, body, method="post"):
    return getattr(client, method)(url, body, content_type="application/json")


def _round(region_code="330206002", **extra):
    body = {"name": "第一轮全员核酸", "region_code": region_code, "starts_at": "2022-01-01T18:00:00+08:00",
            "deadline": "2022-01-02T12:00:00+08:00"}
    body.update(extra)
    return body


# --- campaigns -------------------------------------------------------------------------------------------------------


def test_create_a_round_with_policy_defaults(policy, officer_a, client_for):
    r = post(client_for(officer_a), f"{API}/campaigns", _round())
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["code"] == "R20220101-330206002" and body["status"] == "planned"
    assert body["pool_size"] == 10  # the largest size the 8th edition allows
    assert body["policy_profile"].startswith("cn-8th-2021 v") and body["created_by"] == "officer_a"
    event = DomainEvent.objects.get(type="testing.campaign_created")
    assert event.region_code == "330206002" and event.payload["pool_size"] == 10
    again = post(client_for(officer_a), f"{API}/campaigns", _round())
    assert again.json()["code"] == "R20220101-330206002-2"  # codes stay unique


@pytest.mark.parametrize(("changes", "field"), [
    ({"pool_size": 20}, "pool_size"),  # 20-in-1 is not allowed by the 8th edition
    ({"deadline": "2022-01-01T17:00:00+08:00"}, "deadline"),
    ({"deadline": "2022-03-01T17:00:00+08:00"}, "deadline"),
    ({"mode": "parachute"}, "mode"),
    ({"starts_at": "9999-12-30T08:00:00+08:00", "deadline": "9999-12-31T08:00:00+08:00"}, "starts_at"),
    ({"key_industry": "bakery"}, "key_industry"),
    ({"region_code": "330206004"}, "region_code"),  # street B: outside officer A's area
    ({"region_code": "999999"}, "region_code"),
])
def test_bad_rounds_are_refused_naming_the_field(policy, officer_a, client_for, changes, field):
    r = post(client_for(officer_a), f"{API}/campaigns", _round(**changes))
    assert r.status_code == 422, r.content
    assert r.json()["extra"]["field"] == field
    assert not Campaign.objects.exists()


@pytest.mark.parametrize(("url", "body"), [
    ("/sites", {**{"name": "x", "region_code": "330206002001001", "lon": 121.805, "lat": 29.905}, "desks": 10**9}),
    ("/sites", {"name": "x", "region_code": "330206002001001", "lon": 1e308, "lat": 29.905}),
    ("/sites", {"name": "x", "region_code": "330206002001001", "lon": 121.805, "lat": 29.905, "opens_at": "25:00"}),
    ("/campaigns", {**_round(), "pool_size": "ten"}),
    ("/campaigns", {**_round(), "name": "   "}),
])
def test_malformed_bodies_are_422(policy, officer_a, client_for, url, body):
    r = post(client_for(officer_a), f"{API}{url}", body)
    assert r.status_code == 422, r.content


def test_malformed_queries_are_422(policy, regions, officer_a, client_for):
    c = make_campaign(regions["street_a"])
    client = client_for(officer_a)
    for url in (f"/campaigns/{c.pk}/positivity?days=0", f"/campaigns/{c.pk}/positivity?level=x",
                "/pools/plan?prevalence=2", "/pools/plan", "/pools/plan?prevalence=0.01&max_size=0",
                "/campaigns?status=maybe", "/sites?kind=tent", "/key-industries/workers?workplace=abc"):
        assert client.get(f"{API}{url}").status_code == 422, url
    assert post(client, f"{API}/campaigns/{c.pk}/assign-buildings", {"utilisation": 2}).status_code == 422
    assert post(client, f"{API}/campaigns/{c.pk}/plan", {"tubes_available": -1}).status_code == 422
    assert post(client, f"{API}/sites/{make_site(regions['grid_a1']).pk}/samplers", {"user_ids": ["x"]},
                method="put").status_code == 422
    plan = client.get(f"{API}/pools/plan?prevalence=0.01").json()
    assert plan["optimal"]["size"] == 11 and plan["best_allowed"]["size"] == 10


def test_schema_errors_are_422_naming_the_field(policy, officer_a, client_for):
    r = post(client_for(officer_a), f"{API}/campaigns", {"name": "x", "region_code": "330206002",
                                                          "starts_at": "not a time", "deadline": "2022-01-02"})
    assert r.status_code == 422
    assert any("starts_at" in f["field"] for f in r.json()["extra"]["fields"])


def test_without_a_policy_in_force_a_round_cannot_be_planned(regions, officer_a, client_for, frozen_clock):
    r = post(client_for(officer_a), f"{API}/campaigns", _round())
    assert r.status_code == 422 and r.json()["code"] == "policy_not_active"


def test_a_district_round_is_visible_to_a_street_but_changed_only_at_district_level(
        policy, commander, officer_a, officer_b, client_for):
    c = post(client_for(commander), f"{API}/campaigns", _round("330206")).json()
    ours = post(client_for(officer_b), f"{API}/campaigns", _round("330206004", name="大碶街道加测")).json()
    listed = {x["code"] for x in client_for(officer_a).get(f"{API}/campaigns").json()}
    assert listed == {c["code"]}  # the district round, not street B's own round
    assert client_for(officer_a).get(f"{API}/campaigns/{ours['id']}").status_code == 404
    refused = post(client_for(officer_a), f"{API}/campaigns/{c['id']}", {"name": "改名"}, method="patch")
    assert refused.status_code == 403
    assert post(client_for(officer_a), f"{API}/campaigns/{c['id']}/start", {}).status_code == 403
    ok = post(client_for(commander), f"{API}/campaigns/{c['id']}", {"name": "改名", "pool_size": 5}, method="patch")
    assert ok.status_code == 200 and ok.json()["pool_size"] == 5
    assert post(client_for(commander), f"{API}/campaigns/{c['id']}", {"pool_size": 20}, method="patch").status_code == 422


def test_start_and_close(policy, officer_a, client_for, frozen_clock):
    c = post(client_for(officer_a), f"{API}/campaigns", _round()).json()
    client = client_for(officer_a)
    started = post(client, f"{API}/campaigns/{c['id']}/start", {})
    assert started.status_code == 200 and started.json()["status"] == "running"
    # started before its planned start (18:00 local): the round starts now
    assert dt.datetime.fromisoformat(started.json()["starts_at"]) == frozen_clock
    assert post(client, f"{API}/campaigns/{c['id']}/start", {}).status_code == 409
    changed = post(client, f"{API}/campaigns/{c['id']}", {"starts_at": "2022-01-01T20:00:00+08:00"}, method="patch")
    assert changed.status_code == 409 and changed.json()["extra"]["field"] == "starts_at"
    closed = post(client, f"{API}/campaigns/{c['id']}/close", {"reason": "完成"})
    assert closed.json()["status"] == "closed"
    assert post(client, f"{API}/campaigns/{c['id']}", {"name": "x"}, method="patch").status_code == 409
    assert post(client, f"{API}/campaigns/{c['id']}/areas", {"region_code": "330206002001"}).status_code == 409
    types = list(DomainEvent.objects.filter(type__startswith="testing.campaign").values_list("type", flat=True)
                 .order_by("id"))
    assert types == ["testing.campaign_created", "testing.campaign_started", "testing.campaign_closed"]


# --- areas -----------------------------------------------------------------------------------------------------------


def test_areas_take_zone_defaults_and_household_tubes_only_where_allowed(policy, commander, officer_a, client_for):
    c = post(client_for(commander), f"{API}/campaigns", _round("330206")).json()
    url = f"{API}/campaigns/{c['id']}/areas"
    client = client_for(officer_a)  # a street officer plans the street's part of the district round
    lockdown = post(client, url, {"region_code": "330206002001001", "zone_type": "lockdown", "mode": "building",
                                  "one_tube_per_household": True})
    assert lockdown.status_code == 200, lockdown.content
    area = lockdown.json()
    assert (area["pool_size"], area["mode"], area["one_tube_per_household"]) == (1, "building", True)
    assert "封控区" in area["reason"] and "单管" in area["reason"]  # the zone and pool size by their labels (zh-hans)
    control = post(client, url, {"region_code": "330206002001002", "zone_type": "control"})
    assert control.json()["pool_size"] == 10 and control.json()["mode"] == "street"
    refused = post(client, url, {"region_code": "330206002001002", "zone_type": "control",
                                 "one_tube_per_household": True})
    assert refused.status_code == 422 and refused.json()["extra"]["field"] == "one_tube_per_household"
    assert post(client, url, {"region_code": "330206002001002", "zone_type": "high_risk"}).json()["extra"]["field"] \
        == "zone_type"  # a 9th-edition zone type under the 8th edition
    assert post(client, url, {"region_code": "330206002001002", "pool_size": 20}).json()["extra"]["field"] == "pool_size"
    assert post(client, url, {"region_code": "330206004001001"}).status_code == 422  # street B
    assert post(client, url, {"region_code": "330206"}).status_code == 422  # the round's own region
    # replaced, not duplicated
    post(client, url, {"region_code": "330206002001002", "pool_size": 5})
    assert CampaignArea.objects.filter(campaign_id=c["id"]).count() == 2
    areas = client.get(url).json()
    assert [(a["region_code"], a["pool_size"]) for a in areas] == [("330206002001001", 1), ("330206002001002", 5)]
    area_id = areas[1]["id"]
    assert client_for(commander).delete(f"{url}/{area_id}").status_code == 204
    assert DomainEvent.objects.filter(type="testing.campaign_area_removed").count() == 1


def test_a_street_sees_only_the_areas_that_concern_it(policy, regions, officer_a, officer_b, client_for):
    c = make_campaign(regions["district"])
    CampaignArea.objects.create(campaign=c, region=regions["grid_b1"], region_code="330206004001001", mode="building",
                                pool_size=1)
    CampaignArea.objects.create(campaign=c, region=regions["street_a"], region_code="330206002", mode="fixed",
                                pool_size=5)
    assert [a["region_code"] for a in client_for(officer_a).get(f"{API}/campaigns/{c.pk}/areas").json()] == ["330206002"]
    b_area = CampaignArea.objects.get(region_code="330206004001001")
    assert client_for(officer_a).delete(f"{API}/campaigns/{c.pk}/areas/{b_area.pk}").status_code == 404
    assert client_for(officer_b).delete(f"{API}/campaigns/{c.pk}/areas/{b_area.pk}").status_code == 204


# --- sites -----------------------------------------------------------------------------------------------------------


def _site(**extra):
    body = {"name": "新碶一网格采样点", "region_code": "330206002001001", "lon": 121.805, "lat": 29.905, "desks": 3,
            "staff": 6, "capacity_per_hour": 360, "opens_at": "06:00", "closes_at": "22:00"}
    body.update(extra)
    return body


def test_sites_are_created_inside_the_area_and_validated(policy, officer_a, client_for):
    client = client_for(officer_a)
    r = post(client, f"{API}/sites", _site())
    assert r.status_code == 201, r.content
    site = r.json()
    assert site["code"] == "S-330206002001001" and site["capacity_per_hour"] == 360 and site["opens_at"] == "06:00:00"
    assert DomainEvent.objects.filter(type="testing.site_created", region_code="330206002001001").exists()
    for changes, field in (({"lon": 121.9}, "lon"), ({"region_code": "330206004001001", "lon": 121.825}, "region_code"),
                           ({"kind": "tent"}, "kind")):
        bad = post(client, f"{API}/sites", _site(**changes))
        assert bad.status_code == 422 and bad.json()["extra"]["field"] == field, (changes, bad.content)
    assert post(client, f"{API}/sites", _site(capacity_per_hour=0)).status_code == 422
    assert post(client, f"{API}/sites", _site(desks=-1)).status_code == 422
    assert SamplingSite.objects.count() == 1
    upd = post(client, f"{API}/sites/{site['id']}", {"staff": 4, "closes_at": "20:00"}, method="patch")
    assert upd.status_code == 200 and upd.json()["staff"] == 4 and upd.json()["closes_at"] == "20:00:00"
    assert post(client, f"{API}/sites/{site['id']}", {"lon": 121.95}, method="patch").status_code == 422


def test_a_rounds_own_site_must_lie_in_the_rounds_region(policy, regions, officer_a, commander, client_for):
    street_round = make_campaign(regions["street_b"])
    r = post(client_for(commander), f"{API}/sites", _site(campaign_id=street_round.pk))
    assert r.status_code == 422 and r.json()["extra"]["field"] == "campaign_id"
    district = make_campaign(regions["district"])
    ok = post(client_for(officer_a), f"{API}/sites", _site(campaign_id=district.pk))
    assert ok.status_code == 201 and ok.json()["campaign_code"] == district.code
    assert post(client_for(officer_a), f"{API}/sites", _site(campaign_id=street_round.pk)).json()["extra"]["field"] \
        == "campaign_id"


def test_samplers_must_be_samplers_of_the_area(policy, regions, officer_a, client_for):
    site = make_site(regions["grid_a1"])
    sampler = make_user("sampler_a", "sampler", regions["grid_a1"])
    sampler_b = make_user("sampler_b", "sampler", regions["street_b"])
    clerk = make_user("clerk_a", "grid_worker", regions["grid_a1"])
    url = f"{API}/sites/{site.pk}/samplers"
    client = client_for(officer_a)
    ok = post(client, url, {"user_ids": [sampler.pk]}, method="put")
    assert ok.status_code == 200 and [s["username"] for s in ok.json()["samplers"]] == ["sampler_a"]
    for user in (sampler_b, clerk):
        bad = post(client, url, {"user_ids": [sampler.pk, user.pk]}, method="put")
        assert bad.status_code == 422 and bad.json()["extra"]["user_id"] == user.pk
    assert list(site.samplers.values_list("username", flat=True)) == ["sampler_a"]
    assert post(client, url, {"user_ids": []}, method="put").json()["samplers"] == []
    event = DomainEvent.objects.filter(type="testing.site_samplers_set").order_by("id").last()
    assert event.payload["removed"] == [sampler.pk]


def test_deactivating_a_site_lists_the_rounds_to_replan(policy, regions, officer_a, client_for):
    from jingkong.testing.models import SiteAssignment
    from jingkong.testing.tests.campaign_helpers import make_building

    site = make_site(regions["grid_a1"])
    c = make_campaign(regions["street_a"], status="running")
    b = make_building(regions["grid_a1"], "B-x")
    SiteAssignment.objects.create(campaign=c, building=b, site=site, region_code=b.grid.code, residents=3,
                                  slot_start=c.starts_at, slot_end=c.starts_at + dt.timedelta(minutes=30))
    r = post(client_for(officer_a), f"{API}/sites/{site.pk}/deactivate", {"reason": "下雨"})
    assert r.status_code == 200, r.content
    assert r.json()["site"]["active"] is False
    assert r.json()["assignments_to_redo"] == [{"campaign": c.code, "buildings": 1}]
    listed = client_for(officer_a).get(f"{API}/sites?active=false").json()
    assert [s["id"] for s in listed] == [site.pk]


def test_person_lists_need_person_view(policy, regions, client_for):
    analyst = make_user("analyst_a", "analyst", regions["street_a"])
    c = make_campaign(regions["street_a"])
    client = client_for(analyst)
    assert client.get(f"{API}/campaigns/{c.pk}").status_code == 200
    assert client.get(f"{API}/campaigns/{c.pk}/door-to-door").status_code == 403
    assert client.get(f"{API}/key-industries/workers").status_code == 403
    assert post(client, f"{API}/campaigns/{c.pk}/areas", {"region_code": "330206002001"}).status_code == 403


def test_ids_and_pages_beyond_the_databases_range_are_not_a_server_error(policy, regions, officer_a, client_for):
    """Regression: an id or page number larger than a 64-bit integer in a query or body gave a 500 (OverflowError on
    SQLite, an out-of-range OFFSET on both databases)."""
    c = make_campaign(regions["street_a"])
    site = make_site(regions["grid_a1"])
    huge = 10 ** 23
    client = client_for(officer_a)
    listed = client.get(f"{API}/campaigns/{c.pk}/assignments?site_id={huge}")
    assert listed.status_code == 200 and listed.json()["count"] == 0
    assert client.get(f"{API}/key-industries/workers?workplace={huge}").json()["count"] == 0
    for url in (f"/campaigns/{c.pk}/assignments?page={huge}", f"/key-industries/workers?page={huge}"):
        r = client.get(f"{API}{url}")
        assert r.status_code == 422 and r.json()["extra"]["field"] == "page", url
    r = post(client, f"{API}/sites/{site.pk}/samplers", {"user_ids": [huge]}, method="put")
    assert r.status_code == 422 and r.json()["extra"]["field"] == "user_ids"
    assert client.get(f"/testing/campaigns/{c.pk}/slots.csv?site={huge}").status_code == 200
    assert client.get(f"/testing/key-industries/workers/?workplace={huge}").status_code == 200


def test_times_beyond_the_calendar_are_422(policy, officer_a, client_for):
    """Regression: a naive start in year 1 (or an offset pushing a time past year 9999) raised OverflowError (500)."""
    client = client_for(officer_a)
    for starts_at, deadline in (("0001-01-01T00:00:00", "0001-01-02T00:00:00"),
                                ("9999-12-31T20:00:00-10:00", "9999-12-31T23:00:00-10:00")):
        r = post(client, f"{API}/campaigns", _round(starts_at=starts_at, deadline=deadline))
        assert r.status_code == 422 and r.json()["extra"]["field"] == "starts_at", r.content
    form = client.post("/testing/campaigns/new/", {"name": "x", "region_code": "330206002",
                                                   "starts_at": "0001-01-01T00:00", "deadline": "0001-01-02T00:00"})
    assert form.status_code == 200 and "starts_at" in form.context["errors"]


def test_codes_are_plain_tokens(policy, regions, officer_a, client_for):
    """Regression: a round code with a line break was accepted, and the round's spreadsheet download (its code in the
    file name header) then failed with a 500."""
    client = client_for(officer_a)
    for code in ("R1\nX", "R 1", 'R"1', "R\t1"):
        r = post(client, f"{API}/campaigns", _round(code=code))
        assert r.status_code == 422 and r.json()["extra"]["field"] == "code", code
        r = post(client, f"{API}/sites", {"name": "x", "region_code": "330206002001001", "lon": 121.805, "lat": 29.905,
                                          "code": code})
        assert r.status_code == 422 and r.json()["extra"]["field"] == "code", code
    ok = post(client, f"{API}/campaigns", _round(code="R1-新碶_2"))
    assert ok.status_code == 201
    sheet = client.get(f"/testing/campaigns/{ok.json()['id']}/slots.csv")
    assert sheet.status_code == 200 and "attachment" in sheet["Content-Disposition"]


def test_nul_characters_are_refused_or_match_nothing(policy, regions, officer_a, client_for):
    """Regression: PostgreSQL text cannot hold a NUL character — a name, note, reason or filter containing one was a
    DataError (500) there, and was stored as is on SQLite."""
    c = make_campaign(regions["street_a"])
    site = make_site(regions["grid_a1"])
    client = client_for(officer_a)
    nul = "a\x00b"
    writes = [
        ("post", "/campaigns", _round(name=nul), "name"),
        ("post", "/campaigns", _round(note=nul), "note"),
        ("post", "/campaigns", _round(region_code="330206002\x00"), "region_code"),
        ("post", "/sites", {"name": nul, "region_code": "330206002001001", "lon": 121.805, "lat": 29.905}, "name"),
        ("patch", f"/sites/{site.pk}", {"name": nul}, "name"),
        ("patch", f"/campaigns/{c.pk}", {"note": nul}, "note"),
        ("post", f"/campaigns/{c.pk}/close", {"reason": nul}, "reason"),
        ("post", f"/campaigns/{c.pk}/areas", {"region_code": "330206002001001", "reason": nul}, "reason"),
        ("post", f"/sites/{site.pk}/deactivate", {"reason": nul}, "reason"),
    ]
    for method, url, body, field in writes:
        r = post(client, f"{API}{url}", body, method=method)
        assert r.status_code == 422 and r.json()["extra"]["field"] == field, (url, r.content)
    c.refresh_from_db()
    site.refresh_from_db()
    assert c.status == "planned" and site.active and Campaign.objects.count() == 1
    for url, field in ((f"/campaigns?q={nul}", "q"), (f"/campaigns/{c.pk}/door-to-door?building={nul}", "building"),
                       (f"/key-industries/workers?employer={nul}", "employer"), ("/sites?region=330206002\x00", "region"),
                       (f"/campaigns/{c.pk}/assignments?region=330206002\x00", "region")):
        r = client.get(f"{API}{url}")
        assert r.status_code == 422 and r.json()["extra"]["field"] == field, url
    for url in (f"/testing/?q={nul}", f"/testing/campaigns/{c.pk}/door-to-door/?building={nul}",
                f"/testing/key-industries/workers/?employer={nul}"):
        assert client.get(url).status_code == 422, url
