"""The screen's live stream (server-sent events): ``GET /screen/stream?region=`` (DASHBOARD_VIEW).

A plain sync generator, so it runs the same under gunicorn's gthread workers (one thread per open stream; see
jingkong/core/serving.py), the dev server and the test client. Every second it asks for domain events newer than the
last one it has seen (primary-key range, bounded by the newest id: an indexed query) and sends the alert-worthy ones of
the region as ``event: alert`` (the same item as GET /api/v1/dashboard/alerts, ``id:`` = the domain event id so a
reconnecting browser resumes with ``Last-Event-ID``). When a family of figures has a new version it sends
``event: figures`` (the page re-reads summary, regions, epi and clock). ``: ping`` every 2 s keeps proxies from
closing the connection and, above all, makes the server notice a closed or reloaded tab within ~2 s (the write
fails), so its gunicorn thread is freed instead of being held until the next alert or the 15 s ping of old — a few
reloads used to exhaust a worker's threads. A ping is one short write: cheap; after ``max_seconds`` the stream ends and the browser reconnects (``retry: 3000``), so no
thread is held for ever. It also keeps the figures current on a server without a job worker: ``refresher.run_pending``
at most every 2 s.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterator

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.db.models import Max
from django.http import StreamingHttpResponse

from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.core.exceptions import ValidationFailed
from jingkong.core.models import DomainEvent
from jingkong.dashboard import alerts, selectors

POLL_SECONDS = 1.0
PING_SECONDS = 2.0  # short: a closed client is noticed at the next write (frees the gthread thread)
REFRESH_SECONDS = 2.0
VERSION_SECONDS = 2.0
RELEASE_SECONDS = 30.0  # how often an open stream lets Django drop a broken or too old connection (CONN_MAX_AGE)
RETRY_MS = 3000
MAX_SECONDS = 300
USER_SECONDS = 5.0  # how often an open stream re-reads its user (deactivated, role or region changed: it ends)
MAX_RESUME_EVENTS = 10_000  # a reconnect (Last-Event-ID) replays the alerts among at most this many latest events
BATCH = 200

log = logging.getLogger(__name__)


def _sse(event: str | None = None, data=None, id: int | None = None) -> str:
    lines = []
    if id is not None:
        lines.append(f"id: {id}")
    if event:
        lines.append(f"event: {event}")
    if data is not None:
        text = json.dumps(data, ensure_ascii=False, default=str, separators=(",", ":"))
        lines.extend(f"data: {line}" for line in text.splitlines() or [""])
    return "\n".join(lines) + "\n\n"


def _latest_id() -> int:
    return DomainEvent.objects.aggregate(m=Max("id"))["m"] or 0


def _versions() -> dict[str, int]:
    from jingkong.dashboard import refresher

    return {name: state["version"] for name, state in sorted(refresher.versions().items())}


def _release_connection() -> None:
    """Let Django drop a connection that is broken or past CONN_MAX_AGE, as it does between requests — but never
    inside an atomic block (the test client runs the whole test in one transaction)."""
    if not connection.in_atomic_block:
        close_old_connections()


def _int_param(value: str | None, name: str, *, default: int, low: int, high: int) -> int:
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValidationFailed(f"{name}: a whole number", extra={"field": name}) from None
    return max(low, min(number, high))


def _max_seconds(request) -> int:
    default = int(getattr(settings, "DASHBOARD_STREAM_MAX_SECONDS", MAX_SECONDS))
    return _int_param(request.GET.get("max_seconds"), "max_seconds", default=min(default, MAX_SECONDS), low=1,
                      high=MAX_SECONDS)


def _resume_from(request) -> int | None:
    raw = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id")
    if raw in (None, ""):
        return None
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ValidationFailed("Last-Event-ID: a domain event id", extra={"field": "Last-Event-ID"}) from None
    return max(0, value)


# Families whose last refresh took longer than this are left to the job worker: a stream thread computing the
# five-stage clock (~10 s at city scale) would hold its screen's alerts past the 5-second promise.
STREAM_REFRESH_MAX_MS = 1500
# A stream opens with its page's first render: its first refresh waits so the page's own reads go first.
REFRESH_GRACE_SECONDS = 5.0
_refresh_lock = threading.Lock()
_refresh_last = [float("-inf")]  # monotonic time of the last run_pending started by any stream of this process


def _maybe_refresh() -> bool:
    """``refresher.run_pending()`` at most once every :data:`REFRESH_SECONDS` per process, whatever the number of open
    streams (each would otherwise start one every 2 s: ten screens, five refresh passes a second). Never waits for
    another stream's pass: if one is running, this stream goes on. True when this call ran it."""
    from jingkong.dashboard import refresher

    if not _refresh_lock.acquire(blocking=False):
        return False
    try:
        now = time.monotonic()
        if now - _refresh_last[0] < REFRESH_SECONDS:
            return False
        _refresh_last[0] = now
        try:
            refresher.run_pending(max_duration_ms=STREAM_REFRESH_MAX_MS)
        except Exception:  # noqa: BLE001 - the figures' own state records failures; the stream goes on
            log.exception("dashboard refresh from the live stream failed")
        return True
    finally:
        _refresh_lock.release()


def _user_state(user) -> tuple | None:
    """What the stream's rights rest on: (active, role, region code) as stored now (one indexed read)."""
    from django.contrib.auth import get_user_model

    row = (get_user_model().objects.filter(pk=user.pk).values_list("is_active", "role", "region__code").first())
    return tuple(row) if row else None


def events(prefix: str, *, resume: int | None, max_seconds: float, poll: float = POLL_SECONDS,
           refresh: bool = True, user=None) -> Iterator[str]:
    """The stream's text. ``resume``: the last domain event id the browser had (None: only what happens from now).
    ``user``: the reader — alert items are cut to what their role may read (:func:`alerts.for_user`), and the stream
    ends as soon as their account is deactivated or their role or region changes (the browser reconnects and is
    checked afresh).

    When the client goes away, the server (or the garbage collector, for a response nobody read to the end) closes
    the generator: it then stops at once without touching the database — the request is over, its connection is no
    longer this stream's (in tests, database access is already blocked). A database error ends the stream with one
    log line; the browser reconnects after ``retry``."""
    started = time.monotonic()
    closed_by_client = False
    try:
        latest = _latest_id()
        # A Last-Event-ID newer than the newest event (another database, a reset demo) replays nothing but must not
        # hold back the events to come: start from the newest.
        last = latest if resume is None else min(max(resume, latest - MAX_RESUME_EVENTS, 0), latest)
        versions = _versions()
        rights = _user_state(user) if user is not None else None
        yield f"retry: {RETRY_MS}\n\n"
        yield _sse("hello", {"versions": versions, "last_event_id": latest})
        next_ping = next_versions = next_release = next_user = time.monotonic()
        next_ping += PING_SECONDS
        next_release += RELEASE_SECONDS
        next_user += USER_SECONDS
        while True:
            if refresh and time.monotonic() - started >= REFRESH_GRACE_SECONDS:
                _maybe_refresh()
            upto = _latest_id()
            if upto > last:
                found = alerts.events_after(prefix, last, upto, limit=BATCH)
                items = []
                for e in found:
                    item = alerts.event_item(e)
                    if item is not None:
                        items.append((e.pk, item))
                named = alerts.for_user(alerts.named([i for _, i in items]), user)
                for (pk, _item), item in zip(items, named, strict=True):
                    yield _sse("alert", alerts.serialisable([item])[0], id=pk)
                last = found[-1].pk if len(found) >= BATCH else upto
            if time.monotonic() >= next_versions:
                next_versions = time.monotonic() + VERSION_SECONDS
                current = _versions()
                if current != versions:
                    versions = current
                    yield _sse("figures", {"versions": versions})
            if time.monotonic() >= next_ping:
                next_ping = time.monotonic() + PING_SECONDS
                yield ": ping\n\n"
            if user is not None and time.monotonic() >= next_user:
                next_user = time.monotonic() + USER_SECONDS
                if _user_state(user) != rights:
                    break
            if time.monotonic() >= next_release:
                next_release = time.monotonic() + RELEASE_SECONDS
                _release_connection()
            remaining = max_seconds - (time.monotonic() - started)
            if remaining <= 0:
                break
            time.sleep(min(poll, remaining))
    except GeneratorExit:
        closed_by_client = True
        raise
    except (DatabaseError, RuntimeError) as exc:  # database gone / closed under the stream (server or test ending)
        log.warning("dashboard live stream ended: %s", exc)
    finally:
        if not closed_by_client:
            with contextlib.suppress(DatabaseError, RuntimeError):
                _release_connection()


@require(Perm.DASHBOARD_VIEW)
def stream(request):
    region = selectors.region_of(request.scope, request.GET.get("region", ""))
    max_seconds = _max_seconds(request)
    resume = _resume_from(request)
    refresh = bool(getattr(settings, "DASHBOARD_STREAM_REFRESH", True))
    response = StreamingHttpResponse(events(region["code"], resume=resume, max_seconds=max_seconds, refresh=refresh,
                                            user=request.jk_user),
                                     content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
