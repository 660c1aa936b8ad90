"""Benchmark of checkpoint verification and the crossing log (jingkong.codes.checkpoints).

Per database (SQLite and PostgreSQL, each a scratch database):

* setup (not timed): a small region tree, ``--people`` residents with health codes (bulk), the 2021 profile in force, a
  checkpoint, signed tokens for the people verified;
* (a) ``verify``: ``verify_and_log`` one person at a time (token verified, code, zones, tests, risk origin looked up, the
  decision, the crossing, audit and event written: one call per crossing, as a checkpoint device online);
* (a') ``verify_id``: the same by ID number (hashed and looked up on the register);
* (b) ``sync``: offline crossings in batches of 500 (``crossings_sync``: each token verified at its own time);
* (c) ``venue``: venue scans one at a time, 5 % with a fever (referral + code recompute in the same transaction), the
  check-in appended to the lake after commit;
* baselines measured in the same run: ``bare_insert`` = one ORM ``Crossing.objects.create`` per crossing in its own
  transaction (the floor of logging one crossing), ``bare_bulk`` = ``bulk_create`` of 500-row batches;
  ``ratio_*`` = baseline seconds / measured seconds (1.0: as fast as the bare write).

    .venv/bin/python benchmarks/bench_crossings.py            # 2,000 verifications, 10,000 synced (a minute or two)
    .venv/bin/python benchmarks/bench_crossings.py --quick    # smoke run

Prints JSON. PostgreSQL: a database ``jk_bench_crossings_<pid>`` on the server of DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/test), dropped afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/test"
T0 = dt.datetime(2022, 1, 10, 2, 0, tzinfo=dt.UTC)


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _setup(people: int):
    from django.db import transaction

    from jingkong.codes.models import Checkpoint, HealthCode
    from jingkong.geo.models import Region, Venue
    from jingkong.people.idnumber import check_char, id_hash_many, id_mask
    from jingkong.people.models import Person
    from jingkong.policy.models import PolicyProfile
    from jingkong.policy.services import profile_activate, profile_install_builtin

    with transaction.atomic():
        d = Region.objects.create(code="330206", name="北仑区", level="district")
        s = Region.objects.create(code="330206002", name="新碶街道", level="street", parent=d)
        c = Region.objects.create(code="330206002001", name="社区", level="community", parent=s)
        g = Region.objects.create(code="330206002001001", name="网格", level="grid", parent=c)
    numbers = []
    for i in range(people):
        first17 = f"330206{(dt.date(1950, 1, 1) + dt.timedelta(days=i % 20000)):%Y%m%d}{i % 1000:03d}"
        numbers.append(first17 + check_char(first17))
    numbers = list(dict.fromkeys(numbers))
    hashes = id_hash_many(numbers)
    with transaction.atomic():
        Person.objects.bulk_create([Person(id_hash=h, id_masked=id_mask(n), name=f"居民{i}", sex="M",
                                          birth_date=dt.date(1980, 1, 1), grid=g, created_at=T0, updated_at=T0)
                                   for i, (n, h) in enumerate(zip(numbers, hashes, strict=True))], batch_size=5000)
        ids = list(Person.objects.order_by("pk").values_list("pk", flat=True))
        HealthCode.objects.bulk_create([HealthCode(person_id=pid, colour="yellow" if pid % 10 == 0 else "green",
                                                   region_code=g.code, computed_at=T0, changed_at=T0)
                                        for pid in ids], batch_size=5000)
    profile_install_builtin()
    profile = PolicyProfile.objects.filter(code="cn-8th-2021").order_by("-version").first()
    profile_activate(profile=profile, region=d, actor=None, reason="bench", at=T0 - dt.timedelta(days=30))
    cp = Checkpoint.objects.create(code="CP1", name="卡口", kind="highway_exit", region_code=s.code, lon=121.8,
                                   lat=29.9, created_at=T0)
    venue = Venue.objects.create(code="V1", name="超市", type="other", lon=121.8, lat=29.9, grid=g)
    return cp, venue, ids, numbers


def worker(args) -> dict:
    os.environ["DATABASE_URL"] = args.db_url
    os.environ.pop("JINGKONG_DEBUG", None)
    os.environ["JINGKONG_DEMO"] = "1"
    os.environ["DJANGO_SETTINGS_MODULE"] = "jingkong.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, transaction

    from jingkong.access.guard import EVERYTHING
    from jingkong.codes import checkpoints, tokens
    from jingkong.codes.models import Checkpoint, Crossing
    from jingkong.core import clock
    from jingkong.people.models import Person

    settings.DATA_DIR = Path(args.workdir)
    call_command("migrate", verbosity=0)
    n_verify, n_sync = args.verify, args.sync
    setup_s, (cp, venue, ids, numbers) = _timed(lambda: _setup(max(n_verify, n_sync) + 100))
    if connection.vendor == "postgresql":
        with connection.cursor() as c:
            c.execute("ANALYZE")
    people = {p.pk: p for p in Person.objects.filter(pk__in=ids[:n_verify])}
    out: dict = {"database": connection.vendor, "setup_seconds": round(setup_s, 1)}
    with clock.frozen(T0) as _:
        toks = [tokens.issue(people[pid], at=T0) for pid in ids[:n_verify]]
        t = time.perf_counter()
        for i, tok in enumerate(toks):
            checkpoints.verify_and_log(actor=None, scope=EVERYTHING, checkpoint_code="CP1",
                                       raw={"client_id": f"v{i}", "token": tok, "direction": "in",
                                            "origin_code": "440305"})
        verify_s = time.perf_counter() - t
        t = time.perf_counter()
        for i, number in enumerate(numbers[:n_verify]):
            checkpoints.verify_and_log(actor=None, scope=EVERYTHING, checkpoint_code="CP1",
                                       raw={"client_id": f"i{i}", "id_number": number, "direction": "out"})
        verify_id_s = time.perf_counter() - t
        # offline batches of 500 (tokens issued a little earlier, verified at the crossing's own time)
        sync_people = Person.objects.in_bulk(ids[:n_sync])
        earlier = T0 - dt.timedelta(minutes=2)
        sync_toks = [tokens.issue(sync_people[pid], at=earlier) for pid in ids[:n_sync]]
        t = time.perf_counter()
        for b in range(0, n_sync, 500):
            items = [{"client_id": f"s{b + j}", "token": tok, "at": earlier.isoformat()}
                     for j, tok in enumerate(sync_toks[b: b + 500])]
            res = checkpoints.crossings_sync(actor=None, scope=EVERYTHING, checkpoint_code="CP1", items=items)
            assert res.counts["recorded"] == len(items), res.counts
        sync_s = time.perf_counter() - t
        n_venue = max(100, n_verify // 2)
        t = time.perf_counter()
        for i, number in enumerate(numbers[:n_venue]):
            checkpoints.venue_entry_record(actor=None, scope=EVERYTHING, venue_code="V1",
                                           raw={"client_id": f"e{i}", "id_number": number, "masked": True,
                                                "temperature": "38.0" if i % 20 == 0 else "36.5"})
        venue_s = time.perf_counter() - t
    # baselines: the bare write of a crossing, one per transaction and in 500-row batches
    cp2 = Checkpoint.objects.create(code="CP2", name="基准", kind="road", region_code=cp.region_code, lon=0, lat=0,
                                    created_at=T0)
    t = time.perf_counter()
    for i in range(n_verify):
        with transaction.atomic():
            Crossing.objects.create(client_id=f"b{i}", checkpoint=cp2, region_code=cp2.region_code, at=T0,
                                    subject="person", person_id=ids[i], decision="allow", reasons=[], received_at=T0)
    bare_s = time.perf_counter() - t
    t = time.perf_counter()
    for b in range(0, n_sync, 500):
        with transaction.atomic():
            Crossing.objects.bulk_create([Crossing(client_id=f"bb{i}", checkpoint=cp2, region_code=cp2.region_code,
                                                   at=T0, subject="person", person_id=ids[i], decision="allow",
                                                   reasons=[], received_at=T0)
                                          for i in range(b, min(b + 500, n_sync))])
    bare_bulk_s = time.perf_counter() - t
    out.update({
        "verify_count": n_verify, "verify_seconds": round(verify_s, 3),
        "verify_per_s": round(n_verify / verify_s), "verify_ms": round(1000 * verify_s / n_verify, 2),
        "verify_id_per_s": round(n_verify / verify_id_s), "verify_id_ms": round(1000 * verify_id_s / n_verify, 2),
        "sync_count": n_sync, "sync_seconds": round(sync_s, 3), "sync_per_s": round(n_sync / sync_s),
        "venue_count": n_venue, "venue_per_s": round(n_venue / venue_s), "venue_ms": round(1000 * venue_s / n_venue, 2),
        "bare_insert_per_s": round(n_verify / bare_s), "bare_bulk_per_s": round(n_sync / bare_bulk_s),
        "ratio_verify_to_bare_insert": round(bare_s / verify_s, 3),
        "ratio_sync_to_bare_bulk": round(bare_bulk_s / sync_s, 3),
        "crossings_logged": Crossing.objects.filter(checkpoint=cp).count(),
    })
    return out


def run_database(kind: str, args) -> dict:
    with tempfile.TemporaryDirectory(prefix="jk_bench_") as tmp:
        if kind == "sqlite":
            return _spawn(f"sqlite:///{tmp}/bench.sqlite3", tmp, args)
        base = os.environ.get("DATABASE_URL", "")
        base = base if base.startswith("postgres") else DEFAULT_PG
        name = f"jk_bench_crossings_{os.getpid()}"
        import psycopg

        parsed = urlparse(base)
        admin = urlunparse(parsed._replace(path="/postgres", scheme="postgresql"))
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            return _spawn(urlunparse(parsed._replace(path="/" + name)), tmp, args)
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _spawn(url: str, workdir: str, args) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--db-url", url, "--workdir", workdir, "--verify", str(args.verify),
           "--sync", str(args.sync)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
    if out.returncode != 0:
        return {"database": url.split(":")[0], "error": out.stderr[-3000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--verify", type=int, default=2000, help="online verifications (each way)")
    p.add_argument("--sync", type=int, default=10_000, help="offline crossings synced in batches of 500")
    p.add_argument("--quick", action="store_true", help="200 verifications, 1,000 synced (a smoke run)")
    p.add_argument("--databases", default="sqlite,postgresql")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--db-url", help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.verify, args.sync = 200, 1000
    if args.worker:
        print(json.dumps(worker(args)))
        return
    kinds = [kind.strip() for kind in args.databases.split(",") if kind.strip()]
    results = [run_database(kind, args) for kind in kinds]
    print(json.dumps({"benchmark": "checkpoint verification and crossing log", "verify": args.verify,
                      "sync": args.sync, "target": "none set by the issue (recorded for the lead)",
                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
