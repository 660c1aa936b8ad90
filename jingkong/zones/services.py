"""Every write of the zones feature: proposals from a case, edits, approval and rejection, upgrades, downgrades and
lifting, the zone clock inputs, published and imported risk areas (docs/zones.md).

Each service runs in one transaction with a :class:`ZoneChange` history row, an audit record and a domain event
(``zones.zone_proposed|approved|changed|lifted|rejected``, payload ``{"ref","type","from_type","to_type","people"}``,
emitted after the residents are refreshed). Residents (``zones_zoneresident``) are materialised set-based with one
``INSERT … SELECT`` per zone; a person lives in a zone when their household, entrance (building + unit), building or
grid subtree is one of its units, unless they live in a more severe zone in force (so the control ring is "the rest"
around the lockdown, and prevention the rest around both).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from jingkong.access import audit
from jingkong.access.guard import Scope
from jingkong.access.roles import Perm
from jingkong.core import clock
from jingkong.core.events import emit
from jingkong.core.exceptions import Conflict, NotFound, PermissionDenied, ValidationFailed
from jingkong.geo.models import Building, Region
from jingkong.people.models import Household
from jingkong.policy.schema import RulesIncomplete
from jingkong.policy.selectors import PolicyNotActive, active_profile
from jingkong.zones import rules
from jingkong.zones.models import (
    RiskArea,
    RiskAreaSource,
    Zone,
    ZoneChange,
    ZoneResident,
    ZoneStatus,
    ZoneType,
    ZoneUnit,
)

log = logging.getLogger(__name__)

BUILDING_BUFFER_M = 25  # drawing only: a building (household, entrance) is shown as a disc of this radius
IN_FORCE = (ZoneStatus.PROPOSED, ZoneStatus.APPROVED)
TYPE_LABELS = dict(ZoneType.choices)


# PostgreSQL: one transaction-level advisory lock serialises the zone writes (approve, edit, regrade, lift, propose,
# resident refreshes). A write refreshes the residents of the overlapping zones too (their exclusions change), so
# two commanders approving or editing neighbouring zones at once would both delete and re-insert the same zone's
# residents (a unique-constraint error, or a ring computed from a stale lockdown). Zone writes are rare; waiting is
# cheap. SQLite serialises writers already.
ZONES_LOCK = 0x6A6B_7A6F_6E65_7321  # "jkzones!"


def _serialise() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as c:
            c.execute("SELECT pg_advisory_xact_lock(%s)", [ZONES_LOCK])


def _invalid(field_name: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field_name}: {message}", extra={"field": field_name})


def _text(value: str | None, field_name: str, *, limit: int, required: bool = False) -> str:
    text = (value or "").strip()
    if "\x00" in text:
        raise _invalid(field_name, _("contains a NUL character"))
    if len(text) > limit:
        raise _invalid(field_name, _("at most %(n)d characters") % {"n": limit})
    if required and not text:
        raise _invalid(field_name, _("required"))
    return text


def zone_rules(region_code: str | None, at: dt.datetime):
    """(active profile, its ``zones`` section) for the region, or a 422 saying what to do."""
    try:
        found = active_profile(region_code=region_code or None, at=at)
        return found, found.rules.section("zones")
    except PolicyNotActive as exc:
        raise ValidationFailed(_("no policy profile is in force here: activate one first (%(m)s)") % {"m": exc.message},
                               code="policy_not_active", extra={"field": "case"}) from None
    except RulesIncomplete as exc:
        raise ValidationFailed(str(exc), code="policy_incomplete", extra={"field": "case"}) from None


# --- places of a case --------------------------------------------------------------------------------------------------


def case_places(case, zrules, *, at: dt.datetime) -> list[rules.Place]:
    """Home (household, entrance, building, grid), registered workplace and frequent venues of the timeline."""
    from jingkong.tracing.models import Stay

    person = case.person
    places: list[rules.Place] = []
    if person.grid_id:
        building = Building.objects.filter(pk=person.building_id).first() if person.building_id else None
        household = Household.objects.filter(pk=person.household_id).first() if person.household_id else None
        if building is None and household is not None:
            building = household.building
        places.append(rules.Place(
            kind="home", grid_code=(building.grid.code if building else person.grid.code),
            building_id=building.pk if building else None, household_id=household.pk if household else None,
            entrance=(person.unit or (household.unit if household else "") or "").strip(),
            compound=rules.compound_key(building.address) if building else None,
            label=(building.address if building else person.grid.name) or ""))
    venue_ids = []
    if person.workplace_id:
        venue_ids.append(person.workplace_id)
    visits = [rules.Visit(s.venue_id, s.start, s.end) for s in
              Stay.objects.filter(case=case, venue__isnull=False).exclude(kind="home").only("venue_id", "start", "end")]
    for venue_id in rules.frequent_venues(visits, min_visits=zrules.frequent_place_min_visits,
                                          min_hours=zrules.frequent_place_min_hours):
        if venue_id not in venue_ids:
            venue_ids.append(venue_id)
    from jingkong.geo.models import Venue

    venues = {v.pk: v for v in Venue.objects.select_related("grid", "building").filter(pk__in=venue_ids)}
    for venue_id in venue_ids:
        v = venues.get(venue_id)
        if v is None:
            continue
        places.append(rules.Place(
            kind="workplace" if venue_id == person.workplace_id else "frequent", grid_code=v.grid.code,
            building_id=v.building_id, compound=rules.compound_key(v.building.address) if v.building_id else None,
            label=v.name))
    return places


# --- units, geometry, members ------------------------------------------------------------------------------------------


def _create_units(zone: Zone, refs: list) -> None:
    """ZoneUnit rows for rule unit refs (a compound becomes one row per building of the grid sharing the key)."""
    rows = []
    regions = {r.code: r for r in Region.objects.filter(code__in=[u[1] for u in refs if u[0] == "region"])}
    for ref in refs:
        kind = ref[0]
        if kind == "household":
            rows.append(ZoneUnit(zone=zone, kind="household", household_id=ref[1]))
        elif kind == "entrance":
            rows.append(ZoneUnit(zone=zone, kind="entrance", building_id=ref[1], entrance=ref[2]))
        elif kind == "building":
            rows.append(ZoneUnit(zone=zone, kind="building", building_id=ref[1]))
        elif kind == "compound":
            grid_code, key = ref[1], ref[2]
            buildings = [b.pk for b in Building.objects.filter(grid__code=grid_code).only("pk", "address")
                         if rules.compound_key(b.address) == key]
            rows.extend(ZoneUnit(zone=zone, kind="compound", building_id=b) for b in buildings)
        else:
            region = regions.get(ref[1])
            if region is None:
                continue
            rows.append(ZoneUnit(zone=zone, kind=rules.unit_level(ref), region=region))
    ZoneUnit.objects.bulk_create(rows)


def _units(zone: Zone) -> list[ZoneUnit]:
    return list(zone.units.select_related("building__grid", "household__grid", "region").order_by("pk"))


def unit_codes(units: list[ZoneUnit]) -> list[str]:
    """The region code each unit lies in (a building's grid; a region's own code)."""
    out = []
    for u in units:
        if u.region_id:
            out.append(u.region.code)
        elif u.building_id:
            out.append(u.building.grid.code)
        elif u.household_id:
            out.append(u.household.grid.code)
    return out


def _geometry(units: list[ZoneUnit]) -> dict | None:
    from shapely import union_all
    from shapely.geometry import Point, mapping, shape

    shapes = []
    radius = BUILDING_BUFFER_M / 111_000
    for u in units:
        building = u.building if u.building_id else (u.household.building if u.household_id else None)
        if building is not None:
            shapes.append(Point(building.lon, building.lat).buffer(radius, 16))
        elif u.region_id and u.region.geometry:
            try:
                geom = shape(u.region.geometry)
                shapes.append(geom if geom.is_valid else geom.buffer(0))
            except (ValueError, TypeError, AttributeError):
                log.warning("region %s has an unreadable geometry", u.region.code)
    if not shapes:
        return None
    return mapping(union_all(shapes))


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _unit_sql(units: list[ZoneUnit]) -> tuple[str, list]:
    """A WHERE condition over ``p`` (people_person), ``g`` (its grid), ``h`` (its household) matching the units."""
    households = [u.household_id for u in units if u.household_id]
    buildings = [u.building_id for u in units if u.building_id and u.kind != "entrance"]
    entrances = [(u.building_id, u.entrance) for u in units if u.kind == "entrance" and u.building_id]
    regions = [u.region.code for u in units if u.region_id]
    parts, params = [], []
    if households:
        parts.append(f"p.household_id IN ({', '.join(['%s'] * len(households))})")
        params += households
    if buildings:
        parts.append(f"p.building_id IN ({', '.join(['%s'] * len(buildings))})")
        params += buildings
    for building_id, entrance in entrances:
        parts.append("(p.building_id = %s AND (p.unit = %s OR (p.unit = '' AND h.unit = %s)))")
        params += [building_id, entrance, entrance]
    if regions:
        # Region units as the ids of their grids: the person's grid index answers, not a scan of everyone's grid code.
        q = Q()
        for code in regions:
            q |= Q(code__startswith=code)
        grid_ids = sorted(Region.objects.filter(q, level="grid").values_list("pk", flat=True))
        if grid_ids:
            parts.append(f"p.grid_id IN ({', '.join(str(int(i)) for i in grid_ids)})")
    if not parts:
        return "1 = 0", []
    return "(" + " OR ".join(parts) + ")", params


def _members_sql(zone: Zone, units: list[ZoneUnit], *, preview: bool) -> tuple[str, list]:
    """``SELECT p.id, p.household_id, p.vulnerable, g.code`` of the people inside the zone.

    Excluded: residents of more severe zones in force; for a preview (a proposed zone) also the people inside the
    zones it is drawn around (the proposal's lockdown), as they will be once the proposal is approved.
    """
    where, params = _unit_sql(units)
    join_household = any(u.kind == "entrance" for u in units) or any(
        u.kind == "entrance" for inner in _around_chain(zone) for u in _units(inner)) if preview else \
        any(u.kind == "entrance" for u in units)
    sql = (f"SELECT p.id, p.household_id, p.vulnerable, g.code FROM {_q('people_person')} p "
           f"JOIN {_q('geo_region')} g ON g.id = p.grid_id "
           + (f"LEFT JOIN {_q('people_household')} h ON h.id = p.household_id " if join_household else "")
           + f"WHERE {where}")
    severe = rules.more_severe(zone.type)
    # Nobody inside a more severe zone in force is a resident here (the first approval has none: no anti-join).
    severe_ids = list(Zone.objects.filter(status=ZoneStatus.APPROVED, type__in=severe).exclude(pk=zone.pk or 0)
                      .values_list("pk", flat=True)) if severe else []
    if severe_ids:
        ids = ", ".join(str(int(i)) for i in severe_ids)
        if connection.vendor == "sqlite":  # SQLite builds the small set once (3.5x faster than a correlated probe)
            sql += f" AND p.id NOT IN (SELECT r.person_id FROM {_q('zones_zoneresident')} r WHERE r.zone_id IN ({ids}))"
        else:  # PostgreSQL plans a hash anti-join whatever the set's size
            sql += (f" AND NOT EXISTS (SELECT 1 FROM {_q('zones_zoneresident')} r WHERE r.person_id = p.id"
                    f" AND r.zone_id IN ({ids}))")
    if preview:
        for inner in _around_chain(zone):
            cond, more = _unit_sql(_units(inner))
            sql += f" AND NOT {cond}"
            params += more
    return sql, params


def _around_chain(zone: Zone) -> list[Zone]:
    """The zones (in force) a zone is drawn around, innermost last."""
    out, seen = [], set()
    inner = zone.around if zone.around_id else None
    while inner is not None and inner.pk not in seen:
        seen.add(inner.pk)
        if inner.status in IN_FORCE:
            out.append(inner)
        inner = inner.around if inner.around_id else None
    return out


def _counts_from(sql: str, params: list) -> tuple[int, int, int]:
    with connection.cursor() as c:
        c.execute(f"SELECT COUNT(*), COUNT(DISTINCT m.household_id), "
                  f"COALESCE(SUM(CASE WHEN m.vulnerable <> 0 THEN 1 ELSE 0 END), 0) FROM ({sql}) m", params)
        n, households, vulnerable = c.fetchone()
    return int(n or 0), int(households or 0), int(vulnerable or 0)


@contextlib.contextmanager
def _large_cache(kib: int = 256 * 1024):
    """SQLite: a large page cache while a district-wide zone's residents are written (the people table and the
    residents' indexes thrash the default 2 MB cache at 1 M people); restored afterwards. Same as testing's loader."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as c:
        c.execute("PRAGMA cache_size")
        previous = c.fetchone()[0]
        c.execute(f"PRAGMA cache_size = -{int(kib)}")
    try:
        yield
    finally:
        with connection.cursor() as c:
            c.execute(f"PRAGMA cache_size = {int(previous)}")


def _refresh(zone: Zone, *, at: dt.datetime) -> None:
    """Geometry, residents (approved zones) and counts of one zone, then its clock inputs."""
    units = _units(zone)
    zone.geometry = _geometry(units)
    codes = unit_codes(units)
    zone.region_code = rules.common_region(codes) or zone.region_code
    with connection.cursor() as c:
        c.execute(f"DELETE FROM {_q('zones_zoneresident')} WHERE zone_id = %s", [zone.pk])
    if zone.status == ZoneStatus.APPROVED:
        sql, params = _members_sql(zone, units, preview=False)
        with _large_cache():
            with connection.cursor() as c:
                c.execute(f"INSERT INTO {_q('zones_zoneresident')} (zone_id, person_id, zone_type, region_code) "
                          f"SELECT %s, m.id, %s, m.code FROM ({sql}) m", [zone.pk, zone.type, *params])
                if connection.vendor == "postgresql" and c.rowcount > 50_000:
                    # The planner still believes the table is as small as before: plans over it would be wrong.
                    c.execute(f"ANALYZE {_q('zones_zoneresident')}")
            zone.people, zone.households, zone.vulnerable = _counts_from(
                f"SELECT p.id, p.household_id, p.vulnerable FROM {_q('zones_zoneresident')} r "
                f"JOIN {_q('people_person')} p ON p.id = r.person_id WHERE r.zone_id = %s", [zone.pk])
    elif zone.status == ZoneStatus.PROPOSED:
        sql, params = _members_sql(zone, units, preview=True)
        zone.people, zone.households, zone.vulnerable = _counts_from(sql, params)
    _clock_inputs(zone, units, at=at)
    zone.updated_at = at
    zone.save()


def _overlaps(a: list[str], b: list[str]) -> bool:
    return any(x.startswith(y) or y.startswith(x) for x in a for y in b)


def _cascade(zone: Zone, codes: list[str], severity: int, *, at: dt.datetime) -> None:
    """Refresh approved zones less severe than ``severity`` that overlap ``codes`` (their exclusions changed)."""
    others = [z for z in Zone.objects.filter(status=ZoneStatus.APPROVED).exclude(pk=zone.pk)
              if rules.SEVERITY[z.type] > severity]
    for other in sorted(others, key=lambda z: (rules.SEVERITY[z.type], z.pk)):
        if _overlaps(codes, unit_codes(_units(other))):
            before = other.people
            _refresh(other, at=at)
            if other.people != before:  # the ring's history says why its people changed
                ZoneChange.objects.create(zone=other, at=at, action="residents", from_type=other.type,
                                          to_type=other.type, detail={"people": [before, other.people],
                                                                      "because": zone.ref})


# --- clock inputs ------------------------------------------------------------------------------------------------------


def _member_ids(zone: Zone, units: list[ZoneUnit]) -> tuple[str, list]:
    if zone.status == ZoneStatus.APPROVED:
        return f"SELECT person_id AS id FROM {_q('zones_zoneresident')} WHERE zone_id = %s", [zone.pk]
    sql, params = _members_sql(zone, units, preview=True)
    return f"SELECT m.id FROM ({sql}) m", params


def _as_dt(value) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def _clock_inputs(zone: Zone, units: list[ZoneUnit], *, at: dt.datetime) -> None:
    """last_infection_at, last_exposure_at, last_screening_at of a zone (set-based; docs/zones.md "The clock").

    * infection: the zone's own case, and every case whose person lives inside (first positive sampling);
    * exposure: the latest last exposure of contacts living inside or exposed to those cases;
    * screening: the earliest of everyone's latest negative sampling when everyone inside has one and nobody is
      positive, pool-positive, to be resampled or controlled in place (nobody inside: the screening is vacuous, now).
    """
    members, mparams = _member_ids(zone, units)
    from jingkong.testing.models import PersonTestState
    from jingkong.tracing.models import Case, Contact, ContactReason

    case_t, contact_t, reason_t, state_t = (_q(m._meta.db_table) for m in (Case, Contact, ContactReason,
                                                                             PersonTestState))
    if zone.status == ZoneStatus.APPROVED:
        # Cases and contacts are few, residents many: probe the residents' (zone, person) index from their side.
        def inside(column: str) -> tuple[str, list]:
            return (f"EXISTS (SELECT 1 FROM {_q('zones_zoneresident')} r WHERE r.zone_id = %s "
                    f"AND r.person_id = {column})", [zone.pk])
    else:
        def inside(column: str) -> tuple[str, list]:
            return f"{column} IN ({members})", list(mparams)
    case_in, case_params = inside("person_id")
    with connection.cursor() as c:
        c.execute(f"SELECT id, COALESCE(first_positive_at, created_at) FROM {case_t} WHERE id = %s OR {case_in}",
                  [zone.case_id or 0, *case_params])
        case_rows = c.fetchall()
        infection = max((_as_dt(t) for _, t in case_rows), default=None)
        case_ids = [r[0] for r in case_rows] or [0]
        marks = ", ".join(["%s"] * len(case_ids))
        contact_in, contact_params = inside("person_id")
        c.execute(f"SELECT MAX(last_exposure_at) FROM {contact_t} WHERE id IN "
                  f"(SELECT contact_id FROM {reason_t} WHERE case_id IN ({marks})) OR {contact_in}",
                  [*case_ids, *contact_params])
        exposure = _as_dt(c.fetchone()[0])
        c.execute(f"SELECT COUNT(*), COUNT(s.last_negative_sampled_at), MIN(s.last_negative_sampled_at), "
                  f"COALESCE(SUM(CASE WHEN s.status IN ('positive', 'pool_positive', 'resample') "
                  f"OR s.controlled_in_place THEN 1 ELSE 0 END), 0) "
                  f"FROM ({members}) m LEFT JOIN {state_t} s ON s.person_id = m.id", mparams)
        n, negatives, earliest, bad = c.fetchone()
    if zone.last_infection_at is None or (infection and infection > zone.last_infection_at):
        zone.last_infection_at = infection or zone.last_infection_at
    zone.last_exposure_at = exposure
    if not n:
        zone.last_screening_at = at
    elif negatives == n and not bad:
        zone.last_screening_at = _as_dt(earliest)
    else:
        zone.last_screening_at = None


# --- history, audit, events --------------------------------------------------------------------------------------------


def _record(zone: Zone, action: str, *, actor, at: dt.datetime, event: str | None, from_type: str = "",
            to_type: str = "", reason: str = "", detail: dict | None = None, request=None) -> None:
    ZoneChange.objects.create(zone=zone, at=at, actor=actor if getattr(actor, "pk", None) else None, action=action,
                              from_type=from_type, to_type=to_type, reason=reason, detail=detail or {})
    audit.record(actor=actor, action=f"zone.{action}", object_type="zones.zone", object_id=zone.pk,
                 region_code=zone.region_code, request=request,
                 detail={"ref": zone.ref, "people": zone.people, **({"reason": reason} if reason else {})})
    if event:
        emit(event, subject=zone, region_code=zone.region_code, actor=actor, at=at,
             payload={"ref": zone.ref, "type": zone.type, "from_type": from_type or zone.type,
                      "to_type": to_type or zone.type, "people": zone.people})


def _new_zone(*, type: str, name: str, case, profile, around=None, actor, at: dt.datetime, note: str = "") -> Zone:
    zone = Zone.objects.create(ref=f"tmp-{uuid.uuid4().hex[:24]}", name=name[:255], type=type,
                               status=ZoneStatus.PROPOSED, region_code="", case=case, around=around, profile=profile,
                               proposed_at=at, proposed_by=actor if getattr(actor, "pk", None) else None,
                               updated_at=at, note=note)
    zone.ref = f"ZN-{at.year}-{zone.pk:05d}"
    zone.save(update_fields=["ref"])
    return zone


def _same_region_zone(type: str, refs: list) -> Zone | None:
    """A zone of this type in force (proposed or approved) whose units are exactly these regions: reused."""
    codes = sorted(r[1] for r in refs if r[0] == "region")
    if not codes or len(codes) != len(refs):
        return None
    for zone in Zone.objects.filter(type=type, status__in=IN_FORCE).prefetch_related("units__region"):
        units = list(zone.units.all())
        if all(u.region_id for u in units) and sorted(u.region.code for u in units) == codes:
            return zone
    return None


# --- proposal ----------------------------------------------------------------------------------------------------------


def propose_from_case(case, *, actor, at: dt.datetime | None = None, request=None) -> list[Zone]:
    """Proposed zones for a case (lockdown + control around it + prevention), per the profile in force for the
    case's region. A control or prevention zone already in force over the same regions is reused, not duplicated."""
    at = at or clock.now()
    found, zrules = zone_rules(case.region_code, at)
    places = case_places(case, zrules, at=at)
    if not places:
        raise _invalid("case", _("the case has no known home, workplace or frequent place to draw a zone around"))
    proposal = rules.propose(places, scheme=zrules.scheme, types=list(zrules.types),
                             smallest_unit=zrules.smallest_control_unit, control_ring=zrules.control_ring,
                             prevention_area=zrules.prevention_area)
    out: list[Zone] = []
    with transaction.atomic():
        _serialise()
        # A second proposal for a case whose proposal is still open (a double click, two officers at once) would put
        # duplicate lockdowns in front of the commander: edit or reject the open one instead.
        open_ = Zone.objects.filter(case=case, status=ZoneStatus.PROPOSED, type=proposal.lockdown_type,
                                    note="").order_by("pk").first()
        if open_ is not None:
            raise Conflict(_("case %(case)s already has an open proposal (%(ref)s): edit or reject it first")
                           % {"case": case.ref, "ref": open_.ref}, extra={"zone": open_.ref})
        label = TYPE_LABELS
        lockdown = _new_zone(type=proposal.lockdown_type, name=f"{case.ref} {label[proposal.lockdown_type]}",
                             case=case, profile=found.profile, actor=actor, at=at)
        _create_units(lockdown, proposal.lockdown)
        created = [lockdown]
        inner = lockdown
        for type_, refs in ((proposal.control_type, proposal.control), (proposal.prevention_type, proposal.prevention)):
            if not type_ or not refs:
                continue
            existing = _same_region_zone(type_, refs)
            if existing is not None:
                out.append(existing)
                inner = existing
                continue
            zone = _new_zone(type=type_, name=f"{case.ref} {label[type_]}", case=case, profile=found.profile,
                             around=inner, actor=actor, at=at)
            _create_units(zone, refs)
            created.append(zone)
            inner = zone
        for zone in created:
            _refresh(zone, at=at)
            _record(zone, "propose", actor=actor, at=at, event="zones.zone_proposed", to_type=zone.type,
                    detail={"case": case.ref, "places": [{"kind": p.kind, "label": p.label} for p in places],
                            "units": zone.units.count()}, request=request)
        out = created + out
    return out


# --- edit, approve, reject ---------------------------------------------------------------------------------------------


@dataclass
class UnitIn:
    kind: str
    household_id: int | None = None
    building_id: int | None = None
    entrance: str = ""
    region_code: str = ""


def _resolve_unit(u: UnitIn, i: int, *, scope: Scope) -> ZoneUnit:
    name = f"add_units[{i}]"
    if u.kind == "household":
        hh = Household.objects.select_related("grid").filter(pk=u.household_id or 0).first()
        if hh is None:
            raise _invalid(f"{name}.household_id", _("unknown household"))
        scope.check(hh.grid.code, "household")
        return ZoneUnit(kind="household", household=hh)
    if u.kind in ("entrance", "building", "compound"):
        b = Building.objects.select_related("grid").filter(pk=u.building_id or 0).first()
        if b is None:
            raise _invalid(f"{name}.building_id", _("unknown building"))
        scope.check(b.grid.code, "building")
        entrance = _text(u.entrance, f"{name}.entrance", limit=16, required=u.kind == "entrance")
        return ZoneUnit(kind=u.kind, building=b, entrance=entrance if u.kind == "entrance" else "")
    if u.kind in ("grid", "community", "street"):
        code = _text(u.region_code, f"{name}.region_code", limit=32, required=True)
        region = Region.objects.filter(code=code).first()
        if region is None:
            raise _invalid(f"{name}.region_code", _("unknown region"))
        scope.check(region.code, "region")
        if region.level != u.kind:
            raise _invalid(f"{name}.kind", _("region %(code)s is a %(level)s, not a %(kind)s")
                           % {"code": code, "level": region.level, "kind": u.kind})
        return ZoneUnit(kind=u.kind, region=region)
    raise _invalid(f"{name}.kind", _("unknown unit kind"))


def zone_edit(zone: Zone, *, actor, scope: Scope, name: str | None = None, type: str | None = None,
              add_units: list[UnitIn] | None = None, remove_unit_ids: list[int] | None = None, reason: str = "",
              at: dt.datetime | None = None, request=None) -> Zone:
    """Change a zone's name, type or units. A proposal: ZONES_EDIT; a zone in force: ZONES_APPROVE (commander),
    residents refreshed and ``zones.zone_changed`` emitted."""
    at = at or clock.now()
    reason = _text(reason, "reason", limit=2000)
    new_name = _text(name, "name", limit=255) if name is not None else None
    if name is not None and not new_name:
        raise _invalid("name", _("required"))
    if type is not None and type not in TYPE_LABELS:
        raise _invalid("type", _("unknown zone type"))
    resolved = [_resolve_unit(u, i, scope=scope) for i, u in enumerate(add_units or [])]
    remove = list(remove_unit_ids or [])
    with transaction.atomic():
        _serialise()
        # Status, permission and units are judged on the locked row: a commander approving, lifting or editing the
        # same zone meanwhile is waited for (the checks on a stale read let an editor change a zone just approved,
        # or two edits remove every unit between them).
        zone = Zone.objects.select_for_update().get(pk=zone.pk)
        if zone.status not in IN_FORCE:
            raise Conflict(_("zone %(ref)s is %(status)s: it cannot be edited")
                           % {"ref": zone.ref, "status": zone.get_status_display()})
        if zone.status == ZoneStatus.APPROVED and not actor.has_role_perm(Perm.ZONES_APPROVE):
            raise PermissionDenied(_("a zone in force is changed by a commander"),
                                   extra={"permission": Perm.ZONES_APPROVE})
        if type is not None and rules.scheme_of(type) != rules.scheme_of(zone.type):
            raise _invalid("type", _("%(type)s is not a zone type of this zone's scheme") % {"type": type})
        existing = {u.pk: u for u in zone.units.all()}
        unknown = [i for i in remove if i not in existing]
        if unknown:
            raise _invalid("remove_unit_ids", _("not units of this zone: %(ids)s") % {"ids": unknown})
        if len(existing) - len(set(remove)) + len(resolved) < 1:
            raise _invalid("remove_unit_ids", _("a zone keeps at least one unit"))
        before_codes = unit_codes(_units(zone))
        old_type = zone.type
        changed = {}
        if new_name and new_name != zone.name:
            changed["name"] = [zone.name, new_name]
            zone.name = new_name
        if type is not None and type != zone.type:
            changed["type"] = [zone.type, type]
            zone.type = type
            zone.type_since = at if zone.status == ZoneStatus.APPROVED else zone.type_since
        if remove:
            ZoneUnit.objects.filter(zone=zone, pk__in=remove).delete()
            changed["removed_units"] = len(set(remove))
        for u in resolved:
            u.zone = zone
        if resolved:
            ZoneUnit.objects.bulk_create(resolved)
            changed["added_units"] = len(resolved)
        _refresh(zone, at=at)
        approved = zone.status == ZoneStatus.APPROVED
        if approved:
            codes = before_codes + unit_codes(_units(zone))
            _cascade(zone, codes, min(rules.SEVERITY[old_type], rules.SEVERITY[zone.type]), at=at)
            _publish(zone, actor=actor, at=at)
        _record(zone, "edit", actor=actor, at=at, event="zones.zone_changed" if approved else None,
                from_type=old_type, to_type=zone.type, reason=reason, detail=changed, request=request)
    return zone


def zone_approve(zone: Zone, *, actor, at: dt.datetime | None = None, reason: str = "", request=None) -> Zone:
    at = at or clock.now()
    reason = _text(reason, "reason", limit=2000)
    with transaction.atomic():
        _serialise()
        zone = Zone.objects.select_for_update().get(pk=zone.pk)
        if zone.status != ZoneStatus.PROPOSED:
            raise Conflict(_("zone %(ref)s is not a proposal") % {"ref": zone.ref})
        zone.status = ZoneStatus.APPROVED
        zone.approved_at, zone.approved_by = at, actor if getattr(actor, "pk", None) else None
        zone.type_since = at
        _refresh(zone, at=at)
        _cascade(zone, unit_codes(_units(zone)), rules.SEVERITY[zone.type], at=at)
        _publish(zone, actor=actor, at=at)
        _record(zone, "approve", actor=actor, at=at, event="zones.zone_approved", to_type=zone.type, reason=reason,
                request=request)
    return zone


def zone_reject(zone: Zone, *, actor, reason: str, at: dt.datetime | None = None, request=None) -> Zone:
    at = at or clock.now()
    reason = _text(reason, "reason", limit=2000, required=True)
    with transaction.atomic():
        _serialise()
        zone = Zone.objects.select_for_update().get(pk=zone.pk)
        if zone.status != ZoneStatus.PROPOSED:
            raise Conflict(_("zone %(ref)s is not a proposal") % {"ref": zone.ref})
        zone.status = ZoneStatus.REJECTED
        zone.updated_at = at
        zone.save()
        _record(zone, "reject", actor=actor, at=at, event="zones.zone_rejected", reason=reason, request=request)
    return zone


def zone_regrade(zone: Zone, *, actor, direction: int, reason: str, at: dt.datetime | None = None,
                 request=None) -> Zone:
    """Upgrade (direction -1: one level more severe) or downgrade (+1) a zone in force, with a reason."""
    at = at or clock.now()
    reason = _text(reason, "reason", limit=2000, required=True)
    with transaction.atomic():
        _serialise()
        zone = Zone.objects.select_for_update().get(pk=zone.pk)
        if zone.status != ZoneStatus.APPROVED:
            raise Conflict(_("zone %(ref)s is not in force") % {"ref": zone.ref})
        target = rules.step(zone.type, direction)
        if target is None:
            raise Conflict(_("zone %(ref)s cannot go further %(way)s") % {
                "ref": zone.ref, "way": _("up") if direction < 0 else _("down")})
        old = zone.type
        zone.type, zone.type_since = target, at
        _refresh(zone, at=at)
        _cascade(zone, unit_codes(_units(zone)), min(rules.SEVERITY[old], rules.SEVERITY[target]), at=at)
        _publish(zone, actor=actor, at=at)
        _record(zone, "upgrade" if direction < 0 else "downgrade", actor=actor, at=at, event="zones.zone_changed",
                from_type=old, to_type=target, reason=reason, request=request)
    return zone


def zone_lift(zone: Zone, *, actor, reason: str, at: dt.datetime | None = None, request=None) -> Zone:
    at = at or clock.now()
    reason = _text(reason, "reason", limit=2000, required=True)
    with transaction.atomic():
        _serialise()
        zone = Zone.objects.select_for_update().get(pk=zone.pk)
        if zone.status != ZoneStatus.APPROVED:
            raise Conflict(_("zone %(ref)s is not in force") % {"ref": zone.ref})
        codes = unit_codes(_units(zone))
        zone.status, zone.lifted_at, zone.updated_at = ZoneStatus.LIFTED, at, at
        ZoneResident.objects.filter(zone=zone).delete()
        zone.save()
        _cascade(zone, codes, rules.SEVERITY[zone.type], at=at)
        _publish(zone, actor=actor, at=at)
        _record(zone, "lift", actor=actor, at=at, event="zones.zone_lifted", reason=reason,
                detail={"people_released": zone.people}, request=request)
    return zone


# --- risk areas published from zones ----------------------------------------------------------------------------------


def _publish(zone: Zone, *, actor, at: dt.datetime) -> None:
    """Bring the zone's published areas in line with it: approved lockdown/high → high, control/medium → medium, one
    per division code of its units; areas no longer wanted are withdrawn at ``at``."""
    level = rules.RISK_LEVEL.get(zone.type)
    wanted = set()
    if zone.status == ZoneStatus.APPROVED and level is not None:
        wanted = {(code, level) for code in unit_codes(_units(zone))}
    current = list(RiskArea.objects.filter(zone=zone, source=RiskAreaSource.DISTRICT, withdrawn_at__isnull=True))
    for area in current:
        if (area.area_code, area.level) in wanted:
            wanted.discard((area.area_code, area.level))
        else:
            area.withdrawn_at = at
            area.save(update_fields=["withdrawn_at"])
    names = dict(Region.objects.filter(code__in=[c for c, _lvl in wanted]).values_list("code", "name"))
    for code, lvl in sorted(wanted):
        published = at
        while True:
            clash = RiskArea.objects.filter(source=RiskAreaSource.DISTRICT, area_code=code,
                                            published_at=published).first()
            if clash is None:
                break
            if clash.zone_id == zone.pk:  # withdrawn at this same instant (e.g. an upgrade): published again
                clash.level, clash.withdrawn_at = lvl, None
                clash.save(update_fields=["level", "withdrawn_at"])
                break
            published -= dt.timedelta(microseconds=1)  # another zone published this code at the same instant
        if clash is not None and clash.zone_id == zone.pk:
            continue
        RiskArea.objects.create(source=RiskAreaSource.DISTRICT, area_code=code, level=lvl, zone=zone,
                                name=f"{names.get(code, code)} · {zone.name}"[:255], list_name=zone.ref,
                                published_at=published, created_by=actor if getattr(actor, "pk", None) else None)


# --- people moving in, out or between zones -----------------------------------------------------------------------------


def refresh_people(person_ids, *, at: dt.datetime | None = None) -> dict:
    """Re-place people in the approved zones after they were created, moved (building, household, entrance, grid) or
    imported: their resident rows are rebuilt against every approved zone (most severe first, so the rings keep
    excluding the lockdown), and the counts of the zones they left or entered are recomputed. ``person_ids`` None:
    every approved zone is refreshed in full (a bulk people import). Returns ``{"people", "zones"}``."""
    at = at or clock.now()
    with transaction.atomic():
        _serialise()
        zones = sorted(Zone.objects.filter(status=ZoneStatus.APPROVED), key=lambda z: (rules.SEVERITY[z.type], z.pk))
        if person_ids is None:
            changed = 0
            for zone in zones:
                before = (zone.people, zone.households, zone.vulnerable)
                _refresh(zone, at=at)
                if (zone.people, zone.households, zone.vulnerable) != before:
                    changed += 1  # health codes recompute the residents on zones.zone_changed
                    _record(zone, "residents", actor=None, at=at, event="zones.zone_changed",
                            detail={"people": [before[0], zone.people]})
            return {"people": None, "zones": changed}
        ids = sorted({int(i) for i in person_ids})
        if not ids or not zones:
            return {"people": len(ids), "zones": 0}
        marks = ", ".join(str(i) for i in ids)  # ints
        table = _q("zones_zoneresident")
        touched = set(ZoneResident.objects.filter(person_id__in=ids).values_list("zone_id", flat=True))
        with connection.cursor() as c:
            c.execute(f"DELETE FROM {table} WHERE person_id IN ({marks})")
            for zone in zones:
                sql, params = _members_sql(zone, _units(zone), preview=False)
                c.execute(f"INSERT INTO {table} (zone_id, person_id, zone_type, region_code) "
                          f"SELECT %s, m.id, %s, m.code FROM ({sql}) m WHERE m.id IN ({marks})",
                          [zone.pk, zone.type, *params])
                if c.rowcount:
                    touched.add(zone.pk)
        for zone in zones:
            if zone.pk not in touched:
                continue
            counts = _counts_from(f"SELECT p.id, p.household_id, p.vulnerable FROM {table} r "
                                  f"JOIN {_q('people_person')} p ON p.id = r.person_id WHERE r.zone_id = %s", [zone.pk])
            if counts != (zone.people, zone.households, zone.vulnerable):
                zone.people, zone.households, zone.vulnerable = counts
                zone.updated_at = at
                zone.save(update_fields=["people", "households", "vulnerable", "updated_at"])
        return {"people": len(ids), "zones": len(touched)}


# --- reacting to positives ----------------------------------------------------------------------------------------------


def infections_inside(person_times: dict[int, dt.datetime], *, actor=None, at: dt.datetime | None = None) -> dict:
    """New infections (person → first positive sampling): zones they live in get their last infection moved, and a
    positive living in a control zone (and no lockdown) gets a proposed lockdown zone for its unit."""
    at = at or clock.now()
    if not person_times:
        return {"zones": 0, "upgrades": 0}
    rows = list(ZoneResident.objects.filter(person_id__in=list(person_times)).values_list("zone_id", "person_id",
                                                                                           "zone_type"))
    latest: dict[int, dt.datetime] = {}
    types: dict[int, list[str]] = {}
    for zone_id, person_id, zone_type in rows:
        t = person_times[person_id]
        latest[zone_id] = max(latest.get(zone_id, t), t)
        types.setdefault(person_id, []).append(zone_type)
    _serialise()
    touched = 0
    for zone in Zone.objects.filter(pk__in=list(latest)):
        t = latest[zone.pk]
        if zone.last_infection_at is None or t > zone.last_infection_at:
            zone.last_infection_at, zone.updated_at = t, at
            zone.save(update_fields=["last_infection_at", "updated_at"])
            ZoneChange.objects.create(zone=zone, at=at, action="infection_inside", from_type=zone.type,
                                      to_type=zone.type, detail={"sampled_at": t.isoformat()})
            touched += 1
    upgrades = 0
    for person_id, zone_types in types.items():
        target = rules.upgrade_for_positive(zone_types)
        if target and _propose_upgrade(person_id, target, actor=actor, at=at):
            upgrades += 1
    return {"zones": touched, "upgrades": upgrades}


def exposures_found(items: list[dict]) -> int:
    """Contacts found (``{"person_id", "cases": [refs], "last_exposure_at"}``): approved zones they live in, or whose
    case they were exposed to, get their last exposure moved forward. Returns the number of zones changed."""
    by_person: dict[int, dt.datetime] = {}
    by_case: dict[str, dt.datetime] = {}
    for item in items:
        t = _as_dt(item.get("last_exposure_at")) if item.get("last_exposure_at") else None
        if t is None:
            continue
        if isinstance(item.get("person_id"), int):
            by_person[item["person_id"]] = max(by_person.get(item["person_id"], t), t)
        for ref in item.get("cases") or []:
            by_case[str(ref)] = max(by_case.get(str(ref), t), t)
    latest: dict[int, dt.datetime] = {}
    for zone_id, person_id in ZoneResident.objects.filter(person_id__in=list(by_person)).values_list("zone_id",
                                                                                                      "person_id"):
        latest[zone_id] = max(latest.get(zone_id, by_person[person_id]), by_person[person_id])
    for zone_id, ref in Zone.objects.filter(status=ZoneStatus.APPROVED, case__ref__in=list(by_case)).values_list(
            "pk", "case__ref"):
        latest[zone_id] = max(latest.get(zone_id, by_case[ref]), by_case[ref])
    changed = 0
    for zone in Zone.objects.filter(pk__in=list(latest), status=ZoneStatus.APPROVED):
        if zone.last_exposure_at is None or latest[zone.pk] > zone.last_exposure_at:
            zone.last_exposure_at = latest[zone.pk]
            zone.save(update_fields=["last_exposure_at"])
            changed += 1
    return changed


def _propose_upgrade(person_id: int, target: str, *, actor, at: dt.datetime) -> Zone | None:
    from jingkong.people.models import Person
    from jingkong.tracing.models import Case

    person = Person.objects.select_related("grid", "building", "household").filter(pk=person_id).first()
    if person is None or person.grid_id is None:
        return None
    control = Zone.objects.filter(status=ZoneStatus.APPROVED, residents__person_id=person_id,
                                  type=rules.step(target, 1)).order_by("pk").first()
    if control is None:
        return None
    try:
        found, zrules = zone_rules(person.grid.code, at)
    except ValidationFailed:
        return None
    building = person.building or (person.household.building if person.household_id else None)
    place = rules.Place(kind="home", grid_code=building.grid.code if building else person.grid.code,
                        building_id=building.pk if building else None, household_id=person.household_id,
                        entrance=person.unit or (person.household.unit if person.household_id else ""),
                        compound=rules.compound_key(building.address) if building else None)
    unit = rules.lockdown_unit(place, zrules.smallest_control_unit)
    # Already proposed or in force for this person: nothing more to propose.
    if Zone.objects.filter(type=target, status=ZoneStatus.PROPOSED, note__startswith=f"upgrade:{person_id}:").exists():
        return None
    case = Case.objects.filter(person_id=person_id).first()
    zone = _new_zone(type=target, name=f"{control.name} → {TYPE_LABELS[target]}", case=case, profile=found.profile,
                     around=None, actor=actor, at=at, note=f"upgrade:{person_id}:{control.ref}")
    _create_units(zone, [unit])
    _refresh(zone, at=at)
    _record(zone, "propose_upgrade", actor=actor, at=at, event="zones.zone_proposed", from_type=control.type,
            to_type=target, reason=_("a positive lives in control zone %(ref)s") % {"ref": control.ref},
            detail={"control_zone": control.ref, "case": case.ref if case else None})
    return zone


# --- review (job) -------------------------------------------------------------------------------------------------------


def review_all(*, at: dt.datetime | None = None, progress=None, scope_prefix: str = "") -> dict:
    """Refresh the clock inputs of every approved zone and evaluate its countdown; lists the zones ready to move."""
    from jingkong.zones import selectors

    at = at or clock.now()
    zones = list(Zone.objects.filter(status=ZoneStatus.APPROVED, region_code__startswith=scope_prefix)
                 .order_by("pk"))
    ready, blocked = [], 0
    for i, zone in enumerate(zones, 1):
        with transaction.atomic():
            units = _units(zone)
            _clock_inputs(zone, units, at=at)
            zone.updated_at = at
            zone.save(update_fields=["last_infection_at", "last_exposure_at", "last_screening_at", "updated_at"])
        cd = selectors.countdown_of(zone, at=at)
        if cd is not None and cd.ready:
            ready.append({"ref": zone.ref, "name": zone.name, "type": zone.type, "action": cd.action,
                          "to_type": cd.to_type})
        else:
            blocked += 1
        if progress:
            progress(i, len(zones))
    return {"zones": len(zones), "ready": ready, "blocked": blocked, "at": at.isoformat()}


# --- imported risk-area lists -------------------------------------------------------------------------------------------

RISK_COLUMNS = ["code", "name", "level", "published_at"]
RISK_ALIASES = {c: c for c in RISK_COLUMNS} | {
    "area_code": "code", "division_code": "code", "区划代码": "code", "行政区划代码": "code", "地区代码": "code",
    "名称": "name", "地区": "name", "地区名称": "name", "area": "name",
    "风险等级": "level", "等级": "level", "risk": "level", "risk_level": "level",
    "发布时间": "published_at", "published": "published_at", "发布日期": "published_at",
}
LEVEL_VALUES = {"high": "high", "medium": "medium", "low": "low", "高": "high", "高风险": "high", "高风险地区": "high",
                "高风险区": "high", "中": "medium", "中风险": "medium", "中风险地区": "medium", "中风险区": "medium",
                "低": "low", "低风险": "low", "低风险地区": "low", "低风险区": "low"}


@dataclass
class ImportResult:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    encoding: str = ""
    errors: list[dict] = field(default_factory=list)
    error_file: str = ""

    def summary(self) -> dict:
        return {"rows": self.rows, "created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "rejected": self.rejected, "encoding": self.encoding, "errors": len(self.errors),
                "errors_sample": self.errors[:20], "error_file": self.error_file}


PUBLISHED_YEARS = (2000, 2100)  # sanity bounds of a list's publication time (0001-01-01 overflowed to a 500)


def _parse_time(text: str) -> dt.datetime:
    """A published_at cell: ValueError for anything that is not a date or date-time in PUBLISHED_YEARS."""
    zone = ZoneInfo(clock.local_time_zone())
    try:
        if len(text) == 10:
            moment = dt.datetime.combine(dt.date.fromisoformat(text), dt.time(0), tzinfo=zone).astimezone(dt.UTC)
        else:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("/", "-"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zone)
            moment = moment.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError(text) from None
    if not PUBLISHED_YEARS[0] <= moment.year <= PUBLISHED_YEARS[1]:
        raise ValueError(text)
    return moment


def risk_areas_import(data: bytes, *, actor=None, list_name: str = "", at: dt.datetime | None = None,
                      error_file: str | Path | None = None, request=None) -> dict:
    """Import another place's list of risk areas (CSV ``code,name,level[,published_at]``, UTF-8 or GBK/GB18030).

    Each bad row is reported by line and field and skipped; good rows are kept. Re-running the same file changes
    nothing: a row is identified by (code, published_at); a row without published_at is unchanged when the same code
    is already in force at that level. A newer row for a code withdraws the older imported one.
    """
    from jingkong.people.csvread import canonical_header, decode_bytes

    at = at or clock.now()
    list_name = _text(list_name, "list_name", limit=128)
    result = ImportResult()
    try:
        text_bytes, result.encoding = decode_bytes(data)
    except ValueError as exc:
        raise _invalid("file", str(exc)) from None
    text = text_bytes.decode("utf-8")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        raise _invalid("file", _("the file is empty (expected a header: code,name,level[,published_at])"))
    names, _unknown = canonical_header(header, RISK_ALIASES)
    missing = [c for c in ("code", "name", "level") if c not in names]
    if missing:
        raise ValidationFailed(_("line 1: missing column(s) %(cols)s (expected code,name,level[,published_at])")
                               % {"cols": ", ".join(missing)}, extra={"line": 1, "field": missing[0]})
    good = []
    seen: dict[tuple, int] = {}

    def error(line: int, field_name: str, reason: str, value: str = "") -> None:
        result.errors.append({"line": line, "field": field_name, "reason": reason, "value": value[:100]})

    line = 1
    for record in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        result.rows += 1
        row = dict(zip(names, record, strict=False))
        if len(record) != len(names):
            error(line, "", _("expected %(n)d fields, found %(m)d") % {"n": len(names), "m": len(record)})
            continue
        if any("\x00" in cell for cell in record):
            error(line, "", _("contains a NUL character"))
            continue
        code = (row.get("code") or "").strip()
        name = (row.get("name") or "").strip()
        level_text = (row.get("level") or "").strip()
        when = (row.get("published_at") or "").strip()
        if not code.isdigit() or not code.isascii() or len(code) not in (6, 9, 12, 15):
            error(line, "code", _("a division code of 6, 9, 12 or 15 digits"), code)
            continue
        if not name or len(name) > 255:
            error(line, "name", _("required, at most 255 characters"), name)
            continue
        level = LEVEL_VALUES.get(level_text.lower())
        if level is None:
            error(line, "level", _("high, medium or low (高/中/低)"), level_text)
            continue
        published = None
        if when:
            try:
                published = _parse_time(when)
            except ValueError:
                error(line, "published_at", _("a date (YYYY-MM-DD) or ISO date-time between %(a)d and %(b)d")
                      % {"a": PUBLISHED_YEARS[0], "b": PUBLISHED_YEARS[1]}, when)
                continue
        key = (code, published)
        if key in seen:
            error(line, "code", _("repeats line %(l)d") % {"l": seen[key]}, code)
            continue
        seen[key] = line
        good.append((code, name, level, published))
    with transaction.atomic():
        for code, name, level, published in good:
            current = RiskArea.objects.filter(source=RiskAreaSource.IMPORTED, area_code=code,
                                              withdrawn_at__isnull=True).order_by("-published_at").first()
            if published is None:
                if current is not None and current.level == level:
                    result.unchanged += 1
                    continue
                published = at
            same = RiskArea.objects.filter(source=RiskAreaSource.IMPORTED, area_code=code,
                                           published_at=published).first()
            if same is not None:
                if (same.level, same.name) == (level, name):
                    result.unchanged += 1
                else:
                    same.level, same.name = level, name
                    same.save(update_fields=["level", "name"])
                    result.updated += 1
                continue
            RiskArea.objects.filter(source=RiskAreaSource.IMPORTED, area_code=code, withdrawn_at__isnull=True,
                                    published_at__lt=published).update(withdrawn_at=published)
            later = RiskArea.objects.filter(source=RiskAreaSource.IMPORTED, area_code=code,
                                            published_at__gt=published).order_by("published_at").first()
            RiskArea.objects.create(source=RiskAreaSource.IMPORTED, area_code=code, name=name, level=level,
                                    list_name=list_name, published_at=published,
                                    withdrawn_at=later.published_at if later else None,
                                    created_by=actor if getattr(actor, "pk", None) else None)
            result.created += 1
        result.rejected = len(result.errors)
        audit.record(actor=actor, action="riskarea.import", object_type="zones.riskarea", object_id=list_name[:64],
                     request=request, source="" if request else "cli",
                     detail={k: v for k, v in result.summary().items() if k != "errors_sample"})
        if result.created or result.updated:
            emit("zones.risk_areas_imported", subject_type="zones.riskarea", subject_id=list_name, at=at,
                 actor=actor, payload={"created": result.created, "updated": result.updated, "list": list_name})
    if result.errors and error_file:
        path = Path(error_file)
        with path.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["line", "field", "reason", "value"])
            for e in result.errors:
                writer.writerow([e["line"], e["field"], e["reason"], e["value"]])
        result.error_file = str(path)
    return result.summary()


def zone_scope_check(zone: Zone, scope: Scope) -> None:
    if not scope.contains(zone.region_code):
        raise NotFound(_("zone not found"))
