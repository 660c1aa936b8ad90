"""Households and people, vectorised with numpy (no per-person Python loops).

* Household sizes follow China's 2020 census distribution (mean ≈ 2.62), adjusted so the total is exactly N.
* Each household's first member (head) is an adult (20+); the other members are drawn from the residual distribution,
  so the whole population reproduces the China 2020 age/sex pyramid (0–14 ≈ 18 %, 60+ ≈ 18.7 %, sex ratio ≈ 105).
* About 40 % of residents are not locally registered (migrant households; heads under 40 are mostly migrants).
* Resident ID numbers: area code (Beilun/Ningbo for locals, the origin county for migrants), birth date, a sequence
  unique within (area, birth date, sex) with odd/even by sex, and the MOD 11-2 check character.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from jingkong.synth import data
from jingkong.synth.geography import Geography
from jingkong.synth.idnumber import build_ascii

VULN_ELDERLY, VULN_YOUNG_CHILD, VULN_PREGNANT, VULN_CHRONIC, VULN_LIMITED = 1, 2, 4, 8, 16
VULN_NAMES = ["elderly", "young_child", "pregnant", "chronic", "limited_mobility"]
YOUNG_CHILD_AGE = 6  # under-6s (学龄前儿童) are tagged young_child


@dataclass
class Households:
    building: np.ndarray  # index into the geography's buildings
    grid: np.ndarray
    unit: np.ndarray
    room: np.ndarray
    size: np.ndarray
    local: np.ndarray  # bool: household registered in Beilun


@dataclass
class People:
    household: np.ndarray
    member: np.ndarray  # 0 = head
    age: np.ndarray
    male: np.ndarray
    birth: np.ndarray  # datetime64[D]
    area_code: np.ndarray  # int
    origin: np.ndarray  # index into MIGRANT_ORIGINS, -1 for locals
    id_ascii: np.ndarray  # (n, 18) uint8
    surname: np.ndarray
    given1: np.ndarray
    given2: np.ndarray  # -1: single-character given name
    phone: np.ndarray  # int64
    vulnerable: np.ndarray  # bit mask
    industry: np.ndarray  # index into data.INDUSTRY_CODES (0 = none)
    employed: np.ndarray  # bool: has a workplace (key industry or other)

    def __len__(self) -> int:
        return len(self.age)


def make_households(geo: Geography) -> Households:
    """One household per occupied flat; flats are spread evenly through each building."""
    b = np.repeat(np.arange(len(geo.b_grid)), geo.b_households)
    starts = np.cumsum(geo.b_households) - geo.b_households
    k = np.arange(len(b)) - starts[b]
    capacity = geo.b_units * geo.b_floors * geo.b_per_floor
    flat = (k * capacity[b]) // geo.b_households[b]
    units = geo.b_units[b]
    level = flat // units
    unit = flat % units + 1
    room = (level // geo.b_per_floor[b] + 1) * 100 + level % geo.b_per_floor[b] + 1
    n = len(b)
    return Households(b, geo.b_grid[b], unit.astype(np.int32), room.astype(np.int32), np.zeros(n, np.int32), np.zeros(n, bool))


def _household_sizes(n_households: int, population: int, rng: np.random.Generator) -> np.ndarray:
    share = data.HOUSEHOLD_SIZE_SHARE / data.HOUSEHOLD_SIZE_SHARE.sum()
    sizes = rng.choice(np.arange(1, 8), n_households, p=share)
    sizes = sizes + (sizes == 7) * rng.binomial(1, 0.3, n_households)  # a few 8-person households
    for _ in range(100):
        diff = population - int(sizes.sum())
        if diff == 0:
            break
        if diff > 0:
            pick = rng.choice(n_households, min(diff, n_households), replace=False)
            sizes[pick] += 1
        else:
            candidates = np.flatnonzero(sizes > 1)
            pick = rng.choice(candidates, min(-diff, len(candidates)), replace=False)
            sizes[pick] -= 1
    if int(sizes.sum()) != population:
        raise ValueError("population too small for the number of households")
    return sizes.astype(np.int32)


def _pyramid_cells() -> np.ndarray:
    """P(band, sex) as an (18, 2) array [male, female]."""
    cells = np.stack([data.PYRAMID_MALE, data.PYRAMID_FEMALE], axis=1)
    return cells / cells.sum()


def _draw_age_sex(n: int, cells: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    flat = cells.ravel() / cells.sum()
    pick = rng.choice(len(flat), n, p=flat)
    band, female = pick // 2, pick % 2
    start = data.AGE_BANDS[band]
    width = np.where(band == len(data.AGE_BANDS) - 1, 15, 5)
    offset = np.where(width == 15, np.minimum(rng.geometric(0.25, n) - 1, 14), rng.integers(0, 5, n))
    return (start + offset).astype(np.int32), female == 0


def _ymd(dates: np.ndarray) -> np.ndarray:
    """YYYYMMDD integers of datetime64[D] values, through a table of the (few tens of thousands of) distinct days:
    datetime64 calendar casts of a whole population are slow."""
    if len(dates) == 0:
        return np.empty(0, np.int64)
    day = dates.astype(np.int64)
    lo = int(day.min())
    table = np.arange(lo, int(day.max()) + 1).astype("datetime64[D]")
    years = table.astype("datetime64[Y]").astype(np.int64) + 1970
    months = table.astype("datetime64[M]").astype(np.int64) % 12 + 1
    dom = (table - table.astype("datetime64[M]")).astype(np.int64) + 1
    return (years * 10000 + months * 100 + dom)[day - lo]


def make_people(hh: Households, population: int, start: dt.date, rng: np.random.Generator) -> People:
    n_hh = len(hh.building)
    hh.size[:] = _household_sizes(n_hh, population, rng)
    household = np.repeat(np.arange(n_hh, dtype=np.int64), hh.size)
    first = np.cumsum(hh.size) - hh.size
    member = (np.arange(population) - first[household]).astype(np.int32)
    head = member == 0

    cells = _pyramid_cells()
    adult_cells = cells.copy()
    adult_cells[:4] = 0  # heads are 20+
    adult_cells /= adult_cells.sum()
    residual = np.clip(population * cells - n_hh * adult_cells, 0, None)
    age = np.empty(population, np.int32)
    male = np.empty(population, bool)
    age[head], male[head] = _draw_age_sex(n_hh, adult_cells, rng)
    rest = ~head
    age[rest], male[rest] = _draw_age_sex(int(rest.sum()), residual, rng)

    # registration: household level, heads under 40 mostly migrants, older heads mostly local
    head_age = age[first]
    p_local = np.where(head_age < 40, 0.38, np.where(head_age < 60, 0.62, 0.9))
    hh.local[:] = rng.random(n_hh) < p_local
    local = hh.local[household]
    local_codes = np.array([int(c) for c, _ in data.LOCAL_ORIGINS])
    local_w = np.array([w for _, w in data.LOCAL_ORIGINS], float)
    migrant_w = np.array([w for _, _, w in data.MIGRANT_ORIGINS], float)
    migrant_codes = np.array([int(c) for c, _, _ in data.MIGRANT_ORIGINS])
    hh_origin = rng.choice(len(migrant_w), n_hh, p=migrant_w / migrant_w.sum())
    origin = np.where(local, -1, hh_origin[household])
    area_code = np.where(local, local_codes[rng.choice(len(local_w), population, p=local_w / local_w.sum())],
                         migrant_codes[np.maximum(origin, 0)])

    # birth date: the age at the start date, a uniform day within that year of life
    start64 = np.datetime64(start, "D")
    days = np.floor((age + rng.random(population)) * 365.2425).astype(np.int64)
    birth = start64 - days.astype("timedelta64[D]")
    ymd = _ymd(birth)

    # sequence: unique within (area, birth date, sex): rank within the group, spread over 0..499, parity by sex
    key = (area_code.astype(np.int64) * 100_000_000 + ymd) * 2 + male
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    new_group = np.ones(population, bool)
    new_group[1:] = sorted_key[1:] != sorted_key[:-1]
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(population), 0))
    rank = np.empty(population, np.int64)
    rank[order] = np.arange(population) - group_start
    if population and rank.max() >= 500:
        raise ValueError("more than 500 people share an area code, birth date and sex")
    offset = (key * 2654435761 >> 7) % 500
    seq = ((offset + rank * 7) % 500) * 2 + male
    id_ascii = build_ascii(area_code, ymd, seq)

    # names: most members share the head's surname
    sw = data.SURNAME_WEIGHTS / data.SURNAME_WEIGHTS.sum()
    hh_surname = rng.choice(len(sw), n_hh, p=sw)
    surname = np.where(rng.random(population) < 0.7, hh_surname[household], rng.choice(len(sw), population, p=sw))
    pool = np.where(male, len(data.GIVEN_MALE), len(data.GIVEN_FEMALE))
    given1 = (rng.random(population) * pool).astype(np.int32)
    given2 = np.where(rng.random(population) < 0.75, (rng.random(population) * pool).astype(np.int32), -1)

    # phones: 12+ have their own; younger children use the head's number
    phone = data.PHONE_PREFIXES[rng.integers(0, len(data.PHONE_PREFIXES), population)] * 100_000_000 + rng.integers(
        0, 100_000_000, population
    )
    phone = np.where(age < 12, phone[first[household]], phone)

    # vulnerable groups
    r = rng.random((3, population))
    vulnerable = np.zeros(population, np.int32)
    vulnerable |= np.where(age >= 60, VULN_ELDERLY, 0)
    vulnerable |= np.where(age < YOUNG_CHILD_AGE, VULN_YOUNG_CHILD, 0)
    vulnerable |= np.where(~male & (age >= 20) & (age <= 42) & (r[0] < 0.045), VULN_PREGNANT, 0)
    p_chronic = np.select([age < 40, age < 60, age < 75], [0.02, 0.15, 0.32], 0.42)
    vulnerable |= np.where(r[1] < p_chronic, VULN_CHRONIC, 0)
    p_limited = np.select([age < 60, age < 75, age < 85], [0.003, 0.03, 0.12], 0.3)
    vulnerable |= np.where(r[2] < p_limited, VULN_LIMITED, 0)

    # work: key industries among 18–59, other employment for most remaining working-age adults
    working_age = (age >= 18) & (age <= 59)
    industry = np.zeros(population, np.int8)
    u = rng.random(population)
    lo = 0.0
    for name, share in data.INDUSTRY_SHARE.items():
        sel = working_age & (u >= lo) & (u < lo + share)
        if name == "ship_crew":
            sel &= male
        industry[sel] = data.INDUSTRY_CODES.index(name)
        lo += share
    p_employed = np.where(male, 0.82, 0.68)
    employed = working_age & ((industry > 0) | (rng.random(population) < p_employed))
    # compact dtypes: at 10 M people every byte per person is 10 MB held for the whole run
    return People(household.astype(np.int32), member, age.astype(np.int16), male, birth, area_code.astype(np.int32),
                  origin.astype(np.int16), id_ascii, surname.astype(np.int16), given1.astype(np.int16),
                  given2.astype(np.int16), phone, vulnerable.astype(np.int8), industry, employed)
