"""Writes of testing rounds: campaigns, their areas (mode and pool size), sampling sites and their samplers, and the
building → site assignment with time slots.

Every write runs in one transaction with its domain event (``testing.*``); person-level reads made on the way (the
door-to-door lists) are audited by the caller. A campaign's region must lie inside the actor's scope, and so must a
site's and an area's. Pool sizes come from the policy profile in force (``testing.pool_sizes_allowed``, defaults per
zone type, where one tube per household is allowed) — never from code.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import defaultdict
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from jingkong.access.guard import Scope, scope_of
from jingkong.access.roles import Perm
from jingkong.core import bulk, clock
from jingkong.core.events import emit
from jingkong.core.exceptions import Conflict, ValidationFailed
from jingkong.geo.models import Building, Region
from jingkong.people.models import Industry, Person
from jingkong.policy.schema import RulesIncomplete
from jingkong.policy.selectors import PolicyNotActive, active_profile
from jingkong.testing import planning, selectors
from jingkong.testing.models import (
    Campaign,
    CampaignArea,
    CampaignStatus,
    Mode,
    SamplingSite,
    SiteAssignment,
    SiteKind,
)

MAX_ROUND_DAYS = 31
EDITABLE_CAMPAIGN = ("name", "note", "starts_at", "deadline", "mode", "pool_size", "key_industry")
EDITABLE_SITE = ("name", "kind", "region_code", "lon", "lat", "desks", "staff", "capacity_per_hour", "opens_at",
                 "closes_at", "active")


def _invalid(field: str, message: str, **extra) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", extra={"field": field, **extra})


# --- policy ----------------------------------------------------------------------------------------------------------


def testing_rules(region_code: str | None, at: dt.datetime | None = None):
    """(active profile, its testing rules, its zone rules) for the region, or a 422 saying what to do."""
    try:
        found = active_profile(region_code=region_code or None, at=at or clock.now())
        return found, found.rules.section("testing"), found.rules.section("zones")
    except PolicyNotActive as exc:
        raise ValidationFailed(f"no policy profile is in force for region {region_code}: activate one first "
                               f"({exc.message})", code="policy_not_active", extra={"field": "region_code"}) from None
    except RulesIncomplete as exc:
        raise ValidationFailed(str(exc), code="policy_incomplete", extra={"field": "pool_size"}) from None


def _check_pool_size(size: int, allowed: list[int], field: str = "pool_size") -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size not in allowed:
        raise _invalid(field, f"{size} is not a pool size the policy in force allows ({allowed})", allowed=allowed)
    return size


def _profile_label(found) -> str:
    return f"{found.profile.code} v{found.profile.version}"


# Labels of the policy's zone types (identifiers in jingkong.policy.schema.ZoneType), for pages and notes.
ZONE_LABELS = {
    "lockdown": gettext_lazy("lockdown zone"),
    "control": gettext_lazy("control zone"),
    "prevention": gettext_lazy("prevention zone"),
    "high_risk": gettext_lazy("high-risk area"),
    "medium_risk": gettext_lazy("medium-risk area"),
    "low_risk": gettext_lazy("low-risk area"),
}


def zone_label(zone_type: str) -> str:
    """The zone type's label in the active language (an unknown identifier is shown as it is)."""
    return str(ZONE_LABELS.get(zone_type, zone_type))


def pool_label(size: int | None) -> str:
    """A pool size's label: "10-in-1" (10合1) for ten swabs per tube, "single tube" (单管) for one."""
    if size == 1:
        return _("single tube")
    return _("%(n)s-in-1") % {"n": size}


# --- regions and times -----------------------------------------------------------------------------------------------


def _region_in_scope(scope: Scope, code: str, field: str = "region_code") -> Region:
    code = (code or "").strip()
    region = Region.objects.filter(code=code).first() if code and "\x00" not in code else None
    if region is None or not scope.contains(region.code):
        raise _invalid(field, f"unknown region {code!r} (or outside your area)")
    return region


def _aware(value: dt.datetime, field: str) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise _invalid(field, "a date and time is required")
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(clock.local_time_zone()))
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:  # year 1 local time, or an offset pushing year 9999 past the calendar
        raise _invalid(field, "out of range: rounds lie between 2000 and one year from now") from None


EARLIEST_START = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def _check_window(starts_at: dt.datetime, deadline: dt.datetime) -> None:
    if not EARLIEST_START <= starts_at <= clock.now() + dt.timedelta(days=366):
        raise _invalid("starts_at", "a round starts between 2000 and one year from now")
    if deadline <= starts_at:
        raise _invalid("deadline", "the deadline must be after the start")
    if deadline - starts_at > dt.timedelta(days=MAX_ROUND_DAYS):
        raise _invalid("deadline", f"a round lasts at most {MAX_ROUND_DAYS} days")


def _check_mode(mode: str, field: str = "mode") -> str:
    if mode not in Mode.values:
        raise _invalid(field, f"unknown mode {mode!r}; one of {Mode.values}")
    return mode


def _check_industry(value: str) -> str:
    value = (value or "").strip()
    if value and value not in Industry.values:
        raise _invalid("key_industry", f"unknown key industry {value!r}; one of {[v for v in Industry.values if v]}")
    return value


def _check_text(value: str, field: str, max_length: int, required: bool = True) -> str:
    value = (value or "").strip()
    if required and not value:
        raise _invalid(field, "must not be empty")
    if "\x00" in value:  # PostgreSQL text cannot hold it (a DataError, i.e. a 500, there)
        raise _invalid(field, "contains a NUL character")
    if len(value) > max_length:
        raise _invalid(field, f"at most {max_length} characters")
    return value


_CODE = re.compile(r"[^\s\"'\\\x00-\x1f\x7f]+")


def _check_code(value: str, field: str = "code") -> str:
    """An optional code: one token — no blanks, line breaks, quotes or backslashes (it names files and URLs)."""
    value = _check_text(value, field, 40, required=False)
    if value and not _CODE.fullmatch(value):
        raise _invalid(field, f"{value!r}: a code is one word without blanks, quotes or backslashes")
    return value


def _open(campaign: Campaign) -> None:
    if campaign.status == CampaignStatus.CLOSED:
        raise Conflict(f"round {campaign.code} is closed: it can no longer be changed", code="campaign_closed")


def _unique_code(model, base: str) -> str:
    code, n = base, 1
    while model.objects.filter(code=code).exists():
        n += 1
        code = f"{base}-{n}"
    return code


# --- campaigns -------------------------------------------------------------------------------------------------------


@transaction.atomic
def campaign_create(*, actor, scope: Scope, name: str, region_code: str, starts_at: dt.datetime,
                    deadline: dt.datetime, mode: str = Mode.STREET, pool_size: int | None = None,
                    key_industry: str = "", code: str = "", note: str = "") -> Campaign:
    """Plan a round for a region inside the actor's scope. The pool size defaults to the largest the policy allows."""
    name = _check_text(name, "name", 128)
    region = _region_in_scope(scope, region_code)
    starts_at, deadline = _aware(starts_at, "starts_at"), _aware(deadline, "deadline")
    _check_window(starts_at, deadline)
    _check_mode(mode)
    key_industry = _check_industry(key_industry)
    found, rules, _zones = testing_rules(region.code)
    pool_size = _check_pool_size(pool_size if pool_size is not None else max(rules.pool_sizes_allowed),
                                 rules.pool_sizes_allowed)
    local_day = starts_at.astimezone(ZoneInfo(clock.local_time_zone())).date()
    code = _check_code(code) or _unique_code(Campaign, f"R{local_day:%Y%m%d}-{region.code}")
    now = clock.now()
    campaign = Campaign(code=code, name=name, region=region, region_code=region.code, key_industry=key_industry,
                        mode=mode, pool_size=pool_size, starts_at=starts_at, deadline=deadline,
                        policy_profile=_profile_label(found), note=_check_text(note, "note", 5000, required=False),
                        created_by=actor if getattr(actor, "pk", None) else None, created_at=now, updated_at=now)
    try:
        with transaction.atomic():
            campaign.save(force_insert=True)
    except IntegrityError:
        raise Conflict(f"a round with code {code!r} exists already", code="campaign_code_taken",
                       extra={"field": "code"}) from None
    emit("testing.campaign_created", subject=campaign, region_code=region.code, actor=actor,
         payload={"code": code, "name": name, "mode": mode, "pool_size": pool_size, "key_industry": key_industry,
                  "starts_at": starts_at.isoformat(), "deadline": deadline.isoformat(),
                  "policy_profile": campaign.policy_profile})
    return campaign


@transaction.atomic
def campaign_update(*, actor, scope: Scope, campaign: Campaign, **changes) -> Campaign:
    """Change a planned or running round's settings (start time and key group only before it starts)."""
    _open(campaign)
    unknown = set(changes) - set(EDITABLE_CAMPAIGN)
    if unknown:
        raise _invalid(sorted(unknown)[0], "cannot be changed")
    if campaign.status != CampaignStatus.PLANNED:
        for field in ("starts_at", "key_industry"):
            if field in changes and changes[field] != getattr(campaign, field):
                raise Conflict(f"{field}: the round is running; this can be changed only before it starts",
                               code="campaign_running", extra={"field": field})
    changed = {}
    for field, value in changes.items():
        if value is None:
            continue
        if field == "name":
            value = _check_text(value, "name", 128)
        elif field == "note":
            value = _check_text(value, "note", 5000, required=False)
        elif field in ("starts_at", "deadline"):
            value = _aware(value, field)
        elif field == "mode":
            value = _check_mode(value)
        elif field == "pool_size":
            _found, rules, _zones = testing_rules(campaign.region_code)
            value = _check_pool_size(value, rules.pool_sizes_allowed)
        elif field == "key_industry":
            value = _check_industry(value)
        if getattr(campaign, field) != value:
            changed[field] = value
    if not changed:
        return campaign
    starts_at = changed.get("starts_at", campaign.starts_at)
    deadline = changed.get("deadline", campaign.deadline)
    _check_window(starts_at, deadline)
    if "deadline" in changed and campaign.status == CampaignStatus.RUNNING and deadline <= clock.now():
        raise _invalid("deadline", "a running round's deadline must lie in the future")
    for field, value in changed.items():
        setattr(campaign, field, value)
    campaign.updated_at = clock.now()
    campaign.save(update_fields=[*changed, "updated_at"])
    emit("testing.campaign_updated", subject=campaign, region_code=campaign.region_code, actor=actor,
         payload={k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in changed.items()})
    return campaign


@transaction.atomic
def campaign_start(*, actor, scope: Scope, campaign: Campaign) -> Campaign:
    """planned → running. Starting before the planned start moves the start to now."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != CampaignStatus.PLANNED:
        raise Conflict(f"round {campaign.code} is {campaign.status}: only a planned round can be started",
                       code="campaign_not_planned")
    now = clock.now()
    if now >= campaign.deadline:
        raise Conflict("the deadline has passed: move the deadline before starting the round",
                       code="campaign_deadline_passed", extra={"field": "deadline"})
    fields = ["status", "updated_at"]
    if now < campaign.starts_at:
        campaign.starts_at = now
        fields.append("starts_at")
    campaign.status = CampaignStatus.RUNNING
    campaign.updated_at = now
    campaign.save(update_fields=fields)
    emit("testing.campaign_started", subject=campaign, region_code=campaign.region_code, actor=actor,
         payload={"code": campaign.code, "starts_at": campaign.starts_at.isoformat(),
                  "deadline": campaign.deadline.isoformat(), "pool_size": campaign.pool_size})
    return campaign


@transaction.atomic
def campaign_close(*, actor, scope: Scope, campaign: Campaign, reason: str = "") -> Campaign:
    """planned or running → closed (a planned round closed before it starts is cancelled)."""
    from jingkong.testing.models import Sample

    reason = _check_text(reason, "reason", 500, required=False)
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    _open(campaign)
    was = campaign.status
    campaign.status = CampaignStatus.CLOSED
    campaign.updated_at = clock.now()
    campaign.save(update_fields=["status", "updated_at"])
    samples = Sample.objects.filter(campaign=campaign).count()
    emit("testing.campaign_closed", subject=campaign, region_code=campaign.region_code, actor=actor,
         payload={"code": campaign.code, "was": was, "samples": samples,
                  "reason": reason})
    return campaign


# --- areas -----------------------------------------------------------------------------------------------------------


@transaction.atomic
def area_set(*, actor, scope: Scope, campaign: Campaign, region_code: str, mode: str | None = None,
             pool_size: int | None = None, zone_type: str | None = None, one_tube_per_household: bool = False,
             reason: str = "") -> CampaignArea:
    """Set the mode and pool size of a sub-region of the round (created or replaced; the most specific area wins).

    ``zone_type`` (lockdown, control, ... — the zone the area lies in) gives the policy's default pool size for that
    zone when ``pool_size`` is left out, and decides whether one tube per household is allowed there.
    """
    _open(campaign)
    region = _region_in_scope(scope, region_code)
    if not region.code.startswith(campaign.region_code):
        raise _invalid("region_code", f"{region.name} ({region.code}) lies outside the round's region "
                                      f"{campaign.region.name} ({campaign.region_code})")
    if region.code == campaign.region_code:
        raise _invalid("region_code", "this is the round's own region: change the round's default mode and pool size")
    found, rules, zones = testing_rules(region.code)
    notes = []
    if zone_type:
        if zone_type not in zones.types:
            raise _invalid("zone_type", f"{zone_type!r} is not a zone type of the policy in force ({zones.types})")
        if pool_size is None:
            pool_size = rules.default_pool_size_by_zone.get(zone_type)
            notes.append(_("%(zone)s: %(pool)s by default (%(profile)s)") % {
                "zone": zone_label(zone_type), "pool": pool_label(pool_size), "profile": _profile_label(found)})
    if pool_size is None:
        pool_size = campaign.pool_size
    _check_pool_size(pool_size, rules.pool_sizes_allowed)
    if one_tube_per_household:
        if not zone_type or zone_type not in rules.one_tube_per_household_zones:
            raise _invalid("one_tube_per_household", "the policy in force allows one tube per household only in "
                                                     f"{rules.one_tube_per_household_zones} zones; give the zone_type")
        notes.append(_("one tube per household"))
    mode = _check_mode(mode or campaign.mode)
    reason = _check_text(reason, "reason", 255, required=False) or "; ".join(notes)[:255]
    area, created = CampaignArea.objects.update_or_create(
        campaign=campaign, region=region,
        defaults={"region_code": region.code, "mode": mode, "pool_size": pool_size,
                  "one_tube_per_household": bool(one_tube_per_household), "reason": reason},
    )
    emit("testing.campaign_area_set", subject=area, region_code=region.code, actor=actor,
         payload={"campaign": campaign.code, "region_code": region.code, "mode": mode, "pool_size": pool_size,
                  "zone_type": zone_type or "", "one_tube_per_household": bool(one_tube_per_household),
                  "created": created})
    return area


@transaction.atomic
def area_delete(*, actor, scope: Scope, campaign: Campaign, area: CampaignArea) -> None:
    _open(campaign)
    if not scope.contains(area.region_code):
        raise _invalid("area", "outside your area")
    payload = {"campaign": campaign.code, "region_code": area.region_code}
    pk = area.pk
    area.delete()
    emit("testing.campaign_area_removed", subject_type="testing.campaignarea", subject_id=pk,
         region_code=payload["region_code"], actor=actor, payload=payload)


# --- sites -----------------------------------------------------------------------------------------------------------


def _check_point(region: Region, lon, lat) -> tuple[float, float]:
    for field, value, lo, hi in (("lon", lon, -180, 180), ("lat", lat, -90, 90)):
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) or not lo <= value <= hi:
            raise _invalid(field, f"must be a WGS-84 coordinate between {lo} and {hi}")
    margin = 0.005  # about 500 m: a site may stand just across a boundary road
    if region.min_lon is not None and not (region.min_lon - margin <= lon <= region.max_lon + margin
                                           and region.min_lat - margin <= lat <= region.max_lat + margin):
        raise _invalid("lon", f"the point ({lon:.5f}, {lat:.5f}) lies outside {region.name} ({region.code})")
    return float(lon), float(lat)


def _check_count(value, field: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _invalid(field, f"must be a whole number from {lo} to {hi}")
    return value


def _site_campaign(scope: Scope, campaign_id: int | None, region: Region) -> Campaign | None:
    if not campaign_id:
        return None
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None or not selectors._visible(scope, campaign.region_code):
        raise _invalid("campaign_id", "unknown round")
    _open(campaign)
    if not region.code.startswith(campaign.region_code):
        raise _invalid("campaign_id", f"the site's region {region.code} lies outside the round's region "
                                      f"{campaign.region_code}")
    return campaign


def _site_values(values: dict) -> dict:
    out = {}
    if "name" in values:
        out["name"] = _check_text(values["name"], "name", 128)
    if "kind" in values:
        if values["kind"] not in SiteKind.values:
            raise _invalid("kind", f"unknown kind {values['kind']!r}; one of {SiteKind.values}")
        out["kind"] = values["kind"]
    if "desks" in values:
        out["desks"] = _check_count(values["desks"], "desks", 1, 500)
    if "staff" in values:
        out["staff"] = _check_count(values["staff"], "staff", 0, 5000)
    if "capacity_per_hour" in values:
        out["capacity_per_hour"] = _check_count(values["capacity_per_hour"], "capacity_per_hour", 1, 100_000)
    for field in ("opens_at", "closes_at"):
        if field in values:
            if not isinstance(values[field], dt.time):
                raise _invalid(field, "a local time such as 07:00 is required")
            out[field] = values[field].replace(second=0, microsecond=0, tzinfo=None)
    if "active" in values:
        out["active"] = bool(values["active"])
    return out


@transaction.atomic
def site_create(*, actor, scope: Scope, name: str, region_code: str, lon: float, lat: float,
                kind: str = SiteKind.TEMPORARY, desks: int = 1, staff: int = 2, capacity_per_hour: int = 120,
                opens_at: dt.time = dt.time(7), closes_at: dt.time = dt.time(21), campaign_id: int | None = None,
                code: str = "") -> SamplingSite:
    """A sampling site (or door-to-door team) inside the actor's scope. Opening hours equal: around the clock; closing
    earlier than opening: closes after midnight."""
    region = _region_in_scope(scope, region_code)
    lon, lat = _check_point(region, lon, lat)
    values = _site_values(dict(name=name, kind=kind, desks=desks, staff=staff, capacity_per_hour=capacity_per_hour,
                               opens_at=opens_at, closes_at=closes_at))
    campaign = _site_campaign(scope, campaign_id, region)
    code = _check_code(code) or _unique_code(SamplingSite, f"S-{region.code}")
    site = SamplingSite(code=code, region=region, region_code=region.code, lon=lon, lat=lat, campaign=campaign,
                        **values)
    try:
        with transaction.atomic():
            site.save(force_insert=True)
    except IntegrityError:
        raise Conflict(f"a site with code {code!r} exists already", code="site_code_taken",
                       extra={"field": "code"}) from None
    emit("testing.site_created", subject=site, region_code=region.code, actor=actor,
         payload={"code": code, "name": site.name, "kind": site.kind, "capacity_per_hour": site.capacity_per_hour,
                  "campaign": campaign.code if campaign else ""})
    return site


@transaction.atomic
def site_update(*, actor, scope: Scope, site: SamplingSite, **changes) -> SamplingSite:
    unknown = set(changes) - set(EDITABLE_SITE)
    if unknown:
        raise _invalid(sorted(unknown)[0], "cannot be changed")
    changes = {k: v for k, v in changes.items() if v is not None}
    region = _region_in_scope(scope, changes["region_code"]) if "region_code" in changes else site.region
    if site.campaign_id and not region.code.startswith(site.campaign.region_code):
        raise _invalid("region_code", "the site would lie outside its round's region")
    values = _site_values(changes)
    if {"lon", "lat", "region_code"} & set(changes):
        values["lon"], values["lat"] = _check_point(region, changes.get("lon", site.lon), changes.get("lat", site.lat))
        values["region"], values["region_code"] = region, region.code
    changed = {k: v for k, v in values.items() if getattr(site, k) != v}
    if not changed:
        return site
    for field, value in changed.items():
        setattr(site, field, value)
    site.save(update_fields=list(changed))
    emit("testing.site_updated", subject=site, region_code=site.region_code, actor=actor,
         payload={k: (v.code if isinstance(v, Region) else v.isoformat() if isinstance(v, dt.time) else v)
                  for k, v in changed.items()})
    return site


@transaction.atomic
def site_deactivate(*, actor, scope: Scope, site: SamplingSite, reason: str = "") -> dict:
    """Take a site out of service. Its building assignments in rounds not yet closed are reported, to be re-run."""
    reason = _check_text(reason, "reason", 500, required=False)
    open_rounds = site.assignments.exclude(campaign__status=CampaignStatus.CLOSED)
    pending = list(open_rounds.values("campaign__code").annotate(buildings=Count("id")).order_by("campaign__code"))
    if site.active:
        site.active = False
        site.save(update_fields=["active"])
        emit("testing.site_deactivated", subject=site, region_code=site.region_code, actor=actor,
             payload={"code": site.code, "reason": reason,
                      "assignments_to_redo": pending})
    return {"site": site, "assignments_to_redo": [{"campaign": p["campaign__code"], "buildings": p["buildings"]}
                                                  for p in pending]}


@transaction.atomic
def site_samplers_set(*, actor, scope: Scope, site: SamplingSite, user_ids: list[int]) -> SamplingSite:
    """Replace the samplers of a site: users whose role may sample, inside the actor's scope."""
    from jingkong.access.models import User

    wanted = sorted({int(u) for u in user_ids})
    users = {u.pk: u for u in User.objects.select_related("region").filter(pk__in=[u for u in wanted
                                                                                  if selectors.db_id(u)])}
    for uid in wanted:
        user = users.get(uid)
        if user is None or not user.is_active or not scope.covers(scope_of(user)):
            raise _invalid("user_ids", f"unknown user {uid} (or outside your area)", user_id=uid)
        if not user.has_role_perm(Perm.TESTING_SAMPLE):
            raise _invalid("user_ids", f"{user.username}: the role {user.role or '-'} may not sample", user_id=uid)
    before = set(site.samplers.values_list("pk", flat=True))
    site.samplers.set(wanted)
    emit("testing.site_samplers_set", subject=site, region_code=site.region_code, actor=actor,
         payload={"code": site.code, "added": sorted(set(wanted) - before), "removed": sorted(before - set(wanted))})
    return site


# --- buildings to sites ----------------------------------------------------------------------------------------------


def _slot_aligned(at: dt.datetime, minutes: int) -> dt.datetime:
    """``at`` rounded up to the next multiple of ``minutes`` after local midnight (slots start at :00/:30 ...)."""
    zone = ZoneInfo(clock.local_time_zone())
    local = at.astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    step = dt.timedelta(minutes=minutes)
    n = math.ceil((local - midnight) / step)
    return (midnight + n * step).astimezone(dt.UTC)


def _plan_site(site: SamplingSite) -> planning.Site:
    return planning.Site(id=site.pk, lon=site.lon, lat=site.lat, capacity_per_hour=site.capacity_per_hour,
                         opens_at=site.opens_at, closes_at=site.closes_at, desks=site.desks, staff=site.staff)


def buildings_assign(*, actor, scope: Scope, campaign: Campaign, slot_minutes: int = 30, utilisation: float = 0.85,
                     neighbours: int = 8) -> dict:
    """Assign every building of the round (inside the actor's part of it) to a site with a time slot, replacing the
    previous assignment of that part. Buildings in door-to-door areas (扫楼/扫村) go to door teams, the others to fixed
    and temporary sites. Computed first, then written in one transaction."""
    _open(campaign)
    prefix = selectors.campaign_prefix(scope=scope, campaign=campaign)
    now = clock.now()
    if now >= campaign.deadline:
        raise Conflict("the round's deadline has passed: move it before planning slots", code="campaign_deadline_passed",
                       extra={"field": "deadline"})
    start = _slot_aligned(selectors.round_start(campaign, now), slot_minutes if slot_minutes in (5, 10, 15, 20, 30, 60) else 5)
    rules = selectors.area_rules(campaign)
    buildings = list(Building.objects.filter(grid__code__startswith=prefix)
                     .values_list("id", "lon", "lat", "grid__code").order_by("grid__code", "id"))
    residents = dict(Person.objects.filter(selectors.population_filter(campaign=campaign, prefix=prefix,
                                                                       field="building__grid__code"))
                     .values("building_id").annotate(n=Count("id")).values_list("building_id", "n"))
    if campaign.key_industry:  # a key-group round: only buildings where members of the group live
        buildings = [b for b in buildings if residents.get(b[0])]
    grid_index = {code: i for i, code in enumerate(sorted({b[3] for b in buildings}))}
    groups: dict[bool, list] = defaultdict(list)
    for b in buildings:
        door = selectors.rule_for(rules, b[3]).mode in selectors.DOOR_TO_DOOR_MODES
        groups[door].append(b)
    rows, site_loads, totals, skipped = [], [], {}, {}
    for door, items in groups.items():
        sites = selectors.planning_sites(scope=scope, campaign=campaign, door_teams=door)
        what = "door_to_door" if door else "sites"
        if not sites:
            skipped[what] = {"buildings": len(items), "residents": sum(residents.get(b[0], 0) for b in items),
                             "reason": "no active door-to-door team" if door else "no active sampling site"}
            continue
        try:
            plan = planning.assign_buildings(
                building_ids=[b[0] for b in items], residents=[residents.get(b[0], 0) for b in items],
                lon=[b[1] for b in items], lat=[b[2] for b in items], sites=[_plan_site(s) for s in sites],
                start=start, deadline=campaign.deadline, tz=clock.local_time_zone(),
                order=[grid_index[b[3]] for b in items], slot_minutes=slot_minutes, utilisation=utilisation,
                neighbours=neighbours)
        except planning.PlanningError as exc:
            raise _invalid(exc.field, exc.reason) from None
        grid_of = {b[0]: b[3] for b in items}
        rows.extend((campaign.pk, a.building_id, a.site_id, grid_of[a.building_id], a.residents, a.distance_m,
                     a.slot_start, a.slot_end) for a in plan.assignments)
        site_loads.extend(plan.sites)
        totals[what] = {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in plan.totals.items()}
    if not rows and not skipped:
        skipped["sites"] = {"buildings": 0, "residents": 0, "reason": "no building in the round's region"}
    with transaction.atomic():
        deleted, _by_model = SiteAssignment.objects.filter(campaign=campaign, region_code__startswith=prefix).delete()
        columns = ["campaign_id", "building_id", "site_id", "region_code", "residents", "distance_m", "slot_start",
                   "slot_end"]
        bulk.bulk_insert(SiteAssignment._meta.db_table, columns,
                         [(*r[:6], bulk.db_datetime(r[6]), bulk.db_datetime(r[7])) for r in rows])
        summary = {"campaign": campaign.code, "region_code": prefix, "start": start.isoformat(),
                   "buildings": len(rows), "residents": sum(r[4] for r in rows), "replaced": deleted,
                   "totals": totals, "skipped": skipped, "slot_minutes": slot_minutes, "utilisation": utilisation}
        emit("testing.buildings_assigned", subject=campaign, region_code=prefix, actor=actor, payload=summary)
    summary["sites"] = [s.as_dict() for s in site_loads]
    return summary
