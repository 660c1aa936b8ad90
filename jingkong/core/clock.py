"""The one clock of the platform.

Code that needs "now" takes it as an argument where it can, and otherwise calls :func:`now`. Tests and outbreak
replays swap the clock with :func:`frozen` or :func:`use`, so results never depend on the wall clock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Iterator
from zoneinfo import ZoneInfo

UTC = dt.UTC
_local = threading.local()
_global: Callable[[], dt.datetime] | None = None


def _wall() -> dt.datetime:
    return dt.datetime.now(UTC)


def now() -> dt.datetime:
    """The current instant as an aware UTC datetime."""
    source = getattr(_local, "source", None) or _global or _wall
    value = source()
    if value.tzinfo is None:
        raise ValueError("the clock returned a naive datetime; clocks must return aware datetimes")
    return value.astimezone(UTC)


def today(tz: str | None = None) -> dt.date:
    """Today's date in the given (default: the platform's) time zone."""
    return now().astimezone(ZoneInfo(tz or local_time_zone())).date()


def local_time_zone() -> str:
    from django.conf import settings

    return settings.TIME_ZONE


def set_global(source: Callable[[], dt.datetime] | None) -> None:
    """Replace the process-wide clock (e.g. a demo replaying an outbreak); ``None`` restores the wall clock."""
    global _global
    _global = source


@contextlib.contextmanager
def use(source: Callable[[], dt.datetime]) -> Iterator[None]:
    """Use another clock in this thread for the duration of the block."""
    previous = getattr(_local, "source", None)
    _local.source = source
    try:
        yield
    finally:
        _local.source = previous


@contextlib.contextmanager
def frozen(at: dt.datetime) -> Iterator[dt.datetime]:
    """Freeze the clock at ``at`` (aware) in this thread."""
    if at.tzinfo is None:
        raise ValueError("frozen() needs an aware datetime")
    with use(lambda: at):
        yield at


def offset_clock(
    start_real: dt.datetime, start_virtual: dt.datetime, speed: float = 1.0, real: Callable[[], dt.datetime] = _wall
) -> Callable[[], dt.datetime]:
    """A clock that runs from ``start_virtual`` at ``speed`` times real time (for replaying a scenario)."""

    def source() -> dt.datetime:
        return start_virtual + (real() - start_real) * speed

    return source


REPLAY_FROM_ENV = "JINGKONG_REPLAY_FROM"  # the virtual instant the replay starts at (ISO 8601 with offset)
REPLAY_ANCHOR_ENV = "JINGKONG_REPLAY_ANCHOR"  # the real instant it corresponds to (same in every server process)
REPLAY_SPEED_ENV = "JINGKONG_REPLAY_SPEED"


def replay_env(start_virtual: dt.datetime, *, anchor: dt.datetime | None = None, speed: float = 1.0) -> dict:
    """Environment variables that make every server process (web workers, job worker) run a replay clock."""
    return {REPLAY_FROM_ENV: start_virtual.isoformat(), REPLAY_ANCHOR_ENV: (anchor or _wall()).isoformat(),
            REPLAY_SPEED_ENV: str(speed)}


def install_replay_from_env(environ=None) -> dt.datetime | None:
    """Install the process-wide replay clock described by :func:`replay_env`, if set. Returns the virtual start."""
    import os

    environ = os.environ if environ is None else environ
    start = environ.get(REPLAY_FROM_ENV)
    if not start:
        return None
    start_virtual = dt.datetime.fromisoformat(start)
    anchor = dt.datetime.fromisoformat(environ.get(REPLAY_ANCHOR_ENV) or _wall().isoformat())
    if start_virtual.tzinfo is None or anchor.tzinfo is None:
        raise ValueError(f"{REPLAY_FROM_ENV} and {REPLAY_ANCHOR_ENV} need a UTC offset")
    set_global(offset_clock(anchor, start_virtual, float(environ.get(REPLAY_SPEED_ENV) or 1.0)))
    return start_virtual
