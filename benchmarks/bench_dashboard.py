"""Benchmark of the one-screen command dashboard (一屏掌控, issue 8) on a 1 M-person district, SQLite and PostgreSQL.

Targets (issue 8): first full render ≤ 2 s; every dashboard API call p95 ≤ 300 ms; counts equal the sum of their
drill-down.

The dataset (kept and reused between runs):

* **base**: the synthetic district generator (``jingkong generate``: the Beilun base map, 12 streets, 230 communities,
  ~950 grids at 1 M; buildings and households) loaded with ``load_district`` (the platform's own fresh-load path),
  the shipped policy profiles with the 2022 edition in force. Rebuilt only when the population or seed changes.
* **operations**, numpy-built and written with executemany (SQLite) / COPY (PostgreSQL), every time relative to the
  moment of the build (the server runs on the wall clock, so "today" must be today): ``--cases`` cases over 30 days
  (growing ~8 %/day, clustered in the port streets, 40 % found in quarantine), ``--contacts`` contacts over 14 days
  (located, grouped in batches of 8, picked up, arrived, in a room or under a home order; a reason naming a case
  each), transfer runs with routes and vehicles, ~50 facilities with rooms ~85 % occupied, isolation orders, the
  current district round (started 20 h ago, ~half the persons sampled in 10-in-1 tubes at one site per community,
  70 % of the tubes resulted, positive pools with retest tasks, person test states), lockdown zones on the recent
  cases' buildings with control rings (their grids) and prevention zones (their streets) with residents, three
  district-wide directives cascaded to every street/community/grid plus automatic tasks (``--tasks`` in all), a field
  worker per grid, problems, service requests of zone residents, checkpoints with a week of crossings, and the
  domain events the services would have written (case_created, grouped / transfer_started / arrived, pool_positive,
  problem_reported, service_submitted, zone_approved, denied crossings). Rebuilt when older than ``--max-age``
  minutes (default 30) or with ``--fresh``.

Measured in the same run, on the same data:

1. ``refresh``: ``jingkong.dashboard.refresher.run_pending(force=True)`` — every figure family, each one's
   ``RefreshState.duration_ms`` and rows, and the wall time of the whole refresh;
2. ``api``: ``jingkong serve --no-worker`` (gunicorn gthread, 2 workers × 4 threads), sessions of a district
   commander and of a street officer (the street with most cases); p50/p95 of ``--requests`` sequential calls (after
   one warm-up) of every dashboard API call of the contract (/summary, /regions, /epi, /clock, /alerts, every
   /layers/*, and the zones GeoJSON the page draws) at district, street and grid level (the officer: street and grid);
   a layer the role may not read answers 403 and is reported as such;
3. ``render``: the first full render — the page HTML, then its scripts/styles and every API call the page makes at
   load, issued as a browser does (``--concurrency`` 6 at a time); wall time (the first, cold, and the median of
   ``--renders``). When /usr/bin/chromium, chromedriver and selenium are present, also the real headless browser's
   time from navigation to ``#jk-screen[data-ready="1"]`` (fresh profile = cold, then ``--browser-repeats``
   reloads), on a server of its own (a closed tab's live stream keeps its server thread until the next ping); the
   list of API calls the real page made then replaces the contract's list in the simulated render;
4. ``baseline``: an authenticated ``GET /api/v1/access/me`` on the same connection right after every measured call
   (the same moment of a shared machine) p50/p95, and a bare ``SELECT COUNT(*) FROM tracing_case`` p95;
   ``ratio_to_me`` = call p95 / me p95;
5. ``verify``: at the district and at the officer's street, /regions rows + remainder == /summary for every additive
   field (cases_today, cases_total, community_today, untested, contacts_identified, zones_lockdown, services_open,
   problems_open), each row == /summary of that row's region, and cases_total == the cases built.

    .venv/bin/python benchmarks/bench_dashboard.py --quick                    # 50 k persons, both databases
    .venv/bin/python benchmarks/bench_dashboard.py --databases sqlite         # 1 M persons, 10 k cases, 100 k contacts
    .venv/bin/python benchmarks/bench_dashboard.py --databases postgresql --database-url postgres://postgres@127.0.0.1:5432/test

Sessions are made as the login page makes them (``force_login``: a session row and its cookie). The server runs
without the job worker (``--no-worker``), so no background refresh competes with the measured calls; the refresh
costs are reported separately (and the live stream or the worker would pay them every ``max_age`` in production).

Datasets: SQLite ``var/bench/dashboard-<N>.sqlite3``; PostgreSQL database ``jk_bench_dashboard`` (``--quick``:
``jk_bench_dashboard_quick``); ``--drop`` removes them after the run. Servers and browsers are always stopped.
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import datetime as dt
import http.client
import json
import os
import re
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode, urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _common as C  # noqa: E402

SECRET = "bench-dashboard-secret-key-" + "d" * 32  # fixed: the reused persons' ID hashes and the sessions use it
BASE_VERSION = "1"
OPS_VERSION = "2"
PG_NAME = "jk_bench_dashboard"
TARGET_RENDER_MS = 2000.0
TARGET_P95_MS = 300.0
HOUR, DAY = 3600.0, 86400.0
LOCAL_OFFSET = 8 * HOUR  # Asia/Shanghai, no daylight saving
DISTRICT = "330206"
SCREEN_CALLS = ("summary", "regions", "epi", "clock", "alerts")
LAYERS = ("cases", "sites", "routes", "facilities", "checkpoints", "problems", "services")
# /regions row field → the /summary figure it must add up to
ADDITIVE = {
    "cases_today": ("cases_today", "total"),
    "cases_total": ("cases_total",),
    "community_today": ("cases_today", "in_community"),
    "untested": ("round", "untested"),
    "contacts_identified": ("contacts", "identified"),
    "zones_lockdown": ("zones", "lockdown", "count"),
    "services_open": ("services", "open"),
    "problems_open": ("problems", "open"),
}


# ======================================================================================================================
# dataset (worker process)
# ======================================================================================================================


def _meta_get(connection, key: str):
    with connection.cursor() as c:
        try:
            c.execute("SELECT value FROM bench_dashboard_meta WHERE key = %s", [key])
        except Exception:  # noqa: BLE001 - no table yet: nothing built
            return None
        row = c.fetchone()
    return json.loads(row[0]) if row else None


def _meta_set(connection, key: str, value) -> None:
    with connection.cursor() as c:
        c.execute("CREATE TABLE IF NOT EXISTS bench_dashboard_meta (key varchar(16) PRIMARY KEY, value text)")
        c.execute("DELETE FROM bench_dashboard_meta WHERE key = %s", [key])
        c.execute("INSERT INTO bench_dashboard_meta (key, value) VALUES (%s, %s)", [key, json.dumps(value)])


def build_base(population: int, seed: int, workdir: Path) -> dict:
    """The district from the synthetic generator, loaded as the platform loads a district."""
    from django.db import connection

    from jingkong.geo.models import Region
    from jingkong.people.loader import load_district
    from jingkong.policy.selectors import profile_get
    from jingkong.policy.services import profile_activate, profile_install_builtin
    from jingkong.synth.generate import generate_district

    started = time.perf_counter()
    out = workdir / f"district-{population}-{seed}"
    if not (out / "persons.csv").exists():
        generate_district(out, population=population, seed=seed, days=0)
    generated = time.perf_counter() - started
    C.log(f"generated {population:,} persons in {generated:.1f} s; loading")
    load_district(out, echo=C.log)
    profile_install_builtin()
    profile_activate(profile=profile_get(code="cn-9th-2022"), region=Region.objects.get(code=DISTRICT), actor=None,
                     reason="bench", at=dt.datetime.now(dt.UTC) - dt.timedelta(days=90))
    shutil.rmtree(out, ignore_errors=True)
    with connection.cursor() as c:
        c.execute("SELECT COUNT(*) FROM people_person")
        persons = c.fetchone()[0]
    return {"persons": persons, "generate_seconds": round(generated, 1),
            "base_seconds": round(time.perf_counter() - started, 1)}


OPS_APPS = ("dashboard", "codes", "command", "zones", "isolation", "testing", "tracing")


def _clear_ops(connection) -> None:
    """Empty every table of the operational apps (and the event stream) before a rebuild; the base stays."""
    from django.apps import apps

    existing = set(connection.introspection.table_names())
    tables = {m._meta.db_table for label in OPS_APPS
              for m in apps.get_app_config(label).get_models(include_auto_created=True)} & existing
    tables |= {"core_domainevent"}
    with connection.cursor() as c:
        if connection.vendor == "postgresql":
            c.execute("TRUNCATE " + ", ".join(sorted(tables)) + " RESTART IDENTITY")
        else:
            for t in sorted(tables):
                c.execute(f"DELETE FROM {t}")


def _choice_weighted(rng, weights, k: int):
    """``k`` distinct indices drawn with probability ∝ ``weights`` (Efraimidis–Spirakis keys, vectorised)."""
    import numpy as np

    keys = np.log(rng.random(len(weights))) / np.maximum(weights, 1e-12)
    return np.argpartition(-keys, k - 1)[:k] if k < len(weights) else np.arange(len(weights))


def build_ops(n_cases: int, n_contacts: int, n_tasks: int, seed: int) -> dict:  # noqa: C901 - one long recipe
    """Everything an outbreak in progress leaves in the tables (see the module docstring), relative to now."""
    import numpy as np
    from django.db import connection, transaction

    from jingkong.codes.models import Checkpoint, Crossing
    from jingkong.command.models import Directive, FieldWorker, Problem, ServiceRequest, Task
    from jingkong.core.models import DomainEvent
    from jingkong.isolation.models import (
        BatchMember,
        Facility,
        IsolationOrder,
        Room,
        RoomStay,
        Transfer,
        TransferBatch,
        TransferStop,
        Vehicle,
    )
    from jingkong.testing.models import (
        Campaign,
        Lab,
        PersonTestState,
        RetestTask,
        Sample,
        SamplingSite,
        Tube,
        TubeResult,
    )
    from jingkong.tracing.models import Case, Contact, ContactReason
    from jingkong.zones.models import Zone, ZoneResident, ZoneUnit

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    now = float(int(time.time()))
    today0 = (now + LOCAL_OFFSET) // DAY * DAY - LOCAL_OFFSET  # local midnight, epoch
    W = C.ModelWriter(connection)
    T = lambda v, valid=None: C.db_datetimes(connection, v, valid)  # noqa: E731
    nan = np.nan

    # ---- what is there: regions, buildings, persons ------------------------------------------------------------
    with connection.cursor() as c:
        c.execute("SELECT id, code, level, COALESCE(center_lon, 121.85), COALESCE(center_lat, 29.9) FROM geo_region")
        regions = c.fetchall()
        c.execute("SELECT id, grid_id, lon, lat FROM geo_building ORDER BY id")
        b_rows = np.array(c.fetchall(), dtype="float64")
        c.execute("SELECT id, COALESCE(grid_id, 0), COALESCE(building_id, 0), vulnerable FROM people_person "
                  "ORDER BY id")
        p_rows = np.array(c.fetchall(), dtype="int64")
    region_id = {r[1]: r[0] for r in regions}
    grid_rows = sorted((r for r in regions if r[2] == "grid"), key=lambda r: r[0])  # by id
    streets = sorted(r[1] for r in regions if r[2] == "street")
    communities = sorted((r for r in regions if r[2] == "community"), key=lambda r: r[1])
    grid_code_of = {r[0]: r[1] for r in grid_rows}
    p_id, p_grid, p_building, p_vuln = p_rows.T
    keep = p_grid > 0  # persons not located to a grid are on no map
    p_id, p_grid, p_building, p_vuln = p_id[keep], p_grid[keep], p_building[keep], p_vuln[keep]
    n_persons = len(p_id)
    grid_ids = np.array([r[0] for r in grid_rows], dtype="int64")
    grid_codes = np.array([r[1] for r in grid_rows], dtype=object)
    n_grids = len(grid_rows)
    p_gpos = np.searchsorted(grid_ids, p_grid)  # each person's grid, as an index into grid_rows
    street_pos = {s: i for i, s in enumerate(streets)}
    grid_street = np.array([street_pos.get(g[:9], 0) for g in grid_codes.tolist()], dtype="int64")
    street_codes = np.array(streets, dtype=object)
    p_spos = grid_street[p_gpos]
    p_gcode = grid_codes[p_gpos]
    p_street = street_codes[p_spos]
    b_id = b_rows[:, 0].astype("int64")
    b_lon, b_lat = b_rows[:, 2], b_rows[:, 3]
    b_index = np.full(int(b_id.max()) + 1 if len(b_id) else 1, -1, dtype="int64")
    b_index[b_id] = np.arange(len(b_id))
    has_b = p_building > 0
    g_lon = np.array([r[3] for r in grid_rows], dtype="float64")
    g_lat = np.array([r[4] for r in grid_rows], dtype="float64")
    pb = b_index[np.where(has_b, p_building, b_id[0])]
    p_lon = np.where(has_b, b_lon[pb], g_lon[p_gpos])
    p_lat = np.where(has_b, b_lat[pb], g_lat[p_gpos])

    # The outbreak is clustered: three port streets carry most of it.
    s_weight = np.ones(len(streets))
    s_weight[1:4] = (12.0, 6.0, 3.0)[: max(0, min(3, len(streets) - 1))]
    person_weight = s_weight[p_spos]

    bulk_events: list[dict] = []

    def events(type_: str, subject_type: str, subject_ids, region_codes, at, payloads=None) -> None:
        n = len(subject_ids)
        if n:
            bulk_events.append({"type": type_, "subject_type": subject_type, "subject_id": np.asarray(subject_ids),
                                "region_code": np.asarray(region_codes, dtype=object), "at": np.asarray(at, "float64"),
                                "payload": payloads})

    def growth_ages(n: int, days: int, rate: float) -> np.ndarray:
        """Seconds before now: day k (0 = today) drawn ∝ exp(-rate·k), a uniform time inside it (≤ now)."""
        w = np.exp(-rate * np.arange(days))
        k = rng.choice(days, size=n, p=w / w.sum())
        start = today0 - k * DAY
        end = np.minimum(start + DAY, now)
        return now - (start + rng.random(n) * (end - start))

    with transaction.atomic():
        C.bulk_mode(connection, True)
        _clear_ops(connection)

        # ---- cases ---------------------------------------------------------------------------------------------
        chosen = _choice_weighted(rng, person_weight, n_cases + n_contacts)
        case_idx = chosen[:n_cases]
        contact_idx = chosen[n_cases:]
        case_at = now - growth_ages(n_cases, 30, 0.08)
        order_c = np.argsort(case_at)
        case_idx, case_at = case_idx[order_c], case_at[order_c]
        in_quarantine = rng.random(n_cases) < 0.4
        confirmed = rng.random(n_cases) < 0.35
        first_pos = case_at - rng.uniform(2, 20, n_cases) * HOUR
        onset_day = np.where(confirmed, (first_pos + LOCAL_OFFSET) // DAY - rng.integers(0, 4, n_cases), 0)
        found_pick = rng.random(n_cases)
        found_by = np.where(in_quarantine, "quarantine_test", np.where(
            found_pick < 0.35, "round", np.where(found_pick < 0.5, "routine_screening", np.where(
                found_pick < 0.75, "fever_clinic", np.where(found_pick < 0.9, "contact_followup", "other")))))
        src_pick = rng.random(n_cases)
        source = np.where(src_pick < 0.03, "imported", np.where(src_pick < 0.93, "local", "unknown"))
        investigated = case_at + rng.uniform(1, 30, n_cases) * HOUR
        inv_ok = (investigated <= now) & (rng.random(n_cases) < 0.95)
        isolated = case_at + rng.uniform(0.5, 6, n_cases) * HOUR
        case_ids = W.put(
            Case, n_cases, ref=[f"BL2026-{i:06d}" for i in range(1, n_cases + 1)], person_id=p_id[case_idx],
            classification=np.where(confirmed, "confirmed", "asymptomatic"),
            severity=np.where(confirmed, rng.choice(["mild", "moderate", "severe"], n_cases, p=[.8, .17, .03]), ""),
            onset_date=C.db_dates(onset_day, confirmed), first_positive_at=T(first_pos),
            found_by=found_by, source_category=source, status=np.where(inv_ok, "investigated", "investigating"),
            region_code=p_gcode[case_idx], created_at=T(case_at), updated_at=T(np.maximum(case_at, np.where(
                inv_ok, investigated, case_at))), contacts_found_at=T(case_at + HOUR, case_at + HOUR <= now),
            investigated_at=T(investigated, inv_ok), isolated_at=T(isolated, isolated <= now),
            current_place=np.where(isolated <= now, "定点医院", ""))
        case_ids = np.array(case_ids, dtype="int64")
        events("tracing.case_created", "tracing.case", case_ids, p_gcode[case_idx], case_at,
               [{"ref": f"BL2026-{i:06d}", "person_id": int(p), "found_by": f}
                for i, p, f in zip(range(1, n_cases + 1), p_id[case_idx].tolist(), found_by.tolist(), strict=True)])
        C.log(f"cases: {n_cases:,}")

        # ---- contacts: 100 k, of which the cases found in quarantine (contacts first, cases later) -------------
        q_cases = np.flatnonzero(in_quarantine)
        n_other = n_contacts - len(q_cases)
        k_idx = np.concatenate([contact_idx[:n_other], case_idx[q_cases]])
        n_k = len(k_idx)
        ident = now - growth_ages(n_k, 14, 0.1)
        ident[n_other:] = np.minimum(case_at[q_cases] - rng.uniform(24, 200, len(q_cases)) * HOUR, ident[n_other:])
        tier_close = rng.random(n_k) < 0.55
        tier_close[n_other:] = True
        notified = ident + rng.exponential(1.0, n_k) * HOUR
        located = notified + rng.exponential(3.0, n_k) * HOUR
        located[rng.random(n_k) < 0.03] = nan  # never reached
        # grouping: located contacts, 8 to a batch in the order they were located (per street queue)
        home = (~tier_close) & (rng.random(n_k) < 0.4)
        home[n_other:] = False
        loc_ok = ~np.isnan(located)
        grp_order = np.lexsort((np.nan_to_num(located, nan=np.inf), home, p_spos[k_idx]))
        grp_order = grp_order[loc_ok[grp_order]]
        key_street = p_spos[k_idx][grp_order]
        key_home = home[grp_order]
        new_group = np.ones(len(grp_order), dtype=bool)
        new_group[1:] = (key_street[1:] != key_street[:-1]) | (key_home[1:] != key_home[:-1])
        run_start = np.maximum.accumulate(np.where(new_group, np.arange(len(grp_order)), 0))
        batch_key = np.cumsum(new_group | ((np.arange(len(grp_order)) - run_start) % 8 == 0)) - 1
        n_batches = int(batch_key[-1]) + 1 if len(batch_key) else 0
        member_of = np.full(n_k, -1, dtype="int64")
        member_of[grp_order] = batch_key
        batch_last_loc = np.full(n_batches, -np.inf)
        np.maximum.at(batch_last_loc, batch_key, located[grp_order])
        batch_created = batch_last_loc + rng.exponential(1.5, n_batches) * HOUR
        batch_home = np.zeros(n_batches, dtype=bool)
        batch_home[batch_key] = key_home
        batch_pickup = batch_created + rng.exponential(3.0, n_batches) * HOUR
        batch_arrive = batch_pickup + rng.uniform(0.3, 1.5, n_batches) * HOUR
        batch_ok = batch_created <= now
        b_pick_ok = batch_ok & ~batch_home & (batch_pickup <= now)
        b_arr_ok = b_pick_ok & (batch_arrive <= now)
        grouped = np.where(member_of >= 0, batch_created[np.maximum(member_of, 0)], nan)
        grouped[~(member_of >= 0)] = nan
        grouped[(member_of >= 0) & ~batch_ok[np.maximum(member_of, 0)]] = nan
        m_pick = np.where(member_of >= 0, batch_pickup[np.maximum(member_of, 0)], nan)
        m_arr = np.where(member_of >= 0, batch_arrive[np.maximum(member_of, 0)], nan)
        m_pick[~((member_of >= 0) & b_pick_ok[np.maximum(member_of, 0)])] = nan
        m_arr[~((member_of >= 0) & b_arr_ok[np.maximum(member_of, 0)])] = nan
        in_q = np.where(home, grouped + rng.exponential(2.0, n_k) * HOUR, m_arr + rng.uniform(0.1, 1, n_k) * HOUR)
        in_q[np.isnan(in_q) | (in_q > now)] = nan
        closed = (ident < now - 13 * DAY) & (rng.random(n_k) < 0.7)
        closed[n_other:] = False
        closed_at = np.where(closed, ident + 13 * DAY, nan)
        closed_at[closed_at > now] = nan
        for arr in (notified, located):
            arr[arr > now] = nan
        status = np.full(n_k, "identified", dtype=object)
        status[~np.isnan(notified)] = "notified"
        status[~np.isnan(located)] = "located"
        status[~np.isnan(grouped)] = "handed_over"
        status[~np.isnan(in_q)] = "in_quarantine"
        status[~np.isnan(closed_at)] = "closed"
        k_gcode = p_gcode[k_idx]
        contact_ids = np.array(W.put(
            Contact, n_k, person_id=p_id[k_idx], tier=np.where(tier_close, "close", "secondary"), status=status,
            region_code=k_gcode, queue_region_code=p_street[k_idx], first_identified_at=T(ident),
            last_exposure_at=T(ident - rng.uniform(0, 3, n_k) * DAY), due_at=T(ident + 12 * HOUR),
            notified_at=T(notified), located_at=T(located), handed_over_at=T(grouped),
            handed_to=np.where(np.isnan(grouped), "", "transfer"), in_quarantine_at=T(in_q),
            closed_at=T(closed_at), close_reason=np.where(np.isnan(closed_at), "", "期满解除"),
            created_at=T(ident), updated_at=T(np.fmax(ident, np.fmax(np.nan_to_num(in_q, nan=0),
                                                                  np.nan_to_num(closed_at, nan=0))))), dtype="int64")
        # a reason naming a case reported before the contact was identified (or the first case)
        earlier = np.clip(np.searchsorted(case_at, ident) - 1, 0, n_cases - 1)
        reason_case = (rng.random(n_k) * (earlier + 1)).astype("int64")
        W.put(ContactReason, n_k, contact_id=contact_ids, case_id=case_ids[reason_case],
              tier=np.where(tier_close, "close", "secondary"),
              kind=rng.choice(["household", "workplace", "venue", "transport", "tracer"], n_k, p=[.3, .2, .35, .05, .1]),
              key=[f"bench:{i}" for i in range(n_k)], created_at=T(ident), exposure_end=T(ident - HOUR))
        named = np.unique(reason_case)
        events("tracing.contacts_identified", "tracing.case", case_ids[named], p_gcode[case_idx[named]],
               np.minimum(case_at[named] + HOUR, now))
        C.log(f"contacts: {n_k:,} ({int(np.isnan(in_q).sum()):,} not yet isolated), batches: {n_batches:,}")

        # ---- facilities and rooms -------------------------------------------------------------------------------
        central_iso = (~home) & ~np.isnan(in_q) & np.isnan(closed_at)
        n_central = int(central_iso.sum())
        kinds = ["quarantine_hotel"] * 42 + ["designated_hospital"] * 3 + ["shelter"] * 5
        n_fac = len(kinds)
        fac_b = rng.choice(len(b_id), n_fac, replace=False)
        fac_grid = np.array([grid_code_of.get(int(g), grid_codes[0]) for g in b_rows[fac_b, 1]], dtype=object)
        fac_ids = np.array(W.put(
            Facility, n_fac, code=[f"F{i:03d}" for i in range(n_fac)],
            name=[f"{'隔离酒店' if k == 'quarantine_hotel' else '定点医院' if k == 'designated_hospital' else '方舱'}{i}"
                  for i, k in enumerate(kinds)], kind=kinds, region_code=fac_grid, lon=b_lon[fac_b], lat=b_lat[fac_b],
            address=[f"北仑区设施{i}号" for i in range(n_fac)]), dtype="int64")
        total_rooms = max(n_fac * 20, int(n_central / 0.85))
        share = rng.uniform(0.5, 1.5, n_fac) * np.where(np.array(kinds) == "shelter", 3, 1)
        per_fac = np.floor(share / share.sum() * total_rooms).astype("int64")
        per_fac[0] += total_rooms - per_fac.sum()
        room_fac = np.repeat(np.arange(n_fac), per_fac)
        room_no = np.arange(total_rooms) - np.repeat(np.cumsum(per_fac) - per_fac, per_fac)
        occupied = np.zeros(total_rooms, dtype=bool)
        occupied[:n_central] = True
        room_state = np.where(occupied, "occupied", np.where(rng.random(total_rooms) < 0.03, "cleaning", "free"))
        room_ids = np.array(W.put(
            Room, total_rooms, facility_id=fac_ids[room_fac], number=[f"{n + 1:04d}" for n in room_no.tolist()],
            floor=room_no // 40 + 1, kind=np.where(rng.random(total_rooms) < 0.2, "family", "single"),
            beds=1, state=room_state, state_since=T(np.full(total_rooms, now - 2 * DAY))), dtype="int64")
        iso_k = np.flatnonzero(central_iso)
        iso_k = iso_k[np.argsort(member_of[iso_k], kind="stable")]  # a batch's people in neighbouring rooms
        W.put(RoomStay, len(iso_k), room_id=room_ids[np.arange(len(iso_k))], person_id=p_id[k_idx[iso_k]],
              tier=np.where(tier_close[iso_k], "close", "secondary"), region_code=k_gcode[iso_k],
              reserved_at=T(m_arr[iso_k] - 0.5 * HOUR), checked_in_at=T(in_q[iso_k]))
        batch_facility = np.full(n_batches, -1, dtype="int64")
        batch_facility[member_of[iso_k]] = fac_ids[room_fac[np.arange(len(iso_k))]]
        no_fac = (batch_facility < 0) & ~batch_home
        batch_facility[no_fac] = fac_ids[rng.integers(0, 42, int(no_fac.sum()))]
        C.log(f"facilities: {n_fac}, rooms: {total_rooms:,}, occupied: {len(iso_k):,}")

        # ---- batches, members, vehicles, runs -------------------------------------------------------------------
        first_member = np.full(n_batches, -1, dtype="int64")
        first_member[batch_key[::-1]] = grp_order[::-1]
        bsize = np.bincount(batch_key, minlength=n_batches)
        b_status = np.where(~batch_ok, "waiting", np.where(batch_home, "delivered", np.where(
            b_arr_ok, "delivered", np.where(b_pick_ok, "in_transit", np.where(
                batch_pickup - now < 2 * HOUR, "planned", "waiting")))))
        keep_b = batch_ok  # a batch not yet formed does not exist
        bmap = np.full(n_batches, -1, dtype="int64")
        bmap[keep_b] = np.arange(int(keep_b.sum()))
        nb = int(keep_b.sum())
        fk = first_member[keep_b]
        batch_ids = np.array(W.put(
            TransferBatch, nb, ref=[f"TB{i:07d}" for i in range(nb)], region_code=p_street[k_idx[fk]],
            pickup_building_id=[int(b) if b > 0 else None for b in p_building[k_idx[fk]].tolist()],
            pickup_lon=p_lon[k_idx[fk]], pickup_lat=p_lat[k_idx[fk]],
            destination_type=np.where(batch_home[keep_b], "home", "central"),
            facility_id=[int(f) if f > 0 else None for f in batch_facility[keep_b].tolist()],
            size=bsize[keep_b], status=b_status[keep_b], created_at=T(batch_created[keep_b]),
            updated_at=T(np.fmax(batch_created[keep_b], np.where(b_arr_ok[keep_b], batch_arrive[keep_b], 0))),
            due_at=T(batch_created[keep_b] + 6 * HOUR)), dtype="int64")
        mem = np.flatnonzero((member_of >= 0) & ~np.isnan(grouped))
        W.put(BatchMember, len(mem), batch_id=batch_ids[bmap[member_of[mem]]], person_id=p_id[k_idx[mem]],
              contact_id=contact_ids[mem], role=np.where(tier_close[mem], "close", "secondary"),
              region_code=k_gcode[mem], picked_up_at=T(m_pick[mem]), arrived_at=T(m_arr[mem]))
        events("isolation.grouped", "isolation.transferbatch", batch_ids, p_gcode[k_idx[fk]], batch_created[keep_b])
        started_m = mem[~np.isnan(m_pick[mem])]
        arrived_m = mem[~np.isnan(m_arr[mem])]
        events("isolation.transfer_started", "people.person", p_id[k_idx[started_m]], k_gcode[started_m],
               m_pick[started_m])
        events("isolation.arrived", "people.person", p_id[k_idx[arrived_m]], k_gcode[arrived_m], m_arr[arrived_m])
        n_veh = 150
        veh_ids = np.array(W.put(
            Vehicle, n_veh, code=[f"V{i:03d}" for i in range(n_veh)], plate=[f"浙B{i:05d}" for i in range(n_veh)],
            type=rng.choice(["bus", "minibus", "ambulance"], n_veh, p=[.3, .6, .1]), seats=20,
            depot_lon=121.85 + rng.uniform(-0.1, 0.1, n_veh), depot_lat=29.9 + rng.uniform(-0.05, 0.05, n_veh),
            region_code=DISTRICT, available=True), dtype="int64")
        moving = np.flatnonzero(keep_b & np.isin(b_status, ["planned", "in_transit"]))
        n_runs = (len(moving) + 1) // 2
        fac_lonlat = {int(f): (float(lo), float(la)) for f, lo, la in zip(fac_ids, b_lon[fac_b], b_lat[fac_b],
                                                                        strict=True)}
        routes, run_status, run_start, run_end = [], [], [], []
        stops = []  # (run index, seq, kind, batch id, facility id or None, lon, lat, eta)
        for r in range(n_runs):
            pair = moving[2 * r: 2 * r + 2]
            fac = int(batch_facility[pair[0]])
            coords = [[float(p_lon[k_idx[first_member[b]]]), float(p_lat[k_idx[first_member[b]]])] for b in pair]
            coords.append(list(fac_lonlat.get(fac, (121.85, 29.9))))
            routes.append(json.dumps({"type": "LineString", "coordinates": coords}))
            in_transit = bool((b_status[pair] == "in_transit").any())
            run_status.append("picked_up" if in_transit else "planned")
            run_start.append(float(batch_created[pair].max()))
            run_end.append(float(batch_arrive[pair].max()))
            for seq, b in enumerate(pair.tolist()):
                stops.append((r, seq + 1, "pickup", int(batch_ids[bmap[b]]), None, coords[seq][0], coords[seq][1],
                              float(batch_pickup[b])))
            stops.append((r, len(pair) + 1, "dropoff", int(batch_ids[bmap[pair[0]]]), fac, coords[-1][0],
                          coords[-1][1], float(batch_arrive[pair].max())))
        run_ids = np.array(W.put(
            Transfer, n_runs, ref=[f"TR{i:06d}" for i in range(n_runs)], vehicle_id=veh_ids[np.arange(n_runs) % n_veh],
            region_code=DISTRICT, status=run_status, route=routes, distance_m=rng.integers(3000, 30000, n_runs),
            planned_start=T(run_start), planned_end=T(run_end),
            dispatched_at=T(run_start, np.array(run_status) == "picked_up"), created_at=T(run_start),
            updated_at=T(run_start)), dtype="int64")
        if stops:
            s = list(zip(*stops, strict=True))
            W.put(TransferStop, len(stops), transfer_id=run_ids[np.array(s[0])], seq=list(s[1]), kind=list(s[2]),
                  batch_id=list(s[3]), facility_id=list(s[4]), lon=list(s[5]), lat=list(s[6]), eta=T(np.array(s[7])))

        # ---- isolation orders ------------------------------------------------------------------------------------
        has_order = ~np.isnan(in_q)
        o = np.flatnonzero(has_order)
        counted = (ident[o] - DAY + LOCAL_OFFSET) // DAY
        ends = counted + np.where(tier_close[o], 14, 7)
        is_case = o >= n_other
        o_status = np.where(is_case, "converted", np.where(~np.isnan(closed_at[o]), "released", "active"))
        o_fac = [int(batch_facility[member_of[i]]) if (not home[i] and member_of[i] >= 0
                                                      and batch_facility[member_of[i]] > 0) else None
                 for i in o.tolist()]
        case_of_contact = np.full(n_k, -1, dtype="int64")
        case_of_contact[n_other:] = case_ids[q_cases]
        W.put(IsolationOrder, len(o), person_id=p_id[k_idx[o]], contact_id=contact_ids[o],
              case_id=[int(c) if c > 0 else None for c in case_of_contact[o].tolist()],
              tier=np.where(tier_close[o], "close", "secondary"),
              mode=np.where(home[o], "home_quarantine", "central"), status=o_status, region_code=k_gcode[o],
              counted_from=C.db_dates(counted), starts_on=C.db_dates((in_q[o] + LOCAL_OFFSET) // DAY),
              ends_on=C.db_dates(ends), facility_id=o_fac, released_at=T(closed_at[o]),
              created_at=T(in_q[o]), updated_at=T(in_q[o]))
        events("isolation.order_started", "people.person", p_id[k_idx[o]], k_gcode[o], in_q[o])

        # ---- the current round: sites, tubes, samples, results, retests ------------------------------------------
        district_id = region_id[DISTRICT]
        r_start = now - 20 * HOUR
        camp_id = W.put(Campaign, 1, code="BENCH-ROUND", name="全员核酸第3轮", region_id=district_id,
                        region_code=DISTRICT, starts_at=T([r_start]), deadline=T([now + 28 * HOUR]),
                        status="running", created_at=T([r_start - DAY]), updated_at=T([r_start]))[0]
        prior_id = W.put(Campaign, 1, code="BENCH-ROUND-2", name="全员核酸第2轮", region_id=district_id,
                         region_code=DISTRICT, starts_at=T([now - 4 * DAY]), deadline=T([now - 3 * DAY]),
                         status="closed", created_at=T([now - 5 * DAY]), updated_at=T([now - 3 * DAY]))[0]
        del prior_id
        comm_codes = [r[1] for r in communities]
        n_sites = len(comm_codes)
        site_ids = np.array(W.put(
            SamplingSite, n_sites, code=[f"S{c}" for c in comm_codes], name=[f"采样点{i}" for i in range(n_sites)],
            region_id=[r[0] for r in communities], region_code=comm_codes,
            lon=[r[3] + rng.uniform(-0.002, 0.002) for r in communities],
            lat=[r[4] + rng.uniform(-0.002, 0.002) for r in communities], desks=4, staff=8,
            capacity_per_hour=rng.integers(150, 400, n_sites), campaign_id=camp_id, active=True), dtype="int64")
        site_of_comm = {c: i for i, c in enumerate(comm_codes)}
        p_site = np.array([site_of_comm.get(g[:12], 0) for g in grid_codes.tolist()], dtype="int64")[p_gpos]
        n_labs = 3
        lab_ids = np.array(W.put(Lab, n_labs, code=[f"LAB{i}" for i in range(n_labs)],
                                 name=[f"检测实验室{i}" for i in range(n_labs)], region_id=district_id,
                                 region_code=DISTRICT, capacity_per_hour=3000), dtype="int64")
        sampled = np.flatnonzero(rng.random(n_persons) < 0.5)
        s_at = r_start + rng.random(len(sampled)) * (now - r_start)
        s_order = np.lexsort((s_at, p_site[sampled]))
        sampled, s_at = sampled[s_order], s_at[s_order]
        s_site = p_site[sampled]
        new_tube = np.ones(len(sampled), dtype=bool)
        new_tube[1:] = s_site[1:] != s_site[:-1]
        run0 = np.maximum.accumulate(np.where(new_tube, np.arange(len(sampled)), 0))
        tube_key = np.cumsum(new_tube | ((np.arange(len(sampled)) - run0) % 10 == 0)) - 1
        n_tubes = int(tube_key[-1]) + 1
        t_members = np.bincount(tube_key, minlength=n_tubes)
        t_first = np.flatnonzero(np.r_[True, tube_key[1:] != tube_key[:-1]])
        pos = np.arange(len(sampled)) - np.repeat(t_first, t_members)
        t_open = s_at[t_first]
        t_seal = np.zeros(n_tubes)
        np.maximum.at(t_seal, tube_key, s_at)
        t_recv = t_seal + rng.uniform(1, 3, n_tubes) * HOUR
        t_res = t_recv + rng.uniform(2, 6, n_tubes) * HOUR
        resulted = t_res <= now
        received = t_recv <= now
        pick = rng.random(n_tubes)
        outcome = np.where(~resulted, "", np.where((pick < 0.002) & (t_members > 1), "positive",
                                                   np.where(pick < 0.003, "invalid", "negative")))
        t_status = np.where(resulted, "resulted", np.where(received, "received", "sealed"))
        t_lab = lab_ids[np.arange(n_tubes) % n_labs]
        tube_ids = np.array(W.put(
            Tube, n_tubes, barcode=[f"T{i:010d}" for i in range(n_tubes)], campaign_id=camp_id,
            site_id=site_ids[s_site[t_first]], region_code=p_gcode[sampled[t_first]], kind="routine", capacity=10,
            member_count=t_members, status=t_status, opened_at=T(t_open), sealed_at=T(t_seal),
            lab_id=[int(x) if ok else None for x, ok in zip(t_lab.tolist(), received.tolist(), strict=True)],
            received_at=T(t_recv, received), outcome=outcome, resulted_at=T(t_res, resulted)), dtype="int64")
        n_s = len(sampled)
        sample_ids = np.array(W.put(
            Sample, n_s, client_scan_id=[f"B{i:09d}" for i in range(n_s)], campaign_id=camp_id,
            tube_id=tube_ids[tube_key], person_id=p_id[sampled], site_id=site_ids[s_site], region_code=p_gcode[sampled],
            position=pos + 1, device="bench", sampled_at=T(s_at), recorded_at=T(s_at + 5)), dtype="int64")
        del sample_ids
        rt = np.flatnonzero(resulted)
        W.put(TubeResult, len(rt), tube_id=tube_ids[rt], lab_id=t_lab[rt], outcome=outcome[rt], tested_at=T(t_res[rt]),
              recorded_at=T(t_res[rt]), source="csv")
        member_res = resulted[tube_key]
        m_out = outcome[tube_key]
        ts = np.flatnonzero(member_res)
        state = np.where(m_out[ts] == "positive", "pool_positive", np.where(m_out[ts] == "invalid", "resample",
                                                                             "negative"))
        # persons sampled twice are not in this round (one sample each); the state is per person
        W.put(PersonTestState, len(ts), person_id=p_id[sampled[ts]], region_code=p_gcode[sampled[ts]], status=state,
              controlled_in_place=state == "pool_positive",
              controlled_since=T(t_res[tube_key[ts]], state == "pool_positive"), last_sampled_at=T(s_at[ts]),
              last_negative_sampled_at=T(s_at[ts], state == "negative"), updated_at=T(t_res[tube_key[ts]]))
        special = np.flatnonzero(member_res & np.isin(m_out, ["positive", "invalid"]))
        rpick = rng.random(len(special))
        r_status = np.where(m_out[special] == "invalid", "open", np.where(
            rpick < 0.5, "open", np.where(rpick < 0.8, "sampled", np.where(rpick < 0.98, "negative", "positive"))))
        W.put(RetestTask, len(special), person_id=p_id[sampled[special]], campaign_id=camp_id,
              source_tube_id=tube_ids[tube_key[special]],
              reason=np.where(m_out[special] == "invalid", "invalid_tube", "pool_positive"), status=r_status,
              region_code=p_gcode[sampled[special]], created_at=T(t_res[tube_key[special]]),
              resolved_at=T(t_res[tube_key[special]] + 3 * HOUR, np.isin(r_status, ["negative", "positive"])))
        pos_t = np.flatnonzero(outcome == "positive")
        events("testing.pool_positive", "testing.tube", tube_ids[pos_t], p_gcode[sampled[t_first[pos_t]]],
               t_res[pos_t], [{"barcode": f"T{i:010d}", "members": int(t_members[i])} for i in pos_t.tolist()])
        C.log(f"round: {n_s:,} samples in {n_tubes:,} tubes, {len(special):,} retest tasks")

        # ---- zones: lockdown on recent cases' buildings, control = their grids, prevention = their streets -----
        recent = np.flatnonzero((case_at > now - 7 * DAY) & (p_building[case_idx] > 0))
        lock_b, first_case = np.unique(p_building[case_idx[recent]], return_index=True)
        lock_case = recent[first_case]
        sel = np.argsort(-case_at[lock_case])[:max(1, n_cases // 12)]
        sel = np.sort(sel)  # lock_b stays sorted (searchsorted below)
        lock_b, lock_case = lock_b[sel], lock_case[sel]
        lock_g = np.unique(p_gpos[case_idx[lock_case]])[: max(1, n_grids // 6)]  # grid positions
        lock_s = np.unique(grid_street[lock_g])[:3]  # street positions
        in_lock_b = np.isin(p_building, lock_b)
        in_ctrl = np.isin(p_gpos, lock_g) & ~in_lock_b
        in_prev = np.isin(p_spos, lock_s) & ~in_lock_b & ~in_ctrl
        lock_grids = grid_codes[lock_g]
        lock_streets = street_codes[lock_s].tolist()

        def square(lon, lat, d):
            return json.dumps({"type": "Polygon", "coordinates": [[[lon - d, lat - d], [lon + d, lat - d],
                                                                  [lon + d, lat + d], [lon - d, lat + d],
                                                                  [lon - d, lat - d]]]})

        nl, ng, ns = len(lock_b), len(lock_grids), len(lock_streets)
        lb = b_index[lock_b]
        lock_pop = np.bincount(np.searchsorted(lock_b, p_building[in_lock_b]), minlength=nl)
        g_list = lock_grids.tolist()
        ctrl_pop = np.bincount(np.searchsorted(lock_g, p_gpos[in_ctrl]), minlength=ng)
        prev_pop = np.bincount(np.searchsorted(lock_s, p_spos[in_prev]), minlength=ns)
        types = ["lockdown"] * nl + ["control"] * ng + ["prevention"] * ns
        zone_region = [grid_code_of.get(int(b_rows[i, 1]), DISTRICT) for i in lb.tolist()] + g_list + lock_streets
        approved = np.concatenate([case_at[lock_case] + 3 * HOUR, np.full(ng + ns, now - 6 * DAY)])
        approved = np.minimum(approved, now - 60)
        geoms = [square(float(b_lon[i]), float(b_lat[i]), 0.0005) for i in lb.tolist()] + \
                [square(float(g_lon[g]), float(g_lat[g]), 0.004) for g in lock_g.tolist()] + \
                [square(*[(r[3], r[4]) for r in regions if r[1] == s][0], 0.02) for s in lock_streets]
        zone_ids = np.array(W.put(
            Zone, nl + ng + ns, ref=[f"Z{i:05d}" for i in range(nl + ng + ns)],
            name=[f"{'封控区' if t == 'lockdown' else '管控区' if t == 'control' else '防范区'}{i}"
                  for i, t in enumerate(types)], type=types, status="approved", region_code=zone_region,
            case_id=[int(case_ids[c]) for c in lock_case.tolist()] + [None] * (ng + ns), geometry=geoms,
            people=np.concatenate([lock_pop, ctrl_pop, prev_pop]).astype("int64"),
            households=np.concatenate([lock_pop, ctrl_pop, prev_pop]).astype("int64") // 3,
            last_infection_at=T(np.concatenate([case_at[lock_case], np.full(ng + ns, now - DAY)])),
            type_since=T(approved), proposed_at=T(approved - HOUR), approved_at=T(approved),
            updated_at=T(approved)), dtype="int64")
        W.put(ZoneUnit, nl + ng + ns, zone_id=zone_ids, kind=["building"] * nl + ["grid"] * ng + ["street"] * ns,
              building_id=[int(b) for b in lock_b.tolist()] + [None] * (ng + ns),
              region_id=[None] * nl + [region_id[g] for g in g_list] + [region_id[s] for s in lock_streets])
        li, ci, pi = np.flatnonzero(in_lock_b), np.flatnonzero(in_ctrl), np.flatnonzero(in_prev)
        W.put(ZoneResident, len(li) + len(ci) + len(pi),
              zone_id=np.concatenate([zone_ids[np.searchsorted(lock_b, p_building[li])],
                                      zone_ids[nl + np.searchsorted(lock_g, p_gpos[ci])],
                                      zone_ids[nl + ng + np.searchsorted(lock_s, p_spos[pi])]]),
              person_id=p_id[np.concatenate([li, ci, pi])],
              zone_type=["lockdown"] * len(li) + ["control"] * len(ci) + ["prevention"] * len(pi),
              region_code=p_gcode[np.concatenate([li, ci, pi])])
        events("zones.zone_approved", "zones.zone", zone_ids, zone_region, approved)
        C.log(f"zones: {nl} lockdown, {ng} control, {ns} prevention; residents {len(li) + len(ci) + len(pi):,}")

        # ---- command: field workers, directives, tasks, problems, service requests --------------------------------
        worker_ids = np.array(W.put(FieldWorker, n_grids, name=[f"网格员{i}" for i in range(n_grids)],
                                    phone="13900000000", role="grid_worker", region_code=grid_codes), dtype="int64")
        dir_at = now - np.array([60.0, 30.0, 6.0]) * HOUR
        dir_ids = np.array(W.put(
            Directive, 3, ref=["ZL-0001", "ZL-0002", "ZL-0003"], title=["全员核酸扫楼", "封控区物资保障", "密接排查"],
            text="bench", category=["sampling_sweep", "other", "other"], region_code=DISTRICT,
            deadline=T(dir_at + 24 * HOUR), status="open", issued_at=T(dir_at), updated_at=T(dir_at)), dtype="int64")
        comm_list = [r[1] for r in communities]
        cascade = [(d, code, level, None if level == "street" else (d, code[:9] if level == "community" else code[:12]))
                   for d in range(3)
                   for level, codes in (("street", streets), ("community", comm_list), ("grid", grid_codes.tolist()))
                   for code in codes]
        t_dir = [c[0] for c in cascade]
        t_region = [c[1] for c in cascade]
        t_level = [c[2] for c in cascade]
        t_parent_key = [c[3] for c in cascade]
        t_key = [(c[0], c[1]) for c in cascade]
        t_source = ["directive"] * len(cascade)
        n_dir_tasks = len(t_dir)
        n_auto = max(0, n_tasks - n_dir_tasks)
        auto_sources = rng.choice(["deliver", "locate_contact", "retest_pool", "sweep_untested"], n_auto,
                                  p=[.45, .25, .15, .15])
        auto_grids = p_gcode[rng.choice(np.flatnonzero(in_lock_b | in_ctrl) if (in_lock_b | in_ctrl).any()
                                        else np.arange(n_persons), n_auto)]
        n_t = n_dir_tasks + n_auto
        first_task = W.first_id(Task)
        key_id = {k: first_task + i for i, k in enumerate(t_key)}
        issued = np.concatenate([dir_at[np.array(t_dir, dtype="int64")], now - rng.uniform(0, 48, n_auto) * HOUR])
        deadline = issued + np.concatenate([np.full(n_dir_tasks, 24 * HOUR), rng.choice([4, 12, 24], n_auto) * HOUR])
        tp = rng.random(n_t)
        t_status = np.where(tp < 0.45, "done", np.where(tp < 0.65, "in_progress", np.where(tp < 0.8, "acknowledged",
                                                                                            "assigned")))
        grid_worker = dict(zip(grid_codes.tolist(), worker_ids.tolist(), strict=True))
        regions_t = t_region + auto_grids.tolist()
        levels = t_level + ["grid"] * n_auto
        W.put(Task, n_t, directive_id=[int(dir_ids[d]) for d in t_dir] + [None] * n_auto,
              parent_id=[key_id[k] if k else None for k in t_parent_key] + [None] * n_auto,
              source=t_source + auto_sources.tolist(),
              source_key=[""] * n_dir_tasks + [f"bench:{i}" for i in range(n_auto)],
              title=["任务"] * n_t, region_code=regions_t, level=levels,
              assignee_id=[grid_worker.get(r) if lv == "grid" else None for r, lv in zip(regions_t, levels,
                                                                                       strict=True)],
              status=t_status, deadline=T(deadline), target_count=rng.integers(1, 50, n_t),
              done_count=np.where(t_status == "done", 50, 0), acknowledged_at=T(issued + 0.5 * HOUR, t_status != "assigned"),
              done_at=T(np.minimum(issued + rng.uniform(1, 30, n_t) * HOUR, now), t_status == "done"),
              created_at=T(issued), updated_at=T(issued))
        n_prob = max(50, n_cases // 10)
        pr_p = rng.choice(n_persons, n_prob)
        pr_at = now - rng.uniform(0, 72, n_prob) * HOUR
        pp = rng.random(n_prob)
        # 5 % reported for a whole community or street (located no further: the drill-down's remainder)
        upper = rng.random(n_prob)
        pr_region = np.where(upper < 0.03, [g[:12] for g in p_gcode[pr_p].tolist()],
                             np.where(upper < 0.05, p_street[pr_p], p_gcode[pr_p]))
        pr_status = np.where(pp < 0.4, "open", np.where(pp < 0.6, "in_progress", "resolved"))
        prob_ids = np.array(W.put(
            Problem, n_prob, ref=[f"WT-{i:06d}" for i in range(n_prob)],
            category=rng.choice(["movement_in_lockdown", "unmanned_post", "queue_too_long", "supply_shortage",
                                 "data_error", "other"], n_prob), description="bench",
            urgency=rng.choice(["normal", "urgent", "critical"], n_prob, p=[.7, .25, .05]), region_code=pr_region,
            responsible_code=pr_region, lon=p_lon[pr_p], lat=p_lat[pr_p], status=pr_status,
            deadline=T(pr_at + rng.choice([2, 4, 24], n_prob) * HOUR), reported_at=T(pr_at),
            resolved_at=T(pr_at + 3 * HOUR, pr_status == "resolved")), dtype="int64")
        events("command.problem_reported", "command.problem", prob_ids, pr_region, pr_at)
        n_srv = max(100, n_cases // 2)
        pool = np.flatnonzero(in_lock_b | in_ctrl)
        sv_p = rng.choice(pool if len(pool) else np.arange(n_persons), n_srv)
        sv_at = now - rng.uniform(0, 72, n_srv) * HOUR
        sp = rng.random(n_srv)
        sv_status = np.where(sp < 0.15, "submitted", np.where(sp < 0.4, "assigned", np.where(
            sp < 0.6, "in_progress", np.where(sp < 0.8, "delivered", "confirmed"))))
        srv_ids = np.array(W.put(
            ServiceRequest, n_srv, ref=[f"FW-{i:06d}" for i in range(n_srv)], person_id=p_id[sv_p],
            category=rng.choice(["medicine", "medical_visit", "food", "garbage", "psychological", "other"], n_srv),
            region_code=p_gcode[sv_p], vulnerable=p_vuln[sv_p], priority=rng.integers(1, 8, n_srv),
            deadline=T(sv_at + rng.choice([2, 12, 24, 48], n_srv) * HOUR), status=sv_status,
            assignee_id=[None if s == "submitted" else grid_worker.get(g) for s, g in
                         zip(sv_status.tolist(), p_gcode[sv_p].tolist(), strict=True)],
            submitted_at=T(sv_at), delivered_at=T(sv_at + 6 * HOUR, np.isin(sv_status, ["delivered", "confirmed"])),
            confirmed_at=T(sv_at + 8 * HOUR, sv_status == "confirmed"), contact_phone="13800000000"), dtype="int64")
        events("command.service_submitted", "command.servicerequest", srv_ids, p_gcode[sv_p], sv_at)
        C.log(f"command: {n_t:,} tasks, {n_prob:,} problems, {n_srv:,} service requests")

        # ---- checkpoints and a week of crossings -----------------------------------------------------------------
        n_cp = 30
        cp_p = rng.choice(n_persons, n_cp, replace=False)
        cp_kind = rng.choice(["highway_exit", "road", "zone_boundary", "port"], n_cp, p=[.3, .3, .3, .1])
        cp_ids = np.array(W.put(
            Checkpoint, n_cp, code=[f"KK{i:03d}" for i in range(n_cp)], name=[f"卡口{i}" for i in range(n_cp)],
            kind=cp_kind, region_code=p_gcode[cp_p], lon=p_lon[cp_p], lat=p_lat[cp_p], active=True,
            created_at=T(np.full(n_cp, now - 10 * DAY))), dtype="int64")
        n_x = max(1000, n_persons // 20)
        x_cp = rng.integers(0, n_cp, n_x)
        x_at = now - growth_ages(n_x, 7, 0.0)
        xd = rng.random(n_x)
        decision = np.where(xd < 0.03, "deny", np.where(xd < 0.045, "refer", "allow"))
        person_x = rng.random(n_x) < 0.7
        x_person = p_id[rng.integers(0, n_persons, n_x)]
        x_ids = np.array(W.put(
            Crossing, n_x, client_id=[f"X{i:09d}" for i in range(n_x)], checkpoint_id=cp_ids[x_cp],
            region_code=p_gcode[cp_p][x_cp], at=T(x_at), direction=rng.choice(["in", "out"], n_x),
            subject=np.where(person_x, "person", "vehicle"),
            person_id=[int(p) if ok else None for p, ok in zip(x_person.tolist(), person_x.tolist(), strict=True)],
            plate=np.where(person_x, "", "浙B12345"), passengers=np.where(person_x, 0, 3),
            colour=np.where(decision == "deny", "red", np.where(decision == "refer", "yellow", "green")),
            decision=decision, reasons="[]", received_at=T(x_at + 2)), dtype="int64")
        den = np.flatnonzero((decision != "allow") & (x_at > now - 2 * DAY))
        events("codes.crossing_recorded", "codes.crossing", x_ids[den], p_gcode[cp_p][x_cp[den]], x_at[den],
               [{"decision": str(d)} for d in decision[den].tolist()])

        # ---- the domain events, in time order -------------------------------------------------------------------
        ev_type = np.concatenate([np.full(len(e["subject_id"]), e["type"], dtype=object) for e in bulk_events])
        ev_st = np.concatenate([np.full(len(e["subject_id"]), e["subject_type"], dtype=object) for e in bulk_events])
        ev_sid = np.concatenate([e["subject_id"].astype(str).astype(object) for e in bulk_events])
        ev_reg = np.concatenate([e["region_code"] for e in bulk_events])
        ev_at = np.concatenate([e["at"] for e in bulk_events])
        ev_pl = [json.dumps(p, ensure_ascii=False) for e in bulk_events
                 for p in (e["payload"] or [{}] * len(e["subject_id"]))]
        ev_ord = np.argsort(ev_at, kind="stable")
        ev_pl = [ev_pl[i] for i in ev_ord.tolist()]
        W.put(DomainEvent, len(ev_at), type=ev_type[ev_ord], subject_type=ev_st[ev_ord], subject_id=ev_sid[ev_ord],
              region_code=ev_reg[ev_ord], occurred_at=T(ev_at[ev_ord]), recorded_at=T(ev_at[ev_ord]), payload=ev_pl)
        W.finish()
        C.bulk_mode(connection, False)
    with connection.cursor() as c:
        c.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    top_street = streets[int(np.bincount(p_spos[case_idx], minlength=len(streets)).argmax())]
    return {"built_at": now, "cases": n_cases, "contacts": n_k, "tasks": n_t, "samples": n_s, "tubes": n_tubes,
            "batches": nb, "rooms": total_rooms, "zones": nl + ng + ns, "problems": n_prob, "service_requests": n_srv,
            "crossings": n_x, "events": len(ev_at), "officer_street": top_street,
            "cases_in_officer_street": int((p_street[case_idx] == top_street).sum()), "grids": n_grids,
            "ops_seconds": round(time.perf_counter() - started, 1)}


def _sessions(street: str) -> dict:
    """A district commander and a street officer, signed in (session cookies as the login page would set)."""
    from django.conf import settings
    from django.test import Client

    from jingkong.access.models import User
    from jingkong.geo.models import Region

    out = {}
    for username, role, code in (("bench_commander", "commander", DISTRICT), ("bench_officer", "street_officer",
                                                                               street)):
        user = User.objects.filter(username=username).first() or User.objects.create_user(
            username=username, password="bench-password-123456", role=role)
        user.role, user.region = role, Region.objects.get(code=code)
        user.save()
        client = Client()
        client.force_login(user)
        out[role] = {"cookie": f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}",
                     "region": code}
    return out


def worker_build(args) -> dict:
    C.setup_django(args.db_url, secret=SECRET, data_dir=args.data_dir)
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    base_spec = {"version": BASE_VERSION, "population": args.population, "seed": args.seed}
    ops_spec = {"version": OPS_VERSION, "cases": args.cases, "contacts": args.contacts, "tasks": args.tasks,
                "seed": args.seed}
    base = _meta_get(connection, "base")
    out: dict = {}
    if not base or base.get("spec") != base_spec:
        if base:
            raise SystemExit("the database holds another base dataset: run with --fresh")
        facts = build_base(args.population, args.seed, Path(args.data_dir))
        _meta_set(connection, "base", {"spec": base_spec, "facts": facts})
        out |= facts | {"base_reused": False}
        ops = None
    else:
        out |= base["facts"] | {"base_reused": True}
        ops = _meta_get(connection, "ops")
    stale = (not ops or ops.get("spec") != ops_spec or args.fresh_ops
             or time.time() - ops["facts"]["built_at"] > args.max_age * 60)
    if stale:
        facts = build_ops(args.cases, args.contacts, args.tasks, args.seed)
        _meta_set(connection, "ops", {"spec": ops_spec, "facts": facts})
        out |= facts | {"ops_reused": False}
    else:
        out |= ops["facts"] | {"ops_reused": True}
    out["sessions"] = _sessions(out["officer_street"])
    out["build_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def worker_refresh(args) -> dict:
    """Every family recomputed (force), timed; then the bare COUNT baseline."""
    C.setup_django(args.db_url, secret=SECRET, data_dir=args.data_dir)
    from django.db import connection

    from jingkong.dashboard import families as registry
    from jingkong.dashboard import refresher
    from jingkong.dashboard.models import RefreshState

    registry.load_all()
    names = sorted(registry.all_families())
    t = time.perf_counter()
    done = refresher.run_pending(force=True)
    wall = time.perf_counter() - t
    fams = {s.family: {"duration_ms": s.duration_ms, "rows": s.rows, **({"error": s.error[:300]} if s.error else {})}
            for s in RefreshState.objects.filter(family__in=names)}

    def count():
        with connection.cursor() as c:
            c.execute("SELECT COUNT(*) FROM tracing_case")
            return c.fetchone()[0]

    counts = C.time_ms(count, args.requests)
    return {"registered": names, "refreshed": done, "wall_ms": round(wall * 1000), "families": fams,
            "count_cases_sql": C.summarise_ms(counts), "cases_in_db": count()}


# ======================================================================================================================
# measuring (driver process, over HTTP)
# ======================================================================================================================


class Http:
    """One keep-alive connection with a session cookie (a browser tab's connection)."""

    def __init__(self, port: int, cookie: str):
        self.port, self.cookie = port, cookie
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def get(self, path: str, accept: str = "application/json") -> tuple[int, bytes, float]:
        headers = {"Cookie": self.cookie, "Accept": accept, "Accept-Language": "zh-hans"}
        t = time.perf_counter()
        for attempt in range(2):
            try:
                self.conn.request("GET", path, headers=headers)
                r = self.conn.getresponse()
                body = r.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                if attempt:
                    raise
        return r.status, body, (time.perf_counter() - t) * 1000

    def json(self, path: str) -> dict:
        status, body, _ = self.get(path)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body[:300]!r}")
        return json.loads(body)

    def close(self) -> None:
        self.conn.close()


API = "/api/v1/dashboard"


def _calls(region: str) -> dict[str, str]:
    q = urlencode({"region": region})
    out = {name: f"{API}/{name}?{q}" for name in SCREEN_CALLS}
    out |= {f"layers/{name}": f"{API}/layers/{name}?{q}" for name in LAYERS}
    out["zones_geojson"] = "/api/v1/zones/zones/geojson"  # the caller's scope (no region parameter)
    return out


def measure_api(port: int, sessions: dict, levels: dict, n: int) -> tuple[dict, dict]:
    """p50/p95 of every call, per user and level: sequential requests on one keep-alive connection, one warm-up
    each, every call followed by the baseline ``GET /api/v1/access/me`` on the same connection (so the baseline
    sees the same moment of a shared machine). Returns (calls, baseline)."""
    out: dict = {}
    me: list[float] = []
    for role, lvls in (("commander", ("district", "street", "grid")), ("street_officer", ("street", "grid"))):
        http_ = Http(port, sessions[role]["cookie"])
        try:
            for _ in range(5):
                http_.get("/api/v1/access/me")
            for level in lvls:
                C.log(f"measuring {role}@{level} ({levels[level]})")
                row = {}
                for name, path in _calls(levels[level]).items():
                    status, _, _ = http_.get(path)
                    if status != 200:
                        row[name] = {"status": status}
                        continue
                    times = []
                    for _ in range(n):
                        status, body, ms = http_.get(path)
                        if status != 200:
                            raise RuntimeError(f"GET {path}: {status} {body[:200]!r}")
                        times.append(ms)
                        me.append(http_.get("/api/v1/access/me")[2])
                    row[name] = C.summarise_ms(times) | {"bytes": len(body)}
                out[f"{role}@{level}"] = row
        finally:
            http_.close()
    return out, C.summarise_ms(me)


_ASSET = re.compile(r"""<(?:script[^>]+src|link[^>]+href)=["']([^"']+\.(?:js|css)[^"']*)["']""")
_JSON_SCRIPT = re.compile(r"""<script[^>]+type=["']application/json["'][^>]*>(.*?)</script>""", re.S)


def page_plan(html: str, region: str) -> tuple[list[str], list[str], dict]:
    """The page's assets (from its HTML) and the API calls it makes at load: the contract's screen calls, the
    layers its config allows (all when the config does not say), the zones GeoJSON and the region shapes."""
    assets = sorted({a for a in _ASSET.findall(html) if a.startswith("/")})
    config: dict = {}
    for raw in _JSON_SCRIPT.findall(html):
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        if isinstance(data, dict):
            config |= data
    allowed = config.get("layers") or config.get("allowed_layers")
    if isinstance(allowed, dict):
        allowed = [k for k, v in allowed.items() if v]
    api_calls = [p for name, p in _calls(region).items()
                 if not name.startswith("layers/") or not allowed or name.split("/", 1)[1] in allowed]
    api_calls += [f"/api/v1/geo/regions/{region}", f"/api/v1/geo/regions/{region}/children"]
    return assets, api_calls, config


def render_once(port: int, cookie: str, path: str, api_paths: list[str] | None, concurrency: int) -> dict:
    """HTML, then its assets, then its API calls, each phase ``concurrency`` at a time on keep-alive connections."""
    t0 = time.perf_counter()
    main = Http(port, cookie)
    status, body, html_ms = main.get(path, accept="text/html")
    main.close()
    if status != 200:
        raise RuntimeError(f"GET {path}: {status}")
    region = dict(p.split("=", 1) for p in urlparse(path).query.split("&") if "=" in p).get("region", DISTRICT)
    assets, api_calls, _ = page_plan(body.decode("utf-8", "replace"), region)
    if api_paths:
        api_calls = api_paths
    local, opened = threading.local(), []
    failures: list[str] = []

    def fetch(url: str):
        if not hasattr(local, "http"):  # one keep-alive connection per thread, as a browser keeps 6 per host
            local.http = Http(port, cookie)
            opened.append(local.http)
        return url, local.http.get(url)

    with futures.ThreadPoolExecutor(concurrency) as ex:
        def phase(urls: list[str]) -> float:
            started = time.perf_counter()
            results = list(ex.map(fetch, urls))
            failures.extend(f"{u}: {r[0]}" for u, r in results if r[0] >= 400 and r[0] != 403)
            return (time.perf_counter() - started) * 1000

        assets_ms = phase(assets)
        api_ms = phase(api_calls)
    for h in opened:
        h.close()
    return {"total_ms": round((time.perf_counter() - t0) * 1000, 1), "html_ms": round(html_ms, 1),
            "assets_ms": round(assets_ms, 1), "api_ms": round(api_ms, 1), "assets": len(assets),
            "api_calls": len(api_calls), "failures": failures[:5]}


def measure_render(port: int, cookie: str, region: str, renders: int, concurrency: int,
                   api_paths: list[str] | None = None) -> dict:
    path = f"/screen/?{urlencode({'region': region})}"
    first = render_once(port, cookie, path, api_paths, concurrency)
    rest = [render_once(port, cookie, path, api_paths, concurrency) for _ in range(renders)]
    totals = [r["total_ms"] for r in rest]
    return {"first": first, "median_ms": round(statistics.median(totals), 1) if totals else None,
            "max_ms": max(totals) if totals else None, "renders": len(rest),
            "ok": max([first["total_ms"], *totals]) <= TARGET_RENDER_MS and not first["failures"]}


def measure_browser(port: int, cookie: str, region: str, repeats: int) -> dict:
    """Headless Chromium: navigation → ``#jk-screen[data-ready="1"]``; cold (fresh profile), then warm repeats."""
    chromium, driver_path = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver")
    if not (Path(chromium).exists() and driver_path):
        return {"skipped": "no chromium/chromedriver on this machine"}
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as EC
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError:
        return {"skipped": "selenium is not installed in this environment"}
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1920,1080",
              "--lang=zh-CN", f"--user-data-dir={tempfile.mkdtemp(prefix='jk_bench_chrome_')}"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    name, value = cookie.split("=", 1)
    url = f"http://127.0.0.1:{port}/screen/?{urlencode({'region': region})}"
    try:
        driver.get(f"http://127.0.0.1:{port}/healthz")
        driver.add_cookie({"name": name, "value": value, "path": "/"})
        times, requests = [], []
        for i in range(1 + repeats):
            t = time.perf_counter()
            driver.get(url)
            try:
                WebDriverWait(driver, 30, poll_frequency=0.02).until(
                    EC.presence_of_element_located((By.CSS_SELECTOR, '#jk-screen[data-ready="1"]')))
            except Exception:  # noqa: BLE001 - report the page's state instead of a trace
                state = driver.execute_script("var s = document.querySelector('#jk-screen');"
                                              "return s ? s.outerHTML.slice(0, 200) : document.title;")
                return {"error": f"not ready within 30 s: {state}", "times_ms": times}
            times.append(round((time.perf_counter() - t) * 1000, 1))
            if i == 0:
                nav = driver.execute_script(
                    "var n = performance.getEntriesByType('navigation')[0] || {};"
                    "return [n.responseEnd, n.domContentLoadedEventEnd, n.loadEventEnd, performance.now()];")
                requests = driver.execute_script(
                    "return performance.getEntriesByType('resource').map(function (e) {"
                    "  return [e.name, e.initiatorType, Math.round(e.duration)]; });")
        api = [r for r in requests if "/api/" in r[0] and r[1] in ("fetch", "xmlhttprequest")]
        return {"cold_ms": times[0], "cold_navigation_ms": dict(zip(
                    ("html", "dom_content_loaded", "load", "ready_seen"), [round(x or 0) for x in nav], strict=True)),
                "warm_median_ms": round(statistics.median(times[1:]), 1) if repeats else None,
                "warm_max_ms": max(times[1:]) if repeats else None, "api_requests_at_load": len(api),
                "slowest_api": sorted(([urlparse(r[0]).path, r[2]] for r in api), key=lambda x: -x[1])[:3],
                "api_paths": [urlparse(r[0]).path + ("?" + urlparse(r[0]).query if urlparse(r[0]).query else "")
                              for r in api],
                "ok": max(times) <= TARGET_RENDER_MS}
    finally:
        driver.quit()


def verify_counts(port: int, sessions: dict, facts: dict) -> dict:
    """rows + remainder == summary (every additive field), each row == its own summary, cases_total == built."""

    def dig(d, path):
        for k in path:
            if not isinstance(d, dict):
                return None
            d = d.get(k)
        return d

    def one(cookie: str, region: str, rows_vs_own: bool) -> dict:
        h = Http(port, cookie)
        try:
            summary = h.json(f"{API}/summary?{urlencode({'region': region})}")
            regions = h.json(f"{API}/regions?{urlencode({'region': region})}")
            mismatches = []
            for field, path in ADDITIVE.items():
                want = dig(summary["tiles"], path)
                if want is None:
                    continue
                got = sum((r.get(field) or 0) for r in regions["rows"]) + ((regions.get("remainder") or {}).get(
                    field) or 0)
                if abs(got - want) > 1e-6:
                    mismatches.append({"field": field, "rows_plus_remainder": got, "summary": want})
            own_mismatch = []
            if rows_vs_own:
                for r in regions["rows"]:
                    s = h.json(f"{API}/summary?{urlencode({'region': r['code']})}")
                    for field, path in ADDITIVE.items():
                        want = dig(s["tiles"], path)
                        if want is not None and abs((r.get(field) or 0) - want) > 1e-6:
                            own_mismatch.append({"region": r["code"], "field": field, "row": r.get(field),
                                                 "summary": want})
            return {"ok": not mismatches and not own_mismatch, "rows": len(regions["rows"]),
                    "remainder": regions.get("remainder"), "mismatches": mismatches[:5],
                    "row_vs_own_summary_mismatches": own_mismatch[:5], "cases_total": summary["tiles"].get(
                        "cases_total")}
        finally:
            h.close()

    try:
        district = one(sessions["commander"]["cookie"], DISTRICT, True)
        street = one(sessions["street_officer"]["cookie"], sessions["street_officer"]["region"], True)
    except Exception as exc:  # noqa: BLE001 - the API not there yet: say so
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:400]}
    built = district.get("cases_total") == facts.get("cases")
    return {"ok": district["ok"] and street["ok"] and built, "district": district, "street": street,
            "cases_total_equals_built": built}


def _levels(port: int, sessions: dict) -> dict:
    """The officer's street, and its grid with most cases (from /regions when the API answers; else the first)."""
    street = sessions["street_officer"]["region"]
    h = Http(port, sessions["commander"]["cookie"])
    try:
        grid = None
        code = street
        for _ in range(2):  # street → community → grid, following the most cases
            status, body, _ = h.get(f"{API}/regions?{urlencode({'region': code})}")
            if status != 200:
                break
            rows = json.loads(body).get("rows") or []
            if not rows:
                break
            code = max(rows, key=lambda r: (r.get("cases_total") or 0, r["code"]))["code"]
            grid = code if len(code) > 12 else None
        if grid is None:
            status, body, _ = h.get(f"/api/v1/geo/regions/{street}/children")
            kids = json.loads(body).get("features", []) if status == 200 else []
            community = kids[0]["properties"]["code"] if kids else street
            status, body, _ = h.get(f"/api/v1/geo/regions/{community}/children")
            kids = json.loads(body).get("features", []) if status == 200 else []
            grid = kids[0]["properties"]["code"] if kids else community
    finally:
        h.close()
    return {"district": DISTRICT, "street": street, "grid": grid}


def compact(result: dict) -> dict:
    """The figures a report quotes: per call the p95 at each level, the renders, the browser, the refresh, checks."""
    if "error" in result:
        return {"database": result["database"], "error": result["error"][:300]}
    calls: dict = {}
    for who, row in result["api"].items():
        for name, m in row.items():
            calls.setdefault(name, {})[who] = m.get("p95_ms", m.get("status"))
    browser = result["browser"]
    return {
        "database": result["database"],
        "refresh_ms": {"wall": result["refresh"].get("wall_ms"), **{
            f: v.get("duration_ms") for f, v in result["refresh"].get("families", {}).items()}},
        "api_p95_ms": calls,
        "baseline_me_p95_ms": result["baseline"]["access_me"].get("p95_ms"),
        "baseline_count_cases_p95_ms": (result["baseline"].get("count_cases_sql") or {}).get("p95_ms"),
        "worst": result["api_worst"],
        "render_ms": {who: {"first": r["first"]["total_ms"], "median": r["median_ms"], "max": r["max_ms"]}
                      for who, r in result["render"].items()},
        "browser_ready_ms": {k: browser.get(k) for k in ("cold_ms", "warm_median_ms", "warm_max_ms", "skipped",
                                                         "error") if browser.get(k) is not None},
        "counts_add_up": result["verify"].get("ok"),
        "meets": result["meets"],
    }


def warm_server(port: int, cookie: str) -> None:
    """Load the application in every gunicorn worker (Django imports the URL conf on a worker's first request): a
    first render should measure the page, not the server's start-up."""
    conns = [Http(port, cookie) for _ in range(8)]
    try:
        with futures.ThreadPoolExecutor(8) as ex:
            list(ex.map(lambda h: [h.get(f"/screen/?region={DISTRICT}", accept="text/html"),
                                   h.get("/api/v1/access/me")], conns))
    finally:
        for h in conns:
            h.close()


def _worst(api: dict) -> tuple[str, float]:
    worst = ("", 0.0)
    for who, row in api.items():
        for name, m in row.items():
            if m.get("p95_ms", 0) > worst[1]:
                worst = (f"{who} {name}", m["p95_ms"])
    return worst


def run_database(kind: str, args) -> dict:
    url = _sqlite_url(args) if kind == "sqlite" else _pg_dataset_url(args)
    common = ["--db-url", url, "--data-dir", args.data_dir, "--population", str(args.population), "--seed",
              str(args.seed), "--cases", str(args.cases), "--contacts", str(args.contacts), "--tasks", str(args.tasks),
              "--requests", str(args.requests), "--max-age", str(args.max_age)]
    try:
        t = time.perf_counter()
        built = C.spawn(__file__, ["--worker", "build", *common, *(["--fresh-ops"] if args.fresh_ops else [])],
                        verbose=args.verbose)
        if "error" in built:
            return {"database": kind, "stage": "build", **built}
        build_s = time.perf_counter() - t
        C.log(f"{kind}: dataset ready ({build_s:.0f} s); refreshing the figure families")
        refresh = C.spawn(__file__, ["--worker", "refresh", *common], verbose=args.verbose)
        sessions = built.pop("sessions")
        env = C.server_env(url, secret=SECRET, data_dir=args.data_dir)
        # The browser first, on a server of its own: its pages open the live stream, whose threads go on calling
        # run_pending (recomputing families in the server) until they notice the tab closed; the measurements
        # below get a fresh server without such leftovers.
        with C.Server.jingkong_serve(env, workers=args.workers, threads=args.threads) as server:
            C.log(f"{kind}: browser on port {server.port}")
            warm_server(server.port, sessions["commander"]["cookie"])
            browser = measure_browser(server.port, sessions["commander"]["cookie"], DISTRICT, args.browser_repeats)
        paths = browser.get("api_paths") or None  # what the real page asked for, else the contract's list
        with C.Server.jingkong_serve(env, workers=args.workers, threads=args.threads) as server:
            warm_server(server.port, sessions["commander"]["cookie"])
            levels = _levels(server.port, sessions)
            C.log(f"{kind}: server on {server.port}; levels {levels}")
            render = {
                "commander@district": measure_render(server.port, sessions["commander"]["cookie"], DISTRICT,
                                                     args.renders, args.concurrency, paths),
                "street_officer@street": measure_render(
                    server.port, sessions["street_officer"]["cookie"], levels["street"], args.renders,
                    args.concurrency, [p.replace(DISTRICT, levels["street"]) for p in paths] if paths else None),
            }
            api, me = measure_api(server.port, sessions, levels, args.requests)
            verify = verify_counts(server.port, sessions, built)
        me_p95 = max(me.get("p95_ms", 0), 1e-3)
        for row in api.values():
            for m in row.values():
                if "p95_ms" in m:
                    m["ratio_to_me"] = round(m["p95_ms"] / me_p95, 1)
        worst_name, worst_p95 = _worst(api)
        served = [m for row in api.values() for m in row.values() if "p95_ms" in m]
        return {
            "database": kind, "dataset": url if kind == "sqlite" else url.rsplit("/", 1)[-1],
            "build": built | {"seconds": round(build_s, 1)},
            "refresh": refresh,
            "levels": levels,
            "baseline": {"access_me": me, "count_cases_sql": refresh.get("count_cases_sql")},
            "api": api,
            "api_worst": {"call": worst_name, "p95_ms": worst_p95, "ratio_to_me": round(worst_p95 / me_p95, 1),
                          "calls_measured": len(served), "calls_over_target": sum(
                              m["p95_ms"] > TARGET_P95_MS for m in served)},
            "render": render, "browser": browser, "verify": verify,
            "targets": {"render_ms": TARGET_RENDER_MS, "api_p95_ms": TARGET_P95_MS},
            "meets": {"api_p95": bool(served) and worst_p95 <= TARGET_P95_MS,
                      "render": all(r["ok"] for r in render.values()) and browser.get("ok", True),
                      "counts": verify.get("ok", False)},
        }
    except Exception as exc:  # noqa: BLE001 - report, keep the other database's result
        return {"database": kind, "error": f"{type(exc).__name__}: {exc}"[:2000]}
    finally:
        if args.drop:
            _drop(kind, url, args)


# ---- datasets --------------------------------------------------------------------------------------------------------


def _sqlite_url(args) -> str:
    folder = Path(args.data_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"dashboard-{args.population}.sqlite3"
    if args.fresh:
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    return f"sqlite:///{path}"


def _pg_name(args) -> str:
    return PG_NAME + ("_quick" if args.quick else "" if args.population == 1_000_000 else f"_{args.population}")


def _pg_dataset_url(args) -> str:
    return C.pg_create(_pg_name(args), args.database_url, fresh=args.fresh)


def _drop(kind: str, url: str, args) -> None:
    if kind == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    else:
        C.pg_drop(_pg_name(args), args.database_url)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 50 k persons, 1 k cases, 10 k contacts")
    p.add_argument("--databases", default="sqlite,postgresql")
    p.add_argument("--database-url", default="", help="PostgreSQL server (default DATABASE_URL or "
                                                      f"{C.DEFAULT_PG}); the dataset database is {PG_NAME}")
    p.add_argument("--population", type=int, default=None, help="persons (default 1,000,000)")
    p.add_argument("--cases", type=int, default=None)
    p.add_argument("--contacts", type=int, default=None)
    p.add_argument("--tasks", type=int, default=None)
    p.add_argument("--seed", type=int, default=8)
    p.add_argument("--requests", type=int, default=None, help="requests per call and level (default 30; quick 10)")
    p.add_argument("--renders", type=int, default=5, help="repeated full renders after the first")
    p.add_argument("--browser-repeats", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=6, help="parallel requests of a render (a browser's 6)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (as jingkong serve)")
    p.add_argument("--threads", type=int, default=4, help="threads per worker (as jingkong serve)")
    p.add_argument("--data-dir", default=str(C.ROOT / "var" / "bench"))
    p.add_argument("--max-age", type=float, default=30, help="minutes before the operational data is rebuilt")
    p.add_argument("--fresh", action="store_true", help="rebuild everything (persons too)")
    p.add_argument("--fresh-ops", action="store_true", help="rebuild the operational data")
    p.add_argument("--drop", action="store_true", help="delete the datasets after the run")
    p.add_argument("--verbose", action="store_true", help="show the workers' progress")
    p.add_argument("--out", default="", help="also write the JSON to this file")
    p.add_argument("--worker", choices=["build", "refresh"], help=argparse.SUPPRESS)
    p.add_argument("--db-url", help=argparse.SUPPRESS)
    args = p.parse_args()
    quick = args.quick
    args.population = args.population or (50_000 if quick else 1_000_000)
    args.cases = args.cases or (1_000 if quick else 10_000)
    args.contacts = args.contacts or (10_000 if quick else 100_000)
    args.tasks = args.tasks or (3_000 if quick else 10_000)
    args.requests = args.requests or (10 if quick else 30)
    if args.worker:
        print(json.dumps(worker_build(args) if args.worker == "build" else worker_refresh(args), default=str))
        return
    load = os.getloadavg()[0]
    results = [run_database(k.strip(), args) for k in args.databases.split(",") if k.strip()]
    report = {"benchmark": "one-screen dashboard (issue 8)", "quick": quick, "population": args.population,
              "cases": args.cases, "contacts": args.contacts, "requests_per_call": args.requests,
              "server": f"jingkong serve --no-worker: gunicorn gthread {args.workers}x{args.threads}",
              "cores": os.cpu_count(), "loadavg_1m_at_start": round(load, 2),
              "loadavg_1m_at_end": round(os.getloadavg()[0], 2), "results": results,
              "compact": [compact(r) for r in results]}
    text = json.dumps(report, indent=2, ensure_ascii=False, default=str)
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
