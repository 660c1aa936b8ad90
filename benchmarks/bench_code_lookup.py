"""Benchmark of the health-code lookup API (``POST /api/v1/codes/lookup``) through HTTP, on SQLite and PostgreSQL.

For each database (a scratch one: a temporary SQLite file; a PostgreSQL database ``jk_bench_codes_<pid>`` on the server
of DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test, dropped afterwards):

1. seed: migrate, a small region tree, the shipped policy profiles with the 8th edition in force, a checkpoint officer
   with a device token, ``--persons`` registered persons (default 1,000,000; ``--quick``: 20,000) and a health code
   for each (a tenth red, a tenth yellow, with reasons);
2. **bare**: gunicorn with the same worker configuration as ``jingkong serve`` serving ``benchmarks/bench_wsgi.py``
   (the platform's settings and middleware; one JSON endpoint, no authentication, no database) — the baseline,
   measured in the same run (the same script as benchmarks/bench_scans.py);
3. tokens: ``--tokens`` signed tokens (default 5,000) of random persons, issued just before the measured phase (they
   are valid for the profile's ``token_minutes``);
4. **lookup**: ``jingkong serve --no-worker``, ``POST /api/v1/codes/lookup`` with a bearer token, each request another
   token; an answer counts as ok only if it says ``"valid": true``;
5. **lookup_invalid**: the same with tokens whose signature was altered (the verdict ``bad_signature``: no database);
6. **keys**: ``GET /api/v1/codes/keys`` (public; what devices poll);
7. **lookup_fast_path**: the same lookups, served by the platform's WSGI application wrapped with
   ``jingkong.codes.lookup_wsgi.with_lookup_fast_path`` (same gunicorn configuration) — what ``jingkong serve`` serves
   once jingkong/wsgi.py applies the wrapper; the phase reports which of the two ``jingkong serve`` already is.

Load generator: ``wrk`` on the same machine (so these are lower bounds for a dedicated server). Server CPU per request
is read from /proc. Target (issue 5): ≥ 2,000 lookups/s on a 2-core machine; reported with ``ratio_to_bare``.

    .venv/bin/python benchmarks/bench_code_lookup.py --quick     # smoke run (~1 min)
    .venv/bin/python benchmarks/bench_code_lookup.py             # full: 1 M persons, 30 s per phase, both databases
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import bench_scans  # noqa: E402
from benchmarks.bench_scans import (  # noqa: E402 - the same servers, load generator and baseline as bench_scans
    DEFAULT_PG,
    LUA_BARE,
    SECRET,
    _env,
    _free_port,
    _wrk,
)


class Server(bench_scans.Server):
    """bench_scans' server, given longer to start on a busy machine and saying why when it does not."""

    def __init__(self, argv: list[str], env: dict, port: int, ready_path: str, ready_method: str = "GET"):
        import subprocess

        self.proc = subprocess.Popen(argv, env=env, cwd=str(ROOT), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.port = port
        try:
            bench_scans._wait_ready(port, ready_path, ready_method, timeout=180)
        except RuntimeError:
            self.stop()
            tail = self.proc.stderr.read().decode(errors="replace")[-1500:] if self.proc.stderr else ""
            raise RuntimeError(f"{argv[:4]} did not start: {tail}") from None

LUA_LOOKUP = r"""
local threads = {}
local counter = 0
local toks = {}
c2xx, c409, cother = 0, 0, 0  -- c2xx: answers saying "valid": true; c409: other 200s; cother: errors

setup = function(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

init = function(args)
  for line in io.lines(args[1]) do toks[#toks + 1] = line end
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. args[2]
end

response = function(status, headers, body)
  if status == 200 and (body:find('"valid": true', 1, true) or body:find('"valid":true', 1, true)) then c2xx = c2xx + 1
  elseif status == 200 then c409 = c409 + 1
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

request = function()
  counter = counter + 1
  local t = toks[(tid * 7919 + counter) % #toks + 1]
  return wrk.format("POST", "/api/v1/codes/lookup", nil, '{"token":"' .. t .. '"}')
end
"""

LUA_KEYS = LUA_LOOKUP.replace(
    """  return wrk.format("POST", "/api/v1/codes/lookup", nil, '{"token":"' .. t .. '"}')""",
    """  return wrk.format("GET", "/api/v1/codes/keys", nil, nil)""").replace(
    """(body:find('"valid": true', 1, true) or body:find('"valid":true', 1, true))""", """body:find('"keys"', 1, true)""")


_FAST = None


def fast_application(environ, start_response):
    """For gunicorn (phase 7): the platform's WSGI application with the lookup fast path (built on first request)."""
    global _FAST
    if _FAST is None:
        from jingkong.codes.lookup_wsgi import with_lookup_fast_path
        from jingkong.wsgi import application

        _FAST = application if getattr(application, "wrapped", None) else with_lookup_fast_path(application)
    return _FAST(environ, start_response)


# --- worker side (inside Django) -------------------------------------------------------------------------------------


def _django(db_url: str) -> None:
    os.environ["DATABASE_URL"] = db_url
    os.environ.pop("JINGKONG_DEBUG", None)
    os.environ["JINGKONG_SECRET_KEY"] = SECRET
    os.environ["DJANGO_SETTINGS_MODULE"] = "jingkong.settings"
    import django

    django.setup()


def _codes_insert_sql(now) -> tuple[str, list]:
    """``INSERT INTO codes_healthcode (...) SELECT ... FROM people_person``: every column of the model, those not named
    here from the field's default (so the seed keeps working when the model grows)."""
    from django.db import connection

    from jingkong.codes.models import HealthCode

    qn = connection.ops.quote_name
    red = json.dumps([{"rule": "close_contact_central", "colour": "red", "until": "2022-01-20",
                       "reason": "Close contact in centralised quarantine"}], ensure_ascii=False)
    yellow = json.dumps([{"rule": "space_time_companion", "colour": "yellow", "until": "2022-01-15",
                          "reason": "Space-time companion of a case"}], ensure_ascii=False)
    exprs = {
        "person_id": "p.id",
        "colour": "CASE WHEN p.id %% 10 = 0 THEN 'red' WHEN p.id %% 10 = 1 THEN 'yellow' ELSE 'green' END",
        "rule_id": "CASE WHEN p.id %% 10 = 0 THEN 'close_contact_central' WHEN p.id %% 10 = 1 THEN "
                   "'space_time_companion' ELSE '' END",
        "reasons": "CASE WHEN p.id %% 10 = 0 THEN %s WHEN p.id %% 10 = 1 THEN %s ELSE '[]' END",
        "region_code": "g.code",
    }
    params_by = {"reasons": [red, yellow]}
    columns, selects, params = [], [], []
    for f in HealthCode._meta.concrete_fields:
        columns.append(qn(f.column))
        if f.column in exprs:
            selects.append(exprs[f.column])
            params += params_by.get(f.column, [])
        elif f.column in ("computed_at", "changed_at"):
            selects.append("%s")
            params.append(f.get_db_prep_value(now, connection))
        else:
            selects.append("%s")
            params.append(f.get_db_prep_save(f.get_default(), connection))
    if connection.vendor == "postgresql":
        selects = [s + "::jsonb" if c == qn("reasons") and s.startswith("CASE") else s for c, s in zip(columns, selects, strict=True)]
    sql = (f"INSERT INTO {qn(HealthCode._meta.db_table)} ({', '.join(columns)}) SELECT {', '.join(selects)}"
           f" FROM people_person p JOIN geo_region g ON g.id = p.grid_id")
    return sql, params


def seed(args) -> dict:
    _django(args.db_url)
    from django.core.management import call_command
    from django.db import connection, transaction

    from jingkong.access.models import User
    from jingkong.access.services import token_create
    from jingkong.core import bulk, clock
    from jingkong.geo.models import Region
    from jingkong.people import idnumber
    from jingkong.policy.models import PolicyProfile
    from jingkong.policy.services import profile_activate, profile_install_builtin
    from jingkong.testing.sampling import PERSON_INSERT_COLUMNS

    call_command("migrate", verbosity=0)
    now = clock.now()
    with transaction.atomic():
        d = Region.objects.create(code="330206", name="北仑区", level="district")
        s = Region.objects.create(code="330206002", name="新碶街道", level="street", parent=d)
        c = Region.objects.create(code="330206002001", name="一社区", level="community", parent=s)
        grids = [Region.objects.create(code=f"330206002001{g:03d}", name=f"网格{g}", level="grid", parent=c)
                 for g in range(1, 11)]
        officer = User.objects.create_user(username="bench_checkpoint", password="bench-password-1",
                                           role="checkpoint_officer", region=s)
        _, token = token_create(user=officer, name="bench device", actor=officer)
        profile_install_builtin()
        profile_activate(profile=PolicyProfile.objects.filter(code="cn-8th-2021").order_by("-version").first(),
                         region=d, actor=None, reason="bench", at=now - dt.timedelta(days=1))
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
    names = ["张三", "李四", "王小红", "欧阳明", "陈", "赵六"]
    rows = [(h, idnumber.id_mask(n), names[k % len(names)], idnumber.sex_of(n), f"{n[6:10]}-{n[10:12]}-{n[12:14]}",
             f"138{k:08d}", None, None, grid_ids[k % 10], "", "", "", yes, 0, "", "", None, "synthetic", no, stamp,
             stamp)
            for k, (n, h) in enumerate(zip(numbers, hashes, strict=True))]
    bulk.load_into_empty("people_person", PERSON_INSERT_COLUMNS, rows) or bulk.bulk_insert(
        "people_person", PERSON_INSERT_COLUMNS, rows)
    sql, params = _codes_insert_sql(now)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(sql, params)
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("ANALYZE")
    return {"token": token, "persons": len(numbers)}


def issue_tokens(args) -> dict:
    """Sign ``--tokens`` tokens of random persons now (files: valid, and altered signatures)."""
    _django(args.db_url)
    from jingkong.codes import tokens
    from jingkong.people.models import Person

    ids = list(Person.objects.values_list("id", flat=True).order_by("id"))
    rng = random.Random(5)
    chosen = rng.sample(ids, min(args.tokens, len(ids)))
    people = Person.objects.in_bulk(chosen)
    t0 = time.perf_counter()
    issued = [tokens.issue(people[pid]) for pid in chosen]
    seconds = time.perf_counter() - t0
    valid = Path(args.workdir) / "tokens.txt"
    valid.write_text("\n".join(issued) + "\n")
    altered = Path(args.workdir) / "altered.txt"
    altered.write_text("\n".join(t[:-3] + ("AAA" if not t.endswith("AAA") else "BBB") for t in issued) + "\n")
    return {"valid_file": str(valid), "altered_file": str(altered), "tokens": len(issued),
            "issue_ms_per_token": round(1000 * seconds / max(1, len(issued)), 3)}


def _worker(kind: str, db_url: str, workdir: str, args) -> dict:
    import subprocess

    cmd = [sys.executable, __file__, "--worker", kind, "--db-url", db_url, "--workdir", workdir,
           "--persons", str(args.persons), "--tokens", str(args.tokens)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=str(ROOT))
    if out.returncode != 0:
        raise RuntimeError(f"{kind} failed: {out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- driver side -----------------------------------------------------------------------------------------------------


def _serve_has_fast_path() -> bool:
    """Whether jingkong/wsgi.py (what ``jingkong serve`` runs) applies the lookup fast path (read, not imported)."""
    return "with_lookup_fast_path" in (ROOT / "jingkong" / "wsgi.py").read_text()


def run_database(kind: str, args) -> dict:
    workdir = tempfile.mkdtemp(prefix="jk_bench_codes_")
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
            name = f"jk_bench_codes_{os.getpid()}"
            admin = urlunparse(parsed._replace(path="/postgres", scheme="postgresql"))
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                conn.execute(f'CREATE DATABASE "{name}"')
            url = urlunparse(parsed._replace(path="/" + name))
        t0 = time.perf_counter()
        seeded = _worker("seed", url, workdir, args)
        seed_s = time.perf_counter() - t0
        env = _env(url)
        duration = args.duration

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

        port = _free_port()
        jingkong = str(Path(sys.executable).with_name("jingkong"))
        serve = Server([jingkong, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers),
                        "--threads", str(args.threads), "--no-worker"], env, port, "/healthz")
        try:
            issued = _worker("tokens", url, workdir, args)
            valid_args = [issued["valid_file"], seeded["token"]]
            _wrk(serve, LUA_LOOKUP, valid_args, args, args.warmup)
            lookup = _wrk(serve, LUA_LOOKUP, valid_args, args, duration)
            invalid = _wrk(serve, LUA_LOOKUP, [issued["altered_file"], seeded["token"]], args, min(duration, 10))
            keys = _wrk(serve, LUA_KEYS, valid_args, args, min(duration, 10))
        finally:
            serve.stop()

        port = _free_port()
        argv = gunicorn_argv(host="127.0.0.1", port=port, workers=args.workers, threads=args.threads)
        argv[argv.index("jingkong.wsgi:application")] = "benchmarks.bench_code_lookup:fast_application"
        fast_server = Server(argv, env, port, "/healthz")
        try:
            issued = _worker("tokens", url, workdir, args)  # fresh tokens (they expire after token_minutes)
            valid_args = [issued["valid_file"], seeded["token"]]
            _wrk(fast_server, LUA_LOOKUP, valid_args, args, args.warmup)
            fast = _wrk(fast_server, LUA_LOOKUP, valid_args, args, duration)
        finally:
            fast_server.stop()
        serve_has_fast_path = _serve_has_fast_path()
        return {
            "database": kind,
            "persons": seeded["persons"],
            "seed_seconds": round(seed_s, 1),
            "tokens": issued,
            "bare": bare,
            "lookup": lookup | {"ratio_to_bare": round(lookup["requests_per_s"] / bare["requests_per_s"], 3),
                                "target_per_s": 2000, "meets_target": lookup["ok_per_s"] >= 2000,
                                "all_valid": lookup["ok"] == lookup["requests"]},
            "lookup_invalid_signature": invalid | {
                "ratio_to_bare": round(invalid["requests_per_s"] / bare["requests_per_s"], 3)},
            "public_keys": keys | {"ratio_to_bare": round(keys["requests_per_s"] / bare["requests_per_s"], 3)},
            "lookup_fast_path": fast | {"ratio_to_bare": round(fast["requests_per_s"] / bare["requests_per_s"], 3),
                                        "target_per_s": 2000, "meets_target": fast["ok_per_s"] >= 2000,
                                        "all_valid": fast["ok"] == fast["requests"],
                                        "jingkong_serve_already_uses_it": serve_has_fast_path},
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
    p.add_argument("--tokens", type=int, default=5000)
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
        print(json.dumps(seed(args) if args.worker == "seed" else issue_tokens(args)))
        return
    args.duration = args.duration or (5 if args.quick else 30)
    args.warmup = args.warmup or (2 if args.quick else 5)
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install -y wrk): this benchmark drives the server with wrk")
    results = [run_database(kind.strip(), args) for kind in args.databases.split(",") if kind.strip()]
    print(json.dumps({
        "benchmark": "health-code lookup through the HTTP API",
        "load_generator": f"wrk {args.wrk_threads} threads, {args.connections} connections, same machine",
        "server": f"jingkong serve: gunicorn gthread, {args.workers} workers x {args.threads} threads",
        "cores": os.cpu_count(),
        "persons": args.persons,
        "seconds_per_phase": args.duration,
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
