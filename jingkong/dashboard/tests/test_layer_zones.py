"""The screen's zones layer (/api/v1/dashboard/layers/zones): the same FeatureCollection as the zones app's listing
for each caller's scope, kept in the in-process cache until a zone changes, ZONES_VIEW only, region inside the scope.

The world is the zones GeoJSON test's mix (three-zones in street A, risk areas in street B under another profile,
proposals, lifted zones), so the countdowns the layer shows are those of the zones app's own selector.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jingkong.conftest import make_user
from jingkong.zones.models import Zone, ZoneStatus
from jingkong.zones.tests.conftest import NOW, activate
from jingkong.zones.tests.test_geojson_perf import mixed_zones

pytestmark = pytest.mark.django_db
LAYER = "/api/v1/dashboard/layers/zones"
LISTING = "/api/v1/zones/zones/geojson"


@pytest.fixture(autouse=True)
def fresh_caches():
    """An empty read cache and policy cache for each test (the process keeps both between tests)."""
    from jingkong.dashboard import readcache
    from jingkong.policy.selectors import active_profile_cache_clear

    readcache.clear()
    active_profile_cache_clear()
    yield
    readcache.clear()
    active_profile_cache_clear()


@pytest.fixture
def world(regions):
    from jingkong.core import clock

    with clock.frozen(NOW):
        activate()
        activate("cn-9th-2022", region=regions["street_b"], when=dt.datetime(2021, 12, 15, tzinfo=dt.UTC))
        zones = mixed_zones(regions)
        yield regions, zones


@pytest.mark.parametrize("who", ["commander", "officer_a"])
def test_same_features_as_the_zones_listing(world, who, request, client_for):
    regions, zones = world
    user = request.getfixturevalue(who)
    c = client_for(user)
    layer = c.get(LAYER)
    assert layer.status_code == 200 and layer["Content-Type"].startswith("application/json")
    listing = c.get(LISTING).json()
    assert layer.json() == listing
    # independently: the zones listed are those in force or proposed whose region lies inside the user's region
    expected = {z.pk for z in zones if z.status in (ZoneStatus.APPROVED, ZoneStatus.PROPOSED)
                and z.region_code.startswith(user.region.code)}
    assert {f["properties"]["id"] for f in layer.json()["features"]} == expected
    assert expected  # both scopes see some zones
    # a region narrows it like the listing's region filter
    grid = regions["grid_a1"].code
    assert c.get(LAYER, {"region": grid}).json() == c.get(LISTING, {"region": grid}).json()
    assert c.get(LAYER, {"proposed": "false"}).json() == c.get(LISTING, {"proposed": "false"}).json()


def test_repeated_read_is_a_cache_hit(world, commander, client_for):
    c = client_for(commander)
    first = c.get(LAYER).content
    with CaptureQueriesContext(connection) as ctx:
        again = c.get(LAYER).content
    assert again == first
    # only the change mark (one aggregate over the zones tables) — the listing itself is not read again
    marks = [q["sql"] for q in ctx.captured_queries if "zones_zone" in q["sql"]]
    assert len(marks) == 1 and "MAX(" in marks[0].upper()
    assert not any("policy" in q["sql"] for q in ctx.captured_queries)  # no countdown rules read either
    with CaptureQueriesContext(connection) as miss:
        c.get(LAYER, {"region": world[0]["street_a"].code})  # another key: computed
    assert len([q for q in miss.captured_queries if "zones_zone" in q["sql"]]) > 1


def test_approving_and_lifting_show_at_once(world, commander, client_for):
    from jingkong.core import clock
    from jingkong.zones import services

    regions, zones = world
    c = client_for(commander)
    proposal = next(z for z in zones if z.status == ZoneStatus.PROPOSED)
    before = {f["properties"]["id"]: f["properties"] for f in c.get(LAYER).json()["features"]}
    assert before[proposal.pk]["status"] == "proposed"
    # an earlier ``at`` than other zones' updates: the history row still moves the mark
    with clock.frozen(NOW):
        services.zone_approve(proposal, actor=commander, at=NOW - dt.timedelta(days=30))
    after = {f["properties"]["id"]: f["properties"] for f in c.get(LAYER).json()["features"]}
    assert after[proposal.pk]["status"] == "approved"
    assert c.get(LAYER).json() == c.get(LISTING).json()
    lifted = Zone.objects.get(pk=proposal.pk)
    with clock.frozen(NOW):
        services.zone_lift(lifted, actor=commander, reason="test: lifted")
    assert proposal.pk not in {f["properties"]["id"] for f in c.get(LAYER).json()["features"]}


def test_a_changed_zone_row_shows_at_once(world, commander, client_for):
    regions, zones = world
    c = client_for(commander)
    c.get(LAYER)
    approved = next(z for z in zones if z.status == ZoneStatus.APPROVED and z.type == "lockdown")
    Zone.objects.filter(pk=approved.pk).update(name="renamed", updated_at=NOW + dt.timedelta(minutes=1))
    names = {f["properties"]["id"]: f["properties"]["name"] for f in c.get(LAYER).json()["features"]}
    assert names[approved.pk] == "renamed"


def test_permission_and_region(world, commander, officer_a, client_for):
    regions, _ = world
    manager = make_user("manager", "facility_manager", regions["district"])  # dashboard yes, zones no
    assert client_for(manager).get(LAYER).status_code == 403
    c = client_for(officer_a)
    assert c.get(LAYER, {"region": regions["street_b"].code}).status_code == 404  # outside the scope
    assert c.get(LAYER, {"region": "330206002999"}).status_code == 404  # no such region
    r = c.get(LAYER, {"region": "33x"})
    assert r.status_code == 422 and "region" in r.content.decode()
    assert client_for(commander).get(LAYER, {"region": regions["street_b"].code}).status_code == 200
