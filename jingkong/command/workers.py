"""The field worker registry: grid workers, building captains (楼道长) and volunteers with the area they cover (a region
— normally a grid — and optionally buildings in it), optionally linked to a user account.

Also the one place that answers "who covers this place?" for tasks created in bulk (:func:`assignees_for`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from jingkong.access import audit
from jingkong.access.guard import Scope
from jingkong.command.models import FieldWorker, WorkerRole
from jingkong.core.events import emit
from jingkong.core.exceptions import Conflict, NotFound, ValidationFailed

# Who gets a grid's task when nobody covers its building: grid worker first, then captains, then volunteers.
ROLE_ORDER = {WorkerRole.GRID_WORKER: 0, WorkerRole.BUILDING_CAPTAIN: 1, WorkerRole.VOLUNTEER: 2}


def _region(scope: Scope, code: str):
    from jingkong.geo.models import Region

    scope.check(code, "region")
    region = Region.objects.filter(code=code).only("id", "code", "level").first()
    if region is None:
        raise NotFound(_("region not found"))
    return region


def _buildings(region_code: str, building_ids: list[int]) -> list[int]:
    from jingkong.geo.models import Building

    ids = sorted(set(building_ids))
    if not ids:
        return []
    found = set(Building.objects.filter(pk__in=ids, grid__code__startswith=region_code).values_list("pk", flat=True))
    missing = [i for i in ids if i not in found]
    if missing:
        raise ValidationFailed(_("building %(b)s is not in region %(region)s") % {"b": missing[0], "region": region_code}, extra={"field": "building_ids"})
    return ids


def _user(scope: Scope, user_id: int | None):
    if user_id is None:
        return None
    from jingkong.access.guard import scope_of
    from jingkong.access.models import User

    user = User.objects.select_related("region").filter(pk=user_id).first()
    if user is None or not scope.covers(scope_of(user)):
        raise NotFound(_("user not found"))
    return user


def worker_create(*, actor, scope: Scope, name: str, role: str, region_code: str, phone: str = "",
                  building_ids: list[int] | None = None, user_id: int | None = None, request=None) -> FieldWorker:
    region = _region(scope, region_code)
    buildings = _buildings(region.code, building_ids or [])
    user = _user(scope, user_id)
    try:
        with transaction.atomic():
            worker = FieldWorker.objects.create(name=name, phone=phone, role=role, region_code=region.code, user=user)
            worker.buildings.set(buildings)
            audit.record(actor=actor, action="worker.create", object_type="command.fieldworker", object_id=worker.pk,
                         region_code=worker.region_code, request=request,
                         detail={"role": role, "buildings": len(buildings), "user": user.username if user else ""})
            emit("command.worker_registered", subject=worker, region_code=worker.region_code, actor=actor,
                 payload={"role": role, "buildings": buildings})
    except IntegrityError:
        raise Conflict(_("this account is already linked to another field worker"), extra={"field": "user_id"}) from None
    return worker


def worker_update(*, actor, scope: Scope, worker: FieldWorker, request=None, **changes) -> FieldWorker:
    """Change a worker's name, phone, role, area, buildings, account or active flag (only the keys given)."""
    fields = []
    for key in ("name", "phone", "role", "active"):
        if changes.get(key) is not None:
            setattr(worker, key, changes[key])
            fields.append(key)
    if changes.get("region_code"):
        worker.region_code = _region(scope, changes["region_code"]).code
        fields.append("region_code")
    buildings = None
    if changes.get("building_ids") is not None:
        buildings = _buildings(worker.region_code, changes["building_ids"])
    elif "region_code" in fields:
        buildings = _buildings(worker.region_code, list(worker.buildings.values_list("pk", flat=True)))
    if "user_id" in changes and changes["user_id"] is not None:
        worker.user = _user(scope, changes["user_id"] or None) if changes["user_id"] else None
        fields.append("user")
    try:
        with transaction.atomic():
            if fields:
                worker.save(update_fields=fields)
            if buildings is not None:
                worker.buildings.set(buildings)
            audit.record(actor=actor, action="worker.update", object_type="command.fieldworker", object_id=worker.pk,
                         region_code=worker.region_code, request=request,
                         detail={"fields": fields + (["buildings"] if buildings is not None else [])})
            emit("command.worker_updated", subject=worker, region_code=worker.region_code, actor=actor,
                 payload={"fields": fields})
    except IntegrityError:
        raise Conflict(_("this account is already linked to another field worker"), extra={"field": "user_id"}) from None
    return worker


def worker_of_user(user) -> FieldWorker | None:
    if user is None or not getattr(user, "pk", None):
        return None
    return FieldWorker.objects.filter(user_id=user.pk, active=True).first()


def assignees_for(places: Iterable[tuple[str, int | None]]) -> dict[tuple[str, int | None], int]:
    """``(region code, building id or None)`` → the id of the active worker covering it: a worker registered with
    that building (captains before volunteers), else the region's grid worker, captain or volunteer in that order
    (lowest id first: deterministic). Two queries whatever the number of places."""
    places = list(places)
    codes = sorted({code for code, _ in places})
    if not codes:
        return {}
    by_region: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for pk, code, role in FieldWorker.objects.filter(active=True, region_code__in=codes).values_list(
            "pk", "region_code", "role"):
        by_region[code].append((ROLE_ORDER.get(role, 9), pk))
    building_ids = sorted({b for _, b in places if b})
    by_building: dict[int, list[tuple[int, int]]] = defaultdict(list)
    if building_ids:
        through = FieldWorker.buildings.through
        for pk, bid, role in through.objects.filter(building_id__in=building_ids, fieldworker__active=True) \
                .values_list("fieldworker_id", "building_id", "fieldworker__role"):
            by_building[bid].append((ROLE_ORDER.get(role, 9), pk))
    out = {}
    for code, building in places:
        candidates = by_building.get(building) if building else None
        if not candidates:
            candidates = by_region.get(code)
        if candidates:
            out[(code, building)] = min(candidates)[1]
    return out
