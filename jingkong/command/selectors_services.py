"""Reads of the services feature: the request queue, one request, a worker's own requests, overdue requests, counts
with their drill-down, supplies (stock, alerts, consumption). Every read takes a Scope (region subtree); single
objects outside it are "not found".

Counts and drill-downs come from the same filtered queryset grouped at two levels, and requests whose region code
belongs to no known child region are counted in an explicit "elsewhere" row, so the total always equals the sum of
the rows below it.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.db.models import Count, F, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import Substr
from django.utils.translation import gettext as _

from jingkong.access.guard import Scope
from jingkong.command import service_rules
from jingkong.command.models import (
    Depot,
    FieldWorker,
    MovementKind,
    ServiceRequest,
    ServiceUpdate,
    StockLevel,
    StockMovement,
    SupplyItem,
)
from jingkong.core import clock
from jingkong.core.exceptions import NotFound, ValidationFailed
from jingkong.geo.models import Region

MAX_ID = 2**62  # ids beyond a database integer are "not found", not a 500
LEVEL_LENGTH = {"district": 6, "street": 9, "community": 12, "grid": 15}
CHILD_LENGTH = {6: 9, 9: 12, 12: 15}


# --- service requests -------------------------------------------------------------------------------------------------


def request_queue(*, scope: Scope, status: str = "", category: str = "", region: str = "", open_only: bool = False,
                  overdue: bool = False, unassigned: bool = False, escort: bool = False,
                  now: dt.datetime | None = None) -> QuerySet[ServiceRequest]:
    """Requests in the caller's subtree, most urgent first (priority, then deadline)."""
    qs = ServiceRequest.objects.filter(scope.q("region_code")).select_related("person", "person__building",
                                                                              "assignee")
    if region:
        qs = qs.filter(region_code__startswith=region)
    if status:
        qs = qs.filter(status=status)
    if category:
        qs = qs.filter(category=category)
    if open_only or overdue:
        qs = qs.filter(status__in=service_rules.OPEN_STATUSES)
    if overdue:
        qs = qs.filter(deadline__lt=now or clock.now())
    if unassigned:
        qs = qs.filter(assignee__isnull=True)
    if escort:
        qs = qs.filter(escort_requested=True)
    return qs.order_by("priority", "deadline", "pk")


def request_get(*, scope: Scope, request_id: int) -> ServiceRequest:
    if not 0 < request_id < MAX_ID:
        raise NotFound(_("request not found"))
    req = ServiceRequest.objects.select_related("person", "person__building", "assignee").filter(pk=request_id).first()
    if req is None:
        raise NotFound(_("request not found"))
    scope.check(req.region_code, "request")
    return req


def request_get_by_ref(*, scope: Scope, ref: str) -> ServiceRequest:
    req = ServiceRequest.objects.select_related("person", "person__building", "assignee").filter(
        ref=(ref or "")[:32]).first()
    if req is None:
        raise NotFound(_("request not found"))
    scope.check(req.region_code, "request")
    return req


def worker_of(user) -> FieldWorker | None:
    from jingkong.command.workers import worker_of_user

    return worker_of_user(user)


def my_requests(*, scope: Scope, user, open_only: bool = True) -> QuerySet[ServiceRequest]:
    """The requests assigned to the caller's field-worker record (a volunteer sees these only)."""
    worker = worker_of(user)
    if worker is None:
        return ServiceRequest.objects.none()
    qs = ServiceRequest.objects.filter(scope.q("region_code"), assignee=worker).select_related(
        "person", "person__building", "assignee").prefetch_related(
        Prefetch("updates", queryset=ServiceUpdate.objects.select_related("by").order_by("at", "id")))
    if open_only:
        qs = qs.filter(status__in=(*service_rules.OPEN_STATUSES, "delivered"))
    return qs.order_by("priority", "deadline", "pk")


def my_request_get(*, scope: Scope, user, request_id: int) -> ServiceRequest:
    if not 0 < request_id < MAX_ID:
        raise NotFound(_("request not found"))
    req = my_requests(scope=scope, user=user, open_only=False).filter(pk=request_id).first()
    if req is None:
        raise NotFound(_("request not found"))
    return req


def request_history(req: ServiceRequest):
    """The request's updates, oldest first (from the prefetch of :func:`my_requests` when there is one)."""
    if "updates" in getattr(req, "_prefetched_objects_cache", {}):
        return list(req.updates.all())
    return list(req.updates.select_related("by").order_by("at", "id"))


def workers_for(*, scope: Scope, region_code: str) -> list[FieldWorker]:
    """Active field workers of the caller's scope who may take a request of ``region_code`` (the grid's and its
    community's first)."""
    qs = FieldWorker.objects.filter(scope.q("region_code"), active=True)
    near = [region_code[:n] for n in (9, 12, 15) if n <= len(region_code)]
    rows = list(qs.order_by("region_code", "role", "name")[:500])
    return sorted(rows, key=lambda w: (w.region_code not in near, -len(w.region_code), w.name))


# --- counts with drill-down ---------------------------------------------------------------------------------------------


def _region_root(scope: Scope, region: str) -> str:
    """The region whose children the counts are split by: the asked one (inside the scope) or the scope's root."""
    if region:
        if not region.isdigit() or len(region) > 15:
            raise ValidationFailed(_("region: a division code"), extra={"field": "region"})
        scope.check(region, "region")
        return region
    if scope.prefix:
        return scope.prefix
    top = Region.objects.filter(parent__isnull=True).order_by("code").values_list("code", flat=True).first()
    return top or ""


def request_counts(*, scope: Scope, region: str = "", status: str = "", category: str = "", open_only: bool = False,
                   now: dt.datetime | None = None) -> dict:
    """Requests of a region split by child region (street → community → grid), by category and by status.

    ``total`` equals the sum of ``by_region`` (including the ``elsewhere`` row), of ``by_category`` and of
    ``by_status``; a row's ``region`` parameter is the drill-down into it (the same filters)."""
    now = now or clock.now()
    root = _region_root(scope, region)
    qs = request_queue(scope=scope, status=status, category=category, region=root, open_only=open_only, now=now)
    qs = qs.order_by()
    total = qs.count()
    overdue_q = Q(status__in=service_rules.OPEN_STATUSES, deadline__lt=now)
    child_len = CHILD_LENGTH.get(len(root))
    by_region = []
    if child_len:
        names = dict(Region.objects.filter(parent__code=root).values_list("code", "name"))
        rows = (qs.annotate(child=Substr("region_code", 1, child_len)).values("child")
                .annotate(n=Count("id"), overdue=Count("id", filter=overdue_q)).order_by("child"))
        elsewhere = {"n": 0, "overdue": 0}
        for row in rows:
            if row["child"] in names and len(row["child"]) == child_len:
                by_region.append({"region_code": row["child"], "name": names[row["child"]], "count": row["n"],
                                  "overdue": row["overdue"], "drill": row["child"]})
            else:
                elsewhere["n"] += row["n"]
                elsewhere["overdue"] += row["overdue"]
        if elsewhere["n"]:
            by_region.append({"region_code": "", "name": _("registered at this level or an unknown region"),
                              "count": elsewhere["n"], "overdue": elsewhere["overdue"], "drill": ""})
    else:
        by_region.append({"region_code": root, "name": root, "count": total,
                          "overdue": qs.filter(overdue_q).count(), "drill": ""})
    by_category = {r["category"]: r["n"] for r in qs.values("category").annotate(n=Count("id")).order_by()}
    by_status = {r["status"]: r["n"] for r in qs.values("status").annotate(n=Count("id")).order_by()}
    return {"region": root, "total": total, "overdue": qs.filter(overdue_q).count(), "by_region": by_region,
            "by_category": by_category, "by_status": by_status}


def satisfaction_summary(*, scope: Scope) -> dict:
    qs = ServiceRequest.objects.filter(scope.q("region_code"), satisfaction__isnull=False)
    rows = {r["satisfaction"]: r["n"] for r in qs.values("satisfaction").annotate(n=Count("id")).order_by()}
    n = sum(rows.values())
    mean = sum(k * v for k, v in rows.items()) / n if n else None
    return {"answers": n, "mean": round(mean, 2) if mean is not None else None, "by_score": rows}


# --- supplies ---------------------------------------------------------------------------------------------------------


def item_list() -> QuerySet[SupplyItem]:
    return SupplyItem.objects.order_by("category", "code")


def item_get(*, item_id: int | None = None, code: str = "") -> SupplyItem:
    qs = SupplyItem.objects.all()
    if item_id is not None and not 0 < item_id < MAX_ID:
        raise NotFound(_("supply item not found"))
    item = qs.filter(pk=item_id).first() if item_id is not None else qs.filter(code=(code or "")[:32]).first()
    if item is None:
        raise NotFound(_("supply item not found"))
    return item


def depot_list(*, scope: Scope, region: str = "") -> QuerySet[Depot]:
    qs = Depot.objects.filter(scope.q("region_code")).select_related("sampling_site")
    if region:
        qs = qs.filter(region_code__startswith=region)
    return qs.order_by("code")


def depot_get(*, scope: Scope, depot_id: int | None = None, code: str = "") -> Depot:
    qs = Depot.objects.select_related("sampling_site")
    if depot_id is not None and not 0 < depot_id < MAX_ID:
        raise NotFound(_("depot not found"))
    depot = qs.filter(pk=depot_id).first() if depot_id is not None else qs.filter(code=(code or "")[:32]).first()
    if depot is None:
        raise NotFound(_("depot not found"))
    scope.check(depot.region_code, "depot")
    return depot


def stock_list(*, scope: Scope, depot: Depot | None = None, low_only: bool = False,
               region: str = "") -> QuerySet[StockLevel]:
    qs = StockLevel.objects.filter(scope.q("depot__region_code")).select_related("depot", "item")
    if depot is not None:
        qs = qs.filter(depot=depot)
    if region:
        qs = qs.filter(depot__region_code__startswith=region)
    if low_only:
        qs = qs.filter(low_threshold__gt=0, quantity__lte=F("low_threshold"))
    return qs.order_by("depot__code", "item__category", "item__code")


def stock_totals(*, scope: Scope, region: str = "") -> list[dict]:
    """Stock per item over every depot of the subtree (sum of the depots' rows)."""
    qs = stock_list(scope=scope, region=region).order_by()
    rows = qs.values("item__code", "item__name", "item__unit").annotate(
        total=Sum("quantity"), depots=Count("depot", distinct=True),
        low=Count("id", filter=Q(low_threshold__gt=0, quantity__lte=F("low_threshold")))).order_by("item__code")
    return list(rows)


def movement_list(*, scope: Scope, depot: Depot | None = None, limit: int = 200) -> list[StockMovement]:
    qs = StockMovement.objects.filter(scope.q("depot__region_code")).select_related("depot", "item", "by")
    if depot is not None:
        qs = qs.filter(depot=depot)
    return list(qs.order_by("-at", "-pk")[:limit])


def consumption_per_day(*, scope: Scope, days: int = 7, depot: Depot | None = None, region: str = "",
                        now: dt.datetime | None = None, tz: str | None = None) -> list[dict]:
    """Units used per local day and item over the last ``days`` days (consumption movements; oldest day first)."""
    now = now or clock.now()
    zone = ZoneInfo(tz or clock.local_time_zone())
    days = max(1, min(int(days), 90))
    first_day = now.astimezone(zone).date() - dt.timedelta(days=days - 1)
    start = dt.datetime.combine(first_day, dt.time(0), tzinfo=zone)
    qs = StockMovement.objects.filter(scope.q("depot__region_code"), kind=MovementKind.CONSUMPTION, at__gte=start,
                                      at__lte=now)
    if depot is not None:
        qs = qs.filter(depot=depot)
    if region:
        qs = qs.filter(depot__region_code__startswith=region)
    per: dict[tuple, int] = {}
    names: dict[str, str] = {}
    # Grouped by local day in Python over the window's rows (days ≤ 90; database-independent time-zone handling).
    for at, code, name, qty in qs.values_list("at", "item__code", "item__name", "quantity").iterator():
        key = (at.astimezone(zone).date(), code)
        per[key] = per.get(key, 0) + abs(qty)
        names[code] = name
    return [{"day": day, "item": code, "name": names[code], "quantity": qty}
            for (day, code), qty in sorted(per.items())]
