"""Database-backed background jobs.

A long job (import, generation, full recompute) is a registered function ``fn(ctx, **params)`` that reports progress
through ``ctx``. The same function runs

* from the command line (:func:`run_now`), printing progress on the terminal, and
* in the server (:func:`enqueue`), picked up by the worker process that ``jingkong serve`` starts next to the web
  workers (``jingkong worker``), with progress visible through ``/api/v1/jobs/{id}``.

Claiming a job is one conditional UPDATE, so several workers never run the same job.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import close_old_connections, connection, transaction

from jingkong.core import clock
from jingkong.core.exceptions import ApplicationError, NotFound
from jingkong.core.models import Job

log = logging.getLogger(__name__)

JobFn = Callable[..., dict | None]
_REGISTRY: dict[str, JobFn] = {}


def register(kind: str) -> Callable[[JobFn], JobFn]:
    """Register ``fn(ctx, **params) -> result dict`` as the job ``kind``."""

    def decorator(fn: JobFn) -> JobFn:
        if kind in _REGISTRY and _REGISTRY[kind] is not fn:
            raise RuntimeError(f"job kind {kind!r} registered twice")
        _REGISTRY[kind] = fn
        return fn

    return decorator


_IDLE: list[Callable[[], object]] = []


def on_idle(fn: Callable[[], object]) -> Callable[[], object]:
    """Call ``fn()`` from the worker loop whenever the queue is empty (e.g. keeping the dashboard's figures current).

    Exceptions are logged and never stop the worker."""
    if fn not in _IDLE:
        _IDLE.append(fn)
    return fn


def _run_idle() -> None:
    for fn in list(_IDLE):
        try:
            fn()
        except Exception:
            log.exception("idle hook %s failed", getattr(fn, "__name__", fn))


def registered_kinds() -> list[str]:
    return sorted(_REGISTRY)


@dataclass
class JobContext:
    """Handed to a job function; reports progress to the job row (throttled) and optionally to a terminal."""

    job: Job
    echo: Callable[[str], None] | None = None
    min_interval: float = 0.5
    _last: float = field(default=0.0, init=False)

    @property
    def actor(self):
        return self.job.created_by

    def progress(self, done: int, total: int | None = None, message: str = "") -> None:
        now_mono = time.monotonic()
        final = total is not None and done >= total
        if not final and now_mono - self._last < self.min_interval:
            return
        self._last = now_mono
        fields = {"progress": done, "heartbeat_at": clock.now()}
        if total is not None:
            fields["total"] = total
        if message:
            fields["message"] = message
        Job.objects.filter(pk=self.job.pk).update(**fields)
        if self.echo:
            pct = f" {100 * done / total:5.1f}%" if total else ""
            self.echo(f"[{self.job.kind}]{pct} {done:,}{'/' + format(total, ',') if total else ''} {message}".rstrip())

    def log(self, message: str) -> None:
        Job.objects.filter(pk=self.job.pk).update(message=message, heartbeat_at=clock.now())
        if self.echo:
            self.echo(f"[{self.job.kind}] {message}")


def enqueue(kind: str, params: dict | None = None, *, actor=None, region_code: str = "") -> Job:
    """Queue a job for the background worker."""
    if kind not in _REGISTRY:
        raise NotFound(f"unknown job kind {kind!r}", extra={"known": registered_kinds()})
    with transaction.atomic():
        job = Job.objects.create(
            kind=kind,
            params=params or {},
            created_by=actor if getattr(actor, "pk", None) else None,
            region_code=region_code,
            created_at=clock.now(),
        )
        from jingkong.core.events import emit

        emit("job.queued", subject=job, region_code=region_code, actor=actor, payload={"kind": kind})
    return job


def _execute(job: Job, echo: Callable[[str], None] | None) -> Job:
    fn = _REGISTRY.get(job.kind)
    ctx = JobContext(job=job, echo=echo)
    try:
        if fn is None:
            raise ApplicationError(f"unknown job kind {job.kind!r}")
        result = fn(ctx, **job.params) or {}
        Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED, result=result, finished_at=clock.now())
    except Exception as exc:  # noqa: BLE001 - a job failure is recorded, never lost
        message = exc.message if isinstance(exc, ApplicationError) else f"{type(exc).__name__}: {exc}"
        Job.objects.filter(pk=job.pk).update(
            status=Job.Status.FAILED,
            message=message[:4000],
            result={"error": message, "traceback": traceback.format_exc()[-8000:]},
            finished_at=clock.now(),
        )
        if echo:
            echo(f"[{job.kind}] failed: {message}")
    job.refresh_from_db()
    return job


def run_now(kind: str, params: dict | None = None, *, actor=None, echo: Callable[[str], None] | None = None) -> Job:
    """Run a job in this process (the command line), recording it like a background job."""
    if kind not in _REGISTRY:
        raise NotFound(f"unknown job kind {kind!r}", extra={"known": registered_kinds()})
    job = Job.objects.create(
        kind=kind,
        params=params or {},
        created_by=actor if getattr(actor, "pk", None) else None,
        status=Job.Status.RUNNING,
        created_at=clock.now(),
        started_at=clock.now(),
    )
    return _execute(job, echo)


def claim_next() -> Job | None:
    """Atomically take the oldest queued job, or return None."""
    while True:
        candidate = Job.objects.filter(status=Job.Status.QUEUED).order_by("id").values_list("id", flat=True).first()
        if candidate is None:
            return None
        started = clock.now()
        taken = Job.objects.filter(pk=candidate, status=Job.Status.QUEUED).update(
            status=Job.Status.RUNNING, started_at=started, heartbeat_at=started
        )
        if taken:
            return Job.objects.get(pk=candidate)


def work(*, poll: float = 1.0, once: bool = False, echo: Callable[[str], None] | None = None) -> int:
    """The worker loop: run queued jobs one by one. Returns the number run (``once`` stops when the queue is empty)."""
    ran = 0
    while True:
        if not connection.in_atomic_block:  # a long-lived worker drops stale connections between jobs
            close_old_connections()
        job = claim_next()
        if job is None:
            if once:
                return ran
            _run_idle()
            time.sleep(poll)
            continue
        _execute(job, echo)
        ran += 1


def terminal_echo(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
