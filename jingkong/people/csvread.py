"""Reading import CSV files: encoding detection, header aliases, exact line numbers.

Encoding: a UTF-8 BOM means UTF-8; otherwise the file is decoded as strict UTF-8 and, when that fails, as GB18030 (a
superset of GBK and GB2312, the encodings Chinese registry systems export). The fast path parses with pyarrow.csv (all
columns as strings); if any record is malformed (wrong number of fields, blank line, a quoted newline), the file is
parsed again with the csv module, which gives the exact physical line of every record and reports malformed ones.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv


@dataclass
class CsvData:
    table: pa.Table  # canonical column names, all strings, no nulls
    lines: np.ndarray  # physical line number (1 = header) of each record
    encoding: str
    unknown_columns: list[str] = field(default_factory=list)
    malformed: list[tuple[int, str]] = field(default_factory=list)  # (line, reason) of records that were skipped
    columns: list[str] = field(default_factory=list)  # canonical names of the columns the file's header has


def decode_bytes(data: bytes) -> tuple[bytes, str]:
    """Return ``(utf8_bytes_without_bom, detected_encoding)``."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):], "utf-8-sig"
    try:
        data.decode("utf-8")
        return data, "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030").encode("utf-8"), "gb18030"
    except UnicodeDecodeError:
        from charset_normalizer import from_bytes

        best = from_bytes(data[:200_000]).best()
        if best is None:
            raise ValueError("the file's text encoding is not UTF-8 or GBK/GB18030") from None
        return data.decode(best.encoding, errors="replace").encode("utf-8"), best.encoding


def canonical_header(names: list[str], aliases: dict[str, str]) -> tuple[list[str], list[str]]:
    """Map raw header names through ``aliases`` (keys lower-case); returns (canonical names, unknown raw names)."""
    out, unknown = [], []
    for raw in names:
        key = raw.strip().lstrip("\ufeff").strip().lower()
        name = aliases.get(key, key)
        out.append(name)
        if name not in aliases.values():
            unknown.append(raw)
    return out, unknown


def read_csv(path_or_bytes: str | Path | bytes, *, aliases: dict[str, str], expected: list[str]) -> CsvData:
    raw = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
    data, encoding = decode_bytes(raw)
    first_line = data.split(b"\n", 1)[0].decode("utf-8").rstrip("\r")
    header = next(csv.reader([first_line])) if first_line.strip() else []
    names, unknown = canonical_header(header, aliases)
    if not header:
        return CsvData(pa.table({c: pa.array([], pa.string()) for c in expected}), np.zeros(0, np.int64), encoding)
    if len(set(names)) != len(names):
        from jingkong.core.exceptions import ValidationFailed

        raise ValidationFailed(f"line 1: the header repeats a column: {header}", extra={"line": 1})
    problems: list[object] = []

    def on_invalid(row) -> str:
        problems.append(row)
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=8 << 20),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        problems.append("parse error")
    if problems:
        return _read_slow(data, names, encoding, unknown, expected)
    table = _complete(table, expected)
    return CsvData(table, np.arange(2, table.num_rows + 2, dtype=np.int64), encoding, unknown, columns=names)


def _complete(table: pa.Table, expected: list[str]) -> pa.Table:
    n = table.num_rows
    cols = {}
    for name in expected:
        if name in table.column_names:
            cols[name] = table.column(name).combine_chunks() if table.num_rows else pa.array([], pa.string())
        else:
            cols[name] = pa.array([""] * n, pa.string())
    return pa.table(cols)


def _read_slow(data: bytes, names: list[str], encoding: str, unknown: list[str], expected: list[str]) -> CsvData:
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    next(reader, None)
    columns: list[list[str]] = [[] for _ in names]
    lines: list[int] = []
    malformed: list[tuple[int, str]] = []
    previous_end = reader.line_num
    for record in reader:
        start = previous_end + 1
        previous_end = reader.line_num
        if not record or (len(record) == 1 and not record[0].strip()):
            continue  # blank line
        if len(record) != len(names):
            malformed.append((start, f"the record has {len(record)} fields, the header has {len(names)}"))
            continue
        lines.append(start)
        for i, value in enumerate(record):
            columns[i].append(value)
    table = pa.table({n: pa.array(c, pa.string()) for n, c in zip(names, columns, strict=True)})
    return CsvData(_complete(table, expected), np.array(lines, dtype=np.int64), encoding, unknown, malformed,
                   columns=names)
