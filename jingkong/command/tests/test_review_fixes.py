"""Regression tests of the review of issue 7 (each fails without its fix): bad input that was a 500, evidence that
could be overwritten, a volunteer reaching other people's problems, job kinds, statuses without a worker, person data
in task titles, unaudited reads on the public status page, links that leave the site, CSRF on the public form."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from jingkong.command.models import Problem, ServiceRequest, Task
from jingkong.command.tests import directive_helpers as dh
from jingkong.command.tests import test_services_fixtures as fx
from jingkong.command.tests.directive_helpers import JPEG, upload
from jingkong.command.tests.test_services_fixtures import make_resident

pytestmark = pytest.mark.django_db
now, policy, photos_dir, _fresh_policy_cache = dh.now, dh.policy, dh.photos_dir, dh._fresh_policy_cache  # fixtures
sv_now, sv_world = fx.sv_now, fx.sv_world
IN_A1 = {"lon": 121.805, "lat": 29.905}


# --- directives ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("deadline", ["2030-01-01T10:00:00", "9999-12-31T23:59:59+08:00"])
def test_a_deadline_without_time_zone_or_years_ahead_is_a_422_not_a_500(regions, policy, now, commander, client_for,
                                                                          deadline):
    c = client_for(commander)
    c.raise_request_exception = False
    r = c.post("/api/v1/command/directives", {
        "title": "扫楼", "text": "今日完成", "category": "sampling_sweep", "region_codes": [regions["street_a"].code],
        "deadline": deadline}, content_type="application/json")
    assert r.status_code == 422, r.content
    assert "deadline" in r.content.decode()
    assert not Task.objects.exists()


@pytest.mark.parametrize("url", ["/\\evil.example/login", "/a\tb", "/x\u202ey"])
def test_a_link_attachment_cannot_point_off_site_through_a_backslash_or_control_characters(
        regions, policy, now, commander, client_for, url):
    r = client_for(commander).post("/api/v1/command/directives", {
        "title": "扫楼", "text": "今日完成", "category": "other", "region_codes": [regions["street_a"].code],
        "deadline": (now + dt.timedelta(hours=4)).isoformat(),
        "attachments": [{"type": "link", "url": url, "label": "doc"}]}, content_type="application/json")
    assert r.status_code == 422, r.content
    assert "attachments" in r.content.decode()


# --- problems ------------------------------------------------------------------------------------------------------


def _report(client, **body):
    return client.post("/api/v1/command/problems", {"category": "other", "description": "路口无人值守", **body},
                       content_type="application/json")


def test_a_volunteer_adds_a_photo_only_to_their_own_problem(regions, policy, now, photos_dir, grid_worker_a,
                                                           volunteer_a, client_for):
    theirs = _report(client_for(grid_worker_a), **IN_A1).json()
    mine = _report(client_for(volunteer_a), **IN_A1).json()
    v = client_for(volunteer_a)
    r = v.post(f"/api/v1/command/problems/{theirs['id']}/photo", {"file": upload()})
    assert r.status_code == 404, r.content  # a volunteer does not see the others' problems
    assert not Problem.objects.get(pk=theirs["id"]).photo
    ok = v.post(f"/api/v1/command/problems/{mine['id']}/photo", {"file": upload()})
    assert ok.status_code == 200, ok.content


def test_a_problem_photo_is_never_replaced(regions, policy, now, photos_dir, grid_worker_a, client_for):
    c = client_for(grid_worker_a)
    p = _report(c, **IN_A1).json()
    assert c.post(f"/api/v1/command/problems/{p['id']}/photo", {"file": upload()}).status_code == 200
    first = Problem.objects.get(pk=p["id"]).photo
    again = c.post(f"/api/v1/command/problems/{p['id']}/photo", {"file": upload(JPEG, "x.jpg")})
    assert again.status_code == 409, again.content
    assert Problem.objects.get(pk=p["id"]).photo == first


def test_a_problem_is_routed_only_to_a_region_that_exists(regions, policy, now, admin_user, client_for):
    c = client_for(admin_user)
    p = _report(c, **IN_A1).json()
    r = c.post(f"/api/v1/command/problems/{p['id']}/updates", {"responsible_code": regions["grid_a1"].code[:7]},
               content_type="application/json")
    assert r.status_code == 404, r.content
    assert Problem.objects.get(pk=p["id"]).responsible_code == p["responsible_code"]


# --- services ------------------------------------------------------------------------------------------------------


def test_autoclose_is_a_registered_job_kind():
    from jingkong.core import jobs

    assert "services.autoclose" in jobs.registered_kinds()


def test_staff_cannot_mark_a_request_assigned_without_a_worker(sv_world, officer_a, client_for):
    from jingkong.command import requests as svc

    person, _ = make_resident(sv_world["regions"]["grid_a2"])  # no worker in grid A2
    req, _ = svc.request_submit(person=person, category="food")
    assert req.status == "submitted" and req.assignee is None
    client_for(officer_a).post(f"/command/services/{req.ref}/status/", {"status": "assigned"})
    req.refresh_from_db()
    assert req.status == "submitted"


def test_the_escort_task_title_does_not_carry_the_full_name(sv_world):
    from jingkong.command import requests as svc

    person, _ = make_resident(sv_world["regions"]["grid_a1"], vulnerable=8, name="王小明")
    req, _ = svc.request_submit(person=person, category="medical_visit", subcategory="dialysis")
    task = Task.objects.get(source="service", source_key=req.ref)
    assert "王小明" not in task.title and "王*明" in task.title


def test_the_requester_looking_up_a_request_is_an_audited_read(sv_world):
    from jingkong.access.models import AuditLog
    from jingkong.command import requests as svc

    person, _ = make_resident(sv_world["regions"]["grid_a1"], phone="13811113333")
    req, _ = svc.request_submit(person=person, category="food")
    c = Client()
    r = c.post("/command/help/status/", {"ref": req.ref, "phone": "13811113333"}, REMOTE_ADDR="10.9.9.9")
    assert r.status_code == 302
    reads = AuditLog.objects.filter(action="person.view", object_type="people.person", object_id=str(person.pk))
    assert reads.count() == 1 and reads.get().ip == "10.9.9.9"


def test_the_public_form_refuses_a_post_without_the_csrf_token(sv_world):
    person, number = make_resident(sv_world["regions"]["grid_a1"], phone="13811114444")
    c = Client(enforce_csrf_checks=True)
    r = c.post("/command/help/", {"how": "id", "id_number": number, "phone": "13811114444", "category": "food",
                                  "client_key": "k"})
    assert r.status_code == 403
    assert not ServiceRequest.objects.exists()
    page = c.get("/command/help/")  # with the token of the page, the same post goes through
    token = page.cookies["csrftoken"].value
    ok = c.post("/command/help/", {"how": "id", "id_number": number, "phone": "13811114444", "category": "food",
                                   "client_key": "k", "csrfmiddlewaretoken": token})
    assert ok.status_code == 302, ok.content.decode()[:500]
    assert ServiceRequest.objects.count() == 1
