"""/api/v1/command/ routes of the directives area: directives and their chains, tasks (the field workers' list,
acknowledge, report with evidence, photos, reassign, sweep tasks for a testing round), the field worker registry,
problems found, and the roll-up by region.

Reads of roll-ups, directives, workers and problems need COMMAND_VIEW; issuing directives and registering workers
DIRECTIVE_ISSUE; working tasks TASK_WORK (a service volunteer sees only the tasks assigned to them); reporting a
problem PROBLEM_REPORT, working it PROBLEM_HANDLE. Everything is scoped to the caller's region (404 outside).
"""

from __future__ import annotations

from ninja import File, Router, Status
from ninja.files import UploadedFile

from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.command import directives, loop, problems, rollup, selectors, tasks, workers
from jingkong.command.schemas_directives import (
    AutoTasksOut,
    CancelIn,
    CategoryFilterT,
    DirectiveIn,
    DirectiveOut,
    DirectivePage,
    DirectiveStatusFilterT,
    DirectiveTreeOut,
    ProblemCategoryFilterT,
    ProblemCountsOut,
    ProblemDetailOut,
    ProblemIn,
    ProblemOut,
    ProblemPage,
    ProblemStatusFilterT,
    ProblemUpdateIn,
    ProblemUpdateOut,
    ReassignIn,
    RegionCode,
    ReportIn,
    ReportOut,
    RollupOut,
    SourceFilterT,
    SweepIn,
    TaskDetailOut,
    TaskOut,
    TaskPage,
    TaskStatusFilterT,
    Text,
    UrgencyFilterT,
    WorkerIn,
    WorkerOut,
    WorkerRoleFilterT,
    WorkerUpdateIn,
    directive_out,
    problem_out,
    problem_update_out,
    report_out,
    task_out,
    tree_out,
    worker_out,
)
from jingkong.core import clock
from jingkong.core.exceptions import NotFound, ValidationFailed

router = Router(tags=["command"])
MAX_PAGE = 100_000


def _page(page: int, page_size: int) -> tuple[int, int]:
    return max(1, min(page, MAX_PAGE)), max(1, min(page_size, 500))


def _paged(qs, page: int, page_size: int) -> tuple[int, int, int, list]:
    page, page_size = _page(page, page_size)
    items = list(qs[(page - 1) * page_size: page * page_size])
    # A first page that is not full holds everything: no COUNT query (a field worker's list, usually).
    count = len(items) if page == 1 and len(items) < page_size else qs.count()
    return count, page, page_size, items


# --- roll-up --------------------------------------------------------------------------------------------------------


@router.get("/rollup", response=RollupOut)
@require(Perm.COMMAND_VIEW)
def rollup_get(request, region: RegionCode = "", directive_id: int | None = None, source: SourceFilterT = ""):
    """Tasks (the work items: tasks without sub-tasks) and problems by region one level below ``region`` (default:
    your region). ``totals`` is the sum of the rows and equals ``region``'s row one level up."""
    if directive_id is not None:
        selectors.directive_get(scope=request.scope, directive_id=directive_id)
    return rollup.rollup(scope=request.scope, region=region, directive_id=directive_id, source=source)


# --- directives -----------------------------------------------------------------------------------------------------


def _directive(request, d) -> dict:
    progress = rollup.directive_progress(scope=request.scope, directive_ids=[d.pk])[d.pk]
    return directive_out(d, targets=selectors.directive_targets(d), progress=progress)


@router.get("/directives", response=DirectivePage)
@require(Perm.COMMAND_VIEW)
def directives_list(request, status: DirectiveStatusFilterT = "", category: CategoryFilterT = "", page: int = 1,
                    page_size: int = 50):
    """Directives issued in your region or with tasks in it, newest first, with the progress of their grid tasks in
    your region."""
    count, page, page_size, items = _paged(
        selectors.directive_list(scope=request.scope, status=status, category=category), page, page_size)
    progress = rollup.directive_progress(scope=request.scope, directive_ids=[d.pk for d in items])
    return {"count": count, "page": page, "page_size": page_size,
            "items": [directive_out(d, targets=selectors.directive_targets(d), progress=progress[d.pk])
                      for d in items]}


@router.post("/directives", response={200: DirectiveOut, 201: DirectiveOut})
@require(Perm.DIRECTIVE_ISSUE)
def directives_issue(request, payload: DirectiveIn):
    """Issue a directive to regions of your subtree: it cascades as one task per region down to every grid."""
    d = directives.directive_issue(
        actor=request.jk_user, scope=request.scope, title=payload.title, text=payload.text,
        category=payload.category, region_codes=payload.region_codes, deadline=payload.deadline,
        attachments_in=[a.dict() for a in payload.attachments], client_key=payload.client_key, request=request)
    return Status(201 if d.created else 200, _directive(request, d))


@router.get("/directives/{directive_id}", response=DirectiveOut)
@require(Perm.COMMAND_VIEW)
def directives_get(request, directive_id: int):
    return _directive(request, selectors.directive_get(scope=request.scope, directive_id=directive_id))


@router.get("/directives/{directive_id}/tree", response=DirectiveTreeOut)
@require(Perm.COMMAND_VIEW)
def directives_tree(request, directive_id: int):
    """The whole chain of the directive as far as you can see it: each region's task with the progress of the grid
    tasks under it."""
    d = selectors.directive_get(scope=request.scope, directive_id=directive_id)
    tree = selectors.directive_tree(scope=request.scope, directive=d)
    return {"directive": _directive(request, d), "tree": [tree_out(n) for n in tree]}


@router.post("/directives/{directive_id}/cancel", response=DirectiveOut)
@require(Perm.DIRECTIVE_ISSUE)
def directives_cancel(request, directive_id: int, payload: CancelIn):
    """Cancel a directive issued from your region (its open tasks are cancelled)."""
    d = selectors.directive_get(scope=request.scope, directive_id=directive_id)
    request.scope.check(d.region_code, "directive")  # seeing its tasks is not issuing it
    d = directives.directive_cancel(actor=request.jk_user, directive=d, reason=payload.reason, request=request)
    return _directive(request, d)


# --- tasks ----------------------------------------------------------------------------------------------------------


@router.get("/tasks", response=TaskPage)
@require(Perm.TASK_WORK)
def tasks_list(request, status: TaskStatusFilterT = "", open: bool = False, mine: bool = False,
               source: SourceFilterT = "", region: RegionCode = "", directive_id: int | None = None,
               overdue: bool = False, escalated: bool = False, work_items: bool = False, page: int = 1,
               page_size: int = 50):
    """Tasks in your region, earliest deadline first (``mine``: those assigned to you; a volunteer always sees only
    theirs; ``work_items``: only tasks without sub-tasks, the ones the roll-up counts)."""
    if directive_id is not None and not 0 < directive_id < selectors.MAX_ID:
        raise ValidationFailed("directive_id: out of range", extra={"field": "directive_id"})
    qs = selectors.task_list(scope=request.scope, user=request.jk_user, status=status, open_only=open, mine=mine,
                             source=source, region=region, directive_id=directive_id, overdue=overdue,
                             escalated=escalated, leaves_only=work_items)
    count, page, page_size, items = _paged(qs, page, page_size)
    now = clock.now()
    return {"count": count, "page": page, "page_size": page_size, "items": [task_out(t, now=now) for t in items]}


@router.post("/tasks/sweep", response={201: AutoTasksOut})
@require(Perm.DIRECTIVE_ISSUE)
def tasks_sweep(request, payload: SweepIn):
    """Sweep-untested tasks for a testing round: one per grid of your region with people not yet sampled (or to be
    resampled), for that grid's worker; idempotent per round, wave and grid."""
    from jingkong.testing import selectors_coverage

    campaign = selectors_coverage.campaign_get(scope=request.scope, campaign_id=payload.campaign_id)
    items = loop.sweep_items(campaign, scope=request.scope, wave=payload.wave)
    result = tasks.create_auto_tasks("sweep_untested", items, actor=request.jk_user)
    return Status(201, {"created": result["created"], "existing": result["existing"], "items": len(items)})


def _task_detail(request, task) -> dict:
    now = clock.now()
    out = task_out(task, now=now)
    out["reports"] = [report_out(r) for r in selectors.task_reports(task)]
    out["children"] = [task_out(c, now=now) for c in selectors.task_children(scope=request.scope, task=task)]
    return out


@router.get("/tasks/{task_id}", response=TaskDetailOut)
@require(Perm.TASK_WORK)
def tasks_get(request, task_id: int):
    return _task_detail(request, selectors.task_get(scope=request.scope, user=request.jk_user, task_id=task_id))


@router.post("/tasks/{task_id}/acknowledge", response=TaskDetailOut)
@require(Perm.TASK_WORK)
def tasks_acknowledge(request, task_id: int):
    task = selectors.task_get(scope=request.scope, user=request.jk_user, task_id=task_id)
    task = tasks.task_acknowledge(actor=request.jk_user, task=task, request=request)
    return _task_detail(request, selectors.task_get(scope=request.scope, user=request.jk_user, task_id=task.pk))


@router.post("/tasks/{task_id}/report", response={201: ReportOut})
@require(Perm.TASK_WORK)
def tasks_report(request, task_id: int, payload: ReportIn):
    """Report progress (``in_progress``) or completion (``done``: needs a count or a note; add photos with
    ``/photos``). A task with sub-tasks is done when they all are."""
    task = selectors.task_get(scope=request.scope, user=request.jk_user, task_id=task_id)
    report = tasks.task_report(actor=request.jk_user, task=task, status=payload.status, count=payload.count,
                               note=payload.note, request=request)
    return Status(201, report_out(report))


@router.post("/tasks/{task_id}/photos", response={201: ReportOut})
@require(Perm.TASK_WORK)
def tasks_photo(request, task_id: int, file: UploadedFile = File(None), note: Text = ""):  # noqa: B008
    """Attach a photo (JPEG, PNG or WebP, up to 8 MB; multipart field ``file``) to the task as evidence."""
    task = selectors.task_get(scope=request.scope, user=request.jk_user, task_id=task_id)
    if file is None:
        raise ValidationFailed("no photo uploaded (multipart field 'file')", extra={"field": "file"})
    report = tasks.task_add_photo(actor=request.jk_user, task=task, upload=file, note=note[:4000], request=request)
    return Status(201, report_out(report))


@router.post("/tasks/{task_id}/reassign", response=TaskOut)
@require(Perm.TASK_WORK)
def tasks_reassign(request, task_id: int, payload: ReassignIn):
    """Give the task to another active field worker of your region who covers its place."""
    task = selectors.task_get(scope=request.scope, user=request.jk_user, task_id=task_id)
    task = tasks.task_reassign(actor=request.jk_user, scope=request.scope, task=task, worker_id=payload.worker_id,
                               request=request)
    return task_out(selectors.task_get(scope=request.scope, user=request.jk_user, task_id=task.pk), now=clock.now())


# --- field workers --------------------------------------------------------------------------------------------------


def _workers_out(request, items) -> list[dict]:
    buildings = selectors.worker_building_ids(items)
    open_tasks = selectors.worker_open_tasks(items)
    show_phone = request.jk_user.has_role_perm(Perm.PERSON_VIEW_PHONE)
    return [worker_out(w, buildings=buildings.get(w.pk, []), open_tasks=open_tasks.get(w.pk, 0),
                       show_phone=show_phone) for w in items]


@router.get("/workers", response=list[WorkerOut])
@require(Perm.COMMAND_VIEW)
def workers_list(request, role: WorkerRoleFilterT = "", region: RegionCode = "", active: bool | None = None,
                 q: Text = "", limit: int = 500):
    """Grid workers, building captains and volunteers registered in your region."""
    qs = selectors.worker_list(scope=request.scope, role=role, region=region, active=active, q=q[:64])
    return _workers_out(request, list(qs[: max(1, min(limit, 5000))]))


@router.post("/workers", response={201: WorkerOut})
@require(Perm.DIRECTIVE_ISSUE)
def workers_create(request, payload: WorkerIn):
    w = workers.worker_create(actor=request.jk_user, scope=request.scope, request=request, **payload.dict())
    return Status(201, _workers_out(request, [w])[0])


@router.get("/workers/{worker_id}", response=WorkerOut)
@require(Perm.COMMAND_VIEW)
def workers_get(request, worker_id: int):
    return _workers_out(request, [selectors.worker_get(scope=request.scope, worker_id=worker_id)])[0]


@router.patch("/workers/{worker_id}", response=WorkerOut)
@require(Perm.DIRECTIVE_ISSUE)
def workers_update(request, worker_id: int, payload: WorkerUpdateIn):
    w = selectors.worker_get(scope=request.scope, worker_id=worker_id)
    w = workers.worker_update(actor=request.jk_user, scope=request.scope, worker=w, request=request,
                              **payload.dict(exclude_unset=True))
    return _workers_out(request, [selectors.worker_get(scope=request.scope, worker_id=w.pk)])[0]


# --- problems -------------------------------------------------------------------------------------------------------


@router.get("/problems", response=ProblemPage)
@require(Perm.COMMAND_VIEW)
def problems_list(request, status: ProblemStatusFilterT = "", open: bool = False,
                  category: ProblemCategoryFilterT = "", urgency: UrgencyFilterT = "", region: RegionCode = "",
                  responsible: RegionCode = "", overdue: bool = False, page: int = 1, page_size: int = 50):
    qs = selectors.problem_list(scope=request.scope, status=status, open_only=open, category=category,
                                urgency=urgency, region=region, responsible=responsible, overdue=overdue)
    count, page, page_size, items = _paged(qs, page, page_size)
    now = clock.now()
    return {"count": count, "page": page, "page_size": page_size, "items": [problem_out(p, now=now) for p in items]}


@router.post("/problems", response={200: ProblemOut, 201: ProblemOut})
@require(Perm.PROBLEM_REPORT)
def problems_report(request, payload: ProblemIn):
    """Report a problem at a place on the map (``lon``/``lat``, located to its grid) or in a region of yours; it is
    routed to the responsible level with a deadline by urgency (the profile's ``directives`` rules)."""
    p = problems.problem_report(actor=request.jk_user, scope=request.scope, request=request, **payload.dict())
    return Status(201 if p.created else 200, problem_out(p, now=clock.now()))


@router.get("/problems/counts", response=ProblemCountsOut)
@require(Perm.COMMAND_VIEW)
def problems_counts(request, region: RegionCode = "", open: bool = True):
    """Problems by category and street (open ones by default)."""
    return rollup.problem_breakdown(scope=request.scope, region=region, open_only=open)


@router.get("/problems/{problem_id}", response=ProblemDetailOut)
@require(Perm.COMMAND_VIEW)
def problems_get(request, problem_id: int):
    p = selectors.problem_get(scope=request.scope, problem_id=problem_id)
    out = problem_out(p, now=clock.now())
    out["history"] = [problem_update_out(u) for u in selectors.problem_history(p)]
    return out


@router.post("/problems/{problem_id}/updates", response={201: ProblemUpdateOut})
@require(Perm.PROBLEM_HANDLE)
def problems_update(request, problem_id: int, payload: ProblemUpdateIn):
    """Work a problem: status (in_progress / resolved with a resolution / rejected), route it to another level that
    contains it (new deadline), or add a note."""
    p = selectors.problem_get(scope=request.scope, problem_id=problem_id)
    u = problems.problem_update(actor=request.jk_user, scope=request.scope, problem=p, request=request,
                                **payload.dict())
    return Status(201, problem_update_out(u))


@router.post("/problems/{problem_id}/photo", response=ProblemOut)
@require(Perm.PROBLEM_REPORT)
def problems_photo(request, problem_id: int, file: UploadedFile = File(None)):  # noqa: B008
    """Attach a photo (JPEG, PNG or WebP, up to 8 MB; multipart field ``file``) to a problem of your region that has
    none yet (a photo is evidence: never replaced, 409). Without ``command.view`` (a volunteer) only to a problem you
    reported yourself (404 otherwise: you do not see the others)."""
    p = selectors.problem_get(scope=request.scope, problem_id=problem_id)
    if not request.jk_user.has_role_perm(Perm.COMMAND_VIEW) and p.reported_by_id != request.jk_user.pk:
        raise NotFound("problem not found")
    if file is None:
        raise ValidationFailed("no photo uploaded (multipart field 'file')", extra={"field": "file"})
    p = problems.problem_add_photo(actor=request.jk_user, problem=p, upload=file, request=request)
    return problem_out(p, now=clock.now())
