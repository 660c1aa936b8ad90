"""The services API and staff pages: scope, a volunteer's own requests, counts equal to their drill-down, bad input."""

from __future__ import annotations

import pytest

from jingkong.command import requests as svc
from jingkong.command.models import ServiceRequest
from jingkong.command.tests import test_services_fixtures as fx
from jingkong.command.tests.test_services_fixtures import make_resident, make_worker
from jingkong.conftest import make_user

pytestmark = pytest.mark.django_db
sv_now, sv_world = fx.sv_now, fx.sv_world  # shared fixtures
API = "/api/v1/command/services"


def _submit(grid, **kw):
    person, number = make_resident(grid, **{k: v for k, v in kw.items() if k in ("vulnerable", "phone")})
    req, _ = svc.request_submit(person=person, **{k: v for k, v in kw.items() if k not in ("vulnerable", "phone")})
    return req, number


def test_the_queue_shows_the_region_only_most_urgent_first(sv_world, officer_a, client_for):
    r = sv_world["regions"]
    food, _ = _submit(r["grid_a1"], category="food")
    urgent, _ = _submit(r["grid_a2"], category="medical_visit", subcategory="emergency")
    other_street, _ = _submit(r["grid_b1"], category="medical_visit", subcategory="emergency")
    body = client_for(officer_a).get(f"{API}/requests").json()
    refs = [i["ref"] for i in body["items"]]
    assert refs == [urgent.ref, food.ref] and body["count"] == 2
    assert other_street.ref not in str(body)
    item = body["items"][0]
    assert item["name_masked"] != urgent.person.name and "*" in item["name_masked"]
    assert item["escort_requested"] is True


def test_out_of_scope_request_is_not_found(sv_world, officer_a, client_for):
    req, _ = _submit(sv_world["regions"]["grid_b1"], category="food")
    c = client_for(officer_a)
    assert c.get(f"{API}/requests/{req.pk}").status_code == 404
    assert c.post(f"{API}/requests/{req.pk}/status", {"status": "in_progress"},
                  content_type="application/json").status_code == 404
    assert c.get(f"/command/services/{req.ref}/").status_code == 404
    req.refresh_from_db()
    assert req.status == "assigned"


def test_detail_is_audited_and_masks_the_phone_for_officers(sv_world, officer_a, client_for):
    from jingkong.access.models import AuditLog

    req, _ = _submit(sv_world["regions"]["grid_a1"], category="food", phone="13812345678", vulnerable=4)
    body = client_for(officer_a).get(f"{API}/requests/{req.pk}").json()
    assert body["phone"] == "138****5678" and body["vulnerable_groups"] == ["pregnant"]
    assert [h["status"] for h in body["history"]] == ["submitted", "assigned"]
    assert AuditLog.objects.filter(action="person.view", object_id=str(req.person_id)).exists()


def test_a_volunteer_sees_only_requests_assigned_to_them(sv_world, regions, client_for):
    volunteer_user = make_user("vol_a", "service_volunteer", regions["street_a"])
    grid = regions["grid_a1"]
    mine, _ = _submit(grid, category="food")
    others, _ = _submit(grid, category="garbage")
    worker = make_worker(grid.code, role="volunteer", user=volunteer_user)
    svc.request_assign(actor=None, scope=fx_scope(), req=mine, worker_id=worker.pk)
    c = client_for(volunteer_user)
    assert c.get(f"{API}/requests").status_code == 403  # no queue for volunteers
    listed = c.get(f"{API}/mine").json()
    assert [i["ref"] for i in listed] == [mine.ref]
    assert c.post(f"{API}/mine/{others.pk}/status", {"status": "delivered"},
                  content_type="application/json").status_code == 404
    ok = c.post(f"{API}/mine/{mine.pk}/status", {"status": "delivered"}, content_type="application/json")
    assert ok.status_code == 200 and ok.json()["status"] == "delivered"
    page = c.get("/command/services/mine/")
    assert page.status_code == 200 and mine.ref in page.content.decode() and others.ref not in page.content.decode()


def fx_scope():
    from jingkong.access.guard import EVERYTHING

    return EVERYTHING


def test_hotline_submission_by_id_number_is_idempotent(sv_world, officer_a, client_for):
    person, number = make_resident(sv_world["regions"]["grid_a1"])
    c = client_for(officer_a)
    body = {"id_number": number, "category": "medicine", "subcategory": "chronic_refill", "client_key": "hot-1"}
    first = c.post(f"{API}/requests", body, content_type="application/json")
    again = c.post(f"{API}/requests", body, content_type="application/json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["ref"] == again.json()["ref"] and first.json()["submitted_via"] == "hotline"
    assert ServiceRequest.objects.filter(person=person).count() == 1


@pytest.mark.parametrize("body,field", [
    ({"id_number": "330206195001010011", "category": "food"}, "id_number"),  # wrong check digit
    ({"id_number": "x", "category": "haircut"}, "category"),
    ({"person_id": 1, "category": "food", "description": "a\x00b"}, "description"),
])
def test_bad_input_is_a_422_naming_the_field(sv_world, officer_a, client_for, body, field):
    r = client_for(officer_a).post(f"{API}/requests", body, content_type="application/json")
    assert r.status_code == 422, r.content
    assert field in r.content.decode()


def test_a_person_of_another_street_cannot_be_named(sv_world, officer_a, client_for):
    _, number = make_resident(sv_world["regions"]["grid_b1"])
    r = client_for(officer_a).post(f"{API}/requests", {"id_number": number, "category": "food"},
                                   content_type="application/json")
    assert r.status_code == 404 and not ServiceRequest.objects.exists()


def test_wrong_steps_are_conflicts(sv_world, officer_a, client_for):
    req, _ = _submit(sv_world["regions"]["grid_a1"], category="food")
    c = client_for(officer_a)
    assert c.post(f"{API}/requests/{req.pk}/status", {"status": "cancelled"},
                  content_type="application/json").status_code == 422  # no reason given
    assert c.post(f"{API}/requests/{req.pk}/status", {"status": "delivered"},
                  content_type="application/json").status_code == 200
    assert c.post(f"{API}/requests/{req.pk}/status", {"status": "cancelled", "note": "x"},
                  content_type="application/json").status_code == 409


def test_counts_equal_the_sum_of_their_drill_down(sv_world, commander, client_for):
    r = sv_world["regions"]
    for grid, cat in (("grid_a1", "food"), ("grid_a1", "garbage"), ("grid_a2", "medicine"), ("grid_b1", "food"),
                      ("grid_b2", "psychological")):
        _submit(r[grid], category=cat)
    c = client_for(commander)
    top = c.get(f"{API}/counts").json()
    assert top["total"] == ServiceRequest.objects.count() == 5
    assert sum(row["count"] for row in top["by_region"]) == top["total"]
    assert sum(top["by_category"].values()) == sum(top["by_status"].values()) == top["total"]
    for row in top["by_region"]:  # street → community → grid: every level adds up to the row above
        street = c.get(f"{API}/counts", {"region": row["drill"]}).json()
        assert street["total"] == row["count"] and sum(x["count"] for x in street["by_region"]) == row["count"]
        for sub in street["by_region"]:
            community = c.get(f"{API}/counts", {"region": sub["drill"]}).json()
            assert sum(x["count"] for x in community["by_region"]) == sub["count"]
            for grid_row in community["by_region"]:
                listed = c.get(f"{API}/counts", {"region": grid_row["drill"]}).json()["total"]
                assert listed == grid_row["count"]
    filtered = c.get(f"{API}/counts", {"category": "food"}).json()
    assert filtered["total"] == 2 and sum(row["count"] for row in filtered["by_region"]) == 2


def test_counts_match_the_operational_list(sv_world, officer_a, client_for):
    r = sv_world["regions"]
    for grid in ("grid_a1", "grid_a1", "grid_a2"):
        _submit(r[grid], category="food")
    c = client_for(officer_a)
    counts = c.get(f"{API}/counts", {"open": "true"}).json()
    listed = c.get(f"{API}/requests", {"open": "true"}).json()["count"]
    assert counts["total"] == listed == 3
    for row in counts["by_region"]:
        assert c.get(f"{API}/requests", {"open": "true", "region": row["drill"]}).json()["count"] == row["count"]


def test_counts_of_another_region_are_not_found(sv_world, officer_a, client_for):
    assert client_for(officer_a).get(f"{API}/counts", {"region": "330206004"}).status_code == 404


def test_staff_pages_render(sv_world, officer_a, client_for):
    req, _ = _submit(sv_world["regions"]["grid_a1"], category="medical_visit", subcategory="dialysis")
    c = client_for(officer_a)
    for url in ("/command/services/", "/command/services/?view=overdue", "/command/services/new/",
                f"/command/services/{req.ref}/", "/command/services/counts/", "/command/services/mine/"):
        resp = c.get(url)
        assert resp.status_code == 200, url
    assert req.ref in c.get("/command/services/").content.decode()


def test_staff_page_actions(sv_world, officer_a, client_for):
    grid = sv_world["regions"]["grid_a1"]
    req, _ = _submit(grid, category="food")
    other = make_worker(grid.code, role="volunteer", name="志愿者丙")
    c = client_for(officer_a)
    c.post(f"/command/services/{req.ref}/assign/", {"worker_id": other.pk})
    c.post(f"/command/services/{req.ref}/status/", {"status": "in_progress"})
    req.refresh_from_db()
    assert req.assignee == other and req.status == "in_progress"
    person, number = make_resident(grid)
    resp = c.post("/command/services/new/", {"id_number": number, "category": "food", "via": "hotline",
                                             "client_key": "page-1"})
    assert resp.status_code == 302 and ServiceRequest.objects.filter(person=person, submitted_via="hotline").exists()
    bad = c.post("/command/services/new/", {"id_number": "123", "category": "food"})
    assert bad.status_code == 422


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_pages_render_with_data_in_both_languages(sv_world, commander, client_for, language):
    from django.test import Client

    req, _ = _submit(sv_world["regions"]["grid_a1"], category="medical_visit", subcategory="chemotherapy",
                     vulnerable=1)
    c = client_for(commander)
    c.cookies["django_language"] = language
    for url in ("/command/services/", f"/command/services/{req.ref}/", "/command/services/counts/",
                "/command/services/counts/?region=330206002", "/command/supplies/"):
        resp = c.get(url, HTTP_ACCEPT_LANGUAGE=language)
        assert resp.status_code == 200, (url, language)
    detail = c.get(f"/command/services/{req.ref}/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert req.ref in detail and ("chemotherapy" in detail if language == "en" else True)
    public = Client().get("/command/help/", HTTP_ACCEPT_LANGUAGE=language)
    assert public.status_code == 200


def test_the_queue_page_does_not_query_per_row(sv_world, officer_a, client_for, django_assert_max_num_queries):
    for _ in range(6):
        _submit(sv_world["regions"]["grid_a1"], category="food")
    c = client_for(officer_a)
    c.get("/command/services/")
    with django_assert_max_num_queries(16):
        assert c.get("/command/services/").status_code == 200
