"""Benchmark of zones: approving zones (set-based residents and counts) and the two cross-app selectors.

Our own target (the issue names none for zones): approving a district-wide prevention zone over 1 M residents
(``INSERT … SELECT`` of its residents, counts, clock inputs, risk areas) in ≤ 10 s; ``zone_types_for_people`` for
10,000 people in ≤ 0.2 s; ``risk_level_of`` ≤ 2 ms per call.

Prints JSON, measured in the same run on the same data:

* ``approve_lockdown_seconds`` / ``approve_control_seconds`` / ``approve_prevention_seconds``: ``zone_approve`` of a
  one-building lockdown, a community control ring and the district prevention zone (everyone else);
* ``baseline_copy_seconds``: a bare ``INSERT INTO t SELECT id FROM people_person`` of the whole population into a
  temporary table (the floor of writing everyone once) and ``ratio_prevention`` = prevention / baseline;
* ``zone_types_for_people_seconds`` (10,000 random people; median of 3 warm calls, ``…_cold_seconds`` the first),
  ``risk_level_of_ms`` (mean of 1,000 calls).

The database is a fresh SQLite file in a temporary directory (``--database-url`` for another, e.g. a PostgreSQL
database that may be dropped and recreated: it is emptied by ``flush``).

    .venv/bin/python benchmarks/bench_zones.py --quick          # 50 k residents
    .venv/bin/python benchmarks/bench_zones.py                  # 1 M residents
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
T0 = dt.datetime(2022, 1, 10, 0, 0, tzinfo=dt.UTC)
PER_GRID, GRIDS_PER_COMMUNITY, COMMUNITIES_PER_STREET, PER_BUILDING = 330, 12, 20, 30


def _setup(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("JINGKONG_DEMO", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jingkong.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if not url.startswith("sqlite"):
        call_command("flush", interactive=False, verbosity=0)


def _build(population: int) -> dict:
    import numpy as np
    from django.db import transaction

    from jingkong.core import bulk
    from jingkong.geo.models import Region

    rng = np.random.default_rng(7)
    grids = max(1, population // PER_GRID)
    with transaction.atomic():
        district = Region.objects.create(code="330206", name="北仑区", level="district",
                                         geometry={"type": "Polygon", "coordinates": [[[121.7, 29.8], [122.0, 29.8],
                                                                                      [122.0, 30.0], [121.7, 30.0],
                                                                                      [121.7, 29.8]]]})
        regions, streets, communities = [], {}, {}
        grid_codes = []
        for g in range(grids):
            c = g // GRIDS_PER_COMMUNITY
            s = c // COMMUNITIES_PER_STREET
            scode = f"330206{s + 1:03d}"
            ccode = f"{scode}{c % COMMUNITIES_PER_STREET + 1:03d}"
            if scode not in streets:
                streets[scode] = Region.objects.create(code=scode, name=f"街道{s}", level="street", parent=district)
            if ccode not in communities:
                communities[ccode] = Region.objects.create(code=ccode, name=f"社区{c}", level="community",
                                                           parent=streets[scode])
            grid_codes.append(f"{ccode}{g % GRIDS_PER_COMMUNITY + 1:03d}")
            regions.append(Region(code=grid_codes[-1], name=f"网格{g}", level="grid", parent=communities[ccode]))
        Region.objects.bulk_create(regions, batch_size=2000)
        grid_id = dict(Region.objects.filter(level="grid").values_list("code", "pk"))
        gids = np.array([grid_id[c] for c in grid_codes])
        n_buildings = max(1, population // PER_BUILDING)
        b_grid = gids[np.arange(n_buildings) * grids // n_buildings]
        bulk.bulk_insert("geo_building", ["code", "grid_id", "address", "lon", "lat", "units", "floors",
                                          "household_count"],
                         [(f"B{i:07d}", int(b_grid[i]), f"花园{i}幢", 121.8 + (i % 1000) * 1e-4, 29.9, 2, 6, 10)
                          for i in range(n_buildings)])
        bid = np.array(sorted(dict(bulk.code_map("geo_building")).values()))
        n_hh = max(1, population // 3)
        hh_b = bid[np.arange(n_hh) * n_buildings // n_hh]
        hh_grid = b_grid[np.arange(n_hh) * n_buildings // n_hh]
        bulk.bulk_insert("people_household", ["code", "building_id", "grid_id", "unit", "room"],
                         [(f"H{i:08d}", int(hh_b[i]), int(hh_grid[i]), str(1 + i % 2), "101") for i in range(n_hh)])
        hid = np.array(sorted(dict(bulk.code_map("people_household")).values()))
        p_hh = np.arange(population) * n_hh // population
        vulnerable = (rng.random(population) < 0.15).astype(int)
        now = bulk.db_datetime(T0)
        rows = [(f"{i:032x}", "3302**********0000", f"居民{i}", "M", "1980-01-01", "", int(hid[p_hh[i]]),
                 int(hh_b[p_hh[i]]), int(hh_grid[p_hh[i]]), "", "", "", bulk.db_bool(True), int(vulnerable[i]), "",
                 "", "synthetic", bulk.db_bool(False), now, now) for i in range(population)]
        bulk.bulk_insert("people_person", ["id_hash", "id_masked", "name", "sex", "birth_date", "phone",
                                           "household_id", "building_id", "grid_id", "unit", "room",
                                           "registered_address", "is_registered_local", "vulnerable", "industry",
                                           "employer", "source", "needs_review", "created_at", "updated_at"], rows)
    return {"grids": grids, "buildings": n_buildings, "households": n_hh, "first_community": min(communities),
            "first_building": int(bid[0])}


def _zone(kind: str, target, zone_type: str):
    from jingkong.core import clock
    from jingkong.geo.models import Region
    from jingkong.zones.models import Zone, ZoneUnit

    now = clock.now()
    zone = Zone.objects.create(ref=f"BENCH-{zone_type}", name=zone_type, type=zone_type, region_code="330206",
                               proposed_at=now, updated_at=now)
    if kind == "building":
        ZoneUnit.objects.create(zone=zone, kind="building", building_id=target)
    else:
        ZoneUnit.objects.create(zone=zone, kind=kind, region=Region.objects.get(code=target))
    return zone


def _timed(fn):
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="50,000 residents")
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    population = 50_000 if args.quick else args.population
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/zones.sqlite3"
        os.environ.setdefault("JINGKONG_DATA_DIR", tmp)
        _setup(url)
        import random

        from django.db import connection

        from jingkong.core import clock
        from jingkong.geo.models import Region
        from jingkong.people.models import Person
        from jingkong.policy.models import PolicyProfile
        from jingkong.policy.services import profile_activate, profile_install_builtin
        from jingkong.zones import selectors, services
        from jingkong.zones.models import Zone

        build_seconds, info = _timed(lambda: _build(population))
        if connection.vendor == "postgresql":  # what autovacuum does after a load (the test server runs without it)
            with connection.cursor() as c:
                c.execute("ANALYZE")
        profile_install_builtin()
        profile_activate(profile=PolicyProfile.objects.filter(code="cn-8th-2021").latest("version"),
                         region=Region.objects.get(code="330206"), actor=None, reason="bench",
                         at=T0 - dt.timedelta(days=30))
        out = {"database": connection.vendor, "population": population, "build_seconds": round(build_seconds, 2),
               **{k: v for k, v in info.items() if k in ("grids", "buildings", "households")}}
        with clock.frozen(T0):
            lock = _zone("building", info["first_building"], "lockdown")
            ctrl = _zone("community", info["first_community"], "control")
            prev = _zone("district", "330206", "prevention")
            from jingkong.core import events

            # Other features react to zone events in the same transaction (health codes are recomputed for the
            # people inside): measured with them attached, and the zones work alone with them detached.
            attached = {k: list(v) for k, v in events._HANDLERS.items() if k.startswith("zones.")}
            for name, zone in (("lockdown", lock), ("control", ctrl), ("prevention", prev)):
                for k in attached:
                    events._HANDLERS[k] = []
                seconds, z = _timed(lambda zone=zone: services.zone_approve(zone, actor=None))
                out[f"approve_{name}_seconds"] = round(seconds, 3)
                out[f"{name}_people"] = z.people
                for k, v in attached.items():
                    events._HANDLERS[k] = v
                services.zone_lift(z, actor=None, reason="bench")
                zone.status = "proposed"
                zone.save(update_fields=["status"])
                Zone.objects.filter(pk=zone.pk).update(status="proposed")
                seconds, z = _timed(lambda zone=zone: services.zone_approve(zone, actor=None))
                out[f"approve_{name}_with_subscribers_seconds"] = round(seconds, 3)
            out["subscribers"] = sorted({f"{h.__module__}.{h.__name__}" for v in attached.values() for h in v})
            with connection.cursor() as c:
                c.execute("CREATE TEMP TABLE bench_copy (id bigint)")
                t = time.perf_counter()
                c.execute("INSERT INTO bench_copy SELECT id FROM people_person")
                out["baseline_copy_seconds"] = round(time.perf_counter() - t, 3)
            out["ratio_prevention"] = round(out["approve_prevention_seconds"] / max(out["baseline_copy_seconds"], 1e-6),
                                            1)
            if connection.vendor == "postgresql":  # autovacuum's work after the approvals (visibility map, stats)
                connection.ensure_connection()
                autocommit = connection.connection.autocommit
                connection.connection.autocommit = True
                with connection.connection.cursor() as c:
                    c.execute("VACUUM ANALYZE zones_zoneresident")
                connection.connection.autocommit = autocommit
            ids = list(Person.objects.values_list("pk", flat=True)[:: max(1, population // 10_000)])[:10_000]
            random.shuffle(ids)
            seconds, types = _timed(lambda: selectors.zone_types_for_people(ids))
            out["zone_types_for_people_cold_seconds"] = round(seconds, 3)
            warm = sorted(_timed(lambda: selectors.zone_types_for_people(ids))[0] for _ in range(3))
            out["zone_types_for_people_seconds"] = round(warm[1], 3)  # median of 3 warm calls
            out["zone_types_for_people_found"] = len(types)
            codes = [f"330206{random.randint(1, 5):03d}{random.randint(1, 20):03d}001" for _ in range(1000)]
            t = time.perf_counter()
            levels = [selectors.risk_level_of(code, T0) for code in codes]
            out["risk_level_of_ms"] = round((time.perf_counter() - t) * 1000 / len(codes), 3)
            out["risk_level_of_hits"] = sum(1 for v in levels if v)
        out["targets"] = {"approve_prevention_seconds_at_1M": 10, "zone_types_for_people_seconds": 0.2,
                          "risk_level_of_ms": 2}
        out["median_note"] = "single runs (an approval changes the data)"
        print(json.dumps(out, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
