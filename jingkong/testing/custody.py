"""Chain of custody (转运交接): sealed tubes travel from a sampling site to a lab in transport batches.

Each step stamps a time and a person, so a tube's journey can be told afterwards: first swab (``Tube.opened_at``) →
sealed (``sealed_at``) → packed into a batch (``TransportBatch.packed_at``/``packed_by``) → handed to a courier
(``handed_over_at``, ``courier``; tubes ``in_transit``) → received at the lab (``received_at``/``received_by``; tubes
``received`` with ``Tube.lab`` and ``Tube.received_at``) → resulted.

* **Pack** (TESTING_SAMPLE): sealed tubes only; a tube already in another batch, still open, or already received is
  refused — the whole pack is refused, listing every problem, so a box is never half recorded. Packing again with the
  same batch code while the batch is still at the site adds tubes (boxes are filled one scan at a time); tubes already
  in it are no-ops. A sampler packs only at the sites they are assigned to, and only that site's tubes.
* **Hand over** (TESTING_SAMPLE): to a named courier; repeating it with the same courier changes nothing.
* **Receive** (TESTING_RESULT, lab technicians only for their labs): optionally with the barcodes scanned on arrival:
  tubes of the batch that were not scanned are reported missing and stay in transit (the overdue list shows them
  until they turn up); scanned tubes that are not in the batch are reported and not received.
* **Walk-in receive** (TESTING_RESULT): tubes that were never packed (a door-to-door team bringing tubes by hand, a
  tube turning up after its batch) are received by barcode list.

Every step emits an event (``testing.batch_packed``, ``testing.batch_handed_over``, ``testing.batch_received``,
``testing.tubes_received``) in its transaction. No person data is touched here.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import asdict, dataclass, field

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from jingkong.access.guard import Scope
from jingkong.access.roles import Perm, Role
from jingkong.core import clock
from jingkong.core.events import emit
from jingkong.core.exceptions import Conflict, NotFound, PermissionDenied, ValidationFailed
from jingkong.testing import labs as lab_rules
from jingkong.testing.models import BatchStatus, Lab, SamplingSite, TransportBatch, Tube, TubeStatus
from jingkong.testing.selectors import db_id

MAX_TUBES = 5_000  # per request
FUTURE_TOLERANCE = dt.timedelta(minutes=10)


@dataclass
class CustodyReport:
    """The answer of a receive: what was received, what was already there, what is missing or unexpected."""

    received: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)  # {"row", "field", "tube", "reason"}

    def as_dict(self) -> dict:
        out = asdict(self)
        out["counts"] = {k: len(v) for k, v in out.items()}
        return out


def _barcodes(values) -> list[str]:
    if values is None:
        return []
    if len(values) > MAX_TUBES:
        raise ValidationFailed(_("at most %(n)s tubes per request") % {"n": f"{MAX_TUBES:,}"},
                               extra={"field": "barcodes"})
    out, seen = [], set()
    for i, v in enumerate(values):
        code = str(v or "").strip()
        if "\x00" in code:
            raise ValidationFailed(_("barcode %(n)s contains a NUL character") % {"n": i + 1},
                                   extra={"field": "barcodes", "row": i})
        if code and code not in seen:
            seen.add(code)
            out.append(code)
    return out


def _when(at: dt.datetime | None, now: dt.datetime, field_name: str = "at") -> dt.datetime:
    if at is None:
        return now
    if at.tzinfo is None:
        raise ValidationFailed(_("%(f)s needs a UTC offset") % {"f": field_name}, extra={"field": field_name})
    if at > now + FUTURE_TOLERANCE:
        raise ValidationFailed(_("%(f)s is in the future") % {"f": field_name}, extra={"field": field_name})
    try:
        return at.astimezone(dt.UTC)
    except OverflowError:
        raise ValidationFailed(_("%(f)s is out of range") % {"f": field_name}, extra={"field": field_name}) from None


def _is_sampler(actor) -> bool:
    return getattr(actor, "role", "") == Role.SAMPLER


# --- reads -----------------------------------------------------------------------------------------------------------


def batch_visible_q(scope: Scope, actor=None) -> Q:
    """Batches sent from inside the scope, plus the batches addressed to labs the actor may work: for a lab technician
    every batch addressed to their labs; for another role receiving at labs (a commander) the batches addressed to
    the labs inside their region, wherever they come from."""
    q = scope.q("region_code")
    if lab_rules.is_technician(actor):
        q |= Q(lab__technicians=actor)
    elif scope.prefix and getattr(actor, "has_role_perm", None) and actor.has_role_perm(Perm.TESTING_RESULT):
        q |= Q(lab__region_code__startswith=scope.prefix)
    return q


def batch_list(*, scope: Scope, actor=None, lab_id: int | None = None, site_id: int | None = None,
               status: str = "", limit: int = 200) -> QuerySet[TransportBatch]:
    qs = TransportBatch.objects.filter(batch_visible_q(scope, actor)).select_related("lab", "site").distinct()
    if lab_id:
        qs = qs.filter(lab_id=lab_id) if db_id(lab_id) else qs.none()
    if site_id:
        qs = qs.filter(site_id=site_id) if db_id(site_id) else qs.none()
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-packed_at", "-id")[:limit]


def batch_get(*, scope: Scope, actor=None, batch_id: int) -> TransportBatch:
    batch = (TransportBatch.objects.filter(batch_visible_q(scope, actor), pk=batch_id)
             .select_related("lab", "site", "campaign").distinct().first())
    if batch is None:
        raise NotFound(_("transport batch not found"))
    return batch


# --- pack ------------------------------------------------------------------------------------------------------------


def batch_pack(*, actor, scope: Scope, lab: Lab, barcodes, site: SamplingSite | None = None, code: str = "",
               at: dt.datetime | None = None) -> tuple[TransportBatch, dict]:
    """Pack sealed tubes for ``lab``; returns ``(batch, {"added": [...], "unchanged": [...]})``."""
    now = clock.now()
    at = _when(at, now)
    tubes_wanted = _barcodes(barcodes)
    if not tubes_wanted:
        raise ValidationFailed(_("no tube barcodes to pack"), extra={"field": "barcodes"})
    if not lab.active:
        raise ValidationFailed(_("lab %(code)s is not receiving (inactive)") % {"code": lab.code},
                               extra={"field": "lab_id"})
    if site is not None and not scope.contains(site.region_code):
        raise NotFound(_("sampling site not found"), extra={"field": "site_id"})
    if _is_sampler(actor):
        if site is None:
            raise ValidationFailed(_("a sampler packs at a site: name the site"), extra={"field": "site_id"})
        if not site.samplers.filter(pk=actor.pk).exists():
            raise PermissionDenied(_("you are not assigned to site %(code)s") % {"code": site.code},
                                   extra={"field": "site_id"})
    code = (code or "").strip()
    if len(code) > 40:
        raise ValidationFailed(_("a batch code has at most 40 characters"), extra={"field": "code"})
    if "\x00" in code:
        raise ValidationFailed(_("the batch code contains a NUL character"), extra={"field": "code"})
    with transaction.atomic():
        batch = TransportBatch.objects.select_for_update().filter(code=code).first() if code else None
        if batch is not None:
            if not TransportBatch.objects.filter(batch_visible_q(scope, actor), pk=batch.pk).exists():
                raise Conflict(_("batch code %(code)s is taken") % {"code": code}, extra={"field": "code"})
            if batch.status != BatchStatus.PACKED:
                raise Conflict(_("batch %(code)s has left the site (%(status)s): pack a new batch")
                               % {"code": code, "status": batch.get_status_display()}, extra={"field": "code"})
            if batch.lab_id != lab.pk or (site is not None and batch.site_id != site.pk):
                raise Conflict(_("batch %(code)s goes to another lab or comes from another site")
                               % {"code": code}, extra={"field": "code"})
            site = batch.site
        tubes = {t.barcode: t for t in Tube.objects.select_for_update().filter(barcode__in=tubes_wanted)
                 .order_by("barcode")}  # lock order: barcode, as the sampling service does
        problems, added, unchanged = [], [], []
        for i, barcode in enumerate(tubes_wanted):
            tube = tubes.get(barcode)
            reason = None
            if tube is None or not scope.contains(tube.region_code):
                reason = _("unknown tube")
            elif batch is not None and tube.batch_id == batch.pk:
                unchanged.append(barcode)
                continue
            elif tube.batch_id is not None:
                reason = _("already packed in another batch")
            elif site is not None and tube.site_id not in (None, site.pk):
                reason = _("the tube was filled at another site")
            elif tube.status == TubeStatus.OPEN:
                reason = _("still open: seal it before packing")
            elif tube.status != TubeStatus.SEALED:
                reason = _("already %(status)s") % {"status": tube.get_status_display()}
            if reason:
                problems.append({"row": i, "field": "barcodes", "tube": barcode, "reason": reason})
            else:
                added.append(tube)
        if problems:
            raise ValidationFailed(
                _("%(n)s tube(s) cannot be packed: %(first)s") % {
                    "n": len(problems), "first": "; ".join(f"{p['tube']}: {p['reason']}" for p in problems[:5])},
                extra={"field": "barcodes", "errors": problems})
        if batch is None:
            region = site.region_code if site else os.path.commonprefix([t.region_code for t in added])
            batch = TransportBatch.objects.create(
                code=code or f"TB{at.astimezone(dt.UTC):%Y%m%d}-{os.urandom(4).hex().upper()}",
                campaign_id=added[0].campaign_id if len({t.campaign_id for t in added}) == 1 else None,
                site=site, lab=lab, region_code=region, status=BatchStatus.PACKED, packed_at=at,
                packed_by=actor if getattr(actor, "pk", None) else None)
        if added:
            Tube.objects.filter(pk__in=[t.pk for t in added]).update(batch=batch)
            batch.tube_count = Tube.objects.filter(batch=batch).count()
            batch.save(update_fields=["tube_count"])
            emit("testing.batch_packed", subject=batch, region_code=batch.region_code, actor=actor, at=at,
                 payload={"code": batch.code, "lab": lab.code, "site": site.code if site else None,
                          "added": len(added), "tube_count": batch.tube_count})
    return batch, {"added": [t.barcode for t in added], "unchanged": unchanged}


# --- hand over -------------------------------------------------------------------------------------------------------


def batch_hand_over(*, actor, batch: TransportBatch, courier: str, at: dt.datetime | None = None) -> TransportBatch:
    now = clock.now()
    at = _when(at, now)
    courier = (courier or "").strip()
    if not courier or len(courier) > 64 or "\x00" in courier:
        raise ValidationFailed(_("name the courier (1 to 64 characters)"), extra={"field": "courier"})
    if _is_sampler(actor) and batch.site_id and not batch.site.samplers.filter(pk=actor.pk).exists():
        raise PermissionDenied(_("you are not assigned to site %(code)s") % {"code": batch.site.code})
    with transaction.atomic():
        batch = TransportBatch.objects.select_for_update().get(pk=batch.pk)
        if batch.status == BatchStatus.HANDED_OVER and batch.courier == courier:
            return batch
        if batch.status != BatchStatus.PACKED:
            raise Conflict(_("batch %(code)s was already %(status)s") % {"code": batch.code,
                                                                         "status": batch.get_status_display()})
        if at < batch.packed_at:
            raise ValidationFailed(_("the hand-over cannot be before the packing"), extra={"field": "at"})
        if not batch.tubes.exists():
            raise ValidationFailed(_("the batch is empty"), extra={"field": "barcodes"})
        batch.status, batch.courier, batch.handed_over_at = BatchStatus.HANDED_OVER, courier, at
        batch.save(update_fields=["status", "courier", "handed_over_at"])
        Tube.objects.filter(batch=batch, status=TubeStatus.SEALED).update(status=TubeStatus.IN_TRANSIT)
        emit("testing.batch_handed_over", subject=batch, region_code=batch.region_code, actor=actor, at=at,
             payload={"code": batch.code, "lab": batch.lab.code, "courier": courier, "tube_count": batch.tube_count})
    return batch


# --- receive ---------------------------------------------------------------------------------------------------------


def batch_receive(*, actor, batch: TransportBatch, barcodes=None, at: dt.datetime | None = None) -> CustodyReport:
    """Receive a batch at its lab; with ``barcodes`` (scanned on arrival) missing and unexpected tubes are reported."""
    now = clock.now()
    at = _when(at, now)
    lab_rules.ensure_can_operate(actor, batch.lab)
    scanned = _barcodes(barcodes) if barcodes is not None else None
    report = CustodyReport()
    with transaction.atomic():
        batch = TransportBatch.objects.select_for_update().select_related("lab").get(pk=batch.pk)
        tubes = list(Tube.objects.select_for_update().filter(batch=batch).order_by("barcode"))
        in_batch = {t.barcode: t for t in tubes}
        if scanned is not None:
            for i, code in enumerate(scanned):
                if code not in in_batch:
                    report.errors.append({"row": i, "field": "barcodes", "tube": code,
                                          "reason": _("not in this batch: receive it as a walk-in tube")})
        arrived = set(in_batch) if scanned is None else set(scanned) & set(in_batch)
        to_receive = []
        for t in tubes:
            if t.barcode not in arrived:
                if t.received_at is None and t.status != TubeStatus.RESULTED:
                    report.missing.append(t.barcode)
                continue
            if t.received_at is not None or t.status in (TubeStatus.RECEIVED, TubeStatus.RESULTED):
                report.unchanged.append(t.barcode)
            else:
                to_receive.append(t.pk)
                report.received.append(t.barcode)
        if batch.status != BatchStatus.RECEIVED and at < batch.packed_at:
            raise ValidationFailed(_("the receipt cannot be before the packing"), extra={"field": "at"})
        if batch.status != BatchStatus.RECEIVED and batch.handed_over_at and at < batch.handed_over_at:
            raise ValidationFailed(_("the receipt cannot be before the hand-over to the courier"),
                                   extra={"field": "at"})
        if to_receive:
            Tube.objects.filter(pk__in=to_receive).update(status=TubeStatus.RECEIVED, lab=batch.lab, received_at=at)
        first_receipt = batch.status != BatchStatus.RECEIVED
        if first_receipt:
            batch.status, batch.received_at = BatchStatus.RECEIVED, at
            batch.received_by = actor if getattr(actor, "pk", None) else None
            batch.save(update_fields=["status", "received_at", "received_by"])
        if first_receipt or to_receive:
            emit("testing.batch_received", subject=batch, region_code=batch.region_code, actor=actor, at=at,
                 payload={"code": batch.code, "lab": batch.lab.code, "received": len(report.received),
                          "missing": report.missing[:200], "missing_count": len(report.missing),
                          "unexpected": [e["tube"] for e in report.errors][:200]})
    return report


def tubes_receive(*, actor, lab: Lab, barcodes, at: dt.datetime | None = None) -> CustodyReport:
    """Walk-in receipt of tubes by barcode (never packed, or arriving after their batch)."""
    now = clock.now()
    at = _when(at, now)
    lab_rules.ensure_can_operate(actor, lab)
    wanted = _barcodes(barcodes)
    if not wanted:
        raise ValidationFailed(_("no tube barcodes to receive"), extra={"field": "barcodes"})
    report = CustodyReport()
    with transaction.atomic():
        tubes = {t.barcode: t for t in Tube.objects.select_for_update(of=("self",)).select_related("batch", "batch__lab")
                 .filter(barcode__in=wanted).order_by("barcode")}
        to_receive = []
        for i, code in enumerate(wanted):
            t = tubes.get(code)
            reason = None
            if t is None:
                reason = _("unknown tube: no swab was ever scanned into it")
            elif t.lab_id is not None and t.lab_id != lab.pk:
                reason = _("received by another lab")
            elif t.lab_id == lab.pk and t.received_at is not None:
                report.unchanged.append(code)
                continue
            elif t.batch_id is not None and t.batch.lab_id != lab.pk and t.batch.status != BatchStatus.RECEIVED:
                reason = _("in batch %(batch)s on its way to lab %(lab)s") % {"batch": t.batch.code,
                                                                             "lab": t.batch.lab.code}
            elif t.member_count == 0 and t.status == TubeStatus.OPEN:
                reason = _("the tube holds no swab")
            if reason:
                report.errors.append({"row": i, "field": "barcodes", "tube": code, "reason": reason})
                continue
            to_receive.append(t)
            report.received.append(code)
        for t in to_receive:
            if t.opened_at and at < t.opened_at - FUTURE_TOLERANCE:
                raise ValidationFailed(_("tube %(code)s cannot be received before its first swab")
                                       % {"code": t.barcode}, extra={"field": "at"})
        if to_receive:
            ids = [t.pk for t in to_receive]
            Tube.objects.filter(pk__in=ids, status__in=[TubeStatus.OPEN, TubeStatus.SEALED, TubeStatus.IN_TRANSIT]) \
                .update(status=TubeStatus.RECEIVED)
            Tube.objects.filter(pk__in=ids, sealed_at__isnull=True).update(sealed_at=at)
            Tube.objects.filter(pk__in=ids).update(lab=lab, received_at=at)
            emit("testing.tubes_received", subject=lab, region_code=lab.region_code, actor=actor, at=at,
                 payload={"lab": lab.code, "received": len(to_receive), "tubes": report.received[:200]})
    return report
