"""Reads: profiles, activation history, and the rules in force for a region at an instant.

``active_profile`` is what every feature calls to get its rule values. It keeps a small in-process cache: the whole
activation timeline (a short, append-only table) and the parsed rules of each profile version (immutable). The cache is
cleared by ``profile_activate`` in this process and re-read whenever the table's fingerprint (row count, highest id)
changes, so an activation made by another process (a second web worker, the command line) is seen on the next call.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Max, Q, QuerySet

from jingkong.access.guard import Scope
from jingkong.core import clock
from jingkong.core.exceptions import NotFound
from jingkong.policy.models import PolicyActivation, PolicyProfile
from jingkong.policy.schema import PolicyRules


class PolicyNotActive(NotFound):
    """No profile has been activated for the region (or any ancestor) at or before the instant asked about."""

    code = "policy_not_active"


@dataclass(frozen=True)
class ActiveProfile:
    """The rules in force: the profile version, its parsed rules and the activation that put it in force."""

    profile: PolicyProfile
    rules: PolicyRules
    activation: PolicyActivation
    region_code: str  # the region asked about ('' when asked for the district as a whole)
    at: dt.datetime


@dataclass(frozen=True)
class _Entry:
    region_code: str
    is_root: bool
    activation: PolicyActivation

    @property
    def sort_key(self) -> tuple:
        # Latest in force wins; at the same instant the more specific region, then the later record.
        return (self.activation.activated_at, len(self.region_code), self.activation.pk)


_timeline: tuple[tuple[int, int | None], list[_Entry]] | None = None
_rules: dict[tuple[int, str], PolicyRules] = {}


def active_profile_cache_clear() -> None:
    """Forget the cached timeline and parsed rules (called on activation; safe to call at any time)."""
    global _timeline
    _timeline = None
    _rules.clear()


def _fingerprint() -> tuple[int, int | None]:
    agg = PolicyActivation.objects.aggregate(n=Count("id"), last=Max("id"))
    return agg["n"], agg["last"]


def _entries() -> list[_Entry]:
    global _timeline
    fingerprint = _fingerprint()
    cached = _timeline
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    rows = PolicyActivation.objects.select_related("region", "profile", "activated_by").order_by("id")
    entries = [_Entry(region_code=a.region.code, is_root=a.region.parent_id is None, activation=a) for a in rows]
    _timeline = (fingerprint, entries)
    return entries


def profile_rules(profile: PolicyProfile) -> PolicyRules:
    """The parsed rules of a stored profile version (cached: versions never change)."""
    key = (profile.pk, profile.content_hash)
    rules = _rules.get(key)
    if rules is None:
        rules = PolicyRules.model_validate(profile.rules)
        _rules[key] = rules
    return rules


def active_profile(*, region_code: str | None = None, at: dt.datetime | None = None) -> ActiveProfile:
    """The profile in force for ``region_code`` at ``at`` (default: now).

    It is the latest activation at or before ``at`` on the region itself or any ancestor (region codes are prefixes of
    their descendants' codes), so a district-wide activation replaces earlier street-level ones and a later street
    activation applies to that street only. ``region_code=None`` asks about the district as a whole (activations on
    top-level regions). A replayed demo passes its virtual ``at`` and sees the rules in force at that time.
    """
    at = at or clock.now()
    if at.tzinfo is None:
        raise ValueError("active_profile(at=...) needs an aware datetime")
    best: _Entry | None = None
    for entry in _entries():
        if entry.activation.activated_at > at:
            continue
        if region_code is None:
            if not entry.is_root:
                continue
        elif not region_code.startswith(entry.region_code):
            continue
        if best is None or entry.sort_key > best.sort_key:
            best = entry
    if best is None:
        where = f"region {region_code}" if region_code else "the district"
        raise PolicyNotActive(
            f"no policy profile is active for {where} at {at.isoformat()}",
            extra={"region_code": region_code or "", "at": at.isoformat()},
        )
    activation = best.activation
    return ActiveProfile(
        profile=activation.profile,
        rules=profile_rules(activation.profile),
        activation=activation,
        region_code=region_code or "",
        at=at,
    )


def profile_list(*, code: str | None = None, latest_only: bool = False) -> list[PolicyProfile]:
    """Profile versions ordered by code and version; ``latest_only`` keeps the highest version of each code."""
    qs = PolicyProfile.objects.select_related("created_by").order_by("code", "version")
    if code:
        qs = qs.filter(code=code)
    rows = list(qs)
    if latest_only:
        latest: dict[str, PolicyProfile] = {}
        for row in rows:
            latest[row.code] = row
        rows = list(latest.values())
    return rows


def profile_get(*, code: str, version: int | None = None) -> PolicyProfile:
    """One profile version (the latest when ``version`` is None)."""
    qs = PolicyProfile.objects.select_related("created_by").filter(code=code)
    row = qs.filter(version=version).first() if version is not None else qs.order_by("-version").first()
    if row is None:
        raise NotFound(f"policy profile {code}{f' version {version}' if version is not None else ''} not found",
                       code="profile_not_found")
    return row


def activation_list(*, scope: Scope, limit: int = 200) -> QuerySet[PolicyActivation]:
    """Activations that concern the scope: on regions inside it and on its ancestors (which apply to it), newest first."""
    qs = PolicyActivation.objects.select_related("region", "profile", "activated_by")
    if scope.prefix is None:
        return qs.none()
    if scope.prefix:
        ancestors = [scope.prefix[:i] for i in range(1, len(scope.prefix))]
        qs = qs.filter(scope.q("region__code") | Q(region__code__in=ancestors))
    return qs.order_by("-activated_at", "-id")[: max(1, min(limit, 1000))]
