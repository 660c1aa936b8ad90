"""The screen's alert feed: recent domain events of the scope that need someone's attention, plus current conditions
read from the figures (a stage with overdue items, facilities running out of beds, zones ready to lift, overdue
problems and service requests).

Items never name a person and never carry an ID number or a phone number: a case is named by its case number (ref),
a zone, problem or facility by its own reference. Ids are stable so the page (and the live stream, which sends the
same items) can de-duplicate: ``event:<domain event id>`` for events, ``cond:<kind>:<key>`` for conditions.

Severity follows the usual four levels: 1 = I (highest, e.g. a case found in the community) … 4 = IV.

DASHBOARD_VIEW is also held by roles that see aggregates only (analysts: roles.py). :func:`for_user` therefore cuts
from each item what the reader's role may not read: a case's number (a record identifier of tracing) and its link
need TRACING_VIEW — without it the item says "New case" and where (region name); a flagged person's temperature and
symptoms need PERSON_VIEW; and any link is kept only when the reader may open the page it points to.
"""

from __future__ import annotations

import datetime as dt
import importlib
import threading
import time
from collections.abc import Callable, Iterable

from django.db.models import Q
from django.urls import NoReverseMatch, Resolver404, resolve, reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from jingkong.access.guard import PERMISSION_ATTR
from jingkong.access.roles import Perm
from jingkong.core import clock
from jingkong.core.models import DomainEvent
from jingkong.dashboard import selectors

RECENT_DAYS = 3  # events older than this are history, not alerts
MAX_LIMIT = 200
DEFAULT_RESERVE_THRESHOLD_DAYS = 3
ZONE_SCAN_LIMIT = 300  # zones in force whose countdown is evaluated per call (a district has tens, not thousands)
ZONE_CACHE_SECONDS = 30
QUARANTINE_FINDS = ("quarantine_test", "contact_followup")


def _link(name: str, *args) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


def _label(choices_path: str, value) -> str:
    """The translated label of a stored choice (e.g. a zone type), or the value itself when unknown."""
    module, name = choices_path.rsplit(".", 1)
    try:
        return str(getattr(importlib.import_module(module), name)(value).label)
    except (ValueError, ImportError, AttributeError):
        return str(value or "")


def _item(id: str, kind: str, severity: int, title: str, detail: str, region_code: str, at: dt.datetime,
          link: str = "") -> dict:
    return {"id": id, "kind": kind, "severity": severity, "title": title, "detail": detail,
            "region_code": region_code or "", "region_name": "", "at": at, "link": link}


# --- events -----------------------------------------------------------------------------------------------------------


def _case(e: DomainEvent) -> dict:
    p = e.payload or {}
    ref = str(p.get("ref") or "")
    found = str(p.get("found_by") or "")
    in_quarantine = found in QUARANTINE_FINDS
    detail = _label("jingkong.tracing.models.FoundBy", found) if found else ""
    return _item(f"event:{e.pk}", "case", 2 if in_quarantine else 1, _("New case %(ref)s") % {"ref": ref}, detail,
                 e.region_code, e.occurred_at, _link("tracing:case_detail", ref) if ref else "")


# What a reader needs to see the record-level parts of an item (kind → (permission, what to put instead)).
def _case_without_ref(item: dict) -> dict:
    return {**item, "title": _("New case"), "link": ""}


def _symptoms_without_detail(item: dict) -> dict:
    return {**item, "detail": ""}


RECORD_LEVEL: dict[str, tuple[str, Callable[[dict], dict]]] = {
    "case": (Perm.TRACING_VIEW, _case_without_ref),
    "symptoms": (Perm.PERSON_VIEW, _symptoms_without_detail),
}


def _may(user, perm: str) -> bool:
    return bool(user is not None and user.has_role_perm(perm))


def _link_permission(link: str) -> str | None:
    """The permission of the page a link points to (its view's ``@require``); None when it resolves to nothing."""
    try:
        match = resolve(link.split("?", 1)[0])
    except Resolver404:
        return None
    return getattr(match.func, PERMISSION_ATTR, None)


def for_user(items: Iterable[dict], user) -> list[dict]:
    """The items as ``user`` may read them: record-level parts (case numbers, a person's symptoms) only with the
    permission of their app, links only to pages the user may open. ``user=None`` reads the redacted form."""
    out, allowed = [], {}
    for item in items:
        rule = RECORD_LEVEL.get(item["kind"])
        if rule is not None and not _may(user, rule[0]):
            item = rule[1](item)
        link = item.get("link") or ""
        if link:
            if link not in allowed:
                perm = _link_permission(link)
                allowed[link] = perm is not None and _may(user, perm)
            if not allowed[link]:
                item = {**item, "link": ""}
        out.append(item)
    return out


def _pool_positive(e: DomainEvent) -> dict:
    p = e.payload or {}
    members = p.get("member_count")
    detail = (_("%(n)s people to retest with single tubes") % {"n": members}) if members else ""
    return _item(f"event:{e.pk}", "pool_positive", 2,
                 _("Positive pool %(barcode)s") % {"barcode": p.get("barcode") or ""}, detail, e.region_code,
                 e.occurred_at)


def _capacity(e: DomainEvent) -> dict:
    p = e.payload or {}
    days = p.get("days_left")
    free = p.get("free_beds")
    severity = 1 if (free == 0 or (days is not None and days <= 1)) else 2
    detail = _("%(free)s free beds, about %(days)s days left") % {"free": free if free is not None else "?",
                                                                   "days": days if days is not None else "?"}
    return _item(f"event:{e.pk}", "capacity", severity, _("Quarantine capacity running out"), detail, e.region_code,
                 e.occurred_at, _link("isolation:facility_reserve"))


URGENCY_SEVERITY = {"critical": 1, "urgent": 2, "normal": 3}


def _problem(e: DomainEvent) -> dict:
    p = e.payload or {}
    ref = str(p.get("ref") or "")
    if e.type == "command.problem_escalated":
        return _item(f"event:{e.pk}", "problem", 2, _("Problem %(ref)s escalated (overdue)") % {"ref": ref}, "",
                     e.region_code, e.occurred_at, _link("command:problem_detail", ref) if ref else "")
    urgency = str(p.get("urgency") or "normal")
    return _item(f"event:{e.pk}", "problem", URGENCY_SEVERITY.get(urgency, 3),
                 _("Problem reported: %(ref)s") % {"ref": ref},
                 _label("jingkong.command.models.ProblemCategory", p.get("category")), e.region_code,
                 e.occurred_at, _link("command:problem_detail", ref) if ref else "")


def _denied(e: DomainEvent) -> dict | None:
    p = e.payload or {}
    if p.get("decision") != "deny":
        return None
    return _item(f"event:{e.pk}", "checkpoint_denied", 3,
                 _("Passage denied at checkpoint %(cp)s") % {"cp": p.get("checkpoint") or ""}, "", e.region_code,
                 e.occurred_at)


def _zone(e: DomainEvent) -> dict:
    p = e.payload or {}
    ref = str(p.get("ref") or "")
    kind, severity, title = {
        "zones.zone_proposed": ("zone_proposed", 2, _("Zone %(ref)s proposed: awaiting approval")),
        "zones.zone_approved": ("zone_approved", 3, _("Zone %(ref)s approved")),
        "zones.zone_lifted": ("zone_lifted", 4, _("Zone %(ref)s lifted")),
    }[e.type]
    return _item(f"event:{e.pk}", kind, severity, title % {"ref": ref},
                 _label("jingkong.zones.models.ZoneType", p.get("to_type") or p.get("type")), e.region_code,
                 e.occurred_at, _link("zones:zone_detail", ref) if ref else "")


def _symptoms(e: DomainEvent) -> dict:
    p = e.payload or {}
    temperature = p.get("temperature")
    parts = ([f"{temperature} °C"] if temperature else []) + [str(s) for s in p.get("symptoms") or []]
    detail = ", ".join(parts)
    return _item(f"event:{e.pk}", "symptoms", 2, _("Symptoms reported under isolation"), detail, e.region_code,
                 e.occurred_at)


def _escalated(e: DomainEvent) -> dict:
    n = (e.payload or {}).get("count") or 0
    return _item(f"event:{e.pk}", "tasks_escalated", 3, ngettext("%(n)s overdue task escalated", "%(n)s overdue tasks escalated", n) % {"n": n}, "",
                 e.region_code, e.occurred_at, _link("command:task_list"))


def _low_stock(e: DomainEvent) -> dict:
    p = e.payload or {}
    return _item(f"event:{e.pk}", "low_stock", 3, _("Low stock: %(item)s at %(depot)s") % {
        "item": p.get("item") or "", "depot": p.get("depot") or ""},
        _("%(q)s left (threshold %(t)s)") % {"q": p.get("quantity"), "t": p.get("threshold")}, e.region_code,
        e.occurred_at, _link("command:supply_board"))


EVENT_ITEMS: dict[str, Callable[[DomainEvent], dict | None]] = {
    "tracing.case_created": _case,
    "testing.pool_positive": _pool_positive,
    "isolation.capacity_alert": _capacity,
    "command.problem_reported": _problem,
    "command.problem_escalated": _problem,
    "codes.crossing_recorded": _denied,
    "zones.zone_proposed": _zone,
    "zones.zone_approved": _zone,
    "zones.zone_lifted": _zone,
    "isolation.symptoms_flagged": _symptoms,
    "command.tasks_escalated": _escalated,
    "command.low_stock": _low_stock,
}
ALERT_EVENT_TYPES = tuple(EVENT_ITEMS)


def _alert_filter() -> Q:
    """Alert-worthy events (a crossing only when denied: the others are routine)."""
    types = [t for t in ALERT_EVENT_TYPES if t != "codes.crossing_recorded"]
    return Q(type__in=types) | Q(type="codes.crossing_recorded", payload__decision="deny")


def event_item(event: DomainEvent) -> dict | None:
    """The alert item of one domain event (None: not alert-worthy). ``region_name`` is filled by :func:`named`."""
    build = EVENT_ITEMS.get(event.type)
    return build(event) if build else None


def events_after(prefix: str, after_id: int, upto_id: int, *, limit: int = 200) -> list[DomainEvent]:
    """Alert-worthy events of the region with ``after_id`` < id ≤ ``upto_id``, oldest first (the live stream)."""
    qs = DomainEvent.objects.filter(_alert_filter(), id__gt=after_id, id__lte=upto_id)
    if prefix:
        qs = qs.filter(region_code__startswith=prefix)
    return list(qs.order_by("id").only("id", "type", "region_code", "occurred_at", "payload")[:limit])


def recent_events(prefix: str, *, limit: int, at: dt.datetime) -> list[dict]:
    """The latest alert-worthy events of the region within :data:`RECENT_DAYS`, newest first.

    Two queries that each walk the (type, occurred_at) index backwards from now — the alert types, and denied
    crossings among the (many) crossings — rather than the whole event table by id, which a lab upload fills with
    routine events."""
    since = at - dt.timedelta(days=RECENT_DAYS)
    types = [t for t in ALERT_EVENT_TYPES if t != "codes.crossing_recorded"]
    fields = ("id", "type", "region_code", "occurred_at", "payload")
    found = []
    for match in (Q(type__in=types), Q(type="codes.crossing_recorded", payload__decision="deny")):
        qs = DomainEvent.objects.filter(match, occurred_at__gte=since)
        if prefix:
            qs = qs.filter(region_code__startswith=prefix)
        found.extend(qs.order_by("-occurred_at", "-id").only(*fields)[:limit])
    found.sort(key=lambda e: (e.occurred_at, e.pk), reverse=True)
    out = []
    for e in found[:limit]:
        item = event_item(e)
        if item is not None:
            out.append(item)
    return out


def named(items: list[dict]) -> list[dict]:
    names = selectors.region_names(i["region_code"] for i in items)
    for i in items:
        i["region_name"] = names.get(i["region_code"], "")
    return items


# --- current conditions -----------------------------------------------------------------------------------------------


def _reserve_threshold(code: str, at: dt.datetime) -> float:
    from jingkong.policy.selectors import active_profile

    try:
        rules = active_profile(region_code=code[:6] or None, at=at).rules.isolation
    except Exception:  # noqa: BLE001 - no profile in force: the documented default
        rules = None
    return float(rules.reserve.alert_threshold_days) if rules is not None else float(DEFAULT_RESERVE_THRESHOLD_DAYS)


def _stage_conditions(prefix: str, at: dt.datetime) -> list[dict]:
    stages, _slowest = selectors.clock_stages(prefix, at)
    out = []
    for s in stages:
        if s["overdue"] > 0:
            out.append(_item(f"cond:stage_overdue:{s['stage']}", "stage_overdue", 2 if s["overdue"] >= 10 else 3,
                             _("%(stage)s: %(n)s overdue") % {"stage": s["label"], "n": s["overdue"]},
                             _("%(backlog)s waiting in this stage") % {"backlog": s["backlog"]}, prefix, at,
                             _link("isolation:clock")))
    return out


def _capacity_conditions(prefix: str, at: dt.datetime) -> list[dict]:
    """Regions whose facilities' reserve lasts fewer days than the profile's threshold (or 3 days)."""
    from django.db.models import Min

    from jingkong.dashboard.models import Figure

    threshold = _reserve_threshold(prefix, at)
    rows = (Figure.objects.filter(metric="facilities.reserve_days", region_code__startswith=prefix)
            .values("region_code").order_by().annotate(v=Min("value")))
    out = []
    for r in rows:
        days = r["v"]
        if days is None or days >= threshold:
            continue
        out.append(_item(f"cond:capacity:{r['region_code']}", "capacity", 1 if days <= 1 else 2,
                         _("Quarantine beds last %(days)s days") % {"days": round(days, 1)},
                         _("below the reserve threshold of %(t)s days") % {"t": round(threshold, 1)},
                         r["region_code"], at, _link("isolation:facility_reserve")))
    return out


_zone_cache: dict[tuple, tuple[float, list[dict]]] = {}
_zone_lock = threading.Lock()


def _zone_conditions(prefix: str, at: dt.datetime) -> list[dict]:
    """Zones in force whose countdown says they may be lifted or downgraded now (the zones app's own rules)."""
    from django.db.models import Count, Max

    from jingkong.zones.models import Zone, ZoneStatus
    from jingkong.zones.selectors import countdown_of

    qs = Zone.objects.filter(status=ZoneStatus.APPROVED)
    if prefix:
        qs = qs.filter(region_code__startswith=prefix)
    mark = qs.aggregate(n=Count("id"), u=Max("updated_at"))
    key = (prefix, mark["n"], mark["u"], at.astimezone(dt.UTC).strftime("%Y%m%d%H%M"))
    with _zone_lock:
        hit = _zone_cache.get(key)
        if hit and time.monotonic() - hit[0] < ZONE_CACHE_SECONDS:
            return [dict(i) for i in hit[1]]
    out = []
    for zone in qs.order_by("pk")[:ZONE_SCAN_LIMIT]:
        cd = countdown_of(zone, at=at)
        if cd is None or not cd.ready:
            continue
        title = (_("Zone %(ref)s may be lifted") if cd.action == "lift"
                 else _("Zone %(ref)s may be downgraded")) % {"ref": zone.ref}
        out.append(_item(f"cond:zone_ready:{zone.ref}", "zone_ready", 3, title, zone.name, zone.region_code,
                         cd.due_at or at, _link("zones:zone_detail", zone.ref)))
    with _zone_lock:
        if len(_zone_cache) > 64:
            _zone_cache.clear()
        _zone_cache[key] = (time.monotonic(), [dict(i) for i in out])
    return out


def _count_conditions(prefix: str, at: dt.datetime) -> list[dict]:
    day = clock.today()
    bucket = selectors.aggregate(prefix, ["problems.overdue", "services.overdue", "tasks.overdue"], day).get(
        None, selectors.Bucket())
    out = []
    problems, services, tasks = (bucket.sum("problems.overdue"), bucket.sum("services.overdue"),
                                 bucket.sum("tasks.overdue"))
    if problems:
        out.append(_item(f"cond:problem_overdue:{prefix}", "problem", 2,
                         ngettext("%(n)s problem past its deadline", "%(n)s problems past their deadline", problems) % {"n": problems}, "", prefix, at,
                         _link("command:problem_list")))
    if services:
        out.append(_item(f"cond:service_overdue:{prefix}", "service_overdue", 3,
                         ngettext("%(n)s service request overdue", "%(n)s service requests overdue", services) % {"n": services}, "", prefix, at,
                         _link("command:service_queue")))
    if tasks:
        out.append(_item(f"cond:task_overdue:{prefix}", "task_overdue", 3,
                         ngettext("%(n)s directive task overdue", "%(n)s directive tasks overdue", tasks) % {"n": tasks}, "", prefix, at,
                         _link("command:task_list")))
    return out


CONDITIONS: tuple[Callable[[str, dt.datetime], list[dict]], ...] = (
    _stage_conditions, _capacity_conditions, _zone_conditions, _count_conditions)


def conditions(prefix: str, *, at: dt.datetime) -> list[dict]:
    out = []
    for check in CONDITIONS:
        out.extend(check(prefix, at))
    return out


# --- the feed ---------------------------------------------------------------------------------------------------------


def _sort_key(item: dict) -> tuple:
    return (item["at"], -item["severity"], item["id"])


def feed(prefix: str, *, limit: int = 50, at: dt.datetime | None = None) -> list[dict]:
    """Current conditions and recent events of the region, newest first, at most ``limit``."""
    at = at or clock.now()
    limit = max(1, min(limit, MAX_LIMIT))
    items = conditions(prefix, at=at) + recent_events(prefix, limit=limit, at=at)
    items.sort(key=_sort_key, reverse=True)
    return named(items[:limit])


def alert_list(*, scope, region: str = "", limit: int = 50, user=None) -> dict:
    """``GET /alerts`` as ``user`` may read it (:func:`for_user`)."""
    top = selectors.region_of(scope, region)
    selectors.ensure_fresh(("clock", "isolation", "command"))
    return {"region": selectors.public_region(top), "items": for_user(feed(top["code"], limit=limit), user)}


def serialisable(items: Iterable[dict]) -> list[dict]:
    """Items with ``at`` as an ISO string (the stream writes JSON itself)."""
    return [{**i, "at": i["at"].isoformat() if isinstance(i["at"], dt.datetime) else i["at"]} for i in items]
