"""Benchmark of the sampling hot path through the real HTTP API, on SQLite and on PostgreSQL.

For each database (a scratch one: a temporary SQLite file; a PostgreSQL database ``jk_bench_scans_<pid>`` on the server
of DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test, dropped afterwards):

1. seed: migrate, a small region tree, one sampling site, a running 10-in-1 campaign, a sampler with a device token,
   and ``--persons`` registered persons (default 1,000,000; ``--quick``: 20,000);
2. **bare**: gunicorn with the same worker configuration as ``jingkong serve`` serving ``benchmarks/bench_wsgi.py``
   (the platform's settings and middleware, one ``POST /api/bench/bare`` that parses the JSON body and answers a small
   JSON object: no authentication, no database) — the baseline, measured in the same run;
3. **single**: ``jingkong serve --no-worker`` (gunicorn gthread, ``--workers``×``--threads``), ``POST
   /api/v1/testing/scans`` with a bearer token, each request a new person into 10-in-1 tubes (fresh ``client_scan_id``);
4. **batch**: ``POST /api/v1/testing/scans/batch`` with 100 scans (10 tubes × 10 persons) per request;
5. **contention**: single scans where every connection fills the *same* tubes (many are refused as full);
6. verify: every tube's ``member_count`` equals its samples, none over capacity, positions unique per tube, and the
   number of samples equals the scans the server acknowledged.

Load generator: ``wrk`` (Lua scripts written to a temporary directory) when installed — on the same machine, so the
figures are lower bounds for a dedicated server; ``"load_generator"`` in the JSON says which. Server CPU per request is
read from /proc for the gunicorn process tree. Targets (issue 3): ≥ 1,000 single scans/s and ≥ 20,000 scans/s in
batches of 100, on a 2-core machine with either database; reported with ``ratio_to_bare`` (requests/s of the route ÷
requests/s of the bare endpoint).

    .venv/bin/python benchmarks/bench_scans.py --quick          # smoke run (~1 min)
    .venv/bin/python benchmarks/bench_scans.py                  # full: 1 M persons, 30 s per phase, both databases
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/test"
SECRET = "bench-scans-secret-key-" + "k" * 32
SITE = "BENCH-SITE"

LUA_COMMON = r"""
local threads = {}
local counter = 0
local ids = {}
local token, site, tag
c2xx, c409, cother = 0, 0, 0  -- globals: done() reads them with thread:get

setup = function(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

init = function(args)
  for line in io.lines(args[1]) do ids[#ids + 1] = line end
  token, site, tag = args[2], args[3], args[4]
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
end

response = function(status, headers, body)
  if status >= 200 and status < 300 then c2xx = c2xx + 1
  elseif status == 409 then c409 = c409 + 1
  else cother = cother + 1 end
end

done = function(summary, latency, requests)
  local a, b, c = 0, 0, 0
  for _, t in ipairs(threads) do a = a + t:get("c2xx"); b = b + t:get("c409"); c = c + t:get("cother") end
  io.write(string.format('WRK {"requests": %d, "duration_us": %d, "ok": %d, "refused": %d, "other": %d, ' ..
    '"socket_errors": %d, "latency_p50_ms": %.2f, "latency_p99_ms": %.2f}\n',
    summary.requests, summary.duration, a, b, c,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end

local function person(k)
  return ids[(tid * 104729 + k) % #ids + 1]
end
"""

LUA_SINGLE = LUA_COMMON + r"""
request = function()
  counter = counter + 1
  local tube = tag .. "-" .. tid .. "-" .. math.floor(counter / 10)
  local body = '{"client_scan_id":"' .. tag .. tid .. '-' .. counter .. '","tube":"' .. tube ..
    '","id_number":"' .. person(counter) .. '","site":"' .. site .. '"}'
  return wrk.format("POST", "/api/v1/testing/scans", nil, body)
end
"""

LUA_BATCH = LUA_COMMON + r"""
request = function()
  counter = counter + 1
  local parts = {}
  for j = 0, 99 do
    local k = counter * 100 + j
    parts[#parts + 1] = '{"client_scan_id":"' .. tag .. tid .. '-' .. k .. '","tube":"' .. tag .. '-' .. tid .. '-' ..
      counter .. '-' .. math.floor(j / 10) .. '","id_number":"' .. person(k) .. '"}'
  end
  local body = '{"site":"' .. site .. '","device":"bench","scans":[' .. table.concat(parts, ",") .. ']}'
  return wrk.format("POST", "/api/v1/testing/scans/batch", nil, body)
end
"""

# Every connection of every thread scans into the same few tubes: tube k takes counter values 10k..10k+9 of each
# thread, so several requests race for each tube and the surplus is refused (409) as full.
LUA_CONTENTION = LUA_COMMON + r"""
request = function()
  counter = counter + 1
  local tube = tag .. "-" .. math.floor(counter / 10)
  local body = '{"client_scan_id":"' .. tag .. tid .. '-' .. counter .. '","tube":"' .. tube ..
    '","id_number":"' .. person(counter) .. '","site":"' .. site .. '"}'
  return wrk.format("POST", "/api/v1/testing/scans", nil, body)
end
"""

LUA_BARE = r"""
local threads = {}
local counter = 0
setup = function(thread) thread:set("tid", #threads + 1); table.insert(threads, thread) end
init = function(args) wrk.headers["Content-Type"] = "application/json" end
done = function(summary, latency, requests)
  io.write(string.format('WRK {"requests": %d, "duration_us": %d, "ok": %d, "refused": 0, "other": %d, ' ..
    '"socket_errors": %d, "latency_p50_ms": %.2f, "latency_p99_ms": %.2f}\n',
    summary.requests, summary.duration, summary.requests - summary.errors.status, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
request = function()
  counter = counter + 1
  local body = '{"client_scan_id":"bare' .. tid .. '-' .. counter .. '","tube":"T-1-' .. counter ..
    '","id_number":"330206199001011235","site":"BENCH-SITE"}'
  return wrk.format("POST", "/api/bench/bare", nil, body)
end
"""


# --- worker side (inside Django) -------------------------------------------------------------------------------------


def _django(db_url: str) -> None:
    os.environ["DATABASE_URL"] = db_url
    os.environ.pop("JINGKONG_DEBUG", None)
    os.environ["JINGKONG_SECRET_KEY"] = SECRET
    os.environ["DJANGO_SETTINGS_MODULE"] = "jingkong.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def seed(args) -> dict:
    _django(args.db_url)
    from django.core.management import call_command
    from django.db import connection, transaction

    from jingkong.access.models import User
    from jingkong.access.services import token_create
    from jingkong.core import bulk, clock
    from jingkong.geo.models import Region
    from jingkong.people import idnumber
    from jingkong.testing.models import Campaign, SamplingSite
    from jingkong.testing.sampling import PERSON_INSERT_COLUMNS

    call_command("migrate", verbosity=0)
    now = clock.now()
    with transaction.atomic():
        d = Region.objects.create(code="330206", name="北仑区", level="district")
        s = Region.objects.create(code="330206002", name="新碶街道", level="street", parent=d)
        c = Region.objects.create(code="330206002001", name="一社区", level="community", parent=s)
        grids = [Region.objects.create(code=f"330206002001{g:03d}", name=f"网格{g}", level="grid", parent=c)
                 for g in range(1, 11)]
        sampler = User.objects.create_user(username="bench_sampler", password="bench-password-1", role="sampler",
                                           region=s)
        site = SamplingSite.objects.create(code=SITE, name="bench site", region=grids[0], region_code=grids[0].code,
                                           lon=121.8, lat=29.9)
        site.samplers.add(sampler)
        Campaign.objects.create(code="BENCH-R1", name="bench round", region=d, region_code=d.code, pool_size=10,
                                starts_at=now - dt.timedelta(hours=1), deadline=now + dt.timedelta(days=2),
                                status="running", created_at=now, updated_at=now)
        _, token = token_create(user=sampler, name="bench device", actor=sampler)
    numbers = []
    base = dt.date(1940, 1, 1)
    for k in range(args.persons):
        first17 = f"330206{base + dt.timedelta(days=k // 900):%Y%m%d}{100 + k % 900:03d}"
        numbers.append(first17 + idnumber.check_char(first17))
    hashes = idnumber.id_hash_many(numbers)
    stamp = bulk.db_datetime(now)
    yes = 1 if connection.vendor == "sqlite" else True
    no = 0 if connection.vendor == "sqlite" else False
    grid_ids = [g.id for g in grids]
    rows = [(h, idnumber.id_mask(n), "居民", idnumber.sex_of(n), f"{n[6:10]}-{n[10:12]}-{n[12:14]}", "", None, None,
             grid_ids[k % 10], "", "", "", yes, 0, "", "", None, "synthetic", no, stamp, stamp)
            for k, (n, h) in enumerate(zip(numbers, hashes, strict=True))]
    bulk.load_into_empty("people_person", PERSON_INSERT_COLUMNS, rows) or bulk.bulk_insert(
        "people_person", PERSON_INSERT_COLUMNS, rows)
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("ANALYZE")
    ids_file = Path(args.workdir) / "ids.txt"
    ids_file.write_text("\n".join(numbers) + "\n")
    return {"token": token, "site": SITE, "ids_file": str(ids_file), "persons": len(numbers)}


def verify(args) -> dict:
    _django(args.db_url)
    from django.db import connection

    with connection.cursor() as c:
        c.execute("SELECT COUNT(*) FROM testing_sample")
        samples = c.fetchone()[0]
        c.execute("SELECT COUNT(*) FROM testing_tube t WHERE t.member_count > t.capacity OR t.member_count <>"
                  " (SELECT COUNT(*) FROM testing_sample s WHERE s.tube_id = t.id)")
        bad_counts = c.fetchone()[0]
        c.execute("SELECT COUNT(*) FROM (SELECT tube_id, position FROM testing_sample GROUP BY tube_id, position"
                  " HAVING COUNT(*) > 1) x")
        repeated_positions = c.fetchone()[0]
        c.execute("SELECT COUNT(*) FROM testing_sample s JOIN testing_tube t ON t.id = s.tube_id"
                  " WHERE s.position < 1 OR s.position > t.capacity")
        bad_positions = c.fetchone()[0]
        c.execute("SELECT COUNT(*) FROM testing_tube")
        tubes = c.fetchone()[0]
        by_phase = {}
        for phase, prefix in (("single", "s"), ("batch_of_100", "b"), ("contention_same_tubes", "c")):
            c.execute("SELECT COUNT(*) FROM testing_sample WHERE client_scan_id LIKE %s", [prefix + "%"])
            by_phase[phase] = c.fetchone()[0]
    return {"samples": samples, "tubes": tubes, "tubes_with_wrong_count": bad_counts,
            "repeated_positions": repeated_positions, "positions_out_of_range": bad_positions,
            "samples_by_phase": by_phase}


# --- driver side -----------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(db_url: str) -> dict:
    env = dict(os.environ)
    env.update({"DATABASE_URL": db_url, "JINGKONG_SECRET_KEY": SECRET, "DJANGO_SETTINGS_MODULE": "jingkong.settings",
                "PYTHONPATH": str(ROOT)})
    env.pop("JINGKONG_DEBUG", None)
    env.pop("JINGKONG_DEMO", None)
    return env


def _worker(kind: str, db_url: str, workdir: str, args) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, "--db-url", db_url, "--workdir", workdir,
           "--persons", str(args.persons)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=str(ROOT))
    if out.returncode != 0:
        raise RuntimeError(f"{kind} failed: {out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _wait_ready(port: int, path: str, method: str = "GET", timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                         data=b"{}" if method == "POST" else None,
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=2) as r:
                if r.status < 500:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not start")


def _tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (read from /proc; clock ticks → seconds)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = {pid}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) in pids or int(entry) == pid:
                pids.add(int(entry))
    # two passes catch grandchildren (jingkong serve → gunicorn master → workers)
    for _ in range(2):
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) in pids:
                    pids.add(int(entry))
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


class Server:
    def __init__(self, argv: list[str], env: dict, port: int, ready_path: str, ready_method: str = "GET"):
        self.proc = subprocess.Popen(argv, env=env, cwd=str(ROOT), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.port = port
        try:
            _wait_ready(port, ready_path, ready_method)
        except RuntimeError:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _wrk(server: Server, script: str, lua_args: list[str], args, duration: float) -> dict:
    path = Path(args.scripts) / f"{abs(hash(script))}.lua"
    path.write_text(script)
    cmd = ["wrk", f"-t{args.wrk_threads}", f"-c{args.connections}", f"-d{max(1, round(duration))}s", "--timeout", "10s",
           "-s", str(path), f"http://127.0.0.1:{server.port}", "--", *lua_args]
    cpu0 = _tree_cpu_seconds(server.proc.pid)
    out = subprocess.run(cmd, capture_output=True, text=True)
    cpu1 = _tree_cpu_seconds(server.proc.pid)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRK ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {out.stdout[-2000:]} {out.stderr[-2000:]}")
    r = json.loads(line[4:])
    seconds = r["duration_us"] / 1e6
    r["seconds"] = round(seconds, 2)
    r["requests_per_s"] = round(r["requests"] / seconds, 1)
    r["ok_per_s"] = round(r["ok"] / seconds, 1)
    r["server_cpu_ms_per_request"] = round(1000 * (cpu1 - cpu0) / max(1, r["requests"]), 3)
    return r


def run_database(kind: str, args) -> dict:
    workdir = tempfile.mkdtemp(prefix="jk_bench_scans_")
    args.scripts = workdir
    admin = name = None
    try:
        if kind == "sqlite":
            url = f"sqlite:///{workdir}/bench.sqlite3"
        else:
            import psycopg

            base = os.environ.get("DATABASE_URL", "")
            base = base if base.startswith("postgres") else DEFAULT_PG
            parsed = urlparse(base)
            name = f"jk_bench_scans_{os.getpid()}"
            admin = urlunparse(parsed._replace(path="/postgres", scheme="postgresql"))
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                conn.execute(f'CREATE DATABASE "{name}"')
            url = urlunparse(parsed._replace(path="/" + name))
        t0 = time.perf_counter()
        seeded = _worker("seed", url, workdir, args)
        seed_s = time.perf_counter() - t0
        env = _env(url)
        lua_args = [seeded["ids_file"], seeded["token"], seeded["site"]]
        duration = args.duration

        # (a) the bare endpoint: same gunicorn configuration, same Django stack.
        from jingkong.core.serving import gunicorn_argv

        port = _free_port()
        argv = gunicorn_argv(host="127.0.0.1", port=port, workers=args.workers, threads=args.threads)
        argv[argv.index("jingkong.wsgi:application")] = "benchmarks.bench_wsgi:application"
        bare_server = Server(argv, env, port, "/api/bench/bare", "POST")
        try:
            _wrk(bare_server, LUA_BARE, [], args, args.warmup)
            bare = _wrk(bare_server, LUA_BARE, [], args, duration)
        finally:
            bare_server.stop()

        # (b) the platform: `jingkong serve`.
        port = _free_port()
        jingkong = str(Path(sys.executable).with_name("jingkong"))
        serve = Server([jingkong, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers),
                        "--threads", str(args.threads), "--no-worker"], env, port, "/healthz")
        try:
            _wrk(serve, LUA_SINGLE, [*lua_args, "w"], args, args.warmup)
            single = _wrk(serve, LUA_SINGLE, [*lua_args, "s"], args, duration)
            _wrk(serve, LUA_BATCH, [*lua_args, "wb"], args, args.warmup)
            batch = _wrk(serve, LUA_BATCH, [*lua_args, "b"], args, duration)
            contention = _wrk(serve, LUA_CONTENTION, [*lua_args, "c"], args, min(duration, 10))
        finally:
            serve.stop()
        checked = _worker("verify", url, workdir, args)
        batch["scans_per_s"] = round(batch["ok"] * 100 / batch["seconds"])
        single["scans_per_s"] = single["ok_per_s"]
        return {
            "database": kind,
            "persons": seeded["persons"],
            "seed_seconds": round(seed_s, 1),
            "bare": bare,
            "single": single | {"ratio_to_bare": round(single["requests_per_s"] / bare["requests_per_s"], 3),
                                "target_scans_per_s": 1000,
                                "meets_target": single["scans_per_s"] >= 1000},
            "batch_of_100": batch | {"ratio_to_bare": round(batch["requests_per_s"] / bare["requests_per_s"], 3),
                                     "target_scans_per_s": 20000,
                                     "meets_target": batch["scans_per_s"] >= 20000},
            "contention_same_tubes": contention,
            "verify": checked | {
                # acknowledged by the server during the measured phases (requests still in flight when wrk stops
                # may be recorded without being counted: samples >= acknowledged, by at most the connections)
                "acknowledged_by_phase": {"single": single["ok"], "batch_of_100": batch["ok"] * 100,
                                          "contention_same_tubes": contention["ok"]},
                "ok": (checked["tubes_with_wrong_count"] == 0 and checked["repeated_positions"] == 0
                       and checked["positions_out_of_range"] == 0
                       and 0 <= checked["samples_by_phase"]["single"] - single["ok"] <= args.connections
                       and 0 <= checked["samples_by_phase"]["batch_of_100"] - batch["ok"] * 100
                       <= 100 * args.connections
                       and 0 <= checked["samples_by_phase"]["contention_same_tubes"] - contention["ok"]
                       <= args.connections),
            },
        }
    except Exception as exc:  # noqa: BLE001 - report, do not hide the other database's result
        return {"database": kind, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        if name and admin:
            import psycopg

            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 20,000 persons, 5 s per phase")
    p.add_argument("--databases", default="sqlite,postgresql")
    p.add_argument("--persons", type=int, default=None)
    p.add_argument("--duration", type=float, default=None, help="seconds per measured phase (default 30; quick 5)")
    p.add_argument("--warmup", type=float, default=None)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="gunicorn workers (as jingkong serve)")
    p.add_argument("--threads", type=int, default=4, help="threads per worker (as jingkong serve)")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--wrk-threads", type=int, default=2)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--db-url", help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.persons is None:
        args.persons = 20_000 if args.quick else 1_000_000
    if args.worker:
        print(json.dumps(seed(args) if args.worker == "seed" else verify(args)))
        return
    args.duration = args.duration or (5 if args.quick else 30)
    args.warmup = args.warmup or (2 if args.quick else 5)
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install -y wrk): this benchmark drives the server with wrk")
    sys.path.insert(0, str(ROOT))
    results = [run_database(kind.strip(), args) for kind in args.databases.split(",") if kind.strip()]
    print(json.dumps({
        "benchmark": "sampling scans through the HTTP API",
        "load_generator": f"wrk {args.wrk_threads} threads, {args.connections} connections, same machine",
        "server": f"jingkong serve: gunicorn gthread, {args.workers} workers x {args.threads} threads",
        "cores": os.cpu_count(),
        "persons": args.persons,
        "seconds_per_phase": args.duration,
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
