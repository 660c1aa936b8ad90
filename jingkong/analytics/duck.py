"""DuckDB plumbing shared by the set-based engines: one way to open a connection, and the operational database's data
moved to DuckDB as Arrow tables.

No DuckDB extension is ever downloaded at run time (the sqlite/postgres scanners and spatial would be): connections
refuse to auto-install or auto-load extensions, and only the statically linked ones (parquet, icu, json) are used. Data
from the Django database reaches DuckDB as Arrow tables built from ordinary cursors, a chunk of rows at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa

LOCAL_TZ = "Asia/Shanghai"  # the zone of 场所码 exports and of the lake's day partitions
DEFAULT_MEMORY_LIMIT = "2GB"
FETCH_CHUNK = 100_000
IN_CHUNK = 5_000  # ids per IN (...) list sent to the operational database


def connect(*, temp_directory: str | Path | None = None, threads: int | None = None,
            memory_limit: str | None = None):
    """An in-memory DuckDB connection in UTC, memory-bounded (spills to ``temp_directory``), no extension downloads.

    ``memory_limit`` defaults to ``JINGKONG_DUCKDB_MEMORY`` or 2 GB; ``threads`` to ``JINGKONG_DUCKDB_THREADS`` or the
    machine's cores.
    """
    import duckdb

    config = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "memory_limit": memory_limit or os.environ.get("JINGKONG_DUCKDB_MEMORY") or DEFAULT_MEMORY_LIMIT,
    }
    threads = threads or int(os.environ.get("JINGKONG_DUCKDB_THREADS") or 0) or None
    if threads:
        config["threads"] = threads
    if temp_directory is not None:
        Path(temp_directory).mkdir(parents=True, exist_ok=True)
        config["temp_directory"] = str(temp_directory)
    con = duckdb.connect(":memory:", config=config)
    con.execute("SET TimeZone = 'UTC'")
    return con


def sql_string(value: str | Path) -> str:
    """A DuckDB string literal (a file path in ``COPY ... TO``, ``read_parquet``)."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_list(paths: Sequence[str | Path]) -> str:
    """A DuckDB list literal of file paths, for ``read_parquet([...])``."""
    return "[" + ", ".join(sql_string(p) for p in paths) + "]"


def chunks(values: Sequence, size: int = IN_CHUNK) -> Iterable[Sequence]:
    for i in range(0, len(values), size):
        yield values[i: i + size]


def query_arrow(sql: str, params: Sequence = (), schema: pa.Schema | None = None, *, using: str = "default") -> pa.Table:
    """Run ``sql`` on the Django database and return the rows as an Arrow table (fetched ``FETCH_CHUNK`` at a time),
    named and typed by ``schema`` (by position) when given."""
    from django.db import connections

    batches = []
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        names = [d[0] for d in cursor.description]
        while True:
            rows = cursor.fetchmany(FETCH_CHUNK)
            if not rows:
                break
            columns = list(zip(*rows, strict=True))
            batches.append(pa.record_batch(
                [pa.array(c, type=schema.field(i).type if schema else None) for i, c in enumerate(columns)],
                names=schema.names if schema else names,
            ))
    if not batches:
        if schema is None:
            return pa.table({n: pa.array([], pa.null()) for n in names})
        return schema.empty_table()
    return pa.Table.from_batches(batches)


PERSON_HASH_SCHEMA = pa.schema([("id_hash", pa.string()), ("person_id", pa.int64())])
VENUE_CODE_SCHEMA = pa.schema([("code", pa.string()), ("venue_id", pa.int32())])


def person_hashes() -> pa.Table:
    """(id_hash, person_id) of every person in the registry."""
    return query_arrow("SELECT id_hash, id FROM people_person", schema=PERSON_HASH_SCHEMA)


def venue_codes() -> pa.Table:
    """(code, venue_id) of every venue of the base map."""
    return query_arrow("SELECT code, id FROM geo_venue", schema=VENUE_CODE_SCHEMA)


def rows_in(sql_template: str, ids: Sequence[int], schema: pa.Schema) -> pa.Table:
    """Rows of ``sql_template`` (with one ``{ids}`` placeholder for an IN list) for many ids, chunked."""
    ids = sorted({int(i) for i in ids})
    parts = []
    for part in chunks(ids):
        placeholders = ", ".join(["%s"] * len(part))
        parts.append(query_arrow(sql_template.format(ids=placeholders), list(part), schema=schema))
    return pa.concat_tables(parts) if parts else schema.empty_table()


def fetch_arrow(con, sql: str, params: Sequence = ()) -> pa.Table:
    """The rows of a DuckDB query as an Arrow table (``to_arrow_table`` on a relation in DuckDB ≥ 1.4, before that
    ``fetch_arrow_table`` on the executed statement)."""
    relation = con.sql(sql, params=list(params) or None)
    if hasattr(relation, "to_arrow_table"):
        return relation.to_arrow_table()
    return relation.arrow()
