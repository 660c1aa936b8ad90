"""Reactions of the facilities and orders area to other features' events (registered in IsolationConfig.ready).

* ``isolation.arrived`` (the transfer area, one event per person, payload {transfer_id, facility_id}): the people are
  given rooms at the facility (checked in) and their centralised (or, at a designated hospital, hospital) orders
  start — in the transaction of the arrival. Tiers come from the batch members of the transfer, else from tracing.
  A facility that cannot take them (inactive, unknown) is logged and the arrival still stands: the people appear as
  arrived without a room on the facility board, for the manager to place by hand.
* ``isolation.grouped`` into a batch with a *home* destination: home-quarantine orders start at once.
* ``testing.individual_positive`` (the testing feature, thousands at once): active orders of those people are
  converted, their room mates and household members re-assessed (jingkong.isolation.orders.convert_positives).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict

from django.db import transaction

from jingkong.core.exceptions import ApplicationError

log = logging.getLogger(__name__)


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _tiers_of_transfers(transfer_ids: set[int], person_ids: set[int]) -> dict[int, str]:
    from jingkong.isolation.models import BatchMember, TransferStop

    batches = set(TransferStop.objects.filter(transfer_id__in=transfer_ids).values_list("batch_id", flat=True))
    out = {}
    for pid, role in (BatchMember.objects.filter(batch_id__in=batches, person_id__in=person_ids)
                      .values_list("person_id", "role")):
        out[pid] = role
    return out


def on_arrived(events) -> None:
    from jingkong.isolation import orders
    from jingkong.isolation.models import Facility

    by_facility: dict[int, list[int]] = defaultdict(list)
    transfers: set[int] = set()
    when: dict[int, dt.datetime] = {}
    for event in events:
        payload = event.payload or {}
        person_id, facility_id = _int(event.subject_id), _int(payload.get("facility_id"))
        if event.subject_type != "people.person" or person_id is None or facility_id is None:
            log.warning("isolation.arrived %s names no person or facility", event.pk)
            continue
        by_facility[facility_id].append(person_id)
        when[facility_id] = max(when.get(facility_id, event.occurred_at), event.occurred_at)
        if _int(payload.get("transfer_id")) is not None:
            transfers.add(_int(payload.get("transfer_id")))
    if not by_facility:
        return
    tiers = _tiers_of_transfers(transfers, {p for ps in by_facility.values() for p in ps}) if transfers else {}
    facilities = {f.pk: f for f in Facility.objects.filter(pk__in=list(by_facility))}
    actor = getattr(events[0], "actor", None)
    for facility_id, people in sorted(by_facility.items()):
        facility = facilities.get(facility_id)
        if facility is None:
            log.warning("isolation.arrived: unknown facility %s for %d people", facility_id, len(people))
            continue
        try:
            with transaction.atomic():
                orders.on_arrival(facility, people, tiers={p: tiers[p] for p in people if p in tiers} or None,
                                  actor=actor, at=when[facility_id])
        except ApplicationError as exc:
            log.warning("isolation.arrived at %s: %s (%d people left without a room)", facility.code, exc.message,
                        len(people))


def on_individual_positive(events) -> None:
    from jingkong.isolation import orders
    from jingkong.isolation.models import IsolationOrder, OrderStatus

    positives: dict[int, dt.datetime] = {}
    for event in events:
        pid = _int(event.subject_id)
        if event.subject_type == "people.person" and pid is not None:
            positives[pid] = event.occurred_at
    if not positives:
        return
    # Most positives are not in quarantine: one cheap query before doing anything.
    mine = set(IsolationOrder.objects.filter(person_id__in=list(positives), status=OrderStatus.ACTIVE)
               .values_list("person_id", flat=True))
    from jingkong.isolation.models import RoomStay
    from jingkong.tracing.models import ContactReason

    in_rooms = set(RoomStay.objects.filter(person_id__in=list(positives), checked_out_at__isnull=True)
                   .values_list("person_id", flat=True))
    index = set(ContactReason.objects.filter(via_contact__person_id__in=list(positives))
                .values_list("via_contact__person_id", flat=True))
    concerned = mine | in_rooms | index
    if not concerned:
        return
    orders.convert_positives({p: positives[p] for p in concerned}, actor=getattr(events[0], "actor", None),
                             at=max(positives[p] for p in concerned))


def on_grouped(events) -> None:
    """``isolation.grouped`` {batch_id, role}: people grouped for a *home* destination (e.g. 2022 secondary contacts,
    where no vehicle is sent) are ordered into home quarantine at once, counted from their last exposure."""
    from jingkong.isolation import orders
    from jingkong.isolation.models import Destination, TransferBatch

    wanted: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for event in events:
        payload = event.payload or {}
        person_id, batch_id = _int(event.subject_id), _int(payload.get("batch_id"))
        if event.subject_type == "people.person" and person_id is not None and batch_id is not None:
            wanted[batch_id].append((person_id, str(payload.get("role") or "")))
    if not wanted:
        return
    home = set(TransferBatch.objects.filter(pk__in=list(wanted), destination_type=Destination.HOME)
               .values_list("pk", flat=True))
    requests = [orders.OrderRequest(person_id=pid, tier=role if role in ("close", "secondary") else None,
                                    mode="home_quarantine")
                for batch_id in sorted(home) for pid, role in wanted[batch_id]]
    if not requests:
        return
    try:
        with transaction.atomic():
            orders.orders_start(requests, actor=getattr(events[0], "actor", None),
                                at=max(e.occurred_at for e in events))
    except ApplicationError as exc:
        log.warning("isolation.grouped: home orders for %d people not started: %s", len(requests), exc.message)
