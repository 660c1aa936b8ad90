"""Coverage figures (应检尽检) on a crafted round whose every number is known by hand (see coverage_helpers)."""

from __future__ import annotations

import pytest

from jingkong.access.guard import EVERYTHING, NOTHING, Scope
from jingkong.analytics import coverage
from jingkong.core.exceptions import NotFound, ValidationFailed
from jingkong.testing.tests.coverage_helpers import EXPECTED, campaign, make_round, person, retest, tube

FIELDS = ("target", "sampled", "not_sampled", "negative", "pending", "positive", "resample", "pool_positive")
A1, A2, B1, B2 = "330206002001001", "330206002001002", "330206004001001", "330206004001002"


def _counts(row: dict) -> dict:
    return {f: row[f] for f in FIELDS}


@pytest.fixture
def rnd(regions):
    return make_round(regions)


@pytest.mark.django_db
def test_district_by_grid_counts_each_person_once_in_their_most_serious_state(rnd):
    rows = coverage.coverage_rows(rnd["campaign"], scope=EVERYTHING, level="grid")
    assert [r["code"] for r in rows] == [A1, A2, B1, B2]
    assert {r["code"]: _counts(r) for r in rows} == EXPECTED
    a1 = rows[0]
    # a1_1 was swabbed twice (negative pool, pending pool): one person, negative.
    assert a1["sampled"] == 7 and a1["negative"] == 3
    assert a1["coverage_pct"] == 87.5
    assert rows[3]["coverage_pct"] is None  # nobody lives in b2
    for r in rows:
        assert r["sampled"] == sum(r[s] for s in coverage.STATES)
        assert r["not_sampled"] == r["target"] - r["sampled"]


@pytest.mark.django_db
def test_totals_leave_out_persons_without_residence_and_visitors(rnd):
    summary = coverage.coverage_summary(rnd["campaign"], scope=EVERYTHING)
    assert summary["area"]["code"] == "330206"
    assert _counts(summary) == {"target": 16, "sampled": 13, "not_sampled": 3, "negative": 4, "pending": 5,
                                "positive": 2, "resample": 1, "pool_positive": 1}
    assert summary["coverage_pct"] == 81.2
    # The provisional person swabbed at a site outside any grid is reported, not counted.
    assert summary["unplaced_sampled"] == 1


@pytest.mark.django_db
def test_street_and_community_levels_roll_up_grids(rnd):
    streets = coverage.coverage_rows(rnd["campaign"], scope=EVERYTHING, level="street")
    assert [(r["code"], r["target"], r["sampled"]) for r in streets] == [("330206002", 13, 11), ("330206004", 3, 2)]
    communities = coverage.coverage_rows(rnd["campaign"], scope=EVERYTHING, parent="330206002")
    assert [(r["code"], r["level"], r["target"], r["pool_positive"]) for r in communities] == [
        ("330206002001", "community", 13, 1)]
    assert coverage.coverage_rows(rnd["campaign"], scope=EVERYTHING, parent=A1) == [
        {"code": A1, "name": "第一网格", "level": "grid", **EXPECTED[A1], "coverage_pct": 87.5}]


@pytest.mark.django_db
def test_part_of_a_campaign_agrees_with_the_whole_campaign_plan(rnd):
    """A street officer's view (persons-first plan) gives the same rows as the command centre's (samples-first)."""
    whole = {r["code"]: r for r in coverage.coverage_rows(rnd["campaign"], scope=EVERYTHING, level="grid")}
    for street in ("330206002", "330206004"):
        part = coverage.coverage_rows(rnd["campaign"], scope=Scope(street), level="grid")
        assert part and all(r["code"].startswith(street) for r in part)
        for r in part:
            assert r == whole[r["code"]]


@pytest.mark.django_db
def test_scope_limits_rows_and_refuses_regions_outside_it(rnd):
    c = rnd["campaign"]
    rows = coverage.coverage_rows(c, scope=Scope("330206002"), level="grid")
    assert [r["code"] for r in rows] == [A1, A2]
    # The default breakdown is one level below the caller's region.
    assert [r["level"] for r in coverage.coverage_rows(c, scope=Scope("330206002"))] == ["community"]
    with pytest.raises(NotFound):
        coverage.coverage_rows(c, scope=Scope("330206002"), parent="330206004")
    with pytest.raises(NotFound):  # a region containing the scope is outside it too
        coverage.coverage_rows(c, scope=Scope("330206002"), parent="330206")
    with pytest.raises(NotFound):
        coverage.coverage_summary(c, scope=NOTHING)
    grid_worker = coverage.coverage_summary(c, scope=Scope(A1))
    assert _counts(grid_worker) == EXPECTED[A1] and "unplaced_sampled" not in grid_worker
    with pytest.raises(ValidationFailed):
        coverage.coverage_rows(c, scope=EVERYTHING, level="building")


@pytest.mark.django_db
def test_a_campaign_of_one_street_is_invisible_to_the_other_street(rnd):
    c = campaign(rnd["regions"]["street_b"], "COV-B")
    with pytest.raises(NotFound):
        coverage.coverage_summary(c, scope=Scope("330206002"))
    assert coverage.coverage_summary(c, scope=Scope("330206004"))["target"] == 3
    # A street round seen from the district: the round's region, not the district.
    assert coverage.coverage_summary(c, scope=EVERYTHING)["area"]["code"] == "330206004"
    with pytest.raises(NotFound):
        coverage.coverage_rows(c, scope=EVERYTHING, parent="330206002")


@pytest.mark.django_db
def test_key_industry_round_counts_the_group_where_it_lives_or_works(rnd):
    g = rnd["regions"]
    p = rnd["persons"]
    c = campaign(g["street_a"], "COV-PORT", key_industry="port")
    port_a1 = person(g["grid_a1"], "port_a1", industry="port")
    port_a2 = person(g["grid_a2"], "port_a2", industry="port")
    person(g["grid_b1"], "port_b1_home", industry="port")  # lives and works outside street A: not in the round
    port_b1_works_a1 = person(g["grid_b1"], "port_b1_works", industry="port", workplace=rnd["venue_a1"])
    tube(c, [port_a1, port_b1_works_a1, p["a1_2"]], outcome="negative")  # a1_2 is no port worker: not coverage
    rows = coverage.coverage_rows(c, scope=EVERYTHING, level="grid")
    assert [(r["code"], r["target"], r["sampled"], r["negative"]) for r in rows] == [(A1, 2, 2, 2), (A2, 1, 0, 0)]
    assert _counts(coverage.coverage_summary(c, scope=Scope(A2))) == {
        "target": 1, "sampled": 0, "not_sampled": 1, "negative": 0, "pending": 0, "positive": 0, "resample": 0,
        "pool_positive": 0}
    untested = coverage.untested_persons(coverage.resolve_area(c, scope=EVERYTHING))
    assert [u["id"] for u in untested] == [port_a2.pk]


@pytest.mark.django_db
def test_positive_pool_states_follow_the_retest_tasks(rnd):
    """A pool member is pool-positive until their own retest resolves it; a retest swab taken but not resulted keeps
    them controlled in place."""
    c = rnd["campaign"]
    task = rnd["persons"]["a2_2"]
    from jingkong.testing.models import RetestTask

    RetestTask.objects.filter(person=task).update(status="sampled")
    assert coverage.coverage_summary(c, scope=Scope(A2))["pool_positive"] == 1
    RetestTask.objects.filter(person=task).update(status="negative")
    s = coverage.coverage_summary(c, scope=Scope(A2))
    assert (s["pool_positive"], s["negative"]) == (0, 2)


@pytest.mark.django_db
def test_a_pool_without_retest_tasks_yet_is_pool_positive_and_a_routine_single_tube_is_individual(regions):
    c = campaign(regions["district"])
    pooled = [person(regions["grid_b2"], f"pool{i}") for i in range(3)]
    tube(c, pooled, outcome="positive")
    early_sealed = person(regions["grid_b2"], "alone")
    tube(c, [early_sealed], outcome="positive", capacity=10)  # a pool sealed with one swab is still a pool
    single = person(regions["grid_b2"], "single")
    t = tube(c, [single], outcome="positive", capacity=1)
    retest(c, single, t, "open")  # a single tube is individual whatever its tasks say
    s = coverage.coverage_summary(c, scope=EVERYTHING)
    assert (s["target"], s["pool_positive"], s["positive"]) == (5, 4, 1)


@pytest.mark.django_db
def test_untested_list_matches_the_not_sampled_count(rnd):
    c = rnd["campaign"]
    p = rnd["persons"]
    for code in (A1, A2, B1):
        area = coverage.resolve_area(c, scope=EVERYTHING, region=code)
        only_untested = coverage.untested_persons(area, include_resample=False)
        assert len(only_untested) == EXPECTED[code]["not_sampled"]
        with_resample = coverage.untested_persons(area)
        assert len(with_resample) == EXPECTED[code]["not_sampled"] + EXPECTED[code]["resample"]
    rows = coverage.untested_persons(coverage.resolve_area(c, scope=EVERYTHING, region=A1))
    assert {r["id"]: r["state"] for r in rows} == {p["a1_7"].pk: "resample", p["a1_8"].pk: "not_sampled"}
    assert {r["building_code"] for r in rows} == {"COV-B-A1-1"}
    assert rows[0]["household_code"] == "COV-H-2"
    # The whole district, limited.
    district = coverage.untested_persons(coverage.resolve_area(c, scope=EVERYTHING), limit=2)
    assert len(district) == 2


@pytest.mark.django_db
def test_a_person_moving_counts_where_they_live_now(rnd):
    c = rnd["campaign"]
    p = rnd["persons"]["a1_3"]  # pending, swabbed while living in a1
    p.grid = rnd["regions"]["grid_b2"]
    p.save(update_fields=["grid"])
    rows = {r["code"]: r for r in coverage.coverage_rows(c, scope=EVERYTHING, level="grid")}
    assert (rows[A1]["target"], rows[A1]["pending"]) == (7, 1)
    assert (rows[B2]["target"], rows[B2]["sampled"], rows[B2]["pending"]) == (1, 1, 1)


@pytest.mark.django_db
def test_a_later_swab_answers_an_invalid_tube(regions):
    """A member of an invalid tube swabbed again later — at a site, in a routine tube that claims no resampling task —
    is no longer "to resample": the later swab speaks (pending, then negative); a swab older than the invalid one does
    not."""
    c = campaign(regions["district"])
    g = regions["grid_b2"]
    again_pending, again_negative, earlier_only, invalid_only = (person(g, k) for k in ("ip", "in", "ie", "io"))
    earlier = tube(c, [earlier_only])  # pending, taken before the invalid tube
    invalid = tube(c, [again_pending, again_negative, earlier_only, invalid_only], outcome="invalid")
    for p in (again_pending, again_negative, earlier_only, invalid_only):
        retest(c, p, invalid, "open", reason="invalid_tube")
    tube(c, [again_pending])  # at a site, no result yet
    tube(c, [again_negative], outcome="negative")
    assert earlier.pk < invalid.pk
    s = coverage.coverage_summary(c, scope=EVERYTHING)
    assert _counts(s) == {"target": 4, "sampled": 4, "not_sampled": 0, "negative": 1, "pending": 1, "positive": 0,
                          "resample": 2, "pool_positive": 0}
    part = coverage.coverage_summary(c, scope=Scope(B2))  # the persons-first plan agrees
    assert _counts(part) == _counts(s)
    untested = coverage.untested_persons(coverage.resolve_area(c, scope=EVERYTHING, region=B2))
    assert {u["id"]: u["state"] for u in untested} == {earlier_only.pk: "resample", invalid_only.pk: "resample"}


@pytest.mark.django_db
def test_untested_list_finds_the_building_through_the_household_and_puts_the_unknown_last(regions):
    from jingkong.geo.models import Building
    from jingkong.people.models import Household

    c = campaign(regions["district"])
    g = regions["grid_b2"]
    nowhere = person(g, "nowhere")  # lowest id, no building, no household
    b = Building.objects.create(code="COV-B-B2-9", grid=g, address="大碶二网格9号楼", lon=121.83, lat=29.9)
    h = Household.objects.create(code="COV-H-B2-9", building=b, grid=g, unit="3", room="302")
    via_household = person(g, "via_household", household=h)  # the registry left the person's building empty
    area = coverage.resolve_area(c, scope=EVERYTHING, region=B2)
    rows = coverage.untested_persons(area)
    assert [(r["id"], r["building_code"], r["household_room"]) for r in rows] == [
        (via_household.pk, "COV-B-B2-9", "302"), (nowhere.pk, None, None)]
    # Cut at one person: the same person on both databases (SQLite sorts NULL first, PostgreSQL last).
    assert [r["id"] for r in coverage.untested_persons(area, limit=1)] == [via_household.pk]


@pytest.mark.django_db
def test_key_group_member_without_residence_counts_at_work_and_is_not_unplaced(rnd):
    g = rnd["regions"]
    c = campaign(g["district"], "COV-PORT-2", key_industry="port")
    at_work = person(None, "port_nohome", industry="port", workplace=rnd["venue_a1"])
    stranger = person(None, "port_stranger", source="provisional")  # scanned at the port, no record of anything
    tube(c, [at_work, stranger], outcome="negative")
    s = coverage.coverage_summary(c, scope=EVERYTHING)
    assert (s["target"], s["sampled"], s["unplaced_sampled"]) == (1, 1, 1)
    assert coverage.coverage_rows(c, scope=EVERYTHING, parent=A1)[0]["negative"] == 1
