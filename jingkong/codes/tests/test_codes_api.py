"""Health-code API and pages: a person's code, counts with drill-down that add up, restricted people in scope,
overrides and the recompute (both databases)."""

from __future__ import annotations

import datetime as dt

import pytest

from jingkong.access.roles import Role
from jingkong.codes import engine
from jingkong.codes.tests import engine_helpers as H
from jingkong.codes.tests.engine_helpers import NOW, case, code_of, contact, person, referral, zone
from jingkong.conftest import make_user

pytestmark = pytest.mark.django_db
now, district = H.now, H.district  # fixtures


@pytest.fixture
def world(district):
    r = district
    a1, a2, b1 = r["grid_a1"], r["grid_a2"], r["grid_b1"]
    w = {
        "case_a": person(a1, "病例甲"), "contact_a": person(a2, "密接乙"), "fever_a": person(a1, "发热丙"),
        "green_a": person(a1, "居民丁"), "case_b": person(b1, "病例戊"), "locked_b": person(b1, "封控己"),
        "nowhere": person(None, "无网格"),
    }
    case(w["case_a"])
    contact(w["contact_a"], exposure=NOW - dt.timedelta(days=2))
    referral(w["fever_a"])
    case(w["case_b"])
    zone("lockdown", [w["locked_b"]], region_code="330206004")
    engine.recompute_all()
    return {**w, "regions": r}


@pytest.fixture
def commander_a(regions):
    return make_user("commander_street_a", Role.COMMANDER, regions["street_a"])


def test_a_persons_code_with_reasons_and_green_on_is_audited(world, officer_a, client_for):
    from jingkong.access.models import AuditLog

    p = world["contact_a"]
    r = client_for(officer_a).get(f"/api/v1/codes/people/{p.pk}")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["colour"] == "red" and body["rule_id"] == "close_contact_central"
    assert body["green_on"] == "2022-01-23" and body["reasons"][0]["until"] == "2022-01-23"
    assert body["id_masked"] == p.id_masked and body["name"] == "密接乙"
    assert AuditLog.objects.filter(action="person.view", object_id=str(p.pk), user_id=officer_a.pk).exists()
    assert client_for(officer_a).get(f"/api/v1/codes/people/{world['case_b'].pk}").status_code == 404
    assert client_for(officer_a).get("/api/v1/codes/people/99999999").status_code == 404
    assert client_for(officer_a).get(f"/api/v1/codes/people/{2**63}").status_code in (404, 422)


def test_a_person_without_a_stored_code_gets_the_rules_answer_without_writing(world, officer_a, client_for):
    p = person(world["regions"]["grid_a1"])
    case(p)
    body = client_for(officer_a).get(f"/api/v1/codes/people/{p.pk}").json()
    assert body["colour"] == "red" and body["computed_at"]
    assert code_of(p) is None


def _sum(rows, key):
    return sum(r[key] for r in rows)


@pytest.mark.parametrize("region", ["", "330206002", "330206002001", "330206004001001"])
def test_counts_add_up_at_every_level(world, commander, client_for, region):
    r = client_for(commander).get("/api/v1/codes/counts", {"region": region})
    assert r.status_code == 200, r.content
    body = r.json()
    for colour in ("green", "yellow", "red", "total"):
        children = [c["counts"] for c in body["children"]] + [body["elsewhere"]]
        assert body["counts"][colour] == _sum(children, colour), (region, colour)


def test_counts_drill_down_figures(world, commander, admin_user, client_for):
    top = client_for(commander).get("/api/v1/codes/counts").json()
    assert top["region"]["code"] == "330206"
    assert top["counts"] == {"green": 1, "yellow": 1, "orange": 0, "red": 4, "total": 6}
    streets = {c["code"]: c["counts"] for c in top["children"]}
    assert streets["330206002"]["red"] == 2 and streets["330206004"]["red"] == 2
    assert top["elsewhere"]["total"] == 0
    platform = client_for(admin_user).get("/api/v1/codes/counts").json()
    assert platform["counts"]["total"] == 7 and platform["elsewhere"]["total"] == 1  # the person without a grid
    grids = client_for(commander).get("/api/v1/codes/counts?region=330206002001").json()
    assert {c["code"]: c["counts"]["red"] for c in grids["children"]} == {"330206002001001": 1,
                                                                           "330206002001002": 1}


def test_counts_stay_in_scope_and_refuse_bad_input(world, officer_a, client_for):
    c = client_for(officer_a)
    mine = c.get("/api/v1/codes/counts").json()
    assert mine["region"]["code"] == "330206002" and "330206004" not in str(mine)
    assert mine["counts"]["total"] == 4
    assert c.get("/api/v1/codes/counts?region=330206004").status_code == 404
    assert c.get("/api/v1/codes/counts?region=330206").status_code == 404
    assert c.get("/api/v1/codes/counts?region=33%25").status_code == 422
    assert c.get("/api/v1/codes/counts?region=330206002%00").status_code == 422


def test_restricted_people_in_scope_with_masked_ids(world, officer_a, client_for):
    from jingkong.access.models import AuditLog

    c = client_for(officer_a)
    body = c.get("/api/v1/codes/people").json()
    ids = {i["person_id"] for i in body["items"]}
    assert ids == {world["case_a"].pk, world["contact_a"].pk, world["fever_a"].pk}
    assert all("*" in i["id_masked"] for i in body["items"])
    red = c.get("/api/v1/codes/people?colour=red").json()
    assert {i["person_id"] for i in red["items"]} == {world["case_a"].pk, world["contact_a"].pk}
    assert red["count"] == 2
    assert AuditLog.objects.filter(action="person.list", user_id=officer_a.pk).exists()
    assert c.get("/api/v1/codes/people?colour=purple").status_code == 422
    assert c.get("/api/v1/codes/people?region=330206004").status_code == 404


def test_overrides_through_the_api(world, commander_a, officer_a, client_for):
    p = world["case_a"]
    c = client_for(commander_a)
    url = f"/api/v1/codes/people/{p.pk}/overrides"
    assert client_for(officer_a).post(url, {"colour": "green", "reason": "x"},
                                      content_type="application/json").status_code == 403
    assert c.post(url, {"colour": "green", "reason": ""}, content_type="application/json").status_code == 422
    assert c.post(url, {"colour": "green", "reason": "a\x00b"}, content_type="application/json").status_code == 422
    assert c.post(url, {"colour": "blue", "reason": "x"}, content_type="application/json").status_code == 422
    past = (NOW - dt.timedelta(hours=1)).isoformat()
    r = c.post(url, {"colour": "green", "reason": "x", "expires_at": past}, content_type="application/json")
    assert r.status_code == 422 and "expires_at" in str(r.json())
    later = (NOW + dt.timedelta(days=1)).isoformat()
    r = c.post(url, {"colour": "green", "reason": "核酸复核阴性，误报", "expires_at": later},
               content_type="application/json")
    assert r.status_code == 201, r.content
    made = r.json()
    assert made["active"] and made["created_by"] == "commander_street_a"
    code = c.get(f"/api/v1/codes/people/{p.pk}").json()
    assert code["colour"] == "green" and code["overridden"] and code["reasons"][0]["reason"] == "核酸复核阴性，误报"
    assert [o["id"] for o in c.get(url).json()] == [made["id"]]
    revoke = f"/api/v1/codes/overrides/{made['id']}/revoke"
    assert c.post(revoke, {"reason": "撤销"}, content_type="application/json").status_code == 200
    assert c.post(revoke, {"reason": "撤销"}, content_type="application/json").status_code == 409
    assert c.get(f"/api/v1/codes/people/{p.pk}").json()["colour"] == "red"
    other = f"/api/v1/codes/people/{world['case_b'].pk}/overrides"
    assert c.post(other, {"colour": "green", "reason": "x"}, content_type="application/json").status_code == 404


def test_the_recompute_is_a_background_job(world, commander, officer_a, client_for):
    from jingkong.core import jobs
    from jingkong.core.models import Job

    assert client_for(officer_a).post("/api/v1/codes/recompute").status_code == 403
    r = client_for(commander).post("/api/v1/codes/recompute")
    assert r.status_code == 202 and r.json()["kind"] == "codes.recompute" and r.json()["status"] == "queued"
    job = jobs.claim_next()
    jobs._execute(job, None)
    job = Job.objects.get(pk=job.pk)
    assert job.status == "succeeded" and job.result["evaluated"] == 5 and job.progress == job.total


# --- pages -------------------------------------------------------------------------------------------------------------


def test_board_and_lists_pages(world, officer_a, client_for):
    c = client_for(officer_a)
    board = c.get("/codes/")
    assert board.status_code == 200
    text = board.content.decode()
    assert "330206002001" in text and "330206004" not in text
    assert c.get("/codes/?region=330206002001").status_code == 200
    assert c.get("/codes/?region=330206004").status_code == 404
    people = c.get("/codes/people/?colour=red").content.decode()
    assert "病例甲" in people and "密接乙" in people and "病例戊" not in people and "发热丙" not in people
    page = c.get(f"/codes/people/{world['contact_a'].pk}/")
    assert page.status_code == 200 and "2022-01-23" in page.content.decode()
    assert c.get(f"/codes/people/{world['case_b'].pk}/").status_code == 404
    assert "Set the code by hand" not in page.content.decode()  # officers cannot override


def test_an_override_expiry_out_of_range_is_a_422_not_a_500(world, commander_a, client_for):
    """Expiries at the edge of the calendar overflowed when stored (-12:00) or when the engine took the local date
    (a UTC evening of 9999-12-31 is 10000-01-01 in Shanghai): a 500, and then every later recompute of the person
    (and the full recompute) failed on that row."""
    from jingkong.codes.models import CodeOverride

    p = world["green_a"]
    c = client_for(commander_a)
    url = f"/api/v1/codes/people/{p.pk}/overrides"
    for value in ("9999-12-31T23:59:59-12:00", "9999-12-31T20:00:00Z", "3000-01-01T00:00:00+08:00"):
        r = c.post(url, {"colour": "red", "reason": "x", "expires_at": value}, content_type="application/json")
        assert r.status_code == 422 and "expires_at" in r.json()["message"], (value, r.status_code)
    page = c.post(f"/codes/people/{p.pk}/override/", {"colour": "red", "reason": "x", "expires_at": "9999-12-31T23:59"})
    assert page.status_code == 422
    assert not CodeOverride.objects.filter(person=p).exists() and code_of(p).colour == "green"
    within = (NOW + engine_services_max_span() - dt.timedelta(hours=1)).isoformat()
    assert c.post(url, {"colour": "red", "reason": "x", "expires_at": within},
                  content_type="application/json").status_code == 201
    assert code_of(p).colour == "red"
    engine.recompute_all()  # the full recompute still runs


def engine_services_max_span():
    from jingkong.codes import services

    return services.MAX_OVERRIDE_SPAN


def test_override_and_recompute_from_the_pages(world, commander_a, client_for):
    from jingkong.codes.models import CodeOverride
    from jingkong.core.models import Job

    c = client_for(commander_a)
    p = world["fever_a"]
    page = c.get(f"/codes/people/{p.pk}/").content.decode()
    assert 'name="expires_at"' in page and 'name="reason"' in page  # the override form (any UI language)
    bad = c.post(f"/codes/people/{p.pk}/override/", {"colour": "green", "reason": ""})
    assert bad.status_code == 422 and code_of(p).colour == "yellow"
    bad = c.post(f"/codes/people/{p.pk}/override/", {"colour": "green", "reason": "x", "expires_at": "tomorrow"})
    assert bad.status_code == 422
    ok = c.post(f"/codes/people/{p.pk}/override/", {"colour": "green", "reason": "体温复测正常",
                                                    "expires_at": "2022-01-11T12:00"})
    assert ok.status_code == 302 and code_of(p).colour == "green"
    row = CodeOverride.objects.get(person=p)
    assert row.expires_at == dt.datetime(2022, 1, 11, 4, 0, tzinfo=dt.UTC)  # 12:00 in Shanghai
    assert c.post(f"/codes/overrides/{row.pk}/revoke/").status_code == 302 and code_of(p).colour == "yellow"
    assert c.post(f"/codes/people/{world['case_b'].pk}/override/", {"colour": "green", "reason": "x"}).status_code == 404
    assert c.post("/codes/recompute/").status_code == 302
    assert Job.objects.filter(kind="codes.recompute", status="queued").exists()


def test_the_back_office_is_read_only_and_audited(world, admin_user, client_for):
    from jingkong.access.models import AuditLog

    c = client_for(admin_user)
    assert c.get("/admin/codes/healthcode/").status_code == 200
    p = world["case_a"]
    page = c.get(f"/admin/codes/healthcode/{p.pk}/change/")
    assert page.status_code == 200 and "病例甲" not in page.content.decode()
    assert AuditLog.objects.filter(action="person.view", object_id=str(p.pk), user_id=admin_user.pk).exists()
    assert c.get("/admin/codes/healthcode/add/").status_code == 403
    assert c.get("/admin/codes/codeoverride/").status_code == 200
