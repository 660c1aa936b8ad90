"""Directive services (指令一贯到底): issue a directive to regions and cascade it down the region tree as tasks, cancel
it, and escalate overdue tasks and problems to the level above.

Cascade: one task per region of each target's subtree down to the grids, ``parent`` linking each task to the task of
the region above (the chain). Created level by level with one bulk INSERT per level (four at most), so a directive
to a whole district of 2,000 grids is a handful of statements. Grid tasks land with the grid's worker
(:func:`jingkong.command.workers.assignees_for`); the tasks above are worked by the officers of their region.

Acknowledging, reporting, reassigning and the roll-up of a finished task up its chain: :mod:`jingkong.command.tasks`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from jingkong.access import audit
from jingkong.access.guard import Scope
from jingkong.command import attachments, rules
from jingkong.command.models import (
    Directive,
    DirectiveStatus,
    Problem,
    ProblemUpdate,
    Task,
    TaskSource,
    TaskStatus,
)
from jingkong.command.tasks import RulesMissing, directive_rules
from jingkong.command.workers import assignees_for
from jingkong.core import clock
from jingkong.core.events import emit, emit_many
from jingkong.core.exceptions import NotFound, ValidationFailed

MAX_TARGETS = 200
MAX_AHEAD = dt.timedelta(days=366)  # a sanity bound on input (a typo in the year), not a policy rule


def _next_ref(prefix: str, model, now: dt.datetime) -> str:
    day = now.astimezone(ZoneInfo(clock.local_time_zone())).strftime("%Y%m%d")
    stem = f"{prefix}-{day}-"
    last = model.objects.filter(ref__startswith=stem).order_by("-ref").values_list("ref", flat=True).first()
    n = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return f"{stem}{n:04d}"


def directive_issue(*, actor, scope: Scope, title: str, text: str, category: str, region_codes: list[str],
                    deadline: dt.datetime, attachments_in: list[dict] | None = None, client_key: str = "",
                    request=None) -> Directive:
    """Issue a directive to regions of the caller's subtree; returns it with its tasks created. The same
    ``client_key`` from the same issuer answers the first directive (``directive.created`` is False then)."""
    from jingkong.geo.models import Region

    now = clock.now()
    client_key = (client_key or "").strip()[:64]
    actor_id = getattr(actor, "pk", None)
    if client_key and actor_id:
        first = Directive.objects.filter(issued_by_id=actor_id, client_key=client_key).first()
        if first is not None:
            first.created = False
            return first
    if not region_codes:
        raise ValidationFailed(_("name at least one region"), extra={"field": "region_codes"})
    if len(region_codes) > MAX_TARGETS:
        raise ValidationFailed(_("at most %(n)d regions") % {"n": MAX_TARGETS}, extra={"field": "region_codes"})
    for code in region_codes:
        scope.check(code, "region")
    targets = rules.outermost(region_codes)
    known = set(Region.objects.filter(code__in=targets).values_list("code", flat=True))
    if len(known) != len(targets):
        raise NotFound(_("region not found"))
    if deadline.tzinfo is None or deadline.utcoffset() is None:  # comparing it with the clock would be a 500
        raise ValidationFailed(_("deadline: give a time zone (e.g. 2022-04-01T18:00:00+08:00)"),
                               extra={"field": "deadline"})
    if deadline <= now:
        raise ValidationFailed(_("the deadline has passed already"), extra={"field": "deadline"})
    if deadline > now + MAX_AHEAD:
        raise ValidationFailed(_("the deadline lies more than a year ahead; check the year"),
                               extra={"field": "deadline"})
    links = attachments.validate(attachments_in or [], scope=scope)
    issued_from = scope.prefix or (targets[0] if len(targets) == 1 else rules.parent_code(targets[0]) or targets[0])
    for attempt in range(3):
        try:
            with transaction.atomic():
                directive = Directive.objects.create(
                    ref=_next_ref("ZL", Directive, now), title=title, text=text, category=category,
                    region_code=issued_from, deadline=deadline, attachments=links, issued_by=actor, issued_at=now,
                    updated_at=now, client_key=client_key if actor_id else "")
                counts = _cascade(directive, targets, now)
                audit.record(actor=actor, action="directive.issue", object_type="command.directive",
                             object_id=directive.pk, region_code=directive.region_code, request=request,
                             detail={"ref": directive.ref, "regions": targets, "tasks": counts})
                emit("command.directive_issued", subject=directive, region_code=directive.region_code, actor=actor,
                     payload={"ref": directive.ref, "category": category, "regions": targets, "tasks": counts,
                              "deadline": deadline.isoformat()})
            directive.created = True
            return directive
        except IntegrityError:
            if client_key and actor_id:  # a concurrent resend with the same key won
                first = Directive.objects.filter(issued_by_id=actor_id, client_key=client_key).first()
                if first is not None:
                    first.created = False
                    return first
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _cascade(directive: Directive, targets: list[str], now: dt.datetime) -> dict:
    """Tasks for every region under the targets, level by level, each linked to its parent region's task."""
    from jingkong.geo.models import Region

    regions: list[tuple[str, str, str | None]] = []
    for target in targets:
        regions += list(Region.objects.filter(code__startswith=target)
                        .values_list("code", "level", "parent__code"))
    by_depth: dict[int, list[tuple[str, str, str | None]]] = defaultdict(list)
    for code, level, parent in regions:
        by_depth[len(code)].append((code, level, parent))
    grids = [(code, None) for code, level, _ in regions if level == "grid"]
    assignees = assignees_for(grids)
    task_of: dict[str, int] = {}
    counts: dict[str, int] = {}
    for depth in sorted(by_depth):
        rows = [Task(directive=directive, parent_id=task_of.get(parent) if parent else None,
                     source=TaskSource.DIRECTIVE, title=directive.title[:255], region_code=code, level=level,
                     assignee_id=assignees.get((code, None)) if level == "grid" else None,
                     status=TaskStatus.ASSIGNED, deadline=directive.deadline, created_at=now, updated_at=now)
                for code, level, parent in sorted(by_depth[depth])]
        created = Task.objects.bulk_create(rows, batch_size=2000)
        if any(t.pk is None for t in created):  # a backend without RETURNING: read the ids back
            ids = dict(Task.objects.filter(directive=directive, region_code__in=[t.region_code for t in rows])
                       .values_list("region_code", "pk"))
        else:
            ids = {t.region_code: t.pk for t in created}
        task_of.update(ids)
        for _code, level, _parent in by_depth[depth]:
            counts[level] = counts.get(level, 0) + 1
    return counts


def directive_cancel(*, actor, directive: Directive, reason: str, request=None) -> Directive:
    if not reason.strip():
        raise ValidationFailed(_("say why the directive is cancelled"), extra={"field": "reason"})
    with transaction.atomic():
        directive = Directive.objects.select_for_update().get(pk=directive.pk)
        if directive.status != DirectiveStatus.OPEN:
            raise ValidationFailed(_("the directive is %(status)s") % {"status": directive.get_status_display()}, extra={"field": "status"})
        now = clock.now()
        directive.status, directive.updated_at = DirectiveStatus.CANCELLED, now
        directive.save(update_fields=["status", "updated_at"])
        n = Task.objects.filter(directive=directive).exclude(status__in=rules.FINISHED_TASK) \
            .update(status=TaskStatus.CANCELLED, updated_at=now)
        audit.record(actor=actor, action="directive.cancel", object_type="command.directive", object_id=directive.pk,
                     region_code=directive.region_code, request=request, detail={"reason": reason, "tasks": n})
        emit("command.directive_cancelled", subject=directive, region_code=directive.region_code, actor=actor,
             payload={"ref": directive.ref, "tasks_cancelled": n, "reason": reason})
    return directive


# --- escalation -----------------------------------------------------------------------------------------------------


def escalate(*, prefix: str = "", now: dt.datetime | None = None, actor=None) -> dict:
    """Escalate overdue tasks (once, to the region above) and overdue problems (one level up, new deadline) under
    ``prefix`` (all when empty), by the rules of the profile in force in each street. Safe to run often: only what is
    due changes. Returns counts; regions without a profile (or a profile without the ``directives`` section) are
    skipped and listed."""
    now = now or clock.now()
    cache: dict[str, dict | None] = {}
    skipped: set[str] = set()

    def rules_for(code: str) -> dict | None:
        key = code[:9]
        if key not in cache:
            try:
                cache[key] = directive_rules(key, now)
            except RulesMissing:
                cache[key] = None
        if cache[key] is None:
            skipped.add(key)
        return cache[key]

    with transaction.atomic():
        tasks = _escalate_tasks(prefix, now, rules_for, actor)
        problems = _escalate_problems(prefix, now, rules_for, actor)
    return {"tasks_escalated": tasks, "problems_escalated": problems, "skipped_regions": sorted(skipped)}


def _escalate_tasks(prefix: str, now: dt.datetime, rules_for, actor) -> int:
    candidates = Task.objects.filter(status__in=rules.OPEN_TASK, escalated_at__isnull=True, deadline__lte=now) \
        .exclude(level="district")
    if prefix:
        candidates = candidates.filter(region_code__startswith=prefix)
    to: dict[str, list[int]] = defaultdict(list)
    for pk, code, level, status, deadline in candidates.values_list("pk", "region_code", "level", "status",
                                                                    "deadline").iterator(chunk_size=5000):
        r = rules_for(code)
        if r is None:
            continue
        if rules.task_escalation_due(level=level, status=status, deadline=deadline, escalated=False, now=now,
                                     grace_hours=r["task_escalation_hours"]):
            to[rules.parent_code(code)].append(pk)
    n = 0
    for code, ids in to.items():
        for start in range(0, len(ids), 900):
            n += Task.objects.filter(pk__in=ids[start:start + 900], escalated_at__isnull=True) \
                .update(escalated_at=now, escalated_to=code, updated_at=now)
    if to:
        emit_many([{"type": "command.tasks_escalated", "subject_type": "command.task", "subject_id": "",
                    "region_code": code, "at": now, "payload": {"count": len(ids), "task_ids": ids[:500]}}
                   for code, ids in sorted(to.items())], actor=actor)
        audit.record_many(actor=actor, action="task.escalate", object_type="command.task",
                          items=((pk, code) for code, ids in to.items() for pk in ids))
    return n


def _escalate_problems(prefix: str, now: dt.datetime, rules_for, actor) -> int:
    candidates = Problem.objects.filter(status__in=rules.OPEN_PROBLEM, deadline__lte=now)
    if prefix:
        candidates = candidates.filter(region_code__startswith=prefix)
    updates, events = [], []
    for problem in candidates.only("pk", "ref", "region_code", "responsible_code", "urgency", "status", "deadline"):
        r = rules_for(problem.region_code)
        if r is None or not rules.problem_escalation_due(
                status=problem.status, deadline=problem.deadline, responsible_code=problem.responsible_code, now=now,
                grace_hours=r["problem_escalation_hours"]):
            continue
        before = problem.responsible_code
        problem.responsible_code = rules.parent_code(before)
        problem.deadline = rules.problem_deadline(problem.urgency, at=now, hours_by_urgency=r["problem_hours_by_urgency"])
        updates.append(problem)
        events.append({"type": "command.problem_escalated", "subject_type": "command.problem",
                       "subject_id": problem.pk, "region_code": problem.region_code, "at": now,
                       "payload": {"ref": problem.ref, "from": before, "to": problem.responsible_code}})
    if updates:
        Problem.objects.bulk_update(updates, ["responsible_code", "deadline"], batch_size=500)
        ProblemUpdate.objects.bulk_create([
            ProblemUpdate(problem=p, at=now, by=None, status=p.status, responsible_code=p.responsible_code,
                          note="escalated: overdue") for p in updates])
        emit_many(events, actor=actor)
        audit.record_many(actor=actor, action="problem.escalate", object_type="command.problem",
                          items=((p.pk, p.region_code) for p in updates))
    return len(updates)

