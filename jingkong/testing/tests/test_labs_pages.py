"""Lab-side pages: labs overview, lab board (scoped by lab), pool-positive follow-up (person-level, audited)."""

from __future__ import annotations

import datetime as dt

import pytest

from jingkong.conftest import T0, make_user
from jingkong.core import clock
from jingkong.testing.results import results_apply
from jingkong.testing.tests.labs_helpers import make_lab, make_persons, make_site, make_tube, row

pytestmark = pytest.mark.django_db
LATER = T0 + dt.timedelta(hours=6)


@pytest.fixture
def world(regions):
    with clock.frozen(LATER):
        lab = make_lab(regions["district"], "LAB1")
        lab_b = make_lab(regions["street_b"], "LAB-B")
        site = make_site(regions["grid_a1"], "SA")
        people_a = make_persons(regions["grid_a1"], 6)
        people_b = make_persons(regions["grid_b1"], 4)
        make_tube("TA", people_a, capacity=10, site=site)
        make_tube("TB", people_b, capacity=10)
        make_tube("LATE", people_a[:1], capacity=1, site=site, lab=lab, status="received", received_at=T0)
        results_apply(actor=None, lab=lab, rows=[row("TA", "positive"), row("TB", "positive")])
        yield {"lab": lab, "lab_b": lab_b, "people_a": people_a, "people_b": people_b}


def test_labs_overview_and_board(world, officer_a, client_for):
    c = client_for(officer_a)
    with clock.frozen(LATER + dt.timedelta(hours=10)):
        page = c.get("/testing/labs/")
        assert page.status_code == 200
        text = page.content.decode()
        assert "LAB1" in text and "LAB-B" not in text  # a street-B lab is not shown in street A
        assert "LATE" in text  # overdue: received 16 h ago, target 12 h
        board = c.get(f"/testing/labs/{world['lab'].pk}/")
        assert board.status_code == 200
        assert 'http-equiv="refresh"' in board.content.decode() and "LATE" in board.content.decode()
        assert c.get(f"/testing/labs/{world['lab_b'].pk}/").status_code == 404
        assert c.get("/testing/labs/999999/").status_code == 404


def test_followup_page_lists_only_the_area_and_is_audited(world, regions, client_for, grid_worker_a):
    from jingkong.access.models import AuditLog

    analyst = make_user("analyst", "analyst", regions["street_a"])
    assert client_for(analyst).get("/testing/retests/").status_code == 403
    officer = make_user("officer", "street_officer", regions["street_a"])
    page = client_for(officer).get("/testing/retests/")
    assert page.status_code == 200
    text = page.content.decode()
    assert all(p.name in text for p in world["people_a"]) and not any(p.name in text for p in world["people_b"])
    assert "就地管控" in text
    assert AuditLog.objects.filter(action="person.list", detail__list="testing.retest_tasks",
                                   user=officer).count() == 1
    csv = client_for(grid_worker_a).get("/testing/retests/?status=all&format=csv")
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    body = csv.content.decode("utf-8-sig").splitlines()
    assert body[0].startswith("region_code,building") and len(body) == 1 + 6
    assert AuditLog.objects.filter(action="person.export", user=grid_worker_a).count() == 1
    # A region outside the area: a message, no data, still audited as a read attempt.
    other = client_for(officer).get(f"/testing/retests/?region={regions['grid_b1'].code}")
    assert other.status_code == 200 and not any(p.name in other.content.decode() for p in world["people_b"])


def test_subnav_offers_the_lab_pages_to_roles_that_may_open_them(world, regions, client_for):
    lab_tech = make_user("tech", "lab_technician", regions["district"])
    text = client_for(lab_tech).get("/testing/labs/").content.decode()
    assert "/testing/labs/" in text and "/testing/retests/" not in text  # no person data for technicians
