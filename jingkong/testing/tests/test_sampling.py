"""Single scans through POST /api/v1/testing/scans: tubes, pooling, campaigns, idempotency, provisional persons,
retests and authority."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from jingkong.conftest import T0, make_user
from jingkong.testing.tests import sampling_helpers as h

pytestmark = pytest.mark.django_db
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}  # reasons are translated (the UI defaults to Chinese): read the English source
URL = "/api/v1/testing/scans"


@pytest.fixture
def world(regions, frozen_clock, bearer):
    sampler = make_user("sampler_a", "sampler", regions["street_a"])
    round_ = h.campaign(regions["district"], "R1", pool_size=10)
    site = h.site(regions["grid_a1"], "SITE-A1", samplers=[sampler])
    people = [h.person(regions["grid_a1"], i) for i in range(1, 31)]
    return {"regions": regions, "sampler": sampler, "auth": bearer(sampler) | EN, "campaign": round_, "site": site,
            "people": people, "bearer": bearer}


def post(client, body, auth):
    return client.post(URL, data=json.dumps(body), content_type="application/json", **auth)


def tube_row(barcode):
    from jingkong.testing.models import Tube

    return Tube.objects.get(barcode=barcode)


def samples(**filters):
    from jingkong.testing.models import Sample

    return Sample.objects.filter(**filters)


def test_first_scan_opens_a_tube_with_the_campaigns_pool_size(client, world):
    _, number = world["people"][0]
    r = post(client, h.scan("T0001", number, "SITE-A1", client_scan_id="dev1-0001"), world["auth"])
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["status"] == "recorded" and body["position"] == 1 and not body["replayed"]
    assert body["tube_state"] == {"barcode": "T0001", "kind": "routine", "capacity": 10, "member_count": 1,
                                  "status": "open"}
    tube = tube_row("T0001")
    assert tube.campaign == world["campaign"] and tube.site == world["site"]
    assert tube.region_code == world["site"].region_code and tube.opened_at == T0
    s = samples().get()
    assert (s.person, s.tube, s.campaign, s.site, s.sampler) == (world["people"][0][0], tube, world["campaign"],
                                                                 world["site"], world["sampler"])
    assert s.region_code == world["regions"]["grid_a1"].code and s.client_scan_id == "dev1-0001"


def test_a_tube_seals_itself_when_full_and_refuses_more(client, world):
    for i in range(10):
        r = post(client, h.scan("T0002", world["people"][i][1], "SITE-A1"), world["auth"])
        assert r.status_code == 201 and r.json()["position"] == i + 1
    assert r.json()["tube_state"]["status"] == "sealed"
    tube = tube_row("T0002")
    assert (tube.member_count, tube.status, tube.sealed_at) == (10, "sealed", T0)
    r = post(client, h.scan("T0002", world["people"][10][1], "SITE-A1"), world["auth"])
    assert r.status_code == 409
    extra = r.json()["extra"]
    assert extra["field"] == "tube" and "sealed" in extra["reason"]
    assert extra["tube"]["member_count"] == 10
    assert samples(tube=tube).count() == 10


def test_the_scans_pool_size_sets_the_capacity_of_a_new_tube_only(client, world):
    people = world["people"]
    assert post(client, h.scan("T5", people[0][1], "SITE-A1", pool_size=5), world["auth"]).json()["tube_state"][
        "capacity"] == 5
    r = post(client, h.scan("T5", people[1][1], "SITE-A1", pool_size=20), world["auth"])
    assert r.json()["tube_state"]["capacity"] == 5


def test_the_most_specific_campaign_area_gives_the_pool_size(client, regions, frozen_clock, bearer):
    sampler = make_user("sampler_x", "sampler", regions["street_a"])
    h.campaign(regions["district"], "R2", pool_size=10,
               areas={regions["street_a"]: 20, regions["grid_a1"]: 1, regions["street_b"]: 5})
    h.site(regions["grid_a1"], "S-A1", samplers=[sampler])
    h.site(regions["grid_a2"], "S-A2", samplers=[sampler])
    (_, n1), (_, n2) = h.person(regions["grid_a1"]), h.person(regions["grid_a2"])
    auth = bearer(sampler) | EN
    assert post(client, h.scan("TA1", n1, "S-A1"), auth).json()["tube_state"]["capacity"] == 1
    assert post(client, h.scan("TA2", n2, "S-A2"), auth).json()["tube_state"]["capacity"] == 20


def test_door_to_door_teams_use_the_area_of_the_persons_grid(client, regions, frozen_clock, bearer):
    sampler = make_user("sampler_d", "sampler", regions["street_a"])
    h.campaign(regions["district"], "R3", pool_size=10, areas={regions["grid_a2"]: 1})
    h.site(regions["street_a"], "TEAM-A", kind="door_team", samplers=[sampler])
    _, number = h.person(regions["grid_a2"])
    assert post(client, h.scan("TD1", number, "TEAM-A"), bearer(sampler)).json()["tube_state"]["capacity"] == 1


def test_a_single_pool_tube_is_sealed_by_its_first_scan(client, world):
    r = post(client, h.scan("T1", world["people"][0][1], "SITE-A1", pool_size=1), world["auth"])
    assert r.json()["tube_state"]["status"] == "sealed"
    assert tube_row("T1").sealed_at == T0


class TestCampaignChoice:
    def test_the_most_specific_running_campaign_contains_the_site(self, client, world):
        regions = world["regions"]
        street_round = h.campaign(regions["street_a"], "RA", pool_size=5)
        h.campaign(regions["grid_a1"], "R-PLANNED", status="planned", pool_size=1)
        h.campaign(regions["grid_a1"], "R-KEY", pool_size=1, key_industry="port")
        h.campaign(regions["street_b"], "RB", pool_size=1)
        post(client, h.scan("TC", world["people"][0][1], "SITE-A1"), world["auth"])
        assert tube_row("TC").campaign == street_round and tube_row("TC").capacity == 5
        assert samples().get().campaign == street_round

    def test_a_temporary_sites_own_campaign_comes_first(self, client, world):
        regions = world["regions"]
        key_round = h.campaign(regions["street_a"], "R-PORT", pool_size=5, key_industry="port")
        h.site(regions["grid_a1"], "SITE-PORT", samplers=[world["sampler"]], campaign=key_round)
        post(client, h.scan("TP", world["people"][0][1], "SITE-PORT"), world["auth"])
        assert tube_row("TP").campaign == key_round

    def test_a_named_campaign_is_used(self, client, world):
        key_round = h.campaign(world["regions"]["street_a"], "R-PORT", pool_size=5, key_industry="port")
        post(client, h.scan("TN", world["people"][0][1], "SITE-A1", campaign="R-PORT"), world["auth"])
        assert tube_row("TN").campaign == key_round

    @pytest.mark.parametrize("status, code, reason", [
        ("running", "NOPE", "unknown campaign"),
        ("planned", "R-P", "has not started"),
        ("running", "R-B", "outside the region"),
    ])
    def test_a_named_campaign_must_accept_the_scan(self, client, world, status, code, reason):
        h.campaign(world["regions"]["street_b"] if code == "R-B" else world["regions"]["street_a"], code
                   if code != "NOPE" else "OTHER", status=status)
        r = post(client, h.scan("TX", world["people"][0][1], "SITE-A1", campaign=code), world["auth"])
        assert r.status_code == 422 and r.json()["extra"]["field"] == "campaign"
        assert reason in r.json()["extra"]["reason"]
        assert not samples().exists()

    def test_a_closed_round_still_takes_scans_sampled_before_its_deadline(self, client, world):
        world["campaign"].status = "closed"
        world["campaign"].save()
        earlier = (T0 - dt.timedelta(hours=1)).isoformat()
        post(client, h.scan("TL", world["people"][0][1], "SITE-A1", sampled_at=earlier), world["auth"])
        assert tube_row("TL").campaign == world["campaign"]

    def test_a_tube_keeps_its_campaign(self, client, world):
        h.campaign(world["regions"]["street_a"], "R-OTHER")
        post(client, h.scan("TK", world["people"][0][1], "SITE-A1", campaign="R1"), world["auth"])
        r = post(client, h.scan("TK", world["people"][1][1], "SITE-A1", campaign="R-OTHER"), world["auth"])
        assert r.status_code == 409 and r.json()["extra"]["field"] == "campaign"
        r = post(client, h.scan("TK", world["people"][1][1], "SITE-A1"), world["auth"])
        assert r.status_code == 201

    def test_outside_any_round_the_tube_has_no_campaign_and_the_policy_default_pool(self, client, world):
        from jingkong.policy.selectors import profile_get
        from jingkong.policy.services import profile_activate, profile_install_builtin

        world["campaign"].status = "closed"
        world["campaign"].deadline = T0 - dt.timedelta(minutes=1)
        world["campaign"].save()
        r = post(client, h.scan("TR", world["people"][0][1], "SITE-A1"), world["auth"])
        assert r.status_code == 422 and r.json()["extra"]["field"] == "pool_size"
        assert not samples().exists()
        r = post(client, h.scan("TR", world["people"][0][1], "SITE-A1", pool_size=5), world["auth"])
        assert r.status_code == 201 and tube_row("TR").campaign is None
        profile_install_builtin()
        profile_activate(profile=profile_get(code="cn-8th-2021"), region=world["regions"]["district"], reason="test",
                         actor=None, at=T0 - dt.timedelta(days=1))
        r = post(client, h.scan("TR2", world["people"][1][1], "SITE-A1"), world["auth"])
        assert r.status_code == 201 and r.json()["tube_state"]["capacity"] == 10  # 8th edition, prevention zone


class TestIdempotency:
    def test_a_retry_returns_the_original_result_and_writes_nothing(self, client, world):
        from jingkong.core.models import DomainEvent

        body = h.scan("TI", world["people"][0][1], "SITE-A1", client_scan_id="dev-77")
        first = post(client, body, world["auth"]).json()
        events = DomainEvent.objects.count()
        again = post(client, body, world["auth"])
        assert again.status_code == 200
        assert again.json() | {"replayed": False} == first
        assert again.json()["replayed"] is True
        assert samples().count() == 1 and tube_row("TI").member_count == 1
        assert DomainEvent.objects.count() == events  # a retry records nothing

    def test_a_retry_into_a_tube_that_filled_up_meanwhile_still_returns_the_original(self, client, world):
        body = h.scan("TF", world["people"][0][1], "SITE-A1", client_scan_id="first", pool_size=2)
        first = post(client, body, world["auth"]).json()
        post(client, h.scan("TF", world["people"][1][1], "SITE-A1"), world["auth"])
        again = post(client, body, world["auth"])
        assert again.status_code == 200 and again.json()["sample_id"] == first["sample_id"]
        assert again.json()["replayed"] is True and again.json()["tube_state"]["status"] == "sealed"

    def test_the_same_person_into_the_same_tube_again_is_a_duplicate(self, client, world):
        number = world["people"][0][1]
        first = post(client, h.scan("TD", number, "SITE-A1", client_scan_id="a"), world["auth"]).json()
        r = post(client, h.scan("TD", number, "SITE-A1", client_scan_id="b"), world["auth"])
        assert r.status_code == 200 and r.json()["status"] == "duplicate"
        assert r.json()["sample_id"] == first["sample_id"] and r.json()["tube_state"]["member_count"] == 1
        assert tube_row("TD").member_count == 1 and samples().count() == 1

    def test_without_scan_ids_a_rescan_is_a_duplicate(self, client, world):
        number = world["people"][0][1]
        assert post(client, h.scan("TW", number, "SITE-A1"), world["auth"]).status_code == 201
        r = post(client, h.scan("TW", number, "SITE-A1"), world["auth"])
        assert r.json()["status"] == "duplicate" and not r.json()["replayed"]
        assert tube_row("TW").member_count == 1

    def test_a_duplicate_leaves_a_full_tube_sealed(self, client, world):
        for i in range(2):
            post(client, h.scan("TS", world["people"][i][1], "SITE-A1", pool_size=2), world["auth"])
        r = post(client, h.scan("TS", world["people"][1][1], "SITE-A1"), world["auth"])
        assert r.json()["status"] == "duplicate"
        assert tube_row("TS").status == "sealed" and tube_row("TS").member_count == 2

    def test_a_duplicate_in_an_open_tube_keeps_its_count_and_first_swab_time(self, client, world):
        number = world["people"][0][1]
        post(client, h.scan("TO", number, "SITE-A1", client_scan_id="x1"), world["auth"])
        later = (T0 + dt.timedelta(minutes=5)).isoformat()
        post(client, h.scan("TO", world["people"][1][1], "SITE-A1", sampled_at=later), world["auth"])
        earlier = (T0 - dt.timedelta(minutes=30)).isoformat()
        r = post(client, h.scan("TO", number, "SITE-A1", client_scan_id="x2", sampled_at=earlier), world["auth"])
        assert r.json()["status"] == "duplicate"
        tube = tube_row("TO")
        assert (tube.member_count, tube.status, tube.opened_at) == (2, "open", T0)

    def test_the_same_person_in_two_tubes_is_recorded_twice(self, client, world):
        number = world["people"][0][1]
        assert post(client, h.scan("T-1", number, "SITE-A1"), world["auth"]).status_code == 201
        assert post(client, h.scan("T-2", number, "SITE-A1"), world["auth"]).status_code == 201
        assert samples(person=world["people"][0][0]).count() == 2

    def test_a_scan_id_reused_for_another_person_is_refused(self, client, world):
        post(client, h.scan("TU", world["people"][0][1], "SITE-A1", client_scan_id="same"), world["auth"])
        r = post(client, h.scan("TU", world["people"][1][1], "SITE-A1", client_scan_id="same"), world["auth"])
        assert r.status_code == 409 and r.json()["extra"]["field"] == "client_scan_id"
        assert tube_row("TU").member_count == 1 and samples().count() == 1


class TestPersons:
    def test_an_unknown_person_is_registered_provisionally_in_the_sites_grid(self, client, world):
        from jingkong.access.models import AuditLog
        from jingkong.core.models import DomainEvent
        from jingkong.people.models import Person

        number = h.new_id(1)
        r = post(client, h.scan("TV", number, "SITE-A1", name="张三"), world["auth"])
        assert r.status_code == 201 and r.json()["provisional"] is True
        p = Person.objects.get(pk=samples().get().person_id)
        assert (p.source, p.needs_review, p.name, p.grid) == ("provisional", True, "张三", world["regions"]["grid_a1"])
        assert p.id_masked == number[:6] + "********" + number[-4:] and number not in p.id_hash
        assert str(p.birth_date) == f"{number[6:10]}-{number[10:12]}-{number[12:14]}"
        assert AuditLog.objects.filter(action="person.create", object_id=str(p.pk)).exists()
        event = DomainEvent.objects.get(type="people.person_created", subject_id=str(p.pk))
        assert event.payload["provisional"] is True and event.region_code == world["regions"]["grid_a1"].code
        again = post(client, h.scan("TV2", number, "SITE-A1"), world["auth"])
        assert again.json()["provisional"] is False and Person.objects.filter(source="provisional").count() == 1

    def test_a_refused_scan_registers_nobody(self, client, world):
        from jingkong.people.models import Person

        post(client, h.scan("TFULL", world["people"][0][1], "SITE-A1", pool_size=1), world["auth"])
        persons = Person.objects.count()
        r = post(client, h.scan("TFULL", h.new_id(8), "SITE-A1"), world["auth"])
        assert r.status_code == 409 and Person.objects.count() == persons

    def test_a_provisional_person_at_a_site_above_grid_level_has_no_grid_and_a_placeholder_name(self, client, world):
        from jingkong.people.models import Person

        h.site(world["regions"]["community_a"], "SITE-C", samplers=[world["sampler"]])
        post(client, h.scan("TG", h.new_id(2), "SITE-C"), world["auth"])
        p = Person.objects.get(source="provisional")
        assert p.grid is None and p.name == "待核实"
        assert samples().get().region_code == world["regions"]["community_a"].code

    @pytest.mark.parametrize("number, reason", [
        ("330206199001011230", "check digit"),
        ("33020619900101123", "18 characters"),
        ("330206199013011234", "not a real date"),
        ("", "missing"),
    ])
    def test_an_invalid_id_number_is_refused_with_the_reason(self, client, world, number, reason):
        from jingkong.people.models import Person

        persons = Person.objects.count()
        r = post(client, h.scan("TB", number, "SITE-A1"), world["auth"])
        assert r.status_code == 422 and r.json()["extra"]["field"] == "id_number"
        assert reason in r.json()["extra"]["reason"]
        assert Person.objects.count() == persons and not samples().exists()

    def test_a_person_code_identifies_the_person(self, client, world):
        from jingkong.people.tokens import person_token

        p, _ = world["people"][3]
        r = post(client, {"tube": "TT", "person_token": person_token(p.pk), "site": "SITE-A1"}, world["auth"])
        assert r.status_code == 201 and samples().get().person == p
        # a scanner that puts the QR text into id_number works too
        r = post(client, h.scan("TT2", person_token(p.pk), "SITE-A1"), world["auth"])
        assert r.status_code == 201

    @pytest.mark.parametrize("token, reason", [("JK1.1.AAAAAAAAAAAAAAAA", "not genuine"), ("XYZ", "not a person code")])
    def test_a_bad_person_code_is_refused(self, client, world, token, reason):
        r = post(client, {"tube": "TT", "person_token": token, "site": "SITE-A1"}, world["auth"])
        assert r.status_code == 422 and r.json()["extra"]["field"] == "person_token"
        assert reason in r.json()["extra"]["reason"]

    def test_a_person_code_of_a_deleted_person_is_refused(self, client, world):
        from jingkong.people.tokens import person_token

        r = post(client, {"tube": "TT", "person_token": person_token(10**9), "site": "SITE-A1"}, world["auth"])
        assert r.status_code == 422 and r.json()["extra"]["reason"] == "unknown person"

    def test_scans_never_touch_the_test_state(self, client, world):
        from jingkong.testing.models import PersonTestState

        post(client, h.scan("TQ", world["people"][0][1], "SITE-A1"), world["auth"])
        assert not PersonTestState.objects.exists()


class TestRetests:
    def test_a_retest_scan_uses_a_single_tube_and_claims_the_open_task(self, client, world):
        p, number = world["people"][0]
        task = h.retest_task(p, campaign=world["campaign"])
        r = post(client, h.scan("RT1", number, "SITE-A1", tube_kind="retest", pool_size=10), world["auth"])
        assert r.status_code == 201, r.content
        body = r.json()
        assert body["tube_state"] == {"barcode": "RT1", "kind": "retest", "capacity": 1, "member_count": 1,
                                      "status": "sealed"}
        assert body["retest_task"] == task.pk
        task.refresh_from_db()
        s = samples().get()
        assert task.status == "sampled" and task.sample == s and s.retest_of == task

    def test_resampling_claims_the_invalid_tube_task_first(self, client, world):
        p, number = world["people"][0]
        positive = h.retest_task(p, reason="pool_positive", created=T0 - dt.timedelta(hours=5))
        invalid = h.retest_task(p, reason="invalid_tube")
        post(client, h.scan("RS1", number, "SITE-A1", tube_kind="resample"), world["auth"])
        invalid.refresh_from_db()
        positive.refresh_from_db()
        assert (invalid.status, positive.status) == ("sampled", "open")

    def test_a_retest_without_a_task_is_still_recorded(self, client, world):
        r = post(client, h.scan("RT2", world["people"][0][1], "SITE-A1", tube_kind="retest"), world["auth"])
        assert r.status_code == 201 and r.json()["retest_task"] is None

    def test_a_retest_tube_and_a_routine_tube_do_not_mix(self, client, world):
        post(client, h.scan("TM", world["people"][0][1], "SITE-A1"), world["auth"])
        r = post(client, h.scan("TM", world["people"][1][1], "SITE-A1", tube_kind="retest"), world["auth"])
        assert r.status_code == 409 and r.json()["extra"]["field"] == "tube_kind"


class TestAuthority:
    def test_a_sampler_scans_only_at_assigned_sites(self, client, world):
        h.site(world["regions"]["grid_a2"], "SITE-A2")
        r = post(client, h.scan("TA", world["people"][0][1], "SITE-A2"), world["auth"])
        assert r.status_code == 403 and "not assigned" in r.json()["message"]
        assert not samples().exists()

    def test_a_site_outside_the_scope_is_not_found(self, client, world):
        other = h.site(world["regions"]["grid_b1"], "SITE-B1")
        other.samplers.add(world["sampler"])  # even if (wrongly) assigned
        r = post(client, h.scan("TA", world["people"][0][1], "SITE-B1"), world["auth"])
        assert r.status_code == 404
        r = post(client, h.scan("TA", world["people"][0][1], "NO-SUCH-SITE"), world["auth"])
        assert r.status_code == 404

    def test_an_inactive_site_takes_no_scans(self, client, world):
        h.site(world["regions"]["grid_a1"], "SITE-OFF", samplers=[world["sampler"]], active=False)
        r = post(client, h.scan("TA", world["people"][0][1], "SITE-OFF"), world["auth"])
        assert r.status_code == 422 and r.json()["extra"]["field"] == "site"

    def test_a_commander_scans_at_any_site_in_scope(self, client, world, commander):
        h.site(world["regions"]["grid_b1"], "SITE-B1")
        r = post(client, h.scan("TA", world["people"][0][1], "SITE-B1"), world["bearer"](commander))
        assert r.status_code == 201

    def test_a_tube_stays_at_its_site(self, client, world):
        h.site(world["regions"]["grid_a2"], "SITE-A2", samplers=[world["sampler"]])
        post(client, h.scan("TZ", world["people"][0][1], "SITE-A1"), world["auth"])
        r = post(client, h.scan("TZ", world["people"][1][1], "SITE-A2"), world["auth"])
        assert r.status_code == 409 and "another site" in r.json()["extra"]["reason"]

    def test_roles_without_the_sampling_permission_are_refused(self, client, world, regions, bearer):
        analyst = make_user("analyst_a", "analyst", regions["street_a"])
        r = post(client, h.scan("TA", world["people"][0][1], "SITE-A1"), bearer(analyst))
        assert r.status_code == 403


class TestInput:
    @pytest.mark.parametrize("body, field", [
        ({"tube": "", "id_number": "x", "site": "SITE-A1"}, "tube"),
        ({"tube": "T 1", "site": "SITE-A1"}, "tube"),
        ({"tube": "T/1", "site": "SITE-A1"}, "tube"),
        ({"tube": "T1", "site": "SITE-A1", "pool_size": 0}, "pool_size"),
        ({"tube": "T1", "site": "SITE-A1", "pool_size": 21}, "pool_size"),
        ({"tube": "T1", "site": "SITE-A1", "tube_kind": "pooled"}, "tube_kind"),
        ({"tube": "T1"}, "site"),
        ({"tube": "T1", "site": "SITE-A1", "sampled_at": "yesterday"}, "sampled_at"),
    ])
    def test_bad_input_is_a_422_naming_the_field(self, client, world, body, field):
        if "id_number" not in body:
            body["id_number"] = world["people"][0][1]
        r = post(client, body, world["auth"])
        assert r.status_code == 422, r.content
        assert field in r.json()["message"]
        assert not samples().exists()

    def test_a_scan_from_the_future_is_refused(self, client, world):
        later = (T0 + dt.timedelta(hours=1)).isoformat()
        r = post(client, h.scan("T1", world["people"][0][1], "SITE-A1", sampled_at=later), world["auth"])
        assert r.status_code == 422 and r.json()["extra"]["field"] == "sampled_at"

    def test_a_time_without_offset_is_local_time(self, client, world):
        post(client, h.scan("T1", world["people"][0][1], "SITE-A1", sampled_at="2022-01-01T16:00:00"), world["auth"])
        assert samples().get().sampled_at == dt.datetime(2022, 1, 1, 8, 0, tzinfo=dt.UTC)

    def test_malformed_json_is_a_422_not_a_500(self, client, world):
        r = client.post(URL, data="{not json", content_type="application/json", **world["auth"])
        assert r.status_code in (400, 422)


class TestEvents:
    def test_one_summary_event_per_scan_request_in_the_sites_region(self, client, world):
        from jingkong.core.models import DomainEvent

        for i in range(2):
            post(client, h.scan("TE", world["people"][i][1], "SITE-A1", pool_size=2), world["auth"])
        events = list(DomainEvent.objects.filter(type="testing.scans_recorded").order_by("id"))
        assert len(events) == 2
        assert events[0].region_code == world["regions"]["grid_a1"].code and events[0].actor == world["sampler"]
        assert events[0].payload | {} == {"site": "SITE-A1", "device": "", "recorded": 1, "duplicate": 0,
                                          "rejected": 0, "provisional": 0, "tubes_opened": 1, "sealed": []}
        assert events[1].payload["sealed"] == ["TE"] and events[1].payload["tubes_opened"] == 0


HOSTILE = {
    "client_scan_id": "a\x00b", "name": "x\x00y", "device": "d\x00", "site": "SITE\x00", "campaign": "R\x001",
    "tube": "T\x001", "person_token": "JK1.1\x00.AAAAAAAAAAAAAAAA",
}
IMPOSSIBLE_TIMES = ["0001-01-01T00:00:00+08:00", "0001-01-01T00:00:00", "9999-12-31T23:59:59-10:00",
                    "1999-12-31T23:00:00Z"]


@pytest.mark.parametrize("route", ["single", "batch"])
@pytest.mark.parametrize("field, value", [*HOSTILE.items(), *(("sampled_at", t) for t in IMPOSSIBLE_TIMES)])
def test_hostile_input_is_refused_with_its_field_never_a_500(client, world, route, field, value):
    """NUL characters (PostgreSQL text cannot hold them) and times out of range are refused like any bad input."""
    client.raise_request_exception = False
    body = h.scan("T1", world["people"][0][1], "SITE-A1") | {field: value}
    if field == "person_token":
        del body["id_number"]
    if route == "single":
        r = post(client, body, world["auth"])
        assert r.status_code in (404, 422), r.content[:200]
    else:
        r = client.post("/api/v1/testing/scans/batch", data=json.dumps({"scans": [body]}),
                        content_type="application/json", **world["auth"])
        assert r.status_code == 200, r.content[:200]
        assert r.json()["results"][0]["status"] == "rejected" and r.json()["results"][0]["field"] == field
    assert not samples().exists()


@pytest.mark.parametrize("method, url", [
    ("get", "/api/v1/testing/tubes/T%00"), ("post", "/api/v1/testing/tubes/T%00/seal"),
    ("get", "/api/v1/testing/sites/S%00/open-tubes"),
])
def test_hostile_path_parameters_are_not_found(client, world, method, url):
    client.raise_request_exception = False
    assert getattr(client, method)(url, **world["auth"]).status_code == 404


def test_hostile_batch_defaults_are_refused(client, world):
    client.raise_request_exception = False
    for key in ("site", "device", "campaign"):
        body = {"site": "SITE-A1", key: "x\x00", "scans": [{"tube": "T1", "id_number": world["people"][0][1]}]}
        r = client.post("/api/v1/testing/scans/batch", data=json.dumps(body), content_type="application/json",
                        **world["auth"])
        assert r.status_code == 422 and r.json()["extra"]["field"] == key
