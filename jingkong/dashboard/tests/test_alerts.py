"""The alert feed: recent domain events of the scope and current conditions, as items without personal data."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import translation

from jingkong.core import clock
from jingkong.core.events import emit
from jingkong.dashboard.metrics import METRICS
from jingkong.dashboard.models import Figure, RefreshState

pytestmark = pytest.mark.django_db

API = "/api/v1/dashboard/alerts"
NOW = dt.datetime(2022, 4, 10, 4, 0, tzinfo=dt.UTC)
ITEM_KEYS = {"id", "kind", "severity", "title", "detail", "region_code", "region_name", "at", "link"}


@pytest.fixture(autouse=True)
def now():
    with clock.frozen(NOW) as moment:
        yield moment


@pytest.fixture(autouse=True)
def computed():
    for name in ("cases", "contacts", "zones", "clock", "testing", "isolation", "command", "checkpoints"):
        RefreshState.objects.create(family=name, refreshed_at=dt.datetime.now(dt.UTC), version=1)


def fig(metric, code, value, key="", day=None):
    Figure.objects.create(family=METRICS[metric].family, metric=metric, key=key, region_code=code, day=day,
                          value=value)


def event(type_, code, payload, at=None, **kw):
    with transaction.atomic():
        return emit(type_, region_code=code, payload=payload, at=at or NOW - dt.timedelta(minutes=5), **kw)


@pytest.fixture
def events(regions):
    a, b = regions["grid_a1"].code, regions["grid_b1"].code
    return {
        "case_a": event("tracing.case_created", a, {"ref": "C-A-1", "person_id": 4242, "found_by": "round"},
                        subject_type="tracing.case", subject_id=1),
        "case_q": event("tracing.case_created", a, {"ref": "C-A-2", "person_id": 4243, "found_by": "quarantine_test"},
                        subject_type="tracing.case", subject_id=2),
        "case_b": event("tracing.case_created", b, {"ref": "C-B-1", "person_id": 4244, "found_by": "round"}),
        "pool_a": event("testing.pool_positive", a, {"barcode": "T0001", "member_count": 10}),
        "denied_a": event("codes.crossing_recorded", "330206002", {"checkpoint": "CP1", "decision": "deny",
                                                                   "subject": "浙B12345"}),
        "allowed_a": event("codes.crossing_recorded", "330206002", {"checkpoint": "CP1", "decision": "allow"}),
        "problem_a": event("command.problem_reported", a, {"ref": "P-1", "category": "supplies",
                                                           "urgency": "critical"}),
        "routine_a": event("testing.scans_recorded", a, {"count": 3}),
        "old_a": event("tracing.case_created", a, {"ref": "C-OLD", "found_by": "round"},
                       at=NOW - dt.timedelta(days=10)),
    }


def ids(resp) -> list[str]:
    return [i["id"] for i in resp.json()["items"]]


def test_events_of_the_scope_become_items(regions, officer_a, client_for, events):
    resp = client_for(officer_a).get(API)
    assert resp.status_code == 200
    items = {i["id"]: i for i in resp.json()["items"]}
    for name in ("case_a", "case_q", "pool_a", "denied_a", "problem_a"):
        assert f"event:{events[name].pk}" in items, name
    for name in ("case_b", "allowed_a", "routine_a", "old_a"):  # other street, routine, too old
        assert f"event:{events[name].pk}" not in items, name
    case = items[f"event:{events['case_a'].pk}"]
    assert set(case) == ITEM_KEYS
    assert case["kind"] == "case" and "C-A-1" in case["title"] and case["link"] == "/tracing/cases/C-A-1/"
    assert case["region_code"] == regions["grid_a1"].code and case["region_name"] == regions["grid_a1"].name
    assert case["severity"] == 1  # found in the community
    assert items[f"event:{events['case_q'].pk}"]["severity"] == 2  # found in quarantine
    assert items[f"event:{events['problem_a'].pk}"]["severity"] == 1  # critical
    assert items[f"event:{events['denied_a'].pk}"]["kind"] == "checkpoint_denied"
    assert items[f"event:{events['pool_a'].pk}"]["kind"] == "pool_positive"
    text = resp.content.decode()
    assert "4242" not in text and "person_id" not in text and "浙B12345" not in text  # no person data


def test_items_are_newest_first_and_limited(regions, commander, client_for, events):
    data = client_for(commander).get(API, {"limit": 3}).json()["items"]
    assert len(data) == 3
    ats = [i["at"] for i in data]
    assert ats == sorted(ats, reverse=True)
    everything = client_for(commander).get(API).json()["items"]
    assert f"event:{events['case_b'].pk}" in {i["id"] for i in everything}  # the commander sees both streets


def test_grid_worker_sees_only_their_grid(regions, grid_worker_a, client_for, events):
    other = event("tracing.case_created", regions["grid_a2"].code, {"ref": "C-A2", "found_by": "round"})
    got = ids(client_for(grid_worker_a).get(API))
    assert f"event:{events['case_a'].pk}" in got and f"event:{other.pk}" not in got
    assert f"event:{events['denied_a'].pk}" not in got  # at street level: above the grid


def test_conditions_from_the_figures(regions, officer_a, client_for):
    street, grid = regions["street_a"].code, regions["grid_a1"].code
    fig("clock.overdue", street, 4, "tracing")
    fig("clock.backlog", street, 9, "tracing")
    fig("clock.overdue", street, 0, "testing")
    fig("facilities.reserve_days", grid, 2.0)
    fig("facilities.reserve_days", regions["grid_a2"].code, 8.0)
    fig("facilities.reserve_days", regions["grid_b1"].code, 0.5)  # another street
    fig("problems.overdue", grid, 2, "supplies")
    fig("services.overdue", grid, 1, "food")
    fig("services.overdue", regions["grid_a2"].code, 2, "medicine")
    items = {i["id"]: i for i in client_for(officer_a).get(API).json()["items"]}
    assert "cond:stage_overdue:tracing" in items and "cond:stage_overdue:testing" not in items
    assert items["cond:stage_overdue:tracing"]["kind"] == "stage_overdue"
    assert "4" in items["cond:stage_overdue:tracing"]["title"]
    assert f"cond:capacity:{grid}" in items and f"cond:capacity:{regions['grid_a2'].code}" not in items
    assert f"cond:capacity:{regions['grid_b1'].code}" not in items
    assert items[f"cond:problem_overdue:{street}"]["kind"] == "problem"
    assert "3" in items[f"cond:service_overdue:{street}"]["title"]
    for i in items.values():
        assert set(i) == ITEM_KEYS and 1 <= i["severity"] <= 4


def test_capacity_threshold_comes_from_the_profile(regions, commander, client_for):
    from jingkong.policy.selectors import active_profile
    from jingkong.tracing.tests.helpers import activate

    activate()
    rules = active_profile(region_code="330206", at=NOW).rules.isolation
    if rules is None:
        pytest.skip("the test profile has no isolation section")
    threshold = rules.reserve.alert_threshold_days
    fig("facilities.reserve_days", regions["grid_a1"].code, threshold - 0.5)
    fig("facilities.reserve_days", regions["grid_a2"].code, threshold + 0.5)
    got = ids(client_for(commander).get(API))
    assert f"cond:capacity:{regions['grid_a1'].code}" in got
    assert f"cond:capacity:{regions['grid_a2'].code}" not in got


def test_zone_ready_to_lift(regions, officer_a, client_for, monkeypatch):
    from jingkong.zones import rules, selectors
    from jingkong.zones.models import Zone

    def make(ref, code):
        return Zone.objects.create(ref=ref, name=f"zone {ref}", type="lockdown", status="approved", region_code=code,
                                   proposed_at=NOW - dt.timedelta(days=20), updated_at=NOW)

    ready, waiting, other = make("Z-1", regions["grid_a1"].code), make("Z-2", regions["grid_a2"].code), \
        make("Z-3", regions["grid_b1"].code)

    def countdown(zone, *, at=None):
        return rules.Countdown(action="lift", to_type=None, due_at=NOW - dt.timedelta(hours=1),
                               ready=zone.ref in ("Z-1", "Z-3"), blockers=[])

    monkeypatch.setattr(selectors, "countdown_of", countdown)
    items = {i["id"]: i for i in client_for(officer_a).get(API).json()["items"]}
    assert items["cond:zone_ready:Z-1"]["kind"] == "zone_ready" and items["cond:zone_ready:Z-1"]["link"] == \
        f"/zones/z/{ready.ref}/"
    assert "cond:zone_ready:Z-2" not in items and "cond:zone_ready:Z-3" not in items
    assert waiting.pk and other.pk


def test_event_item_of_every_alert_type_has_the_shape(regions):
    from jingkong.dashboard import alerts

    payloads = {
        "tracing.case_created": {"ref": "C1", "found_by": "round", "person_id": 9},
        "testing.pool_positive": {"barcode": "T1", "member_count": 5},
        "isolation.capacity_alert": {"days_left": 1, "free_beds": 3},
        "command.problem_reported": {"ref": "P1", "urgency": "urgent", "category": "x"},
        "command.problem_escalated": {"ref": "P1"},
        "codes.crossing_recorded": {"decision": "deny", "checkpoint": "CP"},
        "zones.zone_proposed": {"ref": "Z1", "type": "lockdown"},
        "zones.zone_approved": {"ref": "Z1", "type": "lockdown"},
        "zones.zone_lifted": {"ref": "Z1", "type": "lockdown"},
        "isolation.symptoms_flagged": {"temperature": "37.8", "symptoms": ["cough"]},
        "command.tasks_escalated": {"count": 4},
        "command.low_stock": {"item": "N95", "depot": "D1", "quantity": 2, "threshold": 10},
    }
    assert set(payloads) == set(alerts.ALERT_EVENT_TYPES)
    for type_, payload in payloads.items():
        e = event(type_, regions["grid_a1"].code, payload)
        item = alerts.event_item(e)
        assert item is not None and set(item) == ITEM_KEYS, type_
        assert item["id"] == f"event:{e.pk}" and 1 <= item["severity"] <= 4 and item["title"]
        if type_ == "zones.zone_proposed":
            with translation.override("en"):
                assert alerts.event_item(e)["detail"] == "lockdown zone (封控区)"  # the type's label, not its id


def test_analyst_reads_new_cases_without_their_numbers_or_links(regions, client_for, events):
    """Analysts hold DASHBOARD_VIEW but see aggregates only (roles.py): a case item says "New case" and where, with
    no case number and no link; a flagged person's symptoms are left out; links only to pages the role may open."""
    from jingkong.conftest import make_user

    symptoms = event("isolation.symptoms_flagged", regions["grid_a1"].code, {"temperature": "38.4",
                                                                               "symptoms": ["cough"]})
    fig("services.overdue", regions["grid_a1"].code, 1, "food")
    fig("problems.overdue", regions["grid_a1"].code, 1, "supplies")
    analyst = make_user("analyst_a", "analyst", regions["street_a"])
    client = client_for(analyst)
    client.cookies["django_language"] = "en"  # the request's own language (the UI default is zh-hans)
    with translation.override("en"):
        resp = client.get(API)
    assert resp.status_code == 200
    items = {i["id"]: i for i in resp.json()["items"]}
    case = items[f"event:{events['case_a'].pk}"]
    assert case["kind"] == "case" and case["title"] == "New case" and case["link"] == ""
    assert case["region_name"] == regions["grid_a1"].name
    assert "C-A-1" not in resp.content.decode() and "C-A-2" not in resp.content.decode()
    assert items[f"event:{symptoms.pk}"]["detail"] == ""
    street = regions["street_a"].code
    assert items[f"cond:service_overdue:{street}"]["link"] == ""  # the service queue needs SERVICE_HANDLE
    assert items[f"cond:problem_overdue:{street}"]["link"] == "/command/problems/"  # COMMAND_VIEW: kept
    # the street officer (TRACING_VIEW, PERSON_VIEW) reads the same items in full
    full = {i["id"]: i for i in client_for(make_user("officer_x", "street_officer", regions["street_a"]))
            .get(API).json()["items"]}
    assert "C-A-1" in full[f"event:{events['case_a'].pk}"]["title"]
    assert full[f"event:{events['case_a'].pk}"]["link"] == "/tracing/cases/C-A-1/"
    assert "38.4" in full[f"event:{symptoms.pk}"]["detail"]


def test_ids_are_stable_and_order_is_newest_first_with_ties_by_severity(regions, commander, client_for, events):
    c = client_for(commander)
    first, second = c.get(API).json()["items"], c.get(API).json()["items"]
    assert [i["id"] for i in first] == [i["id"] for i in second]
    keys = [(i["at"], -i["severity"]) for i in first]
    assert keys == sorted(keys, reverse=True)
