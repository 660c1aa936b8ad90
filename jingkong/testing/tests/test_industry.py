"""Key industries (按期按标准): compliant / due / overdue per employer from the policy's intervals and last samples."""

from __future__ import annotations

import datetime as dt

import pytest

from jingkong.access.guard import Scope
from jingkong.access.models import AuditLog
from jingkong.conftest import T0
from jingkong.testing import industry
from jingkong.testing.tests.campaign_helpers import activate_policy, make_building, make_residents, swab

pytestmark = pytest.mark.django_db
API = "/api/v1/testing/key-industries"
# 8th edition: port every 2 days, cold chain every 7 days.


@pytest.fixture
def workers(regions, frozen_clock):
    activate_policy(regions)
    home_a = make_building(regions["grid_a1"], "HOME-A")
    home_b = make_building(regions["grid_b1"], "HOME-B")
    port = make_residents(home_a, 4, industry="port", employer="北仑港一期")
    cold = make_residents(home_a, 2, industry="cold_chain", employer="冷链仓储")
    make_residents(home_a, 3)  # not a key industry
    port_b = make_residents(home_b, 2, industry="port", employer="北仑港一期")
    swab([port[0]], at=T0 - dt.timedelta(hours=12))  # port: 0.5 days ago — compliant
    swab([port[1]], at=T0 - dt.timedelta(hours=30))  # 1.25 days: the next test is due within a day — due
    swab([port[2]], at=T0 - dt.timedelta(days=3))  # 3 days > 2 — overdue
    swab([port[2]], at=T0 - dt.timedelta(days=5))  # an older sample changes nothing
    # port[3]: never sampled — overdue
    swab([cold[0]], at=T0 - dt.timedelta(days=3))  # cold chain, 3 of 7 days — compliant
    swab([cold[1]], at=T0 - dt.timedelta(days=6, hours=12))  # 6.5 of 7 days — due
    swab(port_b, at=T0 - dt.timedelta(days=10))
    return {"port": port, "cold": cold, "port_b": port_b}


def test_compliance_counts_per_employer(workers, regions):
    intervals, profile = industry.intervals_for(Scope("330206002"), T0)
    assert intervals["port"] == 2 and intervals["cold_chain"] == 7 and profile.startswith("cn-8th-2021")
    rows = industry.compliance(scope=Scope("330206002"), now=T0, intervals=intervals)
    by = {(r["industry"], r["employer"]): r for r in rows}
    assert set(by) == {("port", "北仑港一期"), ("cold_chain", "冷链仓储")}  # street B's port workers are not ours
    port = by[("port", "北仑港一期")]
    assert (port["workers"], port["compliant"], port["due"], port["overdue"], port["never_sampled"]) == (4, 1, 1, 2, 1)
    cold = by[("cold_chain", "冷链仓储")]
    assert (cold["compliant"], cold["due"], cold["overdue"]) == (1, 1, 0)
    assert rows[0]["industry"] == "port"  # the worst first
    district = industry.compliance(scope=Scope("330206"), now=T0, intervals=intervals)
    assert sum(r["workers"] for r in district if r["industry"] == "port") == 6


def test_worker_statuses(workers):
    intervals, _ = industry.intervals_for(Scope("330206002"), T0)
    qs = industry.workers(scope=Scope("330206002"), now=T0, intervals=intervals, industry="port")
    status = {p.pk: (p.status, p.last_sampled) for p in qs}
    port = workers["port"]
    assert [status[p.pk][0] for p in port] == ["compliant", "due", "overdue", "overdue"]
    assert status[port[2].pk][1] == T0 - dt.timedelta(days=3)  # the latest sample counts
    assert status[port[3].pk][1] is None
    overdue = industry.workers(scope=Scope("330206002"), now=T0, intervals=intervals, status="overdue")
    assert {p.pk for p in overdue} == {port[2].pk, port[3].pk}


def test_api_compliance_and_worker_lists(workers, officer_a, client_for):
    client = client_for(officer_a)
    body = client.get(f"{API}/compliance").json()
    assert body["totals"] == {"workers": 6, "compliant": 2, "due": 2, "overdue": 2, "never_sampled": 1}
    assert body["interval_days"]["port"] == 2
    only_cold = client.get(f"{API}/compliance?industry=cold_chain").json()
    assert [r["industry"] for r in only_cold["rows"]] == ["cold_chain"]
    listed = client.get(f"{API}/workers", {"industry": "port", "employer": "北仑港一期", "workplace": 0,
                                          "status": "overdue"}).json()
    assert listed["count"] == 2
    assert listed["items"][0]["last_sampled"] is None  # never sampled first: the most urgent
    assert all(i["status"] == "overdue" and "*" in i["phone"] for i in listed["items"])  # officers: masked phones
    log = AuditLog.objects.get(action="person.list", username="officer_a")
    assert log.detail["list"] == "testing.key_industry_workers" and log.detail["count"] == 2
    assert client.get(f"{API}/workers?status=late").status_code == 422
    assert client.get(f"{API}/compliance?industry=bakery").status_code == 422


def test_without_a_policy_the_compliance_page_says_so(regions, officer_a, client_for, frozen_clock):
    r = client_for(officer_a).get(f"{API}/compliance")
    assert r.status_code == 404 and r.json()["code"] == "policy_not_active"


def test_a_profile_without_testing_rules_is_explained_not_a_server_error(workers, officer_a, client_for, monkeypatch):
    """Regression: a policy version predating the testing rules made the key-industry pages fail with a 500."""
    from jingkong.policy import selectors as policy_selectors
    from jingkong.policy.schema import RulesIncomplete

    real = policy_selectors.active_profile

    def without_testing(**kwargs):
        found = real(**kwargs)

        class Rules:
            def section(self, name):
                raise RulesIncomplete(f"the active policy profile has no {name!r} rules")

        import dataclasses

        return dataclasses.replace(found, rules=Rules())

    monkeypatch.setattr(policy_selectors, "active_profile", without_testing)
    client = client_for(officer_a)
    page = client.get("/testing/key-industries/")
    assert page.status_code == 200 and "testing" in page.context["error"]
    assert client.get("/testing/key-industries/workers/").status_code == 422
    api = client.get(f"{API}/compliance")
    assert api.status_code == 422 and api.json()["code"] == "policy_incomplete"
