from __future__ import annotations

import datetime as dt

from ninja import Schema


class JobOut(Schema):
    id: int
    kind: str
    status: str
    progress: int
    total: int | None
    message: str
    result: dict
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


class EventOut(Schema):
    id: int
    type: str
    subject_type: str
    subject_id: str
    region_code: str
    occurred_at: dt.datetime
    payload: dict
