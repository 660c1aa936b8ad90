"""Priority and deadline of a service request (暖服务) — pure: no database, no clock.

Inputs: the ``services`` section of the policy profile in force, the request's category and subcategory, the person's
vulnerable-group flags (``people.Vulnerable`` bits) and the submission time. The rule:

* **Category and subcategory.** A subcategory listed in ``services.categories[category].subcategories`` gives the
  priority (1 = served first), the hours to delivery and whether an escort/transfer is requested (urgent medical needs:
  emergency, dialysis, chemotherapy, pregnancy check… as the profile says). Without a subcategory, the category's
  priority and hours apply and no escort.
* **Vulnerable groups.** Each group the person belongs to caps the priority at ``services.priority_by_group[group]``
  and the hours at ``services.priority_hours_by_group[group]``: the most urgent of all wins (a pregnant woman asking
  for food is served like the profile says for pregnant women, not like everyone's food).
* **Older profile versions** without ``services.categories`` (stored before the services feature): the hours come from
  ``priority_hours_by_category`` (medical_visit → ``medical_emergency``, medicine → ``medicine``, food → ``food``,
  everything else → ``daily_needs``), the priority is the rank of those hours (1 for the shortest), no escort; the
  answer says so in ``reasons`` so that the operator can install the newer profile.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

# Category identifiers (command.ServiceCategory) and vulnerable-group identifiers with their people.Vulnerable bit.
CATEGORIES = ("medicine", "medical_visit", "food", "garbage", "psychological", "other")
GROUP_BITS = (("elderly", 1), ("young_child", 2), ("pregnant", 4), ("chronic", 8), ("limited_mobility", 16))
# Legacy mapping of categories onto the first services fields (priority_hours_by_category).
LEGACY_HOURS_KEY = {"medical_visit": "medical_emergency", "medicine": "medicine", "food": "food"}


class UnknownCategory(ValueError):
    """The category (or subcategory) is not offered by the profile in force; ``field`` names which."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Triage:
    priority: int
    hours: int
    deadline: dt.datetime
    escort: bool
    groups: tuple[str, ...]  # the vulnerable groups that applied
    reasons: tuple[str, ...]  # short explanations (identifiers), e.g. "subcategory:dialysis", "group:pregnant"


def groups_of(vulnerable: int) -> tuple[str, ...]:
    return tuple(name for name, bit in GROUP_BITS if vulnerable & bit)


def subcategories(services, category: str) -> tuple[str, ...]:
    """The subcategory identifiers the profile offers for ``category`` (none for an older profile)."""
    cats = getattr(services, "categories", None)
    if not cats or category not in cats:
        return ()
    return tuple(cats[category].subcategories)


def triage(services, *, category: str, subcategory: str = "", vulnerable: int = 0,
           submitted_at: dt.datetime) -> Triage:
    """Priority, hours, deadline and escort for one request (see the module docstring)."""
    if category not in CATEGORIES:
        raise UnknownCategory("category", f"unknown category {category!r}")
    reasons: list[str] = []
    cats = getattr(services, "categories", None)
    escort = False
    if cats is not None:
        if category not in cats:
            raise UnknownCategory("category", f"the policy in force offers no {category!r} service")
        rule = cats[category]
        if subcategory:
            sub = rule.subcategories.get(subcategory)
            if sub is None:
                raise UnknownCategory("subcategory", f"{subcategory!r} is not a kind of {category!r} request")
            priority, hours, escort = sub.priority, sub.hours, sub.escort
            reasons.append(f"subcategory:{subcategory}")
        else:
            priority, hours = rule.priority, rule.hours
            reasons.append(f"category:{category}")
    else:
        by_cat = services.priority_hours_by_category
        ranked = sorted({by_cat.medical_emergency, by_cat.medicine, by_cat.food, by_cat.daily_needs})
        hours = getattr(by_cat, LEGACY_HOURS_KEY.get(category, "daily_needs"))
        priority = ranked.index(hours) + 1
        reasons.append("legacy_profile")
    groups = groups_of(vulnerable)
    by_group_prio = getattr(services, "priority_by_group", None)
    for group in groups:
        group_hours = getattr(services.priority_hours_by_group, group)
        group_prio = getattr(by_group_prio, group) if by_group_prio is not None else priority
        if group_hours < hours or group_prio < priority:
            reasons.append(f"group:{group}")
        hours = min(hours, group_hours)
        priority = min(priority, group_prio)
    return Triage(priority=priority, hours=hours, deadline=submitted_at + dt.timedelta(hours=hours), escort=escort,
                  groups=groups, reasons=tuple(reasons))


def confirmation_due(services, delivered_at: dt.datetime) -> dt.datetime | None:
    """When a delivered request closes itself if the resident has not answered (None: the profile sets no window)."""
    hours = getattr(services, "confirmation_window_hours", None)
    if hours is None:
        return None
    return delivered_at + dt.timedelta(hours=hours)


# Status flow (command.ServiceStatus): who may move a request from which status to which.
STAFF_TRANSITIONS = {
    "submitted": {"assigned", "in_progress", "cancelled"},
    "assigned": {"in_progress", "delivered", "cancelled"},
    "in_progress": {"delivered", "cancelled"},
    "delivered": {"in_progress"},  # reopened (e.g. the resident says it did not arrive)
    "confirmed": set(),
    "cancelled": set(),
}
RESIDENT_TRANSITIONS = {
    "submitted": {"cancelled"},
    "assigned": {"cancelled"},
    "delivered": {"confirmed", "in_progress"},  # confirm, or "not received" reopens it
}
OPEN_STATUSES = ("submitted", "assigned", "in_progress")


def may_move(current: str, target: str, *, by_resident: bool = False) -> bool:
    table = RESIDENT_TRANSITIONS if by_resident else STAFF_TRANSITIONS
    return target in table.get(current, set())
