"""Set-based roll-up of tasks and problems by region (district → street → community → grid).

The rule that keeps every screen consistent with its drill-down: a task is counted once, where the work is — the
tasks with no sub-tasks (grid tasks of a directive, automatic tasks); a directive's street and community tasks are
containers whose progress *is* their grid tasks'. Rows are one GROUP BY over the region code cut to the breakdown
level's length, so a street's row is exactly the sum of its communities' rows, and so on down. Work attached to the
region itself (shorter codes than the breakdown level) gets a row of its own (``direct=True``) rather than vanishing.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.functions import Substr

from jingkong.access.guard import Scope
from jingkong.command import rules
from jingkong.command.models import Problem, Task
from jingkong.core import clock
from jingkong.core.exceptions import NotFound
from jingkong.geo.rules import CODE_LENGTH

NEXT_LEVEL = {"district": "street", "street": "community", "community": "grid", "grid": "grid"}
TASK_FIELDS = ("tasks", "open", "done", "overdue", "escalated", "unassigned")
PROBLEM_FIELDS = ("problems_open", "problems_overdue", "problems_resolved", "problems_urgent")


def area(scope: Scope, region: str = "") -> dict:
    """The region a roll-up looks at: ``region`` (inside the scope, 404 otherwise) or the top of the scope."""
    from jingkong.geo.models import Region

    if region:
        scope.check(region, "region")
        row = Region.objects.filter(code=region).values("code", "name", "level").first()
    elif scope.is_everything:
        row = Region.objects.filter(parent__isnull=True).order_by("code").values("code", "name", "level").first()
    else:
        row = Region.objects.filter(code=scope.prefix).values("code", "name", "level").first()
    if row is None:
        raise NotFound("region not found")
    return row


def leaf_tasks(scope: Scope):
    return scope.filter(Task.objects.filter(~Exists(Task.objects.filter(parent_id=OuterRef("pk")))), "region_code")


def task_counts(qs, length: int, now: dt.datetime) -> dict[str, dict]:
    open_q = Q(status__in=rules.OPEN_TASK)
    rows = (qs.annotate(key=Substr("region_code", 1, length)).values("key").order_by()
            .annotate(tasks=Count("id", filter=~Q(status="cancelled")),
                      open=Count("id", filter=open_q),
                      done=Count("id", filter=Q(status="done")),
                      overdue=Count("id", filter=open_q & Q(deadline__lt=now)),
                      escalated=Count("id", filter=open_q & Q(escalated_at__isnull=False)),
                      unassigned=Count("id", filter=open_q & Q(assignee__isnull=True))))
    return {r["key"]: {f: r[f] for f in TASK_FIELDS} for r in rows}


def problem_counts(qs, length: int, now: dt.datetime) -> dict[str, dict]:
    open_q = Q(status__in=rules.OPEN_PROBLEM)
    rows = (qs.annotate(key=Substr("region_code", 1, length)).values("key").order_by()
            .annotate(problems_open=Count("id", filter=open_q),
                      problems_overdue=Count("id", filter=open_q & Q(deadline__lt=now)),
                      problems_resolved=Count("id", filter=Q(status="resolved")),
                      problems_urgent=Count("id", filter=open_q & ~Q(urgency="normal"))))
    return {r["key"]: {f: r[f] for f in PROBLEM_FIELDS} for r in rows}


def _finish(row: dict) -> dict:
    row["percent_done"] = rules.percent(row["done"], row["tasks"])
    return row


def rollup(*, scope: Scope, region: str = "", directive_id: int | None = None, source: str = "",
           now: dt.datetime | None = None) -> dict:
    """Counts of tasks (and problems, unless one directive is asked for) for each region one level below ``region``;
    ``totals`` is the sum of the rows and equals the region's own row one level up."""
    from jingkong.geo.models import Region

    now = now or clock.now()
    top = area(scope, region)
    level = NEXT_LEVEL.get(top["level"], "grid")
    length = max(CODE_LENGTH[level], len(top["code"]))
    tasks = leaf_tasks(scope).filter(region_code__startswith=top["code"])
    if directive_id:
        tasks = tasks.filter(directive_id=directive_id)
    if source:
        tasks = tasks.filter(source=source)
    counts = task_counts(tasks, length, now)
    problems = {}
    if not directive_id:
        problems = problem_counts(scope.filter(Problem.objects.filter(region_code__startswith=top["code"]),
                                               "region_code"), length, now)
    if length > len(top["code"]):
        children = list(scope.filter(Region.objects.filter(code__startswith=top["code"], level=level),
                                     "code").order_by("code").values_list("code", "name", "level"))
    else:
        children = [(top["code"], top["name"], top["level"])]
    rows = []
    seen = set()
    for code, name, lvl in children:
        seen.add(code)
        row = {"code": code, "name": name, "level": lvl, "direct": False,
               **counts.get(code, dict.fromkeys(TASK_FIELDS, 0)),
               **problems.get(code, dict.fromkeys(PROBLEM_FIELDS, 0))}
        rows.append(_finish(row))
    for code in sorted((set(counts) | set(problems)) - seen):  # work attached above the breakdown level
        rows.append(_finish({"code": code, "name": top["name"] if code == top["code"] else code,
                             "level": rules.level_of(code), "direct": True,
                             **counts.get(code, dict.fromkeys(TASK_FIELDS, 0)),
                             **problems.get(code, dict.fromkeys(PROBLEM_FIELDS, 0))}))
    totals = {f: sum(r[f] for r in rows) for f in TASK_FIELDS + PROBLEM_FIELDS}
    return {"region": top, "level": level, "as_of": now, "rows": rows, "totals": _finish(totals)}


def problem_breakdown(*, scope: Scope, region: str = "", open_only: bool = True) -> dict:
    """Problems by category × street (the counts the dashboard shows): ``{"rows": [{category, by_street: {code: n},
    total}], "streets": [...], "total": n}``."""
    top = area(scope, region)
    qs = scope.filter(Problem.objects.filter(region_code__startswith=top["code"]), "region_code")
    if open_only:
        qs = qs.filter(status__in=rules.OPEN_PROBLEM)
    length = max(CODE_LENGTH["street"], len(top["code"]))
    data = (qs.annotate(key=Substr("region_code", 1, length)).values("category", "key").order_by()
            .annotate(n=Count("id")))
    table: dict[str, dict[str, int]] = {}
    streets = set()
    for r in data:
        table.setdefault(r["category"], {})[r["key"]] = r["n"]
        streets.add(r["key"])
    rows = [{"category": c, "by_street": by, "total": sum(by.values())} for c, by in sorted(table.items())]
    return {"region": top, "streets": sorted(streets), "rows": rows, "total": sum(r["total"] for r in rows)}


def directive_progress(*, scope: Scope, directive_ids: list[int], now: dt.datetime | None = None) -> dict[int, dict]:
    """Per directive: counts of its grid-level (leaf) tasks in the caller's scope — one GROUP BY for a page."""
    now = now or clock.now()
    open_q = Q(status__in=rules.OPEN_TASK)
    rows = (leaf_tasks(scope).filter(directive_id__in=directive_ids).values("directive_id").order_by()
            .annotate(tasks=Count("id", filter=~Q(status="cancelled")), done=Count("id", filter=Q(status="done")),
                      open=Count("id", filter=open_q), overdue=Count("id", filter=open_q & Q(deadline__lt=now)),
                      escalated=Count("id", filter=open_q & Q(escalated_at__isnull=False))))
    out = {i: {"tasks": 0, "done": 0, "open": 0, "overdue": 0, "escalated": 0, "percent_done": None}
           for i in directive_ids}
    for r in rows:
        d = {k: r[k] for k in ("tasks", "done", "open", "overdue", "escalated")}
        d["percent_done"] = rules.percent(d["done"], d["tasks"])
        out[r["directive_id"]] = d
    return out
