"""Round planning (pure: no Django, no database): who goes to which site when, and when will the round be done.

(a) :func:`assign_buildings` — every building's residents to one sampling site, nearest first with capacity balancing,
    and a recommended time slot per building so that the queue at each site stays short (错峰).

    A min-cost flow (OR-Tools ``SimpleMinCostFlow``): each building supplies its residents, each may send them to any
    of its ``neighbours`` nearest sites at a cost of the walking distance (metres, straight line), each site absorbs at
    most what it can sample in the round's window at the target utilisation (``capacity_per_hour × utilisation ×
    open hours``). The optimum sends everybody to their nearest site unless it is full, and then to the next nearest
    one with room — the least total distance among all assignments that respect capacity. A building is one
    assignment (its residents are told one site), so a building whose flow the optimum splits goes to the site that
    takes most of it; each site's load can therefore exceed its capacity by at most one building. When the sites
    together cannot sample everybody in the window, every site's capacity is scaled up in proportion (the load is
    balanced; the slots then run past the deadline and the plan says so). A building whose nearest sites are all full
    goes through an expensive overflow arc and is then given the nearest site with room left.

    Slots: each site's buildings are queued (by ``order`` — e.g. grid — then distance) into consecutive slots of
    ``slot_minutes`` inside the site's opening hours from the round's start, each slot filled to
    ``capacity_per_hour × utilisation × slot_minutes / 60`` people. With arrivals kept below the service rate the queue
    does not build up; a building larger than a slot spans several consecutive slots (its slot start and end).

(b) :func:`estimate_round` — given the population, the sites (capacity, desks, staff, opening hours), the pool sizes,
    the tubes available, the labs' throughput and the transport delay: when sampling and results finish, the peak
    lab backlog (tubes received but not yet tested), and which constraint binds. The round is simulated in steps of
    ``step_minutes``; each constraint is then relaxed in turn (unlimited samplers, site capacity, tubes, labs) and the
    constraint whose relaxation brings the last result forward the most is the binding one, with the hours it costs.

    Sampling model: a desk swabs ``desk_rate`` people per hour and needs ``staff_per_desk`` sampling staff (swabbing,
    scanning, relief in protective gear); a site samples ``min(capacity_per_hour, desks × desk_rate)`` per hour when
    staffed ("sites") and ``staff / staff_per_desk × desk_rate`` with its staff ("samplers"), whichever is lower. These
    are planning assumptions (parameters with defaults), not policy rules. Labs test around the clock; tubes reach
    the lab ``transport_hours`` after the swab that fills them (pooled tubes are sealed when full).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np

EARTH_M_PER_DEG_LAT = 110_574.0
EARTH_M_PER_DEG_LON_EQ = 111_320.0
OVERFLOW_COST = 10_000_000  # metres: far more than any walk in a district


class PlanningError(ValueError):
    """A planning input that cannot be used; ``field`` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


# --- sites and opening hours ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    id: int
    lon: float = 0.0
    lat: float = 0.0
    capacity_per_hour: int = 120
    opens_at: dt.time = dt.time(7, 0)
    closes_at: dt.time = dt.time(21, 0)  # equal to opens_at: around the clock; earlier: closes after midnight
    desks: int = 1
    staff: int = 2


def open_windows(site: Site, start: dt.datetime, end: dt.datetime, tz: str) -> list[tuple[dt.datetime, dt.datetime]]:
    """The site's opening intervals (aware UTC) inside ``[start, end)``, merged where they touch."""
    zone = ZoneInfo(tz)
    if end <= start:
        return []
    first = start.astimezone(zone).date() - dt.timedelta(days=1)
    last = end.astimezone(zone).date()
    out: list[tuple[dt.datetime, dt.datetime]] = []
    day = first
    while day <= last:
        o = dt.datetime.combine(day, site.opens_at, tzinfo=zone)
        c = dt.datetime.combine(day, site.closes_at, tzinfo=zone)
        if c <= o:
            c += dt.timedelta(days=1)
        o, c = max(o.astimezone(dt.UTC), start), min(c.astimezone(dt.UTC), end)
        if c > o:
            if out and out[-1][1] >= o:
                out[-1] = (out[-1][0], max(out[-1][1], c))
            else:
                out.append((o, c))
        day += dt.timedelta(days=1)
    return out


def open_hours(site: Site, start: dt.datetime, end: dt.datetime, tz: str) -> float:
    return sum((c - o).total_seconds() for o, c in open_windows(site, start, end, tz)) / 3600.0


# --- (a) buildings to sites ------------------------------------------------------------------------------------------


def _xy(lon: np.ndarray, lat: np.ndarray, lat0: float) -> np.ndarray:
    """Local planar metres (equirectangular around ``lat0``): accurate to well under 1 % across a district."""
    return np.column_stack((lon * EARTH_M_PER_DEG_LON_EQ * math.cos(math.radians(lat0)), lat * EARTH_M_PER_DEG_LAT))


def nearest_sites(b_xy: np.ndarray, s_xy: np.ndarray, k: int, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Indices (nearest first) and distances (m) of the ``k`` nearest sites of every building."""
    n, m = len(b_xy), len(s_xy)
    k = max(1, min(k, m))
    idx = np.empty((n, k), dtype=np.int64)
    dist = np.empty((n, k), dtype=np.float64)
    for lo in range(0, n, chunk):
        part = b_xy[lo:lo + chunk]
        d2 = ((part[:, None, :] - s_xy[None, :, :]) ** 2).sum(axis=2)
        if k < m:
            sel = np.argpartition(d2, k - 1, axis=1)[:, :k]
        else:
            sel = np.broadcast_to(np.arange(m), (len(part), m)).copy()
        sd = np.take_along_axis(d2, sel, axis=1)
        order = np.argsort(sd, axis=1, kind="stable")
        idx[lo:lo + chunk] = np.take_along_axis(sel, order, axis=1)
        dist[lo:lo + chunk] = np.sqrt(np.take_along_axis(sd, order, axis=1))
    return idx, dist


@dataclass
class SiteLoad:
    site_id: int
    buildings: int = 0
    residents: int = 0
    capacity: int = 0  # people it can sample in the window at the target utilisation
    load: float | None = 0.0  # residents / capacity (None: residents but no capacity in the window)
    first_slot: dt.datetime | None = None
    last_slot_end: dt.datetime | None = None
    residents_after_deadline: int = 0

    def as_dict(self) -> dict:
        return {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in self.__dict__.items()}


@dataclass
class Assignment:
    building_id: int
    site_id: int
    residents: int
    distance_m: int
    slot_start: dt.datetime
    slot_end: dt.datetime


@dataclass
class AssignmentPlan:
    assignments: list[Assignment]
    sites: list[SiteLoad]
    totals: dict = field(default_factory=dict)


def _site_capacities(sites: Sequence[Site], start, deadline, tz, utilisation) -> np.ndarray:
    return np.array([s.capacity_per_hour * utilisation * open_hours(s, start, deadline, tz) for s in sites])


def assign_nearest(b_lon, b_lat, sites: Sequence[Site]) -> tuple[np.ndarray, np.ndarray]:
    """The plain baseline: every building to its nearest site (index into ``sites``, distance m)."""
    lat0 = float(np.mean(b_lat)) if len(b_lat) else 30.0
    b_xy = _xy(np.asarray(b_lon, float), np.asarray(b_lat, float), lat0)
    s_xy = _xy(np.array([s.lon for s in sites]), np.array([s.lat for s in sites]), lat0)
    idx, dist = nearest_sites(b_xy, s_xy, 1)
    return idx[:, 0], dist[:, 0]


def balance(residents: np.ndarray, idx: np.ndarray, dist: np.ndarray, capacity: np.ndarray,
            b_xy: np.ndarray | None = None, s_xy: np.ndarray | None = None) -> np.ndarray:
    """Min-cost flow over the candidate arcs: the chosen site index of every building (see the module docstring).
    ``b_xy``/``s_xy`` (planar metres) let buildings whose candidate sites are all full look at every site."""
    from ortools.graph.python import min_cost_flow

    n, k = idx.shape
    m = len(capacity)
    residents = residents.astype(np.int64)
    demand = int(residents.sum())
    chosen = idx[:, 0].copy()
    if demand == 0:
        return chosen
    cap = np.maximum(np.ceil(capacity), 0).astype(np.int64)
    if cap.sum() < demand:  # not enough room in the window: scale every site up in proportion
        total = cap.sum()
        cap = np.ceil(capacity * (demand / total)).astype(np.int64) if total > 0 else np.full(m, -(-demand // m))
    # Nodes: buildings 0..n-1, sites n..n+m-1, overflow n+m, sink n+m+1.
    overflow, sink = n + m, n + m + 1
    tails = np.concatenate([np.repeat(np.arange(n), k), np.arange(n), n + np.arange(m), [overflow]])
    heads = np.concatenate([n + idx.ravel(), np.full(n, overflow), np.full(m, sink), [sink]])
    caps = np.concatenate([np.repeat(residents, k), residents, cap, [demand]])
    costs = np.concatenate([np.rint(dist.ravel()).astype(np.int64), np.full(n, OVERFLOW_COST), np.zeros(m + 1, np.int64)])
    smcf = min_cost_flow.SimpleMinCostFlow()
    arcs = smcf.add_arcs_with_capacity_and_unit_cost(tails.astype(np.int32), heads.astype(np.int32),
                                                     caps.astype(np.int64), costs.astype(np.int64))
    supplies = np.zeros(n + m + 2, dtype=np.int64)
    supplies[:n] = residents
    supplies[sink] = -demand
    smcf.set_nodes_supplies(np.arange(n + m + 2, dtype=np.int32), supplies)
    status = smcf.solve()
    if status != smcf.OPTIMAL:  # pragma: no cover - the overflow arcs make every instance feasible
        raise PlanningError("sites", f"the assignment could not be solved (status {status})")
    flows = smcf.flows(arcs)[: n * k].reshape(n, k)
    over = smcf.flows(arcs)[n * k: n * k + n]
    best = np.argmax(flows, axis=1)
    chosen = np.take_along_axis(idx, best[:, None], axis=1)[:, 0]
    # Buildings the optimum sent (mostly) to the overflow: their candidate sites are full. Each goes to the nearest
    # site of all with room left (largest first), else to the site with the most room.
    spill = np.nonzero((over > flows.max(axis=1)) & (residents > 0))[0]
    if len(spill):
        kept = np.setdiff1d(np.arange(n), spill)
        load = np.bincount(chosen[kept], weights=residents[kept], minlength=m).astype(float)
        for b in spill[np.argsort(-residents[spill], kind="stable")]:
            if b_xy is not None and s_xy is not None:
                candidates = np.argsort(((s_xy - b_xy[b]) ** 2).sum(axis=1), kind="stable")
            else:
                candidates = idx[b]
            room = cap[candidates] - load[candidates]
            fits = np.nonzero(room >= residents[b])[0]
            j = candidates[fits[0]] if len(fits) else candidates[int(np.argmax(room))]
            chosen[b] = j
            load[j] += residents[b]
    return chosen


def _slots(site: Site, start: dt.datetime, tz: str, slot_minutes: int, horizon: dt.datetime):
    """Consecutive slots (start, end) in the site's opening hours from ``start`` until ``horizon``."""
    step = dt.timedelta(minutes=slot_minutes)
    for o, c in open_windows(site, start, horizon, tz):
        t = o
        while t < c:
            yield t, min(t + step, c)
            t += step


def schedule(site: Site, residents: Sequence[int], *, start: dt.datetime, deadline: dt.datetime, tz: str,
             slot_minutes: int, utilisation: float, horizon_days: int = 14) -> list[tuple[dt.datetime, dt.datetime]]:
    """Slot start/end for each building queued at ``site`` (in the given order)."""
    per_hour = site.capacity_per_hour * utilisation
    out: list[tuple[dt.datetime, dt.datetime]] = []
    slots = _slots(site, start, tz, slot_minutes, deadline + dt.timedelta(days=horizon_days))
    current = next(slots, None)
    if current is None:
        raise PlanningError("sites", f"site {site.id} is never open between the start and {horizon_days} days after the deadline")
    room = per_hour * (current[1] - current[0]).total_seconds() / 3600.0
    for need in residents:
        begin = current
        need = float(need)
        while need > room + 1e-9:
            need -= room
            nxt = next(slots, None)
            if nxt is None:  # beyond the horizon: the last slot takes the rest
                room = need
                break
            current = nxt
            room = per_hour * (current[1] - current[0]).total_seconds() / 3600.0
        room -= need
        out.append((begin[0], current[1]))
        if room <= 1e-9:
            nxt = next(slots, None)
            if nxt is not None:
                current = nxt
                room = per_hour * (current[1] - current[0]).total_seconds() / 3600.0
    return out


def assign_buildings(*, building_ids: Sequence[int], residents: Sequence[int], lon: Sequence[float],
                     lat: Sequence[float], sites: Sequence[Site], start: dt.datetime, deadline: dt.datetime, tz: str,
                     order: Sequence[int] | None = None, slot_minutes: int = 30, utilisation: float = 0.85,
                     neighbours: int = 8) -> AssignmentPlan:
    """Assign buildings to sites and give each a time slot (see the module docstring)."""
    if not sites:
        raise PlanningError("sites", "no active sampling site to assign buildings to")
    if deadline <= start:
        raise PlanningError("deadline", "the deadline must be after the start")
    if not 0.05 <= utilisation <= 1.0:
        raise PlanningError("utilisation", f"must lie between 0.05 and 1, got {utilisation}")
    if not 5 <= slot_minutes <= 24 * 60:
        raise PlanningError("slot_minutes", f"must lie between 5 and 1440, got {slot_minutes}")
    ids = np.asarray(building_ids, dtype=np.int64)
    res = np.asarray(residents, dtype=np.int64)
    n = len(ids)
    if n == 0:
        return AssignmentPlan([], [SiteLoad(site_id=s.id) for s in sites], {"buildings": 0, "residents": 0})
    lat0 = float(np.mean(lat))
    b_xy = _xy(np.asarray(lon, float), np.asarray(lat, float), lat0)
    s_xy = _xy(np.array([s.lon for s in sites]), np.array([s.lat for s in sites]), lat0)
    capacity = _site_capacities(sites, start, deadline, tz, utilisation)
    idx, dist = nearest_sites(b_xy, s_xy, neighbours)
    chosen = balance(res, idx, dist, capacity, b_xy, s_xy)
    distance = np.sqrt(((b_xy - s_xy[chosen]) ** 2).sum(axis=1))
    key = np.asarray(order, dtype=np.int64) if order is not None else np.zeros(n, dtype=np.int64)
    assignments: list[Assignment] = []
    loads: list[SiteLoad] = []
    for j, site in enumerate(sites):
        mine = np.nonzero(chosen == j)[0]
        load = SiteLoad(site_id=site.id, capacity=int(capacity[j]))
        if len(mine):
            mine = mine[np.lexsort((distance[mine], key[mine]))]
            slots = schedule(site, res[mine].tolist(), start=start, deadline=deadline, tz=tz,
                             slot_minutes=slot_minutes, utilisation=utilisation)
            for b, (s0, s1) in zip(mine.tolist(), slots, strict=True):
                assignments.append(Assignment(int(ids[b]), site.id, int(res[b]), int(round(distance[b])), s0, s1))
                if s1 > deadline:
                    load.residents_after_deadline += int(res[b])
            load.buildings = len(mine)
            load.residents = int(res[mine].sum())
            load.first_slot = slots[0][0]
            load.last_slot_end = max(s1 for _, s1 in slots)
        # No capacity in the window (closed throughout): the load is undefined (None: JSON has no infinity).
        load.load = round(load.residents / load.capacity, 3) if load.capacity else (None if load.residents else 0.0)
        loads.append(load)
    nearest_d = dist[:, 0]
    total = int(res.sum())
    weights = np.maximum(res, 0)
    totals = {
        "buildings": n,
        "residents": total,
        "sites": len(sites),
        "capacity": int(capacity.sum()),
        "over_capacity": bool(total > capacity.sum()),
        "mean_distance_m": round(float(np.average(distance, weights=weights)) if total else float(distance.mean()), 1),
        "max_distance_m": int(round(float(distance.max()))),
        "mean_nearest_distance_m": round(float(np.average(nearest_d, weights=weights)) if total else float(nearest_d.mean()), 1),
        "buildings_not_at_nearest": int((chosen != idx[:, 0]).sum()),
        "max_load": max((s.load for s in loads if s.capacity), default=0.0),
        "residents_after_deadline": sum(s.residents_after_deadline for s in loads),
        "last_slot_end": max((s.last_slot_end for s in loads if s.last_slot_end), default=None),
    }
    return AssignmentPlan(assignments, loads, totals)


# --- (b) estimate a round --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolGroup:
    """People sampled with the same tube rule: ``tubes`` tubes for ``population`` people (ceil(pop / k), or one per
    household where households share a tube)."""

    population: int
    pool_size: int
    tubes: int


def pool_group(population: int, pool_size: int) -> PoolGroup:
    return PoolGroup(population, pool_size, -(-population // max(1, pool_size)) if population > 0 else 0)


@dataclass(frozen=True)
class Lab:
    id: int
    tubes_per_hour: int


CONSTRAINTS = ("samplers", "sites", "tubes", "labs")


def _rates(sites: Sequence[Site], desk_rate: float, staff_per_desk: float) -> tuple[np.ndarray, np.ndarray]:
    site_limit = np.array([min(s.capacity_per_hour, s.desks * desk_rate) for s in sites], dtype=float)
    sampler_limit = np.array([s.staff / staff_per_desk * desk_rate for s in sites], dtype=float)
    return site_limit, sampler_limit


def _open_matrix(sites: Sequence[Site], start: dt.datetime, steps: int, step: dt.timedelta, tz: str) -> np.ndarray:
    """Fraction of each step each site is open: shape (sites, steps)."""
    end = start + step * steps
    out = np.zeros((len(sites), steps))
    step_s = step.total_seconds()
    cache: dict[tuple, np.ndarray] = {}
    for i, s in enumerate(sites):
        key = (s.opens_at, s.closes_at)
        if key not in cache:
            row = np.zeros(steps)
            for o, c in open_windows(s, start, end, tz):
                a = (o - start).total_seconds() / step_s
                b = (c - start).total_seconds() / step_s
                ia, ib = int(math.floor(a)), int(math.ceil(b))
                row[ia:ib] = 1.0
                row[ia] -= a - ia  # partial first and last steps
                if ib - 1 >= 0:
                    row[ib - 1] -= ib - b
            cache[key] = np.clip(row, 0.0, 1.0)
        out[i] = cache[key]
    return out


def _first_reach(cum: np.ndarray, target: float, step_h: float) -> float | None:
    """Hours from the start until the cumulative series reaches ``target`` (linear within a step)."""
    if target <= 0:
        return 0.0
    hit = np.nonzero(cum >= target - 1e-6)[0]
    if not len(hit):
        return None
    i = int(hit[0])
    before = cum[i - 1] if i > 0 else 0.0
    inc = cum[i] - before
    frac = (target - before) / inc if inc > 0 else 1.0
    return (i + frac) * step_h


def _simulate(*, per_step: np.ndarray, people: float, tubes_total: float, tubes_cap: float, lab_per_step: float,
              delay_steps: int, step_h: float, assay_h: float) -> dict:
    k_eff = people / tubes_total if tubes_total else 1.0
    reachable = min(people, tubes_cap * k_eff)
    sampled = np.minimum(np.cumsum(per_step), reachable)
    tubes = sampled / k_eff
    tubes_target = reachable / k_eff
    arrived = np.concatenate([np.zeros(delay_steps), tubes])[: len(tubes)]
    processed = np.empty_like(arrived)
    done = 0.0
    for i, a in enumerate(arrived.tolist()):
        done = min(a, done + lab_per_step)
        processed[i] = done
    backlog = arrived - processed
    peak_i = int(np.argmax(backlog)) if len(backlog) else 0
    sampling_h = _first_reach(sampled, reachable, step_h)
    results_h = _first_reach(processed, tubes_target, step_h)
    return {
        "sampled": sampled, "arrived": arrived, "processed": processed, "backlog": backlog,
        "reachable": reachable, "tubes_target": tubes_target,
        "sampling_h": sampling_h if reachable >= people - 1e-6 else None,
        "sampling_stops_h": sampling_h,
        "results_h": (results_h + assay_h) if results_h is not None and reachable >= people - 1e-6 else None,
        "results_reachable_h": (results_h + assay_h) if results_h is not None else None,
        "peak_backlog": float(backlog[peak_i]) if len(backlog) else 0.0,
        "peak_backlog_h": (peak_i + 1) * step_h,  # the series hold each step's state at its end
    }


def estimate_round(*, population: int, sites: Sequence[Site], labs: Sequence[Lab], groups: Sequence[PoolGroup] | None,
                   start: dt.datetime, deadline: dt.datetime, tz: str, tubes_available: int | None = None,
                   transport_hours: float = 1.5, assay_hours: float = 0.0, desk_rate: float = 120.0,
                   staff_per_desk: float = 2.0, prevalence: float = 0.0, step_minutes: int = 5,
                   horizon_days: int = 10) -> dict:
    """Estimate a round; see the module docstring. Times in the answer are aware UTC datetimes (None: not reached
    within ``horizon_days`` of the deadline)."""
    if population < 0:
        raise PlanningError("population", "must not be negative")
    if deadline <= start:
        raise PlanningError("deadline", "the deadline must be after the start")
    for name, value, lo in (("transport_hours", transport_hours, 0.0), ("assay_hours", assay_hours, 0.0)):
        if not math.isfinite(value) or value < lo or value > 72:
            raise PlanningError(name, f"must lie between 0 and 72 hours, got {value}")
    if not math.isfinite(desk_rate) or desk_rate <= 0:
        raise PlanningError("desk_rate", f"must be positive, got {desk_rate}")
    if not math.isfinite(staff_per_desk) or staff_per_desk <= 0:
        raise PlanningError("staff_per_desk", f"must be positive, got {staff_per_desk}")
    if tubes_available is not None and tubes_available < 0:
        raise PlanningError("tubes_available", "must not be negative")
    if not 0.0 <= prevalence < 1.0:
        raise PlanningError("prevalence", f"must lie in [0, 1), got {prevalence}")
    groups = list(groups) if groups else [pool_group(population, 1)]
    tubes_needed = sum(g.tubes for g in groups)
    people = float(sum(g.population for g in groups))
    step = dt.timedelta(minutes=step_minutes)
    step_h = step_minutes / 60.0
    window_h = (deadline - start).total_seconds() / 3600.0
    steps = int(math.ceil((window_h + 24 * horizon_days) / step_h))
    deadline_i = int(round(window_h / step_h))

    site_limit, sampler_limit = _rates(sites, desk_rate, staff_per_desk)
    actual = np.minimum(site_limit, sampler_limit)
    open_m = _open_matrix(sites, start, steps, step, tz) if sites else np.zeros((0, steps))

    def per_step(rates):
        return (rates[:, None] * open_m).sum(axis=0) * step_h if len(sites) else np.zeros(steps)

    lab_rate = float(sum(max(0, lab.tubes_per_hour) for lab in labs))
    delay_steps = int(round(transport_hours / step_h))
    cap = float(tubes_available) if tubes_available is not None else math.inf
    base = dict(people=people, tubes_total=float(tubes_needed), delay_steps=delay_steps, step_h=step_h,
                assay_h=assay_hours)
    run = _simulate(per_step=per_step(actual), tubes_cap=cap, lab_per_step=lab_rate * step_h, **base)
    relaxed = {
        "samplers": _simulate(per_step=per_step(site_limit), tubes_cap=cap, lab_per_step=lab_rate * step_h, **base),
        "sites": _simulate(per_step=per_step(sampler_limit), tubes_cap=cap, lab_per_step=lab_rate * step_h, **base),
        "tubes": _simulate(per_step=per_step(actual), tubes_cap=math.inf, lab_per_step=lab_rate * step_h, **base),
        "labs": _simulate(per_step=per_step(actual), tubes_cap=cap, lab_per_step=math.inf, **base),
    }

    def at(hours):
        return None if hours is None else start + dt.timedelta(hours=hours)

    def finish(sim):  # hours until the last result; inf when never
        return sim["results_h"] if sim["results_h"] is not None else math.inf

    current = finish(run)
    alternatives = {name: finish(sim) for name, sim in relaxed.items()}
    saved = {name: (current - alt if current > alt else 0.0) for name, alt in alternatives.items()}
    tolerance = max(step_h, 0.25)
    binding = None
    if people > 0:
        if tubes_available is not None and tubes_available < tubes_needed:
            binding = "tubes"  # the round cannot be completed at all without more tubes
        elif not sites or float(site_limit.sum()) == 0:
            binding = "sites"
        elif float(sampler_limit.sum()) == 0:
            binding = "samplers"
        elif lab_rate == 0:
            binding = "labs"
        else:
            best = min(CONSTRAINTS, key=lambda c: (alternatives[c], CONSTRAINTS.index(c)))
            if saved[best] > tolerance:
                binding = best
            else:  # sampling sets the pace and both of its limits are equal at the sites that matter
                binding = "sites" if float(site_limit.sum()) <= float(sampler_limit.sum()) else "samplers"
    expected_retests = 0.0
    if prevalence > 0:
        from jingkong.testing.pooling import pool_positive_probability

        for g in groups:
            if g.pool_size > 1 and g.tubes:
                expected_retests += g.tubes * pool_positive_probability(g.pool_size, prevalence) * (g.population / g.tubes)
    sampled_by_deadline = float(run["sampled"][min(deadline_i, steps) - 1]) if deadline_i > 0 else 0.0
    results_by_deadline = float(run["processed"][min(deadline_i, steps) - 1]) if deadline_i > 0 else 0.0
    open_h_by_deadline = [open_hours(s, start, deadline, tz) for s in sites]
    capacity_by_deadline = float(sum(r * h for r, h in zip(actual, open_h_by_deadline, strict=True)))

    def hours_or_none(h):
        return None if h is None or math.isinf(h) else round(h, 2)

    timeline = _timeline(run, start, step_h, steps, finish_h=run["results_reachable_h"] or run["sampling_stops_h"])
    k_eff = people / tubes_needed if tubes_needed else 1.0
    return {
        "population": int(people),
        "tubes_needed": int(tubes_needed),
        "mean_pool_size": round(k_eff, 2),
        "start": start,
        "deadline": deadline,
        "sampling_finish": at(run["sampling_h"]),
        "results_finish": at(run["results_h"]),
        "sampling_hours": hours_or_none(run["sampling_h"]),
        "results_hours": hours_or_none(run["results_h"]),
        "meets_deadline": {"sampling": bool(run["sampling_h"] is not None and run["sampling_h"] <= window_h + 1e-6),
                           "results": bool(run["results_h"] is not None and run["results_h"] <= window_h + 1e-6)},
        "sampled_by_deadline": int(round(sampled_by_deadline)),
        "share_sampled_by_deadline": round(sampled_by_deadline / people, 4) if people else 1.0,
        "tubes_resulted_by_deadline": int(round(results_by_deadline)),
        "peak_lab_backlog_tubes": int(round(run["peak_backlog"])),
        "peak_lab_backlog_at": at(run["peak_backlog_h"]) if run["peak_backlog"] > 0.5 else None,
        "expected_retests": int(round(expected_retests)),
        "binding": binding,
        "constraints": {
            "samplers": {
                "staff": int(sum(s.staff for s in sites)),
                "people_per_hour": round(float(sampler_limit.sum()), 1),
                "hours_saved_if_unlimited": hours_or_none(saved["samplers"]),
                "binds": bool(saved["samplers"] > tolerance),
            },
            "sites": {
                "sites": len(sites),
                "desks": int(sum(s.desks for s in sites)),
                "people_per_hour": round(float(site_limit.sum()), 1),
                "hours_saved_if_unlimited": hours_or_none(saved["sites"]),
                "binds": bool(saved["sites"] > tolerance),
            },
            "tubes": {
                "needed": int(tubes_needed),
                "available": tubes_available,
                "short": max(0, int(tubes_needed - tubes_available)) if tubes_available is not None else 0,
                "people_without_tube": int(round(people - run["reachable"])),
                "hours_saved_if_unlimited": hours_or_none(saved["tubes"]),
                "binds": bool(saved["tubes"] > tolerance or (tubes_available is not None and tubes_available < tubes_needed)),
            },
            "labs": {
                "labs": len(labs),
                "tubes_per_hour": round(lab_rate, 1),
                "hours_to_test_all": round(tubes_needed / lab_rate, 2) if lab_rate else None,
                "hours_saved_if_unlimited": hours_or_none(saved["labs"]),
                "binds": bool(saved["labs"] > tolerance),
            },
        },
        "sampling": {
            "people_per_hour": round(float(actual.sum()), 1),
            "capacity_by_deadline": int(round(capacity_by_deadline)),
            "needed_people_per_hour_to_meet_deadline": round(people / window_h, 1) if window_h else None,
        },
        "assumptions": {"desk_rate": desk_rate, "staff_per_desk": staff_per_desk, "transport_hours": transport_hours,
                        "assay_hours": assay_hours, "step_minutes": step_minutes, "prevalence": prevalence,
                        "labs_open_hours": "around the clock"},
        "timeline": timeline,
    }


def _timeline(run: dict, start: dt.datetime, step_h: float, steps: int, finish_h: float | None,
              max_rows: int = 72) -> list[dict]:
    """Hourly (or coarser) rows until the last result: sampled, tubes at the lab waiting, tubes resulted."""
    end_h = (finish_h or steps * step_h) + 1.0
    every_h = max(1, int(math.ceil(end_h / max_rows)))
    rows = []
    h = every_h
    while h <= end_h + every_h and h * 1.0 / step_h <= steps:
        i = min(steps, int(round(h / step_h))) - 1
        rows.append({"at": start + dt.timedelta(hours=h), "sampled": int(round(float(run["sampled"][i]))),
                     "lab_backlog": int(round(float(run["backlog"][i]))),
                     "resulted": int(round(float(run["processed"][i])))})
        if finish_h is not None and h >= finish_h:
            break
        h += every_h
    return rows
