"""Tasks the loop creates by itself, each landing with the worker who covers the place:

* retest pool-positive people — one task per positive tube and grid of its members (``testing.pool_positive``);
* locate contacts — one task per batch of newly identified contacts of a grid (``tracing.contacts_identified``);
* deliver to lockdown households — one task per grid and building of an approved lockdown / high-risk zone, the
  target being its households (``zones.zone_approved``, and ``zones.zone_changed`` upgrading to such a type);
* sweep untested households — one task per grid with untested people in a testing round (:func:`sweep_items`, from
  the API or ``jingkong command sweep``), read from the testing coverage figures.

Builders return items for :func:`jingkong.command.tasks.create_auto_tasks` (idempotent on ``(source, source_key)``).
Set-based: one or two grouped queries per batch of events.
"""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Count, Q

from jingkong.command.models import TaskSource

DELIVER_ZONE_TYPES = ("lockdown", "high_risk")


def pool_positive_items(tube_ids: list[int]) -> list[dict]:
    from jingkong.testing.models import Sample, Tube

    if not tube_ids:
        return []
    barcodes = dict(Tube.objects.filter(pk__in=tube_ids).values_list("pk", "barcode"))
    members: dict[tuple[int, str], list[int]] = defaultdict(list)
    for tube_id, person_id, region in Sample.objects.filter(tube_id__in=tube_ids).values_list(
            "tube_id", "person_id", "region_code"):
        members[(tube_id, region or "")].append(person_id)
    items = []
    for (tube_id, region), people in sorted(members.items()):
        if not region:
            continue
        people = sorted(set(people))
        barcode = barcodes.get(tube_id, str(tube_id))
        items.append({
            "source_key": f"pool:{tube_id}:{region}", "region_code": region, "target_count": len(people),
            "title": f"Retest pool-positive tube {barcode}: {len(people)}",
            "payload": {"tube_id": tube_id, "tube": barcode, "person_ids": people[:500],
                        "attachments": [{"type": "link", "url": "/testing/retests/", "label": "retests"}]},
        })
    return items


def contacts_items(events) -> list[dict]:
    items = []
    for event in events:
        payload = event.payload or {}
        contacts = [c for c in payload.get("contacts") or [] if isinstance(c, dict)]
        region = str(event.region_code or "")
        if not contacts or not region:
            continue
        tiers = defaultdict(int)
        for c in contacts:
            tiers[str(c.get("tier") or "")] += 1
        items.append({
            "source_key": f"contacts:{event.pk}", "region_code": region, "target_count": len(contacts),
            "title": f"Locate {len(contacts)} contact(s)",
            "payload": {"event_id": event.pk, "contact_ids": [c.get("id") for c in contacts][:500],
                        "by_tier": dict(tiers), "attachments": [{"type": "contact_queue"}]},
        })
    return items


def zone_items(zone_id: int, zone_ref: str = "") -> list[dict]:
    """Households of the zone's residents per grid and building (persons without a household count as one)."""
    from jingkong.zones.models import ZoneResident

    rows = (ZoneResident.objects.filter(zone_id=zone_id).values("region_code", "person__building_id").order_by()
            .annotate(households=Count("person__household_id", distinct=True), people=Count("id"),
                      alone=Count("id", filter=Q(person__household__isnull=True))))
    items = []
    for r in rows:
        region, building = r["region_code"], r["person__building_id"]
        if not region:
            continue
        target = r["households"] + r["alone"]
        items.append({
            "source_key": f"zone:{zone_id}:{region}:{building or 0}", "region_code": region, "building_id": building,
            "target_count": target, "title": f"Deliver to {target} household(s), zone {zone_ref}".strip(),
            "payload": {"zone_id": zone_id, "zone": zone_ref, "people": r["people"]},
        })
    return sorted(items, key=lambda i: i["source_key"])


def sweep_items(campaign, *, scope, wave: int = 1) -> list[dict]:
    """One item per grid of the round (in the caller's scope) with people not yet sampled or to be resampled."""
    from jingkong.analytics import coverage
    from jingkong.testing import selectors_coverage

    area = coverage.resolve_area(campaign, scope=scope)
    rows, _ = selectors_coverage.area_rows(area, "grid")
    items = []
    for row in rows:
        untested = int(row.get("not_sampled") or 0) + int(row.get("resample") or 0)
        if untested <= 0 or row.get("level") != "grid":
            continue
        items.append({
            "source_key": f"sweep:{campaign.pk}:{wave}:{row['code']}", "region_code": row["code"],
            "target_count": untested, "title": f"Sweep untested residents ({campaign.code}): {untested}",
            "payload": {"campaign_id": campaign.pk, "campaign": campaign.code, "wave": wave,
                        "not_sampled": row.get("not_sampled"), "resample": row.get("resample"),
                        "attachments": [{"type": "untested_list", "campaign_id": campaign.pk,
                                         "campaign_code": campaign.code}]},
        })
    return items


SOURCES = {"pool": TaskSource.RETEST_POOL, "contacts": TaskSource.LOCATE_CONTACT, "zone": TaskSource.DELIVER,
           "sweep": TaskSource.SWEEP_UNTESTED}
