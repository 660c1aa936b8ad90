"""The tracing API (/api/v1/tracing/): cases, timelines, contacts, hand-offs, links, clusters, notices.

Reads need TRACING_VIEW, writes TRACING_EDIT; both roles also hold PERSON_VIEW, and every read or write of person data
is audited. Cases are scoped by their person's grid, contacts by theirs: a tracer sees the contacts of their cases
who live elsewhere only as counts with the state of their hand-off.
"""

from __future__ import annotations

import datetime as dt

from django.utils.translation import gettext as _
from ninja import Router, Status

from jingkong.access import audit
from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.core import jobs
from jingkong.core.exceptions import ValidationFailed
from jingkong.core.schemas import JobOut
from jingkong.policy.selectors import PolicyNotActive
from jingkong.tracing import chains, notice, rules, selectors, services, windows
from jingkong.tracing.schemas import (
    CaseContactsOut,
    CaseCreateIn,
    CaseDetailOut,
    CaseOut,
    CasePage,
    CaseStatusFilterT,
    CaseUpdateIn,
    ClassificationFilterT,
    ClusterOut,
    ClusterUpdateIn,
    ContactFlagIn,
    ContactFlagOut,
    ContactOut,
    ContactPage,
    ContactStatusFilterT,
    ContactStatusIn,
    EstimatesOut,
    GraphOut,
    HandoffOut,
    HandoffStatusFilterT,
    LinkCreateIn,
    LinkDecideIn,
    LinkOut,
    LinkStatusFilterT,
    NoticeOut,
    RegionCode,
    StayIn,
    StayOut,
    StayUpdateIn,
    SuggestOut,
    Text,
    TierFilterT,
    case_out,
    contact_out,
    handoff_out,
    link_out,
    stay_out,
)

router = Router(tags=["tracing"])


MAX_PAGE = 100_000


def _page(page: int, page_size: int) -> tuple[int, int]:
    return max(1, min(page, MAX_PAGE)), max(1, min(page_size, 500))


def _show_phone(request) -> bool:
    return request.jk_user.has_role_perm(Perm.PERSON_VIEW_PHONE)


def _audit_list(request, what: str, filters: dict, count: int, returned: int) -> None:
    audit.record(actor=request.jk_user, action="person.list", object_type="people.person",
                 region_code=filters.get("region") or request.scope.prefix or "", request=request,
                 detail={"list": what, "filters": {k: str(v) for k, v in filters.items() if v}, "count": count,
                         "returned": returned})


# --- cases ------------------------------------------------------------------------------------------------------------


@router.get("/cases", response=CasePage)
@require(Perm.TRACING_VIEW)
def cases_list(request, status: CaseStatusFilterT = "", classification: ClassificationFilterT = "",
               region: RegionCode = "", q: Text = "", cluster: int | None = None, page: int = 1, page_size: int = 50):
    """Cases in the caller's region, newest first (filter by status, classification, sub-region, number or name)."""
    qs = selectors.case_list(scope=request.scope, status=status, classification=classification, region=region, q=q,
                             cluster=cluster)
    page, page_size = _page(page, page_size)
    count = qs.count()
    items = list(qs[(page - 1) * page_size: page * page_size])
    _audit_list(request, "cases", {"status": status, "classification": classification, "region": region, "q": q},
                count, len(items))
    return {"count": count, "page": page, "page_size": page_size, "items": [case_out(c) for c in items]}


@router.post("/cases", response={201: CaseOut})
@require(Perm.TRACING_EDIT)
def cases_create(request, payload: CaseCreateIn):
    """Register a case by hand (e.g. reported by a fever clinic) for a person in the caller's region."""
    case = services.case_create(actor=request.jk_user, scope=request.scope, request=request, **payload.dict())
    return Status(201, case_out(case))


def _case_detail(request, case) -> dict:
    audit.record(actor=request.jk_user, action="person.view", object_type="people.person", object_id=case.person_id,
                 region_code=case.region_code, request=request, detail={"case": case.ref})
    out = case_out(case)
    try:
        window, profile = windows.case_window(case, now=_now())
        out.update(window_start=window.start, window_end=window.end, lookback_days=window.days,
                   policy_profile=f"{profile.profile.code} v{profile.profile.version}")
    except (rules.NoAnchor, PolicyNotActive):
        out.update(window_start=None, window_end=None, lookback_days=None, policy_profile=None)
    out["contacts_by_tier"] = selectors.case_contact_counts(scope=request.scope, case=case)
    out["contacts_elsewhere"] = selectors.case_contacts_elsewhere(scope=request.scope, case=case)
    out["cluster_id"] = selectors.cluster_of(case)
    return out


def _now() -> dt.datetime:
    from jingkong.core import clock

    return clock.now()


@router.get("/cases/{case_id}", response=CaseDetailOut)
@require(Perm.TRACING_VIEW)
def cases_get(request, case_id: int):
    """One case with its contact window (from the policy profile in force), contact counts and hand-offs."""
    return _case_detail(request, selectors.case_get(scope=request.scope, case_id=case_id))


@router.patch("/cases/{case_id}", response=CaseOut)
@require(Perm.TRACING_EDIT)
def cases_update(request, case_id: int, payload: CaseUpdateIn):
    """Change a case's classification, onset, source, place, status, tracer… (a changed onset moves its window)."""
    case = selectors.case_get(scope=request.scope, case_id=case_id)
    changes = payload.dict(exclude_unset=True)
    tracer = changes.pop("tracer", None)
    if tracer is not None:
        case = services.case_assign(actor=request.jk_user, scope=request.scope, case=case, username=tracer.strip())
    case = services.case_update(actor=request.jk_user, case=case, request=request, **changes)
    return case_out(case)


@router.post("/cases/{case_id}/find-contacts", response={202: JobOut})
@require(Perm.TRACING_EDIT)
def cases_find_contacts(request, case_id: int):
    """Run contact finding for the case now (a background job; progress at /api/v1/core/jobs/{id})."""
    case = selectors.case_get(scope=request.scope, case_id=case_id)
    job = jobs.enqueue(services.FIND_JOB, {"case_ids": [case.pk]}, actor=request.jk_user, region_code=case.region_code)
    return Status(202, job)


# --- timeline ---------------------------------------------------------------------------------------------------------


@router.get("/cases/{case_id}/stays", response=list[StayOut])
@require(Perm.TRACING_VIEW)
def stays_list(request, case_id: int):
    """The case's activity timeline, with each entry's source and problem flags."""
    case = selectors.case_get(scope=request.scope, case_id=case_id)
    audit.record(actor=request.jk_user, action="person.view", object_type="people.person", object_id=case.person_id,
                 region_code=case.region_code, request=request, detail={"case": case.ref, "part": "timeline"})
    return [stay_out(s) for s in selectors.stays_of(case)]


@router.post("/cases/{case_id}/stays", response={201: StayOut})
@require(Perm.TRACING_EDIT)
def stays_create(request, case_id: int, payload: StayIn):
    """Add a timeline entry from the interview. Refused (422, naming the field): times without a zone, an end before
    the start, an unknown venue code, a transport entry without its number, an overlap not accepted explicitly."""
    case = selectors.case_get(scope=request.scope, case_id=case_id)
    data = payload.dict()
    accept = data.pop("accept_overlap")
    stay = services.stay_save(actor=request.jk_user, case=case, accept_overlap=accept, request=request, **data)
    return Status(201, stay_out(stay))


@router.patch("/cases/{case_id}/stays/{stay_id}", response=StayOut)
@require(Perm.TRACING_EDIT)
def stays_update(request, case_id: int, stay_id: int, payload: StayUpdateIn):
    """Correct a timeline entry (drafted or entered); the same checks as when adding one."""
    case = selectors.case_get(scope=request.scope, case_id=case_id)
    stay = selectors.stay_get(case=case, stay_id=stay_id)
    data = payload.dict(exclude_unset=True)
    accept = data.pop("accept_overlap", False)
    stay = services.stay_save(actor=request.jk_user, case=case, stay=stay, accept_overlap=accept, request=request,
                              **data)
    return stay_out(stay)


@router.delete("/cases/{case_id}/stays/{stay_id}", response={204: None})
@require(Perm.TRACING_EDIT)
def stays_delete(request, case_id: int, stay_id: int):
    """Remove a wrong timeline entry."""
    case = selectors.case_get(scope=request.scope, case_id=case_id)
    stay = selectors.stay_get(case=case, stay_id=stay_id)
    services.stay_delete(actor=request.jk_user, case=case, stay=stay, request=request)
    return Status(204, None)


# --- contacts ---------------------------------------------------------------------------------------------------------


@router.get("/cases/{case_id}/contacts", response=CaseContactsOut)
@require(Perm.TRACING_VIEW)
def case_contacts(request, case_id: int, tier: TierFilterT = "", status: ContactStatusFilterT = ""):
    """The case's contacts in the caller's region with the reasons (evidence) linking them to this case; those
    living elsewhere as counts per receiving region with their hand-off state."""
    case = selectors.case_get(scope=request.scope, case_id=case_id)
    contacts = list(selectors.contact_list(scope=request.scope, case=case, tier=tier, status=status))
    reasons = selectors.reasons_of(contacts, case=case)
    audit.record_many(actor=request.jk_user, action="person.view", object_type="people.person", request=request,
                      items=[(c.person_id, c.region_code) for c in contacts], detail={"case": case.ref})
    show = _show_phone(request)
    return {"count": len(contacts), "items": [contact_out(c, reasons.get(c.pk, []), show_phone=show) for c in contacts],
            "elsewhere": selectors.case_contacts_elsewhere(scope=request.scope, case=case)}


@router.post("/cases/{case_id}/contacts", response={201: ContactFlagOut})
@require(Perm.TRACING_EDIT)
def case_contacts_flag(request, case_id: int, payload: ContactFlagIn):
    """Name a close contact found in the interview: a person of the caller's region by id, or anyone by ID number
    (someone living in another region is handed to that region's queue)."""
    case = selectors.case_get(scope=request.scope, case_id=case_id)
    contact = services.contact_flag(actor=request.jk_user, scope=request.scope, case=case, request=request,
                                    **payload.dict())
    mine = request.scope.contains(contact.region_code)
    return Status(201, {"contact_id": contact.pk, "tier": contact.tier, "in_your_region": mine,
                        "handed_to_region": None if mine else contact.queue_region_code})


@router.get("/contacts", response=ContactPage)
@require(Perm.TRACING_VIEW)
def contacts_list(request, tier: TierFilterT = "", status: ContactStatusFilterT = "", region: RegionCode = "",
                  open: bool = False, overdue: bool = False, page: int = 1, page_size: int = 50):
    """The contacts living in the caller's region (its queue), most urgent deadline first."""
    qs = selectors.contact_list(scope=request.scope, tier=tier, status=status, region=region, open_only=open,
                                overdue=overdue)
    page, page_size = _page(page, page_size)
    count = qs.count()
    items = list(qs[(page - 1) * page_size: page * page_size])
    reasons = selectors.reasons_of(items)
    _audit_list(request, "contacts", {"tier": tier, "status": status, "region": region}, count, len(items))
    show = _show_phone(request)
    return {"count": count, "page": page, "page_size": page_size,
            "items": [contact_out(c, reasons.get(c.pk, []), show_phone=show) for c in items]}


@router.get("/contacts/{contact_id}", response=ContactOut)
@require(Perm.TRACING_VIEW)
def contacts_get(request, contact_id: int):
    """One contact with every reason (all cases), audited."""
    contact = selectors.contact_get(scope=request.scope, contact_id=contact_id)
    audit.record(actor=request.jk_user, action="person.view", object_type="people.person",
                 object_id=contact.person_id, region_code=contact.region_code, request=request)
    reasons = selectors.reasons_of([contact])
    return contact_out(contact, reasons.get(contact.pk, []), show_phone=_show_phone(request))


@router.post("/contacts/{contact_id}/status", response=ContactOut)
@require(Perm.TRACING_EDIT)
def contacts_status(request, contact_id: int, payload: ContactStatusIn):
    """Move a contact forward: notified → located → handed over (to grouping or transfer) → in quarantine, or
    closed with a reason. A status never goes back (409)."""
    contact = selectors.contact_get(scope=request.scope, contact_id=contact_id)
    contact = services.contact_status_set(actor=request.jk_user, contact=contact, scope=request.scope,
                                          request=request, **payload.dict())
    contact = selectors.contact_get(scope=request.scope, contact_id=contact.pk)  # with its hand-off state
    reasons = selectors.reasons_of([contact])
    return contact_out(contact, reasons.get(contact.pk, []), show_phone=_show_phone(request))


# --- hand-offs --------------------------------------------------------------------------------------------------------


@router.get("/handoffs", response=list[HandoffOut])
@require(Perm.TRACING_VIEW)
def handoffs_list(request, direction: str = "incoming", status: HandoffStatusFilterT = ""):
    """Incoming hand-offs (contacts of other regions' cases living here) or outgoing ones (sent from here: their
    progress, without the person)."""
    if direction not in ("incoming", "outgoing"):
        raise ValidationFailed(_("direction: incoming or outgoing"), extra={"field": "direction"})
    rows = list(selectors.handoff_list(scope=request.scope, direction=direction, status=status)[:1000])
    shown = [h for h in rows if request.scope.contains(h.contact.region_code)]
    if shown:
        audit.record_many(actor=request.jk_user, action="person.view", object_type="people.person", request=request,
                          items=[(h.contact.person_id, h.contact.region_code) for h in shown],
                          detail={"list": f"handoffs_{direction}"})
    return [handoff_out(h, show_person=request.scope.contains(h.contact.region_code)) for h in rows]


@router.post("/handoffs/{handoff_id}/accept", response=HandoffOut)
@require(Perm.TRACING_EDIT)
def handoffs_accept(request, handoff_id: int):
    """The receiving region takes the contact over (the sending region sees it accepted)."""
    handoff = selectors.handoff_get(scope=request.scope, handoff_id=handoff_id)
    handoff = services.handoff_accept(actor=request.jk_user, handoff=handoff, request=request)
    handoff = selectors.handoff_list(scope=request.scope).get(pk=handoff.pk)
    return handoff_out(handoff, show_person=True)


# --- links ------------------------------------------------------------------------------------------------------------


@router.get("/cases/{case_id}/links", response=list[LinkOut])
@require(Perm.TRACING_VIEW)
def case_links(request, case_id: int):
    """Links from and to the case (suggested, confirmed, rejected)."""
    case = selectors.case_get(scope=request.scope, case_id=case_id)
    return [link_out(lk) for lk in selectors.link_list(scope=request.scope, case=case)]


@router.post("/cases/{case_id}/links/suggest", response=SuggestOut)
@require(Perm.TRACING_EDIT)
def case_links_suggest(request, case_id: int):
    """Suggest links for the case now (earlier cases sharing a household, workplace, venue stay or contact relation
    within the incubation window of the policy profile)."""
    case = selectors.case_get(scope=request.scope, case_id=case_id)
    from jingkong.policy.schema import RulesIncomplete

    try:
        result = chains.links_suggest(case_ids=[case.pk], actor=request.jk_user, strict=True)
    except RulesIncomplete as exc:
        raise ValidationFailed(str(exc), code="rules_incomplete") from None
    links = [link_out(lk) for lk in selectors.link_list(scope=request.scope, case=case, status="suggested")]
    return {"suggested": result["suggested"], "skipped": result["skipped"], "links": links}


@router.get("/links", response=list[LinkOut])
@require(Perm.TRACING_VIEW)
def links_list(request, status: LinkStatusFilterT = ""):
    """Links touching a case of the caller's region."""
    return [link_out(lk) for lk in selectors.link_list(scope=request.scope, status=status)[:2000]]


@router.post("/links", response={201: LinkOut})
@require(Perm.TRACING_EDIT)
def links_create(request, payload: LinkCreateIn):
    """Record a link found in the interview (confirmed at once); the infectee must be a case of the caller's region."""
    link = services.link_create(actor=request.jk_user, scope=request.scope, **payload.dict())
    return Status(201, link_out(link))


@router.post("/links/{link_id}/confirm", response=LinkOut)
@require(Perm.TRACING_EDIT)
def links_confirm(request, link_id: int, payload: LinkDecideIn):
    """Confirm a suggested link (clusters are recomputed)."""
    link = selectors.link_get(scope=request.scope, link_id=link_id, to_decide=True)
    return link_out(services.link_decide(actor=request.jk_user, link=link, status="confirmed", **payload.dict()))


@router.post("/links/{link_id}/reject", response=LinkOut)
@require(Perm.TRACING_EDIT)
def links_reject(request, link_id: int, payload: LinkDecideIn):
    """Reject a link (it is never suggested again; clusters are recomputed)."""
    link = selectors.link_get(scope=request.scope, link_id=link_id, to_decide=True)
    return link_out(services.link_decide(actor=request.jk_user, link=link, status="rejected", **payload.dict()))


# --- clusters, graph, estimates, notice ---------------------------------------------------------------------------------


def _cluster_out(request, cluster) -> dict:
    members = selectors.cluster_members(scope=request.scope, cluster=cluster)
    return {"id": cluster.pk, "name": cluster.name, "setting": cluster.setting, "region_code": cluster.region_code,
            "active": cluster.active, "size": cluster.members.count(), "members": [c.ref for c in members],
            "growth": chains.cluster_growth(cluster)}


@router.get("/clusters", response=list[ClusterOut])
@require(Perm.TRACING_VIEW)
def clusters_list(request):
    """Active clusters with at least one case in the caller's region, largest first, with size over time."""
    return [_cluster_out(request, c) for c in selectors.cluster_list(scope=request.scope)[:500]]


@router.get("/clusters/{cluster_id}", response=ClusterOut)
@require(Perm.TRACING_VIEW)
def clusters_get(request, cluster_id: int):
    return _cluster_out(request, selectors.cluster_get(scope=request.scope, cluster_id=cluster_id))


@router.patch("/clusters/{cluster_id}", response=ClusterOut)
@require(Perm.TRACING_EDIT)
def clusters_update(request, cluster_id: int, payload: ClusterUpdateIn):
    """Name a cluster and set its setting (kept when it grows)."""
    cluster = selectors.cluster_get(scope=request.scope, cluster_id=cluster_id)
    cluster = services.cluster_update(actor=request.jk_user, cluster=cluster, **payload.dict())
    return _cluster_out(request, cluster)


@router.get("/graph", response=GraphOut)
@require(Perm.TRACING_VIEW)
def graph(request, cluster: int | None = None, suggested: bool = True):
    """Nodes (cases) and edges (links) for the transmission-chain view; ``cluster`` narrows to one cluster."""
    selected = selectors.cluster_get(scope=request.scope, cluster_id=cluster) if cluster else None
    return selectors.graph(scope=request.scope, cluster=selected, include_suggested=suggested)


@router.get("/estimates", response=EstimatesOut)
@require(Perm.TRACING_VIEW)
def estimates(request):
    """Serial interval and incubation period (days) from confirmed links of the caller's region, with sample sizes;
    under the minimum sample the figures are withheld ("insufficient data")."""
    return selectors.estimates(scope=request.scope)


@router.get("/cases/{case_id}/notice", response=NoticeOut)
@require(Perm.TRACING_VIEW)
def case_notice(request, case_id: int):
    """The public itinerary notice of the case (places and time windows, personal data removed)."""
    case = selectors.case_get(scope=request.scope, case_id=case_id)
    return notice.notice_for(case)
