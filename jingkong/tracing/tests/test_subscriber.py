"""Individual positives from testing become cases inside the same transaction."""

from __future__ import annotations

import pytest
from django.db import transaction

from jingkong.access.models import AuditLog
from jingkong.core.events import emit, emit_many
from jingkong.core.models import DomainEvent, Job
from jingkong.tracing.models import Case, Contact, ContactStatus, Stay
from jingkong.tracing.tests.helpers import at, make_cases, positive

pytestmark = pytest.mark.django_db


def test_a_positive_event_creates_the_case_in_the_emitting_transaction(world, django_capture_on_commit_callbacks):
    p = world.person("甲", household="H1", workplace="W1")
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        emit(**{k: v for k, v in positive(p, sampled_at=at(3, 9)).items()})
        case = Case.objects.get(person=p)  # visible before the commit: same transaction
        assert case.ref.startswith("BL-2022-")
    assert case.region_code == p.grid.code
    assert case.first_positive_at == at(3, 9)
    assert case.isolated_at == at(3, 17)  # the result came in 8 hours after sampling: exposure of others ends there
    assert (case.classification, case.found_by, case.status) == ("asymptomatic", "round", "investigating")
    assert case.source_event_id == DomainEvent.objects.get(type="testing.individual_positive").pk
    # The timeline is drafted from the registry, spanning the look-back window (2 days in the 2021 profile).
    rows = {s.kind: s for s in Stay.objects.filter(case=case)}
    assert set(rows) == {"home", "workplace"}
    assert rows["home"].start == at(1, 9) and rows["home"].source == "registry"
    assert rows["workplace"].venue == world.venues["W1"]
    created = DomainEvent.objects.get(type="tracing.case_created")
    assert created.payload["ref"] == case.ref and created.region_code == p.grid.code
    assert AuditLog.objects.filter(action="case.create", object_id=str(p.pk)).exists()
    # Contact finding is queued as a job once the results transaction has committed.
    assert len(callbacks) == 1
    job = Job.objects.get(kind="tracing.find_contacts")
    assert job.params == {"case_ids": [case.pk]} and job.status == "queued"


def test_a_bulk_upload_creates_one_case_per_person_with_the_earliest_sampling(world):
    a, b = world.person("甲"), world.person("乙", side="b")
    with transaction.atomic():
        emit_many([positive(a, sampled_at=at(3, 12)), positive(b, sampled_at=at(3, 10)),
                   positive(a, sampled_at=at(3, 9), via="retest")])
    assert Case.objects.count() == 2
    assert Case.objects.get(person=a).first_positive_at == at(3, 9)
    refs = sorted(Case.objects.values_list("ref", flat=True))
    assert refs == ["BL-2022-0001", "BL-2022-0002"]


def test_a_person_already_a_case_gets_no_second_case(world):
    a = world.person("甲")
    (case,) = make_cases((a, at(3, 9)))
    make_cases((a, at(4, 9)))
    assert Case.objects.filter(person=a).get() == case
    assert DomainEvent.objects.filter(type="tracing.case_created").count() == 1


def test_a_contact_who_turns_positive_is_closed_and_the_case_says_how_it_was_found(world):
    from jingkong.core import clock

    a, b = world.person("甲"), world.person("乙")
    now = clock.now()
    Contact.objects.create(person=b, tier="close", status=ContactStatus.IN_QUARANTINE, region_code=b.grid.code,
                           queue_region_code=b.grid.code[:9], first_identified_at=now, created_at=now, updated_at=now)
    make_cases((a, at(3, 9)), (b, at(4, 9)))
    assert Case.objects.get(person=b).found_by == "quarantine_test"
    contact = Contact.objects.get(person=b)
    assert (contact.status, contact.close_reason) == ("closed", "became a case")


def test_events_that_name_no_person_are_skipped_not_fatal(world):
    with transaction.atomic():
        emit_many([{"type": "testing.individual_positive", "subject_type": "testing.tube", "subject_id": "x",
                    "payload": {}}])
    assert Case.objects.count() == 0


def test_without_an_active_profile_the_case_is_still_created(regions, now):
    from jingkong.tracing.tests.helpers import World

    world = World(regions)  # no policy activated
    (case,) = make_cases((world.person("甲", household="H1"), at(3, 9)))
    assert case.pk and not Stay.objects.filter(case=case).exists()


def test_a_single_tube_positive_entered_by_a_lab_becomes_a_case(regions):
    """End to end with the testing feature: the results upload emits the event, the case exists in its transaction."""
    import datetime as dt

    from jingkong.conftest import T0
    from jingkong.core import clock
    from jingkong.testing.results import results_apply
    from jingkong.testing.tests.labs_helpers import make_campaign, make_lab, make_persons, make_tube, row
    from jingkong.tracing.tests.helpers import activate

    activate()
    with clock.frozen(T0 + dt.timedelta(hours=6)):
        lab, campaign = make_lab(regions["district"]), make_campaign(regions["district"])
        person = make_persons(regions["grid_b1"], 1)[0]
        tube = make_tube("T-ONE", [person], campaign=campaign, capacity=1)
        report = results_apply(lab=lab, rows=[row("T-ONE", "positive", ct={"N": 27})], actor=None)
    assert report.persons_positive == 1
    case = Case.objects.get(person=person)
    assert (case.first_positive_at, case.found_by, case.region_code) == (T0, "round", regions["grid_b1"].code)
    assert case.source_sample_id == tube.samples.get().pk
    assert case.isolated_at == T0 + dt.timedelta(hours=6)  # controlled in place when the result was applied


def test_a_positive_without_a_registered_grid_is_a_case_of_the_region_where_it_was_sampled(world, tracer_a,
                                                                                         client_for):
    """Regression: a person without a grid (a worker not registered where they live) became a case with an empty
    region code, which no street or district user could see: the case was lost to everyone but administrators."""
    p = world.person("流动", grid=False)
    event = positive(p, sampled_at=at(3, 9))
    event["region_code"] = "330206002001002"  # the scan's region
    with transaction.atomic():
        emit(**event)
    case = Case.objects.get(person=p)
    assert case.region_code == "330206002001002"
    assert client_for(tracer_a).get(f"/api/v1/tracing/cases/{case.pk}").status_code == 200


def test_an_earlier_positive_sample_reported_late_moves_the_window_back(world, django_capture_on_commit_callbacks):
    """Regression: a person's positive screening sample (taken the day before the fever clinic's) whose result came in
    after the case was created was ignored: the asymptomatic case's look-back started a day too late."""
    p = world.person("甲", household="H1")
    (case,) = make_cases((p, at(3, 9)))
    Job.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        make_cases((p, at(2, 8)))  # an earlier sample
    case.refresh_from_db()
    assert case.first_positive_at == at(2, 8)
    assert Stay.objects.get(case=case, kind="home").start == at(2, 8) - (at(3, 0) - at(1, 0))  # 2 days before
    assert Job.objects.get(kind="tracing.find_contacts").params == {"case_ids": [case.pk]}
    assert DomainEvent.objects.filter(type="tracing.case_updated", subject_id=str(case.pk)).exists()
    with django_capture_on_commit_callbacks(execute=True):
        make_cases((p, at(4, 9)))  # a later one changes nothing
    case.refresh_from_db()
    assert case.first_positive_at == at(2, 8) and Job.objects.count() == 1
    assert Case.objects.filter(person=p).count() == 1
