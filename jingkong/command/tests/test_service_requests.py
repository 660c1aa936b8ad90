"""Service requests (暖服务): submission, identification, triage, routing, escort, status flow, the resident's side."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from jingkong.command import requests as svc
from jingkong.command.models import ServiceRequest, Task
from jingkong.command.tests import test_services_fixtures as fx
from jingkong.command.tests.test_services_fixtures import NOW, make_resident, make_worker
from jingkong.core.exceptions import Conflict, ValidationFailed
from jingkong.core.models import DomainEvent

pytestmark = pytest.mark.django_db
sv_now, sv_world = fx.sv_now, fx.sv_world  # shared fixtures


def _req(ip="10.0.0.1"):
    return SimpleNamespace(META={"REMOTE_ADDR": ip, "HTTP_USER_AGENT": "test"})


def test_a_request_gets_priority_and_deadline_from_the_profile_and_lands_with_the_grid_worker(sv_world):
    from jingkong.policy.selectors import active_profile

    person, _ = make_resident(sv_world["regions"]["grid_a1"], vulnerable=1)  # elderly
    req, created = svc.request_submit(person=person, category="garbage")
    services = active_profile(region_code=req.region_code).rules.services
    assert created and req.region_code == person.grid.code
    assert req.priority == min(services.categories["garbage"].priority, services.priority_by_group.elderly)
    assert req.deadline == NOW + dt.timedelta(hours=min(services.categories["garbage"].hours,
                                                        services.priority_hours_by_group.elderly))
    assert req.assignee == sv_world["worker_a1"] and req.status == "assigned"
    assert [u.status for u in req.updates.order_by("id")] == ["submitted", "assigned"]
    assert DomainEvent.objects.filter(type="command.service_submitted", subject_id=str(req.pk)).count() == 1


def test_a_worker_named_for_the_building_is_preferred(sv_world):
    grid = sv_world["regions"]["grid_a1"]
    person, _ = make_resident(grid)
    captain = make_worker(grid.code, role="building_captain", buildings=[person.building])
    req, _ = svc.request_submit(person=person, category="food")
    assert req.assignee == captain


def test_without_any_worker_the_request_waits_unassigned(sv_world):
    person, _ = make_resident(sv_world["regions"]["grid_a2"])
    req, _ = svc.request_submit(person=person, category="food")
    assert req.assignee is None and req.status == "submitted"


def test_the_same_submission_key_makes_one_request(sv_world):
    person, _ = make_resident(sv_world["regions"]["grid_a1"])
    first, created1 = svc.request_submit(person=person, category="food", client_key="k-1")
    again, created2 = svc.request_submit(person=person, category="food", client_key="k-1")
    other, created3 = svc.request_submit(person=person, category="food", client_key="k-2")
    assert (created1, created2, created3) == (True, False, True)
    assert again.pk == first.pk and other.pk != first.pk
    assert ServiceRequest.objects.filter(person=person).count() == 2


def test_the_same_key_of_another_person_is_another_request(sv_world):
    a, _ = make_resident(sv_world["regions"]["grid_a1"])
    b, _ = make_resident(sv_world["regions"]["grid_a1"])
    ra, _ = svc.request_submit(person=a, category="food", client_key="same")
    rb, created = svc.request_submit(person=b, category="food", client_key="same")
    assert created and ra.pk != rb.pk


def test_an_urgent_medical_need_requests_an_escort_task_and_event(sv_world):
    person, _ = make_resident(sv_world["regions"]["grid_a1"], vulnerable=8)
    req, _ = svc.request_submit(person=person, category="medical_visit", subcategory="dialysis",
                                description="周三透析")
    assert req.escort_requested and req.priority == 1
    task = Task.objects.get(source="service", source_key=req.ref)
    assert task.region_code == req.region_code and task.deadline == req.deadline
    assert task.assignee == sv_world["worker_a1"]
    event = DomainEvent.objects.get(type="command.escort_requested")
    assert event.subject_type == "people.person" and event.subject_id == str(person.pk)
    assert event.payload["request"] == req.ref and event.payload["subcategory"] == "dialysis"


def test_a_food_request_requests_no_escort(sv_world):
    person, _ = make_resident(sv_world["regions"]["grid_a1"])
    req, _ = svc.request_submit(person=person, category="food", subcategory="daily_food")
    assert not req.escort_requested
    assert not Task.objects.filter(source="service").exists()
    assert not DomainEvent.objects.filter(type="command.escort_requested").exists()


@pytest.mark.parametrize("field,kwargs", [
    ("category", {"category": "haircut"}),
    ("subcategory", {"category": "food", "subcategory": "dialysis"}),
    ("description", {"category": "food", "description": "药\x00"}),
    ("description", {"category": "food", "description": "x" * 2001}),
    ("contact_phone", {"category": "food", "contact_phone": "12"}),
])
def test_bad_input_is_refused_naming_the_field(sv_world, field, kwargs):
    person, _ = make_resident(sv_world["regions"]["grid_a1"])
    with pytest.raises(ValidationFailed) as exc:
        svc.request_submit(person=person, **kwargs)
    assert exc.value.extra["field"] == field
    assert not ServiceRequest.objects.exists()


def test_identification_by_id_number_and_registry_phone(sv_world):
    person, number = make_resident(sv_world["regions"]["grid_a1"], phone="138 0000 1111")
    assert svc.identify_by_id_phone(id_number=number.lower(), phone="13800001111", request=_req()) == person


def test_unknown_id_and_wrong_phone_get_the_same_answer(sv_world):
    from jingkong.people.tests.helpers import make_id

    _person, number = make_resident(sv_world["regions"]["grid_a1"], phone="13800001111")
    stranger = make_id(dt.date(1977, 7, 7), 321)
    with pytest.raises(svc.NotIdentified) as wrong_phone:
        svc.identify_by_id_phone(id_number=number, phone="13900009999", request=_req())
    with pytest.raises(svc.NotIdentified) as unknown:
        svc.identify_by_id_phone(id_number=stranger, phone="13800001111", request=_req())
    assert wrong_phone.value.message == unknown.value.message
    assert wrong_phone.value.extra == unknown.value.extra


def test_a_mistyped_id_number_is_refused_by_its_check_digit(sv_world):
    _person, number = make_resident(sv_world["regions"]["grid_a1"])
    bad = number[:17] + ("0" if number[17] != "0" else "1")
    with pytest.raises(svc.NotIdentified) as exc:
        svc.identify_by_id_phone(id_number=bad, phone="1", request=_req())
    assert exc.value.extra["field"] == "id_number"
    with pytest.raises(ValidationFailed):
        svc.identify_by_id_phone(id_number=number + "\x00", phone="1", request=_req())


def test_repeated_failures_are_rate_limited_per_client_address(sv_world):
    person, number = make_resident(sv_world["regions"]["grid_a1"], phone="13800001111")
    for _ in range(svc.FAILURE_LIMIT):
        with pytest.raises(svc.NotIdentified):
            svc.identify_by_id_phone(id_number=number, phone="13900000000", request=_req("10.9.9.9"))
    with pytest.raises(svc.TooManyAttempts):  # even with the right phone now
        svc.identify_by_id_phone(id_number=number, phone="13800001111", request=_req("10.9.9.9"))
    # another address is not affected
    assert svc.identify_by_id_phone(id_number=number, phone="13800001111", request=_req("10.1.1.1")) == person


def test_identification_by_code_token(sv_world, monkeypatch):
    import sys
    import types

    person, _ = make_resident(sv_world["regions"]["grid_a1"])

    class InvalidToken(ValueError):
        def __init__(self, reason):
            super().__init__(reason)
            self.reason = reason

    def verify(token, *, at=None, public_keys=None):
        if token == "good":
            return SimpleNamespace(person_id=person.pk, colour="red")
        raise InvalidToken("expired" if token == "old" else "bad_signature")

    fake = types.ModuleType("jingkong.codes.tokens")
    fake.verify, fake.InvalidToken = verify, InvalidToken
    monkeypatch.setitem(sys.modules, "jingkong.codes.tokens", fake)
    import jingkong.codes

    monkeypatch.setattr(jingkong.codes, "tokens", fake, raising=False)
    assert svc.identify_by_token(token="good", request=_req()) == person
    from django.utils import translation

    with translation.override("en"), pytest.raises(svc.NotIdentified, match="expired"):
        svc.identify_by_token(token="old", request=_req())
    with pytest.raises(svc.NotIdentified) as exc:
        svc.identify_by_token(token="forged", request=_req())
    assert exc.value.extra["field"] == "token"


def test_status_flow_with_history_and_events(sv_world, officer_a):
    person, _ = make_resident(sv_world["regions"]["grid_a1"])
    req, _ = svc.request_submit(person=person, category="medicine")
    req = svc.request_status(actor=officer_a, req=req, status="in_progress", note="去药店")
    req = svc.request_status(actor=officer_a, req=req, status="delivered")
    assert req.delivered_at == NOW
    with pytest.raises(Conflict):
        svc.request_status(actor=officer_a, req=req, status="cancelled", note="x")
    req = svc.request_resident_answer(req=req, action="confirm", satisfaction=5)
    assert req.status == "confirmed" and req.satisfaction == 5 and req.confirmed_at == NOW
    assert [u.status for u in req.updates.order_by("id")] == ["submitted", "assigned", "in_progress", "delivered",
                                                              "confirmed"]
    types = set(DomainEvent.objects.filter(subject_id=str(req.pk), subject_type="command.servicerequest")
                .values_list("type", flat=True))
    assert {"command.service_in_progress", "command.service_delivered", "command.service_confirmed"} <= types


def test_cancelling_needs_a_reason(sv_world, officer_a):
    person, _ = make_resident(sv_world["regions"]["grid_a1"])
    req, _ = svc.request_submit(person=person, category="food")
    with pytest.raises(ValidationFailed) as exc:
        svc.request_status(actor=officer_a, req=req, status="cancelled")
    assert exc.value.extra["field"] == "note"


def test_the_resident_may_say_it_did_not_arrive(sv_world, officer_a):
    person, _ = make_resident(sv_world["regions"]["grid_a1"])
    req, _ = svc.request_submit(person=person, category="food")
    req = svc.request_status(actor=officer_a, req=req, status="delivered")
    req = svc.request_resident_answer(req=req, action="not_received")
    assert req.status == "in_progress"
    with pytest.raises(ValidationFailed):  # satisfaction required and 1–5
        svc.request_resident_answer(req=svc.request_status(actor=officer_a, req=req, status="delivered"),
                                    action="confirm", satisfaction=6)


def test_reassignment_stays_inside_the_scope(sv_world, officer_a):
    from jingkong.access.guard import Scope
    from jingkong.core.exceptions import NotFound

    grid = sv_world["regions"]["grid_a1"]
    person, _ = make_resident(grid)
    req, _ = svc.request_submit(person=person, category="food")
    volunteer = make_worker(grid.code, role="volunteer")
    req = svc.request_assign(actor=officer_a, scope=Scope("330206002"), req=req, worker_id=volunteer.pk)
    assert req.assignee == volunteer and req.updates.filter(status="assigned").count() == 2
    with pytest.raises(NotFound):
        svc.request_assign(actor=officer_a, scope=Scope("330206002"), req=req, worker_id=sv_world["worker_b1"].pk)


def test_a_delivery_without_answer_closes_after_the_window(sv_world, officer_a):
    from jingkong.policy.selectors import active_profile

    person, _ = make_resident(sv_world["regions"]["grid_a1"])
    req, _ = svc.request_submit(person=person, category="food")
    svc.request_status(actor=officer_a, req=req, status="delivered")
    window = active_profile(region_code=req.region_code).rules.services.confirmation_window_hours
    assert svc.requests_autoclose(at=NOW + dt.timedelta(hours=window - 1)) == 0
    assert svc.requests_autoclose(at=NOW + dt.timedelta(hours=window + 1)) == 1
    req.refresh_from_db()
    assert req.status == "confirmed" and req.auto_confirmed and req.satisfaction is None
    assert svc.requests_autoclose(at=NOW + dt.timedelta(hours=window + 2)) == 0


def test_the_requester_finds_the_request_by_number_and_phone(sv_world):
    person, _ = make_resident(sv_world["regions"]["grid_a1"], phone="13800002222")
    req, _ = svc.request_submit(person=person, category="food", contact_phone="13700003333")
    for phone in ("13800002222", "137-0000-3333"):
        assert svc.request_for_requester(ref=req.ref.lower(), phone=phone, request=_req()).pk == req.pk
    with pytest.raises(svc.NotIdentified) as wrong:
        svc.request_for_requester(ref=req.ref, phone="13900000000", request=_req())
    with pytest.raises(svc.NotIdentified) as unknown:
        svc.request_for_requester(ref="FW000000-XXXXXX", phone="13800002222", request=_req())
    assert wrong.value.message == unknown.value.message


def test_autoclose_command(sv_world, officer_a, capsys):
    from django.core.management import call_command

    from jingkong.core import clock

    person, _ = make_resident(sv_world["regions"]["grid_a1"])
    req, _ = svc.request_submit(person=person, category="food")
    svc.request_status(actor=officer_a, req=req, status="delivered")
    with clock.frozen(NOW + dt.timedelta(days=30)):
        call_command("services_autoclose")
    assert "1 delivered request(s) closed" in capsys.readouterr().out
