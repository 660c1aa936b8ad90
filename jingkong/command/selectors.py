"""Reads of directives, tasks, problems and field workers, always through the caller's region scope.

* Tasks are scoped by their region; a service volunteer (and anybody asking for ``mine``) sees only the tasks
  assigned to the field worker linked to their account. Anything else answers 404.
* A directive is visible to whoever sees its issuing region or any of its tasks; its tree shows only the tasks in
  the caller's scope.
* Problems are scoped by the grid they were found in.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db.models import Exists, OuterRef, Q, QuerySet

from jingkong.access.guard import Scope
from jingkong.access.roles import Role
from jingkong.command import rules
from jingkong.command.models import Directive, FieldWorker, Problem, Task, TaskReport
from jingkong.core import clock
from jingkong.core.exceptions import NotFound

MAX_ID = 2**62


def only_own_tasks(user) -> bool:
    """Volunteers see only the tasks assigned to them."""
    return getattr(user, "role", "") == Role.SERVICE_VOLUNTEER


def task_list(*, scope: Scope, user=None, status: str = "", open_only: bool = False, mine: bool = False,
              directive_id: int | None = None, source: str = "", region: str = "", overdue: bool = False,
              escalated: bool = False, leaves_only: bool = False, now: dt.datetime | None = None) -> QuerySet[Task]:
    qs = scope.filter(Task.objects.select_related("assignee", "directive", "building"), "region_code")
    if only_own_tasks(user) or mine:
        qs = qs.filter(assignee__user_id=getattr(user, "pk", None), assignee__isnull=False)
    if status:
        qs = qs.filter(status=status)
    elif open_only or overdue:
        qs = qs.filter(status__in=rules.OPEN_TASK)
    if directive_id:
        qs = qs.filter(directive_id=directive_id)
    if source:
        qs = qs.filter(source=source)
    if region:
        qs = qs.filter(region_code__startswith=region)
    if overdue:
        qs = qs.filter(deadline__lt=now or clock.now())
    if escalated:
        qs = qs.filter(escalated_at__isnull=False)
    if leaves_only:
        qs = qs.filter(~Exists(Task.objects.filter(parent_id=OuterRef("pk"))))
    return qs.order_by("deadline", "id")


def task_get(*, scope: Scope, user, task_id: int) -> Task:
    if not 0 < task_id < MAX_ID:
        raise NotFound("task not found")
    task = Task.objects.select_related("assignee", "directive", "building", "parent").filter(pk=task_id).first()
    if task is None or not scope.contains(task.region_code):
        raise NotFound("task not found")
    if only_own_tasks(user) and (task.assignee is None or task.assignee.user_id != user.pk):
        raise NotFound("task not found")
    return task


def task_reports(task: Task) -> QuerySet[TaskReport]:
    return TaskReport.objects.filter(task=task).select_related("by").order_by("at", "id")


def task_report_get(*, scope: Scope, user, report_id: int) -> TaskReport:
    if not 0 < report_id < MAX_ID:
        raise NotFound("report not found")
    report = TaskReport.objects.filter(pk=report_id).first()
    if report is None:
        raise NotFound("report not found")
    task_get(scope=scope, user=user, task_id=report.task_id)
    return report


def task_children(*, scope: Scope, task: Task) -> QuerySet[Task]:
    return scope.filter(Task.objects.filter(parent=task).select_related("assignee"), "region_code").order_by(
        "region_code")


# --- directives -----------------------------------------------------------------------------------------------------


def _directive_visible(scope: Scope) -> Q:
    if scope.prefix is None:
        return Q(pk__in=[])
    if scope.is_everything:
        return Q()
    return Q(region_code__startswith=scope.prefix) | Q(
        Exists(Task.objects.filter(directive_id=OuterRef("pk"), region_code__startswith=scope.prefix)))


def directive_list(*, scope: Scope, status: str = "", category: str = "") -> QuerySet[Directive]:
    qs = Directive.objects.filter(_directive_visible(scope)).select_related("issued_by")
    if status:
        qs = qs.filter(status=status)
    if category:
        qs = qs.filter(category=category)
    return qs.order_by("-issued_at", "-id")


def directive_get(*, scope: Scope, directive_id: int | None = None, ref: str | None = None) -> Directive:
    qs = Directive.objects.filter(_directive_visible(scope)).select_related("issued_by")
    if directive_id is not None:
        if not 0 < directive_id < MAX_ID:
            raise NotFound("directive not found")
        directive = qs.filter(pk=directive_id).first()
    else:
        directive = qs.filter(ref=(ref or "")[:32]).first()
    if directive is None:
        raise NotFound("directive not found")
    return directive


def directive_targets(directive: Directive) -> list[str]:
    return list(Task.objects.filter(directive=directive, parent__isnull=True).order_by("region_code")
                .values_list("region_code", flat=True))


def directive_tree(*, scope: Scope, directive: Directive, now: dt.datetime | None = None) -> list[dict]:
    """The directive's chain as nested nodes (the tasks in the caller's scope; the top ones are those whose parent
    lies outside it). Each node carries its own task and the counts of the grid-level (leaf) tasks under it:
    ``leaves``, ``done``, ``overdue``, ``escalated``, ``percent``; a leaf's ``percent`` is its own progress."""
    from jingkong.geo.models import Region

    now = now or clock.now()
    rows = list(scope.filter(Task.objects.filter(directive=directive), "region_code").values(
        "id", "parent_id", "region_code", "level", "status", "deadline", "target_count", "done_count",
        "acknowledged_at", "done_at", "escalated_at", "escalated_to", "assignee__name"))
    names = dict(Region.objects.filter(code__in=[r["region_code"] for r in rows]).values_list("code", "name"))
    by_id = {r["id"]: dict(r, name=names.get(r["region_code"], r["region_code"]), children=[]) for r in rows}
    roots = []
    for node in by_id.values():
        parent = by_id.get(node["parent_id"])
        (parent["children"] if parent else roots).append(node)

    def fill(node: dict) -> tuple[int, int, int, int]:
        node["children"].sort(key=lambda n: n["region_code"])
        node["overdue_self"] = node["status"] in rules.OPEN_TASK and node["deadline"] < now
        if not node["children"]:
            counts = (1, int(node["status"] == "done"), int(node["overdue_self"]), int(bool(node["escalated_at"])))
            node["percent"] = rules.task_progress(status=node["status"], done_count=node["done_count"],
                                                  target_count=node["target_count"])
        else:
            sums = [fill(c) for c in node["children"]]
            counts = tuple(sum(s[i] for s in sums) for i in range(4))
            node["percent"] = rules.percent(counts[1], counts[0])
        node["leaves"], node["done"], node["overdue"], node["escalated"] = counts
        return counts

    for root in roots:
        fill(root)
    roots.sort(key=lambda n: n["region_code"])
    return roots


# --- problems -------------------------------------------------------------------------------------------------------


def problem_list(*, scope: Scope, status: str = "", open_only: bool = False, category: str = "", urgency: str = "",
                 region: str = "", responsible: str = "", overdue: bool = False,
                 now: dt.datetime | None = None) -> QuerySet[Problem]:
    qs = scope.filter(Problem.objects.select_related("reported_by"), "region_code")
    if status:
        qs = qs.filter(status=status)
    elif open_only or overdue:
        qs = qs.filter(status__in=rules.OPEN_PROBLEM)
    if category:
        qs = qs.filter(category=category)
    if urgency:
        qs = qs.filter(urgency=urgency)
    if region:
        qs = qs.filter(region_code__startswith=region)
    if responsible:
        qs = qs.filter(responsible_code=responsible)
    if overdue:
        qs = qs.filter(deadline__lt=now or clock.now())
    return qs.order_by("-reported_at", "-id")


def problem_get(*, scope: Scope, problem_id: int | None = None, ref: str | None = None) -> Problem:
    qs = Problem.objects.select_related("reported_by")
    if problem_id is not None:
        if not 0 < problem_id < MAX_ID:
            raise NotFound("problem not found")
        problem = qs.filter(pk=problem_id).first()
    else:
        problem = qs.filter(ref=(ref or "")[:32]).first()
    if problem is None or not scope.contains(problem.region_code):
        raise NotFound("problem not found")
    return problem


def problem_history(problem: Problem):
    return problem.updates.select_related("by").order_by("at", "id")


# --- field workers --------------------------------------------------------------------------------------------------


def worker_list(*, scope: Scope, role: str = "", region: str = "", active: bool | None = None,
                q: str = "") -> QuerySet[FieldWorker]:
    qs = scope.filter(FieldWorker.objects.select_related("user"), "region_code")
    if role:
        qs = qs.filter(role=role)
    if region:
        qs = qs.filter(region_code__startswith=region)
    if active is not None:
        qs = qs.filter(active=active)
    if q:
        qs = qs.filter(name__icontains=q)
    return qs.order_by("region_code", "role", "name", "id")


def worker_get(*, scope: Scope, worker_id: int) -> FieldWorker:
    if not 0 < worker_id < MAX_ID:
        raise NotFound("field worker not found")
    worker = FieldWorker.objects.select_related("user").filter(pk=worker_id).first()
    if worker is None or not scope.contains(worker.region_code):
        raise NotFound("field worker not found")
    return worker


def worker_building_ids(workers) -> dict[int, list[int]]:
    through = FieldWorker.buildings.through
    out: dict[int, list[int]] = defaultdict(list)
    for wid, bid in through.objects.filter(fieldworker_id__in=[w.pk for w in workers]).values_list(
            "fieldworker_id", "building_id"):
        out[wid].append(bid)
    return out


def worker_open_tasks(workers) -> dict[int, int]:
    from django.db.models import Count

    return dict(Task.objects.filter(assignee_id__in=[w.pk for w in workers], status__in=rules.OPEN_TASK)
                .values_list("assignee_id").annotate(n=Count("id")).values_list("assignee_id", "n"))
