"""Reads of the tracing feature. Every function takes the caller's Scope; objects outside it are "not found".

Cases are in a scope by their person's grid (``Case.region_code``), contacts by theirs (``Contact.region_code``). A
case's contacts living elsewhere are not listed to the case's tracer: they appear as counts per receiving region with
the state of the hand-off (the receiving region sees them in full).
"""

from __future__ import annotations

from collections import Counter, defaultdict

from django.db.models import Case as DbCase
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Value, When
from django.utils.translation import gettext as _

from jingkong.access.guard import Scope
from jingkong.core import clock
from jingkong.core.exceptions import NotFound, PermissionDenied
from jingkong.geo.models import Region
from jingkong.tracing import chains
from jingkong.tracing.models import (
    Case,
    Cluster,
    ClusterMember,
    Contact,
    ContactReason,
    ContactStatus,
    Handoff,
    HandoffStatus,
    Link,
    LinkStatus,
    Stay,
    Tier,
)

MAX_ID = 2**63  # ids beyond a 64-bit integer name nothing (and must not reach the database)
OPEN_STATUSES = [s for s in ContactStatus.values if s != ContactStatus.CLOSED]
# Statuses in which a contact still waits for the action its deadline is about (transfer to grouping/quarantine).
BEFORE_HANDOVER = (ContactStatus.IDENTIFIED, ContactStatus.NOTIFIED, ContactStatus.LOCATED)



def _plain(text: str) -> str:
    """A filter value without NUL characters (PostgreSQL refuses them in text: a DataError, i.e. a 500)."""
    return (text or "").replace("\x00", "")


# --- cases ------------------------------------------------------------------------------------------------------------


def case_list(*, scope: Scope, status: str = "", classification: str = "", region: str = "", q: str = "",
              cluster: int | None = None) -> QuerySet[Case]:
    qs = Case.objects.filter(scope.q("region_code")).select_related("person", "tracer")
    status, classification, region, q = _plain(status), _plain(classification), _plain(region), _plain(q)
    if region:
        scope.check(region, "region")
        qs = qs.filter(region_code__startswith=region)
    if status:
        qs = qs.filter(status=status)
    if classification:
        qs = qs.filter(classification=classification)
    if q:
        text = q.strip()
        qs = qs.filter(Q(ref__icontains=text) | Q(person__name__contains=text))
    if cluster:
        if not 0 < cluster < MAX_ID:
            return qs.none()
        qs = qs.filter(cluster_membership__cluster_id=cluster)
    return qs.order_by("-created_at", "-pk")


def case_get(*, scope: Scope, case_id: int) -> Case:
    case = Case.objects.select_related("person__grid", "person__household", "tracer").filter(pk=case_id).first()
    if case is None or not scope.contains(case.region_code):
        raise NotFound(_("case not found"))
    return case


def case_get_by_ref(*, scope: Scope, ref: str) -> Case:
    if "\x00" in ref:
        raise NotFound(_("case not found"))
    case = Case.objects.select_related("person__grid", "person__household", "tracer").filter(ref=ref).first()
    if case is None or not scope.contains(case.region_code):
        raise NotFound(_("case not found"))
    return case


def stays_of(case: Case) -> list[Stay]:
    return list(case.stays.select_related("venue").order_by("start", "pk"))


def stay_get(*, case: Case, stay_id: int) -> Stay:
    stay = case.stays.filter(pk=stay_id).first()
    if stay is None:
        raise NotFound(_("stay not found"))
    return stay


# --- contacts ---------------------------------------------------------------------------------------------------------


def contact_list(*, scope: Scope, tier: str = "", status: str = "", region: str = "", case: Case | None = None,
                 open_only: bool = False, overdue: bool = False) -> QuerySet[Contact]:
    qs = Contact.objects.filter(scope.q("region_code")).select_related("person")
    tier, status, region = _plain(tier), _plain(status), _plain(region)
    if region:
        scope.check(region, "region")
        qs = qs.filter(region_code__startswith=region)
    if tier:
        qs = qs.filter(tier=tier)
    if status:
        qs = qs.filter(status=status)
    elif open_only:
        qs = qs.filter(status__in=OPEN_STATUSES)
    if overdue:
        qs = qs.filter(due_at__lt=clock.now(), status__in=BEFORE_HANDOVER)
    if case is not None:
        qs = qs.filter(Exists(ContactReason.objects.filter(contact=OuterRef("pk"), case=case)))
    incoming = Handoff.objects.filter(contact=OuterRef("pk"), status=HandoffStatus.REQUESTED)
    qs = qs.annotate(handoff_pending=Exists(incoming))
    # The earliest deadline first (the most urgent action; none last, on every database), then the closest tier.
    return qs.order_by(F("due_at").asc(nulls_last=True), _rank("tier", Tier.CLOSE, Tier.SECONDARY), "pk")


def _rank(field: str, *first: str):
    """An ordering expression putting ``first`` values in that order before anything else (not alphabetical)."""
    return DbCase(*(When(**{field: v}, then=Value(i)) for i, v in enumerate(first)), default=Value(len(first)),
                  output_field=IntegerField())


def contact_get(*, scope: Scope, contact_id: int) -> Contact:
    waiting = Handoff.objects.filter(contact=OuterRef("pk"), status=HandoffStatus.REQUESTED)
    contact = (Contact.objects.select_related("person__grid").annotate(handoff_pending=Exists(waiting))
               .filter(pk=contact_id).first())
    if contact is None or not scope.contains(contact.region_code):
        raise NotFound(_("contact not found"))
    return contact


def reasons_of(contacts: list[Contact], *, case: Case | None = None) -> dict[int, list[ContactReason]]:
    qs = ContactReason.objects.filter(contact__in=contacts).select_related("case", "via_contact")
    if case is not None:
        qs = qs.filter(case=case)
    out: dict[int, list[ContactReason]] = defaultdict(list)
    for r in qs.order_by("-active", _rank("tier", Tier.CLOSE, Tier.SECONDARY), F("exposure_end").desc(nulls_last=True),
                         "pk"):
        out[r.contact_id].append(r)
    return out


def case_contacts_elsewhere(*, scope: Scope, case: Case) -> list[dict]:
    """The case's contacts outside the caller's scope: counts per receiving region and hand-off state."""
    if scope.is_everything or scope.prefix is None:
        return []
    rows = (Contact.objects.filter(reasons__case=case).exclude(scope.q("region_code")).distinct()
            .values("queue_region_code", "tier").annotate(n=Count("id", distinct=True)))
    handoffs = Counter()
    for h in (Handoff.objects.filter(contact__reasons__case=case).exclude(scope.q("contact__region_code"))
              .values("to_region_code", "status").annotate(n=Count("id", distinct=True))):
        handoffs[(h["to_region_code"], h["status"])] += h["n"]
    by_region: dict[str, dict] = {}
    for r in rows:
        entry = by_region.setdefault(r["queue_region_code"], {"region_code": r["queue_region_code"], "contacts": 0,
                                                              "by_tier": {}})
        entry["contacts"] += r["n"]
        entry["by_tier"][r["tier"]] = entry["by_tier"].get(r["tier"], 0) + r["n"]
    names = dict(Region.objects.filter(code__in=list(by_region)).values_list("code", "name"))
    for code, entry in by_region.items():
        entry["region_name"] = names.get(code, "")
        entry["handoffs_requested"] = handoffs[(code, HandoffStatus.REQUESTED)]
        entry["handoffs_accepted"] = handoffs[(code, HandoffStatus.ACCEPTED)]
    return sorted(by_region.values(), key=lambda e: e["region_code"])


def case_contact_counts(*, scope: Scope, case: Case) -> dict:
    rows = (Contact.objects.filter(reasons__case=case, reasons__active=True).filter(scope.q("region_code")).distinct()
            .values("tier").annotate(n=Count("id", distinct=True)))
    return {r["tier"]: r["n"] for r in rows}


# --- hand-offs --------------------------------------------------------------------------------------------------------


def handoff_list(*, scope: Scope, direction: str = "incoming", status: str = "") -> QuerySet[Handoff]:
    """Incoming: hand-offs to a region inside the scope (the receiving queue). Outgoing: sent from inside it."""
    qs = Handoff.objects.select_related("contact__person", "case", "accepted_by")
    if direction == "outgoing":
        qs = qs.filter(scope.q("from_region_code"))
    else:
        qs = qs.filter(scope.q("to_region_code"))
    if status:
        qs = qs.filter(status=_plain(status))
    # Waiting hand-offs first: the lists are capped, and the waiting ones are the work.
    return qs.order_by(_rank("status", HandoffStatus.REQUESTED), "-requested_at", "-pk")


def handoff_get(*, scope: Scope, handoff_id: int) -> Handoff:
    """A hand-off is acted upon by the receiving region."""
    handoff = Handoff.objects.select_related("contact").filter(pk=handoff_id).first()
    if handoff is None or not scope.contains(handoff.to_region_code):
        raise NotFound(_("hand-off not found"))
    return handoff


# --- links, clusters, graph -------------------------------------------------------------------------------------------


def link_list(*, scope: Scope, case: Case | None = None, status: str = "") -> QuerySet[Link]:
    qs = Link.objects.select_related("infector", "infectee", "decided_by").filter(
        scope.q("infectee__region_code") | scope.q("infector__region_code"))
    if case is not None:
        qs = qs.filter(Q(infector=case) | Q(infectee=case))
    if status:
        qs = qs.filter(status=_plain(status))
    # Suggested links (to decide) first, then confirmed, then rejected: the lists are capped.
    return qs.order_by(_rank("status", LinkStatus.SUGGESTED, LinkStatus.CONFIRMED), F("suggested_at").desc(
        nulls_last=True), "-pk")


def link_get(*, scope: Scope, link_id: int, to_decide: bool = False) -> Link:
    """A link touching the scope. ``to_decide``: the infectee must be in the scope — the region investigating the
    infectee's source confirms or rejects it (as it records one), the infector's region only sees it."""
    link = Link.objects.select_related("infector", "infectee").filter(pk=link_id).first()
    if link is None or not (scope.contains(link.infectee.region_code) or scope.contains(link.infector.region_code)):
        raise NotFound(_("link not found"))
    if to_decide and not scope.contains(link.infectee.region_code):
        raise PermissionDenied(_("the region of the infected case decides this link"),
                               extra={"infectee_region": link.infectee.region_code[:9]})
    return link


def cluster_list(*, scope: Scope, active: bool = True) -> QuerySet[Cluster]:
    in_scope = ClusterMember.objects.filter(cluster=OuterRef("pk")).filter(scope.q("case__region_code"))
    qs = Cluster.objects.filter(Exists(in_scope)).annotate(size=Count("members"))
    if active:
        qs = qs.filter(active=True)
    return qs.order_by("-size", "pk")


def cluster_get(*, scope: Scope, cluster_id: int) -> Cluster:
    cluster = cluster_list(scope=scope, active=False).filter(pk=cluster_id).first()
    if cluster is None:
        raise NotFound(_("cluster not found"))
    return cluster


def cluster_of(case: Case) -> int | None:
    return ClusterMember.objects.filter(case=case).values_list("cluster_id", flat=True).first()


def cluster_members(*, scope: Scope, cluster: Cluster) -> list[Case]:
    return list(Case.objects.filter(cluster_membership__cluster=cluster).filter(scope.q("region_code"))
                .order_by("first_positive_at", "pk"))


def graph(*, scope: Scope, cluster: Cluster | None = None, include_suggested: bool = True) -> dict:
    """Nodes (cases) and edges (links) for the dashboard. Cases outside the scope that are linked to cases inside it
    appear as external nodes carrying only their case number."""
    links = link_list(scope=scope).exclude(status=LinkStatus.REJECTED)
    if not include_suggested:
        links = links.filter(status=LinkStatus.CONFIRMED)
    members = None
    if cluster is not None:
        members = set(ClusterMember.objects.filter(cluster=cluster).values_list("case_id", flat=True))
        links = links.filter(infector_id__in=members, infectee_id__in=members)
    links = list(links)
    ids = {lk.infector_id for lk in links} | {lk.infectee_id for lk in links} | (members or set())
    cluster_of = dict(ClusterMember.objects.filter(case_id__in=ids).values_list("case_id", "cluster_id"))
    nodes = []
    for case in Case.objects.filter(pk__in=ids).order_by("pk"):
        if scope.contains(case.region_code):
            nodes.append({"id": case.pk, "ref": case.ref, "external": False, "classification": case.classification,
                          "status": case.status, "region_code": case.region_code,
                          "onset_date": case.onset_date.isoformat() if case.onset_date else None,
                          "first_positive_at": case.first_positive_at.isoformat() if case.first_positive_at else None,
                          "cluster": cluster_of.get(case.pk)})
        else:
            nodes.append({"id": case.pk, "ref": case.ref, "external": True})
    edges = [{"id": lk.pk, "source": lk.infector_id, "target": lk.infectee_id, "status": lk.status,
              "confidence": lk.confidence, "kind": lk.kind} for lk in links]
    return {"nodes": nodes, "edges": edges}


def estimates(*, scope: Scope) -> dict:
    links = Link.objects.filter(status=LinkStatus.CONFIRMED).filter(scope.q("infectee__region_code")).select_related(
        "infector", "infectee")
    out = chains.estimates(links)
    out["links"] = links.count()
    return out
