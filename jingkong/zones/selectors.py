"""Reads of the zones feature, scoped by region (``Scope.q("region_code")``; single zones 404 outside the scope), and
the two cross-app selectors of the contract: :func:`zone_types_for_people` and :func:`risk_level_of`."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from jingkong.access.guard import Scope
from jingkong.core import clock
from jingkong.core.exceptions import NotFound
from jingkong.zones import rules
from jingkong.zones.models import RiskArea, RiskAreaSource, Zone, ZoneResident, ZoneStatus


def zone_list(*, scope: Scope, status: str = "", type: str = "", active_only: bool = False) -> QuerySet[Zone]:
    qs = Zone.objects.filter(scope.q("region_code")).select_related("case", "around")
    if status:
        qs = qs.filter(status=status)
    elif active_only:
        qs = qs.filter(status__in=(ZoneStatus.PROPOSED, ZoneStatus.APPROVED))
    if type:
        qs = qs.filter(type=type)
    return qs.order_by("-proposed_at", "-pk")


def zone_get(*, scope: Scope, zone_id: int) -> Zone:
    zone = Zone.objects.select_related("case", "around", "profile", "approved_by", "proposed_by").filter(
        pk=zone_id).first()
    if zone is None or not scope.contains(zone.region_code):
        raise NotFound(_("zone not found"))
    return zone


def zone_get_by_ref(*, scope: Scope, ref: str) -> Zone:
    if "\x00" in ref:
        raise NotFound(_("zone not found"))
    zone = Zone.objects.select_related("case", "around", "profile").filter(ref=ref).first()
    if zone is None or not scope.contains(zone.region_code):
        raise NotFound(_("zone not found"))
    return zone


def units_of(zone: Zone) -> list[dict]:
    out = []
    for u in zone.units.select_related("building__grid", "household__building", "household__grid", "region"):
        if u.household_id:
            label, code = f"{u.household.code} ({u.household.building.address or u.household.building.code})", \
                u.household.grid.code
        elif u.building_id:
            label = u.building.address or u.building.code
            if u.kind == "entrance":
                label = _("%(building)s, entrance %(entrance)s") % {"building": label, "entrance": u.entrance}
            code = u.building.grid.code
        else:
            label, code = u.region.name, u.region.code
        out.append({"id": u.pk, "kind": u.kind, "label": label, "region_code": code,
                    "household_id": u.household_id, "building_id": u.building_id, "entrance": u.entrance})
    return out


def history_of(zone: Zone) -> QuerySet:
    return zone.changes.select_related("actor").order_by("at", "pk")


def _clock_of(zone: Zone) -> rules.ZoneClock:
    downgraded = zone.changes.filter(action="downgrade", from_type="high_risk", to_type="medium_risk",
                                     at__gte=zone.type_since or zone.proposed_at).exists() \
        if zone.type == "medium_risk" else False
    higher = 0
    if rules.SEVERITY[zone.type] == 2:
        higher = Zone.objects.filter(status=ZoneStatus.APPROVED, type__in=rules.more_severe(zone.type),
                                     region_code__startswith=zone.region_code).count()
    return rules.ZoneClock(type=zone.type, since=zone.type_since or zone.approved_at or zone.proposed_at,
                           last_infection_at=zone.last_infection_at, last_exposure_at=zone.last_exposure_at,
                           last_screening_at=zone.last_screening_at, downgraded_from_high=downgraded,
                           higher_zones_in_force=higher)


def countdown_of(zone: Zone, *, at: dt.datetime | None = None) -> rules.Countdown | None:
    """The zone's countdown under the profile in force for its region (None: not in force, or no profile)."""
    from jingkong.policy.schema import RulesIncomplete
    from jingkong.policy.selectors import PolicyNotActive, active_profile

    if zone.status != ZoneStatus.APPROVED:
        return None
    at = at or clock.now()
    try:
        zrules = active_profile(region_code=zone.region_code or None, at=at).rules.section("zones")
    except (PolicyNotActive, RulesIncomplete):
        return None
    return rules.countdown(_clock_of(zone), zrules, at=at, tz=clock.local_time_zone())


def residents_of(zone: Zone) -> QuerySet:
    return ZoneResident.objects.filter(zone=zone).select_related("person__household", "person__building") \
        .order_by("region_code", "person_id")


# --- the cross-app contract ----------------------------------------------------------------------------------------


def zone_types_for_people(person_ids) -> dict[int, list[str]]:
    """Zone types (most severe first) of the approved zones in force each person lives in; people in none are absent."""
    out: dict[int, list[str]] = {}
    ids = sorted({int(i) for i in person_ids})  # sorted: neighbouring index pages are read together
    table = connection.ops.quote_name(ZoneResident._meta.db_table)
    for i in range(0, len(ids), 5000):
        # Not through the ORM: compiling 5,000 parameters cost more than the lookup. PostgreSQL gets one array
        # parameter; SQLite the integers inlined (they are ints).
        with connection.cursor() as c:
            if connection.vendor == "postgresql":
                c.execute(f"SELECT person_id, zone_type FROM {table} WHERE person_id = ANY(%s)", [ids[i:i + 5000]])
            else:
                c.execute(f"SELECT person_id, zone_type FROM {table} WHERE person_id IN "
                          f"({', '.join(str(p) for p in ids[i:i + 5000])})")
            rows = c.fetchall()
        for person_id, zone_type in rows:
            types = out.setdefault(person_id, [])
            if zone_type not in types:
                types.append(zone_type)
    for types in out.values():
        types.sort(key=lambda t: rules.SEVERITY.get(t, 9))
    return out


def _in_force(at: dt.datetime) -> Q:
    return Q(published_at__lte=at) & (Q(withdrawn_at__isnull=True) | Q(withdrawn_at__gt=at))


def risk_level_of(division_code: str, at: dt.datetime | None = None) -> str | None:
    """"high", "medium" or None for a division code at ``at``: every risk area in force whose code is a prefix of it
    (an area covers all codes starting with its code; a 6-digit county code the whole county); the highest wins."""
    code = (division_code or "").strip()
    if not code or not code.isdigit():
        return None
    at = at or clock.now()
    prefixes = [code[:i] for i in range(2, min(len(code), 32) + 1)]
    # One raw statement: this is called per verification at checkpoints (the ORM cost more than the query).
    when = connection.ops.adapt_datetimefield_value(at)
    with connection.cursor() as c:
        c.execute(f"SELECT DISTINCT level FROM {connection.ops.quote_name(RiskArea._meta.db_table)} "
                  f"WHERE area_code IN ({', '.join(['%s'] * len(prefixes))}) AND level IN ('high', 'medium') "
                  "AND published_at <= %s AND (withdrawn_at IS NULL OR withdrawn_at > %s)", [*prefixes, when, when])
        levels = {row[0] for row in c.fetchall()}
    if "high" in levels:
        return "high"
    return "medium" if "medium" in levels else None


def risk_area_list(*, scope: Scope, source: str = "", in_force_at: dt.datetime | None = None) -> QuerySet[RiskArea]:
    """District-published areas inside the scope and every imported area (other places' lists are not region data)."""
    qs = RiskArea.objects.select_related("zone")
    district = Q(source=RiskAreaSource.DISTRICT) & scope.q("area_code")
    qs = qs.filter(district | Q(source=RiskAreaSource.IMPORTED))
    if source:
        qs = qs.filter(source=source)
    if in_force_at is not None:
        qs = qs.filter(_in_force(in_force_at))
    return qs.order_by("source", "area_code", "-published_at")


def geojson(*, scope: Scope, include_proposed: bool = True, at: dt.datetime | None = None) -> dict:
    """Zones in scope (in force, and proposals) as a GeoJSON FeatureCollection for maps (dashboard, zones page)."""
    at = at or clock.now()
    statuses = [ZoneStatus.APPROVED] + ([ZoneStatus.PROPOSED] if include_proposed else [])
    features = []
    for zone in Zone.objects.filter(scope.q("region_code"), status__in=statuses).order_by("pk"):
        cd = countdown_of(zone, at=at)
        features.append({
            "type": "Feature", "geometry": zone.geometry,
            "properties": {"id": zone.pk, "ref": zone.ref, "name": zone.name, "type": zone.type,
                           "status": zone.status, "severity": rules.SEVERITY[zone.type],
                           "people": zone.people, "households": zone.households, "vulnerable": zone.vulnerable,
                           "due_at": cd.due_at.isoformat() if cd and cd.due_at else None,
                           "ready": bool(cd and cd.ready), "action": cd.action if cd else None},
        })
    features.sort(key=lambda f: -f["properties"]["severity"])  # less severe first: drawn underneath
    return {"type": "FeatureCollection", "features": features}
