"""Write the district directory (docs/district-format.md) with pyarrow: CSV lines are built column-wise by Arrow
compute kernels, check-ins are Parquet with dictionary-encoded strings (indices into the person/venue tables).

Memory stays bounded at any population: CSV columns are built for one slice of rows at a time (``write_csv`` takes a
function of the slice), and each check-in row group carries a dictionary of only the people and venues that occur in
it (a whole-population dictionary repeated in every row group made the files and the write time grow quadratically).
The bytes written do not depend on the slice size."""

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
ROW_GROUP = 2_000_000
TS = pa.timestamp("us", tz="UTC")
CHECKIN_SCHEMA = pa.schema([
    ("venue_code", pa.dictionary(pa.int32(), pa.string())),
    ("id_number", pa.dictionary(pa.int32(), pa.string())),
    ("checkin_at", TS),
    ("checkout_at", TS),
])


def fixed_width_strings(ascii_rows: np.ndarray) -> pa.StringArray:
    """A StringArray over an (n, w) uint8 array of ASCII, without per-row Python objects."""
    n, w = ascii_rows.shape
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(ascii_rows)))


def strings(values) -> pa.StringArray:
    return pa.array(list(values), type=pa.string())


def take(table: pa.Array, index: np.ndarray) -> pa.Array:
    return pc.take(table, pa.array(index))


def as_text(values) -> pa.Array:
    if isinstance(values, np.ndarray):
        values = pa.array(values)
    if not pa.types.is_string(values.type):
        values = pc.cast(values, pa.string())
    return pc.fill_null(values, "")


def join(*parts, sep: str = "") -> pa.Array:
    return pc.binary_join_element_wise(*parts, sep)


def write_csv(path: Path, header: list[str], columns, n: int | None = None, chunk: int = CSV_CHUNK) -> int:
    """Write unquoted CSV (values never contain commas, quotes or newlines). Returns the row count.

    ``columns`` is either a list of whole columns, or a function ``(start, stop) -> list of columns`` for that slice of
    rows (then ``n`` is the row count), so that no whole-population string column need ever exist.
    """
    if callable(columns):
        make = columns
    else:
        whole = [as_text(c) for c in columns]
        n = len(whole[0])

        def make(start: int, stop: int) -> list:
            return [c.slice(start, stop - start) for c in whole]

    with path.open("wb") as f:
        f.write((",".join(header) + "\n").encode())
        for s in range(0, n, chunk):
            cols = [as_text(c) for c in make(s, min(n, s + chunk))]
            lines = join(join(*cols, sep=","), pa.scalar("\n"))
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


def _compact(index: np.ndarray, dictionary: pa.Array, lookup: np.ndarray) -> pa.DictionaryArray:
    """``dictionary[index]`` as a DictionaryArray whose dictionary holds only the values used, in dictionary order."""
    used = np.zeros(len(dictionary), bool)
    used[index] = True
    values = np.flatnonzero(used)
    lookup[values] = np.arange(len(values), dtype=np.int32)
    return pa.DictionaryArray.from_arrays(pa.array(lookup[index]), dictionary.take(pa.array(values)))


def sorted_id_dictionary(id_ascii: np.ndarray) -> tuple[pa.StringArray, np.ndarray]:
    """The ID numbers in ascending order as a StringArray, and each person's position in it.

    Check-in row groups take their dictionaries from this order: sorted IDs share long prefixes (area code, birth
    date), so a row group's dictionary page compresses to about two thirds of the size it has in household order.
    """
    n = len(id_ascii)
    key = np.zeros(n, np.int64)
    for col in range(17):  # the first 17 characters are digits: an exact int64 key
        key *= 10
        key += id_ascii[:, col] - ord("0")
    order = np.argsort(key)
    del key
    position = np.empty(n, np.int32)
    position[order] = np.arange(n, dtype=np.int32)
    return fixed_width_strings(id_ascii[order]), position


def _parquet_writer(path: Path) -> pq.ParquetWriter:
    path.parent.mkdir(parents=True, exist_ok=True)
    return pq.ParquetWriter(
        path, CHECKIN_SCHEMA, compression="zstd", compression_level=1,
        use_dictionary=["venue_code", "id_number"],
        column_encoding={"checkin_at": "DELTA_BINARY_PACKED", "checkout_at": "DELTA_BINARY_PACKED"},
        # min/max of ID numbers prune nothing and cost a third of the write time
        write_statistics=["venue_code", "checkin_at", "checkout_at"],
    )


def write_checkins(path: Path, venue_dict: pa.Array, person_dict: pa.Array, day_us: int, venue: np.ndarray,
                   person: np.ndarray, start_s: np.ndarray, dwell_s: np.ndarray,
                   person_position: np.ndarray | None = None) -> int:
    """Write one day's check-ins from compact arrays (indices, seconds after local midnight ``day_us``, dwell seconds),
    building the timestamp columns one row group at a time. Returns the row count.

    ``person_position`` maps person indices to positions in ``person_dict`` (see ``sorted_id_dictionary``)."""
    n = len(venue)
    v_lookup = np.empty(len(venue_dict), np.int32)
    p_lookup = np.empty(len(person_dict), np.int32)
    with _parquet_writer(path) as out:
        for s in range(0, max(n, 1), ROW_GROUP):
            e = min(n, s + ROW_GROUP)
            checkin = day_us + start_s[s:e].astype(np.int64) * 1_000_000
            checkout = checkin + dwell_s[s:e].astype(np.int64) * 1_000_000
            out.write_table(pa.table({
                "venue_code": _compact(venue[s:e], venue_dict, v_lookup),
                "id_number": _compact(person[s:e] if person_position is None else person_position[person[s:e]],
                                      person_dict, p_lookup),
                "checkin_at": pa.array(checkin, TS),
                "checkout_at": pa.array(checkout, TS),
            }, schema=CHECKIN_SCHEMA), row_group_size=ROW_GROUP)
    return n
