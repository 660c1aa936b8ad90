"""Writes of supplies (物资保障): the item catalogue, depots and sites, stock movements, low-stock thresholds, and the
CSV import of stock counts.

* A movement changes one stock level by a signed quantity: receipt (+), consumption (−), a transfer between two depots
  (a pair: transfer_out −, transfer_in +, pointing at each other), an adjustment to a counted quantity (±).
* Stock never goes negative: a movement taking more than is there is refused naming the item, the depot and what is
  in stock. The stock row is locked for the change (``select_for_update``; SQLite serialises writers anyway); a
  transfer locks its two rows in primary-key order.
* Idempotent by ``client_key``: a device resending the same movement gets the first answer; the same key with other
  content is a conflict (409).
* When a level falls to or below its threshold (per depot + item), ``command.low_stock`` is emitted (subject
  command.stocklevel) — once per crossing, not on every movement below it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from jingkong.access import audit
from jingkong.access.guard import Scope
from jingkong.command.models import (
    Depot,
    DepotKind,
    MovementKind,
    StockLevel,
    StockMovement,
    SupplyCategory,
    SupplyItem,
)
from jingkong.command.requests import clean_text
from jingkong.core import clock
from jingkong.core.events import emit
from jingkong.core.exceptions import Conflict, NotFound, ValidationFailed
from jingkong.geo.models import Region

MAX_QUANTITY = 10_000_000


def _check_quantity(quantity, field: str = "quantity", *, allow_zero: bool = False) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise ValidationFailed(_("%(field)s must be a whole number") % {"field": field}, extra={"field": field})
    if quantity < 0 or (quantity == 0 and not allow_zero):
        raise ValidationFailed(_("%(field)s must be a positive number") % {"field": field}, extra={"field": field})
    if quantity > MAX_QUANTITY:
        raise ValidationFailed(_("%(field)s is too large") % {"field": field}, extra={"field": field})
    return quantity


# --- catalogue and depots ---------------------------------------------------------------------------------------------


@transaction.atomic
def item_create(*, actor, code: str, name: str, category: str, unit: str) -> SupplyItem:
    code = clean_text(code, "code", limit=32)
    name = clean_text(name, "name", limit=128)
    unit = clean_text(unit, "unit", limit=16)
    if not code or not name or not unit:
        raise ValidationFailed(_("code, name and unit are required"), extra={"field": "code" if not code else
                                                                               ("name" if not name else "unit")})
    if category not in SupplyCategory.values:
        raise ValidationFailed(_("unknown category"), extra={"field": "category"})
    if SupplyItem.objects.filter(code=code).exists():
        raise Conflict(_("an item with code %(code)s exists") % {"code": code}, extra={"field": "code"})
    item = SupplyItem.objects.create(code=code, name=name, category=category, unit=unit)
    emit("command.supply_item_created", subject=item, actor=actor, payload={"code": code})
    return item


@transaction.atomic
def depot_create(*, actor, scope: Scope, code: str, name: str, region_code: str, kind: str = DepotKind.DEPOT,
                 sampling_site_id: int | None = None, lon: float | None = None, lat: float | None = None) -> Depot:
    """A depot or site in a region of the caller's scope; a depot may be a testing sampling site (its stock of kits
    and tubes)."""
    code = clean_text(code, "code", limit=32)
    name = clean_text(name, "name", limit=128)
    region_code = clean_text(region_code, "region_code", limit=32)
    if not code or not name:
        raise ValidationFailed(_("code and name are required"), extra={"field": "code" if not code else "name"})
    if kind not in DepotKind.values:
        raise ValidationFailed(_("unknown kind"), extra={"field": "kind"})
    site = None
    if sampling_site_id is not None:
        from jingkong.testing.models import SamplingSite

        site = SamplingSite.objects.filter(pk=sampling_site_id).first()
        if site is None or not scope.contains(site.region_code):
            raise NotFound(_("sampling site not found"))
        region_code = region_code or site.region_code
        lon = site.lon if lon is None else lon
        lat = site.lat if lat is None else lat
    if not region_code or not Region.objects.filter(code=region_code).exists() or not scope.contains(region_code):
        raise NotFound(_("region not found"))
    if Depot.objects.filter(code=code).exists():
        raise Conflict(_("a depot with code %(code)s exists") % {"code": code}, extra={"field": "code"})
    depot = Depot.objects.create(code=code, name=name, region_code=region_code, kind=kind, sampling_site=site,
                                 lon=lon, lat=lat)
    audit.record(actor=actor, action="supply.depot_create", object_type="command.depot", object_id=depot.pk,
                 region_code=region_code)
    emit("command.depot_created", subject=depot, region_code=region_code, actor=actor, payload={"code": code})
    return depot


@transaction.atomic
def item_update(*, actor, item: SupplyItem, name: str | None = None, unit: str | None = None,
                category: str | None = None, active: bool | None = None) -> SupplyItem:
    """Edit a catalogue item (the code stays: movements and files name it) or deactivate it (no more receipts; its
    stock and history stay and can still be used up, moved or counted)."""
    item = SupplyItem.objects.select_for_update().get(pk=item.pk)
    changed = {}
    if name is not None:
        name = clean_text(name, "name", limit=128)
        if not name:
            raise ValidationFailed(_("the name is required"), extra={"field": "name"})
        changed["name"] = name
    if unit is not None:
        unit = clean_text(unit, "unit", limit=16)
        if not unit:
            raise ValidationFailed(_("the unit is required"), extra={"field": "unit"})
        changed["unit"] = unit
    if category is not None:
        if category not in SupplyCategory.values:
            raise ValidationFailed(_("unknown category"), extra={"field": "category"})
        changed["category"] = category
    if active is not None:
        changed["active"] = bool(active)
    changed = {k: v for k, v in changed.items() if getattr(item, k) != v}
    if changed:
        for k, v in changed.items():
            setattr(item, k, v)
        item.save(update_fields=list(changed))
        audit.record(actor=actor, action="supply.item_update", object_type="command.supplyitem", object_id=item.pk,
                     detail={"code": item.code, "fields": sorted(changed)})
        emit("command.supply_item_updated", subject=item, actor=actor,
             payload={"code": item.code, "fields": sorted(changed)})
    return item


@transaction.atomic
def depot_update(*, actor, scope: Scope, depot: Depot, name: str | None = None, kind: str | None = None,
                 active: bool | None = None, lon: float | None = None, lat: float | None = None) -> Depot:
    """Edit a depot or site of the caller's scope (the code and region stay) or deactivate it: an inactive depot
    receives nothing (receipts, transfers in); what is left there can still be used, sent elsewhere or counted."""
    scope.check(depot.region_code, "depot")
    depot = Depot.objects.select_for_update().get(pk=depot.pk)
    changed = {}
    if name is not None:
        name = clean_text(name, "name", limit=128)
        if not name:
            raise ValidationFailed(_("the name is required"), extra={"field": "name"})
        changed["name"] = name
    if kind is not None:
        if kind not in DepotKind.values:
            raise ValidationFailed(_("unknown kind"), extra={"field": "kind"})
        changed["kind"] = kind
    if active is not None:
        changed["active"] = bool(active)
    if lon is not None or lat is not None:
        if lon is None or lat is None or not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise ValidationFailed(_("give both longitude and latitude"), extra={"field": "lon"})
        changed["lon"], changed["lat"] = lon, lat
    changed = {k: v for k, v in changed.items() if getattr(depot, k) != v}
    if changed:
        for k, v in changed.items():
            setattr(depot, k, v)
        depot.save(update_fields=list(changed))
        audit.record(actor=actor, action="supply.depot_update", object_type="command.depot", object_id=depot.pk,
                     region_code=depot.region_code, detail={"code": depot.code, "fields": sorted(changed)})
        emit("command.depot_updated", subject=depot, region_code=depot.region_code, actor=actor,
             payload={"code": depot.code, "fields": sorted(changed)})
    return depot


# --- stock ------------------------------------------------------------------------------------------------------------


def _level(depot: Depot, item: SupplyItem, at: dt.datetime) -> StockLevel:
    StockLevel.objects.get_or_create(depot=depot, item=item, defaults={"updated_at": at})
    return StockLevel.objects.select_for_update().select_related("depot", "item").get(depot=depot, item=item)


def _low_check(level: StockLevel, before: int, *, actor, at: dt.datetime) -> None:
    t = level.low_threshold
    if t > 0 and level.quantity <= t < before:
        emit("command.low_stock", subject=level, region_code=level.depot.region_code, actor=actor, at=at,
             payload={"depot": level.depot.code, "item": level.item.code, "quantity": level.quantity,
                      "threshold": t})


def _apply(level: StockLevel, delta: int, *, actor, at: dt.datetime) -> None:
    before = level.quantity
    after = before + delta
    if after < 0:
        raise ValidationFailed(
            _("not enough %(item)s at %(depot)s: %(have)d %(unit)s in stock, %(want)d asked for") % {
                "item": level.item.name, "depot": level.depot.name, "have": before, "unit": level.item.unit,
                "want": -delta},
            code="insufficient_stock",
            extra={"field": "quantity", "item": level.item.code, "depot": level.depot.code, "in_stock": before})
    level.quantity = after
    level.updated_at = at
    level.save(update_fields=["quantity", "updated_at"])
    _low_check(level, before, actor=actor, at=at)


@dataclass
class MovementResult:
    movement: StockMovement
    created: bool
    levels: list[StockLevel] = field(default_factory=list)


def _same(existing: StockMovement, *, depot: Depot, item: SupplyItem, kind: str, quantity: int) -> bool:
    return existing.depot_id == depot.pk and existing.item_id == item.pk and existing.kind == kind and \
        existing.quantity == quantity


def movement_record(*, actor, scope: Scope, depot: Depot, item: SupplyItem, kind: str, quantity: int | None = None,
                    counted: int | None = None, to_depot: Depot | None = None, client_key: str = "", note: str = "",
                    at: dt.datetime | None = None) -> MovementResult:
    """Record one movement (see the module docstring). ``quantity`` (> 0) for receipts, consumption and transfers
    (``to_depot`` names the receiving depot); ``counted`` (≥ 0) for an adjustment to a stock count."""
    at = at or clock.now()
    scope.check(depot.region_code, "depot")
    note = clean_text(note, "note", limit=1000)
    client_key = clean_text(client_key, "client_key", limit=64)
    if kind not in (MovementKind.RECEIPT, MovementKind.CONSUMPTION, MovementKind.ADJUSTMENT, "transfer"):
        raise ValidationFailed(_("kind: receipt, consumption, transfer or adjustment"), extra={"field": "kind"})
    if kind == MovementKind.ADJUSTMENT:
        if counted is None:
            raise ValidationFailed(_("give the counted quantity"), extra={"field": "counted"})
        _check_quantity(counted, "counted", allow_zero=True)
    else:
        _check_quantity(quantity)
    if kind == "transfer":
        if to_depot is None:
            raise ValidationFailed(_("name the receiving depot"), extra={"field": "to_depot"})
        scope.check(to_depot.region_code, "depot")
        if to_depot.pk == depot.pk:
            raise ValidationFailed(_("a transfer goes to another depot"), extra={"field": "to_depot"})
        if not to_depot.active:
            raise ValidationFailed(_("%(depot)s is closed: it receives nothing") % {"depot": to_depot.name},
                                   code="depot_inactive", extra={"field": "to_depot"})
    if kind == MovementKind.RECEIPT and not depot.active:
        raise ValidationFailed(_("%(depot)s is closed: it receives nothing") % {"depot": depot.name},
                               code="depot_inactive", extra={"field": "depot"})
    if kind == MovementKind.RECEIPT and not item.active:
        raise ValidationFailed(_("%(item)s is no longer stocked") % {"item": item.name}, code="item_inactive",
                               extra={"field": "item"})
    if client_key:
        existing = StockMovement.objects.filter(client_key=client_key).first()
        if existing is not None:
            return _replay(existing, scope=scope, depot=depot, item=item, kind=kind, quantity=quantity,
                           counted=counted)
    try:
        with transaction.atomic():
            return _record(actor=actor, depot=depot, item=item, kind=kind, quantity=quantity, counted=counted,
                           to_depot=to_depot, client_key=client_key, note=note, at=at)
    except IntegrityError:
        existing = StockMovement.objects.filter(client_key=client_key).first() if client_key else None
        if existing is None:
            raise
        return _replay(existing, scope=scope, depot=depot, item=item, kind=kind, quantity=quantity, counted=counted)


def _replay(existing: StockMovement, *, scope, depot, item, kind, quantity, counted) -> MovementResult:
    scope.check(existing.depot.region_code, "movement")
    if kind == MovementKind.ADJUSTMENT:
        same = existing.depot_id == depot.pk and existing.item_id == item.pk and existing.kind == kind and \
            (existing.counted is None or existing.counted == counted)
    else:
        expected_kind = MovementKind.TRANSFER_OUT if kind == "transfer" else kind
        signed = -quantity if expected_kind in (MovementKind.CONSUMPTION, MovementKind.TRANSFER_OUT) else quantity
        same = _same(existing, depot=depot, item=item, kind=expected_kind, quantity=signed)
    if not same:
        raise Conflict(_("submission key %(key)s was used for another movement") % {"key": existing.client_key},
                       extra={"field": "client_key"})
    return MovementResult(existing, False, list(StockLevel.objects.filter(item=item, depot=depot)))


def _record(*, actor, depot, item, kind, quantity, counted, to_depot, client_key, note, at) -> MovementResult:
    by = actor if getattr(actor, "pk", None) else None
    if kind == "transfer":
        first, second = sorted([depot, to_depot], key=lambda d: d.pk)
        levels = {d.pk: _level(d, item, at) for d in (first, second)}  # locked in primary-key order
        _apply(levels[depot.pk], -quantity, actor=actor, at=at)
        _apply(levels[to_depot.pk], quantity, actor=actor, at=at)
        out = StockMovement.objects.create(depot=depot, item=item, kind=MovementKind.TRANSFER_OUT, quantity=-quantity,
                                           at=at, by=by, client_key=client_key, note=note)
        inn = StockMovement.objects.create(depot=to_depot, item=item, kind=MovementKind.TRANSFER_IN, quantity=quantity,
                                           at=at, by=by, note=note, pair=out)
        out.pair = inn
        out.save(update_fields=["pair"])
        emit("command.stock_transferred", subject=out, region_code=depot.region_code, actor=actor, at=at,
             payload={"item": item.code, "from": depot.code, "to": to_depot.code, "quantity": quantity})
        return MovementResult(out, True, [levels[depot.pk], levels[to_depot.pk]])
    level = _level(depot, item, at)
    if kind == MovementKind.ADJUSTMENT:
        delta = counted - level.quantity
    else:
        delta = quantity if kind == MovementKind.RECEIPT else -quantity
    _apply(level, delta, actor=actor, at=at)
    movement = StockMovement.objects.create(depot=depot, item=item, kind=kind, quantity=delta, at=at, by=by,
                                            client_key=client_key, note=note,
                                            counted=counted if kind == MovementKind.ADJUSTMENT else None)
    emit(f"command.stock_{kind}", subject=movement, region_code=depot.region_code, actor=actor, at=at,
         payload={"item": item.code, "depot": depot.code, "quantity": delta, "in_stock": level.quantity})
    return MovementResult(movement, True, [level])


@transaction.atomic
def threshold_set(*, actor, scope: Scope, depot: Depot, item: SupplyItem, threshold: int,
                  at: dt.datetime | None = None) -> StockLevel:
    """Set the low-stock threshold of one item at one depot (0: no alert)."""
    at = at or clock.now()
    scope.check(depot.region_code, "depot")
    threshold = _check_quantity(threshold, "threshold", allow_zero=True)
    level = _level(depot, item, at)
    was_low = level.low_threshold > 0 and level.quantity <= level.low_threshold
    level.low_threshold = threshold
    level.updated_at = at
    level.save(update_fields=["low_threshold", "updated_at"])
    emit("command.stock_threshold_set", subject=level, region_code=depot.region_code, actor=actor, at=at,
         payload={"depot": depot.code, "item": item.code, "threshold": threshold})
    if threshold > 0 and level.quantity <= threshold and not was_low:
        emit("command.low_stock", subject=level, region_code=depot.region_code, actor=actor, at=at,
             payload={"depot": depot.code, "item": item.code, "quantity": level.quantity, "threshold": threshold})
    return level


# --- CSV import of stock counts ---------------------------------------------------------------------------------------

HEADERS = {
    "depot": ("depot", "depot_code", "仓库", "仓库编码", "点位"),
    "item": ("item", "item_code", "物资", "物资编码"),
    "counted": ("counted", "quantity", "count", "盘点数量", "数量"),
    "threshold": ("threshold", "low_threshold", "预警线", "预警阈值"),
    "key": ("key", "client_key", "count_id", "盘点编号"),
}


@dataclass
class ImportReport:
    rows: int = 0
    applied: int = 0
    unchanged: int = 0
    errors: list[dict] = field(default_factory=list)


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValidationFailed(_("the file is neither UTF-8 nor GBK/GB18030"), extra={"field": "file"})


def stock_counts_import(*, actor, scope: Scope, data: bytes, at: dt.datetime | None = None) -> ImportReport:
    """Stock counts from a CSV (UTF-8 or GBK/GB18030; English or Chinese headers ``depot,item,counted[,threshold]
    [,key]``): each good row adjusts that depot's stock to the count (and sets the threshold if given); each bad row
    is reported with its line and field, good rows are kept. Re-running the file changes nothing: a row's key (given,
    or derived from the file's row content) makes its adjustment idempotent."""
    import hashlib

    at = at or clock.now()
    text = _decode(data)
    if "\x00" in text:
        raise ValidationFailed(_("the file contains NUL characters"), extra={"field": "file"})
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise ValidationFailed(_("the file is empty"), extra={"field": "file"})
    cols = {}
    for i, name in enumerate(h.strip().lower() for h in header):
        for key, names in HEADERS.items():
            if name in names:
                cols[key] = i
    missing = [k for k in ("depot", "item", "counted") if k not in cols]
    if missing:
        raise ValidationFailed(_("missing column(s): %(cols)s") % {"cols": ", ".join(missing)}, extra={"field": "file"})
    report = ImportReport()
    for line, row in enumerate(reader, start=2):
        if not any(c.strip() for c in row):
            continue
        report.rows += 1

        def cell(key, row=row):
            i = cols.get(key)
            return row[i].strip() if i is not None and i < len(row) else ""

        def bad(field_name, reason, line=line):
            report.errors.append({"line": line, "field": field_name, "reason": str(reason)})

        depot = Depot.objects.filter(code=cell("depot")[:32]).first()
        if depot is None or not scope.contains(depot.region_code):
            bad("depot", _("unknown depot %(code)s") % {"code": cell("depot")})
            continue
        item = SupplyItem.objects.filter(code=cell("item")[:32]).first()
        if item is None:
            bad("item", _("unknown item %(code)s") % {"code": cell("item")})
            continue
        try:
            counted = int(cell("counted"))
            _check_quantity(counted, "counted", allow_zero=True)
        except (ValueError, ValidationFailed):
            bad("counted", _("a whole number ≥ 0"))
            continue
        threshold = None
        if cell("threshold"):
            try:
                threshold = _check_quantity(int(cell("threshold")), "threshold", allow_zero=True)
            except (ValueError, ValidationFailed):
                bad("threshold", _("a whole number ≥ 0"))
                continue
        key = cell("key")[:40]
        digest = hashlib.blake2b(f"{depot.code}|{item.code}|{counted}|{key}".encode(), digest_size=12).hexdigest()
        client_key = f"csv:{digest}"
        try:
            result = movement_record(actor=actor, scope=scope, depot=depot, item=item, kind=MovementKind.ADJUSTMENT,
                                     counted=counted, client_key=client_key, note=_("stock count (file)"), at=at)
            if threshold is not None:
                threshold_set(actor=actor, scope=scope, depot=depot, item=item, threshold=threshold, at=at)
        except (ValidationFailed, Conflict, NotFound) as exc:
            bad(exc.extra.get("field", ""), exc.message)
            continue
        if result.created:
            report.applied += 1
        else:
            report.unchanged += 1
    return report
