"""Reads for the lab side: the lab board (aggregates) and the pool-positive follow-up (person-level retest tasks).

The follow-up list names people (who is controlled in place, who still has to be swabbed door to door): its callers
need Perm.PERSON_VIEW and audit every read. The lab board is aggregate counts only, except its overdue list, which is
limited to the caller's region scope.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.db.models import Count, Min, Q, QuerySet, Sum

from jingkong.access.guard import Scope
from jingkong.analytics import turnaround as ta
from jingkong.core import clock
from jingkong.core.exceptions import ValidationFailed
from jingkong.testing.models import (
    BatchStatus,
    Lab,
    PersonTestState,
    RetestReason,
    RetestStatus,
    RetestTask,
    Tube,
    TubeResult,
    TubeStatus,
)
from jingkong.testing.selectors import db_id, region_filter, text_filter

OPEN_STATUSES = (RetestStatus.OPEN, RetestStatus.SAMPLED)


def _choice(value: str, allowed, field: str) -> str:
    if value and value not in allowed:
        raise ValidationFailed(f"{field}: unknown value {value!r}; one of {sorted(allowed)}", extra={"field": field})
    return value


# --- pool-positive follow-up -------------------------------------------------------------------------------------------


def retest_task_list(*, scope: Scope, region: str = "", status: str = "", reason: str = "",
                     campaign_id: int | None = None, building: str = "", open_only: bool = False) -> QuerySet:
    """Retest/resample tasks in the scope, with the person, their building and household, ordered for a door-to-door
    sweep (grid, building, unit, room)."""
    _choice(status, RetestStatus.values, "status")
    _choice(reason, RetestReason.values, "reason")
    text_filter(building, "building")
    qs = RetestTask.objects.filter(scope.q("region_code")).select_related(
        "person", "person__building", "person__household", "source_tube", "campaign")
    if region:
        region_filter(scope, region)
        qs = qs.filter(region_code__startswith=region)
    if status:
        qs = qs.filter(status=status)
    elif open_only:
        qs = qs.filter(status__in=OPEN_STATUSES)
    if reason:
        qs = qs.filter(reason=reason)
    if campaign_id:
        qs = qs.filter(campaign_id=campaign_id) if db_id(campaign_id) else qs.none()
    if building:
        qs = qs.filter(person__building__code=building)
    return qs.order_by("region_code", "person__building__code", "person__unit", "person__room", "person_id", "id")


def states_of(person_ids) -> dict[int, PersonTestState]:
    return {s.person_id: s for s in PersonTestState.objects.filter(person_id__in=list(person_ids))}


def followup_summary(*, scope: Scope, region: str = "", campaign_id: int | None = None) -> list[dict]:
    """Per grid: tasks by status and reason, and how many people are controlled in place (counts only)."""
    qs = RetestTask.objects.filter(scope.q("region_code"))
    states = PersonTestState.objects.filter(scope.q("region_code"), controlled_in_place=True)
    if region:
        region_filter(scope, region)
        qs = qs.filter(region_code__startswith=region)
        states = states.filter(region_code__startswith=region)
    if campaign_id:
        qs = qs.filter(campaign_id=campaign_id) if db_id(campaign_id) else qs.none()
    rows: dict[str, dict] = {}
    for r in qs.values("region_code", "reason", "status").annotate(n=Count("id")):
        g = rows.setdefault(r["region_code"], {"region_code": r["region_code"], "open": 0, "sampled": 0,
                                               "negative": 0, "positive": 0, "cancelled": 0, "pool_positive": 0,
                                               "invalid_tube": 0, "controlled": 0})
        g[r["status"]] += r["n"]
        g[r["reason"]] += r["n"]
    for r in states.values("region_code").annotate(n=Count("person_id")):
        g = rows.setdefault(r["region_code"], {"region_code": r["region_code"], "open": 0, "sampled": 0,
                                               "negative": 0, "positive": 0, "cancelled": 0, "pool_positive": 0,
                                               "invalid_tube": 0, "controlled": 0})
        g["controlled"] = r["n"]
    from jingkong.geo.models import Region

    names = dict(Region.objects.filter(code__in=list(rows)).values_list("code", "name"))
    return [{**v, "name": names.get(k, "")} for k, v in sorted(rows.items())]


# --- lab board ----------------------------------------------------------------------------------------------------------


def _local_midnight(now: dt.datetime) -> dt.datetime:
    zone = ZoneInfo(clock.local_time_zone())
    local = now.astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)


def board_scope(scope: Scope, actor, lab: Lab) -> Scope:
    """The scope of a lab board's tube lists (overdue): the lab's technicians see every tube at their lab."""
    from jingkong.access.guard import EVERYTHING
    from jingkong.testing.labs import works_for

    return EVERYTHING if works_for(actor, lab) else scope


def lab_board(*, lab: Lab, scope: Scope, now: dt.datetime | None = None, transit_hours: float = ta.DEFAULT_TRANSIT_HOURS,
              overdue_limit: int = 200) -> dict:
    """The lab's situation: receipts, backlog, throughput against capacity, outcomes, turnaround, overdue tubes."""
    now = now or clock.now()
    today = _local_midnight(now)
    hour_ago, day_ago = now - dt.timedelta(hours=1), now - dt.timedelta(hours=24)
    tubes = Tube.objects.filter(lab=lab)
    received = tubes.aggregate(
        today=Count("id", filter=Q(received_at__gte=today)),
        last_hour=Count("id", filter=Q(received_at__gte=hour_ago)),
    )
    backlog = tubes.filter(status=TubeStatus.RECEIVED).aggregate(
        tubes=Count("id"), swabs=Sum("member_count"), oldest_received=Min("received_at"), oldest_swab=Min("opened_at"))
    in_transit = Tube.objects.filter(batch__lab=lab, lab__isnull=True, status=TubeStatus.IN_TRANSIT).count()
    waiting_batches = lab.batches.filter(status__in=[BatchStatus.PACKED, BatchStatus.HANDED_OVER]).count()
    results = TubeResult.objects.filter(lab=lab)
    done = results.aggregate(
        last_hour=Count("id", filter=Q(recorded_at__gte=hour_ago)),
        last_24h=Count("id", filter=Q(recorded_at__gte=day_ago)),
        today=Count("id", filter=Q(recorded_at__gte=today)),
        negative=Count("id", filter=Q(recorded_at__gte=today, outcome="negative")),
        positive=Count("id", filter=Q(recorded_at__gte=today, outcome="positive")),
        invalid=Count("id", filter=Q(recorded_at__gte=today, outcome="invalid")),
    )
    capacity = lab.capacity_per_hour or 1
    backlog_tubes = backlog["tubes"] or 0
    from jingkong.access.guard import EVERYTHING

    return {
        "lab": {"id": lab.pk, "code": lab.code, "name": lab.name, "capacity_per_hour": lab.capacity_per_hour,
                "target_hours": lab.target_hours, "active": lab.active},
        "at": now,
        "received": {"today": received["today"], "last_hour": received["last_hour"]},
        "backlog": {"tubes": backlog_tubes, "swabs": backlog["swabs"] or 0,
                    "oldest_received_at": backlog["oldest_received"], "oldest_swab_at": backlog["oldest_swab"],
                    "hours_to_clear": round(backlog_tubes / capacity, 1)},
        "in_transit": {"tubes": in_transit, "batches_not_received": waiting_batches},
        "throughput": {"last_hour": done["last_hour"], "last_24h": done["last_24h"], "today": done["today"],
                       "capacity_per_hour": lab.capacity_per_hour,
                       "utilisation_last_hour": round(done["last_hour"] / capacity, 3),
                       "per_hour_last_24h": round(done["last_24h"] / 24.0, 1)},
        "outcomes_today": {"negative": done["negative"], "positive": done["positive"], "invalid": done["invalid"]},
        # The lab's turnaround over the last 24 hours of swabs (aggregates of all its tubes, whatever their region).
        "turnaround": ta.turnaround(scope=EVERYTHING, lab_id=lab.pk, since=day_ago)["overall"],
        # Barcodes and sites: only the caller's region.
        "overdue": ta.overdue(scope=scope, now=now, lab_id=lab.pk, transit_hours=transit_hours, limit=overdue_limit),
    }
