"""`jingkong demo` and `jingkong serve` end to end, as a user runs them: real processes, embedded SQLite, no network."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

pytestmark = [
    pytest.mark.slow,
    # The demo always uses the embedded SQLite database; running it again in the PostgreSQL pass adds nothing.
    pytest.mark.skipif(os.environ.get("DATABASE_URL", "").startswith("postgres"),
                       reason="demo/serve run on the embedded SQLite default; covered by the SQLite pass"),
]


def _env(data_dir) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JINGKONG_", "DJANGO_")) and k != "DATABASE_URL"}
    env["JINGKONG_DATA_DIR"] = str(data_dir)
    return env


def _jingkong(*args, env, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jingkong.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=5) as r:
            return r.status, r.headers.get("Location", "")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Location", "")


def test_demo_prepares_reuses_and_serves(tmp_path):
    env = _env(tmp_path)
    first = _jingkong("demo", "--no-serve", "--population", "3000", "--days", "1", env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Demo accounts" in first.stdout and "commander /" in first.stdout
    assert (tmp_path / "jingkong.sqlite3").exists()
    accounts = json.loads((tmp_path / "demo-accounts.json").read_text())
    assert {"commander", "xinqi", "grid", "admin"} <= set(accounts)

    again = _jingkong("demo", "--no-serve", "--population", "3000", "--days", "1", env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "reusing it" in again.stdout
    assert f"commander / {accounts['commander']}" in again.stdout  # same accounts, not new ones

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "jingkong.cli", "serve", "--port", str(port), "--workers", "1"],
        env=env | {"JINGKONG_DEMO": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if _get(base + "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail("the server did not answer /healthz within 30 s")
        assert _get(base + "/login/")[0] == 200
        status, location = _get(base + "/")
        assert status == 302 and location.startswith("/login/")
        assert _get(base + "/api/v1/geo/regions")[0] == 401
        assert _get(base + "/api/v1/openapi.json")[0] == 200
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=30)
    assert server.returncode == 0, out[-3000:]


def test_serve_refuses_an_unmigrated_database(tmp_path):
    out = _jingkong("serve", "--port", str(_free_port()), env=_env(tmp_path) | {"JINGKONG_DEMO": "1"}, timeout=60)
    assert out.returncode != 0
    assert "unapplied migration" in out.stderr
