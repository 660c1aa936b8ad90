"""In/Out schemas of the directives area of /api/v1/command/ (directives, tasks, field workers, problems, roll-up).
Times are ISO 8601 with a time zone (stored and answered in UTC)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from ninja import Schema
from pydantic import AfterValidator, Field

from jingkong.command import attachments, rules
from jingkong.command.models import Directive, FieldWorker, Problem, ProblemUpdate, Task, TaskReport
from jingkong.people.idnumber import phone_mask

CategoryT = Literal["sampling_sweep", "zone_enforcement", "contact_locating", "supply", "service", "publicity",
                    "other"]
ReportStatusT = Literal["in_progress", "done"]
TaskStatusFilterT = Literal["", "assigned", "acknowledged", "in_progress", "done", "cancelled"]
SourceFilterT = Literal["", "directive", "sweep_untested", "retest_pool", "locate_contact", "deliver", "service",
                        "problem"]
DirectiveStatusFilterT = Literal["", "open", "done", "cancelled"]
CategoryFilterT = Literal["", "sampling_sweep", "zone_enforcement", "contact_locating", "supply", "service",
                          "publicity", "other"]
WorkerRoleT = Literal["grid_worker", "building_captain", "volunteer"]
WorkerRoleFilterT = Literal["", "grid_worker", "building_captain", "volunteer"]
ProblemCategoryT = Literal["movement_in_lockdown", "unmanned_post", "queue_too_long", "supply_shortage", "data_error",
                           "other"]
ProblemCategoryFilterT = Literal["", "movement_in_lockdown", "unmanned_post", "queue_too_long", "supply_shortage",
                                 "data_error", "other"]
UrgencyT = Literal["normal", "urgent", "critical"]
UrgencyFilterT = Literal["", "normal", "urgent", "critical"]
ProblemStatusT = Literal["", "in_progress", "resolved", "rejected"]
ProblemStatusFilterT = Literal["", "open", "in_progress", "resolved", "rejected"]


def _no_nul(value: str) -> str:
    """PostgreSQL text cannot hold NUL characters (a DataError, i.e. a 500): refused at the door."""
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
RegionCode = Annotated[str, Field(pattern=r"^[0-9]{0,15}$")]
RequiredRegion = Annotated[str, Field(pattern=r"^[0-9]{6,15}$")]
Phone = Annotated[str, Field(pattern=r"^[0-9+\- ]{0,20}$")]


# --- directives -----------------------------------------------------------------------------------------------------


class AttachmentIn(Schema):
    type: Literal["untested_list", "contact_queue", "link"]
    campaign_id: int | None = Field(None, ge=1, le=2**62)
    url: Annotated[Text, Field(max_length=1000)] = ""
    label: Annotated[Text, Field(max_length=200)] = ""


class DirectiveIn(Schema):
    title: Annotated[Text, Field(min_length=1, max_length=255)]
    text: Annotated[Text, Field(min_length=1, max_length=20000)]
    category: CategoryT
    region_codes: list[RequiredRegion] = Field(min_length=1, max_length=200)
    deadline: dt.datetime
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=20)
    client_key: Annotated[Text, Field(max_length=64, description="Submission key: issuing again with the same key "
                                                                 "answers the first directive (200).")] = ""


class CancelIn(Schema):
    reason: Annotated[Text, Field(min_length=1, max_length=2000)]


class DirectiveOut(Schema):
    id: int
    ref: str
    title: str
    text: str
    category: str
    region_code: str
    targets: list[str]
    deadline: dt.datetime
    status: str
    attachments: list[dict]
    issued_by: str | None
    issued_at: dt.datetime
    progress: dict


class DirectivePage(Schema):
    count: int
    page: int
    page_size: int
    items: list[DirectiveOut]


class TreeNode(Schema):
    task_id: int
    region_code: str
    name: str
    level: str
    status: str
    deadline: dt.datetime
    assignee: str | None
    target_count: int
    done_count: int
    acknowledged_at: dt.datetime | None
    done_at: dt.datetime | None
    escalated_at: dt.datetime | None
    escalated_to: str
    overdue: bool
    leaves: int
    done: int
    overdue_leaves: int
    escalated: int
    percent: float | None
    children: list[TreeNode]


TreeNode.model_rebuild()


class DirectiveTreeOut(Schema):
    directive: DirectiveOut
    tree: list[TreeNode]


def directive_out(d: Directive, *, targets: list[str], progress: dict) -> dict:
    return {"id": d.pk, "ref": d.ref, "title": d.title, "text": d.text, "category": d.category,
            "region_code": d.region_code, "targets": targets, "deadline": d.deadline, "status": d.status,
            "attachments": d.attachments or [], "issued_by": d.issued_by.username if d.issued_by_id else None,
            "issued_at": d.issued_at, "progress": progress}


def tree_out(node: dict) -> dict:
    return {"task_id": node["id"], "region_code": node["region_code"], "name": node["name"], "level": node["level"],
            "status": node["status"], "deadline": node["deadline"], "assignee": node["assignee__name"],
            "target_count": node["target_count"], "done_count": node["done_count"],
            "acknowledged_at": node["acknowledged_at"], "done_at": node["done_at"],
            "escalated_at": node["escalated_at"], "escalated_to": node["escalated_to"] or "",
            "overdue": node["overdue_self"], "leaves": node["leaves"], "done": node["done"],
            "overdue_leaves": node["overdue"], "escalated": node["escalated"], "percent": node["percent"],
            "children": [tree_out(c) for c in node["children"]]}


# --- tasks ----------------------------------------------------------------------------------------------------------


class TaskOut(Schema):
    id: int
    title: str
    source: str
    source_key: str
    directive_ref: str | None
    parent_id: int | None
    region_code: str
    level: str
    building_id: int | None
    assignee_id: int | None
    assignee: str | None
    status: str
    deadline: dt.datetime
    overdue: bool
    target_count: int
    done_count: int
    progress: float
    acknowledged_at: dt.datetime | None
    done_at: dt.datetime | None
    escalated_at: dt.datetime | None
    escalated_to: str
    attachments: list[dict]
    payload: dict


class TaskPage(Schema):
    count: int
    page: int
    page_size: int
    items: list[TaskOut]


class ReportIn(Schema):
    status: ReportStatusT
    count: int | None = Field(None, ge=0, le=10_000_000)
    note: Annotated[Text, Field(max_length=4000)] = ""


class ReassignIn(Schema):
    worker_id: int = Field(ge=1, le=2**62)


class ReportOut(Schema):
    id: int
    task_id: int
    at: dt.datetime
    by: str | None
    status: str
    count: int | None
    note: str
    photo_url: str | None


class TaskDetailOut(TaskOut):
    reports: list[ReportOut]
    children: list[TaskOut]


class SweepIn(Schema):
    campaign_id: int = Field(ge=1, le=2**62)
    wave: int = Field(1, ge=1, le=1000)


class AutoTasksOut(Schema):
    created: int
    existing: int
    items: int


def task_out(t: Task, *, now: dt.datetime) -> dict:
    links = list((t.directive.attachments if t.directive_id else None) or (t.payload or {}).get("attachments") or [])
    payload = {k: v for k, v in (t.payload or {}).items() if k != "attachments"}
    return {"id": t.pk, "title": t.title, "source": t.source, "source_key": t.source_key,
            "directive_ref": t.directive.ref if t.directive_id else None, "parent_id": t.parent_id,
            "region_code": t.region_code, "level": t.level, "building_id": t.building_id,
            "assignee_id": t.assignee_id, "assignee": t.assignee.name if t.assignee_id else None,
            "status": t.status, "deadline": t.deadline,
            "overdue": t.status in rules.OPEN_TASK and t.deadline < now,
            "target_count": t.target_count, "done_count": t.done_count,
            "progress": rules.task_progress(status=t.status, done_count=t.done_count, target_count=t.target_count),
            "acknowledged_at": t.acknowledged_at, "done_at": t.done_at, "escalated_at": t.escalated_at,
            "escalated_to": t.escalated_to or "", "attachments": attachments.resolve(links, t.region_code),
            "payload": payload}


def report_out(r: TaskReport) -> dict:
    return {"id": r.pk, "task_id": r.task_id, "at": r.at, "by": r.by.username if r.by_id else None,
            "status": r.status, "count": r.count, "note": r.note,
            "photo_url": f"/command/photos/reports/{r.pk}/" if r.photo else None}


# --- field workers --------------------------------------------------------------------------------------------------


class WorkerIn(Schema):
    name: Annotated[Text, Field(min_length=1, max_length=64)]
    role: WorkerRoleT
    region_code: RequiredRegion
    phone: Phone = ""
    building_ids: list[Annotated[int, Field(ge=1, le=2**62)]] = Field(default_factory=list, max_length=500)
    user_id: int | None = Field(None, ge=1, le=2**62)


class WorkerUpdateIn(Schema):
    name: Annotated[Text, Field(min_length=1, max_length=64)] | None = None
    role: WorkerRoleT | None = None
    region_code: RequiredRegion | None = None
    phone: Phone | None = None
    building_ids: list[Annotated[int, Field(ge=1, le=2**62)]] | None = Field(None, max_length=500)
    user_id: int | None = Field(None, ge=0, le=2**62, description="0 unlinks the account")
    active: bool | None = None


class WorkerOut(Schema):
    id: int
    name: str
    role: str
    region_code: str
    phone: str
    building_ids: list[int]
    user: str | None
    active: bool
    open_tasks: int


def worker_out(w: FieldWorker, *, buildings: list[int], open_tasks: int, show_phone: bool) -> dict:
    return {"id": w.pk, "name": w.name, "role": w.role, "region_code": w.region_code,
            "phone": w.phone if show_phone else phone_mask(w.phone), "building_ids": sorted(buildings),
            "user": w.user.username if w.user_id else None, "active": w.active, "open_tasks": open_tasks}


# --- problems -------------------------------------------------------------------------------------------------------


class ProblemIn(Schema):
    category: ProblemCategoryT
    urgency: UrgencyT = "normal"
    description: Annotated[Text, Field(min_length=1, max_length=4000)]
    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)
    region_code: RegionCode = ""
    client_key: Annotated[Text, Field(max_length=64, description="Submission key: reporting again with the same "
                                                                 "key answers the first problem (200).")] = ""


class ProblemUpdateIn(Schema):
    status: ProblemStatusT = ""
    responsible_code: RegionCode = ""
    note: Annotated[Text, Field(max_length=4000)] = ""
    resolution: Annotated[Text, Field(max_length=4000)] = ""


class ProblemOut(Schema):
    id: int
    ref: str
    category: str
    urgency: str
    description: str
    region_code: str
    responsible_code: str
    lon: float | None
    lat: float | None
    photo_url: str | None
    status: str
    deadline: dt.datetime
    overdue: bool
    reported_by: str | None
    reported_at: dt.datetime
    resolved_at: dt.datetime | None
    resolution: str


class ProblemUpdateOut(Schema):
    id: int
    at: dt.datetime
    by: str | None
    status: str
    responsible_code: str
    note: str


class ProblemDetailOut(ProblemOut):
    history: list[ProblemUpdateOut]


class ProblemPage(Schema):
    count: int
    page: int
    page_size: int
    items: list[ProblemOut]


class ProblemCountsOut(Schema):
    region: dict
    streets: list[str]
    rows: list[dict]
    total: int


def problem_out(p: Problem, *, now: dt.datetime) -> dict:
    return {"id": p.pk, "ref": p.ref, "category": p.category, "urgency": p.urgency, "description": p.description,
            "region_code": p.region_code, "responsible_code": p.responsible_code, "lon": p.lon, "lat": p.lat,
            "photo_url": f"/command/photos/problems/{p.ref}/" if p.photo else None, "status": p.status,
            "deadline": p.deadline, "overdue": p.status in rules.OPEN_PROBLEM and p.deadline < now,
            "reported_by": p.reported_by.username if p.reported_by_id else None, "reported_at": p.reported_at,
            "resolved_at": p.resolved_at, "resolution": p.resolution}


def problem_update_out(u: ProblemUpdate) -> dict:
    return {"id": u.pk, "at": u.at, "by": u.by.username if u.by_id else None, "status": u.status,
            "responsible_code": u.responsible_code, "note": u.note}


# --- roll-up --------------------------------------------------------------------------------------------------------


class RollupRow(Schema):
    code: str
    name: str
    level: str
    direct: bool
    tasks: int
    open: int
    done: int
    overdue: int
    escalated: int
    unassigned: int
    percent_done: float | None
    problems_open: int
    problems_overdue: int
    problems_resolved: int
    problems_urgent: int


class RollupTotals(Schema):
    tasks: int
    open: int
    done: int
    overdue: int
    escalated: int
    unassigned: int
    percent_done: float | None
    problems_open: int
    problems_overdue: int
    problems_resolved: int
    problems_urgent: int


class RollupOut(Schema):
    region: dict
    level: str
    as_of: dt.datetime
    rows: list[RollupRow]
    totals: RollupTotals
