"""Daily venue check-ins (场所码 scans) from a simple, vectorised mobility model.

Per person and day:

* commuters check in at their workplace venue on work days (Mon–Fri; key-industry shift workers 5 days in 7, ship
  crew occasionally), pupils at their school on school days;
* truck drivers also scan at two port terminals / cold-chain warehouses while working;
* everybody makes a few everyday check-ins (supermarket, market, restaurant, pharmacy, ...) chosen among the 24
  venues nearest their home grid, nearer ones more often; some commuters' check-ins are near their workplace at lunch;
* counts: ~6 a day for working-age adults (a workplace scan plus the everyday ones; 2022 场所码 rules meant a scan at
  every shop, market, restaurant and building entrance), fewer for children, the elderly and people with limited
  mobility; on average ≈ 5 per resident per day over a week.

Times are local (Asia/Shanghai, UTC+8, no DST) and stored as UTC microseconds; check-out = check-in + a dwell time
that depends on the venue type. Rows are sorted by check-in minute.

Scale: people are processed in chunks (``chunk`` persons at a time) so the per-row temporaries stay small, and every
random quantity has its own stream for the day, drawn in person order with draws that do not depend on how the
population is split; so the rows are the same whatever the chunk size. Rows are kept as int32 (venue, person, seconds
after midnight, dwell seconds): 16 bytes a row until they are written.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from jingkong.synth import data
from jingkong.synth.population import VULN_LIMITED, People
from jingkong.synth.venues import Venues

TYPE_CODES = ["supermarket", "wet_market", "restaurant", "pharmacy", "clinic", "school", "factory", "office",
              "port_terminal", "cold_chain", "station", "hotel", "gym", "government", "other"]
# dwell minutes (min, max) per venue type for an everyday visit
DWELL = {"supermarket": (10, 45), "wet_market": (10, 35), "restaurant": (25, 80), "pharmacy": (5, 15),
         "clinic": (20, 120), "school": (20, 60), "factory": (30, 120), "office": (30, 120), "port_terminal": (30, 120),
         "cold_chain": (30, 90), "station": (5, 30), "hotel": (60, 600), "gym": (45, 120), "government": (15, 60),
         "other": (10, 60)}
UTC_OFFSET_S = 8 * 3600
# everyday check-ins per day (Poisson mean) for ages 0–2, 3–17, 18–64, 65+; busy (working or at school) people make
# BUSY_FACTOR of that in the evening, the others half a visit more during the day
RATES = (1.1, 2.4, 5.6, 3.25)
BUSY_FACTOR = 0.85
DEFAULT_CHUNK = 1 << 18


@dataclass
class MobilityContext:
    """Per-person facts the daily model needs, computed once."""

    home_grid: np.ndarray
    work_venue: np.ndarray
    work_grid: np.ndarray
    school_venue: np.ndarray
    shift_phase: np.ndarray
    base_rate: np.ndarray
    is_driver: np.ndarray
    is_crew: np.ndarray
    shift_worker: np.ndarray
    venue_type: np.ndarray  # per venue: index into TYPE_CODES
    dwell_lo: np.ndarray  # per venue, seconds
    dwell_hi: np.ndarray
    local_candidates: np.ndarray
    freight_sites: np.ndarray


def make_context(people: People, hh_grid: np.ndarray, venues: Venues, work: np.ndarray, school: np.ndarray,
                 rng: np.random.Generator) -> MobilityContext:
    age = people.age
    rate = np.select([age < 3, age < 18, age < 65], RATES[:3], RATES[3]).astype(np.float32)
    rate = np.where(people.vulnerable & VULN_LIMITED, rate * 0.4, rate).astype(np.float32)
    ind = people.industry
    codes = data.INDUSTRY_CODES
    vtype = np.array([TYPE_CODES.index(t) for t in venues.type], np.int8)
    lo = np.array([DWELL[t][0] for t in TYPE_CODES])[vtype] * 60
    hi = np.array([DWELL[t][1] for t in TYPE_CODES])[vtype] * 60
    freight = np.concatenate([venues.key_sites.get("port", np.empty(0, np.int64)),
                              venues.key_sites.get("cold_chain", np.empty(0, np.int64))])
    return MobilityContext(
        home_grid=hh_grid[people.household].astype(np.int32),
        work_venue=work.astype(np.int32),
        work_grid=np.where(work >= 0, venues.grid[np.maximum(work, 0)], -1).astype(np.int32),
        school_venue=school.astype(np.int32),
        shift_phase=rng.integers(0, 7, len(people)).astype(np.int8),
        base_rate=rate,
        is_driver=ind == codes.index("transport"),
        is_crew=ind == codes.index("ship_crew"),
        shift_worker=np.isin(ind, [codes.index(c) for c in ("port", "cold_chain", "hospital", "transport")]),
        venue_type=vtype, dwell_lo=lo.astype(np.int64), dwell_hi=hi.astype(np.int64),
        local_candidates=venues.local_candidates.astype(np.int32), freight_sites=freight,
    )


class _Streams:
    """One random stream per quantity for a day: ``draw(name)`` gives the same Generator every time it is asked."""

    def __init__(self, seed: tuple[int, ...]):
        self.seed = seed
        self.streams: dict[str, np.random.Generator] = {}

    def __call__(self, name: str) -> np.random.Generator:
        if name not in self.streams:
            key = int.from_bytes(name.encode(), "little") % (1 << 63)
            self.streams[name] = np.random.Generator(np.random.PCG64(np.random.SeedSequence([*self.seed, key])))
        return self.streams[name]

    def uniform(self, name: str, n: int) -> np.ndarray:
        """n draws in [0, 1); chunk-invariant (one double per draw)."""
        return self(name).random(n)

    def ints(self, name: str, lo: int, hi: int, n: int) -> np.ndarray:
        """n integers in [lo, hi), one double each: every draw takes exactly one value of its stream, so splitting the
        population into chunks cannot shift the stream."""
        return lo + (self(name).random(n) * (hi - lo)).astype(np.int64)


@dataclass
class DayCheckins:
    """One day's rows, sorted by check-in minute: indices into venues / people, seconds after local midnight."""

    day_us: int  # local midnight as UTC microseconds
    venue: np.ndarray  # int32
    person: np.ndarray  # int32
    start_s: np.ndarray  # int32
    dwell_s: np.ndarray  # int32

    def __len__(self) -> int:
        return len(self.venue)


def _segments(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For per-person counts: the person of each row, the row's slot within the person, and the person's count."""
    local = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
    starts = (np.cumsum(counts) - counts).astype(np.int64)
    slot = (np.arange(len(local), dtype=np.int64) - starts[local]).astype(np.int32)
    return local, slot, counts[local]


def _chunk_rows(ctx: MobilityContext, a: int, b: int, day: dt.date, rs: _Streams) -> list[tuple]:
    """Rows for persons [a, b) as four kinds (work, school, freight, everyday) of (venue, person, start_s, dwell_s)."""
    n = b - a
    weekday = day.weekday() < 5
    on_shift = ((ctx.shift_phase[a:b] + day.toordinal() % 7) % 7) < 5
    work_venue = ctx.work_venue[a:b]
    works = (work_venue >= 0) & np.where(ctx.shift_worker[a:b], on_shift, weekday) & (rs.uniform("works", n) < 0.95)
    works &= ~ctx.is_crew[a:b] | (rs.uniform("crew", n) < 0.3)
    studies = (ctx.school_venue[a:b] >= 0) & weekday & (rs.uniform("studies", n) < 0.97)
    busy = works | studies
    kinds = []

    # 1. workplace / school check-ins
    w = np.flatnonzero(works)
    start_w = np.clip(rs("start_w").normal(8 * 3600, 1500, len(w)), 5 * 3600, 11 * 3600)
    dur_w = rs.ints("dur_w", 8 * 3600, 10 * 3600 + 1801, len(w))
    kinds.append((work_venue[w], w + a, start_w + rs.ints("jitter_w", 0, 60, len(w)), dur_w))
    s = np.flatnonzero(studies)
    start_s = np.clip(rs("start_s").normal(7 * 3600 + 40 * 60, 600, len(s)), 6 * 3600, 9 * 3600)
    dur_s = rs.ints("dur_s", 7 * 3600 + 1800, 9 * 3600, len(s))
    kinds.append((ctx.school_venue[a:b][s], s + a, start_s + rs.ints("jitter_s", 0, 60, len(s)), dur_s))

    # 2. truck drivers scan at two freight sites during their shift
    d2 = np.repeat(np.flatnonzero(works & ctx.is_driver[a:b]), 2)
    sites = ctx.freight_sites
    if len(sites) == 0:
        d2 = d2[:0]
    kinds.append((
        sites[rs.ints("freight", 0, max(len(sites), 1), len(d2))] if len(sites) else d2,
        d2 + a,
        rs.ints("freight_t", 9 * 3600, 16 * 3600, len(d2)) + rs.ints("jitter_f", 0, 60, len(d2)),
        rs.ints("freight_d", 15 * 60, 75 * 60, len(d2)),
    ))

    # 3. everyday check-ins
    rate = ctx.base_rate[a:b]
    counts = rs("count").poisson(np.where(busy, rate * BUSY_FACTOR, rate + 0.5)).astype(np.int32)
    local, slot, count = _segments(counts)
    m = len(local)
    is_busy = busy[local]
    work_grid = ctx.work_grid[a:b][local]
    near_work = is_busy & (slot == 0) & (work_grid >= 0) & (rs.uniform("near_work", m) < 0.35)
    grid = np.where(near_work, work_grid, ctx.home_grid[a:b][local])
    k = ctx.local_candidates.shape[1]
    pick = (k * rs.uniform("pick", m) ** 2).astype(np.int64)
    venue = ctx.local_candidates[grid, pick]
    # evening window for the busy, daytime for everyone else; lunch for near-work visits
    ws = np.where(is_busy, 17 * 3600 + 45 * 60, 7 * 3600)
    we = np.where(is_busy, 21 * 3600 + 30 * 60, 21 * 3600)
    slot_len = (we - ws) / count
    start = (ws + (slot + rs.uniform("slot", m) * 0.5) * slot_len).astype(np.int64)
    lunch = rs.ints("lunch", 11 * 3600 + 40 * 60, 12 * 3600 + 30 * 60, m)
    start = np.where(near_work, lunch, start) + rs.ints("jitter_e", 0, 60, m)
    lo, hi = ctx.dwell_lo[venue], ctx.dwell_hi[venue]
    dwell = lo + (rs.uniform("dwell", m) * (hi - lo)).astype(np.int64)
    dwell = np.maximum(np.minimum(dwell, (slot_len * 0.45).astype(np.int64)), 180)
    kinds.append((venue, local + a, start, dwell))
    return [tuple(np.asarray(x).astype(np.int32) for x in kind) for kind in kinds]


def day_checkins(ctx: MobilityContext, day: dt.date, seed: tuple[int, ...], chunk: int = DEFAULT_CHUNK) -> DayCheckins:
    """One local day's check-ins, sorted by check-in minute. ``seed`` names the day's random streams; the result does
    not depend on ``chunk`` (persons processed at a time), which only bounds the temporaries."""
    n = len(ctx.home_grid)
    rs = _Streams(seed)
    parts: list[list[list[np.ndarray]]] = [[[], [], [], []] for _ in range(4)]  # kind → column → chunk arrays
    for a in range(0, n, chunk):
        for kind, columns in enumerate(_chunk_rows(ctx, a, min(n, a + chunk), day, rs)):
            for col, values in enumerate(columns):
                parts[kind][col].append(values)
    # rows in kind order (work, school, freight, everyday), each in person order, then a stable sort by minute
    columns = []
    for col in range(4):
        columns.append(np.concatenate([x for kind in parts for x in kind[col]] or [np.empty(0, np.int32)]))
        for kind in parts:
            kind[col].clear()
    order = np.argsort((columns[2] // 60).astype(np.int16), kind="stable")
    for col in range(4):  # one column at a time, so only one extra copy exists
        columns[col] = columns[col][order]
    del order
    day_us = (int(np.datetime64(day, "s").astype(np.int64)) - UTC_OFFSET_S) * 1_000_000
    return DayCheckins(day_us, *columns)
