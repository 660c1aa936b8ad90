"""Pure rules of directives, tasks and problems found (no database; tested directly in tests/test_directive_rules.py).

Region codes are division codes (district 6 digits, street 9, community 12, grid 15): a region's parent is its code
cut to the level above, which is what escalation ("to the level above") and problem routing use. Rule values come
from the policy profile's ``directives`` section (jingkong.policy.schema.DirectiveRules), passed in by the caller.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.utils.translation import gettext as _

from jingkong.geo.rules import CODE_LENGTH

LEVELS = ("district", "street", "community", "grid")  # top → bottom
LEVEL_RANK = {level: i for i, level in enumerate(LEVELS)}
LENGTH_LEVEL = {n: level for level, n in CODE_LENGTH.items()}

OPEN_TASK = ("assigned", "acknowledged", "in_progress")
FINISHED_TASK = ("done", "cancelled")
OPEN_PROBLEM = ("open", "in_progress")
AUTO_SOURCES = ("sweep_untested", "retest_pool", "locate_contact", "deliver")

# Which statuses a task may be reported in, from which.
TASK_NEXT = {
    "assigned": ("acknowledged", "in_progress", "done"),
    "acknowledged": ("in_progress", "done"),
    "in_progress": ("in_progress", "done"),
    "done": (),
    "cancelled": (),
}
PROBLEM_NEXT = {
    "open": ("in_progress", "resolved", "rejected"),
    "in_progress": ("in_progress", "resolved", "rejected"),
    "resolved": ("in_progress",),  # reopened: the fix did not hold
    "rejected": ("in_progress",),
}


class RuleError(ValueError):
    """Input that breaks a rule: ``field`` names what is wrong (the API answers 422 naming it)."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


def level_of(code: str) -> str:
    """The level of a division code by its length; unknown lengths read as the deepest level they reach."""
    n = len(code or "")
    if n in LENGTH_LEVEL:
        return LENGTH_LEVEL[n]
    return "grid" if n > CODE_LENGTH["grid"] else "district"


def parent_code(code: str) -> str:
    """The code of the level above (``""`` for a district)."""
    level = level_of(code)
    rank = LEVEL_RANK[level]
    if rank == 0:
        return ""
    return code[: CODE_LENGTH[LEVELS[rank - 1]]]


def code_at_level(code: str, level: str) -> str:
    """The ancestor (or the region itself) of ``code`` at ``level``; the region itself when it is above ``level``."""
    n = CODE_LENGTH[level]
    return code[:n] if len(code) >= n else code


def higher_level(a: str, b: str) -> str:
    """The more senior of two levels (street is higher than grid)."""
    return a if LEVEL_RANK[a] <= LEVEL_RANK[b] else b


def nested(a: str, b: str) -> bool:
    """One region lies inside the other (or they are the same)."""
    return a.startswith(b) or b.startswith(a)


def outermost(codes: Iterable[str]) -> list[str]:
    """The codes that are not inside another code of the list (a directive to a street and one of its communities
    goes to the street once), sorted, duplicates removed."""
    out: list[str] = []
    for code in sorted(set(codes), key=lambda c: (len(c), c)):
        if not any(code.startswith(kept) for kept in out):
            out.append(code)
    return sorted(out)


# --- tasks ----------------------------------------------------------------------------------------------------------


def task_escalation_due(*, level: str, status: str, deadline: dt.datetime, escalated: bool, now: dt.datetime,
                        grace_hours: dict[str, int]) -> bool:
    """An unfinished, not yet escalated task escalates once ``grace_hours[level]`` have passed since its deadline.
    District tasks have no level above."""
    if escalated or status not in OPEN_TASK or level not in grace_hours:
        return False
    return now >= deadline + dt.timedelta(hours=grace_hours[level])


def escalation_cutoffs(now: dt.datetime, grace_hours: dict[str, int]) -> dict[str, dt.datetime]:
    """Per level: tasks with a deadline at or before this instant are due to escalate (set-based form of the rule)."""
    return {level: now - dt.timedelta(hours=hours) for level, hours in grace_hours.items()}


def check_task_transition(current: str, new: str) -> None:
    if new not in TASK_NEXT.get(current, ()):
        raise RuleError(_("a task that is %(current)s cannot be reported %(new)s") % {"current": current, "new": new}, "status")


def check_done_evidence(*, count: int | None, note: str, photo: bool) -> None:
    """Done needs evidence: a count, a note or a photo."""
    if count is None and not note.strip() and not photo:
        raise RuleError(_("reporting a task done needs evidence: a count, a note or a photo"), "count")


def percent(done: int, total: int) -> float | None:
    return round(100.0 * done / total, 1) if total else None


def task_progress(*, status: str, done_count: int, target_count: int) -> float:
    """Progress of one task in per cent: done = 100; otherwise the reported count against the target (capped below
    100 until it is reported done)."""
    if status == "done":
        return 100.0
    if status == "cancelled" or not target_count:
        return 0.0
    return min(99.9, round(100.0 * done_count / target_count, 1))


def parent_status(child_statuses: Iterable[str], current: str) -> str:
    """A parent is done when all its children are finished (done or cancelled, at least one done); in progress once
    any child moved; otherwise it keeps its own status."""
    statuses = list(child_statuses)
    if current == "cancelled":
        return current
    if statuses and all(s in FINISHED_TASK for s in statuses) and any(s == "done" for s in statuses):
        return "done"
    if any(s in ("in_progress", "done", "acknowledged") for s in statuses) and current in ("assigned", "acknowledged",
                                                                                              "done"):
        return "in_progress"
    return current


def auto_deadline(source: str, *, at: dt.datetime, auto_task_hours: dict[str, int]) -> dt.datetime:
    if source not in auto_task_hours:
        raise RuleError(f"no default deadline for {source!r} tasks: give a deadline", "deadline")
    return at + dt.timedelta(hours=auto_task_hours[source])


# --- problems -------------------------------------------------------------------------------------------------------


def problem_level(*, category: str, urgency: str, routing: dict) -> str:
    """The level a problem is routed to: the higher of its category's level and its urgency's level."""
    by_category = routing.get("by_category") or {}
    level = by_category.get(category, routing["default_level"])
    return higher_level(level, routing["by_urgency"][urgency])


def problem_responsible(grid_code: str, *, category: str, urgency: str, routing: dict) -> str:
    return code_at_level(grid_code, problem_level(category=category, urgency=urgency, routing=routing))


def problem_deadline(urgency: str, *, at: dt.datetime, hours_by_urgency: dict[str, int]) -> dt.datetime:
    return at + dt.timedelta(hours=hours_by_urgency[urgency])


def problem_escalation_due(*, status: str, deadline: dt.datetime, responsible_code: str, now: dt.datetime,
                           grace_hours: int) -> bool:
    """An unresolved problem moves up one level once ``grace_hours`` passed since its deadline (not above the
    district)."""
    if status not in OPEN_PROBLEM or level_of(responsible_code) == "district":
        return False
    return now >= deadline + dt.timedelta(hours=grace_hours)


def check_problem_transition(current: str, new: str) -> None:
    if new not in PROBLEM_NEXT.get(current, ()):
        raise RuleError(_("a problem that is %(current)s cannot become %(new)s") % {"current": current, "new": new}, "status")


# --- photos ---------------------------------------------------------------------------------------------------------

PHOTO_MAX_BYTES = 8 * 1024 * 1024
_SIGNATURES = (
    (b"\xff\xd8\xff", "jpg", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png", "image/png"),
)


def photo_kind(head: bytes) -> tuple[str, str] | None:
    """``(extension, content type)`` of a JPEG, PNG or WebP by its first bytes (not its name), else None."""
    for signature, ext, ctype in _SIGNATURES:
        if head.startswith(signature):
            return ext, ctype
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp", "image/webp"
    return None
