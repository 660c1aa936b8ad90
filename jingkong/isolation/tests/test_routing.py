"""快转运 routing (pure): feasibility of plans — seats, accessibility, facility room, time windows, pickups before
drop-offs — for the OR-Tools plan and the greedy baseline; distances by great circle or a road graph."""

from __future__ import annotations

import random

import pytest

from jingkong.isolation import routing as R
from jingkong.isolation.transfers import stop_order_error

P = R.Params(detour_factor=1.3, speed_kmh=30, pickup_s=600, dropoff_s=900, time_limit_s=2.0)


def _instance(n_batches=40, n_vehicles=6, seed=7, *, facility_free=400):
    rnd = random.Random(seed)
    vehicles = [R.VehicleIn(i + 1, rnd.choice([4, 8, 14]), 121.80 + rnd.random() * 0.1, 29.90 + rnd.random() * 0.1,
                            accessible=i == 0) for i in range(n_vehicles)]
    batches = [R.BatchIn(100 + i, rnd.choice([1, 2, 3, 4]), 121.80 + rnd.random() * 0.1, 29.90 + rnd.random() * 0.1,
                         rnd.choice(["central", "hospital"]), priority=rnd.choice([1, 3, 5]),
                         due_s=rnd.randint(1800, 4 * 3600), accessible=i % 13 == 0) for i in range(n_batches)]
    facilities = [R.FacilityIn(900, 121.85, 29.95, ("central", "separate_site"), facility_free),
                  R.FacilityIn(901, 121.82, 29.92, ("hospital",), facility_free)]
    return vehicles, batches, facilities


def check_feasible(out: R.PlanOut, vehicles, batches, facilities):
    seats = {v.id: v for v in vehicles}
    by_id = {b.id: b for b in batches}
    delivered: dict[int, int] = {}
    for route in out.routes:
        v = seats[route.vehicle_id]
        load = 0
        picked = set()
        for s in route.stops:
            b = by_id[s.batch_id]
            if b.accessible:
                assert v.accessible, "accessible batch on a vehicle without access"
            if s.kind == "pickup":
                picked.add(b.id)
                load += b.size
            else:
                assert b.id in picked, "drop-off before pickup"
                assert s.facility_id == out.facility_of[b.id]
                delivered[s.facility_id] = delivered.get(s.facility_id, 0) + b.size
                load -= b.size
            assert 0 <= load <= v.seats, "over the vehicle's seats"
            assert s.load_after == load
        assert load == 0
        times = [s.arrive_s for s in route.stops]
        assert times == sorted(times)
    for f in facilities:
        assert delivered.get(f.id, 0) <= f.free, "more people than free beds"
    served = {s.batch_id for r in out.routes for s in r.stops}
    assert served | set(out.unassigned) == {b.id for b in batches}
    assert not served & set(out.unassigned)


@pytest.mark.parametrize("use_solver", [True, False])
def test_plans_are_feasible(use_solver):
    vehicles, batches, facilities = _instance()
    out = R.plan(vehicles, batches, facilities, P, use_solver=use_solver)
    check_feasible(out, vehicles, batches, facilities)
    assert out.solver == ("ortools" if use_solver else "greedy") or out.solver == "greedy"


def test_solver_is_not_worse_than_the_greedy_baseline_and_reports_it():
    vehicles, batches, facilities = _instance(n_batches=60, n_vehicles=8, seed=3)
    out = R.plan(vehicles, batches, facilities, P)
    assert out.baseline is not None
    served = len({s.batch_id for r in out.routes for s in r.stops})
    assert served >= out.baseline["served"]
    if served == out.baseline["served"]:
        assert (out.late_s, out.distance_m) <= (out.baseline["late_s"], out.baseline["distance_m"]) or \
            out.late_s < out.baseline["late_s"] or out.distance_m <= out.baseline["distance_m"]


def test_facility_without_room_leaves_batches_waiting_with_the_reason():
    vehicles, batches, facilities = _instance(n_batches=10, facility_free=3)
    out = R.plan(vehicles, batches, facilities, P)
    check_feasible(out, vehicles, batches, facilities)
    assert R.NO_FACILITY in out.unassigned.values()
    none_left = R.plan(vehicles, batches, [], P)
    assert set(none_left.unassigned.values()) == {R.NO_FACILITY} and not none_left.routes


def test_home_batches_are_not_routed_and_too_big_ones_wait_for_a_vehicle():
    v = [R.VehicleIn(1, 4, 121.80, 29.90)]
    b = [R.BatchIn(1, 2, 121.81, 29.91, "home"), R.BatchIn(2, 6, 121.81, 29.91, "central"),
         R.BatchIn(3, 1, 121.81, 29.91, "central", accessible=True), R.BatchIn(4, 3, 121.81, 29.91, "central")]
    f = [R.FacilityIn(9, 121.85, 29.95, ("central",), 100)]
    out = R.plan(v, b, f, P)
    assert out.unassigned == {1: R.HOME, 2: R.NO_VEHICLE, 3: R.NO_VEHICLE}
    assert [s.batch_id for s in out.routes[0].stops] == [4, 4]


def test_when_not_both_can_be_on_time_the_higher_priority_goes_first():
    v = [R.VehicleIn(1, 4, 121.80, 29.90)]
    secondary = R.BatchIn(1, 4, 121.805, 29.905, "central", priority=5, due_s=50 * 60)
    close = R.BatchIn(2, 4, 121.83, 29.93, "central", priority=2, due_s=50 * 60)
    f = [R.FacilityIn(9, 121.85, 29.95, ("central",), 100)]
    out = R.plan(v, [secondary, close], f, P)
    assert not out.unassigned
    assert out.routes[0].stops[0].batch_id == 2  # farther from the depot, but more urgent
    greedy = R.plan(v, [secondary, close], f, P, use_solver=False)
    assert greedy.routes[0].stops[0].batch_id == 1  # the baseline just takes the nearest


def test_no_vehicle_left_out_when_the_run_fits_one_after_another():
    v = [R.VehicleIn(1, 4, 121.80, 29.90)]
    b = [R.BatchIn(1, 4, 121.81, 29.91, "central"), R.BatchIn(2, 4, 121.83, 29.93, "central")]
    f = [R.FacilityIn(9, 121.85, 29.95, ("central",), 100)]
    out = R.plan(v, b, f, P)
    assert not out.unassigned
    check_feasible(out, v, b, f)


def test_an_urgent_batch_arrives_within_its_window_when_possible():
    v = [R.VehicleIn(1, 10, 121.80, 29.90)]
    far = R.BatchIn(1, 2, 121.80, 29.99, "central", priority=5, due_s=6 * 3600)
    near_urgent = R.BatchIn(2, 2, 121.85, 29.94, "central", priority=1, due_s=40 * 60)
    f = [R.FacilityIn(9, 121.85, 29.95, ("central",), 100)]
    out = R.plan(v, [far, near_urgent], f, P)
    stops = out.routes[0].stops
    drop = next(s for s in stops if s.kind == "dropoff" and s.batch_id == 2)
    assert drop.arrive_s <= 40 * 60
    assert out.late == 0


def test_the_facility_chosen_is_the_nearest_of_the_right_kind_with_room():
    b = [R.BatchIn(1, 3, 121.80, 29.90, "central")]
    near_full = R.FacilityIn(1, 121.801, 29.901, ("central",), 2)
    far_free = R.FacilityIn(2, 121.90, 29.99, ("central",), 10)
    hospital = R.FacilityIn(3, 121.80, 29.90, ("hospital",), 10)
    assert R.assign_facilities(b, [near_full, far_free, hospital]) == ({1: 2}, {})


def test_great_circle_distance():
    # one degree of latitude is ~111.2 km
    assert R.haversine(121.8, 29.0, 121.8, 30.0) == pytest.approx(111_195, rel=1e-3)


def test_road_graph_distances_and_path():
    nx = pytest.importorskip("networkx")
    graph = nx.Graph()
    graph.add_node("a", x=121.80, y=29.90)
    graph.add_node("b", x=121.80, y=29.95)
    graph.add_node("c", x=121.85, y=29.95)
    graph.add_edge("a", "b", length=6000.0)
    graph.add_edge("b", "c", length=5000.0)
    road = R.RoadGraph(graph)
    m = road.matrix([121.80, 121.85], [29.90, 29.95], 1.3)
    assert m[0, 1] == pytest.approx(11_000.0, abs=1)  # along the roads, not the diagonal
    assert road.path((121.80, 29.90), (121.85, 29.95))[1:-1] == [[121.80, 29.90], [121.80, 29.95], [121.85, 29.95]]
    out = R.plan([R.VehicleIn(1, 4, 121.80, 29.90)], [R.BatchIn(1, 1, 121.80, 29.95, "central")],
                 [R.FacilityIn(9, 121.85, 29.95, ("central",), 5)],
                 R.Params(1.3, 30, 60, 60, time_limit_s=1.0, graph=road))
    assert out.distance_m == pytest.approx(11_000, abs=2)


def test_road_graph_loads_from_graphml(tmp_path):
    nx = pytest.importorskip("networkx")
    graph = nx.Graph()
    graph.add_node("a", x=121.80, y=29.90)
    graph.add_node("b", x=121.80, y=29.95)
    graph.add_edge("a", "b", length=7000.0)
    nx.write_graphml(graph, tmp_path / "g.graphml")
    road = R.RoadGraph.load(tmp_path / "g.graphml")
    assert road.matrix([121.80, 121.80], [29.90, 29.95], 1.0)[0, 1] == pytest.approx(7000.0, abs=1)


def test_route_metrics_for_an_edited_order():
    arrivals, total, path = R.route_metrics([(121.80, 29.90), (121.80, 29.91), (121.80, 29.92)], P,
                                            ["pickup", "dropoff"])
    leg = R.haversine(121.80, 29.90, 121.80, 29.91) * P.detour_factor
    assert total == pytest.approx(2 * leg, abs=2)
    assert arrivals[0] == pytest.approx(leg / (30 / 3.6), abs=1)
    assert arrivals[1] == pytest.approx(2 * leg / (30 / 3.6) + P.pickup_s, abs=2)
    assert len(path) == 3


@pytest.mark.parametrize(("stops", "seats", "problem"), [
    ([("pickup", 1, 2), ("dropoff", 1, 2)], 2, None),
    ([("pickup", 1, 2), ("pickup", 2, 2), ("dropoff", 1, 2), ("dropoff", 2, 2)], 3, "more people on board than seats"),
    ([("pickup", 1, 2), ("dropoff", 1, 2), ("pickup", 2, 2), ("dropoff", 2, 2)], 3, None),
    ([("dropoff", 1, 2), ("pickup", 1, 2)], 4, "a drop-off before its pickup"),
    ([("pickup", 1, 2)], 4, "a batch picked up but never dropped off"),
    ([("pickup", 1, 2), ("pickup", 1, 2), ("dropoff", 1, 2)], 9, "batch picked up twice"),
])
def test_stop_order_validation(stops, seats, problem):
    assert stop_order_error(stops, seats) == problem


@pytest.mark.parametrize("use_solver", [True, False])
def test_tiers_never_share_a_run(use_solver):
    vehicles, batches, facilities = _instance(n_batches=30, n_vehicles=5, seed=11)
    batches = [R.BatchIn(**{**b.__dict__, "group": ("case", "close", "secondary")[i % 3]})
               for i, b in enumerate(batches)]
    out = R.plan(vehicles, batches, facilities, P, use_solver=use_solver)
    check_feasible(out, vehicles, batches, facilities)
    group = {b.id: b.group for b in batches}
    for route in out.routes:
        assert len({group[s.batch_id] for s in route.stops}) == 1
