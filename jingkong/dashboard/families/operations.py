"""Operations figures of the one-screen dashboard: testing rounds, transfer and isolation, command work, checkpoints.

Four families (see :mod:`jingkong.dashboard.families`), each recomputed as a whole, set-based, from the apps' own
definitions so that a tile on the screen shows the number the app's own page shows:

* ``testing`` — coverage of the *current* rounds (:func:`current_campaigns`) from :mod:`jingkong.analytics.coverage`
  (the same SQL as the coverage pages, one pass per round), at the grid each person counts in; pool-positive people
  and pools awaiting their retest from the open retest tasks (:data:`jingkong.testing.followup.OPEN_STATUSES`).
* ``isolation`` — people grouped for transfer and not picked up, people on board, the oldest wait; rooms of the
  facilities by kind (the definitions of :mod:`jingkong.isolation.reserve`), the reserve forecast; active orders.
* ``command`` — leaf tasks of open directives with the roll-up's definitions (:mod:`jingkong.command.rollup`), open and
  overdue problems by category, open and overdue service requests by category.
* ``checkpoints`` — crossings per local day (Asia/Shanghai) and decision at the checkpoint's region.

Sampling scans write no per-scan event (the hot path), so the testing family also watches source marks — the
largest sample and tube-result ids — and refreshes when they move.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Count, DateField, F, Min, Q
from django.db.models.expressions import RawSQL

from jingkong.core import clock
from jingkong.dashboard.families import Family, Row, max_mark, register

# --- testing ----------------------------------------------------------------------------------------------------------

# A closed round stays on the screen this long after it was closed (its last results are still coming in, and the
# commander compares the new round with it).
CLOSED_ROUND_DAYS = 2


def current_campaigns(at: dt.datetime) -> list:
    """The rounds the screen shows: running ones, and those closed within the last :data:`CLOSED_ROUND_DAYS` days
    (``updated_at`` is the closing time of a closed round) that had started — a planned round closed before its start
    was cancelled and has nothing to show. Planned rounds are not current yet."""
    from jingkong.testing.models import Campaign, CampaignStatus

    since = at - dt.timedelta(days=CLOSED_ROUND_DAYS)
    return list(Campaign.objects.filter(
        Q(status=CampaignStatus.RUNNING)
        | Q(status=CampaignStatus.CLOSED, updated_at__gte=since, starts_at__lte=F("updated_at"))
    ).order_by("pk"))


def _round_rows(campaign) -> Iterator[Row]:
    """One round's coverage at the deepest region each person counts in (their grid; a person attached to a region
    without grids: that region), through the coverage module's own whole-campaign SQL."""
    from jingkong.access.guard import EVERYTHING
    from jingkong.analytics import coverage

    area = coverage.resolve_area(campaign, scope=EVERYTHING)
    key = str(campaign.pk)
    for row in coverage.area_rows(area, "grid"):
        # sampled = positive + pool_positive + resample + negative + pending (coverage's definitions); a result is
        # "in" for every state but pending (an invalid tube is a result: the person is to be swabbed again).
        values = {
            "round.target": row["target"],
            "round.sampled": row["sampled"],
            "round.reported": row["sampled"] - row["pending"],
            "round.positive": row["positive"] + row["pool_positive"],
        }
        for metric, value in values.items():
            if value:
                yield metric, key, row["code"], None, value


def _retest_rows() -> Iterator[Row]:
    """Pool positives still awaiting their single-tube retest: tasks to be sampled or sampled without a result (the
    follow-up list's "open"), people at their grid, pools at the tube's region."""
    from jingkong.testing.followup import OPEN_STATUSES
    from jingkong.testing.models import RetestReason, RetestTask

    waiting = RetestTask.objects.filter(reason=RetestReason.POOL_POSITIVE, status__in=OPEN_STATUSES)
    for r in waiting.values("region_code").annotate(n=Count("person_id", distinct=True)).order_by():
        yield "retest.persons_waiting", "", r["region_code"], None, r["n"]
    for r in (waiting.values("source_tube__region_code").annotate(n=Count("source_tube_id", distinct=True))
              .order_by()):
        yield "retest.pools_waiting", "", r["source_tube__region_code"], None, r["n"]


def compute_testing(at: dt.datetime) -> list[Row]:
    rows: list[Row] = []
    for campaign in current_campaigns(at):
        rows.extend(_round_rows(campaign))
    rows.extend(_retest_rows())
    return rows


def testing_marks() -> dict:
    """Swabs and results arrive without per-item events: the largest ids show that something was added."""
    from jingkong.testing.models import RetestTask, Sample, TubeResult

    return {
        "sample": max_mark(Sample),
        "result": max_mark(TubeResult),
        "retest": max_mark(RetestTask),
    }


register(Family(
    name="testing",
    triggers=("testing.campaign_", "testing.results_applied", "testing.pool_positive", "testing.tube_invalid",
              "testing.individual_positive", "testing.scans_recorded", "people.person_created",
              "people.person_updated", "people.imported"),
    compute=compute_testing,
    marks=testing_marks,
    # one coverage pass per current round takes about a second at a million persons: at most every 5 s
    min_interval=5.0,
))


# --- isolation --------------------------------------------------------------------------------------------------------


def _transfer_rows() -> Iterator[Row]:
    """People of live batches (not cancelled, not taken out): *waiting* — grouped for a vehicle and not yet picked up
    (batch waiting, planned or under way to them; a home batch is delivered at once and never waits); *en route* —
    picked up, not yet arrived. The oldest wait is the earliest grouping time (the batch's creation) per grid, as
    epoch seconds (agg ``min``; the screen shows now − it)."""
    from jingkong.isolation.models import BatchMember, BatchStatus

    live = BatchMember.objects.filter(removed_at__isnull=True).exclude(batch__status=BatchStatus.CANCELLED)
    waiting = live.filter(picked_up_at__isnull=True,
                          batch__status__in=[BatchStatus.WAITING, BatchStatus.PLANNED, BatchStatus.IN_TRANSIT])
    # people, not memberships: a person grouped into two live batches (re-grouped by hand, a batch split) is one
    # person waiting
    for r in (waiting.values("region_code").annotate(n=Count("person_id", distinct=True),
                                                     oldest=Min("batch__created_at")).order_by()):
        yield "transfer.waiting", "", r["region_code"], None, r["n"]
        yield "transfer.oldest_wait", "", r["region_code"], None, r["oldest"].timestamp()
    en_route = live.filter(picked_up_at__isnull=False, arrived_at__isnull=True)
    for r in en_route.values("region_code").annotate(n=Count("person_id", distinct=True)).order_by():
        yield "transfer.en_route", "", r["region_code"], None, r["n"]


def _facility_rows(at: dt.datetime) -> Iterator[Row]:
    """Rooms of active facilities by kind at the facility's region, as the reserve page counts them: rooms = usable
    rooms (not out of service), occupied and free by room state (reserved and cleaning rooms are neither). Reserve
    days: the forecast of :func:`jingkong.isolation.reserve.facility_capacity` for quarantine hotels and shelters
    (designated hospitals are not reserve), the smallest per region; no row where free beds do not run out (no net
    inflow, or no profile with a reserve section). Their free beds and net intake per day as additive rows, from
    which a region's own reserve days follow (free ÷ net, as the reserve board forecasts a district)."""
    from jingkong.isolation import reserve
    from jingkong.isolation.models import Facility, FacilityKind, Room, RoomState

    rows = (Room.objects.filter(facility__active=True).values("facility__region_code", "facility__kind")
            .annotate(rooms=Count("id", filter=~Q(state=RoomState.OUT_OF_SERVICE)),
                      occupied=Count("id", filter=Q(state=RoomState.OCCUPIED)),
                      free=Count("id", filter=Q(state=RoomState.FREE)))
            .order_by())
    for r in rows:
        for name in ("rooms", "occupied", "free"):
            if r[name]:
                yield f"facilities.{name}", r["facility__kind"], r["facility__region_code"], None, r[name]
    sites = Facility.objects.filter(active=True).exclude(kind=FacilityKind.DESIGNATED_HOSPITAL).order_by("pk")
    days: dict[str, float] = {}
    free: dict[str, float] = {}
    net: dict[str, float] = {}
    for c in reserve.facility_capacity(sites, at=at):
        if c.days_left is not None:
            days[c.region_code] = min(days.get(c.region_code, c.days_left), c.days_left)
        # The region's own forecast needs its totals: the smallest facility forecast is the first site to fill, and
        # would tell the commander "1 day left" for a district whose reserve lasts a week.
        free[c.region_code] = free.get(c.region_code, 0) + c.free_beds
        net[c.region_code] = net.get(c.region_code, 0.0) + c.net_per_day
    for code, value in days.items():
        yield "facilities.reserve_days", "", code, None, value
    for code in free:
        if free[code]:
            yield "facilities.reserve_free_beds", "", code, None, free[code]
        if net[code]:
            yield "facilities.reserve_net_per_day", "", code, None, round(net[code], 4)


def _order_rows() -> Iterator[Row]:
    """People under an active isolation order by stage (the order's mode: centralised, home quarantine, home health
    monitoring, hospital) at the person's grid (the order's region code)."""
    from jingkong.isolation.models import IsolationOrder, OrderStatus

    for r in (IsolationOrder.objects.filter(status=OrderStatus.ACTIVE).values("region_code", "mode")
              .annotate(n=Count("id")).order_by()):
        yield "isolation.active", r["mode"], r["region_code"], None, r["n"]


def compute_isolation(at: dt.datetime) -> list[Row]:
    return [*_transfer_rows(), *_facility_rows(at), *_order_rows()]


def isolation_marks() -> dict:
    """Bulk writers (grouping, assignment, orders) emit events, but loaders may not: the largest ids as a backstop."""
    from jingkong.isolation.models import BatchMember, IsolationOrder, RoomStay

    return {
        "member": max_mark(BatchMember),
        "stay": max_mark(RoomStay),
        "order": max_mark(IsolationOrder),
    }


register(Family(
    name="isolation",
    triggers=("isolation.grouped", "isolation.transfer", "isolation.picked_up", "isolation.arrived",
              "isolation.member_removed", "isolation.order_", "isolation.rooms_", "isolation.room_state_changed",
              "isolation.checked_out", "isolation.facility_"),
    compute=compute_isolation,
    marks=isolation_marks,
))


# --- command ----------------------------------------------------------------------------------------------------------


def _task_rows(at: dt.datetime) -> Iterator[Row]:
    """Leaf tasks (where the work is: a directive's grid tasks) of open directives, counted with the roll-up's own
    query — tasks = not cancelled, done, overdue = open and past the deadline — at the task's own region."""
    from jingkong.access.guard import EVERYTHING
    from jingkong.command import rollup
    from jingkong.command.models import DirectiveStatus, Task

    qs = rollup.leaf_tasks(EVERYTHING).filter(directive__status=DirectiveStatus.OPEN)
    length = Task._meta.get_field("region_code").max_length  # the whole code: the deepest region
    for code, counts in rollup.task_counts(qs, length, at).items():
        for metric, field in (("tasks.total", "tasks"), ("tasks.done", "done"), ("tasks.overdue", "overdue")):
            if counts[field]:
                yield metric, "", code, None, counts[field]


def _problem_rows(at: dt.datetime) -> Iterator[Row]:
    """Problems open (open or in progress, the roll-up's definition) and overdue (open, past the deadline) by
    category, at the problem's region."""
    from jingkong.command import rules
    from jingkong.command.models import Problem

    open_q = Q(status__in=rules.OPEN_PROBLEM)
    for r in (Problem.objects.filter(open_q).values("region_code", "category")
              .annotate(n=Count("id"), overdue=Count("id", filter=Q(deadline__lt=at))).order_by()):
        yield "problems.open", r["category"], r["region_code"], None, r["n"]
        if r["overdue"]:
            yield "problems.overdue", r["category"], r["region_code"], None, r["overdue"]


def _service_rows(at: dt.datetime) -> Iterator[Row]:
    """Service requests open (submitted, assigned, on the way — delivered ones await the resident's confirmation and
    are no longer open) and overdue (open, past the deadline), as the services queue counts them, by category at the
    resident's grid."""
    from jingkong.command import service_rules
    from jingkong.command.models import ServiceRequest

    for r in (ServiceRequest.objects.filter(status__in=service_rules.OPEN_STATUSES).values("region_code", "category")
              .annotate(n=Count("id"), overdue=Count("id", filter=Q(deadline__lt=at))).order_by()):
        yield "services.open", r["category"], r["region_code"], None, r["n"]
        if r["overdue"]:
            yield "services.overdue", r["category"], r["region_code"], None, r["overdue"]


def compute_command(at: dt.datetime) -> list[Row]:
    return [*_task_rows(at), *_problem_rows(at), *_service_rows(at)]


register(Family(
    name="command",
    triggers=("command.directive_", "command.task", "command.problem_", "command.service_",
              "command.escort_requested"),
    compute=compute_command,
    # Items become overdue when a deadline passes, which no event announces: refresh at least every minute.
    max_age=60.0,
))


# --- checkpoints ------------------------------------------------------------------------------------------------------

# Local days of crossings kept as figures (today and the days before): the screen shows today; the alert feed and a
# week's trend look back a little. Older crossings stay on the checkpoint pages.
CROSSING_DAYS = 60


def compute_checkpoints(at: dt.datetime) -> list[Row]:
    """Crossings per local day at the checkpoint's region (``Crossing.region_code``, the region the checkpoint pages
    scope by): all of them, denied, referred to a fever clinic."""
    from jingkong.codes.models import Crossing, Decision

    tz = ZoneInfo(clock.local_time_zone())
    first = at.astimezone(tz).date() - dt.timedelta(days=CROSSING_DAYS - 1)
    since = dt.datetime.combine(first, dt.time(), tzinfo=tz).astimezone(dt.UTC)
    from jingkong.dashboard.families.situation import _day

    # the local day in SQL (SQLite's built-in date() at the zone's offset: TruncDate runs a Python function per row)
    day_sql, day_params = _day(f"{connection.ops.quote_name(Crossing._meta.db_table)}.{connection.ops.quote_name('at')}")
    rows: list[Row] = []
    for r in (Crossing.objects.filter(at__gte=since)
              .annotate(day=RawSQL(day_sql, day_params, output_field=DateField()))
              .values("region_code", "day")
              .annotate(total=Count("id"), denied=Count("id", filter=Q(decision=Decision.DENY)),
                        referred=Count("id", filter=Q(decision=Decision.REFER)))
              .order_by()):
        for name in ("total", "denied", "referred"):
            if r[name]:
                rows.append((f"crossings.{name}", "", r["region_code"], r["day"], r[name]))
    return rows


def checkpoints_marks() -> dict:
    from jingkong.codes.models import Crossing

    return {"crossing": max_mark(Crossing)}


register(Family(
    name="checkpoints",
    triggers=("codes.crossing_recorded", "codes.crossings_synced", "codes.checkpoint_"),
    compute=compute_checkpoints,
    marks=checkpoints_marks,
))
