"""The zones GeoJSON (the command screen's first map layer): the same answer as the per-zone countdown, in a number
of queries that does not grow with the number of zones; the ``region`` filter; coordinates rounded to 6 decimals."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jingkong.zones import rules, selectors
from jingkong.zones.models import Zone, ZoneChange, ZoneStatus
from jingkong.zones.tests.conftest import NOW, activate

pytestmark = pytest.mark.django_db
URL = "/api/v1/zones/zones/geojson"
_n = itertools.count(1)

# Coordinates as shapely writes them (full floats); the listing must send them rounded to 6 decimals.
RAW_RING = [[121.80123456789, 29.90123456789], [121.80987654321, 29.90123456789], [121.80987654321, 29.90987654321],
            [121.80123456789, 29.90123456789]]
ROUNDED_RING = [[121.801235, 29.901235], [121.809877, 29.901235], [121.809877, 29.909877],
                [121.801235, 29.901235]]


def zone(type: str, region_code: str, status: str = ZoneStatus.APPROVED, *, days_ago: int = 5, **kw) -> Zone:
    n = next(_n)
    since = NOW - dt.timedelta(days=days_ago)
    return Zone.objects.create(ref=f"ZN-PERF-{n:05d}", name=f"zone {n}", type=type, status=status,
                               region_code=region_code, geometry={"type": "Polygon", "coordinates": [RAW_RING]},
                               people=n, households=n // 2, vulnerable=n % 3, proposed_at=since - dt.timedelta(hours=2),
                               approved_at=since if status == ZoneStatus.APPROVED else None, type_since=since,
                               last_infection_at=since - dt.timedelta(days=1),
                               last_exposure_at=since - dt.timedelta(days=2), updated_at=since, **kw)


@pytest.fixture
def world(regions, now):
    """The 8th-edition (三区) profile for the district; the 9th-edition (risk areas) for street B since later."""
    activate()
    activate("cn-9th-2022", region=regions["street_b"], when=dt.datetime(2021, 12, 15, tzinfo=dt.UTC))
    return regions


def mixed_zones(regions, rounds: int = 1) -> list[Zone]:
    """Every kind of zone the countdown treats differently, ``rounds`` times: three-zones in street A, risk areas
    in street B (another profile), a medium-risk area downgraded from high, outer zones with severe zones under
    them, proposals and lifted zones (no countdown, or not listed)."""
    a1, a2, b1 = (regions[k].code for k in ("grid_a1", "grid_a2", "grid_b1"))
    out = []
    for r in range(rounds):
        out += [zone("lockdown", a1, days_ago=3 + r), zone("control", a2, days_ago=8 + r),
                zone("prevention", regions["street_a"].code, days_ago=15 + r),
                zone("lockdown", a2, status=ZoneStatus.PROPOSED), zone("control", a1, status=ZoneStatus.LIFTED),
                zone("high_risk", b1, days_ago=2 + r), zone("low_risk", regions["street_b"].code, days_ago=9 + r)]
        down = zone("medium_risk", b1, days_ago=4 + r)
        ZoneChange.objects.create(zone=down, at=down.type_since, action="downgrade", from_type="high_risk",
                                  to_type="medium_risk")
        plain = zone("medium_risk", b1, days_ago=6 + r)
        ZoneChange.objects.create(zone=plain, at=plain.type_since - dt.timedelta(days=30), action="downgrade",
                                  from_type="high_risk", to_type="medium_risk")  # before its current level: ignored
        out += [down, plain]
    return out


def expected_properties(z: Zone) -> dict:
    """What the listing showed before it was batched: the single-zone countdown, one zone at a time."""
    cd = selectors.countdown_of(z, at=NOW)
    return {"id": z.pk, "ref": z.ref, "name": z.name, "type": z.type, "status": z.status,
            "severity": rules.SEVERITY[z.type], "people": z.people, "households": z.households,
            "vulnerable": z.vulnerable, "due_at": cd.due_at.isoformat() if cd and cd.due_at else None,
            "ready": bool(cd and cd.ready), "action": cd.action if cd else None}


def test_same_answer_as_the_per_zone_countdown(world, commander, client_for):
    zones = mixed_zones(world, rounds=2)
    body = client_for(commander).get(URL).json()
    got = {f["properties"]["id"]: f for f in body["features"]}
    listed = [z for z in zones if z.status in (ZoneStatus.APPROVED, ZoneStatus.PROPOSED)]
    assert set(got) == {z.pk for z in listed}
    for z in listed:
        assert got[z.pk]["properties"] == expected_properties(z), z.type
        assert got[z.pk]["geometry"] == {"type": "Polygon", "coordinates": [ROUNDED_RING]}
    # The fixture exercises what the batching must get right: two profiles, a downgrade, severe zones under outer ones.
    countdowns = {z.pk: selectors.countdown_of(z, at=NOW) for z in listed}
    assert {c.action for c in countdowns.values() if c} >= {"lift", "downgrade"}
    assert len({c.due_at for c in countdowns.values() if c and c.due_at}) > 2
    # Less severe first (drawn underneath), as before.
    severities = [f["properties"]["severity"] for f in body["features"]]
    assert severities == sorted(severities, reverse=True)


def test_batched_countdowns_equal_the_single_zone_ones(world):
    zones = mixed_zones(world, rounds=2)
    batched = selectors.countdowns_of(zones, at=NOW)
    assert batched == {z.pk: selectors.countdown_of(z, at=NOW) for z in zones}


def _queries(client) -> int:
    client.get(URL)  # the first request after a change may refresh caches (policy timeline, session): not measured
    with CaptureQueriesContext(connection) as ctx:
        r = client.get(URL)
    assert r.status_code == 200
    return len(ctx.captured_queries)


def test_queries_do_not_grow_with_the_number_of_zones(world, commander, client_for):
    c = client_for(commander)
    mixed_zones(world, rounds=1)
    few = _queries(c)
    n_few = len(c.get(URL).json()["features"])
    mixed_zones(world, rounds=4)
    many = _queries(c)
    n_many = len(c.get(URL).json()["features"])
    assert n_many >= 4 * n_few
    assert many == few
    assert many <= 12


def test_region_filter(world, commander, officer_a, client_for):
    zones = mixed_zones(world)
    district = zone("prevention", world["district"].code)
    c = client_for(commander)

    def ids(**params) -> set[int]:
        r = c.get(URL, params)
        assert r.status_code == 200, r.content
        return {f["properties"]["id"] for f in r.json()["features"]}

    listed = {z.pk: z for z in [*zones, district] if z.status in (ZoneStatus.APPROVED, ZoneStatus.PROPOSED)}
    assert ids() == set(listed)  # default unchanged: the whole scope
    for key in ("street_a", "grid_a1", "street_b", "grid_b2"):
        code = world[key].code
        assert ids(region=code) == {pk for pk, z in listed.items() if z.region_code.startswith(code)}, key
    assert ids(region=world["grid_a1"].code, proposed="false") == {
        pk for pk, z in listed.items() if z.region_code.startswith(world["grid_a1"].code) and z.status == "approved"}
    # A street officer: inside their street fine; the other street, or an unknown code, is not found.
    ca = client_for(officer_a)
    assert ca.get(URL, {"region": world["grid_a2"].code}).status_code == 200
    assert ca.get(URL, {"region": world["street_b"].code}).status_code == 404
    assert ca.get(URL, {"region": world["district"].code}).status_code == 404
    assert c.get(URL, {"region": "330206999"}).status_code == 404
    for bad in ("33a", "3302-06", "１２", "9" * 33):
        r = c.get(URL, {"region": bad}, HTTP_ACCEPT_LANGUAGE="en")
        assert r.status_code == 422, (bad, r.content)
        assert "region" in r.json()["message"]


def test_geometry_rounding_keeps_everything_else():
    collection = {"type": "GeometryCollection", "geometries": [
        {"type": "Point", "coordinates": [121.1234567, 29.7654321]},
        {"type": "MultiPolygon", "coordinates": [[RAW_RING]]}]}
    assert selectors.compact_geometry(collection) == {"type": "GeometryCollection", "geometries": [
        {"type": "Point", "coordinates": [121.123457, 29.765432]},
        {"type": "MultiPolygon", "coordinates": [[ROUNDED_RING]]}]}
    assert selectors.compact_geometry(None) is None
    assert RAW_RING[0] == [121.80123456789, 29.90123456789]  # the stored value is not changed
