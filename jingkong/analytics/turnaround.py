"""Turnaround (快检快出) and overdue tubes, set-based.

Turnaround measures each tube's journey in hours: **sampling** (the first swab, ``Tube.opened_at``) → **lab receipt**
(``Tube.received_at``) → **result** (``Tube.resulted_at``, when the platform recorded the result). The database does
the filtering and turns the three timestamps into epoch seconds (one query, no per-row datetime parsing in Python);
numpy takes the percentiles (p50/p90/p95) overall, per sampling site and per lab.

Overdue tubes are those not resulted yet (sealed, in transit or received) that

* are older (since the first swab) than the target of the lab they are at or addressed to (``Lab.target_hours``), or,
  for tubes not yet packed for any lab, than the policy's testing target (``clock_targets.testing`` of the profile
  in force) — "result overdue";
* or have been in transit (handed to a courier, not received) longer than ``transit_hours`` — "in transit too long"
  (a tube reported missing at its batch's receipt stays in this list until it turns up).

Everything is limited to the caller's region scope by the tube's region (its site's region).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce

from jingkong.access.guard import Scope
from jingkong.core import clock

# Transit is an operational limit, not a policy rule: a courier run in a district takes 1–2 hours; 4 hours without a
# receipt means a box needs looking for. Callers may pass their own limit.
DEFAULT_TRANSIT_HOURS = 4
PERCENTILES = (50, 90, 95)
STAGES = ("sample_to_receipt", "receipt_to_result", "sample_to_result")


class Epoch(models.Func):
    """Seconds since 1970 of a datetime column (float), the same on SQLite and PostgreSQL."""

    output_field = models.FloatField()

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="((julianday(%(expressions)s) - 2440587.5) * 86400.0)",
                           **extra)

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="EXTRACT(EPOCH FROM %(expressions)s)::float8", **extra)


def _stats(hours: np.ndarray) -> dict:
    hours = hours[~np.isnan(hours)]
    if not len(hours):
        return {"n": 0, **{f"p{p}": None for p in PERCENTILES}, "mean": None, "max": None}
    values = np.percentile(hours, PERCENTILES)
    return {"n": int(len(hours)), **{f"p{p}": round(float(v), 2) for p, v in zip(PERCENTILES, values, strict=True)},
            "mean": round(float(hours.mean()), 2), "max": round(float(hours.max()), 2)}


def _grouped(keys: np.ndarray, columns: dict[str, np.ndarray]) -> dict[int, dict]:
    out: dict[int, dict] = {}
    if not len(keys):
        return out
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    ends = np.r_[starts[1:], len(order)]
    for s, e in zip(starts, ends, strict=True):
        idx = order[s:e]
        out[int(sorted_keys[s])] = {name: _stats(col[idx]) for name, col in columns.items()}
    return out


def _row_id(value) -> bool:
    return isinstance(value, int) and 0 < value < 2**63


def _tubes(scope: Scope, *, campaign_id=None, since=None, until=None, lab_id=None, site_id=None):
    from jingkong.testing.models import Tube

    qs = Tube.objects.filter(scope.q("region_code"))
    if not all(_row_id(v) for v in (campaign_id, lab_id, site_id) if v):
        return qs.none()  # not a row id: matches nothing (and must not reach the database driver)
    if campaign_id:
        qs = qs.filter(campaign_id=campaign_id)
    if since:
        qs = qs.filter(opened_at__gte=since)
    if until:
        qs = qs.filter(opened_at__lt=until)
    if lab_id:
        qs = qs.filter(lab_id=lab_id)
    if site_id:
        qs = qs.filter(site_id=site_id)
    return qs


def turnaround(*, scope: Scope, campaign_id: int | None = None, since: dt.datetime | None = None,
               until: dt.datetime | None = None, lab_id: int | None = None, site_id: int | None = None) -> dict:
    """Percentiles (hours) of the three stages, overall, per site and per lab, for a campaign and/or a time window
    (by the time of the first swab)."""
    from jingkong.testing.models import Lab, SamplingSite

    qs = (_tubes(scope, campaign_id=campaign_id, since=since, until=until, lab_id=lab_id, site_id=site_id)
          .filter(Q(received_at__isnull=False) | Q(resulted_at__isnull=False))
          .annotate(e_open=Epoch("opened_at"), e_recv=Epoch("received_at"), e_res=Epoch("resulted_at"))
          .values_list("site_id", "lab_id", "e_open", "e_recv", "e_res"))
    rows = list(qs)
    n = len(rows)
    if n:
        site = np.array([r[0] if r[0] is not None else -1 for r in rows], dtype=np.int64)
        lab = np.array([r[1] if r[1] is not None else -1 for r in rows], dtype=np.int64)
        times = np.array([r[2:] for r in rows], dtype=np.float64)  # None → nan
    else:
        site = lab = np.zeros(0, dtype=np.int64)
        times = np.zeros((0, 3))
    opened, received, resulted = times[:, 0], times[:, 1], times[:, 2]
    columns = {
        "sample_to_receipt": (received - opened) / 3600.0,
        "receipt_to_result": (resulted - received) / 3600.0,
        "sample_to_result": (resulted - opened) / 3600.0,
    }
    per_site = _grouped(site, columns)
    per_lab = _grouped(lab, columns)
    sites = {s.pk: s for s in SamplingSite.objects.filter(pk__in=[k for k in per_site if k > 0])}
    labs = {x.pk: x for x in Lab.objects.filter(pk__in=[k for k in per_lab if k > 0])}
    by_site = [{"site_id": k if k > 0 else None, "code": sites[k].code if k in sites else None,
                "name": sites[k].name if k in sites else None, **v} for k, v in sorted(per_site.items())]
    by_lab = [{"lab_id": k if k > 0 else None, "code": labs[k].code if k in labs else None,
               "name": labs[k].name if k in labs else None,
               "target_hours": labs[k].target_hours if k in labs else None, **v} for k, v in sorted(per_lab.items())]
    overall = {name: _stats(col) for name, col in columns.items()}
    return {"tubes": n, "overall": overall, "by_site": by_site, "by_lab": by_lab,
            "filters": {"campaign_id": campaign_id, "since": since, "until": until, "lab_id": lab_id,
                        "site_id": site_id}}


def default_target_hours(scope: Scope, at: dt.datetime) -> int | None:
    """The policy's testing target for tubes not addressed to any lab yet (None: no profile in force)."""
    from jingkong.policy.selectors import PolicyNotActive, active_profile

    try:
        return int(active_profile(region_code=scope.prefix or None, at=at).rules.clock_targets.testing)
    except PolicyNotActive:
        return None


def overdue(*, scope: Scope, now: dt.datetime | None = None, lab_id: int | None = None,
            campaign_id: int | None = None, site_id: int | None = None,
            transit_hours: float = DEFAULT_TRANSIT_HOURS, limit: int = 500) -> dict:
    """Tubes not resulted yet that are past their target or too long in transit (oldest first)."""
    from jingkong.testing.models import TubeStatus

    now = now or clock.now()
    default = default_target_hours(scope, now)
    now_s = now.timestamp()
    qs = (_tubes(scope, campaign_id=campaign_id, site_id=site_id)
          .filter(status__in=[TubeStatus.SEALED, TubeStatus.IN_TRANSIT, TubeStatus.RECEIVED], member_count__gt=0))
    if lab_id:
        qs = qs.filter(Q(lab_id=lab_id) | Q(lab__isnull=True, batch__lab_id=lab_id)) if _row_id(lab_id) else qs.none()
    target = Coalesce(F("lab__target_hours"), F("batch__lab__target_hours"),
                      models.Value(default, output_field=models.IntegerField()) if default else models.Value(
                          None, output_field=models.IntegerField()), output_field=models.IntegerField())
    qs = qs.annotate(target=target, e_open=Epoch("opened_at"), e_handed=Epoch("batch__handed_over_at"))
    late = Q(target__isnull=False, e_open__lt=now_s - F("target") * 3600.0)
    stuck = Q(status=TubeStatus.IN_TRANSIT, e_handed__lt=now_s - float(transit_hours) * 3600.0)
    qs = qs.filter(late | stuck)
    total = qs.count()
    counts = {"result_overdue": qs.filter(late).count(), "in_transit_too_long": qs.filter(stuck).count()}
    # Per lab (the lab a tube is at, else the one its batch is addressed to; None: not sent anywhere yet), over all
    # overdue tubes, not only the listed ones.
    by_lab = {code: n for code, n in qs.annotate(lab_code=Coalesce(F("lab__code"), F("batch__lab__code")))
              .values_list("lab_code").annotate(n=models.Count("id")).order_by()}
    items = []
    for t in qs.select_related("site", "lab", "batch", "batch__lab", "campaign").order_by("opened_at", "id")[:limit]:
        reasons = []
        age = (now - t.opened_at).total_seconds() / 3600.0
        if t.target is not None and age > t.target:
            reasons.append("result_overdue")
        if t.status == TubeStatus.IN_TRANSIT and t.batch and t.batch.handed_over_at and \
                (now - t.batch.handed_over_at).total_seconds() > transit_hours * 3600:
            reasons.append("in_transit_too_long")
        lab = t.lab or (t.batch.lab if t.batch else None)
        items.append({
            "barcode": t.barcode, "status": t.status, "member_count": t.member_count, "region_code": t.region_code,
            "campaign": t.campaign.code if t.campaign else None, "site": t.site.code if t.site else None,
            "site_name": t.site.name if t.site else None, "lab": lab.code if lab else None,
            "batch": t.batch.code if t.batch else None, "courier": t.batch.courier if t.batch else "",
            "opened_at": t.opened_at, "sealed_at": t.sealed_at,
            "handed_over_at": t.batch.handed_over_at if t.batch else None, "received_at": t.received_at,
            "age_hours": round(age, 1), "target_hours": t.target, "reasons": reasons,
        })
    return {"total": total, "counts": counts, "by_lab": by_lab, "items": items, "transit_hours": transit_hours,
            "default_target_hours": default, "at": now}
