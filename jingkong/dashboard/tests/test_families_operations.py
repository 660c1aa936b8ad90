"""The operations families (testing, isolation, command, checkpoints): their figures equal the counts the apps' own
pages and selectors give (or the fixture's hand count), a region's additive figure is the sum of its drill-down,
a recompute is idempotent, and ``run_pending`` notices a change — an event, or a source mark for writes without
events — once ``min_interval`` has passed, and not before."""

from __future__ import annotations

import datetime as dt

import pytest

from jingkong.access.guard import EVERYTHING, Scope
from jingkong.conftest import T0
from jingkong.core import clock
from jingkong.dashboard import refresher
from jingkong.dashboard.families import operations
from jingkong.dashboard.models import Figure, RefreshState
from jingkong.dashboard.tests import factories_operations as ops
from jingkong.dashboard.tests.factories_operations import backdate, by_region, figures, past_min_interval, total

pytestmark = pytest.mark.django_db

STREETS = ("street_a", "street_b")


@pytest.fixture(autouse=True)
def _fresh_policy_cache():
    from jingkong.command import problems
    from jingkong.policy.selectors import active_profile_cache_clear

    active_profile_cache_clear()
    problems.locator_reset()
    yield
    active_profile_cache_clear()
    problems.locator_reset()


def _district_is_sum_of_streets(figs, regions, metric, **kw):
    district = total(figs, metric, regions["district"].code, **kw)
    assert district == sum(total(figs, metric, regions[s].code, **kw) for s in STREETS), metric
    return district


# --- testing ----------------------------------------------------------------------------------------------------------


def test_round_figures_are_the_coverage_of_each_grid_and_region(regions):
    from jingkong.analytics import coverage
    from jingkong.testing.tests import coverage_helpers as cov

    with clock.frozen(T0 + dt.timedelta(hours=2)) as now:
        world = cov.make_round(regions)
        refresher.refresh_family("testing", at=now)
    figs = figures("testing")
    campaign = world["campaign"]
    key = str(campaign.pk)
    # per grid: the coverage tests' hand count
    for grid, exp in cov.EXPECTED.items():
        assert total(figs, "round.target", grid, key=key) == exp["target"]
        assert total(figs, "round.sampled", grid, key=key) == exp["sampled"]
        assert total(figs, "round.reported", grid, key=key) == exp["sampled"] - exp["pending"]
        assert total(figs, "round.positive", grid, key=key) == exp["positive"] + exp["pool_positive"]
    # every region: what the coverage page says for it; the district is the sum of its streets
    for name in ("district", "street_a", "street_b", "community_a", "grid_b2"):
        s = coverage.coverage_summary(campaign, scope=EVERYTHING, region=regions[name].code)
        code = regions[name].code
        assert total(figs, "round.target", code, key=key) == s["target"], name
        assert total(figs, "round.sampled", code, key=key) == s["sampled"], name
        assert total(figs, "round.reported", code, key=key) == s["sampled"] - s["pending"], name
        assert total(figs, "round.positive", code, key=key) == s["positive"] + s["pool_positive"], name
    for metric in ("round.target", "round.sampled", "round.reported", "round.positive"):
        _district_is_sum_of_streets(figs, regions, metric, key=key)
    # only the deepest regions carry rows (grids here), never a region above its own people
    assert {code for (m, _k, code, _d) in figs if m.startswith("round.")} <= {
        regions[g].code for g in ("grid_a1", "grid_a2", "grid_b1", "grid_b2")}


def test_retest_waiting_counts_the_open_pool_positive_follow_up(regions):
    from jingkong.testing import followup
    from jingkong.testing.tests import coverage_helpers as cov

    with clock.frozen(T0 + dt.timedelta(hours=2)) as now:
        world = cov.make_round(regions)
        # a second positive pool: one member's retest swab taken (no result yet), one already negative
        p = world["persons"]
        t7 = cov.tube(world["campaign"], [p["b1_1"], p["b1_3"]], outcome="positive")
        cov.retest(world["campaign"], p["b1_1"], t7, "sampled")
        cov.retest(world["campaign"], p["b1_3"], t7, "negative")
        refresher.refresh_family("testing", at=now)
    figs = figures("testing")
    tasks = list(followup.retest_task_list(scope=EVERYTHING, reason="pool_positive", open_only=True))
    persons: dict[str, set] = {}
    for t in tasks:
        persons.setdefault(t.region_code, set()).add(t.person_id)
    assert by_region(figs, "retest.persons_waiting") == {code: len(ids) for code, ids in persons.items()}
    assert total(figs, "retest.persons_waiting") == 2  # a2_2 (retest open) and b1_1 (swab taken, no result)
    pools: dict[str, set] = {}
    for t in tasks:
        pools.setdefault(t.source_tube.region_code, set()).add(t.source_tube_id)
    assert by_region(figs, "retest.pools_waiting") == {code: len(ids) for code, ids in pools.items()}
    assert total(figs, "retest.pools_waiting") == 2  # T3 and T7
    _district_is_sum_of_streets(figs, regions, "retest.persons_waiting")


def test_only_current_rounds_are_shown(regions):
    from jingkong.testing.models import Campaign
    from jingkong.testing.tests import coverage_helpers as cov

    now = T0 + dt.timedelta(days=5)
    with clock.frozen(now):
        cov.person(regions["grid_a1"], "x")
        running = cov.campaign(regions["district"])
        closed_yesterday = cov.campaign(regions["district"])
        closed_long_ago = cov.campaign(regions["district"])
        planned = cov.campaign(regions["street_a"])
        cancelled = cov.campaign(regions["street_a"])  # closed before it started
        day = dt.timedelta(days=1)
        Campaign.objects.filter(pk=closed_yesterday.pk).update(status="closed", updated_at=now - day)
        Campaign.objects.filter(pk=closed_long_ago.pk).update(status="closed", updated_at=now - 3 * day)
        Campaign.objects.filter(pk=planned.pk).update(status="planned")
        Campaign.objects.filter(pk=cancelled.pk).update(status="closed", starts_at=now + day, deadline=now + 2 * day,
                                                        updated_at=now - dt.timedelta(hours=1))
        assert [c.pk for c in operations.current_campaigns(now)] == [running.pk, closed_yesterday.pk]
        refresher.refresh_family("testing", at=now)
    keys = {k for (m, k, _c, _d) in figures("testing") if m == "round.target"}
    assert keys == {str(running.pk), str(closed_yesterday.pk)}


def test_testing_rerun_is_idempotent_and_a_swab_without_event_is_noticed_by_the_marks(regions):
    from jingkong.testing.tests import coverage_helpers as cov

    with clock.frozen(T0 + dt.timedelta(hours=2)) as now:
        world = cov.make_round(regions)
        refresher.refresh_family("testing", at=now)
        first = figures("testing")
        version = RefreshState.objects.get(family="testing").version
        refresher.refresh_family("testing", at=now)
        assert figures("testing") == first and Figure.objects.filter(family="testing").count() == len(first)
        assert RefreshState.objects.get(family="testing").version == version + 1
        backdate("testing", 60)
        assert refresher.run_pending(only=["testing"]) == []  # nothing changed: not recomputed

        a1 = regions["grid_a1"].code
        key = str(world["campaign"].pk)
        refresher.refresh_family("testing", at=now)
        cov.tube(world["campaign"], [world["persons"]["a1_8"]])  # a swab the way the hot path writes it: no event
        assert refresher.run_pending(only=["testing"]) == []  # within min_interval (5 s)
        assert total(figures("testing"), "round.sampled", a1, key=key) == cov.EXPECTED[a1]["sampled"]
        past_min_interval("testing")
        assert refresher.run_pending(only=["testing"]) == ["testing"]
    assert total(figures("testing"), "round.sampled", a1, key=key) == cov.EXPECTED[a1]["sampled"] + 1


# --- isolation --------------------------------------------------------------------------------------------------------

NOW = dt.datetime(2022, 1, 5, 4, 0, tzinfo=dt.UTC)  # 12:00 in Shanghai


def test_transfer_waiting_en_route_and_oldest_wait(regions):
    with clock.frozen(NOW):
        expected = ops.transfer_world(regions, NOW)
        refresher.refresh_family("isolation", at=NOW)
    figs = figures("isolation")
    assert by_region(figs, "transfer.waiting") == expected["waiting"]
    assert by_region(figs, "transfer.en_route") == expected["en_route"]
    assert by_region(figs, "transfer.oldest_wait") == pytest.approx(expected["oldest"])
    for metric in ("transfer.waiting", "transfer.en_route"):
        _district_is_sum_of_streets(figs, regions, metric)


def test_a_person_in_two_live_batches_waits_once(regions):
    """Memberships are not people: one person grouped into two waiting batches, and one on board two vehicles' lists,
    count once each; the cancelled batch's member not at all."""
    g = regions["grid_a1"]
    h = dt.timedelta(hours=1)
    with clock.frozen(NOW):
        twice, other, aboard = ops.person(g), ops.person(g), ops.person(g)
        ops.batch(g, "waiting", created_at=NOW - 2 * h, members=[(twice, None, None, None), (other, None, None, None)])
        ops.batch(g, "planned", created_at=NOW - h, members=[(twice, None, None, None)])
        ops.batch(g, "cancelled", created_at=NOW - 3 * h, members=[(other, None, None, None)])
        ops.batch(g, "in_transit", created_at=NOW - h, members=[(aboard, NOW - h / 2, None, None)])
        ops.batch(g, "in_transit", created_at=NOW - h, members=[(aboard, NOW - h / 4, None, None)])
        refresher.refresh_family("isolation", at=NOW)
    figs = figures("isolation")
    assert by_region(figs, "transfer.waiting") == {g.code: 2}
    assert by_region(figs, "transfer.en_route") == {g.code: 1}
    assert by_region(figs, "transfer.oldest_wait") == {g.code: (NOW - 2 * h).timestamp()}


def test_facility_rooms_reserve_days_and_active_orders(regions):
    from jingkong.isolation import reserve
    from jingkong.tracing.tests.helpers import activate

    a, b = regions["street_a"].code, regions["street_b"].code
    with clock.frozen(NOW):
        activate()  # the 2021 profile: arrivals averaged over 3 days
        hotel = ops.facility(a, {"free": 5, "occupied": 3, "reserved": 1, "cleaning": 1, "out_of_service": 2})
        shelter = ops.facility(regions["community_a"].code, {"free": 2, "occupied": 1}, kind="shelter")
        ops.facility(b, {"free": 1, "occupied": 2}, kind="designated_hospital")
        ops.facility(b, {"free": 10}, active=False)
        h = dt.timedelta(hours=1)
        for i in range(3):  # 1 arrival a day at the hotel: 5 free beds last 5 days
            ops.stay(hotel, ops.person(regions["grid_a1"]), checked_in_at=NOW - (10 + 20 * i) * h)
        for i in range(6):  # 2 a day at the shelter: 2 free beds last 1 day
            ops.stay(shelter, ops.person(regions["grid_a1"]), checked_in_at=NOW - (5 + 10 * i) * h)
        people = [ops.person(regions[g]) for g in ("grid_a1", "grid_a1", "grid_b1", "grid_a2", "grid_a2")]
        ops.order(people[0], "central")
        ops.order(people[1], "central")
        ops.order(people[2], "home_quarantine")
        ops.order(people[3], "central", status="released")
        ops.order(people[4], "hospital", status="cancelled")
        refresher.refresh_family("isolation", at=NOW)
        capacity = {c.region_code: c for c in reserve.facility_capacity([hotel, shelter], at=NOW)}
    figs = figures("isolation")
    community_a = regions["community_a"].code
    assert {(k, code): v for (m, k, code, _d), v in figs.items() if m == "facilities.rooms"} == {
        ("quarantine_hotel", a): 10, ("shelter", community_a): 3, ("designated_hospital", b): 3}
    assert {(k, code): v for (m, k, code, _d), v in figs.items() if m == "facilities.occupied"} == {
        ("quarantine_hotel", a): 3, ("shelter", community_a): 1, ("designated_hospital", b): 2}
    assert {(k, code): v for (m, k, code, _d), v in figs.items() if m == "facilities.free"} == {
        ("quarantine_hotel", a): 5, ("shelter", community_a): 2, ("designated_hospital", b): 1}
    # the reserve page's own numbers
    assert capacity[a].usable_rooms == 10 and capacity[a].free_rooms == 5 and capacity[a].occupied_rooms == 3
    # reserve days: the forecast of each hotel/shelter, no hospital; a street reads the smallest under it
    assert by_region(figs, "facilities.reserve_days") == {a: capacity[a].days_left,
                                                          community_a: capacity[community_a].days_left}
    assert (capacity[a].days_left, capacity[community_a].days_left) == (5.0, 1.0)
    assert min(v for (m, _k, code, _d), v in figs.items()
               if m == "facilities.reserve_days" and code.startswith(a)) == 1.0
    assert {(k, code): v for (m, k, code, _d), v in figs.items() if m == "isolation.active"} == {
        ("central", regions["grid_a1"].code): 2, ("home_quarantine", regions["grid_b1"].code): 1}
    _district_is_sum_of_streets(figs, regions, "facilities.rooms")


def test_a_regions_reserve_days_are_its_own_forecast_not_its_first_facility_to_fill(regions):
    """A hotel with many free beds and a shelter about to fill: the district's reserve lasts as long as the reserve
    board's district forecast says (all free beds ÷ the net intake of all), not the shelter's single day."""
    from jingkong.isolation import reserve
    from jingkong.isolation.models import Facility
    from jingkong.tracing.tests.helpers import activate

    district, a, b = regions["district"].code, regions["street_a"].code, regions["street_b"].code
    with clock.frozen(NOW):
        activate()  # the 2021 profile: arrivals averaged over 3 days
        hotel = ops.facility(a, {"free": 12, "occupied": 3})
        shelter = ops.facility(regions["community_b"].code, {"free": 2, "occupied": 1}, kind="shelter")
        ops.facility(b, {"free": 40}, kind="designated_hospital")  # not reserve
        h = dt.timedelta(hours=1)
        for i in range(3):  # 1 a day at the hotel
            ops.stay(hotel, ops.person(regions["grid_a1"]), checked_in_at=NOW - (10 + 20 * i) * h)
        for i in range(6):  # 2 a day at the shelter
            ops.stay(shelter, ops.person(regions["grid_b1"]), checked_in_at=NOW - (5 + 10 * i) * h)
        refresher.refresh_family("isolation", at=NOW)
        board = reserve.district_capacity(district, facilities=Facility.objects.all(), at=NOW)
        streets = {s: reserve.district_capacity(s, facilities=Facility.objects.all(), at=NOW) for s in (a, b)}
    figs = figures("isolation")

    def days(code):
        free = total(figs, "facilities.reserve_free_beds", code)
        net = total(figs, "facilities.reserve_net_per_day", code)
        return round(free / net, 1) if net > 0 else None

    assert board.days_left is not None
    assert days(district) == board.days_left
    assert total(figs, "facilities.reserve_free_beds", district) == board.free_beds
    for code, capacity in streets.items():
        assert days(code) == capacity.days_left
    # the first facility to fill is a different, smaller number: the metric the district tile must not show
    first_to_fill = min(v for (m, _k, _c, _d), v in figs.items() if m == "facilities.reserve_days")
    assert first_to_fill < board.days_left
    _district_is_sum_of_streets(figs, regions, "facilities.reserve_free_beds")


def test_grouping_through_the_service_is_picked_up_after_min_interval(regions):
    from jingkong.access.guard import scope_of
    from jingkong.conftest import make_user
    from jingkong.isolation import grouping
    from jingkong.isolation.models import BatchMember, TransferBatch
    from jingkong.isolation.tests.transfer_world import NOW as TW_NOW
    from jingkong.isolation.tests.transfer_world import TransferWorld, activate

    dispatcher = make_user("dispatcher_a", "transfer_dispatcher", regions["street_a"])
    with clock.frozen(TW_NOW):
        activate()
        world = TransferWorld(regions)
        refresher.refresh_family("isolation")
        assert total(figures("isolation"), "transfer.waiting") == 0
        world.contact(world.person("甲", household="H1"))
        world.contact(world.person("乙", household="H1"))
        world.contact(world.person("丙", building="B2"), tier="secondary")
        out = grouping.group_waiting(actor=dispatcher, scope=scope_of(dispatcher))
        assert out["people"] == 3
        assert refresher.run_pending(only=["isolation"]) == []  # refreshed a moment ago
        past_min_interval("isolation")
        assert refresher.run_pending(only=["isolation"]) == ["isolation"]
    figs = figures("isolation")
    # counted another way: the people of the batches still waiting for a vehicle
    waiting_people = sum(TransferBatch.objects.filter(status="waiting").values_list("size", flat=True))
    assert total(figs, "transfer.waiting") == waiting_people == BatchMember.objects.count() == 3
    grouped_at = min(TransferBatch.objects.values_list("created_at", flat=True))
    assert min(by_region(figs, "transfer.oldest_wait").values()) == grouped_at.timestamp()


def test_a_room_taken_out_of_service_is_picked_up_through_its_event(regions, commander):
    from jingkong.isolation import facilities
    from jingkong.isolation.models import Room

    street_a = regions["street_a"].code
    with clock.frozen(NOW):
        hotel = ops.facility(street_a, {"free": 4})
        refresher.refresh_family("isolation", at=NOW)
        marks = RefreshState.objects.get(family="isolation").marks
        facilities.room_state_set(actor=commander, room=Room.objects.filter(facility=hotel).first(),
                                  state="out_of_service")
        past_min_interval("isolation")
        assert operations.isolation_marks().items() <= marks.items()  # no id moved: the event alone tells
        assert refresher.run_pending(only=["isolation"]) == ["isolation"]
    figs = figures("isolation")
    usable = Room.objects.filter(facility=hotel).exclude(state="out_of_service").count()
    assert total(figs, "facilities.rooms", street_a) == usable == 3
    assert total(figs, "facilities.free", street_a) == Room.objects.filter(facility=hotel, state="free").count()


# --- command ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def busy(regions, commander, officer_a):
    """Directives (one open and due in an hour, one open for two days, one cancelled), automatic tasks (no
    directive), problems of two categories, service requests open / overdue / delivered / cancelled."""
    from jingkong.command import problems, requests
    from jingkong.command import tasks as svc
    from jingkong.command.directives import directive_cancel
    from jingkong.command.models import ServiceRequest, Task
    from jingkong.command.services import create_auto_tasks
    from jingkong.command.tests.directive_helpers import activate_policy, issue, make_worker
    from jingkong.command.tests.test_services_fixtures import make_resident

    with clock.frozen(T0):
        activate_policy(regions)
        make_worker(regions["grid_a1"])
        d1 = issue(commander, [regions["district"].code], hours=1)
        d2 = issue(officer_a, [regions["community_a"].code], hours=48)
        d3 = issue(commander, [regions["street_b"].code], hours=24, title="取消的指令")
        directive_cancel(actor=commander, directive=d3, reason="重复")
        create_auto_tasks("deliver", [{"source_key": f"k{i}", "region_code": regions[g].code}
                                      for i, g in enumerate(["grid_a1", "grid_b2"])])
        for g in ("grid_a1", "grid_b2"):
            svc.task_report(actor=commander, task=Task.objects.get(directive=d1, region_code=regions[g].code),
                            status="done", count=3)
        svc.task_report(actor=commander, task=Task.objects.get(directive=d2, region_code=regions["grid_a2"].code),
                        status="in_progress", count=1)
        for where, category in (("grid_a1", "other"), ("grid_b1", "other"), ("grid_b1", "queue_too_long")):
            problems.problem_report(actor=commander, scope=EVERYTHING, category=category, urgency="urgent",
                                    description="x", region_code=regions[where].code)
        problems.problem_report(actor=commander, scope=EVERYTHING, category="data_error", urgency="normal",
                                description="x", region_code=regions["street_b"].code)
        made = []
        for grid, category in (("grid_a1", "food"), ("grid_a1", "medicine"), ("grid_a1", "food"),
                               ("grid_b1", "food"), ("grid_b2", "garbage")):
            p, _number = make_resident(regions[grid])
            made.append(requests.request_submit(person=p, category=category, at=T0)[0])
        requests.request_status(actor=commander, req=made[0], status="delivered")
        requests.request_status(actor=commander, req=made[4], status="cancelled", note="不需要了")
    # two open requests past their deadline at ``later``, one not due for a long time
    ServiceRequest.objects.filter(pk__in=[made[1].pk, made[2].pk]).update(deadline=T0 + dt.timedelta(hours=1))
    ServiceRequest.objects.filter(pk=made[3].pk).update(deadline=T0 + dt.timedelta(days=30))
    return {"open_directives": [d1, d2], "later": T0 + dt.timedelta(hours=6)}


def test_command_figures_agree_with_the_rollup_and_the_services_queue(regions, busy):
    from jingkong.command import rollup
    from jingkong.command.selectors_services import request_counts

    later = busy["later"]
    with clock.frozen(later):
        refresher.refresh_family("command", at=later)
    figs = figures("command")
    for name in ("district", *STREETS, "community_a", "grid_a1", "grid_b2"):
        code = regions[name].code
        expected = {"tasks": 0, "done": 0, "overdue": 0}
        for d in busy["open_directives"]:
            t = rollup.rollup(scope=EVERYTHING, region=code, directive_id=d.pk, now=later)["totals"]
            for f in expected:
                expected[f] += t[f]
        assert (total(figs, "tasks.total", code), total(figs, "tasks.done", code),
                total(figs, "tasks.overdue", code)) == (expected["tasks"], expected["done"], expected["overdue"]), name
        everything = rollup.rollup(scope=EVERYTHING, region=code, now=later)["totals"]
        assert total(figs, "problems.open", code) == everything["problems_open"], name
        assert total(figs, "problems.overdue", code) == everything["problems_overdue"], name
        services = request_counts(scope=EVERYTHING, region=code, open_only=True, now=later)
        assert total(figs, "services.open", code) == services["total"], name
        assert total(figs, "services.overdue", code) == services["overdue"], name
    district = regions["district"].code
    # the directive due in an hour is overdue for its grids not done; the cancelled directive counts nowhere
    assert total(figs, "tasks.total", district) == 6 and total(figs, "tasks.done", district) == 2
    assert total(figs, "tasks.overdue", district) == 2
    assert total(figs, "services.open", district) == 3 and total(figs, "services.overdue", district) == 2
    breakdown = rollup.problem_breakdown(scope=EVERYTHING, region=district)
    assert {r["category"]: r["total"] for r in breakdown["rows"]} == {
        k: total(figs, "problems.open", key=k) for k in ("other", "queue_too_long", "data_error")}
    by_category = request_counts(scope=EVERYTHING, region=district, open_only=True, now=later)["by_category"]
    assert by_category == {k: total(figs, "services.open", key=k) for k in by_category}
    for metric in ("tasks.total", "tasks.done", "tasks.overdue", "problems.open", "services.open",
                   "services.overdue"):
        _district_is_sum_of_streets(figs, regions, metric)


def test_a_reported_problem_is_picked_up_through_its_event(regions, busy, commander):
    from jingkong.command import problems

    later = busy["later"]
    with clock.frozen(later):
        refresher.refresh_family("command", at=later)
        before = total(figures("command"), "problems.open")
        assert refresher.run_pending(only=["command"]) == []
        problems.problem_report(actor=commander, scope=EVERYTHING, category="unmanned_post", urgency="urgent",
                                description="卡口无人", region_code=regions["grid_a2"].code)
        assert refresher.run_pending(only=["command"]) == []  # within min_interval
        past_min_interval("command")
        assert refresher.run_pending(only=["command"]) == ["command"]
        refresher.refresh_family("command", at=later)  # idempotent
    figs = figures("command")
    assert total(figs, "problems.open") == before + 1
    assert total(figs, "problems.open", regions["grid_a2"].code, key="unmanned_post") == 1


# --- checkpoints ------------------------------------------------------------------------------------------------------

CP_NOW = dt.datetime(2022, 1, 10, 2, 0, tzinfo=dt.UTC)  # 10:00 on 10 January in Shanghai


def test_crossings_by_local_day_agree_with_the_checkpoint_board(regions):
    from jingkong.codes import selectors_checkpoints as board

    with clock.frozen(CP_NOW):
        cp_a = ops.checkpoint(regions["street_a"])
        cp_b = ops.checkpoint(regions["grid_b1"])
        utc = dt.UTC
        ops.crossing(cp_a, dt.datetime(2022, 1, 9, 15, 59, tzinfo=utc))  # 23:59 on the 9th, local
        ops.crossing(cp_a, dt.datetime(2022, 1, 9, 16, 1, tzinfo=utc), "deny")  # 00:01 on the 10th
        ops.crossing(cp_a, dt.datetime(2022, 1, 10, 1, 0, tzinfo=utc), "refer")
        ops.crossing(cp_b, dt.datetime(2022, 1, 10, 1, 30, tzinfo=utc), "deny")
        ops.crossing(cp_b, dt.datetime(2022, 1, 10, 1, 40, tzinfo=utc), "deny")
        ops.crossing(cp_b, dt.datetime(2022, 1, 9, 3, 0, tzinfo=utc))
        ops.crossing(cp_b, CP_NOW - dt.timedelta(days=90), "deny")  # long ago: not a figure any more
        refresher.refresh_family("checkpoints", at=CP_NOW)
    figs = figures("checkpoints")
    days = (dt.date(2022, 1, 9), dt.date(2022, 1, 10))
    assert {d for (_m, _k, _c, d) in figs} == set(days)
    for day in days:
        start, end = board.day_window(day)
        for name in ("district", *STREETS, "grid_b1"):
            code = regions[name].code
            t = board.totals(board.hourly(scope=Scope(code), start=start, end=end))
            assert (total(figs, "crossings.total", code, day=day), total(figs, "crossings.denied", code, day=day),
                    total(figs, "crossings.referred", code, day=day)) == (t["total"], t["denied"], t["referred"])
        for metric in ("crossings.total", "crossings.denied", "crossings.referred"):
            _district_is_sum_of_streets(figs, regions, metric, day=day)
    assert total(figs, "crossings.denied", day=days[1]) == 3  # hand count: 00:01 at A, two at B


def test_a_crossing_is_picked_up_and_rerun_is_idempotent(regions):
    with clock.frozen(CP_NOW):
        cp = ops.checkpoint(regions["street_a"])
        ops.crossing(cp, CP_NOW - dt.timedelta(hours=1))
        refresher.refresh_family("checkpoints", at=CP_NOW)
        first = figures("checkpoints")
        refresher.refresh_family("checkpoints", at=CP_NOW)
        assert figures("checkpoints") == first
        ops.crossing(cp, CP_NOW - dt.timedelta(minutes=5), "deny")  # written without an event: the mark moves
        assert refresher.run_pending(only=["checkpoints"]) == []
        past_min_interval("checkpoints")
        assert refresher.run_pending(only=["checkpoints"]) == ["checkpoints"]
    today = dt.date(2022, 1, 10)
    figs = figures("checkpoints")
    assert total(figs, "crossings.total", day=today) == 2 and total(figs, "crossings.denied", day=today) == 1

