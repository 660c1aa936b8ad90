"""Reads of the checkpoints area, scoped by region: checkpoints (a checkpoint officer: the ones they staff), hourly
counts and denials per checkpoint, recent crossings, passes, fever-clinic referrals."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncHour

from jingkong.access.guard import Scope
from jingkong.access.roles import Role
from jingkong.codes.models import Checkpoint, Crossing, Decision, FeverReferral, Pass
from jingkong.core import clock

MAX_HOURS = 24 * 31
EARLIEST_DAY, LATEST_DAY = dt.date(2000, 1, 1), dt.date(2100, 12, 31)  # a day outside is a typing error


def _tz() -> ZoneInfo:
    return ZoneInfo(clock.local_time_zone())


def checkpoint_list(*, scope: Scope, actor=None, kind: str = "", active: bool | None = None,
                    q: str = "") -> QuerySet[Checkpoint]:
    qs = Checkpoint.objects.filter(scope.q("region_code")).select_related("zone").order_by("code")
    if getattr(actor, "role", None) == Role.CHECKPOINT_OFFICER:
        qs = qs.filter(staff=actor)
    if kind:
        qs = qs.filter(kind=kind)
    if active is not None:
        qs = qs.filter(active=active)
    if q:
        qs = qs.filter(Q(code__icontains=q) | Q(name__icontains=q))
    return qs


def day_window(day: dt.date | None = None, *, hours: int = 24) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a local day (default today), or the last ``hours`` hours up to now when no day is given."""
    if day is None:
        end = clock.now()
        return end - dt.timedelta(hours=min(max(hours, 1), MAX_HOURS)), end
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        from django.utils.translation import gettext as _

        from jingkong.core.exceptions import ValidationFailed

        raise ValidationFailed(_("day: between %(lo)s and %(hi)s") % {"lo": EARLIEST_DAY, "hi": LATEST_DAY},
                               extra={"field": "day"})
    start = dt.datetime.combine(day, dt.time(), tzinfo=_tz())
    return start.astimezone(dt.UTC), (start + dt.timedelta(days=1)).astimezone(dt.UTC)


def hourly(*, scope: Scope, start: dt.datetime, end: dt.datetime, checkpoint: Checkpoint | None = None,
           actor=None) -> list[dict]:
    """Crossings per checkpoint per local hour: total, allowed, referred, denied, vehicles, offline."""
    qs = Crossing.objects.filter(scope.q("region_code"), at__gte=start, at__lt=end)
    if checkpoint is not None:
        qs = qs.filter(checkpoint=checkpoint)
    elif getattr(actor, "role", None) == Role.CHECKPOINT_OFFICER:
        qs = qs.filter(checkpoint__staff=actor)
    rows = (qs.annotate(hour=TruncHour("at", tzinfo=_tz()))
            .values("checkpoint__code", "checkpoint__name", "hour")
            .annotate(total=Count("id"),
                      allowed=Count("id", filter=Q(decision=Decision.ALLOW)),
                      referred=Count("id", filter=Q(decision=Decision.REFER)),
                      denied=Count("id", filter=Q(decision=Decision.DENY)),
                      vehicles=Count("id", filter=Q(subject="vehicle")),
                      offline=Count("id", filter=Q(offline=True)))
            .order_by("checkpoint__code", "hour"))
    return [{"checkpoint": r["checkpoint__code"], "name": r["checkpoint__name"],
             "hour": r["hour"].astimezone(_tz()) if r["hour"].tzinfo else r["hour"].replace(tzinfo=_tz()),
             "total": r["total"], "allowed": r["allowed"], "referred": r["referred"], "denied": r["denied"],
             "vehicles": r["vehicles"], "offline": r["offline"]} for r in rows]


def totals(rows: list[dict]) -> dict:
    out = {"total": 0, "allowed": 0, "referred": 0, "denied": 0, "vehicles": 0, "offline": 0}
    for r in rows:
        for k in out:
            out[k] += r[k]
    return out


def denial_reasons(*, scope: Scope, start: dt.datetime, end: dt.datetime, checkpoint: Checkpoint) -> list[tuple[str, int]]:
    """How often each reason code led to a denial (most frequent first)."""
    counts: dict[str, int] = {}
    for reasons in Crossing.objects.filter(scope.q("region_code"), checkpoint=checkpoint, at__gte=start, at__lt=end,
                                           decision=Decision.DENY).values_list("reasons", flat=True).iterator():
        for r in reasons or []:
            if isinstance(r, dict) and r.get("verdict") == "deny" and not r.get("waived"):
                counts[r.get("code", "")] = counts.get(r.get("code", ""), 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def recent_crossings(*, scope: Scope, checkpoint: Checkpoint, decision: str = "", limit: int = 50) -> QuerySet:
    qs = (Crossing.objects.filter(scope.q("region_code"), checkpoint=checkpoint)
          .select_related("pass_used").order_by("-at", "-id"))
    if decision:
        qs = qs.filter(decision=decision)
    return qs[: max(1, min(limit, 500))]


def pass_list(*, scope: Scope, plate: str = "", kind: str = "", status: str = "", at: dt.datetime | None = None
              ) -> QuerySet[Pass]:
    """Passes issued in the scope; ``status``: valid (now), revoked, expired, or any."""
    at = at or clock.now()
    qs = Pass.objects.filter(scope.q("region_code")).order_by("-valid_from", "number")
    if plate:
        from jingkong.codes.checkpoints import normalize_plate

        qs = qs.filter(plate__startswith=normalize_plate(plate))
    if kind:
        qs = qs.filter(kind=kind)
    if status == "valid":
        qs = qs.filter(revoked_at__isnull=True, valid_from__lte=at, valid_until__gt=at)
    elif status == "revoked":
        qs = qs.filter(revoked_at__isnull=False)
    elif status == "expired":
        qs = qs.filter(revoked_at__isnull=True, valid_until__lte=at)
    return qs


def pass_state(p: Pass, at: dt.datetime | None = None) -> str:
    at = at or clock.now()
    if p.revoked_at is not None:
        return "revoked"
    if at < p.valid_from:
        return "not_yet_valid"
    if at >= p.valid_until:
        return "expired"
    return "valid"


def referral_list(*, scope: Scope, status: str = "", venue: str = "") -> QuerySet[FeverReferral]:
    """Fever-clinic referrals of people living in the scope (by the person's grid), newest first."""
    qs = (FeverReferral.objects.filter(scope.q("region_code")).select_related("person", "venue", "checkpoint")
          .order_by("-measured_at", "-id"))
    if status:
        qs = qs.filter(status=status)
    if venue:
        qs = qs.filter(venue__code=venue)
    return qs
