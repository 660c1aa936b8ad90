"""The tracing API: scoping, audit, validation, contact workflow, hand-offs, links, clusters, notice."""

from __future__ import annotations

import pytest

from jingkong.access.models import AuditLog
from jingkong.core.models import DomainEvent, Job
from jingkong.tracing import services
from jingkong.tracing.models import Case, Contact, Handoff, Link, Stay
from jingkong.tracing.tests.helpers import at, make_cases

pytestmark = pytest.mark.django_db
API = "/api/v1/tracing"


def _post(client, url, body=None, **headers):
    return client.post(url, body or {}, content_type="application/json", **headers)


EN = {"HTTP_ACCEPT_LANGUAGE": "en"}  # messages are translated (zh-hans by default): read them in English


def _patch(client, url, body):
    return client.patch(url, body, content_type="application/json")


@pytest.fixture
def found(outbreak):
    services.find_run(case_ids=[outbreak.jia.pk, outbreak.yi.pk])
    return outbreak


# --- cases ------------------------------------------------------------------------------------------------------------


def test_cases_are_listed_in_scope_only_and_the_read_is_audited(found, tracer_a, tracer_b, client_for):
    body = client_for(tracer_a).get(f"{API}/cases").json()
    assert body["count"] == 2 and {c["ref"] for c in body["items"]} == {found.jia.ref, found.yi.ref}
    assert client_for(tracer_b).get(f"{API}/cases").json()["count"] == 0
    assert client_for(tracer_b).get(f"{API}/cases/{found.jia.pk}").status_code == 404
    assert AuditLog.objects.filter(action="person.list", username="tracer_a").exists()


def test_case_detail_shows_the_window_from_the_profile_and_contacts_elsewhere_as_counts(found, tracer_a, client_for):
    body = client_for(tracer_a).get(f"{API}/cases/{found.jia.pk}").json()
    assert body["lookback_days"] == 2 and body["policy_profile"].startswith("cn-8th-2021")
    assert body["window_start"].startswith("2022-01-01T01:00")
    assert body["contacts_by_tier"] == {"close": 2}  # 妻 and 同事 live in street A
    (elsewhere,) = body["contacts_elsewhere"]
    assert elsewhere == {"region_code": "330206004", "region_name": "大碶街道", "contacts": 3,
                         "by_tier": {"close": 1, "secondary": 2}, "handoffs_requested": 3, "handoffs_accepted": 0}
    assert AuditLog.objects.filter(action="person.view", object_id=str(found.jia.person_id)).exists()


def test_a_tracer_registers_a_case_for_a_person_of_their_region(world, tracer_a, client_for,
                                                                 django_capture_on_commit_callbacks):
    p, other = world.person("丁"), world.person("戊", side="b")
    c = client_for(tracer_a)
    with django_capture_on_commit_callbacks(execute=True):
        r = _post(c, f"{API}/cases", {"person_id": p.pk, "classification": "confirmed", "onset_date": "2022-01-04",
                                      "found_by": "fever_clinic", "current_place": "宁波市第二医院"})
    assert r.status_code == 201, r.content
    case = Case.objects.get(person=p)
    assert (case.found_by, case.tracer, case.classification) == ("fever_clinic", tracer_a, "confirmed")
    assert Job.objects.filter(kind="tracing.find_contacts", params={"case_ids": [case.pk]}).exists()
    assert _post(c, f"{API}/cases", {"person_id": p.pk, "onset_date": "2022-01-04"}).status_code == 409
    assert _post(c, f"{API}/cases", {"person_id": other.pk, "onset_date": "2022-01-04"}).status_code == 404
    r = _post(c, f"{API}/cases", {"person_id": world.person("己").pk})
    assert r.status_code == 422 and r.json()["extra"]["field"] == "onset_date"
    r = _post(c, f"{API}/cases", {"person_id": world.person("庚").pk, "first_positive_at": "2022-01-04T08:00:00"})
    assert r.status_code == 422 and r.json()["extra"]["field"] == "first_positive_at"


def test_changing_the_onset_moves_the_window_and_the_registry_rows(found, tracer_a, client_for):
    r = _patch(client_for(tracer_a), f"{API}/cases/{found.jia.pk}",
               {"classification": "confirmed", "onset_date": "2022-01-02", "severity": "mild"})
    assert r.status_code == 200 and r.json()["onset_date"] == "2022-01-02"
    home = Stay.objects.get(case=found.jia, kind="home")
    assert home.start == at(1, 0) - (at(2, 0) - at(1, 0))  # 2 days before the onset day
    assert DomainEvent.objects.filter(type="tracing.case_updated", subject_id=str(found.jia.pk)).exists()


def test_running_contact_finding_returns_a_job(found, tracer_a, tracer_b, client_for):
    r = _post(client_for(tracer_a), f"{API}/cases/{found.jia.pk}/find-contacts")
    assert r.status_code == 202 and r.json()["kind"] == "tracing.find_contacts"
    job = Job.objects.get(pk=r.json()["id"])
    assert job.params == {"case_ids": [found.jia.pk]} and job.region_code == found.jia.region_code
    assert _post(client_for(tracer_b), f"{API}/cases/{found.jia.pk}/find-contacts").status_code == 404


# --- timeline ---------------------------------------------------------------------------------------------------------


def test_timeline_entries_are_validated_with_clear_errors(found, tracer_a, client_for):
    c = client_for(tracer_a)
    url = f"{API}/cases/{found.jia.pk}/stays"
    ok = {"kind": "venue", "venue_code": "S2", "start": "2022-01-02T14:00:00+08:00", "end": "2022-01-02T15:00:00+08:00"}
    r = _post(c, url, ok)
    assert r.status_code == 201 and r.json()["venue_name"] == "S2超市" and r.json()["source"] == "interview"
    inverted = dict(ok, start="2022-01-02T16:00:00+08:00", end="2022-01-02T15:30:00+08:00")
    r = _post(c, url, inverted)
    assert r.status_code == 422 and r.json()["extra"]["field"] == "end"
    r = _post(c, url, dict(ok, start="2022-01-02T16:00:00", end="2022-01-02T17:00:00"))
    assert r.status_code == 422 and r.json()["extra"]["field"] == "start"
    r = _post(c, url, dict(ok, venue_code="NO-SUCH", start="2022-01-02T18:00:00+08:00",
                            end="2022-01-02T19:00:00+08:00"))
    assert r.status_code == 422 and "NO-SUCH" in r.json()["message"]
    r = _post(c, url, {"kind": "transport", "transport_mode": "train", "start": "2022-01-02T20:00:00+08:00",
                       "end": "2022-01-02T21:00:00+08:00"})
    assert r.status_code == 422 and r.json()["extra"]["field"] == "transport_number"
    # An overlap with another outing is refused until the tracer says both are right; both rows are then flagged.
    clash = dict(ok, venue_code="", place="药店", start="2022-01-02T14:30:00+08:00", end="2022-01-02T14:45:00+08:00")
    r = _post(c, url, clash, **EN)
    assert r.status_code == 422 and "overlaps" in r.json()["message"] and r.json()["extra"]["overlaps"]
    r = _post(c, url, dict(clash, accept_overlap=True))
    assert r.status_code == 201 and r.json()["flags"] == ["overlap"]
    stays = c.get(url).json()
    assert sum("overlap" in s["flags"] for s in stays) == 2
    stay_id = r.json()["id"]
    r = _patch(c, f"{url}/{stay_id}", {"start": "2022-01-02T15:00:00+08:00", "end": "2022-01-02T15:20:00+08:00"})
    assert r.status_code == 200 and r.json()["flags"] == []
    assert c.delete(f"{url}/{stay_id}").status_code == 204
    assert not Stay.objects.filter(pk=stay_id).exists()


def test_drafted_rows_with_problems_are_kept_and_flagged(found):
    from jingkong.core import clock
    from jingkong.tracing import timeline

    now = clock.now()
    bad = Stay.objects.create(case=found.jia, kind="venue", venue_code="GHOST-1", start=at(2, 12), end=at(2, 11),
                              source="checkin", source_ref="checkin:GHOST-1", created_at=now, updated_at=now)
    timeline.flags_refresh([found.jia.pk])
    bad.refresh_from_db()
    assert (bad.flag_inverted, bad.flag_unknown_venue) == (True, True)


# --- contacts ---------------------------------------------------------------------------------------------------------


def test_contacts_are_seen_by_the_region_they_live_in_with_their_reasons(found, tracer_a, tracer_b, client_for):
    mine = client_for(tracer_b).get(f"{API}/contacts").json()
    names = {c["name"]: c for c in mine["items"]}
    assert set(names) == {"顾客", "顾客子", "店员"}
    customer = names["顾客"]
    assert customer["handoff_pending"] is True and customer["tier"] == "close"
    assert {r["case_ref"] for r in customer["reasons"]} == {found.jia.ref, found.yi.ref}
    assert customer["phone"].startswith("1390000")  # tracers phone contacts: full number
    theirs = client_for(tracer_a).get(f"{API}/contacts").json()
    assert {c["name"] for c in theirs["items"]} == {"妻", "同事"}
    assert client_for(tracer_a).get(f"{API}/contacts/{customer['id']}").status_code == 404
    case_view = client_for(tracer_a).get(f"{API}/cases/{found.jia.pk}/contacts").json()
    assert {c["name"] for c in case_view["items"]} == {"妻", "同事"}
    assert case_view["elsewhere"][0]["contacts"] == 3
    assert client_for(tracer_a).get(f"{API}/contacts?tier=close&status=identified").json()["count"] == 2


def test_officers_without_the_phone_permission_see_masked_phones(found, officer_b, client_for):
    items = client_for(officer_b).get(f"{API}/contacts").json()["items"]
    assert items and all("****" in c["phone"] for c in items)


def test_contact_statuses_move_forward_only(found, tracer_b, client_for):
    c = client_for(tracer_b)
    contact = Contact.objects.get(person__name="顾客")
    url = f"{API}/contacts/{contact.pk}/status"
    assert _post(c, url, {"status": "located"}).json()["status"] == "located"
    r = _post(c, url, {"status": "notified"}, **EN)
    assert r.status_code == 409 and "back" in r.json()["message"] and r.json()["extra"]["current"] == "located"
    r = _post(c, url, {"status": "notified"})  # the default language: the statuses by their Chinese labels
    assert r.status_code == 409 and "已找到" in r.json()["message"] and "已通知" in r.json()["message"]
    r = _post(c, url, {"status": "handed_over"})
    assert r.status_code == 422 and r.json()["extra"]["field"] == "handed_to"
    body = _post(c, url, {"status": "handed_over", "handed_to": "transfer"}).json()
    assert (body["status"], body["handed_to"]) == ("handed_over", "transfer")
    assert _post(c, url, {"status": "in_quarantine", "at": "2022-01-05T11:00:00+08:00"}).status_code == 200
    contact.refresh_from_db()
    assert contact.in_quarantine_at == at(5, 11)
    r = _post(c, url, {"status": "closed", "note": "x", "at": "2030-01-01T00:00:00+08:00"})
    assert r.status_code == 422 and r.json()["extra"]["field"] == "at"
    assert _post(c, url, {"status": "closed"}).status_code == 422  # a reason is required
    assert _post(c, url, {"status": "closed", "note": "released after 14+7"}).json()["status"] == "closed"
    assert _post(c, url, {"status": "in_quarantine"}).status_code == 409
    assert DomainEvent.objects.filter(type="tracing.contact_in_quarantine", subject_id=str(contact.pk)).exists()
    assert AuditLog.objects.filter(action="contact.status", object_id=str(contact.person_id)).count() == 4


def test_a_tracer_names_a_contact_living_elsewhere_by_id_number(found, tracer_a, client_for):
    friend = found.w.person("朋友", side="b")
    r = _post(client_for(tracer_a), f"{API}/cases/{found.jia.pk}/contacts",
              {"id_number": found.w.numbers["朋友"], "relation": "dinner", "exposure_end": "2022-01-02T21:00:00+08:00"})
    assert r.status_code == 201, r.content
    assert r.json() == {"contact_id": Contact.objects.get(person=friend).pk, "tier": "close", "in_your_region": False,
                        "handed_to_region": "330206004"}
    assert found.w.numbers["朋友"] not in r.content.decode()
    r = _post(client_for(tracer_a), f"{API}/cases/{found.jia.pk}/contacts", {"id_number": "330206199001010000"})
    assert r.status_code == 422 and r.json()["extra"]["field"] == "id_number"
    r = _post(client_for(tracer_a), f"{API}/cases/{found.jia.pk}/contacts", {"person_id": friend.pk})
    assert r.status_code == 404  # by database id: only people of the tracer's own region
    r = _post(client_for(tracer_a), f"{API}/cases/{found.jia.pk}/contacts", {"person_id": found.yi.person_id})
    assert r.status_code == 409  # a case is not a contact


# --- hand-offs --------------------------------------------------------------------------------------------------------


def test_the_receiving_region_accepts_a_hand_off_and_the_sender_sees_it(found, tracer_a, tracer_b, client_for):
    incoming = client_for(tracer_b).get(f"{API}/handoffs").json()
    assert len(incoming) == 3 and all(h["name"] for h in incoming)
    assert client_for(tracer_a).get(f"{API}/handoffs").json() == []
    customer = next(h for h in incoming if h["name"] == "顾客")
    assert _post(client_for(tracer_a), f"{API}/handoffs/{customer['id']}/accept").status_code == 404
    r = _post(client_for(tracer_b), f"{API}/handoffs/{customer['id']}/accept")
    assert r.status_code == 200 and r.json()["status"] == "accepted" and r.json()["accepted_by"] == "tracer_b"
    assert _post(client_for(tracer_b), f"{API}/handoffs/{customer['id']}/accept").status_code == 409
    outgoing = client_for(tracer_a).get(f"{API}/handoffs?direction=outgoing").json()
    accepted = [h for h in outgoing if h["status"] == "accepted"]
    assert len(outgoing) == 3 and len(accepted) == 1
    assert accepted[0]["name"] is None and accepted[0]["id_masked"] is None  # progress, not the person
    assert DomainEvent.objects.filter(type="tracing.handoff_accepted", region_code="330206002").exists()
    assert Handoff.objects.get(pk=customer["id"]).accepted_by == tracer_b
    # Taking a person into one's queue is recorded in the person's audit trail.
    person_id = Contact.objects.get(pk=customer["contact_id"]).person_id
    assert AuditLog.objects.filter(action="contact.handoff_accept", object_id=str(person_id),
                                   username="tracer_b").count() == 1


# --- links, clusters, graph, estimates, notice --------------------------------------------------------------------------


def test_links_are_suggested_confirmed_and_form_clusters(found, tracer_a, client_for):
    c = client_for(tracer_a)
    links = c.get(f"{API}/cases/{found.yi.pk}/links").json()
    assert [(lk["infector_ref"], lk["infectee_ref"], lk["kind"], lk["status"]) for lk in links] == [
        (found.jia.ref, found.yi.ref, "venue_overlap", "suggested")]
    assert _post(c, f"{API}/cases/{found.yi.pk}/links/suggest").json()["suggested"] == 0
    r = _post(c, f"{API}/links/{links[0]['id']}/confirm", {"note": "same checkout queue"})
    assert r.status_code == 200 and r.json()["status"] == "confirmed" and r.json()["decided_by"] == "tracer_a"
    (cluster,) = c.get(f"{API}/clusters").json()
    assert cluster["size"] == 2 and set(cluster["members"]) == {found.jia.ref, found.yi.ref}
    assert cluster["setting"] == "venue" and cluster["growth"][-1]["size"] == 2
    r = _patch(c, f"{API}/clusters/{cluster['id']}", {"name": "S1超市聚集"})
    assert r.json()["name"] == "S1超市聚集"
    graph = c.get(f"{API}/graph").json()
    assert {n["ref"] for n in graph["nodes"]} == {found.jia.ref, found.yi.ref}
    assert graph["edges"][0]["status"] == "confirmed"
    assert c.get(f"{API}/graph?cluster={cluster['id']}").json()["edges"] == graph["edges"]
    estimates = c.get(f"{API}/estimates").json()
    assert estimates["links"] == 1 and estimates["serial_interval_days"]["sufficient"] is False
    r = _post(c, f"{API}/links/{links[0]['id']}/reject")
    assert r.json()["status"] == "rejected"
    assert c.get(f"{API}/clusters").json() == []


def test_a_tracer_records_a_link_from_the_interview(world, tracer_a, tracer_b, client_for):
    a, b = world.person("甲"), world.person("乙", side="b")
    case_a, case_b = make_cases((a, at(2, 9)), (b, at(4, 9)))
    r = _post(client_for(tracer_a), f"{API}/links", {"infector_ref": case_b.ref, "infectee_ref": case_a.ref})
    assert r.status_code == 201 and r.json()["status"] == "confirmed"
    assert _post(client_for(tracer_a), f"{API}/links",
                 {"infector_ref": case_a.ref, "infectee_ref": case_b.ref}).status_code == 404
    r = _post(client_for(tracer_b), f"{API}/links", {"infector_ref": case_a.ref, "infectee_ref": case_b.ref})
    assert r.status_code == 409  # the opposite link exists
    r = _post(client_for(tracer_a), f"{API}/links", {"infector_ref": "XX-1", "infectee_ref": case_a.ref})
    assert r.status_code == 422 and r.json()["extra"]["field"] == "infector_ref"
    assert Link.objects.count() == 1
    # The graph of street A shows B's case as an external node, by number only.
    nodes = client_for(tracer_a).get(f"{API}/graph").json()["nodes"]
    assert {"id": case_b.pk, "ref": case_b.ref, "external": True} in nodes


def test_the_public_notice_has_places_and_times_but_no_personal_data(found, tracer_a, client_for):
    c = client_for(tracer_a)
    _post(c, f"{API}/cases/{found.jia.pk}/stays", {"kind": "transport", "transport_mode": "train",
                                                   "transport_number": "G7501", "carriage": "5", "seat": "12F",
                                                   "start": "2022-01-02T07:03:00+08:00",
                                                   "end": "2022-01-02T08:10:00+08:00"})
    _post(c, f"{API}/cases/{found.jia.pk}/stays", {"kind": "other", "place": "王阿姨家 3-201",
                                                   "start": "2022-01-02T18:00:00+08:00",
                                                   "end": "2022-01-02T20:00:00+08:00"})
    r = c.get(f"{API}/cases/{found.jia.pk}/notice")
    body = r.json()
    text = r.content.decode()
    assert body["residence_community"] == "新碶街道一社区"
    places = [(i["kind"], i["place"], i["start"], i["end"]) for i in body["items"]]
    assert places == [
        ("transport", "G7501 5", "2022-01-02T07:00+08:00", "2022-01-02T08:15+08:00"),
        ("venue", "S1超市", "2022-01-02T10:00+08:00", "2022-01-02T11:00+08:00"),
    ]
    for private in ("甲", found.jia.person.id_masked, "12F", "王阿姨", "8号楼", "W1厂"):
        assert private not in text


def test_a_case_is_assigned_to_a_tracer_who_can_see_it(found, tracer_a, tracer_b, officer_a, client_for):
    c = client_for(tracer_a)
    r = _patch(c, f"{API}/cases/{found.jia.pk}", {"tracer": "tracer_a"})
    assert r.status_code == 200 and r.json()["tracer"] == "tracer_a"
    r = _patch(c, f"{API}/cases/{found.jia.pk}", {"tracer": "tracer_b"})  # another region's tracer
    assert r.status_code == 422 and r.json()["extra"]["field"] == "tracer"
    r = _patch(c, f"{API}/cases/{found.jia.pk}", {"tracer": "officer_a"})  # may not edit cases
    assert r.status_code == 422
    assert _patch(c, f"{API}/cases/{found.jia.pk}", {"tracer": ""}).json()["tracer"] is None
    assert DomainEvent.objects.filter(type="tracing.case_assigned").count() == 2
    assert AuditLog.objects.filter(action="case.assign", object_id=str(found.jia.person_id)).count() == 2


def test_fellow_passengers_near_the_case_are_close_contacts(world, lake, tracer_a, client_for):
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    from jingkong.tracing.lake import TRANSPORT_SCHEMA

    case_person = world.person("甲")
    near, far = world.person("同车厢"), world.person("别的车厢")
    (case,) = make_cases((case_person, at(3, 9)))
    day = dt.date(2022, 1, 2)
    rows = [(case_person.pk, "train", "G7501", day, "5", "12F"), (near.pk, "train", "G7501", day, "5", "3A"),
            (far.pk, "train", "G7501", day, "6", "3A")]
    (lake.root / "transport").mkdir(parents=True)
    pq.write_table(pa.table([pa.array(col, f.type) for col, f in zip(zip(*rows, strict=True), TRANSPORT_SCHEMA,
                                                                      strict=True)], schema=TRANSPORT_SCHEMA),
                   lake.root / "transport" / "src-test.parquet")
    r = _post(client_for(tracer_a), f"{API}/cases/{case.pk}/stays", {
        "kind": "transport", "transport_mode": "train", "transport_number": "G7501", "carriage": "5",
        "start": "2022-01-02T07:03:00+08:00", "end": "2022-01-02T08:10:00+08:00"})
    assert r.status_code == 201
    services.find_run(case_ids=[case.pk])
    contact = Contact.objects.get(person=near)
    reason = contact.reasons.get()
    assert (contact.tier, reason.kind, reason.evidence["number"], reason.evidence["carriage"]) == (
        "close", "transport", "G7501", "5")
    assert not Contact.objects.filter(person=far).exists()


def test_out_of_range_numbers_answer_empty_or_not_found_never_500(world, tracer_a, client_for):
    c = client_for(tracer_a)
    big = 10**20
    assert c.get(f"{API}/cases?page={big}").json()["items"] == []
    assert c.get(f"{API}/cases?cluster={big}").json()["count"] == 0
    assert c.get(f"{API}/contacts?page={big}").status_code == 200
    for url in (f"{API}/cases/{big}", f"{API}/contacts/{big}", f"{API}/clusters/{big}", f"{API}/graph?cluster={big}"):
        assert c.get(url).status_code == 404, url
    assert _post(c, f"{API}/links/{big}/confirm").status_code == 404
    assert _post(c, f"{API}/cases", {"person_id": big, "onset_date": "2022-01-01"}).status_code == 404
    assert c.get(f"/tracing/?page={big}").status_code == 200
    assert c.get(f"/tracing/chains/?cluster={big}").status_code == 404


def test_times_past_the_calendar_and_nul_characters_answer_422_naming_the_field(found, tracer_a, client_for):
    """Regression: a time in year 1 with an offset (or year 9999 with a negative one) raised OverflowError on SQLite
    and DataError on PostgreSQL (500) in every time field; a NUL character in any text, query or page filter was a
    DataError on PostgreSQL."""
    c = client_for(tracer_a)
    c.raise_request_exception = False
    case_url, contact = f"{API}/cases/{found.jia.pk}", Contact.objects.get(person__name="妻")
    link = Link.objects.get()
    for bad in ("0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-05:00", "2019-06-01T08:00:00+08:00"):
        for method, url, body, field in (
            (_post, f"{case_url}/stays", {"kind": "other", "place": "x", "start": bad, "end": bad}, "start"),
            (_patch, case_url, {"first_positive_at": bad}, "first_positive_at"),
            (_patch, case_url, {"isolated_at": bad}, "isolated_at"),
            (_post, f"{case_url}/contacts", {"person_id": found.w["路人"].pk, "exposure_start": bad}, "exposure_start"),
            (_post, f"{API}/links/{link.pk}/confirm", {"exposure_at": bad}, "exposure_at"),
            (_post, f"{API}/contacts/{contact.pk}/status", {"status": "notified", "at": bad}, "at"),
        ):
            r = method(c, url, body)
            assert r.status_code == 422 and r.json()["extra"]["field"] == field, (url, bad, r.content)
    r = _patch(c, case_url, {"onset_date": "0001-01-01"})
    assert r.status_code == 422 and r.json()["extra"]["field"] == "onset_date"
    r = _post(c, f"{case_url}/stays", {"kind": "other", "place": "x", "start": "2022-01-06T10:00:00+08:00",
                                       "end": "2022-01-06T11:00:00+08:00"}, **EN)
    assert r.status_code == 422 and "future" in r.json()["message"]  # now is 2022-01-05 12:00
    for method, url, body in (
        (_patch, case_url, {"note": "a\u0000b"}),
        (_post, f"{case_url}/stays", {"kind": "other", "place": "a\u0000b", "start": "2022-01-02T10:00:00+08:00",
                                      "end": "2022-01-02T10:05:00+08:00"}),
        (_post, f"{API}/links", {"infector_ref": "a\u0000", "infectee_ref": found.jia.ref}),
    ):
        assert method(c, url, body).status_code == 422, url
    for url in (f"{API}/cases?q=a%00b", f"{API}/contacts?status=a%00", f"{API}/contacts?region=330206002%00",
                f"{API}/cases?status=nonsense"):
        assert c.get(url).status_code == 422, url
    assert c.get("/tracing/?q=a%00b").status_code == 200
    assert c.get("/tracing/contacts/?tier=a%00&status=%00").status_code == 200
    assert c.get("/tracing/cases/a%00b/").status_code == 404
    r = c.post(f"/tracing/contacts/{contact.pk}/status/", {"status": "notified", "note": "a\x00b"})
    assert r.status_code == 302
    contact.refresh_from_db()
    assert (contact.status, contact.note) == ("notified", "ab")
    found.jia.refresh_from_db()
    assert found.jia.isolated_at == at(3, 17) and found.jia.note == ""  # nothing was written


def test_working_on_a_handed_off_contact_accepts_the_hand_off(found, tracer_a, tracer_b, client_for):
    """Regression: the receiving street could move a handed-off contact all the way into quarantine while the sender
    kept seeing the hand-off as waiting; and the contact's detail and the status answer always said
    handoff_pending false."""
    customer, son = Contact.objects.get(person__name="顾客"), Contact.objects.get(person__name="顾客子")
    assert client_for(tracer_b).get(f"{API}/contacts/{son.pk}").json()["handoff_pending"] is True
    body = _post(client_for(tracer_b), f"{API}/contacts/{customer.pk}/status", {"status": "notified"}).json()
    assert body["status"] == "notified" and body["handoff_pending"] is False
    handoff = Handoff.objects.get(contact=customer)
    assert (handoff.status, handoff.accepted_by) == ("accepted", tracer_b)
    assert Handoff.objects.get(contact=son).status == "requested"
    outgoing = {h["contact_id"]: h for h in client_for(tracer_a).get(f"{API}/handoffs?direction=outgoing").json()}
    assert outgoing[customer.pk]["status"] == "accepted" and outgoing[customer.pk]["contact_status"] == "notified"
    assert DomainEvent.objects.filter(type="tracing.handoff_accepted", region_code="330206002").count() == 1


def test_only_the_infected_cases_region_confirms_or_rejects_a_link(world, tracer_a, tracer_b, client_for):
    """Regression: a tracer of street A could confirm or reject the suggested source of street B's case (and with it
    B's clusters) because the link also touched A's case; recording a link already needed the infectee in scope."""
    a, b = world.person("甲", household="H1"), world.person("乙", side="b")
    b.household = a.household  # registered in A's flat, living in street B: a household link across streets
    b.save(update_fields=["household"])
    case_a, case_b = make_cases((a, at(2, 9)), (b, at(4, 9)))
    from jingkong.tracing import chains

    chains.links_suggest(case_ids=[case_b.pk])
    link = Link.objects.get(infector=case_a, infectee=case_b)
    assert [lk["id"] for lk in client_for(tracer_a).get(f"{API}/cases/{case_a.pk}/links").json()] == [link.pk]
    r = _post(client_for(tracer_a), f"{API}/links/{link.pk}/reject", **EN)
    assert r.status_code == 403 and "infected case" in r.json()["message"]
    assert client_for(tracer_a).post(f"/tracing/links/{link.pk}/reject/").status_code == 403
    page = client_for(tracer_a).get(f"/tracing/cases/{case_a.ref}/").content.decode()
    assert f"/tracing/links/{link.pk}/reject/" not in page
    link.refresh_from_db()
    assert link.status == "suggested"
    assert _post(client_for(tracer_b), f"{API}/links/{link.pk}/confirm").json()["status"] == "confirmed"


def test_a_wrong_onset_or_isolation_can_be_cleared_and_a_moved_window_searches_again(
        found, tracer_a, client_for, django_capture_on_commit_callbacks):
    """Regression: null was ignored, so an onset or isolation time entered by mistake could never be removed; and a
    moved window left the contact list as it was until someone pressed "find contacts"."""
    c = client_for(tracer_a)
    url = f"{API}/cases/{found.jia.pk}"
    Job.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        assert _patch(c, url, {"onset_date": "2022-01-02"}).status_code == 200
    assert Job.objects.filter(kind="tracing.find_contacts", params={"case_ids": [found.jia.pk]}).count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        body = _patch(c, url, {"onset_date": None, "isolated_at": None}).json()
    assert (body["onset_date"], body["isolated_at"]) == (None, None)
    assert c.get(url).json()["window_start"].startswith("2022-01-01T01:00")  # from the sampling again
    r = _patch(c, url, {"first_positive_at": None})
    assert r.status_code == 422 and r.json()["extra"]["field"] == "first_positive_at"
    with django_capture_on_commit_callbacks(execute=True):
        assert _patch(c, url, {"note": "interviewed"}).status_code == 200  # the window did not move: no new search
    assert Job.objects.filter(kind="tracing.find_contacts").count() == 2


def test_the_contact_queue_is_ordered_by_deadline_then_tier_with_no_deadline_last(world, tracer_a, client_for):
    """Regression: ordering by the raw columns put contacts without a deadline (companions) first on SQLite and last
    on PostgreSQL, and sorted the tiers alphabetically (companion before secondary)."""
    from jingkong.core import clock

    now = clock.now()
    rows = [("伴随", "companion", None), ("次密", "secondary", at(6, 8)), ("密接晚", "close", at(6, 8)),
            ("密接早", "close", at(5, 20))]
    for name, tier, due in rows:
        p = world.person(name)
        Contact.objects.create(person=p, tier=tier, region_code=p.grid.code, queue_region_code=p.grid.code[:9],
                               due_at=due, first_identified_at=now, created_at=now, updated_at=now)
    names = [c["name"] for c in client_for(tracer_a).get(f"{API}/contacts").json()["items"]]
    assert names == ["密接早", "密接晚", "次密", "伴随"]


def test_waiting_hand_offs_and_links_to_decide_come_first_in_the_capped_lists(found, tracer_a, tracer_b, client_for):
    """Regression: hand-offs and links were ordered by their status text, so accepted hand-offs came before waiting
    ones and suggested links after confirmed and rejected ones — the lists are capped (1000, 2000), and the work fell
    off their end."""
    incoming = client_for(tracer_b).get(f"{API}/handoffs").json()
    _post(client_for(tracer_b), f"{API}/handoffs/{incoming[0]['id']}/accept")
    statuses = [h["status"] for h in client_for(tracer_b).get(f"{API}/handoffs").json()]
    assert statuses == ["requested", "requested", "accepted"]
    a, b = found.w.person("丙", household="H7"), found.w.person("丁", household="H7")
    case_c, case_d = make_cases((a, at(2, 9)), (b, at(4, 9)))
    from jingkong.tracing import chains

    chains.links_suggest(case_ids=[case_d.pk])
    services.link_decide(actor=tracer_a, link=Link.objects.get(infectee=found.yi), status="confirmed")
    assert [lk["status"] for lk in client_for(tracer_a).get(f"{API}/links").json()] == ["suggested", "confirmed"]
