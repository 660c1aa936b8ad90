"""Tracing pages: scoping of every page with parameters, the actions, and what each page shows."""

from __future__ import annotations

import pytest

from jingkong.core.models import Job
from jingkong.tracing import chains, services
from jingkong.tracing.models import Contact, Handoff, Link

pytestmark = pytest.mark.django_db


@pytest.fixture
def found(outbreak):
    services.find_run(case_ids=[outbreak.jia.pk, outbreak.yi.pk])
    return outbreak


def test_case_list_and_detail_are_scoped(found, tracer_a, tracer_b, client_for):
    page = client_for(tracer_a).get("/tracing/").content.decode()
    assert found.jia.ref in page and found.yi.ref in page
    assert found.jia.ref not in client_for(tracer_b).get("/tracing/").content.decode()
    assert client_for(tracer_b).get(f"/tracing/cases/{found.jia.ref}/").status_code == 404
    assert client_for(tracer_b).get(f"/tracing/cases/{found.jia.ref}/notice/").status_code == 404
    assert client_for(tracer_a).get("/tracing/cases/NO-SUCH/").status_code == 404


def test_case_detail_shows_timeline_contacts_with_evidence_handoffs_and_links(found, tracer_a, client_for):
    page = client_for(tracer_a).get(f"/tracing/cases/{found.jia.ref}/").content.decode()
    assert "S1超市" in page  # the check-in stay and the venue evidence
    assert "妻" in page and "同事" in page
    assert "顾客" not in page  # lives in street B: shown as a count handed to that region
    assert "大碶街道" in page and "330206004" in page
    assert "cn-8th-2021" in page
    assert found.yi.ref in page and "/tracing/links/" in page  # the suggested link with its buttons


def test_the_contact_queue_shows_incoming_hand_offs_and_accepts_them(found, tracer_a, tracer_b, client_for):
    page = client_for(tracer_b).get("/tracing/contacts/").content.decode()
    assert "顾客" in page and "顾客子" in page and "店员" in page
    handoff = Handoff.objects.get(contact__person__name="顾客")
    assert client_for(tracer_a).post(f"/tracing/handoffs/{handoff.pk}/accept/").status_code == 404
    r = client_for(tracer_b).post(f"/tracing/handoffs/{handoff.pk}/accept/")
    assert r.status_code == 302
    handoff.refresh_from_db()
    assert handoff.status == "accepted" and handoff.accepted_by == tracer_b
    sent = client_for(tracer_a).get("/tracing/contacts/").content.decode()
    assert "顾客" not in sent and "330206004" in sent  # the sender sees the hand-off, not the person


def test_contact_status_form_moves_forward_and_reports_a_refusal(found, tracer_a, tracer_b, client_for):
    contact = Contact.objects.get(person__name="顾客")
    url = f"/tracing/contacts/{contact.pk}/status/"
    assert client_for(tracer_a).post(url, {"status": "notified"}).status_code == 404
    client_for(tracer_b).post(url, {"status": "located"})
    contact.refresh_from_db()
    assert contact.status == "located"
    r = client_for(tracer_b).post(url, {"status": "notified", "next": "/tracing/contacts/"}, follow=True)
    assert "密接状态不能从“已找到”退回到“已通知”" in r.content.decode()  # the refusal, in the page's language
    contact.refresh_from_db()
    assert contact.status == "located"


def test_link_decisions_and_contact_finding_from_the_page(found, tracer_a, tracer_b, officer_a, client_for):
    link = Link.objects.get()
    assert client_for(tracer_b).post(f"/tracing/links/{link.pk}/confirm/").status_code == 404
    assert client_for(officer_a).post(f"/tracing/links/{link.pk}/confirm/").status_code == 403  # may only read
    r = client_for(tracer_a).post(f"/tracing/links/{link.pk}/confirm/", {"next": f"/tracing/cases/{found.yi.ref}/"})
    assert r.status_code == 302 and r["Location"] == f"/tracing/cases/{found.yi.ref}/"
    link.refresh_from_db()
    assert link.status == "confirmed"
    assert client_for(tracer_a).post(f"/tracing/links/{link.pk}/maybe/").status_code == 422
    r = client_for(tracer_a).post(f"/tracing/cases/{found.jia.ref}/find/")
    assert r.status_code == 302 and Job.objects.filter(kind="tracing.find_contacts").exists()
    assert client_for(tracer_a).get(f"/tracing/cases/{found.jia.ref}/find/").status_code == 405


def test_the_chains_page_draws_the_links_and_lists_clusters(found, tracer_a, tracer_b, client_for):
    services.link_decide(actor=tracer_a, link=Link.objects.get(), status="confirmed")
    page = client_for(tracer_a).get("/tracing/chains/").content.decode()
    assert "<svg" in page and found.jia.ref in page and found.yi.ref in page
    cluster = chains.Cluster.objects.get(active=True)
    assert cluster.name in page
    assert client_for(tracer_a).get(f"/tracing/chains/?cluster={cluster.pk}").status_code == 200
    assert client_for(tracer_b).get(f"/tracing/chains/?cluster={cluster.pk}").status_code == 404
    r = client_for(tracer_a).post(f"/tracing/clusters/{cluster.pk}/rename/", {"name": "超市聚集", "setting": "venue"})
    assert r.status_code == 302
    cluster.refresh_from_db()
    assert cluster.name == "超市聚集" and cluster.named_by_tracer


def test_the_printable_notice(found, tracer_a, client_for):
    page = client_for(tracer_a).get(f"/tracing/cases/{found.jia.ref}/notice/").content.decode()
    assert "S1超市" in page and "新碶街道一社区" in page and "10:00–11:00" in page  # local time, not 02:00–03:00 UTC
    assert found.jia.person.name not in page
    assert found.jia.person.id_masked not in page and "8号楼" not in page


def test_the_back_office_lists_cases_and_contacts_without_names_and_audits_opening_one(found, admin_user, client_for):
    from jingkong.access.models import AuditLog

    c = client_for(admin_user)
    listing = c.get("/admin/tracing/case/").content.decode()
    assert found.jia.ref in listing and "甲" not in listing.replace(found.jia.ref, "")
    assert c.get("/admin/tracing/contact/").status_code == 200
    assert c.get(f"/admin/tracing/case/{found.jia.pk}/change/").status_code == 200
    assert AuditLog.objects.filter(action="person.view", object_id=str(found.jia.person_id), username="admin",
                                   detail__via="admin").exists()
    assert c.get("/admin/tracing/case/add/").status_code == 403


def test_page_actions_on_another_regions_objects_are_not_found(found, tracer_b, client_for):
    c = client_for(tracer_b)
    assert c.post(f"/tracing/cases/{found.jia.ref}/find/").status_code == 404
    assert c.post(f"/tracing/cases/{found.jia.ref}/suggest/").status_code == 404
    services.link_decide(actor=None, link=Link.objects.get(), status="confirmed")
    cluster = chains.Cluster.objects.get(active=True)
    assert c.post(f"/tracing/clusters/{cluster.pk}/rename/", {"name": "x"}).status_code == 404
    contact = Contact.objects.get(person__name="妻")
    assert c.post(f"/tracing/contacts/{contact.pk}/status/", {"status": "notified"}).status_code == 404
    assert not Job.objects.filter(kind="tracing.find_contacts").exists()


# --- the timeline form ------------------------------------------------------------------------------------------------


def _stay_post(**over) -> dict:
    body = {"kind": "venue", "venue_code": "S2", "place": "", "start": "2022-01-02T14:00", "end": "2022-01-02T15:00",
            "transport_mode": "", "transport_number": "", "carriage": "", "seat": "", "publish": "on",
            "public_label": "", "note": ""}
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


def test_a_tracer_adds_a_stay_on_the_case_page_in_local_time(found, tracer_a, officer_a, client_for):
    from jingkong.tracing.models import Stay
    from jingkong.tracing.tests.helpers import at

    c = client_for(tracer_a)
    page = c.get(f"/tracing/cases/{found.jia.ref}/").content.decode()
    assert f"/tracing/cases/{found.jia.ref}/stays/add/" in page and 'type="datetime-local"' in page
    assert "/stays/add/" not in client_for(officer_a).get(f"/tracing/cases/{found.jia.ref}/").content.decode()
    r = c.post(f"/tracing/cases/{found.jia.ref}/stays/add/", _stay_post(note="bought medicine"))
    assert r.status_code == 302 and r["Location"].endswith(f"/tracing/cases/{found.jia.ref}/#timeline")
    stay = Stay.objects.get(case=found.jia, source="interview")
    assert (stay.start, stay.end, stay.venue.code, stay.place, stay.note, stay.created_by) == (
        at(2, 14), at(2, 15), "S2", "S2超市", "bought medicine", tracer_a)  # 14:00 Shanghai is 06:00 UTC
    r = c.post(f"/tracing/cases/{found.jia.ref}/stays/add/", _stay_post(
        kind="transport", venue_code="", transport_mode="train", transport_number="G7501", carriage="5号车厢",
        seat="12F", start="2022-01-02 07:03", end="2022-01-02 08:10"))
    assert r.status_code == 302
    train = Stay.objects.get(case=found.jia, kind="transport")
    assert (train.transport_number, train.carriage, train.seat, train.start) == ("G7501", "5号车厢", "12F", at(2, 7, 3))
    assert client_for(officer_a).post(f"/tracing/cases/{found.jia.ref}/stays/add/", _stay_post()).status_code == 403


@pytest.mark.parametrize(("over", "field", "words"), [
    ({"start": "2022-01-02T16:00", "end": "2022-01-02T15:30"}, "end", "ends before it starts"),
    ({"venue_code": "NO-SUCH"}, "venue_code", "NO-SUCH"),
    ({"kind": "transport", "venue_code": "", "transport_mode": "train"}, "transport_number", "number"),
    ({"start": "yesterday"}, "start", "2022-01-02 14:30"),
    ({"start": "0001-01-01T00:00", "end": "0001-01-01T01:00"}, "start", "2019"),
    ({"start": "2022-01-06T10:00", "end": "2022-01-06T11:00"}, "start", "future"),
    ({"kind": "spaceship"}, "kind", "spaceship"),
    ({"place": "x" * 300}, "place", "300"),
    ({"end": ""}, "end", ""),
    ({"kind": "other", "venue_code": ""}, "venue_code", "describe the place"),  # an "other" stay needs a place too
])
def test_a_refused_stay_is_shown_again_with_the_reason_at_its_field(found, tracer_a, client_for, over, field, words):
    from jingkong.tracing.models import Stay

    before = Stay.objects.filter(case=found.jia).count()
    r = client_for(tracer_a).post(f"/tracing/cases/{found.jia.ref}/stays/add/", _stay_post(**over),
                                  HTTP_ACCEPT_LANGUAGE="en")  # the reasons read in English
    assert r.status_code == 422
    form = r.context["stay_form"]
    assert field in form.errors and words in " ".join(form.errors[field]), form.errors
    page = r.content.decode()
    assert "<details class=\"tr-add no-print\" open>" in page and "tr-error" in page
    assert Stay.objects.filter(case=found.jia).count() == before  # nothing saved


def test_an_overlapping_stay_needs_the_box_ticked_and_both_are_flagged(found, tracer_a, client_for):
    from jingkong.tracing.models import Stay

    c = client_for(tracer_a)
    url = f"/tracing/cases/{found.jia.ref}/stays/add/"
    clash = _stay_post(venue_code="", place="药店", start="2022-01-02T10:30", end="2022-01-02T10:45")  # S1 10–11
    r = c.post(url, clash, HTTP_ACCEPT_LANGUAGE="en")
    assert r.status_code == 422 and "overlaps" in " ".join(r.context["stay_form"].errors["start"])
    assert 'value="药店"' in r.content.decode()  # what was typed is kept
    assert c.post(url, {**clash, "accept_overlap": "on"}).status_code == 302
    assert set(Stay.objects.filter(case=found.jia, flag_overlap=True).values_list("place", flat=True)) == {"药店", ""}


def test_a_tracer_corrects_and_deletes_a_stay(found, tracer_a, officer_a, client_for):
    import datetime as dt

    from jingkong.tracing.models import Stay
    from jingkong.tracing.tests.helpers import at

    c = client_for(tracer_a)
    checkin = Stay.objects.get(case=found.jia, source="checkin")
    Stay.objects.filter(pk=checkin.pk).update(start=at(2, 10) + dt.timedelta(seconds=37))
    url = f"/tracing/cases/{found.jia.ref}/stays/{checkin.pk}/"
    page = c.get(url).content.decode()
    assert 'value="2022-01-02T10:00"' in page and 'value="S1"' in page  # local time, to the minute
    form = {"kind": "venue", "venue_code": "S1", "place": "", "start": "2022-01-02T10:00", "end": "2022-01-02T11:00",
            "publish": "on", "note": "confirmed in the interview"}
    assert c.post(url, form).status_code == 302
    checkin.refresh_from_db()
    assert checkin.note == "confirmed in the interview"
    assert checkin.start == at(2, 10) + dt.timedelta(seconds=37)  # an untouched time keeps its seconds
    r = c.post(url, {**form, "end": "2022-01-02T09:00"})
    assert r.status_code == 422 and "结束时间：结束早于开始" in r.content.decode()  # zh-hans by default
    assert c.post(url, {**form, "end": "2022-01-02T10:40", "publish": ""}).status_code == 302
    checkin.refresh_from_db()
    assert (checkin.end, checkin.publish) == (at(2, 10, 40), False)
    assert client_for(officer_a).get(url).status_code == 403  # reading the case is not editing it
    assert client_for(officer_a).post(f"{url}delete/").status_code == 403
    assert c.post(f"{url}delete/").status_code == 302
    assert not Stay.objects.filter(pk=checkin.pk).exists()


def test_the_timeline_form_of_another_regions_case_is_not_found(found, tracer_a, tracer_b, client_for):
    from jingkong.tracing.models import Stay

    c = client_for(tracer_b)
    stay = Stay.objects.filter(case=found.jia).first()
    before = Stay.objects.filter(case=found.jia).count()
    assert c.post(f"/tracing/cases/{found.jia.ref}/stays/add/", _stay_post()).status_code == 404
    assert c.get(f"/tracing/cases/{found.jia.ref}/stays/{stay.pk}/").status_code == 404
    assert c.post(f"/tracing/cases/{found.jia.ref}/stays/{stay.pk}/", _stay_post(note="x")).status_code == 404
    assert c.post(f"/tracing/cases/{found.jia.ref}/stays/{stay.pk}/delete/").status_code == 404
    # A stay of one case is not reachable through another case's address.
    other = Stay.objects.filter(case=found.yi).first()
    assert client_for(tracer_a).get(f"/tracing/cases/{found.jia.ref}/stays/{other.pk}/").status_code == 404
    assert client_for(tracer_a).post(f"/tracing/cases/{found.jia.ref}/stays/{other.pk}/delete/").status_code == 404
    assert Stay.objects.filter(case=found.jia).count() == before and Stay.objects.filter(pk=other.pk).exists()


@pytest.mark.parametrize(("language", "words"), [
    ("en", ("Activity timeline", "Contacts handed to other regions", "Transmission links", "Serial interval")),
    ("zh-hans", ("行程轨迹", "交通运输", "G7501")),
])
def test_every_tracing_page_renders_in_both_languages_with_realistic_data(found, tracer_a, tracer_b, client_for,
                                                                         language, words):
    """Every page, for the region of the cases and for the region their contacts live in: a drafted check-in, an
    interview stay on a train, a flagged overlap, close and secondary contacts with hand-offs, a confirmed link and its
    cluster, the chain drawing, the estimates and the notice."""
    from jingkong.tracing.models import Cluster, Stay
    from jingkong.tracing.tests.helpers import at

    services.stay_save(actor=tracer_a, case=found.jia, kind="transport", transport_mode="train",
                       transport_number="G7501", carriage="5", seat="12F", start=at(2, 7, 3), end=at(2, 8, 10))
    services.stay_save(actor=tracer_a, case=found.jia, kind="other", place="药店", start=at(2, 10, 30),
                       end=at(2, 10, 45), accept_overlap=True)
    services.link_decide(actor=tracer_a, link=Link.objects.get(), status="confirmed")
    cluster, stay = Cluster.objects.get(active=True), Stay.objects.filter(case=found.jia, flag_overlap=True).first()
    pages = {
        tracer_a: ["/tracing/", f"/tracing/cases/{found.jia.ref}/", f"/tracing/cases/{found.yi.ref}/",
                   f"/tracing/cases/{found.jia.ref}/notice/", f"/tracing/cases/{found.jia.ref}/stays/{stay.pk}/",
                   "/tracing/contacts/", "/tracing/chains/", f"/tracing/chains/?cluster={cluster.pk}"],
        tracer_b: ["/tracing/", "/tracing/contacts/", "/tracing/contacts/?tier=secondary", "/tracing/chains/"],
    }
    seen = ""
    for user, urls in pages.items():
        c = client_for(user)
        for url in urls:
            r = c.get(url, HTTP_ACCEPT_LANGUAGE=language)
            assert r.status_code == 200, (url, r.status_code)
            text = r.content.decode()
            assert f'<html lang="{language}">' in text, url
            seen += text
    for word in words:
        assert word in seen, word
    assert "顾客子" in seen and found.jia.ref in seen  # B's queue lists the secondary contact; A's pages the case


def test_suggesting_links_without_a_policy_in_force_says_so_on_the_case_page(regions, now, tracer_a, client_for):
    """Regression: the button answered with a bare 404 page when no policy profile was in force for the region."""
    from jingkong.tracing.tests.helpers import World, at, make_cases

    (case,) = make_cases((World(regions).person("甲"), at(3, 9)))
    r = client_for(tracer_a).post(f"/tracing/cases/{case.ref}/suggest/", follow=True)
    assert r.status_code == 200 and r.redirect_chain[-1][0] == f"/tracing/cases/{case.ref}/"
    assert [m.level_tag for m in r.context["messages"]] == ["error"]


def test_the_case_page_links_to_proposing_zones_for_roles_that_may(found, tracer_a, regions, client_for):
    from jingkong.conftest import make_user

    link = f"/zones/propose/?case={found.jia.ref}"
    assert link in client_for(tracer_a).get(f"/tracing/cases/{found.jia.ref}/").content.decode()
    # A grid worker reads cases but does not propose zones: no link.
    worker = make_user("grid_reader", "grid_worker", regions["street_a"])
    page = client_for(worker).get(f"/tracing/cases/{found.jia.ref}/")
    assert page.status_code == 200 and link not in page.content.decode()
