"""Generate a synthetic district directory (docs/district-format.md). Plain function, no database.

Every stage draws from its own random stream derived from the seed (and, for check-ins, the day), so the same seed
gives byte-identical CSV and Parquet files; only ``generated_at`` in manifest.json differs between runs.

Scale (10 k to 20 M people): the whole-population state is numpy arrays of a few tens of bytes per person; strings
exist only for one slice of ``chunk_size`` households or persons at a time while the CSV files are written; check-ins
are generated per day in person chunks, held as four int32 columns, and written row group by row group while the next
day is generated. 1 M people peak at about 0.85 GB, 10 M at about 3.3 GB.
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

from jingkong.core import clock
from jingkong.synth import data, geography, mobility, venues, writer
from jingkong.synth import population as pop

FORMAT = "jingkong-district/1"
DEFAULT_START = dt.date(2022, 1, 1)
MEAN_HOUSEHOLD_SIZE = 2.62
DEFAULT_CHUNK = 1 << 18
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
    chunk_size: int = DEFAULT_CHUNK,
) -> dict:
    """Write the district directory ``out`` and return a summary (counts, seconds).

    ``chunk_size`` (persons or households per slice) bounds the memory of the CSV and check-in stages; the files do not
    depend on it.
    """
    if not 1_000 <= population <= 20_000_000:
        raise ValueError("population must be between 1,000 and 20,000,000")
    if not 0 <= days <= 60:
        raise ValueError("days must be between 0 and 60")
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
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

    venue_dict = _write_base(out, geo, hh, people, ven, work, chunk_size)
    person_dict, person_position = writer.sorted_id_dictionary(people.id_ascii)
    step(4, "wrote regions, buildings, venues, households, persons")

    ctx = mobility.make_context(people, hh.grid, ven, work, school, _rng(seed, 6))
    del people, work, school  # the check-in stage needs only the context and the two dictionaries
    rows = 0
    # the writer thread writes day i while day i + 1 is generated: at most two days' rows are held
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for i in range(days):
            day = start_date + dt.timedelta(days=i)
            rows_of_day = mobility.day_checkins(ctx, day, (seed, 7, i), chunk=chunk_size)
            if pending is not None:
                pending.result()
            path = out / "checkins" / f"day={day.isoformat()}" / "part-0.parquet"
            pending = pool.submit(writer.write_checkins, path, venue_dict, person_dict, rows_of_day.day_us,
                                  rows_of_day.venue, rows_of_day.person, rows_of_day.start_s, rows_of_day.dwell_s,
                                  person_position)
            rows += len(rows_of_day)
            step(5 + i, f"check-ins {day.isoformat()}: {len(rows_of_day):,} rows")
            del rows_of_day
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
        "generated_at": (now or clock.now()).astimezone(dt.UTC).isoformat(),
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


def _write_base(out: Path, geo, hh, people, ven, work, chunk: int) -> pa.Array:
    """Regions, buildings, venues, then households and persons one slice of ``chunk`` rows at a time."""
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

    def household_columns(h: np.ndarray) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
        """household_code, building_code, unit, room of the households ``h``."""
        unit = writer.as_text(hh.unit[h])
        room = writer.as_text(hh.room[h])
        building = writer.take(b_code, hh.building[h])
        return writer.join(building, unit, room, sep="-"), building, unit, room

    writer.write_csv(out / "households.csv", ["household_code", "building_code", "unit", "room"],
                     lambda a, b: list(household_columns(np.arange(a, b))), n=len(hh.building), chunk=chunk)

    surnames = writer.strings(data.SURNAMES)
    male_pool = writer.strings([*data.GIVEN_MALE, ""])
    female_pool = writer.strings([*data.GIVEN_FEMALE, ""])
    sexes = writer.strings(["F", "M"])
    migrant_addresses = writer.strings([a for _, a, _ in data.MIGRANT_ORIGINS])
    vuln_table = writer.strings(
        ";".join(n for bit, n in enumerate(pop.VULN_NAMES) if mask >> bit & 1) for mask in range(32)
    )
    industries = writer.strings(data.INDUSTRY_CODES)
    employers = writer.strings([*ven.employer, ""])
    workplace_codes = writer.strings([*ven.code, ""])

    def person_columns(a: int, b: int) -> list:
        male_np = people.male[a:b]
        male = pa.array(male_np)

        def given(idx: np.ndarray) -> pa.Array:
            m = np.where(idx < 0, len(data.GIVEN_MALE), np.minimum(idx, len(data.GIVEN_MALE) - 1))
            f = np.where(idx < 0, len(data.GIVEN_FEMALE), np.minimum(idx, len(data.GIVEN_FEMALE) - 1))
            return pc.if_else(male, writer.take(male_pool, m), writer.take(female_pool, f))

        h = people.household[a:b]
        hh_code, hh_building, unit, room = household_columns(h)
        local = hh.local[h]
        local_addr = writer.join(pa.scalar("浙江省宁波市"), writer.take(grid_prefix, hh.grid[h]))
        migrant_addr = writer.take(migrant_addresses, np.maximum(people.origin[a:b], 0))
        w = work[a:b]
        w = np.where(w < 0, len(ven.code), w)
        return [
            writer.fixed_width_strings(people.id_ascii[a:b]),
            writer.join(writer.take(surnames, people.surname[a:b]), given(people.given1[a:b]),
                        given(people.given2[a:b])),
            writer.take(sexes, male_np.astype(np.int64)),
            pc.cast(pa.array(people.birth[a:b]), pa.string()),
            people.phone[a:b],
            hh_code, hh_building, unit, room,
            pc.if_else(pa.array(local), local_addr, migrant_addr),
            local.astype(np.int8),
            writer.take(vuln_table, people.vulnerable[a:b]),
            writer.take(industries, people.industry[a:b]),
            writer.take(employers, w),
            writer.take(workplace_codes, w),
        ]

    writer.write_csv(
        out / "persons.csv",
        ["id_number", "name", "sex", "birth_date", "phone", "household_code", "building_code", "unit", "room",
         "registered_address", "is_registered_local", "vulnerable", "industry", "employer", "workplace_venue_code"],
        person_columns, n=len(people), chunk=chunk,
    )
    return venue_codes


def pc_lpad(values: pa.Array, width: int) -> pa.Array:
    return pc.utf8_lpad(pc.cast(values, pa.string()), width, "0")


def _take_building(b_code: pa.Array, index: np.ndarray) -> pa.Array:
    taken = writer.take(b_code, np.maximum(index, 0))
    return pc.if_else(pa.array(index >= 0), taken, pa.scalar(""))
