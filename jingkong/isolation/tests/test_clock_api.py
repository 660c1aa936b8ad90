"""Five-stage clock API and pages: figures, scope, bad input, the CSV report, the printable page, plotly served
locally."""

from __future__ import annotations

import csv
import io

import pytest

from jingkong.analytics.clock import cache_clear as clock_cache_clear
from jingkong.core import clock as core_clock
from jingkong.isolation.tests.clock_world import NOW, activate, build

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_clock_cache():
    clock_cache_clear()
    yield
    clock_cache_clear()
STREET_A, STREET_B = "330206002", "330206004"


@pytest.fixture
def world(regions):
    from jingkong.conftest import make_user

    activate("cn-9th-2022")
    return build(regions, tracer_y=make_user("tracer_y", "tracer", regions["street_a"]))


@pytest.fixture
def at_now():
    with core_clock.frozen(NOW):
        yield


def _stage(body, name):
    return next(s for s in body["stages"] if s["stage"] == name)


def test_summary_for_the_district_and_a_street(world, at_now, client_for, commander, officer_a):
    r = client_for(commander).get("/api/v1/isolation/clock/summary?day=2022-01-05")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["region_code"] == "330206" and _stage(body, "tracing")["n"] == 4
    assert {row["region_code"] for row in body["by_region"]} == {STREET_A, STREET_B}
    assert body["slowest"]["stage"] == "investigation" and body["overdue_count"] == 2
    mine = client_for(officer_a).get("/api/v1/isolation/clock/summary").json()  # default: today, own street
    assert mine["region_code"] == STREET_A and _stage(mine, "tracing")["n"] == 3


def test_scope_and_bad_input(world, at_now, client_for, officer_a, officer_b):
    a = client_for(officer_a)
    assert a.get(f"/api/v1/isolation/clock/summary?region={STREET_B}").status_code == 404
    assert a.get("/api/v1/isolation/clock/summary?region=33x").status_code == 422
    assert a.get("/api/v1/isolation/clock/summary?day=2022-13-01").status_code == 422
    assert a.get("/api/v1/isolation/clock/summary?region=3302%00").status_code == 422
    assert a.get("/api/v1/isolation/clock/overdue?stage=nope").status_code == 422
    b = client_for(officer_b).get("/api/v1/isolation/clock/overdue?day=2022-01-05").json()
    assert b["count"] == 0 and b["items"] == []
    assert client_for(None).get("/api/v1/isolation/clock/summary").status_code == 401


def test_overdue_api_names_owners(world, at_now, client_for, officer_a):
    body = client_for(officer_a).get("/api/v1/isolation/clock/overdue?day=2022-01-05").json()
    assert body["count"] == 2
    assert [(i["stage"], i["owner_kind"], i["owner"]) for i in body["items"]] == [
        ("tracing", "queue", STREET_A), ("investigation", "tracer", "tracer_y")]
    only = client_for(officer_a).get("/api/v1/isolation/clock/overdue?stage=investigation").json()
    assert only["count"] == 1


def test_pages_and_csv(world, at_now, client_for, commander, officer_a):
    c = client_for(commander)
    page = c.get("/isolation/clock/?day=2022-01-05")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="clock-slowest"' in html and "/isolation/clock/plotly.min.js" in html and "cdn" not in html.lower()
    assert f"?region={STREET_A}" in html  # drill-down link
    street = c.get(f"/isolation/clock/?region={STREET_A}&day=2022-01-05")
    assert street.status_code == 200 and "330206002001" in street.content.decode()
    assert c.get("/isolation/clock/report/?day=2022-01-05").status_code == 200
    r = c.get(f"/isolation/clock/report.csv?region={STREET_A}&day=2022-01-05")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    tracing = next(x for x in rows if x[:1] == ["region"] and x[3] == "tracing")
    assert (tracing[1], tracing[5], tracing[6]) == (STREET_A, "3", "3")
    overdue = [x for x in rows if x[:1] == ["overdue"] and x[1] in ("case", "contact")]
    assert [(x[4], x[11]) for x in overdue] == [("tracing", STREET_A), ("investigation", "tracer_y")]
    a = client_for(officer_a)
    assert a.get(f"/isolation/clock/report.csv?region={STREET_B}").status_code == 404
    js = a.get("/isolation/clock/plotly.min.js")
    assert js.status_code == 200 and js["Content-Type"] == "text/javascript"


def test_no_profile_is_a_404(regions, client_for, commander):
    assert client_for(commander).get("/api/v1/isolation/clock/summary").status_code == 404
