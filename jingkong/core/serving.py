"""Running the production server: gunicorn (sync gthread workers) for the web and API, plus the job worker.

Sync workers, not ASGI, for the API (see docs/architecture.md, "Serving"): Django's ASGI handler costs ~2.7× the CPU per
request. gthread gives long-lived streams (the dashboard's server-sent events) a thread each.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


def gunicorn_argv(*, host: str, port: int, workers: int, threads: int, timeout: int = 120) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn", "jingkong.wsgi:application",
        "--bind", f"{host}:{port}",
        "--workers", str(workers),
        "--worker-class", "gthread",
        "--threads", str(threads),
        "--timeout", str(timeout),
        "--graceful-timeout", "10",
        "--access-logfile", "-" if os.environ.get("JINGKONG_ACCESS_LOG") else "/dev/null",
        "--error-logfile", "-",
    ]


def worker_argv() -> list[str]:
    return [sys.executable, "-m", "jingkong.cli", "worker"]


def run(*, host: str, port: int, workers: int, threads: int, with_worker: bool = True, echo=print) -> int:
    """Start gunicorn (and the job worker) and wait; Ctrl-C or SIGTERM stops both cleanly."""
    env = dict(os.environ)
    procs = [subprocess.Popen(gunicorn_argv(host=host, port=port, workers=workers, threads=threads), env=env)]
    if with_worker:
        procs.append(subprocess.Popen(worker_argv(), env=env))
    echo(f"Jingkong is serving on http://{host}:{port}/  ({workers} workers × {threads} threads"
         f"{', plus the job worker' if with_worker else ''}). Ctrl-C stops it.")

    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = 0
    try:
        while not stopping:
            for p in procs:
                if p.poll() is not None:
                    echo(f"a server process exited with code {p.returncode}; stopping")
                    code = p.returncode or 1
                    stopping = True
            time.sleep(0.5)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
    return code
