"""Selectors of the screen's map layers: case points, sampling sites, transfer runs, facilities, checkpoints, problems
and service requests — always given the caller's :class:`Scope` and the requested region.

* The requested region must lie inside the caller's scope (404 otherwise, like every other app) and is then used as
  a narrower scope, so each layer reuses its own app's selectors unchanged: campaigns and sites (testing), the route
  map and the facility list (isolation), the request queue and problem list with their "overdue" (command), the
  checkpoints' local-day window (codes). Where an app's board function is too slow for a map at city scale (the
  site board scans every sample; facility capacity looks up the profile per facility), the layer counts with the
  board's definitions in one grouped query, and a test holds both to the same numbers.
* Coordinates: a record without coordinates of its own is drawn at its home building (the person's building, else
  their household's), else at the stored label point (``center_lon/lat``) of the deepest region of its code that has
  one. Coordinates are rounded to 6 decimals (about 0.1 m): the answers stay small.
* No person data: no names, ID numbers or phones in any layer. Case points carry the case number (the layer needs
  TRACING_VIEW, whose holders read cases anyway); service requests are drawn at the building, not the person.
* Each layer is one main query (grouped where it counts), plus the reused selectors' own few and, for rows without
  a point of their own, one fallback read each (household building, region label point) — never a query per row.
* Measured on the benchmark's 1 M-person district (10 k cases, 3 k open requests; in-process, machine shared at
  load 4–7, so pessimistic): district-wide case points p50 ≈ 0.3 s on SQLite and PostgreSQL, sites ≈ 0.1 s, routes,
  services ≈ 0.1 s, facilities, checkpoints, problems < 0.06 s; a street's case points ≈ 50 ms.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Case as SqlCase
from django.db.models import CharField, Count, Exists, OuterRef, Q, Value, When
from django.db.models.functions import Substr
from django.utils.translation import gettext as _

from jingkong.access.guard import Scope
from jingkong.core import clock
from jingkong.core.exceptions import NotFound, ValidationFailed
from jingkong.geo.models import Region

MAX_CASE_POINTS = 20_000
MAX_FEATURES = 20_000  # problems / service requests per answer (open ones: far fewer in practice)
DIGITS = 6
ANCESTOR_LENGTHS = (12, 9, 6)  # community, street, district codes above a grid (geo.rules)


# --- shared helpers ---------------------------------------------------------------------------------------------------


def layer_scope(scope: Scope, region: str = "") -> tuple[Scope, str]:
    """The requested region as a scope: the caller's own region by default; a code outside the caller's scope, or
    one naming no region, is "not found" (existence outside the scope is not revealed)."""
    region = (region or "").strip()
    if region and (len(region) > 32 or not region.isdigit()):
        raise ValidationFailed(_("region: a division code of digits"), extra={"field": "region"})
    if scope.prefix is None:
        raise NotFound(_("region not found"), extra={"field": "region"})
    if not region or region == scope.prefix:
        return scope, scope.prefix
    if not scope.contains(region) or not Region.objects.filter(code=region).exists():
        raise NotFound(_("region not found"), extra={"field": "region"})
    return Scope(region), region


def rnd(value: float | None) -> float | None:
    return None if value is None else round(float(value), DIGITS)


def round_coordinates(coords):
    """Round every number of a GeoJSON coordinates array (any nesting) to 6 decimals."""
    if isinstance(coords, (int, float)):
        return round(float(coords), DIGITS)
    return [round_coordinates(c) for c in coords]


def point(lat: float, lng: float, properties: dict) -> dict:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [rnd(lng), rnd(lat)]},
            "properties": properties}


def collection(features: list[dict], **extra) -> dict:
    return {"type": "FeatureCollection", "features": features, **extra}


def region_centres(codes: Iterable[str]) -> dict[str, tuple[float, float]]:
    """(lat, lng) for each region code: the label point of the code's own region, else of the deepest region above
    it that has one (grid → community → street → district). One query per 500 codes."""
    codes = {c for c in codes if c}
    if not codes:
        return {}
    wanted = set(codes)
    for c in codes:
        wanted.update(c[:n] for n in ANCESTOR_LENGTHS if n < len(c))
    found: dict[str, tuple[float, float]] = {}
    ordered = sorted(wanted)
    for i in range(0, len(ordered), 500):
        for code, lng, lat in (Region.objects.filter(code__in=ordered[i:i + 500], center_lon__isnull=False,
                                                     center_lat__isnull=False)
                               .values_list("code", "center_lon", "center_lat")):
            found[code] = (lat, lng)
    out = {}
    for c in codes:
        for key in (c, *(c[:n] for n in ANCESTOR_LENGTHS if n < len(c))):
            if key in found:
                out[c] = found[key]
                break
    return out


def household_homes(person_ids: Iterable[int]) -> dict[int, tuple[float, float]]:
    """(lat, lng) of the household's building for persons without a building of their own (rare: imports set the
    building from the household), one query per 500 persons."""
    from jingkong.people.models import Person

    ids = sorted(set(person_ids))
    out: dict[int, tuple[float, float]] = {}
    for i in range(0, len(ids), 500):
        for pk, lat, lng in (Person.objects.filter(pk__in=ids[i:i + 500], household__building__isnull=False)
                             .values_list("pk", "household__building__lat", "household__building__lon")):
            out[pk] = (lat, lng)
    return out


def place(rows: list[tuple], *, lat_i: int, lng_i: int, code_i: int,
          person_i: int | None = None) -> list[tuple[float, float] | None]:
    """Where to draw each row: its own coordinates (a record's point, or the person's building read by the main
    query), else the person's household's building, else the label point of the row's region (or the deepest
    region above it with one); None when nothing is known. The fallbacks cost one query each, for the rows that
    need them only — the main query stays a single join per row."""
    missing = [r for r in rows if r[lat_i] is None or r[lng_i] is None]
    homes = household_homes(r[person_i] for r in missing) if person_i is not None and missing else {}
    centres = region_centres(r[code_i] for r in missing if person_i is None or r[person_i] not in homes)
    out = []
    for r in rows:
        if r[lat_i] is not None and r[lng_i] is not None:
            out.append((r[lat_i], r[lng_i]))
        elif person_i is not None and r[person_i] in homes:
            out.append(homes[r[person_i]])
        else:
            out.append(centres.get(r[code_i]))
    return out


# --- cases ------------------------------------------------------------------------------------------------------------


CONTROL_TYPES = ("lockdown", "control", "high_risk", "medium_risk")  # as the situation family's


def unit_shapes() -> tuple[bool, bool, set[int]]:
    """Which kinds of zone units the control-type zones use: household units? building units? region units of which
    code lengths? (one small grouped query over the zone units)."""
    from django.db.models.functions import Length

    from jingkong.zones.models import ZoneUnit

    rows = (ZoneUnit.objects.filter(zone__type__in=CONTROL_TYPES, zone__approved_at__isnull=False)
            .values_list("kind", Length("region__code")).distinct())
    household = building = False
    lengths: set[int] = set()
    for kind, length in rows:
        household |= kind == "household"
        building |= kind not in ("household", "entrance") and not length  # building, compound (building rows)
        if length:
            lengths.add(int(length))
    return household, building, lengths


def found_setting() -> SqlCase:
    """Where a case was found, as of the instant it was created — the rules of the ``cases`` family
    (dashboard.families.situation, metric ``cases.new``), so the map's colours add up to the screen's tiles:

    * "quarantine": found by a test in quarantine, or the person had an isolation order (not cancelled, not a case's
      own: tier ``case`` / mode ``hospital``) created by then and not released before, or was a contact put in
      quarantine by then and not closed before;
    * "control": the person lived in a lockdown / control (high- / medium-risk) zone in force at that instant — one
      listing them among its residents, or whose household, building or region units contain them;
    * otherwise "community" (社会面).

    Three indexed EXISTS per case in one query (the family's whole-installation queries are too slow per request).
    Not followed here: entrance units and a zone's type before a later up/downgrade (rare; the family has them)."""
    from jingkong.isolation.models import IsolationOrder, OrderStatus
    from jingkong.tracing.models import Contact, FoundBy
    from jingkong.zones.models import ZoneResident, ZoneStatus, ZoneUnit

    at = OuterRef("created_at")
    order = (IsolationOrder.objects.filter(person_id=OuterRef("person_id"), created_at__lte=at)
             .exclude(status=OrderStatus.CANCELLED).exclude(tier="case").exclude(mode="hospital")
             .filter(Q(released_at__isnull=True) | Q(released_at__gte=at)))
    contact = Contact.objects.filter(person_id=OuterRef("person_id"), in_quarantine_at__lte=at).filter(
        Q(closed_at__isnull=True) | Q(closed_at__gte=at))
    in_force = (Q(zone__status__in=[ZoneStatus.APPROVED, ZoneStatus.LIFTED], zone__approved_at__lte=at,
                  zone__type__in=CONTROL_TYPES) & (Q(zone__lifted_at__isnull=True) | Q(zone__lifted_at__gt=at)))
    resident = ZoneResident.objects.filter(in_force, person_id=OuterRef("person_id"))
    # One EXISTS per kind of unit in use, each a probe of its own index (one OR of them made SQLite scan every zone
    # for every case; a kind nobody uses is left out, its empty index would look useless to SQLite's planner)
    units = ZoneUnit.objects.filter(in_force)
    code = OuterRef("region_code")
    household, building, lengths = unit_shapes()
    unit_checks = []
    if household:
        unit_checks.append(Q(Exists(units.filter(household_id=OuterRef("person__household_id")))))
    if building:
        unit_checks.append(Q(Exists(units.filter(building_id=OuterRef("person__building_id"))
                                    .exclude(kind="entrance"))))
    unit_checks += [Q(Exists(units.filter(region__code=Substr(code, 1, n)))) for n in sorted(lengths)]
    control = Q(Exists(resident))
    for check in unit_checks:
        control |= check
    return SqlCase(When(Q(found_by=FoundBy.QUARANTINE_TEST) | Q(Exists(order)) | Q(Exists(contact)),
                        then=Value("quarantine")),
                   When(control, then=Value("control")),
                   default=Value("community"), output_field=CharField())


@contextlib.contextmanager
def point_lookup_plan():
    """On PostgreSQL, plan the enclosed query as what it is — 10 k primary-key lookups into a cached person table
    with a few indexed EXISTS each — for this transaction only: no JIT compilation (the EXISTS push the estimated
    cost past ``jit_above_cost``; compiling took longer, ≈ 250 ms, than running) and ``random_page_cost`` 1.1
    (the default 4.0 assumes uncached disk reads and made the planner read all million persons in parallel: 570 →
    410 ms at 1 M persons on a loaded machine)."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(), connection.cursor() as c:
        c.execute("SET LOCAL jit = off")
        c.execute("SET LOCAL random_page_cost = 1.1")
        yield


def case_points(*, scope: Scope, region: str = "", limit: int = MAX_CASE_POINTS) -> dict:
    """The cases of the region as compact points ``[lat, lng, classification, found, ref]``, newest first, at most
    ``limit`` (``truncated`` says when there are more; ``count`` is always the full number)."""
    from jingkong.tracing.models import Case

    sub, _prefix = layer_scope(scope, region)
    base = Case.objects.filter(sub.q("region_code"))
    with point_lookup_plan():
        rows = list(base.annotate(found=found_setting()).order_by("-created_at", "-pk")
                    .values_list("person__building__lat", "person__building__lon", "classification", "found", "ref",
                                 "region_code", "person_id")[:limit + 1])
    truncated = len(rows) > limit
    rows = rows[:limit]
    points, unlocated = [], 0
    for row, at in zip(rows, place(rows, lat_i=0, lng_i=1, code_i=5, person_i=6), strict=True):
        if at is None:
            unlocated += 1
        else:
            points.append([round(at[0], DIGITS), round(at[1], DIGITS), row[2], row[3], row[4]])
    return {"points": points, "count": base.count() if truncated else len(rows), "truncated": truncated,
            "unlocated": unlocated}


# --- testing sites ----------------------------------------------------------------------------------------------------


def _local_time(now: dt.datetime) -> dt.time:
    return now.astimezone(ZoneInfo(clock.local_time_zone())).time()


def _is_open(opens: dt.time, closes: dt.time, at: dt.time) -> bool:
    if opens == closes:  # round the clock
        return True
    if opens < closes:
        return opens <= at < closes
    return at >= opens or at < closes  # open over midnight


def site_status(row: dict, queue: int, now: dt.datetime) -> str:
    """out_of_service | done (everyone assigned sampled) | queue (more expected in the coming hour than the site
    samples in an hour: the site board's warning) | closed (outside opening hours) | open."""
    if not row["active"]:
        return "out_of_service"
    if row["residents"] and row["scans"] >= row["residents"]:
        return "done"
    if queue > 0:
        return "queue"
    if not _is_open(row["opens_at"], row["closes_at"], _local_time(now)):
        return "closed"
    return "open"


def site_figures(*, campaign, site_ids: list[int], now: dt.datetime) -> dict[int, dict]:
    """Per site of the round: target and residents expected in the coming hour (the site board's definitions, from
    the building assignments), and swabs taken (the sum of the round's tubes' ``member_count`` at the site, which
    the sampling hot path keeps: the board's scan count without reading every sample — the board's own query scans
    the whole sample table, 0.7 s at 500 k swabs). Two grouped queries."""
    from django.db.models import Sum

    from jingkong.testing.models import SiteAssignment, Tube

    hour = dt.timedelta(hours=1)
    out: dict[int, dict] = {pk: {"target": 0, "expected_next_hour": 0, "sampled": 0} for pk in site_ids}
    for site_id, target, expected in (SiteAssignment.objects.filter(campaign=campaign, site_id__in=site_ids)
                                      .values("site_id")
                                      .annotate(t=Sum("residents"),
                                                e=Sum("residents", filter=Q(slot_start__lt=now + hour,
                                                                            slot_end__gt=now)))
                                      .values_list("site_id", "t", "e").order_by()):
        out[site_id].update(target=target or 0, expected_next_hour=expected or 0)
    for site_id, sampled in (Tube.objects.filter(campaign=campaign, site_id__in=site_ids).values("site_id")
                             .annotate(n=Sum("member_count")).values_list("site_id", "n").order_by()):
        out[site_id]["sampled"] = sampled or 0
    return out


def site_features(*, scope: Scope, region: str = "", now: dt.datetime | None = None) -> dict:
    """Sampling sites serving the running round(s) that concern the region (the testing app's ``site_list``): sampled
    = swabs taken at the site in the round, target = residents of the buildings assigned to it, progress = their
    ratio, queue = people expected in the coming hour beyond the site's hourly capacity (the site board's warning)."""
    from jingkong.testing import selectors as testing
    from jingkong.testing.models import CampaignStatus

    sub, _prefix = layer_scope(scope, region)
    now = now or clock.now()
    features = []
    for campaign in testing.campaign_list(scope=sub, status=CampaignStatus.RUNNING):
        sites = list(testing.site_list(scope=sub, campaign=campaign))
        figures = site_figures(campaign=campaign, site_ids=[s.pk for s in sites], now=now)
        for site in sites:
            f = figures[site.pk]
            queue = max(0, f["expected_next_hour"] - site.capacity_per_hour) if site.active else 0
            row = {"active": site.active, "residents": f["target"], "scans": f["sampled"], "opens_at": site.opens_at,
                   "closes_at": site.closes_at}
            features.append(point(site.lat, site.lon, {
                "id": site.pk, "code": site.code, "name": site.name, "kind": site.kind,
                "campaign": campaign.name, "campaign_id": campaign.pk,
                "sampled": f["sampled"], "target": f["target"],
                "progress": round(f["sampled"] / f["target"], 4) if f["target"] else None,
                "queue": queue, "expected_next_hour": f["expected_next_hour"],
                "capacity_per_hour": site.capacity_per_hour, "status": site_status(row, queue, now)}))
    return collection(features)


# --- transfer runs ----------------------------------------------------------------------------------------------------


def _tomorrow_start(now: dt.datetime) -> dt.datetime:
    tz = ZoneInfo(clock.local_time_zone())
    day = now.astimezone(tz).date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(), tzinfo=tz).astimezone(dt.UTC)


def route_features(*, scope: Scope, region: str = "", now: dt.datetime | None = None) -> dict:
    """Transfer runs of the region that are active today (planned for today or earlier, dispatched, at a pickup,
    under way) from the isolation route map (``selectors_transfer.map_geojson``): the route as a LineString and the
    vehicle at its last reached stop. ``people``: the run's batches; ``eta``: the route's planned arrival at the
    facility, the vehicle's next pickup (else that arrival)."""
    from jingkong.isolation import selectors_transfer
    from jingkong.isolation.models import Transfer, TransferStatus

    sub, _prefix = layer_scope(scope, region)
    now = now or clock.now()
    data = selectors_transfer.map_geojson(scope=sub)
    runs = {f["properties"]["transfer_id"] for f in data["features"] if f["properties"].get("layer") in ("route",
                                                                                                      "vehicle")}
    later = set(Transfer.objects.filter(pk__in=runs, status=TransferStatus.PLANNED,
                                        planned_start__gte=_tomorrow_start(now)).values_list("pk", flat=True))
    people: dict[str, int] = defaultdict(int)
    next_pickup: dict[str, str] = {}
    for f in data["features"]:
        p = f["properties"]
        if p.get("layer") != "pickup":
            continue
        people[p["transfer"]] += p.get("people") or 0
        if not p.get("done") and p.get("eta") and (p["transfer"] not in next_pickup or p["eta"] < next_pickup[p["transfer"]]):
            next_pickup[p["transfer"]] = p["eta"]
    features = []
    for f in data["features"]:
        p = f["properties"]
        kind = p.get("layer")
        if kind not in ("route", "vehicle") or p["transfer_id"] in later:
            continue
        eta = p.get("planned_end") if kind == "route" else next_pickup.get(p["ref"], p.get("planned_end"))
        features.append({"type": "Feature",
                         "geometry": {**f["geometry"], "coordinates": round_coordinates(f["geometry"]["coordinates"])},
                         "properties": {"run_id": p["transfer_id"], "ref": p["ref"], "vehicle": p["vehicle"],
                                        "status": p["status"], "people": people.get(p["ref"], 0), "eta": eta,
                                        "kind": kind}})
    return collection(features)


# --- facilities -------------------------------------------------------------------------------------------------------


def facility_features(*, scope: Scope, region: str = "", user=None) -> dict:
    """Active facilities run inside the region (the isolation app's ``facility_list``: a facility manager sees
    theirs) with their rooms as the reserve board counts them (``reserve.facility_capacity``): rooms = usable rooms
    (not out of service), occupied and free rooms, occupancy = occupied / usable. One grouped query over the rooms
    (the board's own function also forecasts from the profile, one lookup per facility: not needed on the map)."""
    from jingkong.isolation import selectors_facilities as facilities
    from jingkong.isolation.models import Room, RoomState

    sub, _prefix = layer_scope(scope, region)
    items = list(facilities.facility_list(scope=sub, user=user, active_only=True)
                 .values_list("pk", "code", "name", "kind", "lon", "lat")[:2000])
    rooms: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for fid, state, n in (Room.objects.filter(facility_id__in=[f[0] for f in items]).values("facility_id", "state")
                          .annotate(n=Count("id")).values_list("facility_id", "state", "n").order_by()):
        rooms[fid][state] = n
    features = []
    for pk, code, name, kind, lng, lat in items:
        r = rooms[pk]
        usable = sum(n for state, n in r.items() if state != RoomState.OUT_OF_SERVICE)
        occupied = r[RoomState.OCCUPIED]
        features.append(point(lat, lng, {"id": pk, "code": code, "name": name, "kind": kind, "rooms": usable,
                                         "occupied": occupied, "free": r[RoomState.FREE],
                                         "occupancy": round(occupied / usable, 4) if usable else None}))
    return collection(features)


# --- checkpoints ------------------------------------------------------------------------------------------------------


def checkpoint_features(*, scope: Scope, region: str = "", day: dt.date | None = None) -> dict:
    """Checkpoints of the region (active ones, and any with crossings that day) with the local day's crossings,
    denials and referrals (default today, Asia/Shanghai)."""
    from jingkong.codes.models import Checkpoint, Crossing, Decision
    from jingkong.codes.selectors_checkpoints import day_window

    sub, _prefix = layer_scope(scope, region)
    start, end = day_window(day or clock.today())
    counts = {r[0]: r[1:] for r in (Crossing.objects.filter(sub.q("checkpoint__region_code"), at__gte=start, at__lt=end)
                                    .values("checkpoint_id")
                                    .annotate(n=Count("id"), denied=Count("id", filter=Q(decision=Decision.DENY)),
                                              referred=Count("id", filter=Q(decision=Decision.REFER)))
                                    .values_list("checkpoint_id", "n", "denied", "referred").order_by())}
    features = []
    for pk, name, kind, active, lng, lat in (Checkpoint.objects.filter(sub.q("region_code"))
                                             .filter(Q(active=True) | Q(pk__in=list(counts)))
                                             .order_by("code").values_list("pk", "name", "kind", "active", "lon",
                                                                           "lat")):
        n, denied, referred = counts.get(pk, (0, 0, 0))
        features.append(point(lat, lng, {"id": pk, "name": name, "kind": kind, "active": active,
                                         "crossings_today": n, "denied_today": denied, "referred_today": referred}))
    return collection(features)


# --- problems and service requests ------------------------------------------------------------------------------------


def problem_features(*, scope: Scope, region: str = "", now: dt.datetime | None = None) -> dict:
    """Open problems of the region at their own point, else their grid's label point; ``overdue`` as the command
    feature defines it (open and past the deadline). The title is the number and category — the free-text
    description may name people and is not shown on the map."""
    from jingkong.command import selectors as command
    from jingkong.command.models import ProblemCategory

    sub, _prefix = layer_scope(scope, region)
    now = now or clock.now()
    rows = list(command.problem_list(scope=sub, open_only=True, now=now)
                .values_list("pk", "ref", "category", "urgency", "status", "deadline", "lat", "lon",
                             "region_code")[:MAX_FEATURES])
    labels = {value: str(label) for value, label in ProblemCategory.choices}  # translated once, not per row
    features = []
    for (pk, ref, category, urgency, status, deadline, *_rest), at in zip(
            rows, place(rows, lat_i=6, lng_i=7, code_i=8), strict=True):
        if at is None:
            continue
        features.append(point(*at, {"id": pk, "ref": ref, "type": category, "urgency": urgency,
                                         "status": status, "overdue": deadline < now,
                                         "title": f"{ref} · {labels.get(category, category)}"}))
    return collection(features)


def service_features(*, scope: Scope, region: str = "", now: dt.datetime | None = None) -> dict:
    """Open service requests of the region at the resident's building (never the person), else their grid's label
    point; ``overdue`` as the request queue defines it (open and past the deadline)."""
    from jingkong.command import selectors_services as services

    sub, _prefix = layer_scope(scope, region)
    now = now or clock.now()
    rows = list(services.request_queue(scope=sub, open_only=True, now=now)
                .values_list("pk", "ref", "category", "priority", "status", "deadline", "person__building__lat",
                             "person__building__lon", "region_code", "person_id")[:MAX_FEATURES])
    features = []
    for (pk, ref, category, priority, status, deadline, *_rest), at in zip(
            rows, place(rows, lat_i=6, lng_i=7, code_i=8, person_i=9), strict=True):
        if at is None:
            continue
        features.append(point(*at, {"id": pk, "ref": ref, "category": category, "priority": priority,
                                       "status": status, "overdue": deadline < now}))
    return collection(features)
