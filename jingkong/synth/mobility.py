"""Daily venue check-ins (场所码 scans) from a simple, vectorised mobility model.

Per person and day:

* commuters check in at their workplace venue on work days (Mon–Fri; key-industry shift workers 5 days in 7, ship
  crew occasionally), pupils at their school on school days;
* truck drivers also scan at two port terminals / cold-chain warehouses while working;
* everybody makes a few everyday check-ins (supermarket, market, restaurant, pharmacy, ...) chosen among the 24
  venues nearest their home grid, nearer ones more often; some commuters' check-ins are near their workplace at lunch;
* counts: ~4–5 a day for working-age adults, fewer for children, the elderly and people with limited mobility.

Times are local (Asia/Shanghai, UTC+8, no DST) and stored as UTC microseconds; check-out = check-in + a dwell time
that depends on the venue type. Rows are sorted by check-in minute.
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
    rate = np.select([age < 3, age < 18, age < 65], [0.8, 1.8, 4.2], 2.2).astype(np.float32)
    rate = np.where(people.vulnerable & VULN_LIMITED, rate * 0.4, rate).astype(np.float32)
    ind = people.industry
    codes = data.INDUSTRY_CODES
    vtype = np.array([TYPE_CODES.index(t) for t in venues.type], np.int8)
    lo = np.array([DWELL[t][0] for t in TYPE_CODES])[vtype] * 60
    hi = np.array([DWELL[t][1] for t in TYPE_CODES])[vtype] * 60
    freight = np.concatenate([venues.key_sites.get("port", np.empty(0, np.int64)),
                              venues.key_sites.get("cold_chain", np.empty(0, np.int64))])
    return MobilityContext(
        home_grid=hh_grid[people.household],
        work_venue=work,
        work_grid=np.where(work >= 0, venues.grid[np.maximum(work, 0)], -1),
        school_venue=school,
        shift_phase=rng.integers(0, 7, len(people)).astype(np.int8),
        base_rate=rate,
        is_driver=ind == codes.index("transport"),
        is_crew=ind == codes.index("ship_crew"),
        shift_worker=np.isin(ind, [codes.index(c) for c in ("port", "cold_chain", "hospital", "transport")]),
        venue_type=vtype, dwell_lo=lo.astype(np.int64), dwell_hi=hi.astype(np.int64),
        local_candidates=venues.local_candidates, freight_sites=freight,
    )


def _segments(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For per-person counts: the person of each row, the row's slot within the person, and the person's count."""
    person = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
    starts = np.cumsum(counts) - counts
    slot = np.arange(len(person), dtype=np.int32) - starts[person].astype(np.int32)
    return person, slot, counts[person]


def day_checkins(ctx: MobilityContext, day: dt.date, rng: np.random.Generator):
    """Arrays (venue, person, checkin_us, checkout_us) for one local day, sorted by check-in minute."""
    n = len(ctx.home_grid)
    weekday = day.weekday() < 5
    day_us = (np.datetime64(day, "s").astype(np.int64) - UTC_OFFSET_S) * 1_000_000
    on_shift = ((ctx.shift_phase + day.toordinal() % 7) % 7) < 5
    works = (ctx.work_venue >= 0) & np.where(ctx.shift_worker, on_shift, weekday) & (rng.random(n) < 0.95)
    works &= ~ctx.is_crew | (rng.random(n) < 0.3)
    studies = (ctx.school_venue >= 0) & weekday & (rng.random(n) < 0.97)
    busy = works | studies

    # 1. workplace / school check-ins
    w = np.flatnonzero(works)
    s = np.flatnonzero(studies)
    start_w = np.clip(rng.normal(8 * 3600, 1500, len(w)), 5 * 3600, 11 * 3600).astype(np.int64)
    dur_w = rng.integers(8 * 3600, 10 * 3600 + 1800, len(w))
    start_s = np.clip(rng.normal(7 * 3600 + 40 * 60, 600, len(s)), 6 * 3600, 9 * 3600).astype(np.int64)
    dur_s = rng.integers(7 * 3600 + 1800, 9 * 3600, len(s))
    parts_v = [ctx.work_venue[w], ctx.school_venue[s]]
    parts_p = [w.astype(np.int32), s.astype(np.int32)]
    parts_t = [start_w, start_s]
    parts_d = [dur_w, dur_s]

    # 2. truck drivers scan at two freight sites during their shift
    d = np.flatnonzero(works & ctx.is_driver)
    if len(d) and len(ctx.freight_sites):
        d2 = np.repeat(d, 2)
        parts_v.append(ctx.freight_sites[rng.integers(0, len(ctx.freight_sites), len(d2))])
        parts_p.append(d2.astype(np.int32))
        parts_t.append(rng.integers(9 * 3600, 16 * 3600, len(d2)))
        parts_d.append(rng.integers(15 * 60, 75 * 60, len(d2)))

    # 3. everyday check-ins
    counts = rng.poisson(np.where(busy, ctx.base_rate * 0.85, ctx.base_rate + 0.5)).astype(np.int32)
    person, slot, count = _segments(counts)
    m = len(person)
    is_busy = busy[person]
    near_work = is_busy & (slot == 0) & (ctx.work_grid[person] >= 0) & (rng.random(m) < 0.35)
    grid = np.where(near_work, ctx.work_grid[person], ctx.home_grid[person])
    k = ctx.local_candidates.shape[1]
    pick = (k * rng.random(m) ** 2).astype(np.int64)
    venue = ctx.local_candidates[grid, pick]
    # evening window for the busy, daytime for everyone else; lunch for near-work visits
    ws = np.where(is_busy, 17 * 3600 + 45 * 60, 7 * 3600)
    we = np.where(is_busy, 21 * 3600 + 30 * 60, 21 * 3600)
    slot_len = (we - ws) / count
    start = (ws + (slot + rng.random(m) * 0.5) * slot_len).astype(np.int64)
    start = np.where(near_work, rng.integers(11 * 3600 + 40 * 60, 12 * 3600 + 30 * 60, m), start)
    lo, hi = ctx.dwell_lo[venue], ctx.dwell_hi[venue]
    dwell = lo + (rng.random(m) * (hi - lo)).astype(np.int64)
    dwell = np.maximum(np.minimum(dwell, (slot_len * 0.45).astype(np.int64)), 180)
    parts_v.append(venue)
    parts_p.append(person)
    parts_t.append(start)
    parts_d.append(dwell)

    venue = np.concatenate(parts_v).astype(np.int32)
    person = np.concatenate(parts_p)
    start = np.concatenate(parts_t) + rng.integers(0, 60, sum(len(x) for x in parts_t))
    dwell = np.concatenate(parts_d)
    order = np.argsort((start // 60).astype(np.int16), kind="stable")
    checkin = day_us + start[order] * 1_000_000
    return venue[order], person[order], checkin, checkin + dwell[order] * 1_000_000
