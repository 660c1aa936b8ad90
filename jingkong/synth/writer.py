"""Write the district directory (docs/district-format.md) with pyarrow: CSV lines are built column-wise by Arrow
compute kernels, check-ins are Parquet with dictionary-encoded strings (indices into the person/venue tables)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from shapely.geometry import mapping

from jingkong.synth.geography import Region

CSV_CHUNK = 500_000
TS = pa.timestamp("us", tz="UTC")


def fixed_width_strings(ascii_rows: np.ndarray) -> pa.StringArray:
    """A StringArray over an (n, w) uint8 array of ASCII, without per-row Python objects."""
    n, w = ascii_rows.shape
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(ascii_rows)))


def strings(values) -> pa.StringArray:
    return pa.array(list(values), type=pa.string())


def take(table: pa.Array, index: np.ndarray) -> pa.Array:
    return pc.take(table, pa.array(index))


def take_or_empty(table: list[str], index: np.ndarray) -> pa.Array:
    """``table[index]``, or "" where index is -1."""
    arr = strings([*table, ""])
    return take(arr, np.where(index < 0, len(table), index))


def as_text(values) -> pa.Array:
    if isinstance(values, np.ndarray):
        values = pa.array(values)
    if not pa.types.is_string(values.type):
        values = pc.cast(values, pa.string())
    return pc.fill_null(values, "")


def join(*parts, sep: str = "") -> pa.Array:
    return pc.binary_join_element_wise(*parts, sep)


def write_csv(path: Path, header: list[str], columns: list) -> int:
    """Write columns as unquoted CSV (values never contain commas, quotes or newlines). Returns the row count."""
    cols = [as_text(c) for c in columns]
    n = len(cols[0])
    with path.open("wb") as f:
        f.write((",".join(header) + "\n").encode())
        for s in range(0, n, CSV_CHUNK):
            chunk = [c.slice(s, CSV_CHUNK) for c in cols]
            lines = join(join(*chunk, sep=","), pa.scalar("\n"))
            offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4)
            f.write(memoryview(lines.buffers()[2])[offsets[0] : offsets[-1]])
    return n


def write_regions(path: Path, regions: list[Region]) -> None:
    features = [
        {
            "type": "Feature",
            "properties": {"code": r.code, "name": r.name, "level": r.level, "parent_code": r.parent_code,
                           "synthetic": r.synthetic},
            "geometry": mapping(r.geometry),
        }
        for r in regions
    ]
    text = json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False, separators=(",", ":"))
    path.write_text(text, encoding="utf-8")


def checkin_table(venue_dict: pa.Array, person_dict: pa.Array, venue, person, checkin, checkout) -> pa.Table:
    return pa.table({
        "venue_code": pa.DictionaryArray.from_arrays(pa.array(venue, pa.int32()), venue_dict),
        "id_number": pa.DictionaryArray.from_arrays(pa.array(person, pa.int32()), person_dict),
        "checkin_at": pa.array(checkin, TS),
        "checkout_at": pa.array(checkout, TS),
    })


def write_parquet(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        table, path, compression="zstd", compression_level=1,
        use_dictionary=["venue_code", "id_number"],
        column_encoding={"checkin_at": "DELTA_BINARY_PACKED", "checkout_at": "DELTA_BINARY_PACKED"},
        row_group_size=2_000_000,
    )
