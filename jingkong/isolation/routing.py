"""快转运: which vehicle picks up which batch, takes it where, in which order — pure planning (no Django, no database).

:func:`plan` solves a capacitated pickup-and-delivery problem with time windows with OR-Tools:

* each batch is a **pickup** node (its pickup point, ``size`` seats) and a **delivery** node at the facility chosen
  for it: the nearest facility of the batch's destination type with free beds left (:func:`assign_facilities`,
  batches in priority order; a batch for which no facility has room stays waiting with reason ``no_facility``);
* vehicles start at their depots and end wherever their last delivery is (an open route); the load never exceeds a
  vehicle's seats, a batch needing an accessible vehicle only goes on one;
* the **due time** (the contact's transfer deadline) is a soft upper bound on the delivery's arrival time: lateness
  is penalised (more for higher priority) rather than making the plan infeasible; a batch no vehicle can take
  (seats, accessibility, nothing left) is left out with reason ``no_vehicle``;
* distances come from a road graph if one is given (:class:`RoadGraph`, a networkx graph with ``x``/``y`` node
  coordinates and ``length`` in metres on edges), otherwise great-circle distance × the profile's detour factor;
  times from the profile's average speed plus pickup and drop-off minutes.

The search starts from the greedy nearest-neighbour plan (:func:`greedy`, also the benchmark's baseline) and improves
it by guided local search within ``time_limit_s``, so a plan always comes back in time and is never worse than the
greedy one on the solver's objective; if OR-Tools finds nothing better (or is not installed) the greedy plan is used.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

EARTH_RADIUS_M = 6_371_000.0
HORIZON_S = 48 * 3600
NO_FACILITY, NO_VEHICLE, HOME = "no_facility", "no_vehicle", "home"


@dataclass(frozen=True)
class VehicleIn:
    id: int
    seats: int
    lon: float
    lat: float
    accessible: bool = False


@dataclass(frozen=True)
class BatchIn:
    id: int
    size: int
    lon: float
    lat: float
    destination: str  # isolation.Destination value
    priority: int = 5
    due_s: int | None = None  # seconds after the plan's start by which the batch should arrive
    accessible: bool = False
    group: str = ""  # batches of different groups (tiers: case / close / secondary) never share a vehicle's run


@dataclass(frozen=True)
class FacilityIn:
    id: int
    lon: float
    lat: float
    destinations: tuple[str, ...]  # destination types it takes
    free: int  # beds free for this plan


@dataclass(frozen=True)
class Params:
    detour_factor: float
    speed_kmh: float
    pickup_s: int
    dropoff_s: int
    time_limit_s: float = 20.0
    graph: RoadGraph | None = None
    metaheuristic: str = "GUIDED_LOCAL_SEARCH"  # an OR-Tools LocalSearchMetaheuristic name


@dataclass
class StopOut:
    kind: str  # pickup / dropoff
    batch_id: int
    facility_id: int | None
    lon: float
    lat: float
    arrive_s: int
    load_after: int


@dataclass
class RouteOut:
    vehicle_id: int
    stops: list[StopOut]
    distance_m: int
    end_s: int
    path: list[list[float]] = field(default_factory=list)  # [lon, lat] points of the polyline


@dataclass
class PlanOut:
    routes: list[RouteOut]
    unassigned: dict[int, str]  # batch id -> reason
    facility_of: dict[int, int]  # batch id -> facility id
    distance_m: int
    late: int  # batches arriving after their due time
    late_s: int
    solver: str  # "ortools" / "greedy"
    seconds: float
    baseline: dict | None = None  # the greedy plan's figures, when the solver ran


# --- distances ---------------------------------------------------------------------------------------------------------


def haversine_matrix(lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    """Great-circle distances in metres between all points (vectorised)."""
    lon = np.radians(lons)[:, None]
    lat = np.radians(lats)[:, None]
    dlon = lon.T - lon
    dlat = lat.T - lat
    a = np.sin(dlat / 2) ** 2 + np.cos(lat) * np.cos(lat.T) * np.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def haversine(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    return float(haversine_matrix(np.array([lon1, lon2]), np.array([lat1, lat2]))[0, 1])


class RoadGraph:
    """A road network (networkx graph; nodes carry ``x`` = longitude and ``y`` = latitude, edges ``length`` in metres).

    Points are snapped to their nearest node; distances are shortest-path lengths plus the straight snapping legs.
    Pairs the graph does not connect fall back to great-circle × detour factor."""

    def __init__(self, graph):
        self.graph = graph
        self.nodes = list(graph.nodes)
        self.xy = np.array([[float(graph.nodes[n]["x"]), float(graph.nodes[n]["y"])] for n in self.nodes])

    @classmethod
    def load(cls, path) -> RoadGraph:
        import networkx as nx

        graph = nx.read_graphml(str(path))
        for _u, _v, data in graph.edges(data=True):
            data["length"] = float(data.get("length", 0) or 0)
        return cls(graph)

    def snap(self, lons: np.ndarray, lats: np.ndarray) -> tuple[list, np.ndarray]:
        idx, snap_m = [], []
        for lon, lat in zip(lons, lats, strict=True):
            d = haversine_matrix(np.concatenate([[lon], self.xy[:, 0]]), np.concatenate([[lat], self.xy[:, 1]]))[0, 1:]
            i = int(np.argmin(d))
            idx.append(self.nodes[i])
            snap_m.append(d[i])
        return idx, np.array(snap_m)

    def matrix(self, lons: np.ndarray, lats: np.ndarray, detour: float) -> np.ndarray:
        import networkx as nx

        fallback = haversine_matrix(lons, lats) * detour
        nodes, snap_m = self.snap(lons, lats)
        out = fallback.copy()
        cache: dict = {}
        for i, src in enumerate(nodes):
            if src not in cache:
                cache[src] = nx.single_source_dijkstra_path_length(self.graph, src, weight="length")
            lengths = cache[src]
            for j, dst in enumerate(nodes):
                if i != j and dst in lengths:
                    out[i, j] = lengths[dst] + snap_m[i] + snap_m[j]
        return out

    def path(self, a: tuple[float, float], b: tuple[float, float]) -> list[list[float]]:
        import networkx as nx

        (na, nb), _ = self.snap(np.array([a[0], b[0]]), np.array([a[1], b[1]]))
        try:
            nodes = nx.shortest_path(self.graph, na, nb, weight="length")
        except nx.NetworkXNoPath:
            return [list(a), list(b)]
        return [list(a)] + [[float(self.graph.nodes[n]["x"]), float(self.graph.nodes[n]["y"])] for n in nodes] + [list(b)]


# --- facilities ---------------------------------------------------------------------------------------------------------


def assign_facilities(batches: Sequence[BatchIn], facilities: Sequence[FacilityIn]) -> tuple[dict[int, int], dict[int, str]]:
    """Nearest facility of the right kind with room, batches taken by (priority, due, id)."""
    free = {f.id: f.free for f in facilities}
    chosen: dict[int, int] = {}
    missing: dict[int, str] = {}
    order = sorted(batches, key=lambda b: (b.priority, b.due_s if b.due_s is not None else HORIZON_S, b.id))
    for b in order:
        options = [f for f in facilities if b.destination in f.destinations and free[f.id] >= b.size]
        if not options:
            missing[b.id] = NO_FACILITY
            continue
        best = min(options, key=lambda f: (haversine(b.lon, b.lat, f.lon, f.lat), f.id))
        chosen[b.id] = best.id
        free[best.id] -= b.size
    return chosen, missing


# --- the instance --------------------------------------------------------------------------------------------------------


@dataclass
class _Instance:
    vehicles: list[VehicleIn]
    batches: list[BatchIn]  # routable ones, in node order
    facility_of: dict[int, int]
    facilities: dict[int, FacilityIn]
    dist: np.ndarray  # metres, int
    time: np.ndarray  # seconds incl. service time at the from-node, int
    lonlat: np.ndarray

    # node layout: 0 = open end; 1..V = vehicle starts; then pickup, delivery per batch
    def start(self, v: int) -> int:
        return 1 + v

    def pickup(self, b: int) -> int:
        return 1 + len(self.vehicles) + 2 * b

    def delivery(self, b: int) -> int:
        return 2 + len(self.vehicles) + 2 * b


def _instance(vehicles, batches, facilities, facility_of, params: Params) -> _Instance:
    fac = {f.id: f for f in facilities}
    pts = [(0.0, 0.0)] + [(v.lon, v.lat) for v in vehicles]
    for b in batches:
        f = fac[facility_of[b.id]]
        pts += [(b.lon, b.lat), (f.lon, f.lat)]
    lonlat = np.array(pts, dtype=float)
    if params.graph is not None:
        dist = params.graph.matrix(lonlat[:, 0], lonlat[:, 1], params.detour_factor)
    else:
        dist = haversine_matrix(lonlat[:, 0], lonlat[:, 1]) * params.detour_factor
    dist[0, :] = 0
    dist[:, 0] = 0
    dist = np.rint(dist).astype(np.int64)
    speed = max(params.speed_kmh, 1.0) / 3.6
    service = np.zeros(len(pts), dtype=np.int64)
    nv = len(vehicles)
    service[1 + nv::2] = params.pickup_s
    service[2 + nv::2] = params.dropoff_s
    travel = np.rint(dist / speed).astype(np.int64)
    time_m = travel + service[:, None]
    time_m[:, 0] = service  # finishing the route: only the service at the last stop
    np.fill_diagonal(time_m, 0)
    return _Instance(list(vehicles), list(batches), facility_of, fac, dist, time_m, lonlat)


def _fits(v: VehicleIn, b: BatchIn) -> bool:
    return b.size <= v.seats and (v.accessible or not b.accessible)


# --- greedy nearest neighbour (baseline and starting solution) ---------------------------------------------------------


def _greedy_routes(inst: _Instance) -> tuple[list[list[int]], list[str | None]]:
    """The baseline: whichever vehicle is free first (larger first on ties) loads the nearest unserved batch that
    fits (an accessible vehicle: the nearest batch needing one, if any), then the nearest next ones while seats remain, drops them off in nearest-neighbour order and goes again
    from there (several loads per run), until nothing left fits. A vehicle keeps the tier (group) of its first load.
    Returns node routes and each vehicle's group (None: not used)."""
    nb = len(inst.batches)
    served = np.zeros(nb, dtype=bool)
    pickups = np.array([inst.pickup(i) for i in range(nb)], dtype=np.int64)
    sizes = np.array([b.size for b in inst.batches], dtype=np.int64)
    accessible = np.array([b.accessible for b in inst.batches], dtype=bool)
    groups = np.array([b.group for b in inst.batches], dtype=object)
    nv = len(inst.vehicles)
    routes: list[list[int]] = [[] for _ in range(nv)]
    vgroup: list[str | None] = [None] * nv
    here = [inst.start(v) for v in range(nv)]
    heap = [(0, -inst.vehicles[v].seats, inst.vehicles[v].id, v) for v in range(nv)]
    heapq.heapify(heap)
    while heap and not served.all():
        t, neg_seats, vid, v = heapq.heappop(heap)
        veh = inst.vehicles[v]
        room, pos, taken = veh.seats, here[v], []
        while True:
            ok = ~served & (sizes <= room) & (veh.accessible | ~accessible)
            group = vgroup[v] if vgroup[v] is not None else (groups[taken[0]] if taken else None)
            if group is not None:
                ok &= groups == group
            if not ok.any():
                break
            if veh.accessible and not taken and (ok & accessible).any():
                ok &= accessible  # an accessible vehicle starts with a batch only it can carry
            cand = np.flatnonzero(ok)
            i = int(cand[int(np.argmin(inst.dist[pos, pickups[cand]]))])
            served[i] = True
            taken.append(i)
            room -= int(sizes[i])
            pos = int(pickups[i])
        if not taken:
            continue  # nothing left this vehicle can carry
        vgroup[v] = str(groups[taken[0]])
        load = [inst.pickup(i) for i in taken]
        left = list(taken)
        while left:  # drop-offs: nearest facility next (batches for one facility are delivered together)
            j = min(left, key=lambda i: (inst.dist[pos, inst.delivery(i)], i))
            left.remove(j)
            load.append(inst.delivery(j))
            pos = inst.delivery(j)
        prev = here[v]
        for node in load:
            t += int(inst.time[prev, node])
            prev = node
        routes[v] += load
        here[v] = pos
        heapq.heappush(heap, (t, neg_seats, vid, v))
    return routes, vgroup


def _evaluate(inst: _Instance, routes: list[list[int]]) -> tuple[int, int, int, int]:
    """Total distance, late batches, late seconds and the solver's objective (distance + weighted lateness + the
    penalty of each batch left out) of node routes, each vehicle starting at its depot at 0 s."""
    total, late, late_s, objective = 0, 0, 0, 0
    served = set()
    nv = len(inst.vehicles)
    for v, route in enumerate(routes):
        here, t = inst.start(v), 0
        for node in route:
            total += int(inst.dist[here, node])
            t += int(inst.time[here, node])
            here = node
            k = node - 1 - nv
            b = inst.batches[k // 2]
            if k % 2 == 1:
                served.add(k // 2)
                if b.due_s is not None and t > b.due_s:
                    late += 1
                    late_s += t - b.due_s
                    objective += _late_weight(b) * (t - b.due_s)
    objective += total + sum(2 * _drop_penalty(b) for i, b in enumerate(inst.batches) if i not in served)
    return total, late, late_s, objective


# --- OR-Tools ------------------------------------------------------------------------------------------------------------


def _late_weight(b: BatchIn) -> int:
    """Objective units (metres driven) per second late: a deadline outweighs a detour — a second late for a case
    (priority 1) costs as much as 120 m of driving, for a secondary contact (priority 5) 40 m."""
    return 20 * max(1, 7 - b.priority)


def _drop_penalty(b: BatchIn) -> int:
    return 10_000_000 * max(1, 7 - b.priority) * max(1, b.size)


def _solve_ortools(inst: _Instance, initial: list[list[int]], vehicle_groups: list[str | None],
                   time_limit_s: float, metaheuristic: str = "GUIDED_LOCAL_SEARCH") -> list[list[int]] | None:
    try:
        from ortools.constraint_solver import pywrapcp, routing_enums_pb2
    except ImportError:  # pragma: no cover - ortools is a dependency; the greedy plan still works without it
        return None
    nv = len(inst.vehicles)
    n = inst.dist.shape[0]
    manager = pywrapcp.RoutingIndexManager(n, nv, [inst.start(v) for v in range(nv)], [0] * nv)
    routing = pywrapcp.RoutingModel(manager)
    # RegisterTransitMatrix / RegisterUnaryTransitVector take node-indexed values (the manager maps indices)
    dist_cb = routing.RegisterTransitMatrix(inst.dist.tolist())
    time_cb = routing.RegisterTransitMatrix(inst.time.tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(dist_cb)
    demand = [0] * n
    for b_i, b in enumerate(inst.batches):
        demand[inst.pickup(b_i)] = b.size
        demand[inst.delivery(b_i)] = -b.size
    load_cb = routing.RegisterUnaryTransitVector(demand)
    routing.AddDimensionWithVehicleCapacity(load_cb, 0, [v.seats for v in inst.vehicles], True, "Load")
    routing.AddDimension(time_cb, 0, HORIZON_S, True, "Time")
    time_dim = routing.GetDimensionOrDie("Time")
    solver = routing.solver()
    for b_i, b in enumerate(inst.batches):
        p = manager.NodeToIndex(inst.pickup(b_i))
        d = manager.NodeToIndex(inst.delivery(b_i))
        routing.AddPickupAndDelivery(p, d)
        solver.Add(routing.VehicleVar(p) == routing.VehicleVar(d))
        solver.Add(time_dim.CumulVar(p) <= time_dim.CumulVar(d))
        routing.AddDisjunction([p], _drop_penalty(b))
        routing.AddDisjunction([d], _drop_penalty(b))
        for v, veh in enumerate(inst.vehicles):  # (SetAllowedVehiclesForIndex's Python binding refuses lists)
            if not _fits(veh, b):
                routing.VehicleVar(p).RemoveValue(v)
                routing.VehicleVar(d).RemoveValue(v)
        if b.due_s is not None:
            time_dim.SetCumulVarSoftUpperBound(d, max(0, b.due_s), _late_weight(b))
    # Tiers never share a run: each vehicle serves one group (the greedy plan's choice; an unused vehicle takes the
    # group with the most people), so the rule is a domain restriction, cheap for the local search.
    if len({b.group for b in inst.batches}) > 1:
        demand_by_group: dict[str, int] = {}
        for b in inst.batches:
            demand_by_group[b.group] = demand_by_group.get(b.group, 0) + b.size
        busiest = max(sorted(demand_by_group), key=lambda g: demand_by_group[g])
        groups = [g if g is not None else busiest for g in vehicle_groups]
        for b_i, b in enumerate(inst.batches):
            p = manager.NodeToIndex(inst.pickup(b_i))
            d = manager.NodeToIndex(inst.delivery(b_i))
            for v in range(nv):
                if groups[v] != b.group:
                    routing.VehicleVar(p).RemoveValue(v)
                    routing.VehicleVar(d).RemoveValue(v)
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    params.local_search_metaheuristic = getattr(routing_enums_pb2.LocalSearchMetaheuristic, metaheuristic)
    params.time_limit.FromMilliseconds(max(100, int(time_limit_s * 1000)))
    start_routes = [[manager.NodeToIndex(node) for node in route] for route in initial]
    routing.CloseModelWithParameters(params)
    assignment = routing.ReadAssignmentFromRoutes(start_routes, True)
    if assignment is not None:
        solution = routing.SolveFromAssignmentWithParameters(assignment, params)
    else:
        solution = routing.SolveWithParameters(params)
    if solution is None:
        return None
    routes = []
    for v in range(nv):
        idx = routing.Start(v)
        route = []
        idx = solution.Value(routing.NextVar(idx))
        while not routing.IsEnd(idx):
            route.append(manager.IndexToNode(idx))
            idx = solution.Value(routing.NextVar(idx))
        routes.append(route)
    return routes


# --- the plan ------------------------------------------------------------------------------------------------------------


def _routes_out(inst: _Instance, routes: list[list[int]], params: Params) -> list[RouteOut]:
    nv = len(inst.vehicles)
    out = []
    for v, route in enumerate(routes):
        if not route:
            continue
        here, t, load, dist = inst.start(v), 0, 0, 0
        stops = []
        path = [inst.lonlat[here].tolist()]
        for node in route:
            dist += int(inst.dist[here, node])
            t += int(inst.time[here, node])
            k = node - 1 - nv
            b = inst.batches[k // 2]
            pickup = k % 2 == 0
            load += b.size if pickup else -b.size
            lon, lat = inst.lonlat[node].tolist()
            if params.graph is not None:
                path += params.graph.path(tuple(inst.lonlat[here].tolist()), (lon, lat))[1:]
            else:
                path.append([lon, lat])
            stops.append(StopOut(kind="pickup" if pickup else "dropoff", batch_id=b.id,
                                 facility_id=None if pickup else inst.facility_of[b.id], lon=lon, lat=lat,
                                 arrive_s=t, load_after=load))
            here = node
        out.append(RouteOut(vehicle_id=inst.vehicles[v].id, stops=stops, distance_m=dist,
                            end_s=t + params.dropoff_s, path=path))
    return out


def _served(inst: _Instance, routes: list[list[int]]) -> set[int]:
    nv = len(inst.vehicles)
    return {inst.batches[(node - 1 - nv) // 2].id for route in routes for node in route}


def plan(vehicles: Sequence[VehicleIn], batches: Sequence[BatchIn], facilities: Sequence[FacilityIn], params: Params,
         *, use_solver: bool = True) -> PlanOut:
    """Plan one run per vehicle for the batches (see the module docstring)."""
    started = time.monotonic()
    routable = [b for b in batches if b.destination != HOME]
    unassigned: dict[int, str] = {b.id: HOME for b in batches if b.destination == HOME}
    facility_of, no_room = assign_facilities(routable, facilities)
    unassigned.update(no_room)
    vehicles = [v for v in vehicles if v.seats > 0]
    routable = [b for b in routable if b.id in facility_of and any(_fits(v, b) for v in vehicles)]
    for b in batches:
        if b.id not in unassigned and b.id not in {r.id for r in routable}:
            unassigned[b.id] = NO_VEHICLE
    if not routable or not vehicles:
        return PlanOut([], unassigned, {}, 0, 0, 0, "greedy", time.monotonic() - started)
    inst = _instance(vehicles, routable, facilities, facility_of, params)
    greedy_routes, vehicle_groups = _greedy_routes(inst)
    g_dist, g_late, g_late_s, g_obj = _evaluate(inst, greedy_routes)
    baseline = {"distance_m": g_dist, "late": g_late, "late_s": g_late_s, "served": len(_served(inst, greedy_routes)),
                "seconds": round(time.monotonic() - started, 3)}
    routes, solver = greedy_routes, "greedy"
    if use_solver:
        remaining = params.time_limit_s - (time.monotonic() - started)
        solved = _solve_ortools(inst, greedy_routes, vehicle_groups, max(0.5, remaining), params.metaheuristic)
        if solved is not None and _evaluate(inst, solved)[3] <= g_obj:
            routes, solver = solved, "ortools"
    served = _served(inst, routes)
    for b in routable:
        if b.id not in served:
            unassigned[b.id] = NO_VEHICLE
    dist, late, late_s, _objective = _evaluate(inst, routes)
    return PlanOut(
        routes=_routes_out(inst, routes, params), unassigned=unassigned,
        facility_of={b: f for b, f in facility_of.items() if b in served}, distance_m=dist, late=late, late_s=late_s,
        solver=solver, seconds=round(time.monotonic() - started, 3), baseline=baseline if use_solver else None)


def route_metrics(points: Sequence[tuple[float, float]], params: Params, kinds: Sequence[str]) -> tuple[list[int], int, list[list[float]]]:
    """Arrival seconds at each of ``points[1:]`` (``points[0]`` is the depot), total metres and the polyline, for a
    route the dispatcher edited (same distance and time model as :func:`plan`)."""
    lonlat = np.array(points, dtype=float)
    if params.graph is not None:
        dist = params.graph.matrix(lonlat[:, 0], lonlat[:, 1], params.detour_factor)
    else:
        dist = haversine_matrix(lonlat[:, 0], lonlat[:, 1]) * params.detour_factor
    speed = max(params.speed_kmh, 1.0) / 3.6
    t, total, arrivals, path = 0, 0, [], [list(points[0])]
    prev_service = 0
    for i in range(1, len(points)):
        leg = int(round(dist[i - 1, i]))
        total += leg
        t += prev_service + int(round(leg / speed))
        arrivals.append(t)
        prev_service = params.pickup_s if kinds[i - 1] == "pickup" else params.dropoff_s
        if params.graph is not None:
            path += params.graph.path(tuple(points[i - 1]), tuple(points[i]))[1:]
        else:
            path.append(list(points[i]))
    return arrivals, total, path


def straight_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    return haversine(a[0], a[1], b[0], b[1]) / 1000.0


__all__ = ["BatchIn", "FacilityIn", "Params", "PlanOut", "RoadGraph", "RouteOut", "StopOut", "VehicleIn",
           "assign_facilities", "haversine", "plan", "route_metrics"]
