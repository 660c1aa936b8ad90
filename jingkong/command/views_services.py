"""Pages of the services area.

Public (no sign-in, mobile-first), under /command/help/:
  * ``help_home`` — a resident, a relative or the hotline asks for help: identified by the person's code token or by
    resident ID number + the phone in the registry (the same refusal for an unknown number and a wrong phone; attempts
    rate-limited per client address); a hidden submission key makes a double submit one request.
  * ``help_done`` — the request just submitted (only in the session that submitted it).
  * ``help_status`` — the requester looks up a request by number + phone, confirms the delivery and rates it (1–5),
    says it did not arrive, or cancels it while nobody has started on it.

Staff (signed in, scoped to the user's region):
  * /command/services/ — the queue (SERVICE_HANDLE), a request's page with its history and actions, the hotline form;
  * /command/services/mine/ — a field worker's or volunteer's own requests (TASK_WORK);
  * /command/services/counts/ — counts by region (drill-down), category and status (COMMAND_VIEW);
  * /command/supplies/ — the supplies board, depots, movements, thresholds, stock-count files (SUPPLY_EDIT).
"""

from __future__ import annotations

import secrets
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from jingkong.access import audit
from jingkong.access.guard import public, require
from jingkong.access.roles import Perm
from jingkong.command import requests as service_requests
from jingkong.command import selectors_services as selectors
from jingkong.command import service_rules, supplies
from jingkong.command.models import (
    DepotKind,
    MovementKind,
    ServiceCategory,
    ServiceStatus,
    SupplyCategory,
)
from jingkong.command.schemas_services import address_of, name_mask
from jingkong.core import clock
from jingkong.core.exceptions import ApplicationError, ValidationFailed
from jingkong.people.idnumber import phone_mask
from jingkong.people.models import VULNERABLE_LABELS
from jingkong.policy.selectors import active_profile

# Labels of the subcategory identifiers the shipped profiles use (a district's own identifiers show as they are).
SUBCATEGORY_LABELS = {
    "emergency": gettext_lazy("emergency"),
    "dialysis": gettext_lazy("dialysis"),
    "chemotherapy": gettext_lazy("chemotherapy"),
    "pregnancy_check": gettext_lazy("pregnancy check"),
    "urgent_medicine": gettext_lazy("urgent medicine"),
    "chronic_refill": gettext_lazy("regular medicine for a chronic illness"),
    "infant_formula": gettext_lazy("infant formula and baby needs"),
    "daily_food": gettext_lazy("food and daily needs"),
    "crisis": gettext_lazy("in crisis: needs to talk to someone now"),
}
GROUP_LABELS = {flag.name.lower(): label for flag, label in VULNERABLE_LABELS.items()}
SESSION_REFS = "command_help_refs"


def _tz() -> ZoneInfo:
    return ZoneInfo(clock.local_time_zone())


def _field(data, name: str, *, limit: int = 1000, choices=None) -> str:
    """A form value, trimmed; NUL characters are kept so that the service refuses them by name."""
    value = (data.get(name) or "").strip()[:limit]
    if choices is not None and value not in {c[0] for c in choices}:
        return ""
    return value


def _sub_label(key: str) -> str:
    return str(SUBCATEGORY_LABELS.get(key, key))


def _category_options(region_code: str | None) -> list[dict]:
    """Categories with the subcategories the profile in force offers (for the forms)."""
    try:
        services = active_profile(region_code=region_code).rules.section("services")
    except ApplicationError:
        services = None
    out = []
    for value, label in ServiceCategory.choices:
        subs = service_rules.subcategories(services, value) if services is not None else ()
        out.append({"value": value, "label": label, "subs": [{"value": s, "label": _sub_label(s)} for s in subs]})
    return out


def _groups(vulnerable: int) -> list[str]:
    return [str(GROUP_LABELS.get(g, g)) for g in service_rules.groups_of(vulnerable)]


def _session_refs(request) -> list[str]:
    return list(request.session.get(SESSION_REFS, []))


def _remember(request, ref: str) -> None:
    refs = [r for r in _session_refs(request) if r != ref][-19:] + [ref]
    request.session[SESSION_REFS] = refs


# --- public pages -----------------------------------------------------------------------------------------------------


@public
def help_home(request):
    """The request form (GET) and its submission (POST)."""
    form = {"how": "id", "category": "", "subcategory": "", "description": "", "id_number": "", "phone": "",
            "contact_phone": "", "via": "resident", "token": request.GET.get("t", "")[:4096]}
    if form["token"]:
        form["how"] = "token"
    error, error_field, status = "", "", 200
    if request.method == "POST":
        data = request.POST
        for key in ("how", "category", "subcategory", "description", "id_number", "phone", "contact_phone", "via",
                    "token"):
            form[key] = _field(data, key, limit=4096 if key == "token" else 2000)
        try:
            if form["via"] not in ("resident", "relative"):
                form["via"] = "resident"
            if form["category"] not in ServiceCategory.values:
                raise ValidationFailed(_("Choose what you need."), extra={"field": "category"})
            if form["how"] == "token":
                person = service_requests.identify_by_token(token=form["token"], request=request)
            else:
                person = service_requests.identify_by_id_phone(id_number=form["id_number"], phone=form["phone"],
                                                              request=request)
            service_requests.check_rate(request, submitting=True)
            req, _created = service_requests.request_submit(
                person=person, category=form["category"], subcategory=form["subcategory"],
                description=form["description"], via=form["via"], contact_phone=form["contact_phone"],
                client_key=_field(data, "client_key", limit=64), request=request)
        except ApplicationError as exc:
            error, error_field = exc.message, exc.extra.get("field", "")
            status = exc.status_code if exc.status_code in (404, 409, 422, 429) else 422
        else:
            _remember(request, req.ref)
            return redirect("command:help_done", ref=req.ref)
    return render(request, "command/help_home.html", {
        "form": form, "error": error, "error_field": error_field, "categories": _category_options(None),
        "client_key": secrets.token_urlsafe(18),
    }, status=status)


def _public_view(req) -> dict:
    tz = _tz()
    history = [{"at": u.at.astimezone(tz), "status": ServiceStatus(u.status).label} for u in
               selectors.request_history(req)]
    return {"req": req, "history": history, "category": ServiceCategory(req.category).label,
            "subcategory": _sub_label(req.subcategory) if req.subcategory else "",
            "name": name_mask(req.person.name), "deadline": req.deadline.astimezone(tz),
            "assignee": req.assignee.name if req.assignee_id else "",
            "assignee_phone": req.assignee.phone if req.assignee_id else ""}


@public
def help_done(request, ref: str):
    """The request just submitted: its number and status (only for the session that submitted it)."""
    if ref not in _session_refs(request):
        return redirect("command:help_status")
    req = selectors.request_get_by_ref(scope=_everything(), ref=ref)
    return render(request, "command/help_done.html", _public_view(req))


def _everything():
    from jingkong.access.guard import EVERYTHING

    return EVERYTHING


@public
def help_status(request):
    """Look a request up by number + phone; the requester's answers (confirm and rate, not received, cancel)."""
    error, status, req = "", 200, None
    ref = _field(request.POST if request.method == "POST" else request.GET, "ref", limit=32).upper()
    if request.method == "POST":
        action = _field(request.POST, "action", limit=20)
        try:
            if action in ("confirm", "not_received", "cancel"):
                if ref not in _session_refs(request):
                    raise ValidationFailed(_("Look the request up again with your phone number."),
                                           extra={"field": "phone"})
                req = selectors.request_get_by_ref(scope=_everything(), ref=ref)
                raw = _field(request.POST, "satisfaction", limit=2)
                satisfaction = int(raw) if raw.isdigit() else None
                req = service_requests.request_resident_answer(
                    req=req, action=action, satisfaction=satisfaction, note=_field(request.POST, "note"),
                    request=request)
                messages.success(request, _("Thank you. Your answer is recorded."))
                return redirect(reverse("command:help_status") + f"?ref={req.ref}")
            req = service_requests.request_for_requester(ref=ref, phone=_field(request.POST, "phone", limit=32),
                                                         request=request)
            _remember(request, req.ref)
            return redirect(reverse("command:help_status") + f"?ref={req.ref}")
        except ApplicationError as exc:
            error, status = exc.message, exc.status_code if exc.status_code in (404, 409, 422, 429) else 422
            req = None
    elif ref and ref in _session_refs(request):
        req = selectors.request_get_by_ref(scope=_everything(), ref=ref)
    context = {"ref": ref, "error": error, "scores": range(5, 0, -1)}
    if req is not None:
        context.update(_public_view(req))
        context["can_confirm"] = service_rules.may_move(req.status, "confirmed", by_resident=True)
        context["can_cancel"] = service_rules.may_move(req.status, "cancelled", by_resident=True)
    return render(request, "command/help_status.html", context, status=status)


def _staff(request, template: str, context: dict, status: int = 200):
    """Render a staff page with the services sub-navigation the user's role may open."""
    user = request.jk_user
    context["nav"] = {"handle": user.has_role_perm(Perm.SERVICE_HANDLE), "work": user.has_role_perm(Perm.TASK_WORK),
                      "view": user.has_role_perm(Perm.COMMAND_VIEW), "supply": user.has_role_perm(Perm.SUPPLY_EDIT)}
    return render(request, template, context, status=status)


# --- staff: the request queue -----------------------------------------------------------------------------------------


def _show_phone(request) -> bool:
    return request.jk_user.has_role_perm(Perm.PERSON_VIEW_PHONE)


def _row(req, request, now) -> dict:
    phone = req.contact_phone or req.person.phone
    return {"req": req, "name": name_mask(req.person.name), "groups": _groups(req.vulnerable),
            "phone": phone if _show_phone(request) else phone_mask(phone),
            "address": address_of(req.person), "subcategory": _sub_label(req.subcategory) if req.subcategory else "",
            "overdue": req.status in service_rules.OPEN_STATUSES and req.deadline < now}


@require(Perm.SERVICE_HANDLE)
def service_queue(request):
    status = _field(request.GET, "status", choices=ServiceStatus.choices)
    category = _field(request.GET, "category", choices=ServiceCategory.choices)
    region = _field(request.GET, "region", limit=15)
    region = region if region.isdigit() else ""
    view = _field(request.GET, "view", limit=12)
    view = view if view in ("open", "overdue", "unassigned", "escort", "all") else "open"
    now = clock.now()
    qs = selectors.request_queue(scope=request.scope, status=status, category=category, region=region,
                                 # the cards count open requests: their lists are open requests too
                                 open_only=view in ("open", "unassigned", "escort"), overdue=view == "overdue",
                                 unassigned=view == "unassigned", escort=view == "escort", now=now)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    audit.record(actor=request.jk_user, action="person.list", object_type="people.person",
                 region_code=region or request.scope.prefix or "", request=request,
                 detail={"page": "command.service_queue", "count": page.paginator.count})
    base = selectors.request_queue(scope=request.scope, now=now)
    cards = {
        "open": base.filter(status__in=service_rules.OPEN_STATUSES).count(),
        "overdue": base.filter(status__in=service_rules.OPEN_STATUSES, deadline__lt=now).count(),
        "unassigned": base.filter(status__in=service_rules.OPEN_STATUSES, assignee__isnull=True).count(),
        "escort": base.filter(status__in=service_rules.OPEN_STATUSES, escort_requested=True).count(),
    }
    return _staff(request, "command/service_queue.html", {
        "page": page, "rows": [_row(r, request, now) for r in page.object_list], "status": status,
        "category": category, "region": region, "view": view, "statuses": ServiceStatus.choices,
        "categories": ServiceCategory.choices, "cards": cards,
    })


@require(Perm.SERVICE_HANDLE)
def service_detail(request, ref: str):
    req = selectors.request_get_by_ref(scope=request.scope, ref=ref)
    audit.record(actor=request.jk_user, action="person.view", object_type="people.person", object_id=req.person_id,
                 region_code=req.region_code, request=request, detail={"service_request": req.ref, "via": "page"})
    now = clock.now()
    tz = _tz()
    targets = sorted(service_rules.STAFF_TRANSITIONS.get(req.status, set()) - {"assigned"})
    return _staff(request, "command/service_detail.html", {
        **_row(req, request, now), "history": [(u.at.astimezone(tz), u) for u in selectors.request_history(req)],
        "workers": selectors.workers_for(scope=request.scope, region_code=req.region_code),
        "targets": [(t, ServiceStatus(t).label) for t in targets],
        "can_assign": req.status in service_rules.OPEN_STATUSES,
        "escort_task": _escort_task(req),
    })


def _escort_task(req):
    if not req.escort_requested:
        return None
    from jingkong.command.models import Task

    return Task.objects.filter(source="service", source_key=req.ref).first()


@require(Perm.SERVICE_HANDLE)
def service_new(request):
    """The hotline form: a request on a person's behalf, by resident ID number."""
    form = {"id_number": "", "category": "", "subcategory": "", "description": "", "contact_phone": "",
            "via": "hotline"}
    error, status = "", 200
    if request.method == "POST":
        for key in form:
            form[key] = _field(request.POST, key, limit=2000)
        try:
            if form["via"] not in service_requests.VIA:
                form["via"] = "hotline"
            if form["category"] not in ServiceCategory.values:
                raise ValidationFailed(_("Choose what the person needs."), extra={"field": "category"})
            person = service_requests.person_for_staff(scope=request.scope, id_number=form["id_number"])
            req, created = service_requests.request_submit(
                person=person, category=form["category"], subcategory=form["subcategory"],
                description=form["description"], via=form["via"], contact_phone=form["contact_phone"],
                client_key=_field(request.POST, "client_key", limit=64), actor=request.jk_user, request=request)
        except ApplicationError as exc:
            error, status = exc.message, exc.status_code if exc.status_code in (404, 409, 422) else 422
        else:
            if created:
                messages.success(request, _("Request %(ref)s submitted.") % {"ref": req.ref})
            return redirect("command:service_detail", ref=req.ref)
    region = request.scope.prefix or None
    return _staff(request, "command/service_new.html", {
        "form": form, "error": error, "categories": _category_options(region), "vias": service_requests.VIA,
        "client_key": secrets.token_urlsafe(18)}, status=status)


@require(Perm.SERVICE_HANDLE)
@require_POST
def service_assign(request, ref: str):
    req = selectors.request_get_by_ref(scope=request.scope, ref=ref)
    raw = _field(request.POST, "worker_id", limit=12)
    try:
        if not raw.isdigit():
            raise ValidationFailed(_("choose a field worker"), extra={"field": "worker_id"})
        service_requests.request_assign(actor=request.jk_user, scope=request.scope, req=req, worker_id=int(raw),
                                        note=_field(request.POST, "note"), request=request)
        messages.success(request, _("Request reassigned."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("command:service_detail", ref=req.ref)


@require(Perm.SERVICE_HANDLE)
@require_POST
def service_status(request, ref: str):
    req = selectors.request_get_by_ref(scope=request.scope, ref=ref)
    try:
        service_requests.request_status(actor=request.jk_user, req=req, status=_field(request.POST, "status", limit=16),
                                        note=_field(request.POST, "note"), request=request)
        messages.success(request, _("Request updated."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("command:service_detail", ref=req.ref)


@require(Perm.TASK_WORK)
def service_mine(request):
    """A field worker's or volunteer's own requests (only those assigned to them)."""
    now = clock.now()
    items = list(selectors.my_requests(scope=request.scope, user=request.jk_user)[:200])
    if items:
        audit.record_many(actor=request.jk_user, action="person.view", object_type="people.person", request=request,
                          items=[(r.person_id, r.region_code) for r in items], detail={"page": "command.service_mine"})
    return _staff(request, "command/service_mine.html", {
        "rows": [_row(r, request, now) for r in items],
        "registered": selectors.worker_of(request.jk_user) is not None,
    })


@require(Perm.TASK_WORK)
@require_POST
def service_mine_status(request, pk: int):
    req = selectors.my_request_get(scope=request.scope, user=request.jk_user, request_id=pk)
    target = _field(request.POST, "status", limit=16)
    try:
        if target not in ("in_progress", "delivered"):
            raise ValidationFailed(_("unknown status"), extra={"field": "status"})
        service_requests.request_status(actor=request.jk_user, req=req, status=target,
                                        note=_field(request.POST, "note"), request=request)
        messages.success(request, _("Request %(ref)s updated.") % {"ref": req.ref})
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("command:service_mine")


@require(Perm.COMMAND_VIEW)
def service_counts(request):
    region = _field(request.GET, "region", limit=15)
    status = _field(request.GET, "status", choices=ServiceStatus.choices)
    category = _field(request.GET, "category", choices=ServiceCategory.choices)
    open_only = request.GET.get("open") == "1"
    counts = selectors.request_counts(scope=request.scope, region=region if region.isdigit() else "",
                                      status=status, category=category, open_only=open_only)
    labels_c = dict(ServiceCategory.choices)
    labels_s = dict(ServiceStatus.choices)
    return _staff(request, "command/service_counts.html", {
        "counts": counts, "status": status, "category": category, "open_only": open_only,
        "statuses": ServiceStatus.choices, "categories": ServiceCategory.choices,
        "by_category": [(k, labels_c.get(k, k), v) for k, v in sorted(counts["by_category"].items())],
        "by_status": [(k, labels_s.get(k, k), v) for k, v in sorted(counts["by_status"].items())],
        "up": counts["region"][:-3] if len(counts["region"]) > 6 and request.scope.contains(counts["region"][:-3])
        else "",
        "satisfaction": selectors.satisfaction_summary(scope=request.scope),
    })


# --- staff: supplies --------------------------------------------------------------------------------------------------


@require(Perm.SUPPLY_EDIT)
def supply_board(request):
    region = _field(request.GET, "region", limit=15)
    region = region if region.isdigit() else ""
    consumption = selectors.consumption_per_day(scope=request.scope, days=7, region=region)
    days = sorted({r["day"] for r in consumption})
    items = sorted({(r["item"], r["name"]) for r in consumption})
    table = {(r["day"], r["item"]): r["quantity"] for r in consumption}
    return _staff(request, "command/supply_board.html", {
        "region": region,
        "alerts": selectors.stock_list(scope=request.scope, region=region, low_only=True)[:500],
        "totals": selectors.stock_totals(scope=request.scope, region=region),
        "depots": selectors.depot_list(scope=request.scope, region=region)[:500],
        "items": selectors.item_list(),
        "consumption_days": days,
        "consumption_rows": [(code, name, [table.get((d, code), 0) for d in days]) for code, name in items],
        "supply_categories": SupplyCategory.choices, "depot_kinds": DepotKind.choices,
    })


@require(Perm.SUPPLY_EDIT)
def supply_depot(request, code: str):
    depot = selectors.depot_get(scope=request.scope, code=code)
    tz = _tz()
    return _staff(request, "command/supply_depot.html", {
        "depot": depot, "stock": selectors.stock_list(scope=request.scope, depot=depot),
        "movements": [(m.at.astimezone(tz), m) for m in selectors.movement_list(scope=request.scope, depot=depot)],
        "items": selectors.item_list(),
        "others": selectors.depot_list(scope=request.scope).filter(active=True).exclude(pk=depot.pk)[:500],
        "depot_kinds": DepotKind.choices,
        "kinds": [(k, lbl) for k, lbl in (("receipt", MovementKind.RECEIPT.label),
                                          ("consumption", MovementKind.CONSUMPTION.label),
                                          ("transfer", MovementKind.TRANSFER_OUT.label),
                                          ("adjustment", MovementKind.ADJUSTMENT.label))],
        "client_key": secrets.token_urlsafe(18),
    })


def _int(data, name: str) -> int | None:
    raw = _field(data, name, limit=12)
    if raw.lstrip("-").isdigit():
        return int(raw)
    if raw:
        raise ValidationFailed(_("%(field)s must be a whole number") % {"field": name}, extra={"field": name})
    return None


@require(Perm.SUPPLY_EDIT)
@require_POST
def supply_movement(request, code: str):
    depot = selectors.depot_get(scope=request.scope, code=code)
    try:
        item = selectors.item_get(code=_field(request.POST, "item", limit=32))
        kind = _field(request.POST, "kind", limit=16)
        to_code = _field(request.POST, "to_depot", limit=32)
        to_depot = selectors.depot_get(scope=request.scope, code=to_code) if (kind == "transfer" and to_code) else None
        number = _int(request.POST, "quantity")
        result = supplies.movement_record(
            actor=request.jk_user, scope=request.scope, depot=depot, item=item, kind=kind,
            quantity=number if kind != "adjustment" else None, counted=number if kind == "adjustment" else None,
            to_depot=to_depot, client_key=_field(request.POST, "client_key", limit=64),
            note=_field(request.POST, "note"))
        if result.created:
            messages.success(request, _("Movement recorded."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("command:supply_depot", code=depot.code)


@require(Perm.SUPPLY_EDIT)
@require_POST
def supply_threshold(request, code: str):
    depot = selectors.depot_get(scope=request.scope, code=code)
    try:
        item = selectors.item_get(code=_field(request.POST, "item", limit=32))
        threshold = _int(request.POST, "threshold")
        if threshold is None:
            raise ValidationFailed(_("give a threshold"), extra={"field": "threshold"})
        supplies.threshold_set(actor=request.jk_user, scope=request.scope, depot=depot, item=item, threshold=threshold)
        messages.success(request, _("Threshold saved."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("command:supply_depot", code=depot.code)


@require(Perm.SUPPLY_EDIT)
@require_POST
def supply_depot_edit(request, code: str):
    """Rename a depot, change its kind, close or reopen it (a closed depot receives nothing)."""
    depot = selectors.depot_get(scope=request.scope, code=code)
    try:
        supplies.depot_update(actor=request.jk_user, scope=request.scope, depot=depot,
                              name=_field(request.POST, "name", limit=200) or None,
                              kind=_field(request.POST, "kind", choices=DepotKind.choices) or None,
                              active=request.POST.get("active") == "1")
        messages.success(request, _("Depot saved."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("command:supply_depot", code=depot.code)


@require(Perm.SUPPLY_EDIT)
@require_POST
def supply_new(request):
    """Add a catalogue item (``what=item``) or a depot/site (``what=depot``) from the board."""
    what = _field(request.POST, "what", limit=8)
    try:
        if what == "item":
            supplies.item_create(actor=request.jk_user, code=_field(request.POST, "code", limit=40),
                                 name=_field(request.POST, "name", limit=200),
                                 category=_field(request.POST, "category", limit=16),
                                 unit=_field(request.POST, "unit", limit=20))
            messages.success(request, _("Item added."))
        else:
            depot = supplies.depot_create(actor=request.jk_user, scope=request.scope,
                                          code=_field(request.POST, "code", limit=40),
                                          name=_field(request.POST, "name", limit=200),
                                          region_code=_field(request.POST, "region_code", limit=32),
                                          kind=_field(request.POST, "kind", limit=8) or DepotKind.DEPOT)
            messages.success(request, _("Depot %(code)s added.") % {"code": depot.code})
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("command:supply_board")


@require(Perm.SUPPLY_EDIT)
@require_POST
def supply_import(request):
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, _("Choose a CSV file."))
        return redirect("command:supply_board")
    try:
        if upload.size > 20 * 1024 * 1024:
            raise ValidationFailed(_("the file is larger than 20 MB"), extra={"field": "file"})
        report = supplies.stock_counts_import(actor=request.jk_user, scope=request.scope, data=upload.read())
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("command:supply_board")
    messages.success(request, _("%(rows)d rows: %(applied)d applied, %(same)d already applied, %(bad)d refused.") % {
        "rows": report.rows, "applied": report.applied, "same": report.unchanged, "bad": len(report.errors)})
    for err in report.errors[:20]:
        messages.error(request, _("line %(line)s, %(field)s: %(reason)s") % err)
    return redirect("command:supply_board")

