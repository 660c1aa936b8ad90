"""The rounds-and-sites pages: scoped like the API, forms write through the services, person lists audited."""

from __future__ import annotations

import datetime as dt

import pytest

from jingkong.access.models import AuditLog
from jingkong.conftest import T0, make_user
from jingkong.people.models import Person, Vulnerable
from jingkong.testing.models import Campaign, CampaignArea, SamplingSite, SiteAssignment
from jingkong.testing.tests.campaign_helpers import (
    activate_policy,
    make_building,
    make_campaign,
    make_lab,
    make_residents,
    make_site,
    make_town,
    swab,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def town(regions, frozen_clock):
    activate_policy(regions)
    return make_town(regions)


def test_index_lists_the_rounds_of_the_area(town, regions, officer_a, client_for):
    ours = make_campaign(regions["street_a"], "R-A")
    district = make_campaign(regions["district"], "R-D")
    make_campaign(regions["street_b"], "R-B")
    page = client_for(officer_a).get("/testing/")
    assert page.status_code == 200
    text = page.content.decode()
    assert ours.code in text and district.code in text and "R-B" not in text
    assert "/testing/campaigns/new/" in text  # officers may plan
    assert "/testing/key-industries/" in text  # the section's sub-navigation


def test_new_round_form(town, regions, officer_a, client_for):
    client = client_for(officer_a)
    form = client.get("/testing/campaigns/new/")
    assert form.status_code == 200 and "330206002" in form.content.decode()
    bad = client.post("/testing/campaigns/new/", {"name": "第二轮", "region_code": "330206002",
                                                  "starts_at": "2022-01-02T08:00", "deadline": "2022-01-01T08:00",
                                                  "mode": "street", "pool_size": "10"})
    assert bad.status_code == 200 and "deadline" in bad.content.decode() and not Campaign.objects.exists()
    wrong = client.post("/testing/campaigns/new/", {"name": "第二轮", "region_code": "330206002",
                                                    "starts_at": "tomorrow", "deadline": "2022-01-02T20:00"})
    assert wrong.status_code == 200 and not Campaign.objects.exists()
    ok = client.post("/testing/campaigns/new/", {"name": "第二轮", "region_code": "330206002",
                                                 "starts_at": "2022-01-02T08:00", "deadline": "2022-01-02T20:00",
                                                 "mode": "street", "pool_size": "5", "key_industry": ""})
    c = Campaign.objects.get()
    assert ok.status_code == 302 and ok["Location"] == f"/testing/campaigns/{c.pk}/"
    assert c.pool_size == 5 and c.starts_at == dt.datetime(2022, 1, 2, 0, 0, tzinfo=dt.UTC)  # 08:00 local


def test_round_page_shows_the_estimate_areas_and_recommendations(town, regions, officer_a, client_for):
    c = make_campaign(regions["street_a"], hours=12)
    make_site(regions["grid_a1"], capacity=10)
    make_lab(regions["district"])
    CampaignArea.objects.create(campaign=c, region=regions["grid_a2"], region_code=regions["grid_a2"].code,
                                mode="building", pool_size=1, reason="封控区")
    make_residents(town["B-a1-0"], 1, vulnerable=int(Vulnerable.LIMITED_MOBILITY))
    page = client_for(officer_a).get(f"/testing/campaigns/{c.pk}/?tubes_available=3")
    assert page.status_code == 200
    text = page.content.decode()
    assert "tubes" in text and "封控区" in text  # tubes bind with 3 in stock; the area override is listed
    assert page.context["estimate"]["binding"] == "tubes"
    assert page.context["estimate"]["population"] == 41
    assert [r["code"] for r in page.context["positivity"]["rows"]] == ["330206002001"]
    assert page.context["door_counts"][0]["persons"] == 1
    bad = client_for(officer_a).get(f"/testing/campaigns/{c.pk}/?transport_hours=abc")
    assert bad.status_code == 200 and "送检用时" in bad.context["plan_error"]  # the field by its label, in Chinese


def test_round_pages_are_scoped(town, regions, officer_a, client_for):
    b = make_campaign(regions["street_b"])
    site_b = make_site(regions["grid_b1"])
    client = client_for(officer_a)
    for url in (f"/testing/campaigns/{b.pk}/", f"/testing/campaigns/{b.pk}/sites/",
                f"/testing/campaigns/{b.pk}/door-to-door/", f"/testing/campaigns/{b.pk}/slots.csv"):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/testing/campaigns/{b.pk}/start/").status_code == 404
    assert client.post(f"/testing/campaigns/{b.pk}/areas/", {"region_code": "330206004001001"}).status_code == 404
    a = make_campaign(regions["street_a"])
    assert client.get(f"/testing/campaigns/{a.pk}/sites/?site={site_b.pk}").status_code == 404
    assert client.post(f"/testing/campaigns/{a.pk}/sites/{site_b.pk}/deactivate/").status_code == 404
    assert SamplingSite.objects.get(pk=site_b.pk).active


def test_forms_on_the_round_page(town, regions, officer_a, client_for):
    c = make_campaign(regions["street_a"])
    client = client_for(officer_a)
    r = client.post(f"/testing/campaigns/{c.pk}/areas/", {"region_code": regions["grid_a1"].code,
                                                          "zone_type": "lockdown", "mode": "building",
                                                          "one_tube_per_household": "on"})
    assert r.status_code == 302
    area = CampaignArea.objects.get(campaign=c)
    assert (area.pool_size, area.one_tube_per_household) == (1, True)
    refused = client.post(f"/testing/campaigns/{c.pk}/areas/", {"region_code": regions["grid_a2"].code,
                                                                "pool_size": "20"}, follow=True)
    assert "pool_size" in refused.content.decode() and CampaignArea.objects.count() == 1
    assert client.get(f"/testing/campaigns/{c.pk}/start/").status_code == 405  # POST only
    assert client.post(f"/testing/campaigns/{c.pk}/start/").status_code == 302
    c.refresh_from_db()
    assert c.status == "running"
    client.post(f"/testing/campaigns/{c.pk}/update/", {"name": "改名", "pool_size": "5", "deadline": ""})
    c.refresh_from_db()
    assert (c.name, c.pool_size) == ("改名", 5)
    client.post(f"/testing/campaigns/{c.pk}/areas/{area.pk}/delete/")
    assert not CampaignArea.objects.exists()
    client.post(f"/testing/campaigns/{c.pk}/close/")
    c.refresh_from_db()
    assert c.status == "closed"


def test_site_board_assign_and_slots(town, regions, officer_a, client_for):
    c = make_campaign(regions["street_a"], starts_at=T0)
    client = client_for(officer_a)
    created = client.post(f"/testing/campaigns/{c.pk}/sites/new/", {
        "name": "一网格点", "kind": "temporary", "region_code": regions["grid_a1"].code, "lon": "121.805",
        "lat": "29.905", "desks": "2", "staff": "4", "capacity_per_hour": "200", "opens_at": "07:00",
        "closes_at": "21:00", "this_round_only": "on"})
    assert created.status_code == 302
    site = SamplingSite.objects.get()
    assert site.campaign_id == c.pk and site.capacity_per_hour == 200
    bad = client.post(f"/testing/campaigns/{c.pk}/sites/new/", {"name": "x", "region_code": regions["grid_a1"].code,
                                                               "lon": "east", "lat": "29.9"}, follow=True)
    assert "lon" in bad.content.decode() and SamplingSite.objects.count() == 1
    assert client.post(f"/testing/campaigns/{c.pk}/assign-buildings/", {"slot_minutes": "30"}).status_code == 302
    assert SiteAssignment.objects.filter(campaign=c).count() == 4
    swab(list(Person.objects.filter(grid=regions["grid_a1"])[:10]), campaign=c, site=site, at=T0)
    board = client.get(f"/testing/campaigns/{c.pk}/sites/?site={site.pk}")
    assert board.status_code == 200
    row = board.context["rows"][0]
    assert (row["buildings"], row["residents"], row["scans"], row["scans_last_hour"]) == (4, 40, 10, 10)
    assert len(board.context["chosen"]["slots"]) == 4
    sheet = client.get(f"/testing/campaigns/{c.pk}/slots.csv")
    lines = sheet.content.decode("utf-8-sig").strip().splitlines()
    assert sheet["Content-Type"].startswith("text/csv") and len(lines) == 5 and "B-a1-0" in sheet.content.decode()
    client.post(f"/testing/campaigns/{c.pk}/sites/{site.pk}/deactivate/")
    assert not SamplingSite.objects.get().active


def test_door_to_door_page_needs_person_view_and_is_audited(town, regions, officer_a, client_for):
    c = make_campaign(regions["street_a"])
    make_residents(town["B-a1-0"], 2, vulnerable=int(Vulnerable.LIMITED_MOBILITY))
    analyst = make_user("analyst_a", "analyst", regions["street_a"])
    assert client_for(analyst).get(f"/testing/campaigns/{c.pk}/door-to-door/").status_code == 403
    page = client_for(officer_a).get(f"/testing/campaigns/{c.pk}/door-to-door/")
    assert page.status_code == 200 and len(page.context["groups"][0]["persons"]) == 2
    assert AuditLog.objects.filter(action="person.list", username="officer_a",
                                   detail__list="testing.door_to_door").count() == 1


def test_key_industry_pages(town, regions, officer_a, client_for):
    home = make_building(regions["grid_a1"], "HOME")
    workers = make_residents(home, 3, industry="port", employer="港务公司")
    swab([workers[0]], at=T0 - dt.timedelta(hours=6))
    client = client_for(officer_a)
    page = client.get("/testing/key-industries/")
    assert page.status_code == 200 and "港务公司" in page.content.decode()
    assert page.context["totals"] == {"workers": 3, "compliant": 1, "due": 0, "overdue": 2, "never_sampled": 2}
    listed = client.get("/testing/key-industries/workers/", {"industry": "port", "employer": "港务公司",
                                                            "workplace": "0", "status": "overdue"})
    assert listed.status_code == 200 and len(listed.context["items"]) == 2
    assert AuditLog.objects.filter(detail__list="testing.key_industry_workers").count() == 1
    analyst = make_user("analyst_a", "analyst", regions["street_a"])
    assert client_for(analyst).get("/testing/key-industries/").status_code == 200
    assert client_for(analyst).get("/testing/key-industries/workers/").status_code == 403


def test_the_round_page_has_a_coverage_block():
    from django.template.loader import get_template
    from django.template.loader_tags import BlockNode

    template = get_template("testing/campaign_detail.html").template
    names = {node.name for node in template.nodelist.get_nodes_by_type(BlockNode)}
    assert "coverage" in names


def test_back_office_lists_rounds_and_sites_read_only(regions, admin_user, client_for):
    c = make_campaign(regions["street_a"], "R-ADMIN")
    make_site(regions["grid_a1"], "S-ADMIN")
    client = client_for(admin_user)
    assert "R-ADMIN" in client.get("/admin/testing/campaign/").content.decode()
    assert client.get(f"/admin/testing/campaign/{c.pk}/change/").status_code == 200
    assert "S-ADMIN" in client.get("/admin/testing/samplingsite/").content.decode()
    assert client.get("/admin/testing/campaign/add/").status_code == 403


def test_a_key_group_round_shows_its_group_on_the_index_and_the_rounds_page(town, regions, officer_a, client_for):
    """Regression: the pages called a ``get_key_industry_display`` the model does not have, so the group was blank."""
    from django.utils import translation

    from jingkong.people.models import Industry

    c = make_campaign(regions["street_a"], "R-PORT")
    c.key_industry = "port"
    c.save()
    client = client_for(officer_a)
    with translation.override("en"):
        label = str(Industry("port").label)
    client.cookies["django_language"] = "en"
    index = client.get("/testing/").content.decode()
    assert label in index
    detail = client.get(f"/testing/campaigns/{c.pk}/").content.decode()
    assert f"key group: {label}".lower() in detail.lower()


def test_the_rounds_page_with_a_bad_days_parameter_still_says_what_it_shows(town, regions, officer_a, client_for):
    c = make_campaign(regions["street_a"])
    page = client_for(officer_a).get(f"/testing/campaigns/{c.pk}/?days=abc")
    assert page.status_code == 200 and "天数" in page.context["positivity"]["error"]  # the field by its label
    assert page.context["positivity"]["days"] == 7 and page.context["positivity"]["min_tested"] == 200


def test_saving_a_rounds_name_keeps_a_deadline_with_seconds(town, regions, officer_a, client_for):
    """Regression: the settings form shows the deadline to the minute and sent it back, so saving the name moved a
    deadline of 20:00:30 to 20:00:00 (and, past the deadline of a running round, refused to save at all)."""
    c = make_campaign(regions["street_a"], status="running", starts_at=T0 - dt.timedelta(hours=20), hours=10)
    c.deadline = c.deadline + dt.timedelta(seconds=30)
    c.save()
    client = client_for(officer_a)
    page = client.get(f"/testing/campaigns/{c.pk}/")
    shown = page.context["campaign"].deadline.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%dT%H:%M")
    client.post(f"/testing/campaigns/{c.pk}/update/", {"name": "改名", "deadline": shown, "mode": "street",
                                                      "pool_size": "10", "note": ""})
    saved = type(c).objects.get(pk=c.pk)
    assert saved.name == "改名" and saved.deadline == c.deadline


def test_the_binding_constraint_is_named_in_the_pages_language(town, regions, officer_a, client_for):
    c = make_campaign(regions["street_a"])
    make_site(regions["grid_a1"], capacity=10)
    make_lab(regions["district"])
    client = client_for(officer_a)
    client.cookies["django_language"] = "en"
    page = client.get(f"/testing/campaigns/{c.pk}/?tubes_available=1")
    assert page.context["estimate"]["binding"] == "tubes"
    assert "Binding constraint: Tubes</strong>" in page.content.decode()  # the label, not the internal key


def test_every_round_page_route_answers_404_for_another_streets_round(town, regions, officer_a, client_for):
    """Page routes with parameters are not walked by the route guard test: walk them here (GET and POST), for a round,
    a site and an area of street B, as street A's officer."""
    import re

    from jingkong.testing import urls_campaigns

    b = make_campaign(regions["street_b"])
    site_b = make_site(regions["grid_b1"])
    area_b = CampaignArea.objects.create(campaign=b, region=regions["grid_b1"], region_code=regions["grid_b1"].code,
                                         mode="building", pool_size=1)
    values = {"campaign_id": b.pk, "site_id": site_b.pk, "area_id": area_b.pk}
    client = client_for(officer_a)
    walked = 0
    for pattern in urls_campaigns.urlpatterns:
        route = str(pattern.pattern)
        names = re.findall(r"<int:(\w+)>", route)
        if not names:
            continue
        url = "/testing/" + re.sub(r"<int:(\w+)>", lambda m: str(values[m.group(1)]), route)
        for method in ("get", "post"):
            r = getattr(client, method)(url, {"region_code": regions["grid_b1"].code, "name": "x", "lon": "121.825",
                                              "lat": "29.905"})
            assert r.status_code in (404, 405), (method, url, r.status_code)
            walked += r.status_code == 404
    assert walked >= 12
    b.refresh_from_db()
    assert b.status == "planned" and b.name == "全员核酸"
    assert CampaignArea.objects.filter(pk=area_b.pk).exists() and SamplingSite.objects.get(pk=site_b.pk).active
    assert SamplingSite.objects.count() == 1 and not SiteAssignment.objects.exists()
