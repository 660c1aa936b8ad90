"""Coverage API and pages: figures by region, totals, the untested list (audited) and its export; scope everywhere."""

from __future__ import annotations

import csv
import io

import pytest

from jingkong.access.models import AuditLog
from jingkong.conftest import make_user
from jingkong.testing.tests.coverage_helpers import EXPECTED, campaign, make_round

A1, A2, B1, B2 = "330206002001001", "330206002001002", "330206004001001", "330206004001002"
FIELDS = ("target", "sampled", "not_sampled", "negative", "pending", "positive", "resample", "pool_positive")


@pytest.fixture
def rnd(regions):
    return make_round(regions)


@pytest.fixture(autouse=True)
def _fresh_cache():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def _url(c, tail: str = "coverage") -> str:
    return f"/api/v1/testing/campaigns/{c.pk}/{tail}"


# --- figures ------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_commander_sees_the_district_by_grid(rnd, commander, client_for):
    r = client_for(commander).get(_url(rnd["campaign"]), {"level": "grid"})
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["area"] == {"code": "330206", "name": "北仑区", "level": "district"}
    assert body["level"] == "grid"
    assert {row["code"]: {f: row[f] for f in FIELDS} for row in body["rows"]} == EXPECTED
    assert body["totals"]["target"] == 16 and body["totals"]["sampled"] == 13
    assert body["campaign"]["code"] == "COV-R1"


@pytest.mark.django_db
def test_street_officer_sees_only_their_street(rnd, officer_a, client_for):
    client = client_for(officer_a)
    r = client.get(_url(rnd["campaign"]), {"level": "grid"})
    assert r.status_code == 200
    assert [row["code"] for row in r.json()["rows"]] == [A1, A2]
    assert "330206004" not in r.content.decode()
    assert r.json()["totals"]["target"] == 13
    # Default breakdown: the level below the officer's street.
    assert [row["level"] for row in client.get(_url(rnd["campaign"])).json()["rows"]] == ["community"]
    # Drilling down inside the street works; outside (or above) it is "not found".
    assert client.get(_url(rnd["campaign"]), {"parent": "330206002001"}).json()["level"] == "grid"
    for parent in ("330206004", "330206004001", "330206", "99"):
        r = client.get(_url(rnd["campaign"]), {"parent": parent})
        assert r.status_code == 404, parent
    assert client.get(_url(rnd["campaign"]), {"level": "building"}).status_code == 422


@pytest.mark.django_db
def test_summary_is_the_callers_part(rnd, officer_a, grid_worker_a, client_for):
    r = client_for(officer_a).get(_url(rnd["campaign"], "coverage/summary"))
    assert r.status_code == 200
    body = r.json()
    assert body["area"]["code"] == "330206002"
    assert {f: body["totals"][f] for f in ("target", "sampled", "not_sampled")} == {"target": 13, "sampled": 11,
                                                                                   "not_sampled": 2}
    assert body["unplaced_sampled"] is None  # only for the whole campaign
    r = client_for(grid_worker_a).get(_url(rnd["campaign"], "coverage/summary"))
    assert {f: r.json()["totals"][f] for f in FIELDS} == EXPECTED[A1]


@pytest.mark.django_db
def test_a_round_of_another_street_is_not_found(rnd, officer_a, officer_b, client_for):
    c = campaign(rnd["regions"]["street_a"], "COV-A-ONLY")
    for tail in ("coverage", "coverage/summary", "untested", "untested.csv"):
        assert client_for(officer_b).get(_url(c, tail)).status_code == 404, tail
        assert client_for(officer_a).get(_url(c, tail)).status_code == 200, tail
    assert client_for(officer_a).get("/api/v1/testing/campaigns/999999/coverage").status_code == 404


@pytest.mark.django_db
def test_figures_need_testing_view(rnd, volunteer_a, client_for):
    assert client_for(volunteer_a).get(_url(rnd["campaign"])).status_code == 403


@pytest.mark.django_db
def test_slow_figures_are_shared_briefly_with_their_time(rnd, commander, client_for, monkeypatch):
    from jingkong.testing import selectors_coverage
    from jingkong.testing.tests.coverage_helpers import person

    client = client_for(commander)
    first = client.get(_url(rnd["campaign"], "coverage/summary")).json()
    person(rnd["regions"]["grid_b2"], "late")
    fresh = client.get(_url(rnd["campaign"], "coverage/summary")).json()
    assert fresh["totals"]["target"] == first["totals"]["target"] + 1  # quick figures are never reused
    monkeypatch.setattr(selectors_coverage, "SLOW_SECONDS", 0.0)  # as if the district took long to count
    computed = client.get(_url(rnd["campaign"], "coverage/summary")).json()
    person(rnd["regions"]["grid_b2"], "later")
    reused = client.get(_url(rnd["campaign"], "coverage/summary")).json()
    assert reused["totals"] == computed["totals"] and reused["as_of"] == computed["as_of"]


# --- the untested list ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_untested_list_is_grouped_by_building_and_audited(rnd, grid_worker_a, commander, client_for):
    p = rnd["persons"]
    r = client_for(grid_worker_a).get(_url(rnd["campaign"], "untested"))  # default: the worker's grid
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["area"]["code"] == A1 and body["persons"] == 2 and body["truncated"] is False
    assert body["totals"]["not_sampled"] == 1 and body["totals"]["resample"] == 1
    [building] = body["buildings"]
    assert (building["building"], building["not_sampled"], building["resample"], building["door_visits"]) == (
        "COV-B-A1-1", 1, 1, 1)
    [household] = building["households"]
    assert (household["household"], household["unit"], household["room"]) == ("COV-H-2", "2", "1201")
    people = {x["id"]: x for x in household["persons"]}
    assert people[p["a1_8"].pk]["door_visit"] is True
    assert people[p["a1_8"].pk]["vulnerable"] == ["elderly", "limited_mobility"]
    assert people[p["a1_7"].pk]["state"] == "resample"
    assert people[p["a1_8"].pk]["phone"] == "13912345678"  # grid workers phone residents
    assert people[p["a1_8"].pk]["id_masked"].count("*") >= 8
    # A district-wide list is not made: choose a street, community or grid.
    assert client_for(commander).get(_url(rnd["campaign"], "untested")).status_code == 422
    assert client_for(commander).get(_url(rnd["campaign"], "untested"), {"region": A2}).status_code == 200
    logged = AuditLog.objects.filter(action="testing.untested_list", user=grid_worker_a)
    assert sorted(int(a.object_id) for a in logged) == sorted([p["a1_7"].pk, p["a1_8"].pk])
    assert {a.region_code for a in logged} == {A1}
    assert logged.first().detail["campaign"] == "COV-R1"


@pytest.mark.django_db
def test_untested_list_masks_phones_for_officers_and_stays_in_scope(rnd, officer_a, client_for):
    client = client_for(officer_a)
    r = client.get(_url(rnd["campaign"], "untested"), {"region": A2, "resample": "false"})
    assert r.status_code == 200
    persons = [x for b in r.json()["buildings"] for h in b["households"] for x in h["persons"]]
    assert [x["id"] for x in persons] == [rnd["persons"]["a2_4"].pk]
    assert persons[0]["phone"] == "139****5678"
    before = AuditLog.objects.count()
    assert client.get(_url(rnd["campaign"], "untested"), {"region": B1}).status_code == 404
    assert AuditLog.objects.count() == before
    # The whole street, in sweep order (grid, building), limited.
    r = client.get(_url(rnd["campaign"], "untested"), {"limit": 1})
    assert r.json()["persons"] == 1 and r.json()["truncated"] is True
    assert client.get(_url(rnd["campaign"], "untested"), {"limit": 0}).status_code == 422


@pytest.mark.django_db
def test_untested_list_needs_person_view(rnd, regions, client_for):
    analyst = make_user("analyst_a", "analyst", regions["street_a"])
    client = client_for(analyst)
    assert client.get(_url(rnd["campaign"])).status_code == 200
    assert client.get(_url(rnd["campaign"], "untested")).status_code == 403
    assert client.get(_url(rnd["campaign"], "untested.csv")).status_code == 403


@pytest.mark.django_db
def test_untested_export_is_a_spreadsheet_csv_and_audited(rnd, officer_a, client_for):
    r = client_for(officer_a).get(_url(rnd["campaign"], "untested.csv"), {"region": A1}, HTTP_ACCEPT_LANGUAGE="en")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("text/csv")
    assert "attachment" in r["Content-Disposition"]
    raw = r.content
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == 3  # header + 2 persons
    header, data = rows[0], rows[1:]
    assert header[0] == "Grid"
    names = {row[header.index("Name")] for row in data}
    assert names == {"居民a1_7", "居民a1_8"}
    for row in data:
        assert "*" in row[header.index("ID number (masked)")]
        assert row[header.index("Phone")] == "139****5678"
    logged = AuditLog.objects.filter(action="testing.untested_export", user=officer_a)
    assert sorted(int(a.object_id) for a in logged) == sorted([rnd["persons"]["a1_7"].pk, rnd["persons"]["a1_8"].pk])


# --- pages --------------------------------------------------------------------------------------------------------


def _progress(c, query: str = "") -> str:
    return f"/testing/campaigns/{c.pk}/progress/{query}"


@pytest.mark.django_db
def test_progress_board_drills_down_inside_the_callers_area(rnd, officer_a, officer_b, commander, client_for):
    c = rnd["campaign"]
    page = client_for(commander).get(_progress(c))
    assert page.status_code == 200
    text = page.content.decode()
    assert "330206002" in text and "330206004" in text and "81.2" in text
    page = client_for(officer_a).get(_progress(c, "?parent=330206002001"))
    assert page.status_code == 200
    text = page.content.decode()
    assert A1 in text and A2 in text and "330206004" not in text
    # Untested-list links for roles that may see persons.
    assert f"/testing/campaigns/{c.pk}/untested/{A1}/" in text
    analyst = make_user("analyst_a", "analyst", rnd["regions"]["street_a"])
    page = client_for(analyst).get(_progress(c, "?parent=330206002001"))
    assert page.status_code == 200 and "/untested/" not in page.content.decode()  # figures only, no names
    assert client_for(officer_a).get(_progress(c, "?parent=330206004")).status_code == 404
    street_b_round = campaign(rnd["regions"]["street_b"], "COV-B-ONLY")
    assert client_for(officer_a).get(_progress(street_b_round)).status_code == 404
    assert client_for(officer_b).get(_progress(street_b_round)).status_code == 200


@pytest.mark.django_db
def test_progress_board_needs_testing_view(rnd, volunteer_a, client_for):
    assert client_for(volunteer_a).get(_progress(rnd["campaign"])).status_code == 403
    assert client_for(None).get(_progress(rnd["campaign"])).status_code == 302


@pytest.mark.django_db
def test_printable_untested_list_is_audited_and_scoped(rnd, grid_worker_a, officer_b, regions, client_for):
    c = rnd["campaign"]
    url = f"/testing/campaigns/{c.pk}/untested/{A1}/"
    page = client_for(grid_worker_a).get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert "COV-B-A1-1" in text and "居民a1_8" in text and "居民a1_7" in text
    assert "13912345678" in text
    assert "居民a1_1" not in text  # sampled
    logged = AuditLog.objects.filter(action="testing.untested_list", user=grid_worker_a)
    assert logged.count() == 2
    # Another grid of the same street is outside the grid worker's region; grid a1 is outside officer B's street.
    assert client_for(grid_worker_a).get(f"/testing/campaigns/{c.pk}/untested/{A2}/").status_code == 404
    assert client_for(officer_b).get(url).status_code == 404
    assert AuditLog.objects.filter(action="testing.untested_list").count() == 2
    analyst = make_user("analyst_a", "analyst", regions["street_a"])
    assert client_for(analyst).get(url).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("lang", ["zh-hans", "en"])
def test_board_and_sweep_list_render_with_data_in_both_languages(rnd, officer_a, client_for, lang):
    c = rnd["campaign"]
    client = client_for(officer_a)
    board = client.get(_progress(c, "?level=grid"), HTTP_ACCEPT_LANGUAGE=lang)
    assert board.status_code == 200
    text = board.content.decode()
    assert f'<html lang="{lang}">' in text
    assert ("Round progress" in text) is (lang == "en")  # the heading is translated
    for code, pct in ((A1, "87.5 %"), (A2, "80.0 %")):
        assert f'data-code="{code}"' in text and pct in text
    assert "84.6 %" in text  # the street's total: 11 of 13
    sheet = client.get(f"/testing/campaigns/{c.pk}/untested/{A1}/", HTTP_ACCEPT_LANGUAGE=lang)
    assert sheet.status_code == 200
    text = sheet.content.decode()
    assert f'<html lang="{lang}">' in text
    assert "居民a1_7" in text and "居民a1_8" in text and "330206********" in text
    assert "139****5678" in text and "13912345678" not in text  # a street officer does not phone residents
    assert "♿" in text and "window.print()" in text and "testing/coverage.css" in text
    assert text.index("1201") < text.index("居民a1_7") < text.index("居民a1_8")  # household room, then its members


@pytest.mark.django_db
def test_untested_export_labels_sex_and_vulnerable_groups_in_the_readers_language(rnd, officer_a, client_for):
    r = client_for(officer_a).get(_url(rnd["campaign"], "untested.csv"), {"region": A1}, HTTP_ACCEPT_LANGUAGE="en")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    header, data = rows[0], {row[rows[0].index("Name")]: row for row in rows[1:]}
    assert data["居民a1_8"][header.index("Sex")] == "female"
    assert data["居民a1_8"][header.index("Vulnerable groups")] == "elderly;limited mobility"
    assert data["居民a1_8"][header.index("Door-to-door visit")] == "yes"
    assert data["居民a1_7"][header.index("State")] == "to be resampled"


@pytest.mark.django_db
def test_another_streets_region_is_not_found_on_every_coverage_route(rnd, officer_a, client_for):
    client = client_for(officer_a)
    c = rnd["campaign"]  # a district round: officer A sees street A's part only
    for region in ("330206004", B1, "330206"):
        for tail, key in (("coverage", "parent"), ("coverage/summary", "region"), ("untested", "region"),
                          ("untested.csv", "region")):
            r = client.get(_url(c, tail), {key: region})
            assert r.status_code == 404, (tail, region)
            assert "居民b1" not in r.content.decode()
        assert client.get(f"/testing/campaigns/{c.pk}/progress/", {"parent": region}).status_code == 404
        assert client.get(f"/testing/campaigns/{c.pk}/untested/{region}/").status_code == 404


@pytest.mark.django_db
def test_bad_input_answers_422_or_404_never_500(rnd, commander, client_for):
    client = client_for(commander)
    c = rnd["campaign"]
    cases = {
        "/api/v1/testing/campaigns/99999999999999999999/coverage": 404,  # beyond a 64-bit id
        "/api/v1/testing/campaigns/-1/coverage/summary": 404,
        _url(c) + "?level=楼栋": 422,
        _url(c) + "?parent=" + "3" * 300: 404,
        _url(c) + "?parent=330206%25": 404,  # a LIKE wildcard is no region code
        _url(c, "coverage/summary") + "?region=330206002_": 404,
        _url(c, "untested") + f"?region={A1}&limit=99999999999999999999999": 422,
        _url(c, "untested") + f"?region={A1}&limit=abc": 422,
        _url(c, "untested") + f"?region={A1}&resample=maybe": 422,
        _url(c, "untested.csv") + "?region=330206": 422,  # a whole district's list is not made
        _url(c) + "?parent=330206%00": 404,  # NUL characters never reach the database
        _url(c) + "?level=%00": 422,
        _url(c, "untested") + "?region=330206002%00": 404,
        f"/testing/campaigns/{c.pk}/untested/330206002%00/": 404,
        "/testing/campaigns/99999999999999999999/progress/": 404,
        f"/testing/campaigns/{c.pk}/progress/?level=zz": 422,
        f"/testing/campaigns/{c.pk}/progress/?parent=zz&sort=zz": 404,
        f"/testing/campaigns/{c.pk}/untested/330206/": 422,
        f"/testing/campaigns/{c.pk}/untested/北仑/": 404,
        "/testing/campaigns/99999999999999999999/untested/330206002/": 404,
    }
    for url, status in cases.items():
        assert client.get(url).status_code == status, url


@pytest.mark.django_db
def test_while_slow_figures_are_recomputed_other_boards_get_the_previous_ones(rnd, commander, client_for, monkeypatch):
    from django.core.cache import cache

    from jingkong.testing import selectors_coverage
    from jingkong.testing.tests.coverage_helpers import person

    monkeypatch.setattr(selectors_coverage, "SLOW_SECONDS", 0.0)  # as if the district took long to count
    monkeypatch.setattr(selectors_coverage, "CACHE_SECONDS", 0.0)  # and every figure were out of date at once
    client = client_for(commander)
    url = _url(rnd["campaign"], "coverage/summary")
    first = client.get(url).json()
    person(rnd["regions"]["grid_b2"], "late")
    fresh = client.get(url).json()  # out of date, nobody else computing: computed again
    assert fresh["totals"]["target"] == first["totals"]["target"] + 1
    lock = f"jk:coverage:{rnd['campaign'].pk}:330206:-:computing"
    assert cache.add(lock, 1)  # another board is computing them right now
    person(rnd["regions"]["grid_b2"], "later")
    served = client.get(url).json()
    assert served["totals"] == fresh["totals"] and served["as_of"] == fresh["as_of"]
    cache.delete(lock)
    assert client.get(url).json()["totals"]["target"] == fresh["totals"]["target"] + 1


@pytest.mark.django_db
def test_a_key_group_rounds_pages_name_the_group(rnd, officer_a, client_for):
    c = campaign(rnd["regions"]["street_a"], "COV-PORT-P", key_industry="cold_chain")
    client = client_for(officer_a)
    for url in (_progress(c), f"/testing/campaigns/{c.pk}/untested/{A1}/"):
        text = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
        assert "key group: cold chain" in " ".join(text.split()), url
