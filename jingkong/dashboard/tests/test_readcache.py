"""The in-process cache of the screen's reads (jingkong.dashboard.readcache): a repeated read with no new figures is
answered from the cache with one query; a version bump re-reads; nothing crosses from one scope to another; a new
case shows on the case layer at once."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from jingkong.dashboard import readcache
from jingkong.dashboard.models import Figure, RefreshState
from jingkong.dashboard.tests.test_api_screen import API, TODAY, computed, fig, fresh_cache, now  # noqa: F401
from jingkong.dashboard.tests.test_layers import get, world  # noqa: F401

pytestmark = pytest.mark.django_db


def _queries(client, url, params=None) -> tuple[dict, int]:
    from django.db import connection

    with CaptureQueriesContext(connection) as ctx:
        resp = client.get(url, params or {})
    assert resp.status_code == 200, resp.content
    return resp.json(), len(ctx.captured_queries)


@pytest.mark.parametrize("route", ["summary", "regions", "epi", "clock"])
def test_a_repeated_read_is_served_from_the_cache(regions, commander, client_for, route):
    fig("cases.total", regions["grid_a1"].code, 3, key="confirmed")
    fig("cases.new", regions["grid_a1"].code, 2, key="confirmed:community", day=TODAY)
    c = client_for(commander)
    first, n_first = _queries(c, f"{API}/{route}")
    hits = readcache.screen.hits
    second, n_second = _queries(c, f"{API}/{route}")
    assert readcache.screen.hits == hits + 1
    assert second == first
    assert n_second < n_first
    # session, user and the refresh states: no figure is read
    with CaptureQueriesContext(__import__("django.db").db.connection) as ctx:
        c.get(f"{API}/{route}")
    assert not any("dashboard_figure" in q["sql"] for q in ctx.captured_queries)


def test_a_version_bump_invalidates_and_an_unchanged_version_does_not(regions, commander, client_for):
    code = regions["grid_a1"].code
    fig("cases.total", code, 3, key="confirmed")
    c = client_for(commander)
    assert c.get(f"{API}/summary").json()["tiles"]["cases_total"] == 3
    # a row written behind the refresher's back (no new version) is not seen: proof the answer came from the cache
    Figure.objects.create(family="cases", metric="cases.total", key="confirmed", region_code=code, value=4)
    assert c.get(f"{API}/summary").json()["tiles"]["cases_total"] == 3
    RefreshState.objects.filter(family="cases").update(version=F("version") + 1)
    assert c.get(f"{API}/summary").json()["tiles"]["cases_total"] == 7
    # a family the summary does not read leaves it cached; one it reads (zones) re-reads it
    Figure.objects.create(family="cases", metric="cases.total", key="confirmed", region_code=code, value=10)
    RefreshState.objects.filter(family="clock").update(version=F("version") + 1)
    assert c.get(f"{API}/summary").json()["tiles"]["cases_total"] == 7
    RefreshState.objects.filter(family="zones").update(version=F("version") + 1)
    assert c.get(f"{API}/summary").json()["tiles"]["cases_total"] == 17


@pytest.mark.parametrize("route", ["summary", "regions", "epi", "clock"])
def test_nothing_crosses_between_scopes(regions, commander, officer_a, grid_worker_a, client_for, route):
    a1, b1 = regions["grid_a1"].code, regions["grid_b1"].code
    fig("cases.total", a1, 3, key="confirmed")
    fig("cases.total", b1, 5, key="confirmed")
    street_b = regions["street_b"].code
    commander_c = client_for(commander)
    # the commander's answers (default region and street B) are cached first
    assert commander_c.get(f"{API}/{route}").json()["region"]["code"] == regions["district"].code
    assert commander_c.get(f"{API}/{route}", {"region": street_b}).status_code == 200
    officer = client_for(officer_a)
    assert officer.get(f"{API}/{route}", {"region": street_b}).status_code == 404  # still outside their scope
    assert officer.get(f"{API}/{route}").json()["region"]["code"] == regions["street_a"].code
    worker = client_for(grid_worker_a)
    assert worker.get(f"{API}/{route}").json()["region"]["code"] == a1
    if route == "summary":
        assert commander_c.get(f"{API}/summary").json()["tiles"]["cases_total"] == 8
        assert officer.get(f"{API}/summary").json()["tiles"]["cases_total"] == 3
        assert worker.get(f"{API}/summary").json()["tiles"]["cases_total"] == 3


def test_the_language_is_part_of_the_key(regions, commander, client_for):
    c = client_for(commander)
    with translation.override("en"):
        en = c.get(f"{API}/clock", HTTP_ACCEPT_LANGUAGE="en").json()
    with translation.override("zh-hans"):
        zh = c.get(f"{API}/clock", HTTP_ACCEPT_LANGUAGE="zh-hans").json()
    assert [s["stage"] for s in en["stages"]] == [s["stage"] for s in zh["stages"]]
    assert en["stages"][0]["label"].startswith("Testing")
    assert zh["stages"][0]["label"] != en["stages"][0]["label"]


def test_stale_and_as_of_follow_the_refresh_states_on_a_hit(regions, commander, client_for):
    c = client_for(commander)
    assert c.get(f"{API}/summary").json()["stale"] is False
    RefreshState.objects.filter(family="cases").update(error="boom")  # same version, same refresh instant
    data = c.get(f"{API}/summary").json()
    assert data["stale"] is True and data["families"]["cases"]["error"] == "boom"


def test_a_never_computed_family_is_not_cached(regions, commander, client_for, monkeypatch):
    from jingkong.dashboard import refresher

    monkeypatch.setattr(refresher, "ensure_fresh", lambda names=None: None)
    RefreshState.objects.filter(family="clock").delete()
    c = client_for(commander)
    c.get(f"{API}/clock")
    c.get(f"{API}/clock")
    assert len(readcache.screen) == 0


def test_lru_is_bounded_and_entries_expire(monkeypatch):
    lru = readcache.LRU(size=3, ttl=10)
    for i in range(5):
        lru.put(i, i)
    assert len(lru) == 3 and lru.get(0) is None and lru.get(4) == 4
    lru.get(2)  # used: kept over 3
    lru.put(5, 5)
    assert lru.get(3) is None and lru.get(2) == 2
    clock_now = [1000.0]
    monkeypatch.setattr(readcache.time, "monotonic", lambda: clock_now[0])
    lru.put("x", 1)
    clock_now[0] += 11
    assert lru.get("x") is None


# --- the case layer -------------------------------------------------------------------------------------------------


def test_case_layer_is_cached_and_a_new_case_shows_at_once(world, officer_a, commander, client_for):  # noqa: F811
    c = client_for(officer_a)
    first = get(c, "cases").json()
    hits = readcache.layers.hits
    assert get(c, "cases").json() == first
    assert readcache.layers.hits == hits + 1
    new = world.w.case(world.w.person("层新病例", building="L-BA"))
    after = get(c, "cases").json()
    assert after["count"] == first["count"] + 1
    assert new.ref in {p[4] for p in after["points"]}
    # another scope is answered for its own region, not from the officer's entry
    everything = get(client_for(commander), "cases").json()
    from jingkong.tracing.models import Case

    assert everything["count"] == Case.objects.count() > after["count"]
    # a changed case (its update instant moves) re-reads
    Case.objects.filter(pk=new.pk).update(classification="asymptomatic", updated_at=new.updated_at
                                          + dt.timedelta(seconds=1))
    assert [p[2] for p in get(c, "cases").json()["points"] if p[4] == new.ref] == ["asymptomatic"]


def test_case_layer_zone_version_invalidates(world, officer_a, client_for):  # noqa: F811
    c = client_for(officer_a)
    get(c, "cases")
    misses = readcache.layers.misses
    get(c, "cases")
    assert readcache.layers.misses == misses
    RefreshState.objects.filter(family="zones").update(version=F("version") + 1)
    get(c, "cases")
    assert readcache.layers.misses == misses + 1
