"""The demo's outbreak in progress, built by the platform's own services on a small generated district.

One district is generated per module and loaded into each test's database; the scenario runs once per test and the
outcome is read back through the apps' selectors (what the pages and the dashboard read), not from the scenario's own
summary: the summary is only compared with them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from jingkong.access.guard import Scope
from jingkong.synth.generate import generate_district

POP = 2000
DAYS = 5
START = dt.datetime(2022, 1, 8, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
DISTRICT = Scope("330206")


@pytest.fixture(scope="module")
def district_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("outbreak-district")
    generate_district(out, population=POP, seed=20220101, days=DAYS, start_date=dt.date(2022, 1, 3),
                      now=dt.datetime(2022, 1, 1, tzinfo=dt.UTC))
    return out


@pytest.fixture
def loaded(district_dir, tmp_path, settings, db):
    """The district loaded, the 8th-edition rules in force (as `jingkong demo` does), a code-signing key."""
    from django.core.management import call_command

    from jingkong.people.loader import load_district
    from jingkong.policy.selectors import active_profile_cache_clear
    from jingkong.policy.services import demo_activate

    settings.DATA_DIR = tmp_path / "data"
    settings.DATA_DIR.mkdir()
    active_profile_cache_clear()
    load_district(district_dir)
    demo_activate(region_code="330206")
    active_profile_cache_clear()
    call_command("codes_rotate_key", if_none=True, stdout=open("/dev/null", "w"))  # noqa: SIM115
    yield
    active_profile_cache_clear()


@pytest.fixture
def outcome(loaded):
    import time

    from jingkong.synth.outbreak import outbreak_run

    lines: list[str] = []
    began = time.perf_counter()
    result = outbreak_run(seed=8, start=START, echo=lambda text: lines.append(f"{time.perf_counter() - began:6.1f} {text}"))
    print("\n".join(lines))
    return result, lines


def test_the_outbreak_is_under_way_through_every_workflow(outcome, capsys):
    from jingkong.analytics.coverage import coverage_summary
    from jingkong.command import selectors as command_selectors
    from jingkong.command import selectors_services
    from jingkong.command.models import ServiceRequest
    from jingkong.core import clock
    from jingkong.isolation import selectors_facilities, selectors_transfer
    from jingkong.isolation.models import IsolationOrder, Room
    from jingkong.testing.models import Campaign, PersonTestState, Sample, TubeResult
    from jingkong.tracing import selectors as tracing_selectors
    from jingkong.zones import selectors as zone_selectors

    result, lines = outcome
    assert not result["already_loaded"]
    _second_run_changes_nothing(capsys)  # idempotent: the scenario runs once (it is the slow part of this module)
    assert any("Outbreak 1/9" in line for line in lines) and any("9/9" in line for line in lines)
    end = dt.datetime.fromisoformat(result["ends_at"])
    assert end > START + dt.timedelta(days=2)

    # cases, each with its own positive single-tube result (the retest) and found by the testing
    cases = list(tracing_selectors.case_list(scope=DISTRICT))
    assert 3 <= len(cases) <= 8
    assert sorted(c.ref for c in cases) == sorted(result["cases"] + result["round"]["new_cases"])
    for case in cases:
        assert PersonTestState.objects.get(person_id=case.person_id).status == "positive"
        positive = TubeResult.objects.filter(outcome="positive", tube__samples__person_id=case.person_id,
                                             tube__capacity=1)
        assert positive.exists(), case.ref
        assert case.first_positive_at is not None and case.first_positive_at < end

    # contacts found (close and secondary), with their reasons pointing at the cases
    close = tracing_selectors.contact_list(scope=DISTRICT, tier="close")
    assert close.count() > 0
    assert tracing_selectors.contact_list(scope=DISTRICT, tier="secondary").count() > 0
    case_ids = {c.pk for c in cases}
    reasons = tracing_selectors.reasons_of(list(close[:20]))
    assert reasons and all({r.case_id for r in rs} <= case_ids for rs in reasons.values())

    # zones: approved by the commander, with residents
    approved = list(zone_selectors.zone_list(scope=DISTRICT, status="approved"))
    assert any(z.type == "lockdown" for z in approved)
    assert all(z.approved_by and z.approved_by.username == "commander" for z in approved)
    assert all(zone_selectors.residents_of(z).exists() for z in approved if z.type == "lockdown")

    # the full round: about half sampled, some results in, some pending, one more pool waiting for its retest
    campaign = Campaign.objects.get(code="OB-XQ-R1")
    with clock.frozen(end):
        summary = coverage_summary(campaign, scope=DISTRICT)
    assert 0 < summary["sampled"] < summary["target"]
    assert summary["negative"] > 0 and summary["pending"] > 0
    assert summary["pool_positive"] > 0, (summary, result["round"])  # retests of the round's pool still out
    # the round's pool: one member's retest came back positive today — a case found in the community
    assert result["round"]["new_cases"]
    today = tracing_selectors.case_get_by_ref(scope=DISTRICT, ref=result["round"]["new_cases"][0])
    assert today.created_at.date() == end.date() and today.found_by in ("round", "contact_followup")  # not in quarantine
    sampled_persons = Sample.objects.filter(campaign=campaign).values("person_id").distinct().count()
    assert summary["sampled"] == sampled_persons

    # transfers in several states, rooms filling as people arrive, isolation orders started
    runs = {t.status for t in selectors_transfer.transfer_list(scope=DISTRICT)}
    assert len(runs) >= 3 and "arrived" in runs, (runs, result["transfers"])
    assert selectors_transfer.batch_list(scope=DISTRICT, status="delivered").exists()
    occupied = Room.objects.filter(state="occupied").count()
    assert occupied > 0
    orders = selectors_facilities.order_list(scope=DISTRICT)
    assert orders.exists()
    assert IsolationOrder.objects.filter(person_id__in=[c.person_id for c in cases]).exists()

    # command: open directives with grid tasks (some done, some not), problems, open and overdue service requests
    directives = list(command_selectors.directive_list(scope=DISTRICT, status="open"))
    assert len(directives) == 2
    with clock.frozen(end):
        tasks = command_selectors.task_list(scope=DISTRICT, leaves_only=True)
        assert tasks.filter(status="done").exists() and tasks.exclude(status="done").exists()
        assert command_selectors.problem_list(scope=DISTRICT, open_only=True).count() == 4
        open_requests = selectors_services.request_queue(scope=DISTRICT, open_only=True, now=end)
        asked = ServiceRequest.objects.filter(ref__in=result["command"]["service_requests"])
        assert open_requests.count() == asked.exclude(status__in=["delivered", "confirmed", "cancelled"]).count() > 0
        assert asked.filter(status="delivered").exists()
        assert selectors_services.request_queue(scope=DISTRICT, open_only=True, overdue=True, now=end).exists()


def _second_run_changes_nothing(capsys) -> None:
    from django.core.management import call_command

    from jingkong.core.models import DomainEvent
    from jingkong.synth.outbreak import outbreak_run

    before = DomainEvent.objects.count()
    assert outbreak_run(seed=8, start=START)["already_loaded"] is True
    call_command("outbreak", "--seed", "8")
    assert "loaded already" in capsys.readouterr().out
    assert DomainEvent.objects.count() == before


def test_the_command_refuses_a_start_without_an_offset(db):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="offset"):
        call_command("outbreak", "--start", "2022-01-08T08:00")
