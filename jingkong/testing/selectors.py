"""Reads of testing rounds: campaigns, their areas, sampling sites, building assignments, labs — always scoped.

Visibility of a campaign: a campaign whose region lies inside the caller's scope, and also one whose region *contains*
the caller's scope (the district's round is visible to a street officer, who runs its part in the street). Everything
below a campaign — population, areas, sites, assignments, plans — is then restricted to the part of the campaign that
lies inside the caller's scope (:func:`campaign_prefix`). Writes to the campaign itself (settings, start, close) need
the campaign's whole region inside the scope (:func:`campaign_get` with ``for_write=True``).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from jingkong.access.guard import Scope
from jingkong.core import clock
from jingkong.core.exceptions import NotFound, PermissionDenied, ValidationFailed
from jingkong.testing.models import Campaign, CampaignArea, Lab, SamplingSite, SiteAssignment, SiteKind

DOOR_TO_DOOR_MODES = ("building", "village")  # 扫楼 / 扫村: sampled at home by door teams
MAX_DB_ID = 2**63 - 1  # ids beyond a 64-bit integer match nothing (and must not reach the database driver)
MAX_PAGE = 1_000_000


def db_id(value: int | None) -> bool:
    """True for an integer that can be a row id (1 .. 2^63 - 1)."""
    return isinstance(value, int) and 0 < value <= MAX_DB_ID


def text_filter(value: str | None, field: str) -> str | None:
    """A text filter from a query, refused (422) when it holds a NUL character: PostgreSQL cannot compare (or audit)
    text with NUL in it — a DataError, i.e. a 500."""
    if value and "\x00" in value:
        raise ValidationFailed(f"{field}: contains a NUL character", extra={"field": field})
    return value


def region_filter(scope: Scope, region: str) -> None:
    """A ``region`` query filter: inside the scope (404 outside), without NUL characters (422)."""
    if "\x00" in region:
        raise ValidationFailed("region: contains a NUL character", extra={"field": "region"})
    scope.check(region, "region")


def page_number(page: int) -> int:
    """A 1-based page number from a query (below 1: the first page); beyond ``MAX_PAGE``: 422."""
    if page > MAX_PAGE:
        raise ValidationFailed(f"page: must be at most {MAX_PAGE:,}", extra={"field": "page"})
    return max(1, page)


def ancestors(code: str) -> list[str]:
    """Every proper prefix of a region code (the codes of the regions that contain it)."""
    return [code[:i] for i in range(1, len(code))]


def visible_q(scope: Scope, field: str = "region_code") -> Q:
    """Rows whose region lies inside the scope or contains it (e.g. a district-wide campaign or lab)."""
    if scope.prefix is None:
        return Q(pk__in=[])
    if scope.prefix == "":
        return Q()
    return scope.q(field) | Q(**{f"{field}__in": ancestors(scope.prefix)})


def _visible(scope: Scope, code: str) -> bool:
    if scope.prefix is None:
        return False
    return code.startswith(scope.prefix) or scope.prefix.startswith(code)


# --- campaigns ---------------------------------------------------------------------------------------------------------


def campaign_list(*, scope: Scope, status: str = "", q: str = "") -> QuerySet[Campaign]:
    qs = Campaign.objects.filter(visible_q(scope)).select_related("region", "created_by")
    if status:
        qs = qs.filter(status=status)
    if text_filter(q, "q"):
        qs = qs.filter(Q(name__icontains=q.strip()) | Q(code__icontains=q.strip()))
    return qs.order_by("-starts_at", "-id")


def campaign_get(*, scope: Scope, campaign_id: int, for_write: bool = False) -> Campaign:
    """One campaign visible to the scope; ``for_write``: its whole region must lie inside the scope."""
    campaign = Campaign.objects.select_related("region", "created_by").filter(pk=campaign_id).first()
    if campaign is None or not _visible(scope, campaign.region_code):
        raise NotFound("campaign not found")
    if for_write and not scope.contains(campaign.region_code):
        raise PermissionDenied(
            "this round covers more than your area: its settings are changed by its planners at "
            f"{campaign.region.name} level; you plan your own area's part (areas, sites, assignments)",
            extra={"region_code": campaign.region_code},
        )
    return campaign


def campaign_prefix(*, scope: Scope, campaign: Campaign) -> str:
    """The region-code prefix of the part of the campaign inside the scope (the longer of the two codes)."""
    prefix = scope.prefix or ""
    return prefix if prefix.startswith(campaign.region_code) else campaign.region_code


def area_list(*, scope: Scope, campaign: Campaign) -> list[CampaignArea]:
    """The campaign's areas that concern the scope (inside it, or containing it), most general first."""
    rows = campaign.areas.select_related("region").filter(visible_q(scope))
    return sorted(rows, key=lambda a: (len(a.region_code), a.region_code))


@dataclass(frozen=True)
class AreaRule:
    """The sampling rule in force for a grid: the most specific area containing it, else the campaign default."""

    region_code: str
    mode: str
    pool_size: int
    one_tube_per_household: bool


def area_rules(campaign: Campaign) -> list[AreaRule]:
    """The campaign's rules, most specific first (match the first whose code prefixes a grid code)."""
    rules = [AreaRule(a.region_code, a.mode, a.pool_size, a.one_tube_per_household)
             for a in campaign.areas.all()]
    rules.sort(key=lambda r: -len(r.region_code))
    rules.append(AreaRule(campaign.region_code, campaign.mode, campaign.pool_size, False))
    return rules


def rule_for(rules: list[AreaRule], code: str) -> AreaRule:
    for rule in rules:
        if code.startswith(rule.region_code):
            return rule
    return rules[-1]


def population_filter(*, campaign: Campaign, prefix: str, field: str = "grid__code") -> Q:
    """The persons a campaign samples inside ``prefix``: residents; for a key-group round, that group's members
    living or working there."""
    where = Q(**{f"{field}__startswith": prefix})
    if campaign.key_industry:
        where = (where | Q(workplace__grid__code__startswith=prefix)) & Q(industry=campaign.key_industry)
    return where


def population_by_grid(*, campaign: Campaign, prefix: str, households: bool = True) -> list[dict]:
    """Persons (and households, when asked) per residence grid, set-based:
    ``[{"grid": code, "persons": n, "households": h}]``."""
    from jingkong.people.models import Person

    counts = {"persons": Count("id")}
    if households:
        counts["households"] = Count("household", distinct=True)
    rows = (Person.objects.filter(population_filter(campaign=campaign, prefix=prefix), grid__isnull=False)
            .values("grid__code").annotate(**counts).order_by("grid__code"))
    return [{"grid": r["grid__code"], "persons": r["persons"], "households": r.get("households", 0)} for r in rows]


# --- sites, assignments, labs ------------------------------------------------------------------------------------------


def site_list(*, scope: Scope, campaign: Campaign | None = None, active: bool | None = None, kind: str = "",
              region: str = "") -> QuerySet[SamplingSite]:
    """Sites inside the scope; with ``campaign``: the sites serving it (its own temporary sites and teams, and the
    fixed sites without a campaign inside its region)."""
    qs = SamplingSite.objects.filter(scope.q("region_code")).select_related("region", "campaign")
    if campaign is not None:
        qs = qs.filter(Q(campaign=campaign) | Q(campaign__isnull=True, region_code__startswith=campaign.region_code))
    if active is not None:
        qs = qs.filter(active=active)
    if kind:
        qs = qs.filter(kind=kind)
    if region:
        region_filter(scope, region)
        qs = qs.filter(region_code__startswith=region)
    return qs.order_by("region_code", "code")


def site_get(*, scope: Scope, site_id: int) -> SamplingSite:
    site = SamplingSite.objects.select_related("region", "campaign").filter(pk=site_id).first()
    if site is None or not scope.contains(site.region_code):
        raise NotFound("sampling site not found")
    return site


def assignment_list(*, scope: Scope, campaign: Campaign, site_id: int | None = None,
                    region: str = "") -> QuerySet[SiteAssignment]:
    qs = SiteAssignment.objects.filter(campaign=campaign).filter(scope.q("region_code"))
    if site_id:
        qs = qs.filter(site_id=site_id) if db_id(site_id) else qs.none()
    if region:
        region_filter(scope, region)
        qs = qs.filter(region_code__startswith=region)
    return qs.select_related("building", "site").order_by("site_id", "slot_start", "building__code")


def lab_list(*, scope: Scope, active: bool | None = True) -> QuerySet[Lab]:
    """Labs serving the scope: inside it, or at a level above it (a district's labs serve its streets)."""
    qs = Lab.objects.filter(visible_q(scope))
    if active is not None:
        qs = qs.filter(active=active)
    return qs.order_by("code")


def planning_sites(*, scope: Scope, campaign: Campaign, door_teams: bool | None = None) -> list[SamplingSite]:
    """The active sites serving the campaign inside the scope's part of it (``door_teams``: only / none of them)."""
    prefix = campaign_prefix(scope=scope, campaign=campaign)
    qs = site_list(scope=scope, campaign=campaign, active=True).filter(region_code__startswith=prefix)
    if door_teams is True:
        qs = qs.filter(kind=SiteKind.DOOR_TEAM)
    elif door_teams is False:
        qs = qs.exclude(kind=SiteKind.DOOR_TEAM)
    return list(qs)


def round_start(campaign: Campaign, now: dt.datetime | None = None) -> dt.datetime:
    """Where planning starts: the campaign's start, or now if the round is already under way."""
    now = now or clock.now()
    return max(campaign.starts_at, now)


# --- the round estimate ---------------------------------------------------------------------------------------------


def pool_groups(*, campaign: Campaign, prefix: str) -> tuple[list, list[dict]]:
    """People per tube rule inside ``prefix`` (set-based counts per grid, matched to the most specific area):
    planning groups and a per-rule summary for display."""
    from jingkong.testing import planning

    rules = area_rules(campaign)
    acc: dict[tuple[int, bool], list[int]] = {}
    per_household = any(r.one_tube_per_household for r in rules)
    for row in population_by_grid(campaign=campaign, prefix=prefix, households=per_household):
        rule = rule_for(rules, row["grid"])
        key = (rule.pool_size, rule.one_tube_per_household)
        totals = acc.setdefault(key, [0, 0])
        totals[0] += row["persons"]
        totals[1] += row["households"]
    groups, summary = [], []
    for (size, per_household), (persons, households) in sorted(acc.items()):
        group = (planning.PoolGroup(persons, size, households) if per_household
                 else planning.pool_group(persons, size))
        groups.append(group)
        summary.append({"pool_size": size, "one_tube_per_household": per_household, "persons": persons,
                        "tubes": group.tubes})
    return groups, summary


def campaign_estimate(*, scope: Scope, campaign: Campaign, tubes_available: int | None = None,
                      transport_hours: float = 1.5, assay_hours: float = 0.0, desk_rate: float = 120.0,
                      staff_per_desk: float = 2.0, prevalence: float = 0.0, now: dt.datetime | None = None) -> dict:
    """The round estimate for the caller's part of the campaign, from the sites serving it, the labs serving the
    scope and the population counted in the database. Raises PlanningError for bad parameters."""
    from jingkong.testing import planning

    prefix = campaign_prefix(scope=scope, campaign=campaign)
    groups, summary = pool_groups(campaign=campaign, prefix=prefix)
    population = sum(g.population for g in groups)
    already = 0
    if campaign.status != "planned" and population:
        # A round under way: plan what is left (people already swabbed in this round are not sampled again).
        from jingkong.testing.models import Sample

        already = min(population, Sample.objects.filter(campaign=campaign, region_code__startswith=prefix)
                      .values("person_id").distinct().count())
        share = (population - already) / population
        groups = [planning.PoolGroup(round(g.population * share), g.pool_size, math.ceil(g.tubes * share))
                  for g in groups]
    sites = planning_sites(scope=scope, campaign=campaign)
    labs = list(lab_list(scope=scope))
    start = campaign.starts_at if campaign.status == "planned" else round_start(campaign, now)
    deadline = campaign.deadline if campaign.deadline > start else start + dt.timedelta(hours=1)
    result = planning.estimate_round(
        population=population - already, groups=groups, tz=clock.local_time_zone(), start=start, deadline=deadline,
        sites=[planning.Site(id=s.pk, lon=s.lon, lat=s.lat, capacity_per_hour=s.capacity_per_hour,
                             opens_at=s.opens_at, closes_at=s.closes_at, desks=s.desks, staff=s.staff) for s in sites],
        labs=[planning.Lab(id=lab.pk, tubes_per_hour=lab.capacity_per_hour) for lab in labs],
        tubes_available=tubes_available, transport_hours=transport_hours, assay_hours=assay_hours,
        desk_rate=desk_rate, staff_per_desk=staff_per_desk, prevalence=prevalence)
    result["region_code"] = prefix
    result["target_population"] = population
    result["already_sampled"] = already
    result["pool_groups"] = summary
    result["labs"] = [{"id": lab.pk, "code": lab.code, "name": lab.name, "tubes_per_hour": lab.capacity_per_hour}
                      for lab in labs]
    result["site_count"] = len(sites)
    return result


# --- door-to-door lists (bedridden and limited-mobility residents are visited, never exempted) -----------------------


def _limited_mobility(campaign: Campaign, prefix: str):
    """Limited-mobility persons of the round *living* inside ``prefix``: the door team samples them at home, and a
    key-group member who only works there lives (and is listed) in another area."""
    from django.db.models import Exists, F, OuterRef

    from jingkong.people.models import Person, Vulnerable
    from jingkong.testing.models import Sample

    sampled = Sample.objects.filter(campaign=campaign, person=OuterRef("pk"))
    return (Person.objects.filter(population_filter(campaign=campaign, prefix=prefix), grid__code__startswith=prefix)
            .annotate(limited=F("vulnerable").bitand(int(Vulnerable.LIMITED_MOBILITY)))
            .filter(limited__gt=0)
            .annotate(sampled=Exists(sampled)))


def door_to_door_counts(*, scope: Scope, campaign: Campaign) -> list[dict]:
    """Per building: how many limited-mobility residents the door team must visit, and how many are swabbed (no
    names: for the campaign screen)."""
    prefix = campaign_prefix(scope=scope, campaign=campaign)
    rows = (_limited_mobility(campaign, prefix)
            .values("building__code", "building__address", "grid__code")
            .annotate(persons=Count("id"), sampled=Count("id", filter=Q(sampled=True)))
            .order_by("grid__code", "building__code"))
    return [{"building": r["building__code"] or "", "address": r["building__address"] or "", "grid": r["grid__code"],
             "persons": r["persons"], "sampled": r["sampled"]} for r in rows]


def door_to_door_list(*, scope: Scope, campaign: Campaign, building: str = "", only_unsampled: bool = False,
                      limit: int = 5000) -> list:
    """The limited-mobility residents to sample at home, by building, unit and room (person-level: PERSON_VIEW; the
    caller audits the read)."""
    prefix = campaign_prefix(scope=scope, campaign=campaign)
    qs = _limited_mobility(campaign, prefix).select_related("building", "household", "grid")
    if text_filter(building, "building"):
        qs = qs.filter(building__code=building)
    if only_unsampled:
        qs = qs.filter(sampled=False)
    return list(qs.order_by("grid__code", "building__code", "unit", "room", "id")[: max(1, min(limit, 20000))])


# --- site board --------------------------------------------------------------------------------------------------------


def site_board(*, scope: Scope, campaign: Campaign, now: dt.datetime | None = None) -> list[dict]:
    """Per site serving the round in the scope: capacity, assigned buildings and residents with their slots, scans so
    far (total, last hour, per hour since the first), residents expected in the coming hour, tubes open and sealed.
    A handful of grouped queries, whatever the number of scans."""
    from django.db.models import Max, Min, Sum

    from jingkong.testing.models import Sample, Tube, TubeStatus

    now = now or clock.now()
    hour = dt.timedelta(hours=1)
    sites = list(site_list(scope=scope, campaign=campaign))
    ids = [s.pk for s in sites]
    assigned = {r["site_id"]: r for r in SiteAssignment.objects.filter(campaign=campaign, site_id__in=ids)
                .values("site_id").annotate(buildings=Count("id"), assigned=Sum("residents"),
                                            first_slot=Min("slot_start"), last_slot=Max("slot_end"),
                                            expected_next_hour=Sum("residents", filter=Q(slot_start__lt=now + hour,
                                                                                         slot_end__gt=now)))
                .order_by()}
    scans = {r["site_id"]: r for r in Sample.objects.filter(campaign=campaign, site_id__in=ids)
             .values("site_id").annotate(scans=Count("id"), last_hour=Count("id", filter=Q(sampled_at__gt=now - hour,
                                                                                          sampled_at__lte=now)),
                                         first=Min("sampled_at"), last=Max("sampled_at"))
             .order_by()}
    tubes = {r["site_id"]: r for r in Tube.objects.filter(campaign=campaign, site_id__in=ids)
             .values("site_id").annotate(open=Count("id", filter=Q(status=TubeStatus.OPEN)),
                                         sealed=Count("id", filter=Q(status=TubeStatus.SEALED)), total=Count("id"))
             .order_by()}
    rows = []
    for s in sites:
        a, sc, tb = assigned.get(s.pk, {}), scans.get(s.pk, {}), tubes.get(s.pk, {})
        per_hour = None
        if sc.get("scans"):
            elapsed = max((min(now, sc["last"]) - sc["first"]).total_seconds() / 3600.0, 1.0)
            per_hour = round(sc["scans"] / elapsed, 1)
        rows.append({
            "site": s, "id": s.pk, "code": s.code, "name": s.name, "kind": s.kind, "region_code": s.region_code,
            "active": s.active, "capacity_per_hour": s.capacity_per_hour, "desks": s.desks, "staff": s.staff,
            "opens_at": s.opens_at, "closes_at": s.closes_at,
            "buildings": a.get("buildings", 0), "residents": a.get("assigned") or 0,
            "first_slot": a.get("first_slot"), "last_slot": a.get("last_slot"),
            "expected_next_hour": a.get("expected_next_hour") or 0,
            "scans": sc.get("scans", 0), "scans_last_hour": sc.get("last_hour", 0), "scans_per_hour": per_hour,
            "last_scan": sc.get("last"), "open_tubes": tb.get("open", 0), "sealed_tubes": tb.get("sealed", 0),
            "tubes": tb.get("total", 0),
            "progress": round(sc.get("scans", 0) / a["assigned"], 4) if a.get("assigned") else None,
        })
    return rows
