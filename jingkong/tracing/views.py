"""Tracing pages under /tracing/: case list, case detail, the region's contact queue with incoming hand-offs, the
chains and clusters view (a server-rendered SVG) and the printable public notice.

Reads need TRACING_VIEW, the small POST actions TRACING_EDIT; every object is looked up through the scoped selectors
(404 outside the user's region) and every write goes through the services.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from jingkong.access import audit
from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.core import clock, jobs
from jingkong.core.exceptions import ApplicationError, ValidationFailed
from jingkong.people.idnumber import phone_mask
from jingkong.policy.schema import RulesIncomplete
from jingkong.policy.selectors import PolicyNotActive
from jingkong.tracing import chains, notice, rules, selectors, services, windows
from jingkong.tracing.forms import StayForm
from jingkong.tracing.models import (
    CaseStatus,
    Classification,
    ContactStatus,
    HandedTo,
    LinkStatus,
    Setting,
    Tier,
    TransportMode,
)

# How the evidence behind a link reads on the page (keys: jingkong.tracing.rules.EVIDENCE_CONFIDENCE).
EVIDENCE_LABELS = {
    "household": gettext_lazy("same household"),
    "workplace": gettext_lazy("same workplace"),
    "venue_overlap": gettext_lazy("same venue at the same time"),
    "venue_same_day": gettext_lazy("same venue on the same day"),
    "contact_household": gettext_lazy("was a household contact"),
    "contact_workplace": gettext_lazy("was a workplace contact"),
    "contact_venue": gettext_lazy("was a venue contact"),
    "contact_transport": gettext_lazy("travelled together"),
    "contact_tracer": gettext_lazy("named in the interview"),
    "contact_companion": gettext_lazy("space-time companion"),
    "contact_secondary": gettext_lazy("secondary contact"),
    "manual": gettext_lazy("recorded by a tracer"),
}


def _tz() -> ZoneInfo:
    return ZoneInfo(clock.local_time_zone())


def _can_edit(request) -> bool:
    return request.jk_user.has_role_perm(Perm.TRACING_EDIT)


def _field(data, name: str, *, choices=None, limit: int = 1000) -> str:
    """A form or query value, trimmed, without NUL characters (PostgreSQL refuses them); with ``choices`` an
    unknown value reads as "" (no filter) instead of an empty page."""
    value = (data.get(name) or "").replace("\x00", "").strip()[:limit]
    if choices is not None and value not in {c[0] for c in choices}:
        return ""
    return value


def _audit_list(request, what: str, count: int) -> None:
    audit.record(actor=request.jk_user, action="person.list", object_type="people.person",
                 region_code=request.scope.prefix or "", request=request, detail={"page": what, "count": count})


@require(Perm.TRACING_VIEW)
def case_list(request):
    status = _field(request.GET, "status", choices=CaseStatus.choices)
    q = _field(request.GET, "q", limit=100)
    qs = selectors.case_list(scope=request.scope, status=status, q=q)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    _audit_list(request, "tracing.case_list", page.paginator.count)
    now = clock.now()
    return render(request, "tracing/case_list.html", {
        "page": page, "status": status, "q": q, "statuses": CaseStatus.choices, "now": now,
        "open_contacts": selectors.contact_list(scope=request.scope, open_only=True).count(),
        "overdue_contacts": selectors.contact_list(scope=request.scope, overdue=True).count(),
        "incoming": selectors.handoff_list(scope=request.scope, status="requested").count(),
        "can_edit": _can_edit(request),
    })


@require(Perm.TRACING_VIEW)
def case_detail(request, ref: str):
    case = selectors.case_get_by_ref(scope=request.scope, ref=ref)
    return _render_case(request, case, stay_form=StayForm() if _can_edit(request) else None)


def _render_case(request, case, *, stay_form, status: int = 200):
    audit.record(actor=request.jk_user, action="person.view", object_type="people.person", object_id=case.person_id,
                 region_code=case.region_code, request=request, detail={"case": case.ref, "via": "page"})
    try:
        window, profile = windows.case_window(case, now=clock.now())
        window_problem = ""
    except (rules.NoAnchor, PolicyNotActive) as exc:
        window, profile, window_problem = None, None, getattr(exc, "message", str(exc))
    contacts = list(selectors.contact_list(scope=request.scope, case=case))
    reasons = selectors.reasons_of(contacts, case=case)
    show_phone = request.jk_user.has_role_perm(Perm.PERSON_VIEW_PHONE)
    rows = [{"contact": c, "reasons": reasons.get(c.pk, []),
             "phone": c.person.phone if show_phone else phone_mask(c.person.phone)} for c in contacts]
    if contacts:
        audit.record_many(actor=request.jk_user, action="person.view", object_type="people.person", request=request,
                          items=[(c.person_id, c.region_code) for c in contacts], detail={"case": case.ref})
    links = list(selectors.link_list(scope=request.scope, case=case))
    tz = _tz()
    for link in links:
        link.can_decide = _can_edit(request) and request.scope.contains(link.infectee.region_code)
        link.evidence_shown = [
            {**e, "label": EVIDENCE_LABELS.get(e.get("kind"), e.get("kind")),
             "exposure_local": dt.datetime.fromisoformat(e["exposure_at"]).astimezone(tz) if e.get("exposure_at")
             else None} for e in link.evidence if isinstance(e, dict)]
    counts = selectors.case_contact_counts(scope=request.scope, case=case)
    return render(request, "tracing/case_detail.html", {
        "can_propose_zones": request.jk_user.has_role_perm(Perm.ZONES_EDIT),
        "case": case, "window": window, "profile": profile, "window_problem": window_problem,
        "stays": selectors.stays_of(case), "rows": rows,
        "elsewhere": selectors.case_contacts_elsewhere(scope=request.scope, case=case),
        "tier_counts": [(label, counts.get(tier, 0)) for tier, label in Tier.choices],
        "links": links, "can_edit": _can_edit(request), "cluster_id": selectors.cluster_of(case),
        "stay_form": stay_form, "stay_form_open": status != 200,
    }, status=status)


@require(Perm.TRACING_VIEW)
def case_notice(request, ref: str):
    case = selectors.case_get_by_ref(scope=request.scope, ref=ref)
    data = notice.notice_for(case)
    days: dict[str, list] = {}
    modes = dict(TransportMode.choices)
    for item in data["items"]:
        if item.get("transport_mode"):
            item["transport_mode"] = modes.get(item["transport_mode"], item["transport_mode"])
        item["start_local"] = dt.datetime.fromisoformat(item["start"])
        item["end_local"] = dt.datetime.fromisoformat(item["end"])
        days.setdefault(item["date"], []).append(item)
    return render(request, "tracing/notice.html", {
        "case": case, "notice": data, "days": sorted(days.items()),
        "classification": dict(Classification.choices).get(case.classification, case.classification),
    })


@require(Perm.TRACING_VIEW)
def contact_queue(request):
    tier = _field(request.GET, "tier", choices=Tier.choices)
    status = _field(request.GET, "status", choices=ContactStatus.choices)
    qs = selectors.contact_list(scope=request.scope, tier=tier, status=status, open_only=not status)
    page = Paginator(qs, 100).get_page(request.GET.get("page"))
    reasons = selectors.reasons_of(list(page.object_list))
    now = clock.now()
    show_phone = request.jk_user.has_role_perm(Perm.PERSON_VIEW_PHONE)
    rows = [{"contact": c, "reasons": reasons.get(c.pk, []),
             "phone": c.person.phone if show_phone else phone_mask(c.person.phone),
             "next": _next_statuses(c.status),
             "overdue": bool(c.due_at and c.due_at < now and c.status in selectors.BEFORE_HANDOVER)}
            for c in page.object_list]
    incoming = [(h, request.scope.contains(h.contact.region_code))
                for h in selectors.handoff_list(scope=request.scope, status="requested")[:200]]
    outgoing = list(selectors.handoff_list(scope=request.scope, direction="outgoing")[:200])
    _audit_list(request, "tracing.contact_queue", page.paginator.count + len(incoming))
    return render(request, "tracing/contacts.html", {
        "page": page, "rows": rows, "tier": tier, "status": status, "tiers": Tier.choices,
        "statuses": ContactStatus.choices, "incoming": incoming, "outgoing": outgoing,
        "can_edit": _can_edit(request), "handed_to_choices": [c for c in HandedTo.choices if c[0]],
    })


def _next_statuses(current: str) -> list[tuple[str, str]]:
    labels = dict(ContactStatus.choices)
    return [(s, labels[s]) for s in (*rules.STATUS_FLOW, rules.CLOSED) if rules.transition_error(current, s) is None]


@require(Perm.TRACING_VIEW)
def chains_view(request):
    clusters = list(selectors.cluster_list(scope=request.scope)[:100])
    selected = None
    if request.GET.get("cluster"):
        try:
            selected = selectors.cluster_get(scope=request.scope, cluster_id=int(request.GET["cluster"]))
        except ValueError:
            raise ValidationFailed(_("cluster: not a number")) from None
    data = selectors.graph(scope=request.scope, cluster=selected, include_suggested=request.GET.get("suggested") != "0")
    estimates = selectors.estimates(scope=request.scope)
    return render(request, "tracing/chains.html", {
        "clusters": [{"cluster": c, "growth": chains.cluster_growth(c)} for c in clusters],
        "selected": selected, "svg": chain_svg(data), "graph": data,
        "estimates": estimates, "settings": Setting.choices,
        "estimate_rows": [(_("Serial interval"), estimates["serial_interval_days"]),
                          (_("Incubation"), estimates["incubation_days"])],
        "can_edit": _can_edit(request), "min_pairs": rules.MIN_PAIRS,
    })


def chain_svg(data: dict) -> dict:
    """Positions for a server-rendered chain diagram: cases left to right by onset (or first positive sample),
    one lane per case inside each chain, arrows infector → infectee (dashed while only suggested)."""
    nodes = {n["id"]: dict(n) for n in data["nodes"]}
    if not nodes:
        return {"width": 0, "height": 0, "nodes": [], "edges": [], "ticks": []}
    tz = _tz()

    def day_of(n):
        if n.get("onset_date"):
            return dt.date.fromisoformat(n["onset_date"])
        if n.get("first_positive_at"):
            return dt.datetime.fromisoformat(n["first_positive_at"]).astimezone(tz).date()
        return None

    days = {nid: day_of(n) for nid, n in nodes.items()}
    known = [d for d in days.values() if d]
    first = min(known) if known else clock.today()
    last = max(known) if known else first
    span = max(1, (last - first).days)
    import networkx as nx

    g = nx.Graph()
    g.add_nodes_from(nodes)
    g.add_edges_from((e["source"], e["target"]) for e in data["edges"])
    lane = 0
    for comp in sorted(nx.connected_components(g), key=lambda c: (-len(c), min(c))):
        for nid in sorted(comp, key=lambda i: (days[i] or last, i)):
            nodes[nid]["lane"] = lane
            lane += 1
        lane += 1  # a gap between chains
    left, step_x, step_y = 90, max(60, min(140, 900 // span)), 34
    for nid, n in nodes.items():
        d = days[nid]
        n["x"] = left + ((d - first).days if d else span + 1) * step_x
        n["y"] = 30 + n["lane"] * step_y
    edges = []
    for e in data["edges"]:
        a, b = nodes.get(e["source"]), nodes.get(e["target"])
        if a and b:
            edges.append({**e, "label": EVIDENCE_LABELS.get(e["kind"], e["kind"]), "x1": a["x"], "y1": a["y"],
                          "x2": b["x"], "y2": b["y"]})
    ticks = [{"x": left + i * step_x, "label": (first + dt.timedelta(days=i)).strftime("%m-%d")}
             for i in range(0, span + 1, max(1, span // 12))]
    return {"width": left + (span + 2) * step_x + 60, "height": 50 + lane * step_y, "nodes": list(nodes.values()),
            "edges": edges, "ticks": ticks}


# --- timeline form ----------------------------------------------------------------------------------------------------


def _save_stay(request, case, form: StayForm, stay=None) -> bool:
    """Validate the form and save through services.stay_save; a refusal (422) is put on the field it names."""
    if not form.is_valid():
        return False
    try:
        services.stay_save(actor=request.jk_user, case=case, stay=stay,
                           accept_overlap=form.cleaned_data["accept_overlap"], request=request,
                           **form.values(current=stay))
    except ValidationFailed as exc:
        field = exc.extra.get("field")
        form.add_error(field if field in form.fields else None, exc.message)
        return False
    return True


@require(Perm.TRACING_EDIT)
@require_POST
def stay_add(request, ref: str):
    case = selectors.case_get_by_ref(scope=request.scope, ref=ref)
    form = StayForm(data=request.POST)
    if _save_stay(request, case, form):
        messages.success(request, _("Timeline entry added."))
        return redirect(reverse("tracing:case_detail", args=[case.ref]) + "#timeline")
    return _render_case(request, case, stay_form=form, status=422)


@require(Perm.TRACING_EDIT)
def stay_edit(request, ref: str, stay_id: int):
    case = selectors.case_get_by_ref(scope=request.scope, ref=ref)
    stay = selectors.stay_get(case=case, stay_id=stay_id)
    status = 200
    if request.method == "POST":
        form = StayForm.for_stay(stay, data=request.POST)
        if _save_stay(request, case, form, stay):
            messages.success(request, _("Timeline entry saved."))
            return redirect(reverse("tracing:case_detail", args=[case.ref]) + "#timeline")
        status = 422
    else:
        form = StayForm.for_stay(stay)
        audit.record(actor=request.jk_user, action="person.view", object_type="people.person",
                     object_id=case.person_id, region_code=case.region_code, request=request,
                     detail={"case": case.ref, "part": "timeline", "stay": stay.pk})
    return render(request, "tracing/stay_edit.html", {"case": case, "stay": stay, "form": form}, status=status)


@require(Perm.TRACING_EDIT)
@require_POST
def stay_delete(request, ref: str, stay_id: int):
    case = selectors.case_get_by_ref(scope=request.scope, ref=ref)
    stay = selectors.stay_get(case=case, stay_id=stay_id)
    services.stay_delete(actor=request.jk_user, case=case, stay=stay, request=request)
    messages.success(request, _("Timeline entry deleted."))
    return redirect(reverse("tracing:case_detail", args=[case.ref]) + "#timeline")


# --- actions (POST) ---------------------------------------------------------------------------------------------------


def _back(request, fallback: str):
    target = request.POST.get("next") or fallback
    return redirect(target if target.startswith("/tracing/") else fallback)


@require(Perm.TRACING_EDIT)
@require_POST
def case_find(request, ref: str):
    case = selectors.case_get_by_ref(scope=request.scope, ref=ref)
    job = jobs.enqueue(services.FIND_JOB, {"case_ids": [case.pk]}, actor=request.jk_user, region_code=case.region_code)
    messages.success(request, _("Contact finding started (job %(id)s).") % {"id": job.pk})
    return redirect("tracing:case_detail", ref=case.ref)


@require(Perm.TRACING_EDIT)
@require_POST
def case_suggest(request, ref: str):
    case = selectors.case_get_by_ref(scope=request.scope, ref=ref)
    try:
        result = chains.links_suggest(case_ids=[case.pk], actor=request.jk_user, strict=True)
        messages.success(request, _("%(n)s link(s) suggested.") % {"n": result["suggested"]})
    except RulesIncomplete as exc:
        messages.error(request, str(exc))
    except PolicyNotActive as exc:  # no profile in force for the case's region: said on the page, not a 404 page
        messages.error(request, exc.message)
    return redirect("tracing:case_detail", ref=case.ref)


@require(Perm.TRACING_EDIT)
@require_POST
def link_decide(request, link_id: int, decision: str):
    link = selectors.link_get(scope=request.scope, link_id=link_id, to_decide=True)
    status = {"confirm": LinkStatus.CONFIRMED, "reject": LinkStatus.REJECTED}.get(decision)
    if status is None:
        raise ValidationFailed(_("unknown decision"))
    services.link_decide(actor=request.jk_user, link=link, status=status, note=_field(request.POST, "note"))
    messages.success(request, _("Link %(a)s → %(b)s: %(s)s.") % {"a": link.infector.ref, "b": link.infectee.ref,
                                                                   "s": dict(LinkStatus.choices)[status]})
    return _back(request, f"/tracing/cases/{link.infectee.ref}/")


@require(Perm.TRACING_EDIT)
@require_POST
def handoff_accept(request, handoff_id: int):
    handoff = selectors.handoff_get(scope=request.scope, handoff_id=handoff_id)
    try:
        services.handoff_accept(actor=request.jk_user, handoff=handoff, request=request)
        messages.success(request, _("Hand-off accepted: the contact is in your queue."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("tracing:contact_queue")


@require(Perm.TRACING_EDIT)
@require_POST
def contact_status(request, contact_id: int):
    contact = selectors.contact_get(scope=request.scope, contact_id=contact_id)
    try:
        services.contact_status_set(actor=request.jk_user, contact=contact, status=_field(request.POST, "status"),
                                    handed_to=_field(request.POST, "handed_to"), note=_field(request.POST, "note"),
                                    scope=request.scope, request=request)
        messages.success(request, _("Contact updated."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return _back(request, "/tracing/contacts/")


@require(Perm.TRACING_EDIT)
@require_POST
def cluster_rename(request, cluster_id: int):
    cluster = selectors.cluster_get(scope=request.scope, cluster_id=cluster_id)
    try:
        services.cluster_update(actor=request.jk_user, cluster=cluster, name=_field(request.POST, "name", limit=128)
                                if "name" in request.POST else None,
                                setting=_field(request.POST, "setting") or None)
        messages.success(request, _("Cluster saved."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect(f"/tracing/chains/?cluster={cluster.pk}")
