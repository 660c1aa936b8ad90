"""Transmission chains: suggested links, clusters (connected components) and interval estimates.

Suggested links. For each case of a run, every other case that shares with it, within the incubation window:

* a contact relation found by contact finding (one was a close contact of the other, or a secondary contact through
  a third person who became a case),
* the same household, the same registered workplace, or
* a stay at the same venue, overlapping in time (or on the same day), at a time inside the later case's incubation
  window,

is suggested as infector (the case whose onset — or positive sampling — came first) → infectee, with the evidence and
a confidence (jingkong.tracing.rules.link_confidence). The window comes from the profile's optional ``transmission``
section (``incubation_min_days``/``incubation_max_days``: 1–14 days in both shipped profiles, from the 8th-edition
protocol text; see policy_rules.md §1.3); a profile without it makes suggestion refuse with the profile's message.
Existing links (suggested, confirmed or rejected) are never suggested again: a rejection is final.

Clusters are the connected components (networkx) of confirmed links; a cluster keeps its id, name and setting as it
grows, the largest previous cluster wins when two merge, and a cluster that falls below two cases is deactivated.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable

import networkx as nx
from django.db import transaction
from django.db.models import Q

from jingkong.core import clock
from jingkong.core.events import emit_many
from jingkong.geo.models import Region, Venue
from jingkong.people.models import Person
from jingkong.policy.schema import RulesIncomplete
from jingkong.policy.selectors import PolicyNotActive
from jingkong.tracing import rules, windows
from jingkong.tracing.models import (
    Case,
    Cluster,
    ClusterMember,
    ContactReason,
    Link,
    LinkStatus,
    Setting,
    Stay,
    StayKind,
    Tier,
)


def incubation_bounds(case: Case) -> tuple[int, int]:
    """(min, max) incubation days for the case's region, from the profile in force at its onset/sampling."""
    profile = windows.profile_for(case.region_code, windows.case_anchor(case))
    section = profile.rules.section("transmission")
    return section.incubation_min_days, section.incubation_max_days


def _anchors(cases: Iterable[Case]) -> dict[int, dt.datetime]:
    out = {}
    for c in cases:
        try:
            out[c.pk] = windows.case_anchor(c)
        except rules.NoAnchor:
            continue
    return out


def links_suggest(*, case_ids: Iterable[int], actor=None, now: dt.datetime | None = None,
                  strict: bool = False) -> dict:
    """Suggest links between the given cases and every other case. ``strict``: a profile without incubation rules
    raises (the API); otherwise such cases are skipped and reported (the background job)."""
    now = now or clock.now()
    run = list(Case.objects.filter(pk__in=list(case_ids)).order_by("pk"))
    bounds: dict[int, tuple[int, int]] = {}
    skipped = []
    for case in run:
        try:
            bounds[case.pk] = incubation_bounds(case)
        except rules.NoAnchor as exc:
            skipped.append({"case": case.ref, "reason": str(exc)})
        except (RulesIncomplete, PolicyNotActive) as exc:
            if strict:
                raise
            skipped.append({"case": case.ref, "reason": getattr(exc, "message", str(exc))})
    run = [c for c in run if c.pk in bounds]
    if not run:
        return {"suggested": 0, "skipped": skipped}
    everyone = {c.pk: c for c in Case.objects.all().only("id", "ref", "person_id", "onset_date", "first_positive_at",
                                                         "region_code")}
    anchor = _anchors(everyone.values())
    evidence: dict[tuple[int, int], list[dict]] = defaultdict(list)  # unordered pair (low id, high id) -> items

    def add(a: int, b: int, item: dict) -> None:
        if a != b and a in anchor and b in anchor:
            evidence[(min(a, b), max(a, b))].append(item)

    run_ids = {c.pk for c in run}
    by_person = {c.person_id: c.pk for c in everyone.values()}
    _contact_evidence(run, by_person, add)
    _registry_evidence(run, everyone, add)
    _venue_evidence(run, anchor, bounds, add)

    known = set(Link.objects.filter(Q(infector_id__in=run_ids) | Q(infectee_id__in=run_ids))
                .values_list("infector_id", "infectee_id"))
    created = []
    for (a, b), items in evidence.items():
        if (a, b) in known or (b, a) in known:
            continue
        tie = anchor[a] == anchor[b]
        infector, infectee = (a, b) if (anchor[a], a) <= (anchor[b], b) else (b, a)
        lo, hi = bounds.get(infectee) or bounds.get(infector) or (None, None)
        if hi is None:
            continue
        if not rules.within_incubation(infector_anchor=anchor[infector], infectee_anchor=anchor[infectee],
                                       max_days=hi):
            continue
        # Evidence with a time counts only inside the infectee's incubation window: a contact relation after the
        # infectee was already infected (or too short before it) explains nothing. Registry evidence has no time.
        items, exposures = _in_window(items, anchor[infectee], lo, hi)
        if not items:
            continue
        kinds = [i["kind"] for i in items]
        main = max(kinds, key=lambda k: rules.CONFIDENCE_RANK[rules.EVIDENCE_CONFIDENCE.get(k, rules.LOW)])
        created.append(Link(
            infector_id=infector, infectee_id=infectee, status=LinkStatus.SUGGESTED, kind=main,
            confidence=rules.link_confidence(kinds, tie=tie), evidence=_dedupe(items),
            exposure_at=max(exposures) if exposures else None, suggested_at=now,
            created_by=actor if getattr(actor, "pk", None) else None,
        ))
    with transaction.atomic():
        Link.objects.bulk_create(created, ignore_conflicts=True)
        if created:
            emit_many([{"type": "tracing.link_suggested", "subject_type": "tracing.case",
                        "subject_id": link.infectee_id, "region_code": everyone[link.infectee_id].region_code,
                        "payload": {"infector": everyone[link.infector_id].ref,
                                    "infectee": everyone[link.infectee_id].ref, "confidence": link.confidence,
                                    "kind": link.kind}} for link in created], actor=actor)
    return {"suggested": len(created), "skipped": skipped}


def _in_window(items: list[dict], infectee_anchor: dt.datetime, lo: int, hi: int) -> tuple[list[dict], list]:
    """The evidence items that can explain the infection (timeless ones, and those whose exposure span meets the
    infectee's incubation window), and the latest exposure instant inside the window of each timed one."""
    window_start = infectee_anchor - dt.timedelta(days=hi)
    window_end = infectee_anchor - dt.timedelta(days=lo)
    kept, exposures = [], []
    for item in items:
        if not item.get("exposure_at"):
            kept.append(item)
            continue
        end = dt.datetime.fromisoformat(item["exposure_at"])
        start = dt.datetime.fromisoformat(item["exposure_from"]) if item.get("exposure_from") else end
        if start <= window_end and end >= window_start:
            kept.append(item)
            exposures.append(min(end, window_end))
    return kept, exposures


def _dedupe(items: list[dict]) -> list[dict]:
    seen, out = set(), []
    for item in items:
        key = tuple(sorted((k, str(v)) for k, v in item.items()))
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out[:20]


def _contact_evidence(run: list[Case], by_person: dict[int, int], add) -> None:
    """One case was a contact of the other (close), or of a third person who became a case (secondary)."""
    run_persons = {c.person_id: c.pk for c in run}
    run_ids = set(run_persons.values())
    # Only reasons whose contact became a case matter: filtered in SQL (a run's cases may hold 100 000 reasons).
    reasons = ContactReason.objects.filter(
        Q(contact__person_id__in=list(run_persons)) | Q(case_id__in=list(run_ids)),
        contact__person__tracing_case__isnull=False,
    ).values("case_id", "contact__person_id", "tier", "kind", "exposure_start", "exposure_end",
             "via_contact__person_id")
    for r in reasons:
        other = by_person.get(r["contact__person_id"])
        if other is None:
            continue  # the contact is not a case
        exposure = {"exposure_at": r["exposure_end"].isoformat() if r["exposure_end"] else None}
        if r["exposure_start"] and r["exposure_end"]:
            exposure["exposure_from"] = r["exposure_start"].isoformat()
        if r["tier"] == Tier.SECONDARY and r["via_contact__person_id"] in by_person:
            # The secondary contact's exposure was to the close contact who is now a case: link those two.
            add(by_person[r["via_contact__person_id"]], other,
                {"kind": f"contact_{r['kind']}", "relation": "secondary_via_case", **exposure})
        elif r["tier"] == Tier.CLOSE:
            add(r["case_id"], other, {"kind": f"contact_{r['kind']}", **exposure})
        elif r["tier"] == Tier.SECONDARY:
            add(r["case_id"], other, {"kind": "contact_secondary", **exposure})
        else:
            add(r["case_id"], other, {"kind": "contact_companion", **exposure})


def _registry_evidence(run: list[Case], everyone: dict[int, Case], add) -> None:
    persons = {p["pk"]: p for p in Person.objects.filter(pk__in=[c.person_id for c in everyone.values()])
               .values("pk", "household_id", "workplace_id", "workplace__name")}
    by_household, by_workplace = defaultdict(list), defaultdict(list)
    for case in everyone.values():
        p = persons.get(case.person_id)
        if p is None:
            continue
        if p["household_id"]:
            by_household[p["household_id"]].append(case.pk)
        if p["workplace_id"]:
            by_workplace[p["workplace_id"]].append(case.pk)
    for case in run:
        p = persons.get(case.person_id)
        if p is None:
            continue
        for other in by_household.get(p["household_id"], []) if p["household_id"] else []:
            add(case.pk, other, {"kind": "household", "household_id": p["household_id"]})
        for other in by_workplace.get(p["workplace_id"], []) if p["workplace_id"] else []:
            add(case.pk, other, {"kind": "workplace", "venue_id": p["workplace_id"], "venue": p["workplace__name"]})


def _venue_evidence(run: list[Case], anchor: dict[int, dt.datetime], bounds: dict[int, tuple[int, int]], add) -> None:
    """Stays at the same venue: overlapping in time, or on the same local day, inside the incubation window."""
    mine = list(Stay.objects.filter(case_id__in=[c.pk for c in run], venue__isnull=False, flag_inverted=False)
                .exclude(kind=StayKind.HOME).exclude(source="registry")
                .values("case_id", "venue_id", "start", "end"))
    if not mine:
        return
    venue_ids = {s["venue_id"] for s in mine}
    names = dict(Venue.objects.filter(pk__in=venue_ids).values_list("pk", "name"))
    others = defaultdict(list)
    for s in (Stay.objects.filter(venue_id__in=venue_ids, flag_inverted=False).exclude(source="registry")
              .values("case_id", "venue_id", "start", "end")):
        others[s["venue_id"]].append(s)
    tz = clock.local_time_zone()
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz)
    for s in mine:
        lo_hi = bounds.get(s["case_id"])
        for o in others[s["venue_id"]]:
            if o["case_id"] == s["case_id"]:
                continue
            overlap_start, overlap_end = max(s["start"], o["start"]), min(s["end"], o["end"])
            if overlap_start <= overlap_end:
                kind, at = "venue_overlap", overlap_start + (overlap_end - overlap_start) / 2
            elif s["start"].astimezone(zone).date() == o["start"].astimezone(zone).date():
                kind, at = "venue_same_day", max(s["start"], o["start"])
            else:
                continue
            # The later case of the two is the possible infectee: the exposure must fall in its incubation window.
            later = s["case_id"] if anchor.get(s["case_id"], at) >= anchor.get(o["case_id"], at) else o["case_id"]
            lo, hi = bounds.get(later) or lo_hi or (0, 0)
            if later not in anchor or not rules.exposure_in_window(at=at, infectee_anchor=anchor[later],
                                                                   min_days=lo, max_days=hi):
                continue
            add(s["case_id"], o["case_id"], {"kind": kind, "venue_id": s["venue_id"],
                                             "venue": names.get(s["venue_id"], ""), "exposure_at": at.isoformat()})


# --- clusters ---------------------------------------------------------------------------------------------------------


def clusters_refresh(*, now: dt.datetime | None = None) -> dict:
    """Recompute clusters from the confirmed links (connected components with two or more cases)."""
    now = now or clock.now()
    graph = nx.Graph()
    kinds: dict[frozenset, str] = {}
    for a, b, kind in Link.objects.filter(status=LinkStatus.CONFIRMED).values_list("infector_id", "infectee_id",
                                                                                  "kind"):
        graph.add_edge(a, b)
        kinds[frozenset((a, b))] = kind
    components = [set(c) for c in nx.connected_components(graph) if len(c) >= 2]
    with transaction.atomic():
        current = dict(ClusterMember.objects.values_list("case_id", "cluster_id"))
        clusters = {c.pk: c for c in Cluster.objects.filter(active=True)}
        sizes = Counter(current.values())
        taken: set[int] = set()
        plan: list[tuple[Cluster | None, set[int]]] = []
        for comp in sorted(components, key=lambda c: (-len(c), min(c))):
            candidates = Counter(current[c] for c in comp if c in current and current[c] in clusters)
            keep = None
            for cid, _n in sorted(candidates.items(), key=lambda kv: (-kv[1], -sizes[kv[0]], kv[0])):
                if cid not in taken:
                    keep = clusters[cid]
                    break
            if keep is not None:
                taken.add(keep.pk)
            plan.append((keep, comp))
        cases = {c.pk: c for c in Case.objects.filter(pk__in=[c for comp in components for c in comp])}
        stale = [cid for cid in clusters if cid not in taken]
        if stale:
            Cluster.objects.filter(pk__in=stale).update(active=False, updated_at=now)
        members = []
        for keep, comp in plan:
            comp_kinds = [kinds[frozenset((a, b))] for a, b in graph.subgraph(comp).edges()]
            setting = rules.cluster_setting(comp_kinds)
            region = windows.common_region([cases[c].region_code for c in comp if c in cases])
            if keep is None:
                keep = Cluster.objects.create(name=_cluster_name(comp, cases, setting), setting=setting,
                                              region_code=region, created_at=now, updated_at=now)
            else:
                updates = {"region_code": region, "updated_at": now, "active": True}
                if not keep.named_by_tracer:
                    updates["setting"] = setting
                Cluster.objects.filter(pk=keep.pk).update(**updates)
            for case_id in comp:
                if current.get(case_id) != keep.pk:
                    members.append(ClusterMember(cluster_id=keep.pk, case_id=case_id, joined_at=now))
        in_any = {c for comp in components for c in comp}
        ClusterMember.objects.exclude(case_id__in=in_any).delete()
        if members:
            ClusterMember.objects.filter(case_id__in=[m.case_id for m in members]).delete()
            ClusterMember.objects.bulk_create(members)
    return {"clusters": len(components), "cases": sum(len(c) for c in components)}


def _cluster_name(comp: set[int], cases: dict[int, Case], setting: str) -> str:
    """An initial name: the first case's community and number (a tracer renames it, e.g. after the venue)."""
    first = min((cases[c] for c in comp if c in cases), key=lambda c: (c.first_positive_at or c.created_at, c.pk))
    community = Region.objects.filter(code=first.region_code[:12]).values_list("name", flat=True).first() or ""
    label = dict(Setting.choices).get(setting, setting)
    return f"{community} {label} ({first.ref})".strip()


def cluster_growth(cluster: Cluster) -> list[dict]:
    """Cumulative size by day (Asia/Shanghai) of the members' first positive sample (or case creation)."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(clock.local_time_zone())
    days = Counter()
    for first, created in cluster.members.values_list("case__first_positive_at", "case__created_at"):
        days[(first or created).astimezone(zone).date()] += 1
    total, out = 0, []
    for day in sorted(days):
        total += days[day]
        out.append({"date": day.isoformat(), "new": days[day], "size": total})
    return out


# --- estimates --------------------------------------------------------------------------------------------------------


def estimates(links: Iterable[Link]) -> dict:
    """Serial interval (onset infector → onset infectee) and incubation (exposure → onset of the infectee), in days,
    from confirmed links; each with its sample size (``rules.summarize``)."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(clock.local_time_zone())
    serial, incubation = [], []
    for link in links:
        a, b = link.infector, link.infectee
        if a.onset_date and b.onset_date:
            serial.append((b.onset_date - a.onset_date).days)
        if b.onset_date and link.exposure_at:
            incubation.append((b.onset_date - link.exposure_at.astimezone(zone).date()).days)
    return {"serial_interval_days": rules.summarize(serial), "incubation_days": rules.summarize(incubation)}
