"""Families of figures: each is recomputed set-based, as a whole, when events of its trigger types arrive (or its
source marks move), and written in one transaction. Register with :func:`register`; the modules are imported by
:func:`load_all` (``DashboardConfig.ready``).

A family's ``compute(at)`` returns rows ``(metric, key, region_code, day, value)`` for the whole installation; it
must not write. Metrics must belong to the family (``metrics.METRICS``); zero rows may be left out.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

Row = tuple[str, str, str, dt.date | None, float]

FAMILY_MODULES = ("jingkong.dashboard.families.situation", "jingkong.dashboard.families.operations")


@dataclass(frozen=True)
class Family:
    name: str
    triggers: tuple[str, ...]  # event type prefixes, e.g. ("tracing.case_", "testing.results_applied")
    compute: Callable[[dt.datetime], Iterable[Row]]
    marks: Callable[[], dict] | None = None  # cheap source marks (max ids) for changes that emit no event
    min_interval: float = 2.0  # seconds between two refreshes of this family
    max_age: float = 300.0  # refresh at least this often (overdue items, "today") even without events


_FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    _FAMILIES[family.name] = family
    return family


def all_families() -> dict[str, Family]:
    return dict(_FAMILIES)


def get(name: str) -> Family:
    return _FAMILIES[name]


def load_all() -> None:
    for module in FAMILY_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:  # a family module not written yet
            if exc.name != module:
                raise


# --- source marks -------------------------------------------------------------------------------------------------

_pass = threading.local()


@contextlib.contextmanager
def marks_pass() -> Iterator[None]:
    """While open (one pass of the refresher over the families), :func:`max_mark` reads each (model, field) once:
    several families watch the same sources (cases, contacts, batch members, room stays), and the pass runs every
    idle second. Per thread: each live stream runs its own passes."""
    outer = getattr(_pass, "memo", None)
    if outer is None:
        _pass.memo = {}
    try:
        yield
    finally:
        if outer is None:
            _pass.memo = None


def max_mark(model, field: str = "id"):
    """``MAX(field)`` of a model as a JSON-able mark (ids as int, 0 for an empty table; instants as ISO text)."""
    memo = getattr(_pass, "memo", None)
    key = (model._meta.label, field)
    if memo is not None and key in memo:
        return memo[key]
    from django.db.models import Max

    value = model.objects.aggregate(m=Max(field))["m"]
    value = value.isoformat() if isinstance(value, dt.datetime) else (value or 0)
    if memo is not None:
        memo[key] = value
    return value
