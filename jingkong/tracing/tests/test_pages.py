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
    assert "back" in r.content.decode()
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
    assert "S1超市" in page and "新碶街道一社区" in page and "10:00" in page
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
