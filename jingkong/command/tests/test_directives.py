"""Directives: issue → cascade down to every grid → acknowledge → report with evidence → roll-up → escalation;
reassign; the tree; scope (404 outside) and bad input (422 naming the field)."""

from __future__ import annotations

import datetime as dt

import pytest

from jingkong.command.models import Directive, Task, TaskReport
from jingkong.command.tests import directive_helpers as dh
from jingkong.command.tests.directive_helpers import issue, make_worker, upload
from jingkong.core import clock
from jingkong.core.models import DomainEvent

pytestmark = pytest.mark.django_db
now, policy, photos_dir, _fresh_policy_cache = dh.now, dh.policy, dh.photos_dir, dh._fresh_policy_cache  # fixtures


def test_a_directive_cascades_to_every_grid_with_the_chain(regions, commander, policy, now):
    w = make_worker(regions["grid_a1"])
    d = issue(commander, [regions["district"].code])
    tasks = {t.region_code: t for t in Task.objects.filter(directive=d)}
    # district, 2 streets, 2 communities, 4 grids: one task each
    assert sorted(tasks) == sorted(r.code for r in regions.values())
    for code, t in tasks.items():
        parent_code = {15: 12, 12: 9, 9: 6}.get(len(code))
        assert (t.parent.region_code if t.parent else None) == (code[:parent_code] if parent_code else None)
    assert tasks[regions["grid_a1"].code].assignee == w  # lands with the grid's worker
    assert tasks[regions["grid_a2"].code].assignee is None
    assert DomainEvent.objects.filter(type="command.directive_issued", subject_id=str(d.pk)).count() == 1


def test_overlapping_targets_cascade_once(regions, commander, policy, now):
    d = issue(commander, [regions["street_a"].code, regions["community_a"].code, regions["grid_a1"].code])
    assert Task.objects.filter(directive=d).count() == 4  # street, community, 2 grids
    assert list(Task.objects.filter(directive=d, parent__isnull=True).values_list("region_code", flat=True)) == [
        regions["street_a"].code]


def test_done_rolls_up_level_by_level_and_closes_the_directive(regions, officer_a, policy, now, photos_dir):
    from jingkong.command import tasks as svc

    d = issue(officer_a, [regions["street_a"].code])
    g1 = Task.objects.get(directive=d, region_code=regions["grid_a1"].code)
    g2 = Task.objects.get(directive=d, region_code=regions["grid_a2"].code)
    svc.task_acknowledge(actor=officer_a, task=g1)
    svc.task_report(actor=officer_a, task=g1, status="done", count=40, note="扫楼完成")
    community = Task.objects.get(directive=d, region_code=regions["community_a"].code)
    assert community.status == "in_progress"  # one of two grids done
    assert Directive.objects.get(pk=d.pk).status == "open"
    photo = svc.store_photo(upload())
    svc.task_report(actor=officer_a, task=g2, status="done", photo=photo)
    assert Task.objects.get(pk=community.pk).status == "done"
    assert Task.objects.get(directive=d, region_code=regions["street_a"].code).status == "done"
    assert Directive.objects.get(pk=d.pk).status == "done"
    assert (photos_dir / photo).read_bytes().startswith(b"\x89PNG")


def test_done_needs_evidence_and_parents_are_not_reported(regions, officer_a, policy, now):
    from jingkong.command import tasks as svc
    from jingkong.core.exceptions import ValidationFailed

    d = issue(officer_a, [regions["street_a"].code])
    g1 = Task.objects.get(directive=d, region_code=regions["grid_a1"].code)
    with pytest.raises(ValidationFailed) as exc:
        svc.task_report(actor=officer_a, task=g1, status="done")
    assert exc.value.extra["field"] == "count"
    street = Task.objects.get(directive=d, region_code=regions["street_a"].code)
    with pytest.raises(ValidationFailed):
        svc.task_report(actor=officer_a, task=street, status="done", count=1)


def test_overdue_tasks_escalate_once_to_the_level_above(regions, commander, policy, now):
    from jingkong.command.directives import escalate

    d = issue(commander, [regions["street_a"].code], hours=1)
    assert escalate(now=now + dt.timedelta(hours=2))["tasks_escalated"] == 0  # grid grace: 2 h after the deadline
    result = escalate(now=now + dt.timedelta(hours=3, minutes=1))
    grid = Task.objects.get(directive=d, region_code=regions["grid_a1"].code)
    assert grid.escalated_to == regions["community_a"].code and grid.escalated_at is not None
    assert result["tasks_escalated"] == 2  # two grids; the community (4 h) and the street (8 h) not yet
    assert escalate(now=now + dt.timedelta(hours=3, minutes=2))["tasks_escalated"] == 0  # once
    escalate(now=now + dt.timedelta(hours=9, minutes=1))
    street = Task.objects.get(directive=d, region_code=regions["street_a"].code)
    assert street.escalated_to == regions["district"].code
    assert DomainEvent.objects.filter(type="command.tasks_escalated").exists()


def test_reassign_to_a_worker_covering_the_place(regions, officer_a, policy, now):
    from jingkong.access.guard import scope_of
    from jingkong.command import tasks as svc
    from jingkong.core.exceptions import NotFound, ValidationFailed

    first = make_worker(regions["grid_a1"])
    other = make_worker(regions["grid_a1"], role="volunteer")
    elsewhere = make_worker(regions["grid_a2"])
    in_b = make_worker(regions["grid_b1"])
    d = issue(officer_a, [regions["grid_a1"].code])
    task = Task.objects.get(directive=d)
    assert task.assignee == first
    svc.task_reassign(actor=officer_a, scope=scope_of(officer_a), task=task, worker_id=other.pk)
    assert Task.objects.get(pk=task.pk).assignee == other
    with pytest.raises(ValidationFailed):
        svc.task_reassign(actor=officer_a, scope=scope_of(officer_a), task=task, worker_id=elsewhere.pk)
    with pytest.raises(NotFound):
        svc.task_reassign(actor=officer_a, scope=scope_of(officer_a), task=task, worker_id=in_b.pk)


# --- API ------------------------------------------------------------------------------------------------------------


def _post(client, url, body):
    return client.post(url, body, content_type="application/json")


def test_api_issue_tree_and_work(regions, commander, grid_worker_a, policy, now, client_for):
    make_worker(regions["grid_a1"], user=grid_worker_a)
    c = client_for(commander)
    deadline = (now + dt.timedelta(hours=6)).isoformat()
    r = _post(c, "/api/v1/command/directives", {
        "title": "扫楼", "text": "全部网格", "category": "sampling_sweep", "region_codes": [regions["district"].code],
        "deadline": deadline, "attachments": [{"type": "contact_queue"}]})
    assert r.status_code == 201, r.content
    d = r.json()
    assert d["progress"]["tasks"] == 4 and d["targets"] == [regions["district"].code]
    tree = c.get(f"/api/v1/command/directives/{d['id']}/tree").json()["tree"]
    assert len(tree) == 1 and tree[0]["leaves"] == 4 and len(tree[0]["children"]) == 2

    gw = client_for(grid_worker_a)
    mine = gw.get("/api/v1/command/tasks?mine=true").json()
    assert mine["count"] == 1
    task = mine["items"][0]
    assert task["attachments"][0]["url"].endswith(f"region={regions['grid_a1'].code}")
    assert _post(gw, f"/api/v1/command/tasks/{task['id']}/acknowledge", {}).status_code == 200
    r = _post(gw, f"/api/v1/command/tasks/{task['id']}/report", {"status": "done", "count": 12, "note": "ok"})
    assert r.status_code == 201, r.content
    d2 = c.get(f"/api/v1/command/directives/{d['id']}").json()
    assert d2["progress"]["done"] == 1 and d2["progress"]["percent_done"] == 25.0
    # a grid worker sees only their grid's part of the chain
    tree_gw = gw.get(f"/api/v1/command/directives/{d['id']}/tree").json()["tree"]
    assert [n["region_code"] for n in tree_gw] == [regions["grid_a1"].code]


def test_api_photo_upload_checks_type_and_size(regions, officer_a, policy, now, client_for, photos_dir):
    d = issue(officer_a, [regions["grid_a1"].code])
    task = Task.objects.get(directive=d)
    c = client_for(officer_a)
    ok = c.post(f"/api/v1/command/tasks/{task.pk}/photos", {"file": upload()})
    assert ok.status_code == 201, ok.content
    assert ok.json()["photo_url"]
    assert c.get(ok.json()["photo_url"]).status_code == 200
    bad = c.post(f"/api/v1/command/tasks/{task.pk}/photos", {"file": upload(b"GIF89a....", "x.gif")})
    assert bad.status_code == 422 and "JPEG" in bad.json()["message"]
    none = c.post(f"/api/v1/command/tasks/{task.pk}/photos", {})
    assert none.status_code == 422
    from jingkong.command import rules

    big = c.post(f"/api/v1/command/tasks/{task.pk}/photos",
                 {"file": upload(b"\xff\xd8\xff" + b"\x00" * rules.PHOTO_MAX_BYTES, "big.jpg")})
    assert big.status_code == 422
    assert TaskReport.objects.filter(task=task).exclude(photo="").count() == 1


@pytest.mark.parametrize("body, field", [
    ({"region_codes": []}, "region_codes"),
    ({"region_codes": ["33020600x"]}, "region_codes"),
    ({"category": "nonsense"}, "category"),
    ({"title": "a\x00b"}, "title"),
    ({"deadline": "2021-01-01T00:00:00+08:00"}, "deadline"),
    ({"attachments": [{"type": "untested_list", "campaign_id": 999999}]}, "attachments"),
    ({"attachments": [{"type": "link", "url": "javascript:alert(1)"}]}, "attachments"),
])
def test_api_bad_directives_are_422_naming_the_field(regions, commander, policy, now, client_for, body, field):
    good = {"title": "t", "text": "x", "category": "other", "region_codes": [regions["street_a"].code],
            "deadline": (now + dt.timedelta(hours=3)).isoformat()}
    r = _post(client_for(commander), "/api/v1/command/directives", {**good, **body})
    assert r.status_code == 422, r.content
    assert field in r.content.decode()
    assert not Directive.objects.exists()


def test_api_out_of_scope_is_404(regions, officer_a, officer_b, policy, now, client_for):
    d = issue(officer_b, [regions["street_b"].code])
    c = client_for(officer_a)
    r = _post(c, "/api/v1/command/directives", {
        "title": "t", "text": "x", "category": "other", "region_codes": [regions["street_b"].code],
        "deadline": (now + dt.timedelta(hours=3)).isoformat()})
    assert r.status_code == 404
    assert c.get(f"/api/v1/command/directives/{d.pk}").status_code == 404
    task = Task.objects.filter(directive=d).first()
    assert c.get(f"/api/v1/command/tasks/{task.pk}").status_code == 404
    assert _post(c, f"/api/v1/command/tasks/{task.pk}/report", {"status": "in_progress"}).status_code == 404
    assert c.get("/api/v1/command/tasks").json()["count"] == 0


def test_volunteer_sees_only_their_tasks(regions, officer_a, volunteer_a, policy, now, client_for):
    mine = make_worker(regions["grid_a1"], role="volunteer", user=volunteer_a)
    make_worker(regions["grid_a2"])
    d = issue(officer_a, [regions["street_a"].code])
    own = Task.objects.get(directive=d, region_code=regions["grid_a1"].code)
    other = Task.objects.get(directive=d, region_code=regions["grid_a2"].code)
    assert own.assignee == mine
    c = client_for(volunteer_a)
    listed = c.get("/api/v1/command/tasks").json()
    assert [t["id"] for t in listed["items"]] == [own.pk]
    assert c.get(f"/api/v1/command/tasks/{other.pk}").status_code == 404
    assert _post(c, f"/api/v1/command/tasks/{other.pk}/acknowledge", {}).status_code == 404
    assert c.get(f"/api/v1/command/tasks/{own.pk}").status_code == 200
    page = c.get("/command/tasks/")
    assert page.status_code == 200 and own.title in page.content.decode()
    assert "/command/directives/" not in page.content.decode()  # no links to pages the role may not open
    assert c.get(f"/command/tasks/{own.pk}/").status_code == 200
    assert c.get(f"/command/tasks/{other.pk}/").status_code == 404


# --- pages ----------------------------------------------------------------------------------------------------------


def test_pages_render_for_commander_and_grid_worker(regions, commander, grid_worker_a, policy, now, client_for):
    make_worker(regions["grid_a1"], user=grid_worker_a)
    d = issue(commander, [regions["district"].code])
    c = client_for(commander)
    for url in ("/command/", f"/command/?region={regions['street_a'].code}", "/command/directives/",
                "/command/directives/new/", f"/command/directives/{d.ref}/", "/command/tasks/?all=1",
                "/command/problems/", "/command/problems/new/", "/command/workers/", "/command/workers/new/"):
        r = c.get(url)
        assert r.status_code == 200, (url, r.status_code)
    tree = c.get(f"/command/directives/{d.ref}/").content.decode()
    assert regions["grid_b2"].code in tree
    gw = client_for(grid_worker_a)
    task = Task.objects.get(directive=d, region_code=regions["grid_a1"].code)
    page = gw.get(f"/command/tasks/{task.pk}/").content.decode()
    assert f"/command/tasks/{task.pk}/acknowledge/" in page  # the acknowledge form (whatever the language)
    r = gw.post(f"/command/tasks/{task.pk}/report/", {"status": "done", "count": "5", "note": "ok"})
    assert r.status_code == 302
    assert Task.objects.get(pk=task.pk).status == "done"
    other = Task.objects.get(directive=d, region_code=regions["grid_b1"].code)
    assert gw.get(f"/command/tasks/{other.pk}/").status_code == 404


def test_issue_page_form(regions, officer_a, policy, now, client_for):
    c = client_for(officer_a)
    from zoneinfo import ZoneInfo

    local = (now + dt.timedelta(hours=5)).astimezone(ZoneInfo(clock.local_time_zone())).strftime("%Y-%m-%dT%H:%M")
    r = c.post("/command/directives/new/", {"title": "宣传", "text": "张贴通告", "category": "publicity",
                                           "regions": [regions["community_a"].code], "deadline": local})
    assert r.status_code == 302, r.content.decode()[:500]
    d = Directive.objects.get()
    assert Task.objects.filter(directive=d).count() == 3
    bad = c.post("/command/directives/new/", {"title": "x", "text": "y", "category": "publicity",
                                             "regions": [regions["community_b"].code], "deadline": local})
    assert bad.status_code == 404


@pytest.mark.parametrize("url", [
    "/api/v1/command/tasks?directive_id=99999999999999999999", "/api/v1/command/tasks?region=abc",
    "/api/v1/command/tasks?status=bogus", "/api/v1/command/tasks/99999999999999999999",
    "/api/v1/command/directives/99999999999999999999/tree", "/api/v1/command/rollup?region=3302060029999999999",
    "/api/v1/command/rollup?directive_id=99999999999999999999", "/api/v1/command/workers?q=%00",
    "/api/v1/command/problems?category=x", "/api/v1/command/tasks?page=99999999999999",
])
def test_hostile_queries_are_404_or_422_never_500(regions, commander, policy, now, client_for, url):
    r = client_for(commander).get(url)
    assert r.status_code in (200, 404, 422), (url, r.status_code)
