"""Back office of the lab side: labs editable (technician changes audited), custody and results read-only, person
records audited when opened."""

from __future__ import annotations

import datetime as dt

import pytest

from jingkong.access.models import AuditLog
from jingkong.conftest import T0, make_user
from jingkong.core import clock
from jingkong.testing.models import RetestTask, TubeResult
from jingkong.testing.results import results_apply
from jingkong.testing.tests.labs_helpers import make_lab, make_persons, make_tube, row

pytestmark = pytest.mark.django_db


def test_labs_are_edited_with_an_audited_technician_list(regions, admin_user, client_for):
    lab = make_lab(regions["district"])
    tech = make_user("tech", "lab_technician", regions["district"])
    c = client_for(admin_user)
    assert c.get("/admin/testing/lab/").status_code == 200
    r = c.post(f"/admin/testing/lab/{lab.pk}/change/", {"name": "区疾控实验室", "capacity_per_hour": 800,
                                                        "target_hours": 10, "active": "on", "technicians": [tech.pk]})
    assert r.status_code == 302, r.content[:2000]
    lab.refresh_from_db()
    assert lab.capacity_per_hour == 800 and list(lab.technicians.all()) == [tech]
    record = AuditLog.objects.get(action="lab.technicians")
    assert record.detail["technicians"] == {"before": [], "after": ["tech"]} and record.username == "admin"
    assert c.post(f"/admin/testing/lab/{lab.pk}/delete/", {"post": "yes"}).status_code == 403


def test_results_and_retests_are_read_only_and_person_records_audited(regions, admin_user, client_for):
    with clock.frozen(T0 + dt.timedelta(hours=6)):
        lab = make_lab(regions["district"])
        people = make_persons(regions["grid_a1"], 3)
        make_tube("T1", people, capacity=10)
        results_apply(actor=None, lab=lab, rows=[row("T1", "positive")])
    c = client_for(admin_user)
    result = TubeResult.objects.get()
    for url in ("/admin/testing/tube/", "/admin/testing/tuberesult/", "/admin/testing/transportbatch/",
                "/admin/testing/retesttask/", "/admin/testing/personteststate/"):
        assert c.get(url).status_code == 200, url
    assert c.post(f"/admin/testing/tuberesult/{result.pk}/change/", {"outcome": "negative"}).status_code == 403
    assert TubeResult.objects.get().outcome == "positive"
    task = RetestTask.objects.first()
    assert c.get(f"/admin/testing/retesttask/{task.pk}/change/").status_code == 200
    assert AuditLog.objects.filter(action="person.view", object_id=str(task.person_id),
                                   detail__via="admin").count() == 1
    assert c.get(f"/admin/testing/personteststate/{people[0].pk}/change/").status_code == 200
    assert AuditLog.objects.filter(action="person.view", object_id=str(people[0].pk)).exists()
