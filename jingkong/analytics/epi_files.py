"""Reading the files of ``jingkong epi rt``: daily incidence and a discrete serial interval (pure, no database).

Both are CSV text in UTF-8 (with or without BOM) or GBK/GB18030, as exported by spreadsheets on Chinese-locale
machines. Every problem is reported with its line (1 = the header line) and field, all of them at once (up to
``MAX_PROBLEMS``), so that a file can be fixed in one pass.

Incidence: header ``date,local[,imported]`` (case and spaces ignored; 日期/本地/输入 accepted as well), one row per
day, dates ``YYYY-MM-DD`` (or ``YYYY/MM/DD``) ascending and consecutive. A missing day is an error naming the gap,
not silently a zero: a gap in an export usually means lost rows, and a zero would lower R. Counts are whole numbers
≥ 0 (``3`` or ``3.0``); an empty ``imported`` cell counts as 0, an empty ``local`` cell is an error. Blank lines
are skipped.

Serial interval: either one value per line, or CSV with a column ``si``; the first value is day 0 and must be 0;
values finite and ≥ 0. A sum within 0.01 of 1 (EpiEstim's tolerance; distributions printed to 3 decimals do not add
up exactly) is normalised to 1 and reported as a note; further off is an error.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

MAX_PROBLEMS = 20
SI_SUM_TOLERANCE = 0.01
_HEADER_ALIASES = {
    "date": "date", "日期": "date", "dates": "date",
    "local": "local", "本地": "local", "本土": "local",
    "imported": "imported", "输入": "imported", "境外输入": "imported",
}


@dataclass(frozen=True)
class Problem:
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return _("line %(line)d, %(field)s: %(reason)s") % {"line": self.line, "field": self.field or "-",
                                                             "reason": self.reason}


class InputError(ValueError):
    """The file cannot be used; ``problems`` says where and why (the first ``MAX_PROBLEMS``)."""

    def __init__(self, problems: list[Problem], more: int = 0):
        self.problems = problems
        self.more = more
        text = "; ".join(str(p) for p in problems)
        if more:
            text += " " + _("(and %(n)d more)") % {"n": more}
        super().__init__(text)


class _Collector:
    def __init__(self):
        self.problems: list[Problem] = []
        self.more = 0

    def add(self, line: int, field_name: str, reason: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(line, field_name, reason))
        else:
            self.more += 1

    def raise_if_any(self) -> None:
        if self.problems:
            raise InputError(self.problems, self.more)


def decode(data: bytes) -> str:
    """UTF-8 (a BOM is dropped), else GB18030 (a superset of GBK); neither → InputError."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InputError([Problem(0, "file", _("the file is neither UTF-8 nor GBK/GB18030 text"))])


@dataclass
class Incidence:
    """Consecutive days from ``dates[0]``; ``imported`` is None when the file had no imported column."""

    dates: list[dt.date] = field(default_factory=list)
    local: list[int] = field(default_factory=list)
    imported: list[int] | None = None


def _parse_date(text: str) -> dt.date | None:
    text = text.strip()
    for fmt in ("%Y-%m-%d", "%Y/%m/%d"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def _parse_count(text: str) -> int | str:
    """The count, or the reason it is not one."""
    text = text.strip()
    if text.isascii() and text.isdigit():
        return int(text)
    try:
        value = float(text)
    except ValueError:
        return _("not a number: %(value)r") % {"value": text}
    if value < 0:
        return _("negative count: %(value)s") % {"value": text}
    if value.is_integer():  # "3.0" from a spreadsheet
        return int(value)
    return _("not a whole number: %(value)s") % {"value": text}


def read_incidence(data: bytes) -> Incidence:
    """Parse an incidence file (see the module docstring); InputError lists every problem found."""
    text = decode(data)
    reader = csv.reader(io.StringIO(text))
    records_end = 0
    problems = _Collector()
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    header_line = 1
    records: list[tuple[int, list[str]]] = []  # (the line the record starts on, its cells)
    try:
        for row in reader:
            records.append((records_end + 1, row))
            records_end = reader.line_num
    except csv.Error as exc:
        raise InputError([Problem(reader.line_num, "file", _("not readable as CSV: %(error)s") % {"error": exc})]) from None
    for line_number, row in records:
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = [_HEADER_ALIASES.get(cell.strip().lower(), cell.strip().lower()) for cell in row]
            header_line = line_number
            continue
        rows.append((line_number, row))
    if header is None:
        raise InputError([Problem(1, "file", _("the file is empty"))])
    for name in ("date", "local"):
        if name not in header:
            problems.add(header_line, name, _("missing column (the header must be date,local[,imported])"))
    for name in ("date", "local", "imported"):
        if header.count(name) > 1:
            problems.add(header_line, name, _("the column appears more than once"))
    problems.raise_if_any()
    if not rows:
        raise InputError([Problem(header_line, "file", _("no data rows after the header"))])
    col_date, col_local = header.index("date"), header.index("local")
    col_imported = header.index("imported") if "imported" in header else None
    out = Incidence(imported=[] if col_imported is not None else None)
    seen: dict[dt.date, int] = {}
    previous: tuple[int, dt.date] | None = None
    for line, row in rows:
        def cell(index: int | None, row=row) -> str:
            return row[index] if index is not None and index < len(row) else ""

        day = _parse_date(cell(col_date))
        if day is None:
            problems.add(line, "date", _("not a date (YYYY-MM-DD): %(value)r") % {"value": cell(col_date).strip()})
        local = _parse_count(cell(col_local)) if cell(col_local).strip() else _("empty")
        if isinstance(local, str):
            problems.add(line, "local", local)
        imported: int | str = 0
        if col_imported is not None and cell(col_imported).strip():
            imported = _parse_count(cell(col_imported))
            if isinstance(imported, str):
                problems.add(line, "imported", imported)
        if day is None:
            continue
        if day in seen:
            problems.add(line, "date", _("%(day)s appears again (first on line %(first)d)")
                         % {"day": day.isoformat(), "first": seen[day]})
            continue
        seen[day] = line
        if previous is not None:
            prev_line, prev_day = previous
            if day < prev_day:
                problems.add(line, "date", _("%(day)s comes after %(prev)s (line %(prev_line)d): dates must be "
                                             "ascending") % {"day": day.isoformat(), "prev": prev_day.isoformat(),
                                                             "prev_line": prev_line})
                continue
            if (day - prev_day).days > 1:
                first_missing = prev_day + dt.timedelta(days=1)
                last_missing = day - dt.timedelta(days=1)
                problems.add(line, "date", _("no row for %(first)s..%(last)s (between lines %(prev_line)d and "
                                             "%(line)d): add the missing days with 0 cases")
                             % {"first": first_missing.isoformat(), "last": last_missing.isoformat(),
                                "prev_line": prev_line, "line": line})
        previous = (line, day)
        if isinstance(local, int) and isinstance(imported, int):
            out.dates.append(day)
            out.local.append(local)
            if out.imported is not None:
                out.imported.append(imported)
    problems.raise_if_any()
    return out


def read_si_distr(data: bytes) -> tuple[list[float], str | None]:
    """Parse a discrete serial interval (see the module docstring): the values summing to 1, and a note when they
    had to be normalised (None otherwise). InputError lists every problem found."""
    text = decode(data)
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise InputError([Problem(1, "file", _("the file is empty"))])
    problems = _Collector()
    first_line, first = lines[0]
    cells: list[tuple[int, str]]
    try:
        float(first.split(",")[0])
        is_plain = "," not in first
    except ValueError:
        is_plain = False
    if is_plain:
        cells = lines
        field_name = "si"
    else:
        header = [c.strip().lower() for c in next(csv.reader([first]))]
        if "si" not in header:
            raise InputError([Problem(first_line, "si", _("missing column si (or give one value per line)"))])
        index = header.index("si")
        cells = []
        for n, line in lines[1:]:
            row = next(csv.reader([line]))
            cells.append((n, row[index] if index < len(row) else ""))
        field_name = "si"
    values: list[float] = []
    for n, raw in cells:
        try:
            value = float(raw.strip())
        except ValueError:
            problems.add(n, field_name, _("not a number: %(value)r") % {"value": raw.strip()})
            continue
        if not math.isfinite(value) or value < 0:
            problems.add(n, field_name, _("must be a finite value ≥ 0, not %(value)s") % {"value": raw.strip()})
            continue
        values.append(value)
    problems.raise_if_any()
    where = cells[0][0] if cells else first_line
    if len(values) < 2:
        raise InputError([Problem(where, field_name, _("at least two values are needed (day 0 and day 1)"))])
    if values[0] != 0:
        raise InputError([Problem(where, field_name, _("the first value is day 0 and must be 0, not %(value)s")
                                  % {"value": cells[0][1].strip()})])
    total = sum(values)
    if abs(total - 1.0) > SI_SUM_TOLERANCE:
        raise InputError([Problem(where, field_name, _("the values must sum to 1 (they sum to %(total).4f)")
                                  % {"total": total})])
    note = None
    if abs(total - 1.0) > 1e-9:
        note = _("the serial interval summed to %(total).6f; it was normalised to 1") % {"total": total}
    return [v / total for v in values], note
