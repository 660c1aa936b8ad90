"""Helpers shared by the policy commands (argument parsing only; the work is in services and selectors)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.core.management.base import CommandError

from jingkong.core import clock


def parse_at(text: str | None) -> dt.datetime | None:
    """An ISO date-time; without an offset it is read in the platform's time zone."""
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--at {text!r} is not an ISO date-time (e.g. 2022-01-01T00:00+08:00)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(clock.local_time_zone()))
    return value


def actor_for(username: str | None):
    """The user a command acts as (``--user``), or None for the system."""
    if not username:
        return None
    from jingkong.access.models import User

    user = User.objects.filter(username=username, is_active=True).first()
    if user is None:
        raise CommandError(f"--user {username!r}: no such active user")
    return user
