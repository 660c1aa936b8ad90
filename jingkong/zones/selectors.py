"""Reads of the zones feature, scoped by region (``Scope.q("region_code")``; single zones 404 outside the scope), and
the two cross-app selectors of the contract: :func:`zone_types_for_people` and :func:`risk_level_of`."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from jingkong.access.guard import Scope
from jingkong.core import clock
from jingkong.core.exceptions import NotFound, ValidationFailed
from jingkong.zones import rules
from jingkong.zones.models import RiskArea, RiskAreaSource, Zone, ZoneChange, ZoneResident, ZoneStatus


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


def _clock_of(zone: Zone, *, downgraded: bool | None = None, higher: int | None = None) -> rules.ZoneClock:
    """The zone's lifting-clock inputs. ``downgraded`` / ``higher`` may be handed in already computed (the listings
    compute them for all zones at once, see :func:`countdowns_of`); otherwise one query each, when they matter."""
    if downgraded is None:
        downgraded = zone.changes.filter(action="downgrade", from_type="high_risk", to_type="medium_risk",
                                         at__gte=zone.type_since or zone.proposed_at).exists() \
            if zone.type == "medium_risk" else False
    if higher is None:
        higher = 0
        if rules.SEVERITY[zone.type] == 2:
            higher = Zone.objects.filter(status=ZoneStatus.APPROVED, type__in=rules.more_severe(zone.type),
                                         region_code__startswith=zone.region_code).count()
    return rules.ZoneClock(type=zone.type, since=zone.type_since or zone.approved_at or zone.proposed_at,
                           last_infection_at=zone.last_infection_at, last_exposure_at=zone.last_exposure_at,
                           last_screening_at=zone.last_screening_at, downgraded_from_high=downgraded,
                           higher_zones_in_force=higher)


def _zone_rules(region_code: str | None, at: dt.datetime):
    """The ``zones`` section of the profile in force for a region at ``at``, or None (no profile / section)."""
    from jingkong.policy.schema import RulesIncomplete
    from jingkong.policy.selectors import PolicyNotActive, active_profile

    try:
        return active_profile(region_code=region_code or None, at=at).rules.section("zones")
    except (PolicyNotActive, RulesIncomplete):
        return None


def countdown_of(zone: Zone, *, at: dt.datetime | None = None) -> rules.Countdown | None:
    """The zone's countdown under the profile in force for its region (None: not in force, or no profile)."""
    if zone.status != ZoneStatus.APPROVED:
        return None
    at = at or clock.now()
    zrules = _zone_rules(zone.region_code, at)
    if zrules is None:
        return None
    return rules.countdown(_clock_of(zone), zrules, at=at, tz=clock.local_time_zone())


def countdowns_of(zones: list[Zone], *, at: dt.datetime | None = None) -> dict[int, rules.Countdown | None]:
    """:func:`countdown_of` for many zones in a bounded number of queries, whatever the number of zones (the maps
    and lists showed ~1,000 queries for 995 zones: a profile lookup, a history probe and a count per zone).

    * The profile: ``active_profile`` depends on a region code only through which activated regions are prefixes
      of it, so zones are grouped by that set (one read of the activated region codes) and the profile is resolved
      once per group — a handful of lookups, not one per zone.
    * "Downgraded from high risk": one read of the high → medium downgrades of the medium-risk zones.
    * "More severe zones in force above": one read of the approved lockdown/control (high/medium-risk) zones,
      counted by prefix in Python (the same ``startswith`` the single-zone count uses).
    """
    from jingkong.policy.models import PolicyActivation

    at = at or clock.now()
    out: dict[int, rules.Countdown | None] = {z.pk: None for z in zones}
    approved = [z for z in zones if z.status == ZoneStatus.APPROVED]
    if not approved:
        return out
    activated = sorted(set(PolicyActivation.objects.filter(activated_at__lte=at)
                           .values_list("region__code", flat=True)))
    by_key: dict[tuple, object] = {}

    def rules_for(region_code: str):
        key = (("",) if not region_code else
               tuple(code for code in activated if region_code.startswith(code)))
        if key not in by_key:
            by_key[key] = _zone_rules(region_code, at)
        return by_key[key]

    medium = [z for z in approved if z.type == "medium_risk"]
    downgrades: dict[int, list[dt.datetime]] = {}
    if medium:
        for zone_id, when in ZoneChange.objects.filter(zone_id__in=[z.pk for z in medium], action="downgrade",
                                                       from_type="high_risk", to_type="medium_risk") \
                .values_list("zone_id", "at"):
            downgrades.setdefault(zone_id, []).append(when)
    outer = [z for z in approved if rules.SEVERITY[z.type] == 2]
    severe: list[tuple[str, str]] = []
    if outer:
        types = sorted({t for z in outer for t in rules.more_severe(z.type)})
        severe = list(Zone.objects.filter(status=ZoneStatus.APPROVED, type__in=types)
                      .values_list("type", "region_code"))
    tz = clock.local_time_zone()
    for zone in approved:
        zrules = rules_for(zone.region_code)
        if zrules is None:
            continue
        since = zone.type_since or zone.proposed_at
        downgraded = zone.type == "medium_risk" and any(w >= since for w in downgrades.get(zone.pk, ()))
        higher = 0
        if rules.SEVERITY[zone.type] == 2:
            wanted = set(rules.more_severe(zone.type))
            higher = sum(1 for t, code in severe if t in wanted and code.startswith(zone.region_code))
        out[zone.pk] = rules.countdown(_clock_of(zone, downgraded=downgraded, higher=higher), zrules, at=at, tz=tz)
    return out


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


COORD_DIGITS = 6  # ~0.1 m: plenty for a map, and half the bytes of shapely's full floats


def _rounded(coords):
    """GeoJSON coordinates (nested lists of positions) with every number rounded to :data:`COORD_DIGITS`."""
    if isinstance(coords, (list, tuple)):
        return [_rounded(c) for c in coords]
    if isinstance(coords, float):
        return round(coords, COORD_DIGITS)
    return coords


def compact_geometry(geometry: dict | None) -> dict | None:
    """The geometry with coordinates rounded (nothing else changes; a GeometryCollection's members too)."""
    if not isinstance(geometry, dict):
        return geometry
    out = dict(geometry)
    if "coordinates" in out:
        out["coordinates"] = _rounded(out["coordinates"])
    if isinstance(out.get("geometries"), list):
        out["geometries"] = [compact_geometry(g) for g in out["geometries"]]
    return out


def geojson(*, scope: Scope, include_proposed: bool = True, at: dt.datetime | None = None,
            region: str = "") -> dict:
    """Zones in scope (in force, and proposals) as a GeoJSON FeatureCollection for maps (dashboard, zones page).

    ``region`` (a division code inside the scope, already checked by :func:`region_scope`) narrows the listing to
    the zones whose region code lies under it. Countdowns come from :func:`countdowns_of` (bounded queries) and
    coordinates are rounded to 6 decimals to keep the payload small.
    """
    at = at or clock.now()
    where = Scope(region).q("region_code") if region else scope.q("region_code")
    statuses = [ZoneStatus.APPROVED] + ([ZoneStatus.PROPOSED] if include_proposed else [])
    zones = list(Zone.objects.filter(scope.q("region_code"), where, status__in=statuses).order_by("pk"))
    countdowns = countdowns_of(zones, at=at)
    features = []
    for zone in zones:
        cd = countdowns[zone.pk]
        features.append({
            "type": "Feature", "geometry": compact_geometry(zone.geometry),
            "properties": {"id": zone.pk, "ref": zone.ref, "name": zone.name, "type": zone.type,
                           "status": zone.status, "severity": rules.SEVERITY[zone.type],
                           "people": zone.people, "households": zone.households, "vulnerable": zone.vulnerable,
                           "due_at": cd.due_at.isoformat() if cd and cd.due_at else None,
                           "ready": bool(cd and cd.ready), "action": cd.action if cd else None},
        })
    features.sort(key=lambda f: -f["properties"]["severity"])  # less severe first: drawn underneath
    return {"type": "FeatureCollection", "features": features}


def region_scope(scope: Scope, region: str) -> str:
    """Check a requested ``region`` filter: digits (422 naming the field), and a region inside the caller's scope
    (404 otherwise, existence outside the scope not revealed — like the dashboard layers). Returns the code."""
    from jingkong.geo.models import Region

    region = (region or "").strip()
    if not region:
        return ""
    if len(region) > 32 or not (region.isascii() and region.isdigit()):
        raise ValidationFailed(_("region: a division code of digits"), extra={"field": "region"})
    if not scope.contains(region) or not Region.objects.filter(code=region).exists():
        raise NotFound(_("region not found"), extra={"field": "region"})
    return region
