"""/api/v1/command/ routes of the services area: service requests (暖服务) and supplies (物资保障).

* ``services/requests…`` — the request queue of the caller's region (SERVICE_HANDLE: officers, grid workers): submit
  on a person's behalf (hotline), look at one request with its history, reassign it, move it on.
* ``services/mine…`` — the requests assigned to the caller's own field-worker record (TASK_WORK: volunteers see only
  these), and moving them on (on the way, delivered).
* ``services/counts`` — counts by child region, category and status (COMMAND_VIEW); each region row's ``drill`` is the
  ``region`` to ask for next, and the total equals the sum of the rows.
* ``supplies/…`` — the catalogue, depots and sites, stock, movements, thresholds, consumption, stock-count files
  (SUPPLY_EDIT); ``supplies/alerts`` — low stock (COMMAND_VIEW).

Residents use the public pages under /command/help/ (no API: the API is for signed-in staff and devices).
"""

from __future__ import annotations

from ninja import File, Router, Status
from ninja.files import UploadedFile

from jingkong.access import audit
from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.command import requests as service_requests
from jingkong.command import selectors_services as selectors
from jingkong.command import supplies
from jingkong.command.schemas_services import (
    AssignIn,
    CategoryFilterT,
    ConsumptionOut,
    CountsOut,
    DepotDetailOut,
    DepotIn,
    DepotOut,
    DepotUpdateIn,
    ImportOut,
    ItemIn,
    ItemOut,
    ItemUpdateIn,
    LevelOut,
    MovementIn,
    MovementResultOut,
    RegionCode,
    RequestCreateIn,
    RequestDetailOut,
    RequestPage,
    StatusFilterT,
    StatusIn,
    ThresholdIn,
    TotalOut,
    WorkerStatusIn,
    level_out,
    movement_out,
    request_out,
    update_out,
)
from jingkong.core import clock
from jingkong.core.exceptions import ValidationFailed

router = Router(tags=["command"])
MAX_PAGE = 100_000
MAX_UPLOAD = 20 * 1024 * 1024


def _page(page: int, page_size: int) -> tuple[int, int]:
    return max(1, min(page, MAX_PAGE)), max(1, min(page_size, 500))


def _show_phone(request) -> bool:
    return request.jk_user.has_role_perm(Perm.PERSON_VIEW_PHONE)


def _detail(request, req, *, created: bool = False) -> dict:
    audit.record(actor=request.jk_user, action="person.view", object_type="people.person", object_id=req.person_id,
                 region_code=req.region_code, request=request, detail={"service_request": req.ref})
    out = request_out(req, show_phone=_show_phone(request), now=clock.now())
    out["history"] = [update_out(u) for u in selectors.request_history(req)]
    out["created"] = created
    return out


# --- service requests -------------------------------------------------------------------------------------------------


@router.get("/services/requests", response=RequestPage)
@require(Perm.SERVICE_HANDLE)
def requests_list(request, status: StatusFilterT = "", category: CategoryFilterT = "", region: RegionCode = "",
                  open: bool = False, overdue: bool = False, unassigned: bool = False, escort: bool = False,
                  page: int = 1, page_size: int = 50):
    """The region's requests, most urgent first (priority 1 first, then the earliest deadline)."""
    now = clock.now()
    qs = selectors.request_queue(scope=request.scope, status=status, category=category, region=region,
                                 open_only=open, overdue=overdue, unassigned=unassigned, escort=escort, now=now)
    page, page_size = _page(page, page_size)
    count = qs.count()
    items = list(qs[(page - 1) * page_size: page * page_size])
    audit.record(actor=request.jk_user, action="person.list", object_type="people.person",
                 region_code=region or request.scope.prefix or "", request=request,
                 detail={"list": "service_requests", "count": count, "returned": len(items),
                         "filters": {"status": status, "category": category, "overdue": overdue}})
    show = _show_phone(request)
    return {"count": count, "page": page, "page_size": page_size,
            "items": [request_out(r, show_phone=show, now=now) for r in items]}


@router.post("/services/requests", response={200: RequestDetailOut, 201: RequestDetailOut})
@require(Perm.SERVICE_HANDLE)
def requests_create(request, payload: RequestCreateIn):
    """Submit a request on a person's behalf (hotline): the person by id or ID number, inside the caller's region.
    The same ``client_key`` twice answers the first request (200 instead of 201)."""
    person = service_requests.person_for_staff(scope=request.scope, person_id=payload.person_id,
                                               id_number=payload.id_number)
    req, created = service_requests.request_submit(
        person=person, category=payload.category, subcategory=payload.subcategory, description=payload.description,
        via=payload.via, contact_phone=payload.contact_phone, client_key=payload.client_key, actor=request.jk_user,
        request=request)
    req = selectors.request_get(scope=request.scope, request_id=req.pk)
    return Status(201 if created else 200, _detail(request, req, created=created))


@router.get("/services/requests/{service_request_id}", response=RequestDetailOut)
@require(Perm.SERVICE_HANDLE)
def requests_get(request, service_request_id: int):
    """One request with the person (masked), vulnerable groups, delivery address and history."""
    return _detail(request, selectors.request_get(scope=request.scope, request_id=service_request_id))


@router.post("/services/requests/{service_request_id}/assign", response=RequestDetailOut)
@require(Perm.SERVICE_HANDLE)
def requests_assign(request, service_request_id: int, payload: AssignIn):
    """Give the request to another field worker of the caller's region."""
    req = selectors.request_get(scope=request.scope, request_id=service_request_id)
    service_requests.request_assign(actor=request.jk_user, scope=request.scope, req=req, worker_id=payload.worker_id,
                                    note=payload.note, request=request)
    return _detail(request, selectors.request_get(scope=request.scope, request_id=req.pk))


@router.post("/services/requests/{service_request_id}/status", response=RequestDetailOut)
@require(Perm.SERVICE_HANDLE)
def requests_status(request, service_request_id: int, payload: StatusIn):
    """Move the request on: in progress, delivered, or cancelled (with a reason). A wrong step is 409."""
    req = selectors.request_get(scope=request.scope, request_id=service_request_id)
    service_requests.request_status(actor=request.jk_user, req=req, status=payload.status, note=payload.note,
                                    request=request)
    return _detail(request, selectors.request_get(scope=request.scope, request_id=req.pk))


@router.get("/services/mine", response=list[RequestDetailOut])
@require(Perm.TASK_WORK)
def mine_list(request):
    """The open (and delivered, not yet confirmed) requests assigned to the caller, most urgent first."""
    now = clock.now()
    items = list(selectors.my_requests(scope=request.scope, user=request.jk_user)[:500])
    if items:
        audit.record_many(actor=request.jk_user, action="person.view", object_type="people.person", request=request,
                          items=[(r.person_id, r.region_code) for r in items], detail={"list": "my_service_requests"})
    show = _show_phone(request)
    out = []
    for r in items:
        row = request_out(r, show_phone=show, now=now)
        row["history"] = [update_out(u) for u in selectors.request_history(r)]
        out.append(row)
    return out


@router.post("/services/mine/{service_request_id}/status", response=RequestDetailOut)
@require(Perm.TASK_WORK)
def mine_status(request, service_request_id: int, payload: WorkerStatusIn):
    """The assigned worker reports progress: on the way (in progress) or delivered."""
    req = selectors.my_request_get(scope=request.scope, user=request.jk_user, request_id=service_request_id)
    service_requests.request_status(actor=request.jk_user, req=req, status=payload.status, note=payload.note,
                                    request=request)
    req = selectors.my_request_get(scope=request.scope, user=request.jk_user, request_id=req.pk)
    return _detail(request, req)


@router.get("/services/counts", response=CountsOut)
@require(Perm.COMMAND_VIEW)
def requests_counts(request, region: RegionCode = "", status: StatusFilterT = "", category: CategoryFilterT = "",
                    open: bool = False):
    """Requests split by child region (with drill-down), category and status; every split sums to ``total``."""
    return selectors.request_counts(scope=request.scope, region=region, status=status, category=category,
                                    open_only=open)


# --- supplies ---------------------------------------------------------------------------------------------------------


@router.get("/supplies/items", response=list[ItemOut])
@require(Perm.SUPPLY_EDIT)
def items_list(request):
    """The supply catalogue (district-wide)."""
    return list(selectors.item_list()[:2000])


@router.post("/supplies/items", response={201: ItemOut})
@require(Perm.SUPPLY_EDIT)
def items_create(request, payload: ItemIn):
    """Add an item to the catalogue (code unique)."""
    return Status(201, supplies.item_create(actor=request.jk_user, **payload.dict()))


@router.patch("/supplies/items/{item_id}", response=ItemOut)
@require(Perm.SUPPLY_EDIT)
def items_update(request, item_id: int, payload: ItemUpdateIn):
    """Edit an item (name, category, unit) or deactivate it (``active: false``: no more receipts)."""
    item = selectors.item_get(item_id=item_id)
    return supplies.item_update(actor=request.jk_user, item=item, **payload.dict(exclude_unset=True))


@router.get("/supplies/depots", response=list[DepotOut])
@require(Perm.SUPPLY_EDIT)
def depots_list(request, region: RegionCode = ""):
    """Depots and sites of the caller's region."""
    return [_depot_out(d) for d in selectors.depot_list(scope=request.scope, region=region)[:2000]]


def _depot_out(d) -> dict:
    return {"id": d.pk, "code": d.code, "name": d.name, "kind": d.kind, "region_code": d.region_code,
            "sampling_site_id": d.sampling_site_id, "lon": d.lon, "lat": d.lat, "active": d.active}


@router.post("/supplies/depots", response={201: DepotOut})
@require(Perm.SUPPLY_EDIT)
def depots_create(request, payload: DepotIn):
    """Register a depot or site in a region of the caller's scope (optionally a testing sampling site)."""
    depot = supplies.depot_create(actor=request.jk_user, scope=request.scope, **payload.dict())
    return Status(201, _depot_out(depot))


@router.patch("/supplies/depots/{depot_id}", response=DepotOut)
@require(Perm.SUPPLY_EDIT)
def depots_update(request, depot_id: int, payload: DepotUpdateIn):
    """Edit a depot of your region (name, kind, place) or close it (``active: false``: it receives nothing)."""
    depot = selectors.depot_get(scope=request.scope, depot_id=depot_id)
    return _depot_out(supplies.depot_update(actor=request.jk_user, scope=request.scope, depot=depot,
                                            **payload.dict(exclude_unset=True)))


@router.get("/supplies/depots/{depot_id}", response=DepotDetailOut)
@require(Perm.SUPPLY_EDIT)
def depots_get(request, depot_id: int):
    """One depot: its stock per item (with thresholds) and its latest movements."""
    depot = selectors.depot_get(scope=request.scope, depot_id=depot_id)
    out = _depot_out(depot)
    out["stock"] = [level_out(s) for s in selectors.stock_list(scope=request.scope, depot=depot)]
    out["movements"] = [movement_out(m) for m in selectors.movement_list(scope=request.scope, depot=depot)]
    return out


@router.post("/supplies/depots/{depot_id}/movements", response={200: MovementResultOut, 201: MovementResultOut})
@require(Perm.SUPPLY_EDIT)
def depots_movement(request, depot_id: int, payload: MovementIn):
    """Record a receipt, consumption, transfer to another depot (``to_depot``) or a count (``counted``). Stock never
    goes negative (422 naming the item); a resend with the same ``client_key`` answers 200 with the first movement."""
    depot = selectors.depot_get(scope=request.scope, depot_id=depot_id)
    item = selectors.item_get(code=payload.item)
    to_depot = selectors.depot_get(scope=request.scope, code=payload.to_depot) if payload.to_depot else None
    result = supplies.movement_record(actor=request.jk_user, scope=request.scope, depot=depot, item=item,
                                      kind=payload.kind, quantity=payload.quantity, counted=payload.counted,
                                      to_depot=to_depot, client_key=payload.client_key, note=payload.note)
    levels = selectors.stock_list(scope=request.scope).filter(item=item, depot_id__in=[depot.pk] + (
        [to_depot.pk] if to_depot else []))
    body = {"created": result.created, "movement": movement_out(result.movement),
            "stock": [level_out(s) for s in levels]}
    return Status(201 if result.created else 200, body)


@router.post("/supplies/depots/{depot_id}/thresholds", response=LevelOut)
@require(Perm.SUPPLY_EDIT)
def depots_threshold(request, depot_id: int, payload: ThresholdIn):
    """Set the low-stock threshold of an item at this depot (0: no alert)."""
    depot = selectors.depot_get(scope=request.scope, depot_id=depot_id)
    item = selectors.item_get(code=payload.item)
    return level_out(supplies.threshold_set(actor=request.jk_user, scope=request.scope, depot=depot, item=item,
                                            threshold=payload.threshold))


@router.get("/supplies/stock", response=list[LevelOut])
@require(Perm.SUPPLY_EDIT)
def stock_list(request, region: RegionCode = "", low: bool = False):
    """Stock per depot and item in the caller's region (``low``: only levels at or below their threshold)."""
    return [level_out(s) for s in selectors.stock_list(scope=request.scope, region=region, low_only=low)[:5000]]


@router.get("/supplies/totals", response=list[TotalOut])
@require(Perm.SUPPLY_EDIT)
def stock_totals(request, region: RegionCode = ""):
    """Stock per item summed over the region's depots."""
    return [{"item": r["item__code"], "name": r["item__name"], "unit": r["item__unit"], "quantity": r["total"] or 0,
             "depots": r["depots"], "low": r["low"]} for r in selectors.stock_totals(scope=request.scope, region=region)]


@router.get("/supplies/alerts", response=list[LevelOut])
@require(Perm.COMMAND_VIEW)
def stock_alerts(request, region: RegionCode = ""):
    """Low-stock alerts of the caller's region: levels at or below their threshold."""
    return [level_out(s) for s in selectors.stock_list(scope=request.scope, region=region, low_only=True)[:2000]]


@router.get("/supplies/consumption", response=list[ConsumptionOut])
@require(Perm.SUPPLY_EDIT)
def stock_consumption(request, days: int = 7, region: RegionCode = ""):
    """Units used per local day and item over the last ``days`` days (1–90)."""
    if not 1 <= days <= 90:
        raise ValidationFailed("days: 1 to 90", extra={"field": "days"})
    return selectors.consumption_per_day(scope=request.scope, days=days, region=region)


@router.post("/supplies/stock-counts", response=ImportOut)
@require(Perm.SUPPLY_EDIT)
def stock_counts(request, file: UploadedFile = File(...)):  # noqa: B008
    """Upload stock counts (CSV, UTF-8 or GBK: depot, item, counted[, threshold][, key]): good rows applied, bad rows
    listed by line and field; re-sending the file changes nothing."""
    if file.size and file.size > MAX_UPLOAD:
        raise ValidationFailed("the file is larger than 20 MB", extra={"field": "file"})
    report = supplies.stock_counts_import(actor=request.jk_user, scope=request.scope, data=file.read())
    return {"rows": report.rows, "applied": report.applied, "unchanged": report.unchanged, "errors": report.errors}
