"""Set-based bulk writes for imports and loaders, picking the fastest strategy of the database in use.

* SQLite: one ``executemany`` of ``INSERT … ON CONFLICT … DO UPDATE`` (a single prepared statement).
* PostgreSQL: ``COPY`` (psycopg 3 ``cursor.copy``) into a temporary staging table, then one
  ``INSERT … SELECT … ON CONFLICT … DO UPDATE`` into the target.

Rows are sequences of values already in the database's text form for dates and datetimes (see :func:`db_datetime`,
``birth_date`` as ``"YYYY-MM-DD"``); ``None`` is NULL. Call inside ``transaction.atomic`` (the helpers open a
savepoint of their own otherwise), so a chunk commits or rolls back as a whole. Never per-object ``save()`` in loops.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from django.db import connections, transaction

Row = Sequence[object]


def vendor(using: str = "default") -> str:
    return connections[using].vendor


def db_datetime(value: dt.datetime, using: str = "default"):
    """An aware datetime in the form the backend stores (SQLite: naive-UTC text; PostgreSQL: the datetime)."""
    return connections[using].ops.adapt_datetimefield_value(value)


def db_bool(value: bool, using: str = "default"):
    return (1 if value else 0) if vendor(using) == "sqlite" else bool(value)


def _q(using: str, name: str) -> str:
    return connections[using].ops.quote_name(name)


def _cols(using: str, columns: Sequence[str]) -> str:
    return ", ".join(_q(using, c) for c in columns)


def copy_rows(raw_cursor, table: str, columns: Sequence[str], rows: Iterable[Row]) -> int:
    """``COPY table (columns) FROM STDIN`` with psycopg 3 (``raw_cursor`` is the psycopg cursor). Returns the count."""
    n = 0
    cols = ", ".join(f'"{c}"' for c in columns)
    with raw_cursor.copy(f'COPY "{table}" ({cols}) FROM STDIN') as copy:
        write = copy.write_row
        for row in rows:
            write(row)
            n += 1
    return n


def bulk_insert(table: str, columns: Sequence[str], rows: Sequence[Row], *, using: str = "default") -> int:
    """Plain bulk INSERT (append-only tables such as the audit log)."""
    if not rows:
        return 0
    conn = connections[using]
    with transaction.atomic(using=using), conn.cursor() as cursor:
        if conn.vendor == "postgresql":
            return copy_rows(cursor.cursor, table, columns, rows)
        marks = ", ".join(["%s"] * len(columns))
        cursor.executemany(f"INSERT INTO {_q(using, table)} ({_cols(using, columns)}) VALUES ({marks})", rows)
    return len(rows)


def bulk_upsert(
    table: str,
    columns: Sequence[str],
    rows: Sequence[Row],
    *,
    conflict_columns: Sequence[str],
    update_columns: Sequence[str] | None = None,
    keys_table: str | None = None,
    using: str = "default",
) -> int:
    """Insert ``rows`` into ``table``; rows whose ``conflict_columns`` already exist get ``update_columns`` updated.

    ``update_columns`` empty or None: existing rows are left alone (``DO NOTHING``). The rows must not repeat a
    conflict key. With ``keys_table``, the conflict keys of the rows are also left in a temporary table of that name
    (columns = ``conflict_columns``, valid until the end of the transaction) for set-based follow-up statements such
    as audit rows joined to the written records. Returns the number of rows sent.
    """
    if not rows:
        return 0
    conn = connections[using]
    update_columns = list(update_columns or [])
    conflict = _cols(using, conflict_columns)
    if update_columns:
        excluded = "EXCLUDED" if conn.vendor == "postgresql" else "excluded"
        action = "DO UPDATE SET " + ", ".join(f"{_q(using, c)} = {excluded}.{_q(using, c)}" for c in update_columns)
    else:
        action = "DO NOTHING"
    with transaction.atomic(using=using), conn.cursor() as cursor:
        if conn.vendor == "postgresql":
            stage = keys_table or f"_jk_stage_{table}"
            cursor.execute(f"DROP TABLE IF EXISTS {_q(using, stage)}")
            cursor.execute(
                f"CREATE TEMP TABLE {_q(using, stage)} ON COMMIT DROP AS "
                f"SELECT {_cols(using, columns)} FROM {_q(using, table)} WITH NO DATA"
            )
            copy_rows(cursor.cursor, stage, columns, rows)
            cursor.execute(
                f"INSERT INTO {_q(using, table)} ({_cols(using, columns)}) "
                f"SELECT {_cols(using, columns)} FROM {_q(using, stage)} ON CONFLICT ({conflict}) {action}"
            )
            if not keys_table:
                cursor.execute(f"DROP TABLE {_q(using, stage)}")
            return len(rows)
        marks = ", ".join(["%s"] * len(columns))
        cursor.executemany(
            f"INSERT INTO {_q(using, table)} ({_cols(using, columns)}) VALUES ({marks}) ON CONFLICT ({conflict}) {action}",
            rows,
        )
        if keys_table:
            idx = [list(columns).index(c) for c in conflict_columns]
            temp_keys(keys_table, conflict_columns, ([row[i] for i in idx] for row in rows), using=using)
    return len(rows)


def temp_keys(name: str, columns: Sequence[str], rows: Iterable[Row], *, using: str = "default") -> str:
    """(Re)create the temporary table ``name`` (text columns) holding ``rows``; returns its name."""
    conn = connections[using]
    cols = ", ".join(f"{_q(using, c)} text" for c in columns)
    with conn.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {_q(using, name)}")
        if conn.vendor == "postgresql":
            cursor.execute(f"CREATE TEMP TABLE {_q(using, name)} ({cols}) ON COMMIT DROP")
            copy_rows(cursor.cursor, name, columns, rows)
        else:
            cursor.execute(f"CREATE TEMP TABLE {_q(using, name)} ({cols})")
            marks = ", ".join(["%s"] * len(columns))
            cursor.executemany(f"INSERT INTO {_q(using, name)} VALUES ({marks})", list(rows))
    return name


def code_map(table: str, *, key: str = "code", value: str = "id", where: str = "", params: Sequence = (),
             using: str = "default") -> dict[str, object]:
    """``{key: value}`` for a whole table in one query (code → id lookups during imports)."""
    with connections[using].cursor() as cursor:
        cursor.execute(f"SELECT {_q(using, key)}, {_q(using, value)} FROM {_q(using, table)} {where}", list(params))
        return dict(cursor.fetchall())


def load_into_empty(table: str, columns: Sequence[str], rows: Sequence[Row], *, using: str = "default") -> bool:
    """First load of a table: when it is empty, drop its droppable secondary indexes, insert every row in one
    statement (``executemany``/``COPY``) and rebuild the indexes — one sort per index instead of a random insert per
    row. Runs in one transaction (an interruption leaves the table empty). Returns False, doing nothing, when the
    table already has rows: the caller then upserts. Unique constraints stay in place (they must hold throughout).
    """
    conn = connections[using]
    with transaction.atomic(using=using), conn.cursor() as c:
        quoted = _q(using, table)
        if conn.vendor == "postgresql":
            c.execute(f"LOCK TABLE {quoted} IN SHARE ROW EXCLUSIVE MODE")
        c.execute(f"SELECT 1 FROM {quoted} LIMIT 1")
        if c.fetchone() is not None:
            return False
        if conn.vendor == "postgresql":
            c.execute(
                "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
                " WHERE x.indrelid = %s::regclass AND NOT x.indisunique", [table])
        else:
            c.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s AND sql IS NOT NULL"
                      " AND sql NOT LIKE 'CREATE UNIQUE%%'", [table])
        indexes = c.fetchall()
        for name, _ in indexes:
            c.execute(f"DROP INDEX {_q(using, name)}")
        if conn.vendor == "postgresql":
            copy_rows(c.cursor, table, columns, rows)
            # Run the deferred foreign-key checks of the copied rows now: PostgreSQL refuses CREATE INDEX while
            # trigger events are pending. Django's constraints are deferred again afterwards.
            c.execute("SET CONSTRAINTS ALL IMMEDIATE")
        else:
            marks = ", ".join(["%s"] * len(columns))
            c.executemany(f"INSERT INTO {quoted} ({_cols(using, columns)}) VALUES ({marks})", rows)
        for _, sql in indexes:
            c.execute(sql)
        if conn.vendor == "postgresql":
            c.execute("SET CONSTRAINTS ALL DEFERRED")
    return True
