"""Pages of the directives area under /command/: the landing roll-up (tasks and problems by street → community →
grid, directives, a link to the services pages), directives with their chain (tree), the mobile task list of grid
workers and volunteers with acknowledge / report / photo / reassign, problems (list, map, report, detail) and the
field worker registry.

Every object is looked up through the scoped selectors (404 outside the user's region; a volunteer sees only the
tasks assigned to them) and every write goes through the services. Overdue tasks and problems of the viewer's region
escalate when the landing page, the task list or the problem list is opened (and via ``jingkong command escalate``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.command import attachments, directives, problems, rollup, rules, selectors, tasks, workers
from jingkong.command.models import (
    DirectiveCategory,
    DirectiveStatus,
    ProblemCategory,
    ProblemStatus,
    TaskSource,
    TaskStatus,
    Urgency,
    WorkerRole,
)
from jingkong.core import clock
from jingkong.core.exceptions import ApplicationError, ValidationFailed
from jingkong.people.idnumber import phone_mask

log = logging.getLogger(__name__)


def _tz() -> ZoneInfo:
    return ZoneInfo(clock.local_time_zone())


def _field(data, name: str, *, choices=None, limit: int = 1000) -> str:
    """A form or query value, trimmed, without NUL characters; with ``choices`` an unknown value reads as ""."""
    value = (data.get(name) or "").replace("\x00", "").strip()[:limit]
    if choices is not None and value not in {c[0] for c in choices}:
        return ""
    return value


def _region_param(data, name: str = "region") -> str:
    value = _field(data, name, limit=32)
    return value if value.isdigit() else ""


def _int(data, name: str, *, required: bool = False) -> int | None:
    value = _field(data, name, limit=24)
    if not value:
        if required:
            raise ValidationFailed(_("%(field)s is required") % {"field": name}, extra={"field": name})
        return None
    try:
        number = int(value)
    except ValueError:
        raise ValidationFailed(_("%(field)s: not a number") % {"field": name}, extra={"field": name}) from None
    if not 0 <= number < 2**62:
        raise ValidationFailed(_("%(field)s: out of range") % {"field": name}, extra={"field": name})
    return number


def _escalate(request) -> None:
    """Escalate what is due in the viewer's region (cheap when nothing is due); never breaks the page."""
    try:
        directives.escalate(prefix=request.scope.prefix or "")
    except Exception:  # noqa: BLE001 - a page view must still answer
        log.exception("escalation on page load failed")


def _render(request, template: str, context: dict, status: int = 200):
    """Render with what the viewer's role may open (the area's sub-navigation shows only those)."""
    user = request.jk_user
    context["can_nav"] = {"view": user.has_role_perm(Perm.COMMAND_VIEW), "work": user.has_role_perm(Perm.TASK_WORK),
                          "report": user.has_role_perm(Perm.PROBLEM_REPORT)}
    return render(request, template, context, status=status)


def _error(request, exc: ApplicationError) -> None:
    messages.error(request, exc.message)


# --- landing: the roll-up -----------------------------------------------------------------------------------------


@require(Perm.COMMAND_VIEW)
def index(request):
    _escalate(request)
    region = _region_param(request.GET)
    source = _field(request.GET, "source", choices=TaskSource.choices)
    data = rollup.rollup(scope=request.scope, region=region, source=source)
    top = data["region"]
    chain = []
    if top["code"] != (request.scope.prefix or top["code"]):
        from jingkong.geo.models import Region

        codes = [top["code"][:n] for n in (6, 9, 12) if len(top["code"]) > n]
        names = dict(Region.objects.filter(code__in=codes).values_list("code", "name"))
        chain = [{"code": c, "name": names.get(c, c)} for c in codes if request.scope.contains(c)]
    open_directives = list(selectors.directive_list(scope=request.scope, status=DirectiveStatus.OPEN)[:10])
    progress = rollup.directive_progress(scope=request.scope, directive_ids=[d.pk for d in open_directives])
    breakdown = rollup.problem_breakdown(scope=request.scope, region=top["code"])
    labels = dict(ProblemCategory.choices)
    for row in breakdown["rows"]:
        row["label"] = labels.get(row["category"], row["category"])
        row["cells"] = [row["by_street"].get(s, 0) for s in breakdown["streets"]]
    return _render(request, "command/index.html", {
        "data": data, "chain": chain, "source": source, "sources": TaskSource.choices,
        "drill": data["level"] != top["level"],
        "directives": [{"d": d, "p": progress[d.pk]} for d in open_directives],
        "breakdown": breakdown,
        "can_issue": request.jk_user.has_role_perm(Perm.DIRECTIVE_ISSUE),
        "can_work": request.jk_user.has_role_perm(Perm.TASK_WORK),
        "services_url": "/command/services/",
    })


# --- directives ---------------------------------------------------------------------------------------------------


@require(Perm.COMMAND_VIEW)
def directive_list(request):
    status = _field(request.GET, "status", choices=DirectiveStatus.choices)
    category = _field(request.GET, "category", choices=DirectiveCategory.choices)
    page = Paginator(selectors.directive_list(scope=request.scope, status=status, category=category), 50) \
        .get_page(request.GET.get("page"))
    progress = rollup.directive_progress(scope=request.scope, directive_ids=[d.pk for d in page.object_list])
    return _render(request, "command/directive_list.html", {
        "page": page, "rows": [{"d": d, "p": progress[d.pk]} for d in page.object_list], "status": status,
        "category": category, "statuses": DirectiveStatus.choices, "categories": DirectiveCategory.choices,
        "can_issue": request.jk_user.has_role_perm(Perm.DIRECTIVE_ISSUE),
    })


def _regions_for_form(scope):
    from jingkong.geo.models import Region

    qs = scope.filter(Region.objects.exclude(level="grid"), "code").order_by("code").values_list("code", "name",
                                                                                                "level")
    return list(qs[:500])


def _campaigns_for_form(scope):
    from jingkong.analytics.coverage import campaign_visible
    from jingkong.testing.models import Campaign

    return [c for c in Campaign.objects.order_by("-id")[:200] if campaign_visible(c, scope)][:50]


@require(Perm.DIRECTIVE_ISSUE)
def directive_new(request):
    form = {"title": "", "text": "", "category": "", "regions": [], "deadline": "", "untested": "",
            "contacts": False, "link_url": "", "link_label": ""}
    status = 200
    if request.method == "POST":
        form = {
            "title": _field(request.POST, "title", limit=255), "text": _field(request.POST, "text", limit=20000),
            "category": _field(request.POST, "category", choices=DirectiveCategory.choices),
            "regions": [r for r in (v.replace("\x00", "").strip() for v in request.POST.getlist("regions"))
                        if r.isdigit()][:200],
            "deadline": _field(request.POST, "deadline", limit=40),
            "untested": _field(request.POST, "untested_campaign", limit=20),
            "contacts": bool(request.POST.get("contacts")),
            "link_url": _field(request.POST, "link_url", limit=1000),
            "link_label": _field(request.POST, "link_label", limit=200),
        }
        try:
            if not form["title"] or not form["text"]:
                raise ValidationFailed(_("Give the directive a title and a text."), extra={"field": "title"})
            if not form["category"]:
                raise ValidationFailed(_("Choose a category."), extra={"field": "category"})
            deadline = _parse_local(form["deadline"])
            links = []
            if form["untested"]:
                links.append({"type": "untested_list", "campaign_id": _int(request.POST, "untested_campaign")})
            if form["contacts"]:
                links.append({"type": "contact_queue"})
            if form["link_url"]:
                links.append({"type": "link", "url": form["link_url"], "label": form["link_label"]})
            d = directives.directive_issue(
                actor=request.jk_user, scope=request.scope, title=form["title"], text=form["text"],
                category=form["category"], region_codes=form["regions"], deadline=deadline, attachments_in=links,
                client_key=_field(request.POST, "client_key", limit=64), request=request)
            if d.created:
                messages.success(request, _("Directive %(ref)s issued.") % {"ref": d.ref})
            return redirect("command:directive_detail", ref=d.ref)
        except ApplicationError as exc:
            _error(request, exc)
            status = 422 if exc.status_code in (400, 409, 422) else exc.status_code
    return _render(request, "command/directive_new.html", {
        "form": form, "categories": DirectiveCategory.choices, "regions": _regions_for_form(request.scope),
        "campaigns": _campaigns_for_form(request.scope), "client_key": secrets.token_urlsafe(18),
    }, status=status)


def _parse_local(text: str) -> dt.datetime:
    """A ``datetime-local`` field (local time) → aware UTC."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(_("Give a deadline (date and time)."), extra={"field": "deadline"}) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=_tz())
    return value.astimezone(dt.UTC)


@require(Perm.COMMAND_VIEW)
def directive_detail(request, ref: str):
    d = selectors.directive_get(scope=request.scope, ref=ref)
    tree = selectors.directive_tree(scope=request.scope, directive=d)
    progress = rollup.directive_progress(scope=request.scope, directive_ids=[d.pk])[d.pk]
    flat = []
    labels = dict(TaskStatus.choices)

    def walk(nodes, depth):
        for n in nodes:
            n["status_label"] = labels.get(n["status"], n["status"])
            n["depth"] = depth
            n["indent"] = depth * 1.2
            flat.append(n)
            walk(n["children"], depth + 1)

    walk(tree, 0)
    return _render(request, "command/directive_detail.html", {
        "d": d, "rows": flat, "progress": progress, "targets": selectors.directive_targets(d),
        "links": attachments.resolve(d.attachments, request.scope.prefix or d.region_code),
        "can_cancel": (request.jk_user.has_role_perm(Perm.DIRECTIVE_ISSUE) and d.status == DirectiveStatus.OPEN
                       and request.scope.contains(d.region_code)),
        "can_work": request.jk_user.has_role_perm(Perm.TASK_WORK),
    })


@require(Perm.DIRECTIVE_ISSUE)
@require_POST
def directive_cancel(request, ref: str):
    d = selectors.directive_get(scope=request.scope, ref=ref)
    request.scope.check(d.region_code, "directive")
    try:
        directives.directive_cancel(actor=request.jk_user, directive=d, reason=_field(request.POST, "reason"),
                                    request=request)
        messages.success(request, _("Directive %(ref)s cancelled.") % {"ref": d.ref})
    except ValidationFailed as exc:
        _error(request, exc)
    return redirect("command:directive_detail", ref=d.ref)


# --- tasks --------------------------------------------------------------------------------------------------------


@require(Perm.TASK_WORK)
def task_list(request):
    _escalate(request)
    status = _field(request.GET, "status", choices=TaskStatus.choices)
    source = _field(request.GET, "source", choices=TaskSource.choices)
    mine = request.GET.get("mine") == "1"
    overdue = request.GET.get("overdue") == "1"
    escalated = request.GET.get("escalated") == "1"
    qs = selectors.task_list(scope=request.scope, user=request.jk_user, status=status, open_only=not status,
                             mine=mine, source=source, region=_region_param(request.GET), overdue=overdue,
                             escalated=escalated, leaves_only=request.GET.get("all") != "1")
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    now = clock.now()
    rows = [{"t": t, "overdue": t.status in rules.OPEN_TASK and t.deadline < now,
             "progress": rules.task_progress(status=t.status, done_count=t.done_count, target_count=t.target_count)}
            for t in page.object_list]
    return _render(request, "command/task_list.html", {
        "page": page, "rows": rows, "status": status, "source": source, "mine": mine, "overdue": overdue,
        "escalated": escalated,
        "statuses": TaskStatus.choices, "sources": TaskSource.choices,
        "own_only": selectors.only_own_tasks(request.jk_user), "worker": workers.worker_of_user(request.jk_user),
    })


@require(Perm.TASK_WORK)
def task_detail(request, task_id: int):
    task = selectors.task_get(scope=request.scope, user=request.jk_user, task_id=task_id)
    now = clock.now()
    links = (task.directive.attachments if task.directive_id else None) or (task.payload or {}).get("attachments")
    has_children = task.children.exists()
    candidates = []
    if task.status not in rules.FINISHED_TASK:
        candidates = [w for w in selectors.worker_list(scope=request.scope, active=True)[:500]
                      if rules.nested(w.region_code, task.region_code) and w.pk != task.assignee_id]
    return _render(request, "command/task_detail.html", {
        "t": task, "now": now, "overdue": task.status in rules.OPEN_TASK and task.deadline < now,
        "progress": rules.task_progress(status=task.status, done_count=task.done_count,
                                        target_count=task.target_count),
        "links": attachments.resolve(links or [], task.region_code),
        "reports": selectors.task_reports(task), "children": selectors.task_children(scope=request.scope, task=task),
        "has_children": has_children, "can_ack": task.status == TaskStatus.ASSIGNED,
        "can_report": not has_children and task.status not in rules.FINISHED_TASK,
        "candidates": candidates, "payload": {k: v for k, v in (task.payload or {}).items() if k != "attachments"},
    })


@require(Perm.TASK_WORK)
@require_POST
def task_acknowledge(request, task_id: int):
    task = selectors.task_get(scope=request.scope, user=request.jk_user, task_id=task_id)
    try:
        tasks.task_acknowledge(actor=request.jk_user, task=task, request=request)
        messages.success(request, _("Task acknowledged."))
    except ValidationFailed as exc:
        _error(request, exc)
    return redirect("command:task_detail", task_id=task.pk)


@require(Perm.TASK_WORK)
@require_POST
def task_report(request, task_id: int):
    task = selectors.task_get(scope=request.scope, user=request.jk_user, task_id=task_id)
    try:
        status = _field(request.POST, "status", choices=[("in_progress", ""), ("done", "")])
        if not status:
            raise ValidationFailed(_("Choose in progress or done."), extra={"field": "status"})
        count = _int(request.POST, "count")
        photo = request.FILES.get("photo")
        path = tasks.store_photo(photo) if photo else ""
        tasks.task_report(actor=request.jk_user, task=task, status=status, count=count,
                          note=_field(request.POST, "note", limit=4000), photo=path, request=request)
        messages.success(request, _("Report saved."))
    except ValidationFailed as exc:
        _error(request, exc)
    return redirect("command:task_detail", task_id=task.pk)


@require(Perm.TASK_WORK)
@require_POST
def task_reassign(request, task_id: int):
    task = selectors.task_get(scope=request.scope, user=request.jk_user, task_id=task_id)
    try:
        worker_id = _int(request.POST, "worker_id", required=True)
        task = tasks.task_reassign(actor=request.jk_user, scope=request.scope, task=task, worker_id=worker_id,
                                   request=request)
        messages.success(request, _("Task reassigned to %(name)s.") % {"name": task.assignee.name})
    except ValidationFailed as exc:
        _error(request, exc)
    if selectors.only_own_tasks(request.jk_user):
        return redirect("command:task_list")  # no longer theirs to see
    return redirect("command:task_detail", task_id=task.pk)


@require(Perm.TASK_WORK)
def report_photo(request, report_id: int):
    report = selectors.task_report_get(scope=request.scope, user=request.jk_user, report_id=report_id)
    path, ctype = tasks.photo_file(report.photo)
    return FileResponse(open(path, "rb"), content_type=ctype)


# --- problems -----------------------------------------------------------------------------------------------------


@require(Perm.COMMAND_VIEW)
def problem_list(request):
    _escalate(request)
    status = _field(request.GET, "status", choices=ProblemStatus.choices)
    category = _field(request.GET, "category", choices=ProblemCategory.choices)
    urgency = _field(request.GET, "urgency", choices=Urgency.choices)
    region = _region_param(request.GET)
    qs = selectors.problem_list(scope=request.scope, status=status, open_only=not status, category=category,
                                urgency=urgency, region=region)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    now = clock.now()
    points = [{"ref": p.ref, "lon": p.lon, "lat": p.lat, "urgency": p.urgency,
               "category": str(ProblemCategory(p.category).label), "url": reverse("command:problem_detail",
                                                                                    args=[p.ref])}
              for p in qs.filter(lon__isnull=False, lat__isnull=False)[:2000]]
    return _render(request, "command/problem_list.html", {
        "page": page, "rows": [{"p": p, "overdue": p.status in rules.OPEN_PROBLEM and p.deadline < now}
                               for p in page.object_list],
        "status": status, "category": category, "urgency": urgency, "region": region,
        "statuses": ProblemStatus.choices, "categories": ProblemCategory.choices, "urgencies": Urgency.choices,
        "points": points, "outlines": _outlines(request.scope),
        "breakdown": _breakdown(request), "can_report": request.jk_user.has_role_perm(Perm.PROBLEM_REPORT),
    })


def _breakdown(request) -> dict:
    data = rollup.problem_breakdown(scope=request.scope)
    labels = dict(ProblemCategory.choices)
    for row in data["rows"]:
        row["label"] = labels.get(row["category"], row["category"])
        row["cells"] = [row["by_street"].get(s, 0) for s in data["streets"]]
    return data


def _outlines(scope) -> list[dict]:
    """Simplified outlines of the streets (or the caller's own region and its children) for the problem map."""
    from jingkong.geo.models import Region

    qs = scope.filter(Region.objects.filter(level__in=["street", "community"]), "code")
    return [{"code": c, "name": n, "geometry": g} for c, n, g in
            qs.order_by("code").values_list("code", "name", "geometry_simplified")[:200] if g]


@require(Perm.PROBLEM_REPORT)
def problem_new(request):
    form = {"category": "", "urgency": "normal", "description": "", "lon": "", "lat": "", "region": ""}
    status = 200
    if request.method == "POST":
        form = {"category": _field(request.POST, "category", choices=ProblemCategory.choices),
                "urgency": _field(request.POST, "urgency", choices=Urgency.choices),
                "description": _field(request.POST, "description", limit=4000),
                "lon": _field(request.POST, "lon", limit=30), "lat": _field(request.POST, "lat", limit=30),
                "region": _region_param(request.POST)}
        try:
            if not form["category"] or not form["urgency"]:
                raise ValidationFailed(_("Choose a category and an urgency."), extra={"field": "category"})
            if not form["description"]:
                raise ValidationFailed(_("Describe the problem."), extra={"field": "description"})
            lon, lat = _coord(form["lon"], "lon"), _coord(form["lat"], "lat")
            p = problems.problem_report(actor=request.jk_user, scope=request.scope, category=form["category"],
                                        urgency=form["urgency"], description=form["description"], lon=lon, lat=lat,
                                        region_code=form["region"], photo=request.FILES.get("photo"),
                                        client_key=_field(request.POST, "client_key", limit=64), request=request)
            if p.created:
                messages.success(request, _("Problem %(ref)s reported.") % {"ref": p.ref})
            if request.jk_user.has_role_perm(Perm.COMMAND_VIEW):
                return redirect("command:problem_detail", ref=p.ref)
            return redirect("command:problem_new")
        except ApplicationError as exc:
            _error(request, exc)
            status = 422 if exc.status_code in (400, 409, 422) else exc.status_code
    from jingkong.geo.models import Region

    grids = list(request.scope.filter(Region.objects.filter(level="grid"), "code").order_by("code")
                 .values_list("code", "name")[:300])
    return _render(request, "command/problem_new.html", {
        "form": form, "categories": ProblemCategory.choices, "urgencies": Urgency.choices, "grids": grids,
        "outlines": _outlines(request.scope), "client_key": secrets.token_urlsafe(18),
    }, status=status)


def _coord(text: str, name: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValidationFailed(_("%(field)s: not a number") % {"field": name}, extra={"field": name}) from None
    if value != value or abs(value) > (180 if name == "lon" else 90):
        raise ValidationFailed(_("%(field)s: out of range") % {"field": name}, extra={"field": name})
    return value


@require(Perm.COMMAND_VIEW)
def problem_detail(request, ref: str):
    p = selectors.problem_get(scope=request.scope, ref=ref)
    now = clock.now()
    from jingkong.geo.models import Region

    ladder = [p.region_code[:n] for n in (15, 12, 9, 6) if len(p.region_code) >= n]
    names = dict(Region.objects.filter(code__in=ladder).values_list("code", "name"))
    return _render(request, "command/problem_detail.html", {
        "p": p, "overdue": p.status in rules.OPEN_PROBLEM and p.deadline < now,
        "history": selectors.problem_history(p),
        "can_handle": request.jk_user.has_role_perm(Perm.PROBLEM_HANDLE),
        "next_statuses": [(s, label) for s, label in ProblemStatus.choices if s in rules.PROBLEM_NEXT.get(p.status, ())],
        "ladder": [(c, names.get(c, c)) for c in ladder if request.scope.contains(c)],
        "point": json.dumps({"lon": p.lon, "lat": p.lat}) if p.lon is not None else "",
    })


@require(Perm.PROBLEM_HANDLE)
@require_POST
def problem_update(request, ref: str):
    p = selectors.problem_get(scope=request.scope, ref=ref)
    try:
        problems.problem_update(actor=request.jk_user, scope=request.scope, problem=p,
                                status=_field(request.POST, "status", choices=ProblemStatus.choices),
                                responsible_code=_region_param(request.POST, "responsible_code"),
                                note=_field(request.POST, "note", limit=4000),
                                resolution=_field(request.POST, "resolution", limit=4000), request=request)
        messages.success(request, _("Problem updated."))
    except ApplicationError as exc:
        _error(request, exc)
    return redirect("command:problem_detail", ref=p.ref)


@require(Perm.COMMAND_VIEW)
def problem_photo(request, ref: str):
    p = selectors.problem_get(scope=request.scope, ref=ref)
    path, ctype = tasks.photo_file(p.photo)
    return FileResponse(open(path, "rb"), content_type=ctype)


# --- field workers ------------------------------------------------------------------------------------------------


@require(Perm.COMMAND_VIEW)
def worker_list(request):
    role = _field(request.GET, "role", choices=WorkerRole.choices)
    region = _region_param(request.GET)
    q = _field(request.GET, "q", limit=64)
    page = Paginator(selectors.worker_list(scope=request.scope, role=role, region=region, q=q), 100) \
        .get_page(request.GET.get("page"))
    items = list(page.object_list)
    open_tasks = selectors.worker_open_tasks(items)
    buildings = selectors.worker_building_ids(items)
    show_phone = request.jk_user.has_role_perm(Perm.PERSON_VIEW_PHONE)
    rows = [{"w": w, "phone": w.phone if show_phone else phone_mask(w.phone), "open": open_tasks.get(w.pk, 0),
             "buildings": len(buildings.get(w.pk, []))} for w in items]
    return _render(request, "command/worker_list.html", {
        "page": page, "rows": rows, "role": role, "region": region, "q": q, "roles": WorkerRole.choices,
        "can_edit": request.jk_user.has_role_perm(Perm.DIRECTIVE_ISSUE),
    })


def _worker_form_data(request) -> dict:
    return {"name": _field(request.POST, "name", limit=64), "phone": _field(request.POST, "phone", limit=20),
            "role": _field(request.POST, "role", choices=WorkerRole.choices),
            "region_code": _region_param(request.POST, "region_code"),
            "building_ids": [int(b) for b in request.POST.getlist("building_ids") if b.strip().isdigit()
                             and 0 < int(b) < 2**62][:500],
            "username": _field(request.POST, "username", limit=150),
            "active": request.POST.get("active") == "1"}


def _user_id(scope, username: str) -> int | None:
    if not username:
        return None
    from jingkong.access.models import User

    user = User.objects.filter(username=username).first()
    if user is None:
        raise ValidationFailed(_("No account %(name)s.") % {"name": username}, extra={"field": "username"})
    return user.pk


def _buildings_for(scope, region_code: str):
    from jingkong.geo.models import Building

    if not region_code or not scope.contains(region_code):
        return []
    return list(Building.objects.filter(grid__code__startswith=region_code).order_by("code")
                .values_list("pk", "code", "address")[:500])


@require(Perm.DIRECTIVE_ISSUE)
def worker_new(request):
    return _worker_form(request, None)


@require(Perm.DIRECTIVE_ISSUE)
def worker_edit(request, worker_id: int):
    return _worker_form(request, selectors.worker_get(scope=request.scope, worker_id=worker_id))


def _worker_form(request, worker):
    import re

    status = 200
    if worker is not None:
        form = {"name": worker.name, "phone": worker.phone, "role": worker.role, "region_code": worker.region_code,
                "building_ids": list(worker.buildings.values_list("pk", flat=True)),
                "username": worker.user.username if worker.user_id else "", "active": worker.active}
    else:
        form = {"name": "", "phone": "", "role": "grid_worker", "region_code": _region_param(request.GET, "region"),
                "building_ids": [], "username": "", "active": True}
    if request.method == "POST":
        form = _worker_form_data(request)
        try:
            if not form["name"] or not form["role"] or not form["region_code"]:
                raise ValidationFailed(_("Name, role and area are required."), extra={"field": "name"})
            if not re.fullmatch(r"[0-9+\- ]{0,20}", form["phone"]):
                raise ValidationFailed(_("phone: digits only"), extra={"field": "phone"})
            user_id = _user_id(request.scope, form["username"])
            if worker is None:
                worker = workers.worker_create(actor=request.jk_user, scope=request.scope, name=form["name"],
                                               role=form["role"], region_code=form["region_code"],
                                               phone=form["phone"], building_ids=form["building_ids"],
                                               user_id=user_id, request=request)
            else:
                workers.worker_update(actor=request.jk_user, scope=request.scope, worker=worker, request=request,
                                      name=form["name"], role=form["role"], region_code=form["region_code"],
                                      phone=form["phone"], building_ids=form["building_ids"],
                                      user_id=user_id or 0, active=form["active"])
            messages.success(request, _("Field worker %(name)s saved.") % {"name": form["name"]})
            return redirect("command:worker_list")
        except ApplicationError as exc:
            _error(request, exc)
            status = 422 if exc.status_code in (400, 409, 422) else exc.status_code
    from jingkong.geo.models import Region

    areas = list(request.scope.filter(Region.objects.filter(level__in=["community", "grid"]), "code")
                 .order_by("code").values_list("code", "name", "level")[:1000])
    return _render(request, "command/worker_form.html", {
        "form": form, "worker": worker, "roles": WorkerRole.choices, "areas": areas,
        "buildings": _buildings_for(request.scope, form["region_code"]),
    }, status=status)
