"""Problems found: located on the map to a grid, routed by the profile's rule, tracked with deadlines and history,
escalated when overdue, counted by type and street; API and pages; bad input."""

from __future__ import annotations

import datetime as dt

import pytest

from jingkong.command.models import Problem, ProblemUpdate
from jingkong.command.tests import directive_helpers as dh
from jingkong.command.tests.directive_helpers import upload
from jingkong.core.models import DomainEvent

pytestmark = pytest.mark.django_db
now, policy, photos_dir, _fresh_policy_cache = dh.now, dh.policy, dh.photos_dir, dh._fresh_policy_cache  # fixtures
API = "/api/v1/command/problems"

# grid_a1 of the conftest district: the 0.01° square at (121.80, 29.90); grid_a2 next to it; street B from 121.82.
IN_A1 = {"lon": 121.805, "lat": 29.905}
IN_B1 = {"lon": 121.825, "lat": 29.905}


def _report(client, **body):
    return client.post(API, {"category": "other", "description": "路口无人值守", **body},
                       content_type="application/json")


def test_a_point_is_located_to_its_grid_and_routed_by_the_profile(regions, policy, now, grid_worker_a, client_for):
    c = client_for(grid_worker_a)
    r = _report(c, category="movement_in_lockdown", urgency="normal", **IN_A1)
    assert r.status_code == 201, r.content
    p = r.json()
    assert p["region_code"] == regions["grid_a1"].code
    assert p["responsible_code"] == regions["community_a"].code  # movement in lockdown: community (profile)
    assert p["deadline"].startswith((now + dt.timedelta(hours=24)).isoformat()[:16])
    critical = _report(c, category="other", urgency="critical", **IN_A1).json()
    assert critical["responsible_code"] == regions["street_a"].code
    assert DomainEvent.objects.filter(type="command.problem_reported").count() == 2
    assert ProblemUpdate.objects.filter(problem_id=p["id"]).count() == 1


@pytest.mark.parametrize("body, status, field", [
    ({"lon": 121.5, "lat": 29.0}, 422, "lon"),  # outside every grid
    ({"lon": 121.805}, 422, "lat"),
    ({}, 422, "region_code"),
    ({"lon": 500, "lat": 29.9}, 422, "lon"),
    ({"category": "nonsense", **IN_A1}, 422, "category"),
    ({"urgency": "panic", **IN_A1}, 422, "urgency"),
    ({"description": "", **IN_A1}, 422, "description"),
    ({"description": "a\x00b", **IN_A1}, 422, "description"),
    ({"region_code": "33020600200100x"}, 422, "region_code"),
    ({**IN_B1}, 404, ""),  # street B: outside a street-A worker's scope
    ({"region_code": "330206004001001"}, 404, ""),
])
def test_bad_reports(regions, policy, now, officer_a, client_for, body, status, field):
    r = _report(client_for(officer_a), **body)
    assert r.status_code == status, r.content
    assert field in r.content.decode()
    assert not Problem.objects.exists()


def test_without_the_directives_rules_reporting_says_so(regions, now, officer_a, client_for):
    r = _report(client_for(officer_a), **IN_A1)
    assert r.status_code in (404, 409) and not Problem.objects.exists()


def test_work_a_problem_to_resolution_with_history(regions, policy, now, officer_a, grid_worker_a, client_for):
    p = _report(client_for(grid_worker_a), urgency="normal", **IN_A1).json()
    c = client_for(officer_a)
    assert c.post(f"{API}/{p['id']}/updates", {"status": "resolved"},
                  content_type="application/json").status_code == 422  # needs a resolution
    assert c.post(f"{API}/{p['id']}/updates", {"responsible_code": regions["street_b"].code},
                  content_type="application/json").status_code == 404
    assert c.post(f"{API}/{p['id']}/updates", {"responsible_code": regions["grid_a2"].code},
                  content_type="application/json").status_code == 422  # not a region containing it
    r = c.post(f"{API}/{p['id']}/updates", {"responsible_code": regions["community_a"].code, "note": "社区处理"},
               content_type="application/json")
    assert r.status_code == 201, r.content
    r = c.post(f"{API}/{p['id']}/updates", {"status": "resolved", "resolution": "已安排志愿者值守"},
               content_type="application/json")
    assert r.status_code == 201
    detail = c.get(f"{API}/{p['id']}").json()
    assert detail["status"] == "resolved" and detail["resolution"] == "已安排志愿者值守"
    assert [h["responsible_code"] for h in detail["history"]] == [
        regions["grid_a1"].code, regions["community_a"].code, regions["community_a"].code]
    assert c.post(f"{API}/{p['id']}/updates", {"status": "rejected"},
                  content_type="application/json").status_code == 422


def test_overdue_problems_move_up_one_level_with_a_new_deadline(regions, policy, now, officer_a):
    from jingkong.access.guard import scope_of
    from jingkong.command import problems
    from jingkong.command.directives import escalate

    p = problems.problem_report(actor=officer_a, scope=scope_of(officer_a), category="other", urgency="urgent",
                                description="排队太长", **IN_A1)
    assert p.responsible_code == regions["community_a"].code and p.deadline == now + dt.timedelta(hours=4)
    assert escalate(now=now + dt.timedelta(hours=5))["problems_escalated"] == 0  # 2 h grace
    later = now + dt.timedelta(hours=6)
    assert escalate(now=later)["problems_escalated"] == 1
    p.refresh_from_db()
    assert p.responsible_code == regions["street_a"].code and p.deadline == later + dt.timedelta(hours=4)
    assert ProblemUpdate.objects.filter(problem=p, note__startswith="escalated").count() == 1


def test_counts_by_type_and_street(regions, policy, now, commander, client_for):
    c = client_for(commander)
    _report(c, category="supply_shortage", **IN_A1)
    _report(c, category="supply_shortage", **IN_B1)
    _report(c, category="queue_too_long", **IN_B1)
    resolved = _report(c, category="queue_too_long", **IN_A1).json()
    c.post(f"{API}/{resolved['id']}/updates", {"status": "rejected", "note": "重复"}, content_type="application/json")
    counts = c.get(f"{API}/counts").json()
    assert counts["total"] == 3 and counts["streets"] == [regions["street_a"].code, regions["street_b"].code]
    by = {r["category"]: r["by_street"] for r in counts["rows"]}
    assert by == {"supply_shortage": {regions["street_a"].code: 1, regions["street_b"].code: 1},
                  "queue_too_long": {regions["street_b"].code: 1}}
    listed = c.get(f"{API}?open=true").json()
    assert listed["count"] == counts["total"]  # the list and the counts agree


def test_pages_report_with_photo_and_work(regions, policy, now, officer_a, volunteer_a, client_for, photos_dir):
    v = client_for(volunteer_a)  # volunteers report, they do not see the lists
    r = v.post("/command/problems/new/", {"category": "unmanned_post", "urgency": "urgent", "description": "卡口无人",
                                          "lon": "121.805", "lat": "29.905", "photo": upload()})
    assert r.status_code == 302, r.content.decode()[:300]
    p = Problem.objects.get()
    assert p.photo and (photos_dir / p.photo).exists()
    assert v.get("/command/problems/").status_code == 403
    c = client_for(officer_a)
    assert c.get(f"/command/problems/{p.ref}/").status_code == 200
    assert c.get(f"/command/photos/problems/{p.ref}/").status_code == 200
    r = c.post(f"/command/problems/{p.ref}/update/", {"status": "in_progress", "note": "已派人"})
    assert r.status_code == 302
    assert Problem.objects.get().status == "in_progress"
    bad = v.post("/command/problems/new/", {"category": "other", "urgency": "normal", "description": "x",
                                            "lon": "abc", "lat": "29.9"})
    assert bad.status_code == 422
    gif = v.post("/command/problems/new/", {"category": "other", "urgency": "normal", "description": "x",
                                            "lon": "121.805", "lat": "29.905", "photo": upload(b"GIF89a", "a.gif")})
    assert gif.status_code == 422 and Problem.objects.count() == 1


def test_out_of_scope_problem_is_404(regions, policy, now, officer_a, officer_b, client_for):
    p = _report(client_for(officer_b), **IN_B1).json()
    c = client_for(officer_a)
    assert c.get(f"{API}/{p['id']}").status_code == 404
    assert c.get(f"/command/problems/{p['ref']}/").status_code == 404
    assert c.post(f"{API}/{p['id']}/updates", {"note": "x"}, content_type="application/json").status_code == 404
    assert c.get(f"{API}").json()["count"] == 0
