"""Shared helpers of the benchmark scripts: Django set-up in a worker process, bulk table writes (executemany on
SQLite, COPY on PostgreSQL) with the target's indexes dropped and rebuilt, scratch/reused PostgreSQL databases,
starting and stopping the production server, timing and percentiles.

The older scripts carry their own copies of most of this (bench_coverage: the table writer, index dropping and
PostgreSQL database handling; bench_scans / bench_code_lookup: the server and readiness wait; bench_clock /
bench_tasks / bench_services: Django set-up and the p95). New scripts import from here instead of copying again.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/test"


def log(msg: str) -> None:
    """Progress to stderr (stdout carries the JSON result)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- Django in a worker process ---------------------------------------------------------------------------------------


def setup_django(db_url: str, *, secret: str | None = None, data_dir: str | None = None) -> None:
    """Configure Django as production runs it: no JINGKONG_DEBUG (DEBUG wraps cursors); with ``secret`` a fixed key
    (ID hashes and sessions must match the server's), else demo mode (a key kept in the data directory)."""
    os.environ["DATABASE_URL"] = db_url
    os.environ.pop("JINGKONG_DEBUG", None)
    if secret:
        os.environ["JINGKONG_SECRET_KEY"] = secret
    else:
        os.environ["JINGKONG_DEMO"] = "1"
    if data_dir:
        os.environ["JINGKONG_DATA_DIR"] = data_dir
    os.environ["DJANGO_SETTINGS_MODULE"] = "jingkong.settings"
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def server_env(db_url: str, *, secret: str, data_dir: str | None = None) -> dict:
    """Environment for ``jingkong serve`` / gunicorn on the benchmark's database."""
    env = dict(os.environ)
    env.update({"DATABASE_URL": db_url, "JINGKONG_SECRET_KEY": secret, "DJANGO_SETTINGS_MODULE": "jingkong.settings",
                "PYTHONPATH": str(ROOT)})
    if data_dir:
        env["JINGKONG_DATA_DIR"] = data_dir
    env.pop("JINGKONG_DEBUG", None)
    env.pop("JINGKONG_DEMO", None)
    return env


def spawn(script: str, args: Sequence[str], *, verbose: bool = False, timeout: float | None = None) -> dict:
    """Run ``script args`` in a fresh interpreter; its last stdout line is JSON. Errors come back as {"error": …}."""
    cmd = [sys.executable, script, *args]
    try:
        out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None if verbose else subprocess.PIPE, text=True,
                             cwd=ROOT, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"{' '.join(args[:3])}: no answer within {timeout} s"}
    if out.returncode != 0 or not out.stdout.strip():
        return {"error": (out.stderr or "")[-3000:] or f"exit status {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- bulk writes --------------------------------------------------------------------------------------------------------


def table_writer(connection) -> Callable[[str, list[str], Iterable[Sequence]], None]:
    """``write(table, columns, rows)``: executemany (SQLite) / COPY (PostgreSQL)."""

    def write(table: str, columns: list[str], rows: Iterable[Sequence]) -> None:
        cols = ", ".join(connection.ops.quote_name(c) for c in columns)
        with connection.cursor() as c:
            if connection.vendor == "postgresql":
                with c.cursor.copy(f"COPY {connection.ops.quote_name(table)} ({cols}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join(["%s"] * len(columns))
                c.executemany(f"INSERT INTO {connection.ops.quote_name(table)} ({cols}) VALUES ({marks})", rows)

    return write


def drop_indexes(connection, tables: Iterable[str]) -> list[str]:
    """Drop the droppable secondary indexes of ``tables`` (primary keys, UNIQUE constraints on PostgreSQL and SQLite
    autoindexes stay); return the SQL that rebuilds them (:func:`run_sql`)."""
    saved = []
    with connection.cursor() as c:
        for table in tables:
            if connection.vendor == "postgresql":
                c.execute("SELECT i.relname, pg_get_indexdef(i.oid), con.conname FROM pg_index x "
                          "JOIN pg_class i ON i.oid = x.indexrelid "
                          "LEFT JOIN pg_constraint con ON con.conindid = i.oid AND con.conrelid = x.indrelid "
                          "WHERE x.indrelid = %s::regclass AND NOT x.indisprimary", [table])
                for name, sql, constraint in c.fetchall():
                    if constraint:
                        continue
                    c.execute(f'DROP INDEX "{name}"')
                    saved.append(sql)
            else:
                c.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s "
                          "AND sql IS NOT NULL", [table])
                for name, sql in c.fetchall():
                    c.execute(f'DROP INDEX "{name}"')
                    saved.append(sql)
    return saved


def run_sql(connection, statements: Iterable[str]) -> None:
    with connection.cursor() as c:
        for sql in statements:
            c.execute(sql)


def reset_sequences(connection, tables: Iterable[str]) -> None:
    """After writing explicit ids with COPY: move PostgreSQL's id sequences past them (SQLite needs nothing)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as c:
        for table in tables:
            c.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                      f"GREATEST(1, (SELECT COALESCE(MAX(id), 0) FROM {table})))")


def bulk_mode(connection, on: bool) -> None:
    """No foreign-key checks (and a larger SQLite page cache) during a bulk build; back to normal afterwards."""
    with connection.cursor() as c:
        if connection.vendor == "postgresql":
            c.execute("SET session_replication_role = " + ("replica" if on else "origin"))
        else:
            c.execute("PRAGMA foreign_keys = " + ("OFF" if on else "ON"))
            c.execute("PRAGMA cache_size = " + ("-1048576" if on else "-2000"))


def chunked(n: int, make: Callable[[int, int], Iterable], step: int = 250_000):
    """Rows ``0 … n-1`` produced ``step`` at a time by ``make(lo, hi)`` (bounded memory)."""
    for lo in range(0, n, step):
        yield from make(lo, min(n, lo + step))


def db_datetimes(connection, epoch_seconds, valid=None) -> list:
    """Column values for a DateTimeField from epoch seconds (numpy), vectorised: Django's own text form on SQLite
    ('YYYY-MM-DD HH:MM:SS.ffffff', naive UTC — compared as text by raw SQL, so the separator must be a space), an
    ISO string with offset for PostgreSQL's COPY. ``valid`` (bool mask) gives None where False."""
    import numpy as np

    values = np.asarray(epoch_seconds, dtype="float64")
    micros = np.round(np.nan_to_num(values) * 1e6).astype("int64").astype("datetime64[us]")
    text = np.char.replace(np.datetime_as_string(micros, unit="us"), "T", " ")
    if connection.vendor == "postgresql":
        text = np.char.add(text, "+00")
    out = text.tolist()
    mask = ~np.isnan(values) if valid is None else (np.asarray(valid, dtype=bool) & ~np.isnan(values))
    if not mask.all():
        out = [v if ok else None for v, ok in zip(out, mask.tolist(), strict=True)]
    return out


def db_dates(epoch_days, valid=None) -> list:
    """Column values for a DateField from days since 1970-01-01 (numpy)."""
    import numpy as np

    days = np.asarray(epoch_days, dtype="int64").astype("datetime64[D]")
    out = np.datetime_as_string(days, unit="D").tolist()
    if valid is not None:
        out = [v if ok else None for v, ok in zip(out, np.asarray(valid, dtype=bool).tolist(), strict=True)]
    return out


class ModelWriter:
    """Write rows of a Django model column-wise: the columns given (numpy arrays, lists or scalars), every other
    concrete field from its default (or NULL), ids assigned here so that later tables can point at them. Keeps the
    builder working when a model gains a field with a default."""

    def __init__(self, connection):
        self.connection = connection
        self.write = table_writer(connection)
        self.next_ids: dict[str, int] = {}
        self.tables: set[str] = set()

    def first_id(self, model) -> int:
        table = model._meta.db_table
        if table not in self.next_ids:
            pk = self.connection.ops.quote_name(model._meta.pk.column)
            with self.connection.cursor() as c:
                c.execute(f"SELECT COALESCE(MAX({pk}), 0) FROM {table}")
                self.next_ids[table] = c.fetchone()[0] + 1
        return self.next_ids[table]

    @staticmethod
    def _auto_pk(model) -> bool:
        from django.db import models

        return isinstance(model._meta.pk, models.AutoField | models.BigAutoField | models.SmallAutoField)

    def put(self, model, n: int, **columns) -> range:
        """Append ``n`` rows; ``columns`` by attribute or column name. Returns the ids written."""
        if n <= 0:
            return range(0)
        import numpy as np

        meta = model._meta
        auto = self._auto_pk(model)
        ids = range(0)
        if auto:
            start = self.first_id(model)
            ids = range(start, start + n)
            self.next_ids[meta.db_table] = start + n
            self.tables.add(meta.db_table)
        names, values = [], []
        for field in meta.concrete_fields:
            if field.primary_key and auto:
                names.append(field.column)
                values.append(ids)
                continue
            given = _MISSING
            for name in (field.attname, field.column, field.name):
                if name in columns:
                    given = columns.pop(name)
                    break
            if given is _MISSING:
                if field.has_default() or (not field.null and field.empty_strings_allowed):
                    default = field.get_default()
                    given = json.dumps(default) if field.get_internal_type() == "JSONField" else default
                elif field.null:
                    given = None
                else:
                    raise ValueError(f"{meta.label}.{field.name}: no value and no default")
            names.append(field.column)
            if isinstance(given, np.ndarray):
                given = given.tolist()
            elif isinstance(given, range):
                given = list(given)
            if isinstance(given, list):
                if len(given) != n:
                    raise ValueError(f"{meta.label}.{field.name}: {len(given)} values for {n} rows")
                if field.get_internal_type() == "JSONField":
                    given = [v if isinstance(v, str) or v is None else json.dumps(v, ensure_ascii=False)
                             for v in given]
                values.append(given)
            else:
                if field.get_internal_type() == "JSONField" and given is not None and not isinstance(given, str):
                    given = json.dumps(given, ensure_ascii=False)
                values.append([given] * n)
        if columns:
            raise ValueError(f"{meta.label}: unknown columns {sorted(columns)}")
        self.write(meta.db_table, names, zip(*values, strict=True))
        return ids

    def finish(self) -> None:
        reset_sequences(self.connection, sorted(self.tables))


_MISSING = object()


# --- PostgreSQL databases ---------------------------------------------------------------------------------------------


def pg_base(url: str = "") -> str:
    base = url or os.environ.get("DATABASE_URL", "")
    return base if base.startswith("postgres") else DEFAULT_PG


def pg_admin_url(url: str = "") -> str:
    parsed = urlparse(pg_base(url))
    return urlunparse(parsed._replace(path="/postgres", scheme="postgresql"))


def pg_url(name: str, url: str = "") -> str:
    return urlunparse(urlparse(pg_base(url))._replace(path="/" + name))


def pg_create(name: str, url: str = "", *, fresh: bool = False) -> str:
    """Make sure the database ``name`` exists (recreated with ``fresh``); returns its URL."""
    import psycopg

    with psycopg.connect(pg_admin_url(url), autocommit=True) as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    return pg_url(name, url)


def pg_drop(name: str, url: str = "") -> None:
    import psycopg

    with psycopg.connect(pg_admin_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the server ---------------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, path: str = "/healthz", timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                if r.status < 500:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not start within {timeout} s")


class Server:
    """A server process group (``jingkong serve`` → gunicorn master → workers), stopped as a whole."""

    def __init__(self, argv: list[str], env: dict, port: int, ready_path: str = "/healthz", timeout: float = 180):
        self.proc = subprocess.Popen(argv, env=env, cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        self.port = port
        try:
            wait_ready(port, ready_path, timeout)
        except RuntimeError:
            self.stop()
            tail = self.proc.stderr.read().decode(errors="replace")[-1500:] if self.proc.stderr else ""
            raise RuntimeError(f"{' '.join(argv[:4])} did not start: {tail}") from None

    @classmethod
    def jingkong_serve(cls, env: dict, *, workers: int = 2, threads: int = 4) -> Server:
        """``jingkong serve --no-worker``: gunicorn gthread as production runs it (no job worker: nothing else
        competes for the two cores while measuring)."""
        port = free_port()
        jingkong = str(Path(sys.executable).with_name("jingkong"))
        return cls([jingkong, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
                    "--threads", str(threads), "--no-worker"], env, port)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# --- timing ---------------------------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0…100) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def summarise_ms(values_ms: Sequence[float]) -> dict:
    """p50 / p95 / max / mean in milliseconds (2 decimals) and the number of samples."""
    if not values_ms:
        return {"n": 0}
    return {"n": len(values_ms), "p50_ms": round(percentile(values_ms, 50), 2),
            "p95_ms": round(percentile(values_ms, 95), 2), "max_ms": round(max(values_ms), 2),
            "mean_ms": round(statistics.fmean(values_ms), 2)}


def time_ms(fn: Callable[[], object], runs: int, *, warmup: int = 1) -> list[float]:
    """Wall times of ``runs`` calls (after ``warmup`` untimed ones), in milliseconds."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)
