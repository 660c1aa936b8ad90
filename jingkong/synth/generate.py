"""Generate a synthetic district directory (docs/district-format.md). Plain function, no database.

Every stage draws from its own random stream derived from the seed (and, for check-ins, the day), so the same seed
gives byte-identical CSV and Parquet files; only ``generated_at`` in manifest.json differs between runs.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jingkong.synth import data, geography, mobility, venues, writer
from jingkong.synth import population as pop

FORMAT = "jingkong-district/1"
DEFAULT_START = dt.date(2022, 1, 1)
MEAN_HOUSEHOLD_SIZE = 2.62
ATTRIBUTION = (
    "Synthetic population on the real Beilun (北仑区) base map: street polygons and division codes/names are public "
    "facts (see jingkong/data/beilun/ATTRIBUTION.md); community and grid boundaries, buildings, households, people, "
    "venues and check-ins are generated and describe no real person."
)
Progress = Callable[..., None]


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *stream])))


def generate_district(
    out: str | Path,
    *,
    population: int,
    seed: int,
    days: int = 14,
    start_date: dt.date = DEFAULT_START,
    now: dt.datetime | None = None,
    progress: Progress | None = None,
) -> dict:
    """Write the district directory ``out`` and return a summary (counts, seconds per stage)."""
    if not 1_000 <= population <= 20_000_000:
        raise ValueError("population must be between 1,000 and 20,000,000")
    if not 0 <= days <= 60:
        raise ValueError("days must be between 0 and 60")
    out = Path(out)
    if (out / "checkins").exists():
        shutil.rmtree(out / "checkins")
    out.mkdir(parents=True, exist_ok=True)
    total_steps = 5 + days
    t0 = time.perf_counter()

    def step(done: int, message: str) -> None:
        if progress:
            progress(done, total_steps, message)

    geo = geography.build_geography(population, _rng(seed, 1), MEAN_HOUSEHOLD_SIZE)
    geography.place_buildings(geo, _rng(seed, 2))
    step(1, f"base map: {len(geo.communities)} communities, {len(geo.grids)} grids, {len(geo.b_grid):,} buildings")

    hh = pop.make_households(geo)
    people = pop.make_people(hh, population, start_date, _rng(seed, 3))
    step(2, f"people: {population:,} in {len(hh.building):,} households")

    ven = venues.build_venues(geo, people, _rng(seed, 4))
    work, school = venues.assign_workplaces(geo, people, hh.grid, ven, _rng(seed, 5))
    step(3, f"venues: {len(ven):,}")

    tables = _write_base(out, geo, hh, people, ven, work)
    step(4, "wrote regions, buildings, venues, households, persons")

    ctx = mobility.make_context(people, hh.grid, ven, work, school, _rng(seed, 6))
    venue_dict, person_dict = tables
    rows = 0
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for i in range(days):
            day = start_date + dt.timedelta(days=i)
            v, p, cin, cout = mobility.day_checkins(ctx, day, _rng(seed, 7, i))
            table = writer.checkin_table(venue_dict, person_dict, v, p, cin, cout)
            if pending is not None:
                pending.result()
            path = out / "checkins" / f"day={day.isoformat()}" / "part-0.parquet"
            pending = pool.submit(writer.write_parquet, path, table)
            rows += len(v)
            step(5 + i, f"check-ins {day.isoformat()}: {len(v):,} rows")
        if pending is not None:
            pending.result()

    manifest = {
        "format": FORMAT,
        "district_code": geo.district.code,
        "district_name": geo.district.name,
        "seed": seed,
        "population": population,
        "days": days,
        "start_date": start_date.isoformat(),
        "generated_at": (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat(),
        "synthetic": True,
        "attribution": ATTRIBUTION,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    step(total_steps, f"done: {rows:,} check-ins")
    return {
        "out": str(out),
        "population": population,
        "households": len(hh.building),
        "buildings": len(geo.b_grid),
        "venues": len(ven),
        "regions": len(geo.regions()),
        "checkins": rows,
        "days": days,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def _write_base(out: Path, geo, hh, people, ven, work) -> tuple[pa.Array, pa.Array]:
    writer.write_regions(out / "regions.geojson", geo.regions())

    grid_codes = writer.strings(g.code for g in geo.grids)
    street_names = [geo.streets[s].name for s in geo.community_street]
    grid_prefix = writer.strings(
        f"北仑区{street_names[c]}{geography.place_name(geo.communities[c].name)}" for c in geo.grid_community
    )
    seq = pa.array(geo.b_seq)
    b_code = writer.join(writer.take(grid_codes, geo.b_grid), pa.scalar("B"), pc_lpad(seq, 4))
    urban = geo.community_urban[geo.grid_community][geo.b_grid]
    address = writer.join(writer.take(grid_prefix, geo.b_grid), writer.as_text(seq),
                          writer.take(writer.strings(["号", "幢"]), urban.astype(np.int64)))
    writer.write_csv(
        out / "buildings.csv",
        ["building_code", "grid_code", "address", "lon", "lat", "units", "floors", "households"],
        [b_code, writer.take(grid_codes, geo.b_grid), address, np.round(geo.b_lon, 6), np.round(geo.b_lat, 6),
         geo.b_units, geo.b_floors, geo.b_households],
    )

    venue_codes = writer.strings(ven.code)
    b_for_venue = _take_building(b_code, ven.building)
    writer.write_csv(
        out / "venues.csv",
        ["venue_code", "name", "type", "lon", "lat", "grid_code", "building_code"],
        [venue_codes, writer.strings(ven.name), writer.strings(ven.type), np.round(ven.lon, 6), np.round(ven.lat, 6),
         writer.take(grid_codes, ven.grid), b_for_venue],
    )

    unit = writer.as_text(hh.unit)
    room = writer.as_text(hh.room)
    hh_b_code = writer.take(b_code, hh.building)
    hh_code = writer.join(hh_b_code, unit, room, sep="-")
    writer.write_csv(out / "households.csv", ["household_code", "building_code", "unit", "room"],
                     [hh_code, hh_b_code, unit, room])

    ids = writer.fixed_width_strings(people.id_ascii)
    surname = writer.take(writer.strings(data.SURNAMES), people.surname)
    male_pool = writer.strings([*data.GIVEN_MALE, ""])
    female_pool = writer.strings([*data.GIVEN_FEMALE, ""])
    male = pa.array(people.male)

    def given(idx: np.ndarray) -> pa.Array:
        m = np.where(idx < 0, len(data.GIVEN_MALE), np.minimum(idx, len(data.GIVEN_MALE) - 1))
        f = np.where(idx < 0, len(data.GIVEN_FEMALE), np.minimum(idx, len(data.GIVEN_FEMALE) - 1))
        return pc.if_else(male, writer.take(male_pool, m), writer.take(female_pool, f))

    name = writer.join(surname, given(people.given1), given(people.given2))
    sex = writer.take(writer.strings(["F", "M"]), people.male.astype(np.int64))
    birth = pc.cast(pa.array(people.birth), pa.string())
    h = people.household
    local = hh.local[h]
    home_grid = hh.grid[h]
    local_addr = writer.take(grid_prefix, home_grid)
    local_addr = writer.join(pa.scalar("浙江省宁波市"), local_addr)
    migrant_addr = writer.take(writer.strings([a for _, a, _ in data.MIGRANT_ORIGINS]), np.maximum(people.origin, 0))
    registered = pc.if_else(pa.array(local), local_addr, migrant_addr)
    vuln_table = writer.strings(
        ";".join(n for bit, n in enumerate(pop.VULN_NAMES) if mask >> bit & 1) for mask in range(32)
    )
    writer.write_csv(
        out / "persons.csv",
        ["id_number", "name", "sex", "birth_date", "phone", "household_code", "building_code", "unit", "room",
         "registered_address", "is_registered_local", "vulnerable", "industry", "employer", "workplace_venue_code"],
        [ids, name, sex, birth, people.phone, writer.take(hh_code, h), writer.take(hh_b_code, h),
         writer.take(unit, h), writer.take(room, h), registered, local.astype(np.int8),
         writer.take(vuln_table, people.vulnerable), writer.take(writer.strings(data.INDUSTRY_CODES), people.industry),
         writer.take_or_empty(ven.employer, work), writer.take_or_empty(ven.code, work)],
    )
    return venue_codes, ids


def pc_lpad(values: pa.Array, width: int) -> pa.Array:
    return pc.utf8_lpad(pc.cast(values, pa.string()), width, "0")


def _take_building(b_code: pa.Array, index: np.ndarray) -> pa.Array:
    taken = writer.take(b_code, np.maximum(index, 0))
    return pc.if_else(pa.array(index >= 0), taken, pa.scalar(""))
