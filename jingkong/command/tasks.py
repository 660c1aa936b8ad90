"""Task services shared by directives and the loop: automatic tasks (:func:`create_auto_tasks`), acknowledging,
reporting with evidence (count, note, photo), reassigning, and rolling a finished task up its chain.

Every write runs in ``transaction.atomic`` with an audit record and a domain event. Automatic tasks are created
set-based and idempotently on ``(source, source_key)`` (the database's partial unique constraint decides).
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from jingkong.access import audit
from jingkong.access.guard import Scope
from jingkong.command import rules
from jingkong.command.models import Directive, DirectiveStatus, FieldWorker, Task, TaskReport, TaskSource, TaskStatus
from jingkong.command.workers import assignees_for
from jingkong.core import bulk, clock
from jingkong.core.events import emit, emit_many
from jingkong.core.exceptions import Conflict, NotFound, ValidationFailed

PHOTO_DIR = "command/photos"


class RulesMissing(Conflict):
    """No policy profile in force for the region, or one without the ``directives`` section (409, says what to do)."""

    code = "policy_rules_missing"


def directive_rules(region_code: str | None = None, at: dt.datetime | None = None) -> dict:
    """The ``directives`` section of the profile in force for the region, as plain data (raises RulesMissing)."""
    from jingkong.policy.schema import RulesIncomplete
    from jingkong.policy.selectors import PolicyNotActive, active_profile

    try:
        return active_profile(region_code=region_code or None, at=at).rules.section("directives").model_dump()
    except (PolicyNotActive, RulesIncomplete) as exc:
        raise RulesMissing(getattr(exc, "message", None) or str(exc), extra={"region": region_code or ""}) from None


def _invalid(exc: rules.RuleError) -> ValidationFailed:
    return ValidationFailed(str(exc), extra={"field": exc.field} if exc.field else {})


# --- automatic tasks ------------------------------------------------------------------------------------------------


def create_auto_tasks(source: str, items: Iterable[dict], *, at: dt.datetime | None = None, actor=None) -> dict:
    """Create tasks from the loop, one per item, idempotent on ``(source, source_key)``.

    An item: ``source_key`` (required, ≤ 64 characters), ``region_code`` (the place, normally a grid), ``title``,
    optional ``target_count``, ``deadline`` (default: the profile's ``directives.auto_task_hours[source]`` from
    ``at``), ``building_id``, ``payload`` (dict) and ``assignee_id`` (default: the worker covering the building or
    region, :func:`jingkong.command.workers.assignees_for`). Items whose key exists already are left as they are.

    Returns ``{"created": n, "existing": n, "task_ids": {source_key: id}}``. Runs in its own transaction (a savepoint
    when called inside one, e.g. from an event subscriber).
    """
    if source not in TaskSource.values or source == TaskSource.DIRECTIVE:
        raise ValidationFailed(f"unknown task source {source!r}", extra={"field": "source"})
    at = at or clock.now()
    items = [dict(i) for i in items]
    keys = []
    for n, item in enumerate(items):
        key = str(item.get("source_key") or "")
        if not key or len(key) > 64 or "\x00" in key:
            raise ValidationFailed(f"item {n}: source_key must be 1–64 characters", extra={"field": "source_key"})
        if not item.get("region_code"):
            raise ValidationFailed(f"item {n}: region_code is required", extra={"field": "region_code"})
        keys.append(key)
    unique = {}
    for item in items:  # the first item of a repeated key wins
        unique.setdefault(str(item["source_key"]), item)
    if not unique:
        return {"created": 0, "existing": 0, "task_ids": {}}
    with transaction.atomic():
        existing = _ids_by_key(source, list(unique))
        new = [item for key, item in unique.items() if key not in existing]
        hours = _auto_hours_by_region({i["region_code"] for i in new if not i.get("deadline")}, at)
        assignees = assignees_for({(i["region_code"], i.get("building_id")) for i in new
                                   if not i.get("assignee_id")})
        rows = []
        for item in new:
            try:
                deadline = item.get("deadline") or rules.auto_deadline(
                    source, at=at, auto_task_hours=hours.get(item["region_code"], {}))
            except rules.RuleError as exc:
                raise _invalid(exc) from None
            code = item["region_code"]
            rows.append(_AutoRow(
                source_key=str(item["source_key"]), title=str(item.get("title") or source)[:255], region_code=code,
                level=rules.level_of(code), building_id=item.get("building_id"),
                assignee_id=item.get("assignee_id") or assignees.get((code, item.get("building_id"))),
                deadline=deadline, target_count=max(0, int(item.get("target_count") or 0)),
                payload=item.get("payload") or {}))
        _insert_auto(source, rows, at)
        ids = _ids_by_key(source, list(unique))
        created_keys = [r.source_key for r in rows if r.source_key not in existing and r.source_key in ids]
        if created_keys:
            by_region: dict[str, list[int]] = defaultdict(list)
            for r in rows:
                if r.source_key in ids:
                    by_region[r.region_code].append(ids[r.source_key])
            emit_many([{"type": "command.tasks_created", "subject_type": "command.task", "subject_id": "",
                        "region_code": code, "at": at,
                        "payload": {"source": source, "count": len(task_ids), "task_ids": task_ids[:500]}}
                       for code, task_ids in sorted(by_region.items())], actor=actor)
            # One audit record for the batch (tasks are not person data; the ids are kept as ranges).
            import numpy as np

            from jingkong.people.importer import id_ranges

            created_ids = np.fromiter(sorted(ids[k] for k in created_keys), dtype=np.int64, count=len(created_keys))
            audit.record(actor=actor, action="task.create", object_type="command.task",
                         region_code=os.path.commonprefix(sorted(by_region)), source="loop",
                         detail={"source": source, "count": len(created_keys), "regions": len(by_region),
                                 "ids": id_ranges(created_ids)})
    return {"created": len(created_keys), "existing": len(existing), "task_ids": ids}


@dataclass
class _AutoRow:
    source_key: str
    title: str
    region_code: str
    level: str
    building_id: int | None
    assignee_id: int | None
    deadline: dt.datetime
    target_count: int
    payload: dict


_AUTO_COLUMNS = ("source", "source_key", "title", "region_code", "level", "building_id", "assignee_id", "status",
                 "deadline", "target_count", "done_count", "escalated_to", "payload", "created_at", "updated_at")


def _insert_auto(source: str, rows: list[_AutoRow], at: dt.datetime) -> None:
    """One prepared ``INSERT … ON CONFLICT DO NOTHING`` for all rows (executemany; a key inserted meanwhile by
    another transaction is skipped, not an error). The ORM's per-row preparation cost ~1 ms a row."""
    if not rows:
        return
    connection = transaction.get_connection()
    payload_field = Task._meta.get_field("payload")
    stamp = bulk.db_datetime(at)
    values = [(source, r.source_key, r.title, r.region_code, r.level, r.building_id, r.assignee_id,
               TaskStatus.ASSIGNED.value, bulk.db_datetime(r.deadline), r.target_count, 0, "",
               payload_field.get_db_prep_save(r.payload, connection), stamp, stamp) for r in rows]
    qn = connection.ops.quote_name
    sql = (f"INSERT INTO {qn(Task._meta.db_table)} ({', '.join(qn(c) for c in _AUTO_COLUMNS)}) "
           f"VALUES ({', '.join(['%s'] * len(_AUTO_COLUMNS))}) ON CONFLICT DO NOTHING")
    with connection.cursor() as cursor:
        for start in range(0, len(values), 2000):
            cursor.executemany(sql, values[start:start + 2000])


def _auto_hours_by_region(codes: set[str], at: dt.datetime) -> dict[str, dict]:
    """``directives.auto_task_hours`` in force for each region code. Regions under the same policy activations (the
    activation regions that are their ancestors) share one look-up: thousands of grids, a handful of profiles."""
    from jingkong.policy.models import PolicyActivation

    if not codes:
        return {}
    roots = sorted(set(PolicyActivation.objects.values_list("region__code", flat=True)))
    by_key: dict[tuple, dict] = {}
    out = {}
    for code in sorted(codes):
        key = tuple(r for r in roots if code.startswith(r))
        if key not in by_key:
            by_key[key] = directive_rules(code, at)["auto_task_hours"]
        out[code] = by_key[key]
    return out


def _ids_by_key(source: str, keys: list[str]) -> dict[str, int]:
    out = {}
    for start in range(0, len(keys), 900):
        chunk = keys[start:start + 900]
        out.update(Task.objects.filter(source=source, source_key__in=chunk).values_list("source_key", "pk"))
    return out


# --- working a task -------------------------------------------------------------------------------------------------


def _lock(task: Task) -> Task:
    return Task.objects.select_for_update().get(pk=task.pk)


def task_acknowledge(*, actor, task: Task, request=None) -> Task:
    with transaction.atomic():
        task = _lock(task)
        if task.status != TaskStatus.ASSIGNED:
            raise ValidationFailed(_("the task is %(status)s, not waiting to be acknowledged") % {"status": task.get_status_display()},
                                   extra={"field": "status"})
        now = clock.now()
        task.status, task.acknowledged_at, task.updated_at = TaskStatus.ACKNOWLEDGED, now, now
        task.save(update_fields=["status", "acknowledged_at", "updated_at"])
        TaskReport.objects.create(task=task, at=now, by=actor, status=task.status)
        audit.record(actor=actor, action="task.acknowledge", object_type="command.task", object_id=task.pk,
                     region_code=task.region_code, request=request)
        emit("command.task_acknowledged", subject=task, region_code=task.region_code, actor=actor,
             payload={"directive": task.directive_id, "source": task.source})
        _roll_up(task, now)
    return task


def task_report(*, actor, task: Task, status: str, count: int | None = None, note: str = "",
                photo: str = "", request=None) -> TaskReport:
    """Report progress (``in_progress``) or completion (``done``, with evidence) on a task without sub-tasks.

    ``count`` is the number done so far (e.g. households reached); ``photo`` a path stored by :func:`store_photo`."""
    note = (note or "").strip()
    with transaction.atomic():
        task = _lock(task)
        if Task.objects.filter(parent=task).exists():
            raise ValidationFailed(_("this task is done when all its sub-tasks are done; report on the sub-tasks"),
                                   extra={"field": "status"})
        try:
            rules.check_task_transition(task.status, status)
            if status == TaskStatus.DONE:
                rules.check_done_evidence(count=count, note=note, photo=bool(photo))
        except rules.RuleError as exc:
            raise _invalid(exc) from None
        now = clock.now()
        fields = ["status", "updated_at"]
        task.status, task.updated_at = status, now
        if task.acknowledged_at is None:
            task.acknowledged_at = now
            fields.append("acknowledged_at")
        if count is not None:
            task.done_count = count
            fields.append("done_count")
        if status == TaskStatus.DONE:
            task.done_at = now
            fields.append("done_at")
        task.save(update_fields=fields)
        report = TaskReport.objects.create(task=task, at=now, by=actor, status=status, count=count, note=note,
                                           photo=photo)
        audit.record(actor=actor, action="task.report", object_type="command.task", object_id=task.pk,
                     region_code=task.region_code, request=request,
                     detail={"status": status, "count": count, "photo": bool(photo)})
        emit("command.task_done" if status == TaskStatus.DONE else "command.task_reported", subject=task,
             region_code=task.region_code, actor=actor,
             payload={"directive": task.directive_id, "source": task.source, "source_key": task.source_key,
                      "status": status, "count": count})
        _roll_up(task, now)
    return report


def task_add_photo(*, actor, task: Task, upload, note: str = "", request=None) -> TaskReport:
    """Attach a photo to a task as a report in its current status (evidence after the fact)."""
    path = store_photo(upload)
    with transaction.atomic():
        task = _lock(task)
        now = clock.now()
        report = TaskReport.objects.create(task=task, at=now, by=actor, status=task.status, note=(note or "").strip(),
                                           photo=path)
        task.updated_at = now
        task.save(update_fields=["updated_at"])
        audit.record(actor=actor, action="task.photo", object_type="command.task", object_id=task.pk,
                     region_code=task.region_code, request=request)
        emit("command.task_reported", subject=task, region_code=task.region_code, actor=actor,
             payload={"directive": task.directive_id, "status": task.status, "photo": True})
    return report


def task_reassign(*, actor, scope: Scope, task: Task, worker_id: int, request=None) -> Task:
    worker = FieldWorker.objects.filter(pk=worker_id).first()
    if worker is None or not scope.contains(worker.region_code):
        raise NotFound(_("field worker not found"))
    if not worker.active:
        raise ValidationFailed(_("this field worker is not active"), extra={"field": "worker_id"})
    if not rules.nested(worker.region_code, task.region_code):
        raise ValidationFailed(_("%(name)s does not cover %(region)s (their area: %(area)s)") % {
            "name": worker.name, "region": task.region_code, "area": worker.region_code},
                               extra={"field": "worker_id"})
    with transaction.atomic():
        task = _lock(task)
        if task.status in rules.FINISHED_TASK:
            raise ValidationFailed(_("the task is %(status)s") % {"status": task.get_status_display()}, extra={"field": "status"})
        previous = task.assignee_id
        now = clock.now()
        task.assignee_id, task.updated_at = worker.pk, now
        if task.status == TaskStatus.ACKNOWLEDGED:  # the new worker acknowledges it themselves
            task.status, task.acknowledged_at = TaskStatus.ASSIGNED, None
        task.save(update_fields=["assignee", "status", "acknowledged_at", "updated_at"])
        TaskReport.objects.create(task=task, at=now, by=actor, status=task.status,
                                  note=f"reassigned to {worker.name}"[:500])
        audit.record(actor=actor, action="task.reassign", object_type="command.task", object_id=task.pk,
                     region_code=task.region_code, request=request, detail={"from": previous, "to": worker.pk})
        emit("command.task_reassigned", subject=task, region_code=task.region_code, actor=actor,
             payload={"from": previous, "to": worker.pk})
    return task


def _roll_up(task: Task, now: dt.datetime) -> None:
    """Carry a change up the chain: each parent becomes in progress / done from its children; the directive is done
    when all its top tasks are (at most four levels: a few small queries)."""
    parent_id = task.parent_id
    while parent_id:
        parent = Task.objects.select_for_update().get(pk=parent_id)
        children = list(Task.objects.filter(parent_id=parent_id).values_list("status", flat=True))
        status = rules.parent_status(children, parent.status)
        if status == parent.status:
            break
        parent.status, parent.updated_at = status, now
        fields = ["status", "updated_at"]
        if status == TaskStatus.DONE:
            parent.done_at = now
            fields.append("done_at")
        parent.save(update_fields=fields)
        if status == TaskStatus.DONE:
            emit("command.task_done", subject=parent, region_code=parent.region_code,
                 payload={"directive": parent.directive_id, "rolled_up": True})
        parent_id = parent.parent_id
    if task.directive_id:
        directive_refresh(task.directive_id, now)


def directive_refresh(directive_id: int, now: dt.datetime) -> None:
    open_roots = Task.objects.filter(directive_id=directive_id, parent__isnull=True) \
        .exclude(status__in=rules.FINISHED_TASK).exists()
    done_roots = Task.objects.filter(directive_id=directive_id, parent__isnull=True, status=TaskStatus.DONE).exists()
    if not open_roots and done_roots:
        updated = Directive.objects.filter(pk=directive_id, status=DirectiveStatus.OPEN) \
            .update(status=DirectiveStatus.DONE, updated_at=now)
        if updated:
            directive = Directive.objects.get(pk=directive_id)
            emit("command.directive_done", subject=directive, region_code=directive.region_code,
                 payload={"ref": directive.ref})


# --- photos ---------------------------------------------------------------------------------------------------------


def store_photo(upload) -> str:
    """Check an uploaded photo (size, JPEG/PNG/WebP by content) and store it under the data directory; return its
    path relative to the data directory."""
    if upload is None:
        raise ValidationFailed(_("no photo uploaded"), extra={"field": "photo"})
    size = getattr(upload, "size", None) or 0
    if size <= 0:
        raise ValidationFailed(_("the photo is empty"), extra={"field": "photo"})
    if size > rules.PHOTO_MAX_BYTES:
        raise ValidationFailed(_("the photo is larger than %(n)d MB") % {"n": rules.PHOTO_MAX_BYTES // (1024 * 1024)},
                               extra={"field": "photo"})
    upload.seek(0)
    head = upload.read(16)
    kind = rules.photo_kind(head)
    if kind is None:
        raise ValidationFailed(_("the photo must be a JPEG, PNG or WebP image"), extra={"field": "photo"})
    upload.seek(0)
    day = clock.now().strftime("%Y%m")
    relative = f"{PHOTO_DIR}/{day}/{uuid.uuid4().hex}.{kind[0]}"
    target = Path(settings.DATA_DIR) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out:
        for chunk in upload.chunks() if hasattr(upload, "chunks") else [upload.read()]:
            out.write(chunk)
    return relative


def photo_file(relative: str) -> tuple[Path, str]:
    """The stored file and its content type, or NotFound (also for paths that leave the photo folder)."""
    base = (Path(settings.DATA_DIR) / PHOTO_DIR).resolve()
    path = (Path(settings.DATA_DIR) / relative).resolve()
    if not relative or base not in path.parents or not path.is_file():
        raise NotFound("photo not found")
    with open(path, "rb") as f:
        kind = rules.photo_kind(f.read(16))
    if kind is None:
        raise NotFound("photo not found")
    return path, kind[1]


def open_task_filter() -> Q:
    return ~Q(status__in=rules.FINISHED_TASK)
