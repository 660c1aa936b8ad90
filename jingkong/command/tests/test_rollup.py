"""Counts on every screen equal the sum of their drill-down (district → street → community → grid), and the
operational lists agree with the roll-up."""

from __future__ import annotations

import datetime as dt

import pytest

from jingkong.access.guard import EVERYTHING, scope_of
from jingkong.command import rollup
from jingkong.command.models import Task
from jingkong.command.services import create_auto_tasks
from jingkong.command.tests import directive_helpers as dh
from jingkong.command.tests.directive_helpers import issue, make_worker

pytestmark = pytest.mark.django_db
now, policy, _fresh_policy_cache = dh.now, dh.policy, dh._fresh_policy_cache  # fixtures
FIELDS = rollup.TASK_FIELDS + rollup.PROBLEM_FIELDS


@pytest.fixture
def busy(regions, commander, officer_a, policy, now):
    from jingkong.command import problems
    from jingkong.command import tasks as svc
    from jingkong.command.directives import escalate

    make_worker(regions["grid_a1"])
    d1 = issue(commander, [regions["district"].code], hours=1)
    d2 = issue(officer_a, [regions["community_a"].code], hours=48)
    create_auto_tasks("deliver", [{"source_key": f"k{i}", "region_code": regions[g].code}
                                  for i, g in enumerate(["grid_a1", "grid_a1", "grid_b2", "grid_b1"])])
    # work attached above the grids: a task for a community as a whole, a problem located only to a street
    create_auto_tasks("deliver", [{"source_key": "community-wide", "region_code": regions["community_b"].code}])
    for g in ("grid_a1", "grid_b2"):
        svc.task_report(actor=commander, task=Task.objects.get(directive=d1, region_code=regions[g].code),
                        status="done", count=3)
    svc.task_report(actor=commander, task=Task.objects.get(directive=d2, region_code=regions["grid_a2"].code),
                    status="in_progress", count=1)
    for where, urgency in (("grid_a1", "normal"), ("grid_b1", "urgent"), ("grid_b1", "critical")):
        problems.problem_report(actor=commander, scope=EVERYTHING, category="other", urgency=urgency,
                                description="x", region_code=regions[where].code)
    problems.problem_report(actor=commander, scope=EVERYTHING, category="data_error", urgency="normal",
                            description="x", region_code=regions["street_b"].code)
    escalate(now=now + dt.timedelta(hours=4))
    return {"d1": d1, "d2": d2}


def _check_drilldown(scope, region_code, now, seen):
    data = rollup.rollup(scope=scope, region=region_code, now=now)
    totals = {f: sum(r[f] for r in data["rows"]) for f in FIELDS}
    assert totals == {f: data["totals"][f] for f in FIELDS}
    for row in data["rows"]:
        seen.add(row["code"])
        if row["direct"] or row["level"] == data["region"]["level"]:
            continue
        below = rollup.rollup(scope=scope, region=row["code"], now=now)
        assert {f: below["totals"][f] for f in FIELDS} == {f: row[f] for f in FIELDS}, row["code"]
        if row["level"] != "grid":
            _check_drilldown(scope, row["code"], now, seen)
    return data


def test_every_row_equals_the_sum_of_its_drilldown(regions, busy, now):
    later = now + dt.timedelta(hours=4)
    seen: set[str] = set()
    top = _check_drilldown(EVERYTHING, regions["district"].code, later, seen)
    # leaf tasks: d1 4 grids + d2 2 grids + 4 deliveries + 1 community-wide = 11; 2 done
    assert top["totals"]["tasks"] == 11 and top["totals"]["done"] == 2
    assert top["totals"]["problems_open"] == 4
    assert regions["grid_b2"].code in seen
    direct = [r for r in rollup.rollup(scope=EVERYTHING, region=regions["street_b"].code, now=later)["rows"]
              if r["direct"]]
    assert [(r["code"], r["problems_open"]) for r in direct] == [(regions["street_b"].code, 1)]
    community_b = rollup.rollup(scope=EVERYTHING, region=regions["community_b"].code, now=later)
    assert [(r["code"], r["tasks"]) for r in community_b["rows"] if r["direct"]] == [(regions["community_b"].code, 1)]
    assert top["totals"]["escalated"] > 0 and top["totals"]["overdue"] > 0


def test_the_api_lists_agree_with_the_rollup(regions, busy, commander, officer_a, client_for):
    for user in (commander, officer_a):
        c = client_for(user)
        data = c.get("/api/v1/command/rollup").json()
        for row in data["rows"]:
            if row["direct"]:
                continue
            code = row["code"]
            listed = c.get(f"/api/v1/command/tasks?region={code}&work_items=true&open=true").json()["count"]
            assert listed == row["open"], code
            overdue = c.get(f"/api/v1/command/tasks?region={code}&work_items=true&overdue=true").json()["count"]
            assert overdue == row["overdue"], code
            problems = c.get(f"/api/v1/command/problems?region={code}&open=true").json()["count"]
            assert problems == row["problems_open"], code
        totals = data["totals"]
        region = data["region"]["code"]
        assert c.get(f"/api/v1/command/tasks?region={region}&work_items=true&open=true").json()["count"] == \
            totals["open"]
    street_a = client_for(officer_a).get("/api/v1/command/rollup").json()
    assert street_a["region"]["code"] == regions["street_a"].code
    assert {r["code"] for r in street_a["rows"]} == {regions["community_a"].code}


def test_directive_progress_equals_its_tree_and_rollup(regions, busy, commander):
    from jingkong.command import selectors

    d1 = busy["d1"]
    scope = scope_of(commander)
    progress = rollup.directive_progress(scope=scope, directive_ids=[d1.pk])[d1.pk]
    (root,) = selectors.directive_tree(scope=scope, directive=d1)
    assert (root["leaves"], root["done"]) == (progress["tasks"], progress["done"]) == (4, 2)
    assert root["percent"] == progress["percent_done"] == 50.0
    by_region = rollup.rollup(scope=scope, directive_id=d1.pk)
    assert by_region["totals"]["tasks"] == 4 and by_region["totals"]["done"] == 2
    street_rows = {r["code"]: r for r in by_region["rows"]}
    for child in root["children"]:
        assert street_rows[child["region_code"]]["done"] == child["done"]
        assert street_rows[child["region_code"]]["tasks"] == child["leaves"]


def test_the_landing_page_totals_are_the_sum_of_its_rows(regions, busy, commander, client_for):
    import re

    html = client_for(commander).get("/command/").content.decode()
    table = html[html.index('id="rollup"'):html.index("</table>", html.index('id="rollup"'))]
    body_rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
    totals = re.search(r'<tr class="total">(.*?)</tr>', table, re.S).group(1)

    def cells(row):
        return [int(x) for x in re.findall(r'<td class="n[^"]*">(?:<a[^>]*>)?(\d+)', row)]

    rows = [cells(r) for r in body_rows if "<td" in r]
    assert rows and [sum(col) for col in zip(*rows, strict=True)] == cells(totals)
