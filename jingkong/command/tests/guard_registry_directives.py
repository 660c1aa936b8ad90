"""Route-walk registrations of the directives area of /api/v1/command/: objects in street B for every path parameter
(directive, task, field worker, problem), bodies for writes, and writes whose body names street B.

Loaded by jingkong/access/tests/test_route_guard.py (factories, bodies) and test_scope_writes.py (WRITES_NAMING_B).
"""

from __future__ import annotations

import datetime as dt
import itertools

from jingkong.access.roles import Role
from jingkong.access.tests.test_route_guard import BODIES, factory

_serial = itertools.count(1)


def _directive(ctx):
    from jingkong.access.guard import Scope
    from jingkong.command.directives import directive_issue
    from jingkong.core import clock

    if "_command_directive" not in ctx.values:
        ctx.values["_command_directive"] = directive_issue(
            actor=None, scope=Scope(ctx.street.code), title=ctx.mark(f"越界指令{next(_serial)}"),
            text=ctx.mark("out-of-scope-directive-text"), category="other", region_codes=[ctx.street.code],
            deadline=clock.now() + dt.timedelta(days=1))
    return ctx.values["_command_directive"]


def _worker(ctx):
    from jingkong.command.models import FieldWorker

    if "_command_worker" not in ctx.values:
        ctx.values["_command_worker"] = FieldWorker.objects.create(
            name=ctx.mark(f"越界网格员{next(_serial)}"), role="grid_worker", region_code=ctx.grid.code,
            phone="13912345678")
    return ctx.values["_command_worker"]


@factory("task_id")
def _task_in_b(ctx):
    from jingkong.command.models import Task

    _worker(ctx)
    return Task.objects.get(directive=_directive(ctx), region_code=ctx.grid.code).pk


factory("directive_id")(lambda ctx: _directive(ctx).pk)
factory("worker_id")(lambda ctx: _worker(ctx).pk)


@factory("problem_id")
def _problem_in_b(ctx):
    from jingkong.command.models import Problem
    from jingkong.core import clock

    now = clock.now()
    return Problem.objects.create(
        ref=ctx.mark(f"WT-OOS-{next(_serial):04d}"), category="other", description=ctx.mark("越界问题描述"),
        urgency="normal", region_code=ctx.grid.code, responsible_code=ctx.grid.code, lon=121.825, lat=29.905,
        deadline=now + dt.timedelta(hours=4), reported_at=now).pk


BODIES.update({
    "POST /api/v1/command/directives/{directive_id}/cancel": lambda ctx: {"reason": "越界"},
    "POST /api/v1/command/tasks/{task_id}/report": lambda ctx: {"status": "in_progress", "count": 1},
    "POST /api/v1/command/tasks/{task_id}/reassign": lambda ctx: {"worker_id": 1},
    "PATCH /api/v1/command/workers/{worker_id}": lambda ctx: {"name": "改名"},
    "POST /api/v1/command/problems/{problem_id}/updates": lambda ctx: {"note": "越界"},
})


def _campaign_b(w):
    from jingkong.conftest import T0
    from jingkong.testing.models import Campaign

    street = w["regions"]["street_b"]
    return Campaign.objects.create(code="R-OOS-B", name="越界", region=street, region_code=street.code, starts_at=T0,
                                   deadline=T0 + dt.timedelta(hours=12), status="planned", mode="street",
                                   pool_size=10, created_at=T0, updated_at=T0)


WRITES_NAMING_B = {
    "POST /api/v1/command/directives": (Role.STREET_OFFICER, lambda w: {
        "title": "越界", "text": "x", "category": "other", "region_codes": [w["regions"]["grid_b1"].code],
        "deadline": "2030-01-01T00:00:00+08:00"}),
    "POST /api/v1/command/tasks/sweep": (Role.STREET_OFFICER, lambda w: {"campaign_id": _campaign_b(w).pk}),
    "POST /api/v1/command/workers": (Role.STREET_OFFICER, lambda w: {
        "name": "越界", "role": "volunteer", "region_code": w["regions"]["grid_b1"].code}),
    "POST /api/v1/command/problems": (Role.STREET_OFFICER, lambda w: {
        "category": "other", "description": "越界", "lon": 121.825, "lat": 29.905}),
}
