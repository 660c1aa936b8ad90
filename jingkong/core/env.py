"""Strict parsing of the environment into settings.

Every setting the platform reads from the environment is parsed here, and a bad value stops start-up with a message
that names the variable. Nothing here touches the database or the network.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class ConfigError(Exception):
    """A setting in the environment is missing or malformed."""


TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool = False, environ=os.environ) -> bool:
    raw = environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def env_int(name: str, default: int, *, minimum: int | None = None, environ=os.environ) -> int:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}")
    return value


def env_time_zone(name: str, default: str, environ=os.environ) -> str:
    value = environ.get(name) or default
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{name}={value!r} is not a known IANA time zone") from None
    return value


def parse_database_url(url: str, *, data_dir: Path) -> dict:
    """Turn a DATABASE_URL into a Django DATABASES entry.

    Supported: ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (``sqlite://`` alone means the default file in the data
    directory) and ``postgres://user:password@host:port/name`` (also ``postgresql://``).
    """
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    options = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    if scheme == "sqlite":
        path = unquote(parsed.path or "")
        if parsed.netloc:
            raise ConfigError("DATABASE_URL: write sqlite:///path/to/file.db (three slashes), not sqlite://host/...")
        if path in ("", "/"):
            name = data_dir / "jingkong.sqlite3"
        else:
            # sqlite:///var/db.sqlite3 is relative to the working directory; sqlite:////srv/db.sqlite3 is absolute.
            name = Path(path[1:])
        return sqlite_database(name)
    if scheme in ("postgres", "postgresql", "pgsql"):
        name = unquote(parsed.path.lstrip("/"))
        if not name:
            raise ConfigError("DATABASE_URL: a PostgreSQL URL needs a database name, e.g. postgres://user@host:5432/jingkong")
        try:
            port = parsed.port
        except ValueError:
            raise ConfigError("DATABASE_URL: the port is not a number") from None
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(port or ""),
            "CONN_MAX_AGE": 600,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": {k: v for k, v in options.items() if k in {"sslmode", "application_name", "connect_timeout"}},
            "TEST": {"NAME": options.get("test_name") or None},
        }
    raise ConfigError(f"DATABASE_URL: unsupported scheme {scheme!r} (use sqlite:/// or postgres://)")


def sqlite_database(path: Path) -> dict:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "CONN_MAX_AGE": 600,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            # WAL lets readers run beside the single writer; NORMAL is safe under WAL and much faster than FULL.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        },
    }
