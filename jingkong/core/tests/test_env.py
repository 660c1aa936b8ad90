from __future__ import annotations

from pathlib import Path

import pytest

from jingkong.core.env import ConfigError, env_bool, env_int, env_time_zone, parse_database_url


def test_sqlite_default_is_a_wal_file_in_the_data_dir(tmp_path):
    db = parse_database_url("sqlite://", data_dir=tmp_path)
    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert db["NAME"] == str(tmp_path / "jingkong.sqlite3")
    assert "journal_mode=WAL" in db["OPTIONS"]["init_command"]
    assert "synchronous=NORMAL" in db["OPTIONS"]["init_command"]


@pytest.mark.parametrize(
    ("url", "name"),
    [("sqlite:///var/x.db", "var/x.db"), ("sqlite:////srv/jk/x.db", "/srv/jk/x.db")],
)
def test_sqlite_relative_and_absolute_paths(url, name):
    assert parse_database_url(url, data_dir=Path("/unused"))["NAME"] == name


def test_postgres_url_is_parsed_with_persistent_connections():
    db = parse_database_url("postgres://jk:s%40cret@db.local:6432/jingkong?sslmode=require", data_dir=Path("."))
    assert (db["USER"], db["PASSWORD"], db["HOST"], db["PORT"], db["NAME"]) == ("jk", "s@cret", "db.local", "6432", "jingkong")
    assert db["OPTIONS"] == {"sslmode": "require"}
    assert db["CONN_MAX_AGE"] > 0 and db["CONN_HEALTH_CHECKS"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://x/y", "unsupported scheme"),
        ("postgres://host:5432/", "needs a database name"),
        ("sqlite://somehost/x.db", "three slashes"),
        ("postgres://host:notaport/db", "port is not a number"),
    ],
)
def test_bad_database_urls_say_what_is_wrong(url, message):
    with pytest.raises(ConfigError, match=message):
        parse_database_url(url, data_dir=Path("."))


def test_booleans_and_integers_are_strict():
    assert env_bool("X", environ={"X": "yes"}) is True
    assert env_bool("X", environ={"X": "0"}) is False
    assert env_bool("X", True, environ={}) is True
    with pytest.raises(ConfigError, match="X='maybe' is not a boolean"):
        env_bool("X", environ={"X": "maybe"})
    assert env_int("N", 3, environ={"N": "7"}) == 7
    with pytest.raises(ConfigError, match="not an integer"):
        env_int("N", 3, environ={"N": "seven"})
    with pytest.raises(ConfigError, match="at least 1"):
        env_int("N", 3, minimum=1, environ={"N": "0"})


def test_time_zone_must_exist():
    assert env_time_zone("TZ_", "Asia/Shanghai", environ={}) == "Asia/Shanghai"
    with pytest.raises(ConfigError, match="not a known IANA time zone"):
        env_time_zone("TZ_", "Asia/Shanghai", environ={"TZ_": "Mars/Olympus"})


def test_production_refuses_to_start_without_a_secret(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("JINGKONG_") and k != "PYTEST_CURRENT_TEST"}
    env["JINGKONG_DATA_DIR"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-m", "jingkong.cli", "--help"], env=env, capture_output=True, text=True)
    assert out.returncode == 2
    assert "JINGKONG_SECRET_KEY is required" in out.stderr
    env["JINGKONG_SECRET_KEY"] = "x" * 40
    ok = subprocess.run([sys.executable, "-m", "jingkong.cli", "--help"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    for command in ("demo", "serve", "worker", "manage"):
        assert command in ok.stdout


def test_cli_groups_and_unknown_commands(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("JINGKONG_")} | {
        "JINGKONG_DEBUG": "1", "JINGKONG_DATA_DIR": str(tmp_path)}
    run = lambda *a: subprocess.run([sys.executable, "-m", "jingkong.cli", *a], env=env, capture_output=True, text=True)  # noqa: E731
    group = run("import")
    assert group.returncode == 2 and "persons" in group.stderr and "regions" in group.stderr
    unknown = run("frobnicate")
    assert unknown.returncode == 2 and "unknown command" in unknown.stderr
    sub = run("import", "persons", "--help")
    assert sub.returncode == 0 and "--error-file" in sub.stdout
