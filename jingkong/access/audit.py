"""Writing and exporting the audit log.

Who, when, what, from where: every write of person-level data and every read of a person's detail calls
:func:`record` (one object) or :func:`record_many` (lists, bulk imports) inside the service's transaction, e.g.::

    audit.record(actor=request.jk_user, action="person.read", object_type="people.person", object_id=person.pk,
                 region_code=person.grid.code, request=request)

Action names are ``<app-or-object>.<verb>`` (``person.read``, ``person.update``, ``token.create``, ``auth.login``).
The log is append-only (see :class:`jingkong.access.models.AuditLog`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Iterator
from zoneinfo import ZoneInfo

from jingkong.access.models import AuditLog
from jingkong.core import clock
from jingkong.core.exceptions import ValidationFailed

# Actions written by the access app itself.
LOGIN = "auth.login"
LOGIN_FAILED = "auth.login_failed"
LOGIN_LOCKED = "auth.login_locked"  # refused without checking the password: too many recent failures
LOGOUT = "auth.logout"
LOGIN_OBJECT = "access.login"  # object_type of login records; object_id is the username tried
EXPORT = "audit.export"

COLUMNS = ["id", "at", "username", "role", "action", "object_type", "object_id", "region_code", "ip", "user_agent",
           "detail"]


def _client(request) -> tuple[str | None, str]:
    if request is None:
        return None, ""
    meta = getattr(request, "META", {})
    ip = meta.get("REMOTE_ADDR") or None
    return ip, (meta.get("HTTP_USER_AGENT") or "")[:255]


def _actor_fields(actor) -> dict:
    return {
        "user": actor if getattr(actor, "pk", None) else None,
        "username": (getattr(actor, "username", "") or "system")[:150],
        "role": (getattr(actor, "role", "") or "")[:32],
    }


def record(
    *,
    actor,
    action: str,
    object_type: str = "",
    object_id: str | int = "",
    region_code: str = "",
    request=None,
    detail: dict | None = None,
    source: str = "",
) -> AuditLog:
    """Append one audit record. ``actor`` may be None for the system (e.g. a scheduled job).

    ``request`` (if any) gives the client address and user agent; ``source`` names a non-HTTP origin ("cli").
    """
    ip, agent = _client(request)
    if source and not agent:
        agent = source[:255]
    return AuditLog.objects.create(
        at=clock.now(),
        **_actor_fields(actor),
        action=action[:64],
        object_type=object_type[:64],
        object_id=str(object_id)[:64],
        region_code=region_code or "",
        ip=ip,
        user_agent=agent,
        detail=detail or {},
    )


def record_many(*, actor, action: str, object_type: str, items: Iterable[tuple[str, str]], request=None,
                detail: dict | None = None) -> int:
    """Audit many objects at once (lists, bulk imports): ``items`` yields ``(object_id, region_code)``."""
    ip, agent = _client(request)
    at = clock.now()
    who = _actor_fields(actor)
    rows = (
        AuditLog(
            at=at,
            **who,
            action=action[:64],
            object_type=object_type[:64],
            object_id=str(object_id)[:64],
            region_code=region_code or "",
            ip=ip,
            user_agent=agent,
            detail=detail or {},
        )
        for object_id, region_code in items
    )
    count = 0
    batch: list[AuditLog] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= 5000:
            AuditLog.objects.bulk_create(batch)
            count += len(batch)
            batch = []
    if batch:
        AuditLog.objects.bulk_create(batch)
        count += len(batch)
    return count


# --- time bounds for filters and exports -------------------------------------------------------------------------


def parse_time_bound(value: str | None, *, end: bool = False, tz: str | None = None) -> dt.datetime | None:
    """Parse a ``from``/``to`` bound: ``YYYY-MM-DD`` (a local day) or an ISO date-time (naive means local time).

    With ``end=True`` a bare date means the end of that day (the next midnight), so ``--to 2022-01-31`` includes the
    31st. Bounds are half-open: ``from <= at < to``.
    """
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    zone = ZoneInfo(tz or clock.local_time_zone())
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            start = dt.datetime.combine(day, dt.time(0), tzinfo=zone)
            return (start + dt.timedelta(days=1) if end else start).astimezone(dt.UTC)
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(
            f"invalid date or time {text!r}: use YYYY-MM-DD or an ISO date-time such as 2022-01-31T08:00:00+08:00",
            extra={"value": text},
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(dt.UTC)


# --- CSV export ----------------------------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str:
    """Neutralise spreadsheet formulas in free text (CSV injection): prefix them with an apostrophe."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def csv_row(row: AuditLog) -> list[str]:
    return [
        str(row.pk),
        row.at.astimezone(dt.UTC).isoformat(),
        _cell(row.username),
        row.role,
        _cell(row.action),
        _cell(row.object_type),
        _cell(row.object_id),
        row.region_code,
        row.ip or "",
        _cell(row.user_agent),
        _cell(json.dumps(row.detail, ensure_ascii=False, sort_keys=True) if row.detail else ""),
    ]


def csv_chunks(rows: Iterable[AuditLog], *, header: bool = True, chunk_rows: int = 1000) -> Iterator[str]:
    """The rows as CSV text, in chunks (for streaming responses and files)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if header:
        writer.writerow(COLUMNS)
    n = 0
    for row in rows:
        writer.writerow(csv_row(row))
        n += 1
        if n % chunk_rows == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue()


def write_csv(rows: Iterable[AuditLog], out) -> int:
    """Write the rows as CSV to a text file object; return how many rows were written."""
    count = 0

    def counted():
        nonlocal count
        for row in rows:
            count += 1
            yield row

    for chunk in csv_chunks(counted()):
        out.write(chunk)
    return count
