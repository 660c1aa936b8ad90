"""Round planning, pure: opening hours, buildings → sites with capacity balancing and time slots, round estimates."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from jingkong.testing import planning as P

TZ = "Asia/Shanghai"
SH = ZoneInfo(TZ)


def local(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SH).astimezone(dt.UTC)


ALL_DAY = {"opens_at": dt.time(0, 0), "closes_at": dt.time(0, 0)}


# --- opening hours ---------------------------------------------------------------------------------------------------


def test_open_windows_daytime_overnight_and_around_the_clock():
    day = P.Site(1, opens_at=dt.time(7), closes_at=dt.time(21))
    w = P.open_windows(day, local(2022, 1, 1, 8), local(2022, 1, 3, 0), TZ)
    assert w == [(local(2022, 1, 1, 8), local(2022, 1, 1, 21)), (local(2022, 1, 2, 7), local(2022, 1, 2, 21))]
    night = P.Site(2, opens_at=dt.time(20), closes_at=dt.time(2))
    w = P.open_windows(night, local(2022, 1, 1, 0), local(2022, 1, 2, 12), TZ)
    assert w == [(local(2022, 1, 1, 0), local(2022, 1, 1, 2)), (local(2022, 1, 1, 20), local(2022, 1, 2, 2))]
    always = P.Site(3, **ALL_DAY)
    assert P.open_windows(always, local(2022, 1, 1, 5), local(2022, 1, 4, 5), TZ) == [(local(2022, 1, 1, 5), local(2022, 1, 4, 5))]
    assert P.open_hours(day, local(2022, 1, 1, 0), local(2022, 1, 2, 0), TZ) == 14.0


# --- buildings to sites ----------------------------------------------------------------------------------------------


def _grid_buildings(n_side=10, residents=50, lon0=121.80, lat0=29.90, spacing=0.001):
    lon, lat = np.meshgrid(lon0 + spacing * np.arange(n_side), lat0 + spacing * np.arange(n_side))
    lon, lat = lon.ravel(), lat.ravel()
    return np.arange(1, len(lon) + 1), np.full(len(lon), residents), lon, lat


def _assign(ids, res, lon, lat, sites, hours=12, **kw):
    start = local(2022, 1, 1, 8)
    return P.assign_buildings(building_ids=ids, residents=res, lon=lon, lat=lat, sites=sites, start=start,
                              deadline=start + dt.timedelta(hours=hours), tz=TZ, **kw)


def test_enough_room_everyone_goes_to_the_nearest_site():
    ids, res, lon, lat = _grid_buildings()
    west = P.Site(101, lon=121.8015, lat=29.9045, capacity_per_hour=10_000, **ALL_DAY)
    east = P.Site(102, lon=121.8075, lat=29.9045, capacity_per_hour=10_000, **ALL_DAY)
    plan = _assign(ids, res, lon, lat, [west, east])
    by_building = {a.building_id: a.site_id for a in plan.assignments}
    assert len(by_building) == len(ids) == len(plan.assignments)  # each building exactly once
    nearest, _ = P.assign_nearest(lon, lat, [west, east])
    assert [by_building[i] for i in ids] == [[101, 102][j] for j in nearest]
    assert plan.totals["buildings_not_at_nearest"] == 0 and not plan.totals["over_capacity"]


def test_a_full_site_sends_the_farthest_of_its_buildings_to_the_next_site():
    ids, res, lon, lat = _grid_buildings()  # 100 buildings × 50 residents
    # Both sites stand at the west edge; the west one is nearer to everyone but can take only 1,000 of 5,000.
    small = P.Site(1, lon=121.7995, lat=29.9045, capacity_per_hour=100, **ALL_DAY)  # 100/h × 0.85 × 12 h ≈ 1,020
    big = P.Site(2, lon=121.7985, lat=29.9045, capacity_per_hour=10_000, **ALL_DAY)
    plan = _assign(ids, res, lon, lat, [small, big])
    load = {s.site_id: s for s in plan.sites}
    assert load[1].residents <= load[1].capacity + 50  # at most one building over (buildings are not split)
    assert load[1].residents >= load[1].capacity - 50  # and the near site is used up
    assert load[1].residents + load[2].residents == 5000
    # Least walking overall: the buildings left at the small site are the ones for which it saves the most walking
    # (any swap of a building kept there with one sent on would lengthen the walks).
    lat0 = float(np.mean(lat))
    b_xy = P._xy(np.asarray(lon), np.asarray(lat), lat0)
    s_xy = P._xy(np.array([small.lon, big.lon]), np.array([small.lat, big.lat]), lat0)
    dist = np.sqrt(((b_xy[:, None, :] - s_xy[None, :, :]) ** 2).sum(axis=2))
    saving = dict(zip(ids.tolist(), (dist[:, 1] - dist[:, 0]).tolist(), strict=True))
    kept = [saving[a.building_id] for a in plan.assignments if a.site_id == 1]
    sent = [saving[a.building_id] for a in plan.assignments if a.site_id == 2]
    assert kept and sent
    assert min(kept) >= max(sent) - 2.0  # metres: each arc cost is rounded to a whole metre


def test_balancing_beats_nearest_on_the_worst_load():
    rng = np.random.default_rng(3)
    n = 2000
    lon = 121.80 + 0.02 * rng.random(n) ** 2  # crowded towards the west
    lat = 29.90 + 0.02 * rng.random(n)
    res = rng.integers(10, 60, n)
    sites = [P.Site(i, lon=121.80 + 0.02 * (i % 5) / 4, lat=29.90 + 0.02 * (i // 5) / 3, capacity_per_hour=400,
                    **ALL_DAY) for i in range(20)]
    plan = _assign(np.arange(n), res, lon, lat, sites, hours=24)
    caps = np.array([s.capacity for s in plan.sites])
    nearest, _ = P.assign_nearest(lon, lat, sites)
    nearest_load = np.bincount(nearest, weights=res, minlength=len(sites)) / caps
    assert nearest_load.max() > 1.0  # the plain nearest assignment overloads some sites
    assert plan.totals["max_load"] <= 1.0 + 60 / caps.min()  # balanced: within one building of capacity
    assert plan.totals["mean_distance_m"] >= plan.totals["mean_nearest_distance_m"]


def test_slots_respect_opening_hours_and_keep_each_slot_within_capacity():
    ids, res, lon, lat = _grid_buildings(n_side=6, residents=40)  # 36 buildings, 1,440 people
    site = P.Site(7, lon=121.8025, lat=29.9025, capacity_per_hour=200, opens_at=dt.time(7), closes_at=dt.time(21))
    start = local(2022, 1, 1, 8)
    plan = P.assign_buildings(building_ids=ids, residents=res, lon=lon, lat=lat, sites=[site], start=start,
                              deadline=start + dt.timedelta(hours=12), tz=TZ, slot_minutes=30, utilisation=0.8)
    per_slot = 200 * 0.8 / 2  # 80 people per half hour
    arrivals: dict[dt.datetime, float] = {}
    for a in plan.assignments:
        assert a.slot_start < a.slot_end
        assert dt.time(7) <= a.slot_start.astimezone(SH).time() and a.slot_end.astimezone(SH).time() <= dt.time(21)
        assert a.slot_start >= start
        arrivals[a.slot_start] = arrivals.get(a.slot_start, 0) + a.residents
    # 80 people per slot = two buildings of 40: the slots follow one another without gaps.
    starts = sorted(arrivals)
    assert all(arrivals[s] <= per_slot for s in starts)
    assert starts[0] == start and starts[-1] == start + dt.timedelta(minutes=30 * 17)
    assert plan.totals["residents_after_deadline"] == 0


def test_too_many_people_for_the_window_spill_into_the_next_day_and_say_so():
    ids, res, lon, lat = _grid_buildings(n_side=5, residents=100)  # 2,500 people
    site = P.Site(7, lon=121.8025, lat=29.9025, capacity_per_hour=100, opens_at=dt.time(7), closes_at=dt.time(21))
    plan = _assign(ids, res, lon, lat, [site], hours=6)
    assert plan.totals["over_capacity"]
    assert plan.totals["residents_after_deadline"] > 0
    last = max(a.slot_end for a in plan.assignments)
    assert last.astimezone(SH).date() > dt.date(2022, 1, 1)  # continued at the next day's opening


def test_bad_planning_inputs_name_the_field():
    ids, res, lon, lat = _grid_buildings(n_side=2)
    with pytest.raises(P.PlanningError) as err:
        _assign(ids, res, lon, lat, [])
    assert err.value.field == "sites"
    with pytest.raises(P.PlanningError) as err:
        _assign(ids, res, lon, lat, [P.Site(1)], utilisation=0)
    assert err.value.field == "utilisation"


# --- round estimates -------------------------------------------------------------------------------------------------


def _estimate(population=1200, sites=None, labs=None, pool=10, start=None, hours=24, **kw):
    start = start or local(2022, 1, 1, 0)
    sites = sites if sites is not None else [P.Site(1, capacity_per_hour=120, desks=1, staff=2, **ALL_DAY)]
    labs = labs if labs is not None else [P.Lab(1, 1000)]
    return P.estimate_round(population=population, sites=sites, labs=labs, groups=[P.pool_group(population, pool)],
                            start=start, deadline=start + dt.timedelta(hours=hours), tz=TZ, **kw)


def test_estimate_by_hand_sites_set_the_pace():
    est = _estimate(transport_hours=1.0)
    # 1,200 people at 120/h: 10 h of sampling; the last tube reaches the lab 1 h later and is tested at once.
    assert est["sampling_hours"] == pytest.approx(10.0, abs=0.1)
    assert est["results_hours"] == pytest.approx(11.0, abs=0.2)
    assert est["tubes_needed"] == 120 and est["binding"] == "sites"
    assert est["meets_deadline"] == {"sampling": True, "results": True}
    assert est["peak_lab_backlog_tubes"] <= 2


def test_estimate_too_few_samplers():
    est = _estimate(sites=[P.Site(1, capacity_per_hour=120, desks=1, staff=1, **ALL_DAY)], transport_hours=1.0)
    # one sampler where a desk needs two: half speed, 20 h; more staff would save 10 h
    assert est["sampling_hours"] == pytest.approx(20.0, abs=0.1)
    assert est["binding"] == "samplers"
    assert est["constraints"]["samplers"]["hours_saved_if_unlimited"] == pytest.approx(10.0, abs=0.2)
    assert est["constraints"]["samplers"]["binds"] and not est["constraints"]["labs"]["binds"]


def test_estimate_slow_lab_builds_a_backlog():
    est = _estimate(labs=[P.Lab(1, 5)], transport_hours=1.0)
    # 12 tubes/h arrive from 1 h to 11 h; the lab tests 5/h: 120 - 5 × 10 = 70 tubes wait when the last one arrives.
    assert est["binding"] == "labs"
    assert est["peak_lab_backlog_tubes"] == pytest.approx(70, abs=2)
    assert est["peak_lab_backlog_at"] == local(2022, 1, 1, 11)  # when the last tube arrives (not a step earlier)
    assert est["results_hours"] == pytest.approx(25.0, abs=0.2)
    assert est["constraints"]["labs"]["hours_to_test_all"] == 24.0
    assert est["meets_deadline"] == {"sampling": True, "results": False}


def test_estimate_short_of_tubes():
    est = _estimate(tubes_available=60)
    assert est["binding"] == "tubes"
    assert est["constraints"]["tubes"]["short"] == 60
    assert est["constraints"]["tubes"]["people_without_tube"] == 600
    assert est["sampling_finish"] is None and est["results_finish"] is None


def test_estimate_without_labs_or_sites():
    assert _estimate(labs=[])["binding"] == "labs"
    no_sites = _estimate(sites=[])
    assert no_sites["binding"] == "sites" and no_sites["sampling_finish"] is None


def test_estimate_follows_opening_hours_into_the_next_day():
    site = P.Site(1, capacity_per_hour=100, desks=1, staff=2, opens_at=dt.time(7), closes_at=dt.time(21))
    est = _estimate(population=2000, sites=[site], start=local(2022, 1, 1, 8), hours=36, transport_hours=1.0)
    # 13 h on the first day (08–21) = 1,300; the remaining 700 from 07:00 the next day: done at 14:00.
    assert est["sampling_finish"] == local(2022, 1, 2, 14)
    assert est["sampled_by_deadline"] == 2000
    assert est["timeline"][0]["sampled"] == 100


def test_expected_retests_use_the_pool_positive_probability():
    est = _estimate(population=10_000, prevalence=0.01, pool=10)
    assert est["expected_retests"] == pytest.approx(10_000 * (1 - 0.99 ** 10), abs=2)


def test_household_tubes_count_as_given():
    start = local(2022, 1, 1, 0)
    groups = [P.pool_group(1000, 10), P.PoolGroup(population=300, pool_size=10, tubes=120)]  # 120 households
    est = P.estimate_round(population=1300, sites=[P.Site(1, **ALL_DAY)], labs=[P.Lab(1, 100)], groups=groups,
                           start=start, deadline=start + dt.timedelta(hours=24), tz=TZ)
    assert est["tubes_needed"] == 220


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"transport_hours": -1}, "transport_hours"), ({"desk_rate": 0}, "desk_rate"),
    ({"tubes_available": -5}, "tubes_available"), ({"hours": 0}, "deadline"), ({"prevalence": 1.0}, "prevalence"),
])
def test_bad_estimate_inputs_name_the_field(kwargs, field):
    with pytest.raises(P.PlanningError) as err:
        _estimate(**kwargs)
    assert err.value.field == field


def test_benchmark_quick_run():
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[3] / "benchmarks" / "bench_planning.py"
    done = subprocess.run([sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["buildings"] == 3000 and out["ratio_to_nearest"] > 0
    # the balanced plan keeps every site within one building of its capacity; the nearest one does not
    assert out["balanced"]["max_excess_residents"] <= out["balanced"]["largest_building"]
    assert out["nearest"]["max_site_load"] > out["balanced"]["max_site_load"]
