"""Tasks created by the loop: retest pool-positive people (a real lab result), locate contacts, deliver to lockdown
households, sweep untested residents — each with the worker who covers the place, idempotent on (source, key)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction

from jingkong.command.models import Task
from jingkong.command.services import create_auto_tasks
from jingkong.command.tests import directive_helpers as dh
from jingkong.command.tests.directive_helpers import make_building, make_worker
from jingkong.conftest import T0
from jingkong.core import clock
from jingkong.core.events import emit
from jingkong.core.exceptions import ValidationFailed

pytestmark = pytest.mark.django_db
now, policy, _fresh_policy_cache = dh.now, dh.policy, dh._fresh_policy_cache  # fixtures


def test_create_auto_tasks_is_idempotent_and_lands_with_the_covering_worker(regions, policy, now):
    grid = regions["grid_a1"]
    b1, b2 = make_building(grid), make_building(grid)
    gw = make_worker(grid)
    captain = make_worker(grid, role="building_captain", buildings=[b1])
    items = [{"source_key": "k1", "region_code": grid.code, "building_id": b1.pk, "title": "送菜", "target_count": 3},
             {"source_key": "k2", "region_code": grid.code, "building_id": b2.pk, "title": "送菜"},
             {"source_key": "k3", "region_code": regions["grid_b1"].code, "title": "无人"}]
    first = create_auto_tasks("deliver", items)
    assert (first["created"], first["existing"]) == (3, 0)
    tasks = {t.source_key: t for t in Task.objects.all()}
    assert tasks["k1"].assignee == captain and tasks["k2"].assignee == gw and tasks["k3"].assignee is None
    assert tasks["k1"].deadline == now + dt.timedelta(hours=24)  # directives.auto_task_hours.deliver in the profile
    assert tasks["k1"].target_count == 3 and tasks["k1"].level == "grid"
    again = create_auto_tasks("deliver", items + [{"source_key": "k4", "region_code": grid.code}])
    assert (again["created"], again["existing"]) == (1, 3)
    assert Task.objects.count() == 4


@pytest.mark.parametrize("source, items", [
    ("nonsense", [{"source_key": "a", "region_code": "330206002001001"}]),
    ("directive", [{"source_key": "a", "region_code": "330206002001001"}]),
    ("deliver", [{"source_key": "", "region_code": "330206002001001"}]),
    ("deliver", [{"source_key": "x" * 65, "region_code": "330206002001001"}]),
    ("deliver", [{"source_key": "a"}]),
    ("service", [{"source_key": "a", "region_code": "330206002001001"}]),  # no default deadline for services
])
def test_create_auto_tasks_refuses_bad_items(regions, policy, now, source, items):
    with pytest.raises(ValidationFailed):
        create_auto_tasks(source, items)
    assert not Task.objects.exists()


def test_pool_positive_result_creates_one_retest_task_per_grid_of_members(regions, policy):
    from jingkong.testing.results import results_apply
    from jingkong.testing.tests.labs_helpers import make_campaign, make_lab, make_persons, make_tube, row

    with clock.frozen(T0 + dt.timedelta(hours=6)):
        worker = make_worker(regions["grid_a1"])
        lab = make_lab(regions["district"])
        campaign = make_campaign(regions["district"])
        people = make_persons(regions["grid_a1"], 6) + make_persons(regions["grid_a2"], 4)
        tube = make_tube("T-POS", people, campaign=campaign, capacity=10)
        results_apply(lab=lab, rows=[row("T-POS", "positive", ct={"N": 30.1})], actor=None)
        tasks = {t.region_code: t for t in Task.objects.filter(source="retest_pool")}
        assert set(tasks) == {regions["grid_a1"].code, regions["grid_a2"].code}
        a1 = tasks[regions["grid_a1"].code]
        assert a1.target_count == 6 and a1.assignee == worker and a1.source_key == f"pool:{tube.pk}:{a1.region_code}"
        assert sorted(a1.payload["person_ids"]) == sorted(p.pk for p in people[:6])
        assert a1.deadline == T0 + dt.timedelta(hours=6 + 6)


def test_subscriber_never_breaks_the_emitter_without_a_policy(regions):
    # No profile in force: the lab result (here: the event) still commits, no task is made.
    with transaction.atomic():
        emit("tracing.contacts_identified", subject_type="tracing.contact", region_code=regions["grid_a1"].code,
             payload={"count": 1, "contacts": [{"id": 1, "person_id": 1, "tier": "close"}]})
    assert not Task.objects.exists()


def test_contacts_identified_creates_a_locate_task_per_grid_batch(regions, policy, now):
    worker = make_worker(regions["grid_b1"])
    with transaction.atomic():
        event = emit("tracing.contacts_identified", subject_type="tracing.contact",
                     region_code=regions["grid_b1"].code,
                     payload={"count": 2, "contacts": [{"id": 7, "person_id": 70, "tier": "close"},
                                                       {"id": 8, "person_id": 80, "tier": "secondary"}]})
    task = Task.objects.get(source="locate_contact")
    assert task.source_key == f"contacts:{event.pk}" and task.assignee == worker and task.target_count == 2
    assert task.payload["contact_ids"] == [7, 8] and task.payload["by_tier"] == {"close": 1, "secondary": 1}
    assert task.deadline == now + dt.timedelta(hours=4)


def test_zone_approved_creates_delivery_tasks_per_building_with_household_counts(regions, policy, now):
    from jingkong.testing.tests.campaign_helpers import make_residents
    from jingkong.zones.models import Zone, ZoneResident

    grid = regions["grid_a1"]
    b1, b2 = make_building(grid), make_building(grid)
    captain = make_worker(grid, role="building_captain", buildings=[b2])
    people = make_residents(b1, 3) + make_residents(b1, 2) + make_residents(b2, 4)
    zone = Zone.objects.create(ref="FK-1", name="封控区1", type="lockdown", status="approved", region_code=grid.code,
                               proposed_at=now, approved_at=now, updated_at=now)
    ZoneResident.objects.bulk_create([ZoneResident(zone=zone, person=p, zone_type="lockdown", region_code=grid.code)
                                      for p in people])
    for _ in range(2):  # re-delivered: idempotent
        with transaction.atomic():
            emit("zones.zone_approved", subject=zone, region_code=grid.code,
                 payload={"ref": "FK-1", "type": "lockdown", "from_type": "", "to_type": "lockdown", "people": 9})
    tasks = {t.building_id: t for t in Task.objects.filter(source="deliver")}
    assert tasks[b1.pk].target_count == 2 and tasks[b2.pk].target_count == 1  # households
    assert tasks[b2.pk].assignee == captain
    with transaction.atomic():  # a control zone gets no delivery tasks
        emit("zones.zone_approved", subject=zone, region_code=grid.code,
             payload={"ref": "FK-1", "type": "control", "from_type": "", "to_type": "control", "people": 9})
    assert Task.objects.filter(source="deliver").count() == 2


def test_sweep_tasks_for_a_round_one_per_grid_with_untested_people(regions, policy, now, officer_a, client_for):
    from jingkong.testing.tests.campaign_helpers import make_campaign, make_residents

    b = make_building(regions["grid_a1"])
    make_residents(b, 5)
    make_residents(make_building(regions["grid_b1"]), 3)
    campaign = make_campaign(regions["district"], status="running")
    worker = make_worker(regions["grid_a1"])
    c = client_for(officer_a)
    r = c.post("/api/v1/command/tasks/sweep", {"campaign_id": campaign.pk}, content_type="application/json")
    assert r.status_code == 201, r.content
    assert r.json() == {"created": 1, "existing": 0, "items": 1}  # street A only: one grid with residents
    task = Task.objects.get(source="sweep_untested")
    assert task.region_code == regions["grid_a1"].code and task.target_count == 5 and task.assignee == worker
    detail = c.get(f"/api/v1/command/tasks/{task.pk}").json()
    assert detail["attachments"][0]["url"] == f"/testing/campaigns/{campaign.pk}/untested/{task.region_code}/"
    again = c.post("/api/v1/command/tasks/sweep", {"campaign_id": campaign.pk}, content_type="application/json")
    assert again.json()["created"] == 0 and again.json()["existing"] == 1
    assert c.post("/api/v1/command/tasks/sweep", {"campaign_id": 10**12},
                  content_type="application/json").status_code == 404


def test_cli_sweep_and_escalate(regions, policy, now):
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    from jingkong.testing.tests.campaign_helpers import make_campaign, make_residents

    make_residents(make_building(regions["grid_a2"]), 2)
    campaign = make_campaign(regions["district"], "R-CLI", status="running")
    out = StringIO()
    call_command("command_sweep", "--campaign", campaign.code, stdout=out)
    assert "1 task(s) created" in out.getvalue()
    with pytest.raises(CommandError):
        call_command("command_sweep", "--campaign", "NOPE", stdout=StringIO())
    out = StringIO()
    with clock.frozen(now + dt.timedelta(hours=15)):
        call_command("command_escalate", stdout=out)
    assert "1 task(s)" in out.getvalue()
    assert Task.objects.get(source="sweep_untested").escalated_to == regions["community_a"].code
