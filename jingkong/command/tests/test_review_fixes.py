"""Regression tests of the review of issue 7 (each fails without its fix): bad input that was a 500, evidence that
could be overwritten, a volunteer reaching other people's problems, job kinds, statuses without a worker, person data
in task titles, unaudited reads on the public status page, links that leave the site, CSRF on the public form."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

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


# --- ids beyond a database integer, supplies editing ---------------------------------------------------------------


@pytest.mark.parametrize("method, url, body", [
    ("get", "/api/v1/command/services/requests/99999999999999999999", None),
    ("post", "/api/v1/command/services/requests/99999999999999999999/status", {"status": "in_progress"}),
    ("post", "/api/v1/command/services/mine/99999999999999999999/status", {"status": "delivered"}),
    ("get", "/api/v1/command/supplies/depots/99999999999999999999", None),
    ("post", "/api/v1/command/supplies/depots", {"code": "X", "name": "x", "sampling_site_id": 10**20}),
    ("post", "/api/v1/command/services/requests", {"person_id": 10**20, "category": "food"}),
])
def test_ids_beyond_a_database_integer_are_404_or_422_not_500(sv_world, admin_user, client_for, method, url, body):
    c = client_for(admin_user)
    c.raise_request_exception = False
    r = getattr(c, method)(url, body, content_type="application/json") if body is not None else c.get(url)
    assert r.status_code in (404, 422), (r.status_code, r.content[:300])


def test_a_request_is_not_reassigned_to_an_id_beyond_a_database_integer(sv_world, officer_a, client_for):
    from jingkong.command import requests as svc

    person, _ = make_resident(sv_world["regions"]["grid_a1"])
    req, _ = svc.request_submit(person=person, category="food")
    c = client_for(officer_a)
    c.raise_request_exception = False
    r = c.post(f"/api/v1/command/services/requests/{req.pk}/assign", {"worker_id": 10**20},
               content_type="application/json")
    assert r.status_code == 422, r.content


@pytest.fixture
def depots(regions, sv_now):
    from jingkong.command.models import Depot, SupplyItem

    kit = SupplyItem.objects.create(code="KIT", name="抗原试剂盒", category="test_kit", unit="盒")
    d1 = Depot.objects.create(code="D-A1", name="新碶一号仓", region_code=regions["grid_a1"].code)
    d2 = Depot.objects.create(code="D-A2", name="新碶二号仓", region_code=regions["grid_a2"].code)
    db = Depot.objects.create(code="D-B1", name="大碶仓", region_code=regions["grid_b1"].code)
    return {"kit": kit, "d1": d1, "d2": d2, "db": db}


def _move(c, depot, **body):
    return c.post(f"/api/v1/command/supplies/depots/{depot.pk}/movements", {"item": "KIT", **body},
                  content_type="application/json")


def test_a_depot_is_renamed_and_closed_and_then_receives_nothing(depots, officer_a, client_for):
    from jingkong.access.models import AuditLog

    c = client_for(officer_a)
    d1, d2 = depots["d1"], depots["d2"]
    assert _move(c, d1, kind="receipt", quantity=10).status_code == 201
    r = c.patch(f"/api/v1/command/supplies/depots/{d1.pk}", {"name": "新碶中心仓", "active": False},
                content_type="application/json")
    assert r.status_code == 200, r.content
    assert r.json()["name"] == "新碶中心仓" and r.json()["active"] is False
    assert AuditLog.objects.filter(action="supply.depot_update", object_id=str(d1.pk)).exists()
    refused = _move(c, d1, kind="receipt", quantity=5)
    assert refused.status_code == 422 and "depot_inactive" in refused.content.decode()
    assert _move(c, d2, kind="transfer", quantity=1, to_depot="D-A1").status_code == 422
    # What is left can still leave: used, sent to an open depot, counted.
    assert _move(c, d1, kind="consumption", quantity=2).status_code == 201
    assert _move(c, d1, kind="transfer", quantity=3, to_depot="D-A2").status_code == 201
    assert _move(c, d1, kind="adjustment", counted=5).status_code == 201
    # Another region's depot: not found.
    assert c.patch(f"/api/v1/command/supplies/depots/{depots['db'].pk}", {"active": False},
                   content_type="application/json").status_code == 404


def test_an_item_is_edited_and_deactivated_and_then_not_received(depots, officer_a, client_for):
    c = client_for(officer_a)
    kit = depots["kit"]
    r = c.patch(f"/api/v1/command/supplies/items/{kit.pk}", {"unit": "箱", "active": False},
                content_type="application/json")
    assert r.status_code == 200, r.content
    assert r.json()["unit"] == "箱" and r.json()["active"] is False and r.json()["code"] == "KIT"
    refused = _move(c, depots["d1"], kind="receipt", quantity=5)
    assert refused.status_code == 422 and "item_inactive" in refused.content.decode()
    bad = c.patch(f"/api/v1/command/supplies/items/{kit.pk}", {"name": "a\x00b"}, content_type="application/json")
    assert bad.status_code == 422


def test_the_back_office_lists_service_and_supply_models(depots, admin_user, client_for):
    c = client_for(admin_user)
    for model in ("servicerequest", "supplyitem", "depot", "stocklevel", "stockmovement"):
        r = c.get(f"/admin/command/{model}/")
        assert r.status_code == 200, (model, r.status_code)


def test_the_depot_page_closes_and_reopens_a_depot(depots, officer_a, client_for):
    c = client_for(officer_a)
    d1 = depots["d1"]
    page = c.get(f"/command/supplies/depots/{d1.code}/")
    assert page.status_code == 200 and f"/command/supplies/depots/{d1.code}/edit/" in page.content.decode()
    c.post(f"/command/supplies/depots/{d1.code}/edit/", {"name": "新碶中心仓", "kind": "site"})  # box unticked
    d1.refresh_from_db()
    assert (d1.name, d1.kind, d1.active) == ("新碶中心仓", "site", False)
    c.post(f"/command/supplies/depots/{d1.code}/edit/", {"name": "新碶中心仓", "kind": "site", "active": "1"})
    d1.refresh_from_db()
    assert d1.active
    assert c.post(f"/command/supplies/depots/{depots['db'].code}/edit/", {"name": "x"}).status_code == 404


@pytest.mark.parametrize("view", ["open", "overdue", "unassigned", "escort"])
def test_each_queue_card_equals_the_list_it_opens(sv_world, officer_a, client_for, view):
    from jingkong.command import requests as svc

    grid_a2 = sv_world["regions"]["grid_a2"]  # nobody works there: requests stay unassigned
    for sub, cancel in (("dialysis", True), ("dialysis", False), ("", True), ("", False)):
        person, _ = make_resident(grid_a2)
        req, _ = svc.request_submit(person=person, category="medical_visit", subcategory=sub)
        if cancel:
            svc.request_status(actor=officer_a, req=req, status="cancelled", note="重复")
    c = client_for(officer_a)
    r = c.get("/command/services/", {"view": view})
    assert r.status_code == 200
    assert r.context["cards"][view] == r.context["page"].paginator.count
    if view in ("unassigned", "escort"):
        assert r.context["cards"][view] >= 1


def test_a_failing_read_of_the_loop_never_breaks_the_emitter(regions, policy, now, monkeypatch):
    """The lab upload (the emitter) goes on when building the retest tasks fails; the emitter's transaction stays
    usable (on PostgreSQL a failed statement outside a savepoint would abort it)."""
    from django.db import connection, transaction

    from jingkong.command import loop
    from jingkong.core.events import emit_many

    def broken(tube_ids):
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table_for_review")
        return []

    monkeypatch.setattr(loop, "pool_positive_items", broken)
    with transaction.atomic():
        emit_many([{"type": "testing.pool_positive", "subject_type": "testing.tube", "subject_id": 1,
                    "region_code": regions["grid_a1"].code, "payload": {}}])
        assert Task.objects.count() == 0  # the transaction still answers queries


@pytest.mark.django_db(transaction=True)
def test_concurrent_consumption_never_takes_more_than_is_in_stock(regions):
    """Two devices take 7 of the same 10 kits at once: one wins, the other is refused; stock 3, never negative.
    Real concurrency needs PostgreSQL (SQLite serialises writers anyway)."""
    import threading

    from django.db import connection, connections

    from jingkong.access.guard import Scope
    from jingkong.command import supplies
    from jingkong.command.models import Depot, StockLevel, StockMovement, SupplyItem
    from jingkong.core.exceptions import ValidationFailed

    if connection.vendor != "postgresql":
        pytest.skip("row locks are exercised on PostgreSQL")
    kit = SupplyItem.objects.create(code="KIT", name="抗原试剂盒", category="test_kit", unit="盒")
    depot = Depot.objects.create(code="D-A1", name="新碶一号仓", region_code=regions["grid_a1"].code)
    scope = Scope(regions["street_a"].code)
    supplies.movement_record(actor=None, scope=scope, depot=depot, item=kit, kind="receipt", quantity=10)
    barrier = threading.Barrier(2)
    outcome = []

    def take(key):
        try:
            barrier.wait(timeout=10)
            supplies.movement_record(actor=None, scope=scope, depot=depot, item=kit, kind="consumption", quantity=7,
                                     client_key=key)
            outcome.append("ok")
        except ValidationFailed as exc:
            outcome.append(exc.code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=take, args=(f"dev-{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcome) == ["insufficient_stock", "ok"]
    assert StockLevel.objects.get(depot=depot, item=kit).quantity == 3
    assert StockMovement.objects.filter(kind="consumption").count() == 1


# --- re-submits ------------------------------------------------------------------------------------------------------


def test_issuing_twice_with_the_same_key_makes_one_directive_and_one_cascade(regions, policy, now, commander,
                                                                               client_for):
    from jingkong.command.models import Directive

    c = client_for(commander)
    body = {"title": "扫楼", "text": "今日完成", "category": "sampling_sweep", "region_codes": [regions["street_a"].code],
            "deadline": (now + dt.timedelta(hours=6)).isoformat(), "client_key": "issue-1"}
    first = c.post("/api/v1/command/directives", body, content_type="application/json")
    again = c.post("/api/v1/command/directives", body, content_type="application/json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    tasks = Task.objects.count()
    assert Directive.objects.count() == 1 and tasks > 1
    # The page form carries its own key: a double tap issues once as well.
    form = {"title": "封控巡查", "text": "每两小时一次", "category": "zone_enforcement", "regions": [regions["street_a"].code],
            "deadline": (now + dt.timedelta(hours=6)).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%dT%H:%M"),
            "client_key": "page-key-1"}
    assert c.post("/command/directives/new/", form).status_code == 302
    assert c.post("/command/directives/new/", form).status_code == 302
    assert Directive.objects.count() == 2 and Task.objects.count() == 2 * tasks
    # Another key is another directive.
    body["client_key"] = "issue-2"
    assert c.post("/api/v1/command/directives", body, content_type="application/json").status_code == 201


def test_reporting_twice_with_the_same_key_makes_one_problem(regions, policy, now, grid_worker_a, client_for):
    c = client_for(grid_worker_a)
    first = _report(c, client_key="p-1", **IN_A1)
    again = _report(c, client_key="p-1", **IN_A1)
    assert (first.status_code, again.status_code) == (201, 200)
    assert Problem.objects.count() == 1
    page = {"category": "other", "urgency": "normal", "description": "排队过长", "lon": "121.805", "lat": "29.905",
            "client_key": "page-p-1"}
    c.post("/command/problems/new/", page)
    c.post("/command/problems/new/", page)
    assert Problem.objects.count() == 2
    assert _report(c, **IN_A1).status_code == 201  # no key: a new report each time
    assert Problem.objects.count() == 3


def test_a_wrong_kind_of_request_is_explained_in_the_residents_language(sv_world):
    _person, number = make_resident(sv_world["regions"]["grid_a1"], phone="13811115555")
    form = {"how": "id", "id_number": number, "phone": "13811115555", "category": "food", "subcategory": "dialysis",
            "client_key": "k-lang"}
    r = Client(HTTP_ACCEPT_LANGUAGE="en").post("/command/help/", form, REMOTE_ADDR="10.1.1.1")
    assert r.status_code == 422
    page = r.content.decode()
    # A translatable sentence naming the category by its (translated) label, not the developer's repr of ids.
    assert "food and daily needs" in page and "&#x27;food&#x27;" not in page and "'food'" not in page
    assert not ServiceRequest.objects.exists()


def test_a_count_resent_with_the_same_key_but_another_figure_is_a_conflict(depots):
    from jingkong.access.guard import Scope
    from jingkong.command import supplies
    from jingkong.command.models import StockLevel
    from jingkong.core.exceptions import Conflict

    scope = Scope("330206002")
    args = {"actor": None, "scope": scope, "depot": depots["d1"], "item": depots["kit"], "kind": "adjustment",
            "client_key": "count-1"}
    first = supplies.movement_record(counted=5, **args)
    same = supplies.movement_record(counted=5, **args)
    assert first.created and not same.created and same.movement.pk == first.movement.pk
    with pytest.raises(Conflict):
        supplies.movement_record(counted=7, **args)
    assert StockLevel.objects.get(depot=depots["d1"], item=depots["kit"]).quantity == 5
