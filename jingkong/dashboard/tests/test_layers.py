"""The screen's map layers (/api/v1/dashboard/layers/…): what each layer draws equals what was built, filtered to the
requested region inside the caller's scope, with each layer's own permission, and no person data anywhere.

The world: street A (330206002) and street B (330206004) of the shared conftest regions, with cases found in the
community, in quarantine (an isolation order; a quarantined contact) and in a lockdown zone, a running round with a
site that has a queue, transfer runs (today's, tomorrow's, finished), facilities, checkpoint crossings around local
midnight, problems and service requests — each also in street B, which street A must never see.
"""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import pytest
from django.utils import translation

from jingkong.conftest import make_user
from jingkong.isolation.tests.transfer_world import NOW, TransferWorld

STREET_A, STREET_B = "330206002", "330206004"
LAYERS = ("cases", "sites", "routes", "facilities", "checkpoints", "problems", "services")
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


def r6(x: float) -> float:
    return round(x, 6)


@pytest.fixture
def now():
    from jingkong.core import clock

    with clock.frozen(NOW) as moment:
        yield moment


def _orphan(regions, name: str, *, household=None, side: str = "a"):
    """A person with no building of their own (only a household, or nothing but a grid)."""
    from jingkong.people.models import Person

    n = abs(hash(name)) % 10_000
    return Person.objects.create(id_hash=f"layers-{name}-{n:040d}"[:64], id_masked=f"330206********{n:04d}",
                                 name=name, sex="F", birth_date=dt.date(1975, 1, 1), phone=f"1370000{n:04d}",
                                 grid=household.grid if household else regions[f"grid_{side}2"],
                                 household=household, created_at=NOW, updated_at=NOW)


def _cases(w: TransferWorld, regions) -> dict:
    """Five cases in street A (one per way of being found and located) and one in street B; expected points."""
    from jingkong.isolation.models import IsolationOrder
    from jingkong.tracing.models import Case
    from jingkong.zones.models import Zone, ZoneResident, ZoneUnit

    home = w.building("L-BA", side="a", lon=121.8031234567, lat=29.9031234567)
    other = w.building("L-BA2", side="a", lon=121.8072, lat=29.9044)
    people = {
        "community": w.person("层甲社会", building="L-BA"),
        "order": _orphan(regions, "层乙隔离", household=w.household("L-H2", other)),
        "zone": _orphan(regions, "层丙封控"),  # no building, no household: the grid's label point
        "contact": w.person("层丁密接", building="L-BA"),
        "released": w.person("层戊解除", building="L-BA"),
        "lifted": w.person("层庚解封", building="L-BA2", household="L-H2"),
        "b": w.person("层己乙街", building="L-BB", side="b"),
    }
    cases = {k: w.case(p) for k, p in people.items()}
    Case.objects.filter(pk=cases["order"].pk).update(classification="confirmed")
    positive = NOW - HOUR
    Case.objects.update(first_positive_at=positive)

    def order(person, **extra):
        return IsolationOrder.objects.create(person=person, tier="close", mode="central", region_code=person.grid.code,
                                             counted_from=(NOW - 3 * DAY).date(), starts_on=(NOW - 3 * DAY).date(),
                                             ends_on=(NOW + 5 * DAY).date(), created_at=NOW - 3 * DAY,
                                             updated_at=NOW - 3 * DAY, **extra)

    order(people["order"])
    order(people["released"], status="released", released_at=NOW - 2 * DAY)  # released before the positive
    contact = w.contact(people["contact"], status="in_quarantine")
    type(contact).objects.filter(pk=contact.pk).update(in_quarantine_at=NOW - DAY)
    zone = Zone.objects.create(ref="Z-L-1", name="封控", type="lockdown", status="approved",
                               region_code=regions["grid_a2"].code, proposed_at=NOW - 3 * DAY,
                               approved_at=NOW - 2 * DAY, updated_at=NOW - 2 * DAY)
    ZoneResident.objects.create(zone=zone, person=people["zone"], zone_type="lockdown",
                                region_code=regions["grid_a2"].code)
    # a zone approved after the positive does not make its case "found in a zone"
    late = Zone.objects.create(ref="Z-L-2", name="封控晚", type="lockdown", status="approved",
                               region_code=regions["grid_a1"].code, proposed_at=NOW, approved_at=NOW + HOUR,
                               updated_at=NOW + HOUR)
    ZoneResident.objects.create(zone=late, person=people["community"], zone_type="lockdown",
                                region_code=regions["grid_a1"].code)
    # a control zone over the household, in force when the case was created and lifted since (no residents now)
    lifted = Zone.objects.create(ref="Z-L-3", name="管控", type="control", status="lifted",
                                 region_code=regions["grid_a1"].code, proposed_at=NOW - 3 * DAY,
                                 approved_at=NOW - 3 * DAY, lifted_at=NOW - HOUR, updated_at=NOW - HOUR)
    ZoneUnit.objects.create(zone=lifted, kind="household", household=w.households["L-H2"])
    Case.objects.filter(pk=cases["lifted"].pk).update(created_at=NOW - 2 * HOUR)
    g2 = regions["grid_a2"]
    bb = w.buildings["L-BB"]
    expected = {
        "community": [r6(home.lat), r6(home.lon), "asymptomatic", "community"],
        "order": [other.lat, other.lon, "confirmed", "quarantine"],
        "zone": [g2.center_lat, g2.center_lon, "asymptomatic", "control"],
        "contact": [r6(home.lat), r6(home.lon), "asymptomatic", "quarantine"],
        "released": [r6(home.lat), r6(home.lon), "asymptomatic", "community"],
        "lifted": [other.lat, other.lon, "asymptomatic", "control"],
        "b": [r6(bb.lat), r6(bb.lon), "asymptomatic", "community"],
    }
    return {"people": people, "cases": cases,
            "points": {k: [*v, cases[k].ref] for k, v in expected.items()}}


def _sites(regions, w) -> dict:
    from jingkong.testing.models import SiteAssignment
    from jingkong.testing.tests.campaign_helpers import make_campaign, make_residents, make_site, swab

    running = make_campaign(regions["district"], "R-L-1", status="running", starts_at=NOW - 2 * HOUR, hours=24)
    closed = make_campaign(regions["district"], "R-L-0", status="closed", starts_at=NOW - 3 * DAY, hours=12)
    site_a = make_site(regions["grid_a1"], "S-L-A", campaign=running, capacity=10, lon=121.8011111111, lat=29.9022222222)
    calm = make_site(regions["grid_a2"], "S-L-A2", campaign=running, capacity=100)
    site_b = make_site(regions["grid_b1"], "S-L-B", campaign=running, capacity=10)
    make_site(regions["grid_a1"], "S-L-OLD", campaign=closed)
    building = w.building("L-SITE", side="a")
    residents = make_residents(building, 3)
    SiteAssignment.objects.create(campaign=running, building=building, site=site_a, region_code=building.grid.code,
                                  residents=30, slot_start=NOW - HOUR / 2, slot_end=NOW + HOUR)
    SiteAssignment.objects.create(campaign=running, building=w.building("L-SITE-B", side="b"), site=site_b,
                                  region_code=regions["grid_b1"].code, residents=5, slot_start=NOW, slot_end=NOW + HOUR)
    swab(residents[:2], campaign=running, site=site_a, at=NOW - HOUR / 6)
    return {"running": running, "site_a": site_a, "calm": calm, "site_b": site_b, "residents": residents}


def _runs(regions, w) -> dict:
    from jingkong.isolation.models import Transfer, TransferBatch, TransferStop

    def run(ref, side, *, status="planned", start=NOW, size=3):
        vehicle = w.vehicle(f"V{ref}", side=side, lon=121.8012345678, lat=29.9012345678)
        code = regions[f"grid_{side}1"].code
        batch = TransferBatch.objects.create(ref=f"TB-{ref}", region_code=code, pickup_lon=121.805, pickup_lat=29.905,
                                             destination_type="central", size=size, status="planned",
                                             created_at=NOW, updated_at=NOW)
        t = Transfer.objects.create(ref=f"TR-{ref}", vehicle=vehicle, region_code=vehicle.region_code, status=status,
                                    planned_start=start, planned_end=start + HOUR,
                                    route={"type": "LineString",
                                           "coordinates": [[121.8012345678, 29.9012345678], [121.805, 29.905],
                                                           [121.81, 29.93]]},
                                    created_at=NOW, updated_at=NOW)
        TransferStop.objects.create(transfer=t, seq=1, kind="pickup", batch=batch, lon=121.805, lat=29.905,
                                    eta=start + HOUR / 4)
        TransferStop.objects.create(transfer=t, seq=2, kind="dropoff", batch=batch, lon=121.81, lat=29.93,
                                    eta=start + HOUR)
        return t

    return {"today": run("L1", "a"), "tomorrow": run("L2", "a", start=NOW + 2 * DAY),
            "done": run("L3", "a", status="arrived"), "under_way": run("L4", "a", status="dispatched",
                                                                          start=NOW - 2 * DAY, size=2),
            "b": run("L5", "b")}


def _facilities(regions, w) -> dict:
    from jingkong.isolation.models import Facility, Room

    fa = w.facility("F-L-A", region=STREET_A, rooms=4, lon=121.8123456789, lat=29.9234567891)
    rooms = list(Room.objects.filter(facility=fa).order_by("number"))
    Room.objects.filter(pk__in=[rooms[0].pk, rooms[1].pk]).update(state="occupied")
    Room.objects.filter(pk=rooms[2].pk).update(state="out_of_service")
    fb = w.facility("F-L-B", region=STREET_B, rooms=2)
    closed = w.facility("F-L-OFF", region=STREET_A, rooms=2)
    Facility.objects.filter(pk=closed.pk).update(active=False)
    return {"a": fa, "b": fb, "closed": closed}


def _checkpoints(regions) -> dict:
    from jingkong.codes.models import Crossing
    from jingkong.codes.tests.checkpoint_helpers import checkpoint

    cp_a = checkpoint(regions["street_a"], "CP-L-A")
    cp_b = checkpoint(regions["street_b"], "CP-L-B")
    cp_off = checkpoint(regions["street_a"], "CP-L-OFF", active=False)
    local_midnight = NOW - 12 * HOUR  # NOW is 12:00 in Shanghai

    def crossing(cp, at, decision):
        n = Crossing.objects.count() + 1
        Crossing.objects.create(client_id=f"L-{n}", checkpoint=cp, region_code=cp.region_code, at=at,
                                subject="person", decision=decision, received_at=at)

    for at, decision in ((local_midnight + HOUR / 2, "deny"), (NOW - HOUR, "refer"), (NOW - HOUR, "allow"),
                         (local_midnight - HOUR / 6, "deny"), (NOW - DAY, "deny")):
        crossing(cp_a, at, decision)
    crossing(cp_b, NOW - HOUR, "deny")
    return {"a": cp_a, "b": cp_b, "off": cp_off}


def _problems(regions) -> dict:
    from jingkong.command.models import Problem

    def problem(ref, grid, *, lat=None, lon=None, status="open", deadline=NOW + HOUR, urgency="normal"):
        return Problem.objects.create(ref=ref, category="queue_too_long", description="层甲社会 在排队时插队",
                                      urgency=urgency, region_code=grid.code, responsible_code=grid.code[:9],
                                      lat=lat, lon=lon, status=status, deadline=deadline, reported_at=NOW - HOUR)

    return {"placed": problem("P-L-1", regions["grid_a1"], lat=29.9055555555, lon=121.8066666666),
            "unplaced": problem("P-L-2", regions["grid_a2"], deadline=NOW - HOUR, urgency="urgent",
                                status="in_progress"),
            "resolved": problem("P-L-3", regions["grid_a1"], status="resolved"),
            "b": problem("P-L-4", regions["grid_b1"])}


def _requests(regions, cases) -> dict:
    from jingkong.command.models import ServiceRequest

    def request(ref, person, *, status="submitted", deadline=NOW + HOUR, priority=3):
        return ServiceRequest.objects.create(ref=ref, person=person, category="medicine", region_code=person.grid.code,
                                             priority=priority, deadline=deadline, status=status,
                                             submitted_at=NOW - HOUR, contact_phone="13512345678")

    p = cases["people"]
    return {"home": request("SR-L-1", p["community"]), "household": request("SR-L-2", p["order"], status="assigned",
                                                                            deadline=NOW - HOUR, priority=1),
            "grid": request("SR-L-3", p["zone"]), "delivered": request("SR-L-4", p["contact"], status="delivered"),
            "b": request("SR-L-5", p["b"])}


@pytest.fixture(autouse=True)
def fresh_cache():
    """Each test starts with an empty read cache (the process keeps it between tests)."""
    from jingkong.dashboard import readcache

    readcache.clear()
    yield
    readcache.clear()


@pytest.fixture
def world(regions, now):
    w = TransferWorld(regions)
    w.building("L-BB", side="b", lon=121.8254321, lat=29.9054321)
    cases = _cases(w, regions)
    return SimpleNamespace(w=w, regions=regions, cases=cases, sites=_sites(regions, w), runs=_runs(regions, w),
                           facilities=_facilities(regions, w), checkpoints=_checkpoints(regions),
                           problems=_problems(regions), requests=_requests(regions, cases))


def get(client, layer: str, region: str | None = None):
    url = f"/api/v1/dashboard/layers/{layer}" + (f"?region={region}" if region is not None else "")
    return client.get(url)


def by_id(collection: dict, key: str = "id") -> dict:
    assert collection["type"] == "FeatureCollection"
    return {f["properties"][key]: f for f in collection["features"]}


# --- each layer equals what was built ---------------------------------------------------------------------------------


def test_case_points_locations_and_how_found(world, officer_a, client_for):
    r = get(client_for(officer_a), "cases")
    assert r.status_code == 200, r.content
    data = r.json()
    expected = [v for k, v in world.cases["points"].items() if k != "b"]
    assert sorted(data["points"], key=lambda p: p[4]) == sorted(expected, key=lambda p: p[4])
    assert data["count"] == len(expected) and data["truncated"] is False


def test_how_found_agrees_with_the_situation_figures(world):
    """The map's colours use the rules of the cases family (whose tiles count cases found in quarantine, in control
    and in the community): both judge every case of the world alike."""
    from jingkong.access.guard import EVERYTHING
    from jingkong.dashboard.families import situation
    from jingkong.dashboard.layers import case_points
    from jingkong.tracing.models import Case

    quarantine, control = situation.quarantine_case_ids(), situation.control_case_ids()
    family = {ref: "quarantine" if pk in quarantine else "control" if pk in control else "community"
              for pk, ref in Case.objects.values_list("pk", "ref")}
    ours = {p[4]: p[3] for p in case_points(scope=EVERYTHING)["points"]}
    assert ours == family
    assert set(family.values()) == {"quarantine", "control", "community"}


def test_case_points_truncated_newest_first(world):
    from jingkong.access.guard import Scope
    from jingkong.dashboard.layers import case_points
    from jingkong.tracing.models import Case

    for i, c in enumerate(Case.objects.order_by("pk")):
        Case.objects.filter(pk=c.pk).update(created_at=NOW - (10 - i) * HOUR)
    newest = list(Case.objects.filter(region_code__startswith=STREET_A).order_by("-created_at")
                  .values_list("ref", flat=True)[:2])
    data = case_points(scope=Scope(STREET_A), limit=2)
    assert [p[4] for p in data["points"]] == newest
    assert data["truncated"] is True
    assert data["count"] == Case.objects.filter(region_code__startswith=STREET_A).count()


def test_sites_of_the_running_round_with_progress_and_queue(world, officer_a, client_for):
    data = get(client_for(officer_a), "sites").json()
    sites = by_id(data)
    s = world.sites
    assert set(sites) == {s["site_a"].pk, s["calm"].pk}  # not street B's, not the closed round's
    a = sites[s["site_a"].pk]
    assert a["geometry"]["coordinates"] == [r6(s["site_a"].lon), r6(s["site_a"].lat)]
    p = a["properties"]
    assert (p["name"], p["campaign"], p["campaign_id"]) == (s["site_a"].name, s["running"].name, s["running"].pk)
    assert (p["sampled"], p["target"], p["progress"]) == (2, 30, round(2 / 30, 4))
    assert (p["capacity_per_hour"], p["queue"], p["status"]) == (10, 30 - 10, "queue")
    calm = sites[s["calm"].pk]["properties"]
    assert (calm["sampled"], calm["target"], calm["progress"], calm["queue"], calm["status"]) == (0, 0, None, 0, "open")


def test_site_figures_equal_the_site_board(world):
    """The layer reads swabs from the tubes' counts (fast); the testing site board counts the samples: the same."""
    from jingkong.access.guard import EVERYTHING
    from jingkong.dashboard.layers import site_features
    from jingkong.testing.selectors import site_board
    from jingkong.testing.tests.campaign_helpers import swab

    s = world.sites
    swab(s["residents"][2:], campaign=s["running"], site=s["calm"], at=NOW - HOUR)
    board = {r["id"]: r for r in site_board(scope=EVERYTHING, campaign=s["running"], now=NOW)}
    layer = by_id(site_features(scope=EVERYTHING))
    assert set(layer) == set(board)
    for pk, f in layer.items():
        p, r = f["properties"], board[pk]
        assert (p["sampled"], p["target"], p["progress"], p["expected_next_hour"]) == (
            r["scans"], r["residents"], r["progress"], r["expected_next_hour"])
    assert layer[s["calm"].pk]["properties"]["sampled"] == 1


def test_routes_active_today_from_the_transfer_map(world, officer_a, client_for):
    data = get(client_for(officer_a), "routes").json()
    runs = world.runs
    features = data["features"]
    assert {f["properties"]["run_id"] for f in features} == {runs["today"].pk, runs["under_way"].pk}
    assert sorted(f["properties"]["kind"] for f in features) == ["route", "route", "vehicle", "vehicle"]
    today = {f["properties"]["kind"]: f for f in features if f["properties"]["run_id"] == runs["today"].pk}
    route, vehicle = today["route"], today["vehicle"]
    assert route["geometry"] == {"type": "LineString", "coordinates": [[r6(121.8012345678), r6(29.9012345678)],
                                                                       [121.805, 29.905], [121.81, 29.93]]}
    assert vehicle["geometry"]["coordinates"] == [r6(121.8012345678), r6(29.9012345678)]  # at the depot
    assert route["properties"]["people"] == vehicle["properties"]["people"] == 3
    assert route["properties"]["vehicle"] == runs["today"].vehicle.code
    assert route["properties"]["status"] == "planned"
    assert dt.datetime.fromisoformat(route["properties"]["eta"]) == runs["today"].planned_end
    assert dt.datetime.fromisoformat(vehicle["properties"]["eta"]) == NOW + HOUR / 4  # the next pickup


def test_facilities_with_occupancy(world, officer_a, client_for):
    data = get(client_for(officer_a), "facilities").json()
    fac = by_id(data)
    fa = world.facilities["a"]
    assert set(fac) == {fa.pk}
    f = fac[fa.pk]
    assert f["geometry"]["coordinates"] == [r6(fa.lon), r6(fa.lat)]
    p = f["properties"]
    assert (p["name"], p["kind"], p["rooms"], p["occupied"], p["free"]) == (fa.name, fa.kind, 3, 2, 1)
    assert p["occupancy"] == round(2 / 3, 4)
    # the same counts as the reserve board
    from jingkong.isolation.reserve import facility_capacity

    cap = facility_capacity([fa])[0]
    assert (p["rooms"], p["occupied"], p["free"]) == (cap.usable_rooms, cap.occupied_rooms, cap.free_rooms)


def test_checkpoints_count_the_local_day(world, officer_a, client_for):
    data = get(client_for(officer_a), "checkpoints").json()
    cps = by_id(data)
    cp = world.checkpoints["a"]
    assert set(cps) == {cp.pk}  # not street B's, not the inactive one without crossings today
    p = cps[cp.pk]["properties"]
    # today (Shanghai): 00:30 deny, 11:00 refer, 11:00 allow; 23:50 yesterday and a day ago are not today
    assert (p["crossings_today"], p["denied_today"], p["referred_today"]) == (3, 1, 1)
    assert (p["name"], p["kind"]) == (cp.name, cp.kind)
    assert cps[cp.pk]["geometry"]["coordinates"] == [r6(cp.lon), r6(cp.lat)]


def test_problems_open_with_overdue_at_their_point_or_grid(world, officer_a, client_for):
    from jingkong.command.models import ProblemCategory

    data = get(client_for(officer_a), "problems").json()
    probs = by_id(data)
    pr = world.problems
    assert set(probs) == {pr["placed"].pk, pr["unplaced"].pk}
    placed, unplaced = probs[pr["placed"].pk], probs[pr["unplaced"].pk]
    assert placed["geometry"]["coordinates"] == [r6(121.8066666666), r6(29.9055555555)]
    g2 = world.regions["grid_a2"]
    assert unplaced["geometry"]["coordinates"] == [g2.center_lon, g2.center_lat]
    assert (placed["properties"]["overdue"], unplaced["properties"]["overdue"]) == (False, True)
    assert (unplaced["properties"]["type"], unplaced["properties"]["urgency"],
            unplaced["properties"]["status"]) == ("queue_too_long", "urgent", "in_progress")
    with translation.override("en"):
        label = str(ProblemCategory.QUEUE_TOO_LONG.label)
    title = client_for(officer_a).get("/api/v1/dashboard/layers/problems", HTTP_ACCEPT_LANGUAGE="en").json()
    assert {f["properties"]["title"] for f in title["features"]} == {f"P-L-1 · {label}", f"P-L-2 · {label}"}
    assert label == "queue too long"


def test_services_open_at_the_building(world, officer_a, client_for):
    data = get(client_for(officer_a), "services").json()
    reqs = by_id(data)
    rq, w = world.requests, world.w
    assert set(reqs) == {rq["home"].pk, rq["household"].pk, rq["grid"].pk}
    home, other, g2 = w.buildings["L-BA"], w.buildings["L-BA2"], world.regions["grid_a2"]
    assert reqs[rq["home"].pk]["geometry"]["coordinates"] == [r6(home.lon), r6(home.lat)]
    assert reqs[rq["household"].pk]["geometry"]["coordinates"] == [other.lon, other.lat]
    assert reqs[rq["grid"].pk]["geometry"]["coordinates"] == [g2.center_lon, g2.center_lat]
    p = reqs[rq["household"].pk]["properties"]
    assert (p["category"], p["priority"], p["status"], p["overdue"]) == ("medicine", 1, "assigned", True)
    assert reqs[rq["home"].pk]["properties"]["overdue"] is False


# --- scope, region, permissions, privacy ------------------------------------------------------------------------------


def test_street_officer_sees_only_their_street_and_another_street_is_not_found(world, officer_a, commander,
                                                                               client_for):
    c = client_for(officer_a)
    for layer in LAYERS:
        assert get(c, layer, STREET_B).status_code == 404, layer
        assert get(c, layer, "330206").status_code == 404, layer  # the district contains the street: still outside
        assert get(c, layer, "330206002999").status_code == 404, layer  # inside the scope but no such region
    # the commander sees street B's things when asking for street B, and only those
    cm = client_for(commander)
    b_cases = get(cm, "cases", STREET_B).json()
    assert b_cases["points"] == [world.cases["points"]["b"]]
    assert set(by_id(get(cm, "sites", STREET_B).json())) == {world.sites["site_b"].pk}
    assert {f["properties"]["run_id"] for f in get(cm, "routes", STREET_B).json()["features"]} == {world.runs["b"].pk}
    assert set(by_id(get(cm, "facilities", STREET_B).json())) == {world.facilities["b"].pk}
    assert set(by_id(get(cm, "checkpoints", STREET_B).json())) == {world.checkpoints["b"].pk}
    assert set(by_id(get(cm, "problems", STREET_B).json())) == {world.problems["b"].pk}
    assert set(by_id(get(cm, "services", STREET_B).json())) == {world.requests["b"].pk}
    # the district: both streets
    assert get(cm, "cases").json()["count"] == len(world.cases["points"])


def test_a_grid_narrows_every_layer(world, officer_a, client_for):
    grid = world.regions["grid_a2"].code
    c = client_for(officer_a)
    assert get(c, "cases", grid).json()["points"] == [world.cases["points"]["zone"]]
    assert set(by_id(get(c, "sites", grid).json())) == {world.sites["calm"].pk}
    assert set(by_id(get(c, "problems", grid).json())) == {world.problems["unplaced"].pk}
    assert set(by_id(get(c, "services", grid).json())) == {world.requests["grid"].pk}


def test_bad_region_names_the_field(world, officer_a, client_for):
    c = client_for(officer_a)
    for layer in LAYERS:
        for bad in ("abc", "3302060021%25", "1" * 40):
            r = get(c, layer, bad)
            assert r.status_code == 422, (layer, bad, r.status_code)
            assert "region" in json.dumps(r.json()["extra"]), (layer, bad, r.json())


def test_permissions_per_layer(world, volunteer_a, client_for):
    analyst = make_user("analyst_a", "analyst", world.regions["street_a"])
    c = client_for(analyst)
    assert get(c, "cases").status_code == 403  # case numbers: tracing only
    for layer in LAYERS[1:]:
        assert get(c, layer).status_code == 200, layer
    v = client_for(volunteer_a)
    for layer in LAYERS:
        r = get(v, layer)
        assert r.status_code == 403 and r.json()["code"] == "permission_denied", layer


def test_no_person_data_in_any_layer(world, commander, client_for):
    from jingkong.people.models import Person

    c = client_for(commander)
    body = "".join(get(c, layer).content.decode() for layer in LAYERS)
    assert len(body) > 1000
    secrets = set()
    for name, masked, phone, id_hash in Person.objects.values_list("name", "id_masked", "phone", "id_hash"):
        secrets.update(s for s in (name, masked, phone, id_hash) if s)
    secrets.add("13512345678")  # the requests' call-back phone
    leaked = sorted(s for s in secrets if s in body or json.dumps(s)[1:-1] in body)
    assert not leaked


def test_answers_are_compact(world, commander, client_for):
    r = get(client_for(commander), "cases")
    text = r.content.decode()
    assert r["Content-Type"].startswith("application/json")
    assert ", " not in text and ": " not in text
    for p in r.json()["points"]:
        assert all(len(repr(x).split(".")[-1]) <= 6 for x in p[:2])


@pytest.mark.django_db
def test_platform_user_without_a_region_sees_everything_and_nobody_sees_nothing(world, admin_user, client_for):
    data = get(client_for(admin_user), "cases").json()
    assert data["count"] == len(world.cases["points"])
    nobody = make_user("nobody", "commander", None)
    assert get(client_for(nobody), "cases").status_code == 404


def test_query_count_does_not_grow_with_records(world, commander, client_for, django_assert_max_num_queries):
    """Each layer is a handful of grouped queries (session and user lookups included), whatever the data."""
    from django.db import connection

    c = client_for(commander)
    jit_guard = 4 if connection.vendor == "postgresql" else 0  # savepoint, two SET LOCAL, release
    # cases: + the refresh states and the newest case (the cache key: jingkong.dashboard.readcache)
    limits = {"cases": 9 + jit_guard, "sites": 10, "routes": 12, "facilities": 12, "checkpoints": 6, "problems": 6,
              "services": 6}
    for layer, limit in limits.items():
        with django_assert_max_num_queries(limit):
            assert get(c, layer).status_code == 200
