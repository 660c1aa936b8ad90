"""Applying tube results: validation, idempotency, conflicts, deconvolution, events and audit (both databases)."""

from __future__ import annotations

import datetime as dt

import pytest

from jingkong.conftest import T0, make_user
from jingkong.core import clock
from jingkong.core.exceptions import PermissionDenied
from jingkong.testing.models import PersonTestState, RetestTask, Tube, TubeResult
from jingkong.testing.results import results_apply
from jingkong.testing.tests.labs_helpers import make_campaign, make_lab, make_persons, make_tube, row, state_of

pytestmark = pytest.mark.django_db
LATER = T0 + dt.timedelta(hours=6)


@pytest.fixture
def world(regions):
    with clock.frozen(LATER):
        lab = make_lab(regions["district"])
        campaign = make_campaign(regions["district"])
        people = make_persons(regions["grid_b1"], 30)
        yield {"lab": lab, "campaign": campaign, "people": people, "regions": regions}


def apply(world, rows, **kwargs):
    kwargs.setdefault("actor", None)
    return results_apply(lab=world["lab"], rows=rows, **kwargs)


def events(type_):
    from jingkong.core.models import DomainEvent

    return list(DomainEvent.objects.filter(type=type_).order_by("id"))


def test_negative_pool_makes_every_member_negative(world):
    people = world["people"][:10]
    tube = make_tube("T-NEG", people, campaign=world["campaign"])
    report = apply(world, [row("T-NEG", "negative", ct={})])
    assert (report.accepted, report.unchanged, report.errors) == (1, 0, [])
    tube.refresh_from_db()
    assert tube.outcome == "negative" and tube.status == "resulted" and tube.resulted_at == LATER
    assert tube.lab_id == world["lab"].pk
    states = PersonTestState.objects.filter(person__in=people)
    assert states.count() == 10 and {s.status for s in states} == {"negative"}
    first = state_of(people[0])
    assert first.last_negative_sampled_at == T0 and first.last_sampled_at == T0 and not first.controlled_in_place
    assert first.region_code == world["regions"]["grid_b1"].code
    assert not RetestTask.objects.exists()
    assert not events("testing.individual_positive") and not events("testing.pool_positive")
    assert len(events("testing.results_applied")) == 1


def test_positive_pool_controls_members_and_creates_one_retest_each(world):
    people = world["people"][:10]
    tube = make_tube("T-POS", people, campaign=world["campaign"], capacity=10)
    report = apply(world, [row("T-POS", "positive", ct={"ORF1ab": 31.2, "N": 29.8})])
    assert report.accepted == 1 and report.persons_controlled == 10 and report.tasks_created == 10
    for p in people:
        s = state_of(p)
        assert s.status == "pool_positive" and s.controlled_in_place and s.controlled_since == LATER
    tasks = RetestTask.objects.filter(source_tube=tube)
    assert tasks.count() == 10 and {t.status for t in tasks} == {"open"} and {t.reason for t in tasks} == {"pool_positive"}
    assert {t.campaign_id for t in tasks} == {world["campaign"].pk}
    (event,) = events("testing.pool_positive")
    assert event.subject_type == "testing.tube" and event.subject_id == str(tube.pk)
    assert event.region_code == tube.region_code
    assert event.payload["barcode"] == "T-POS" and event.payload["campaign"] == "R1"
    assert event.payload["member_count"] == 10
    assert not events("testing.individual_positive")
    # Every controlled person is audited individually.
    from jingkong.access.models import AuditLog

    audited = set(AuditLog.objects.filter(action="testing.person_status", object_type="people.person")
                  .exclude(object_id="").values_list("object_id", flat=True))
    assert audited == {str(p.pk) for p in people}
    # Re-applying creates nothing new.
    again = apply(world, [row("T-POS", "positive", ct={"ORF1ab": 31.2, "N": 29.8})])
    assert (again.accepted, again.unchanged) == (0, 1)
    assert RetestTask.objects.count() == 10 and len(events("testing.pool_positive")) == 1


def test_individual_positive_event_contract(world, regions):
    person = world["people"][0]
    tube = make_tube("T-ONE", [person], campaign=world["campaign"], capacity=1)
    sample = tube.samples.get()
    got = []
    from jingkong.core import events as ev

    def handler(batch):
        got.extend(batch)

    ev.subscribe("testing.individual_positive", handler)
    try:
        report = apply(world, [row("T-ONE", "positive", ct={"orf1ab": "28.5", "N": 27})])
    finally:
        ev.unsubscribe("testing.individual_positive", handler)
    assert report.persons_positive == 1
    (event,) = got
    assert event.subject_type == "people.person" and event.subject_id == str(person.pk)
    assert event.region_code == regions["grid_b1"].code
    assert event.payload == {
        "sample_id": sample.pk, "tube": "T-ONE", "campaign": "R1", "sampled_at": T0.isoformat(),
        "resulted_at": LATER.isoformat(), "lab": "LAB1", "ct_values": {"ORF1ab": 28.5, "N": 27.0},
        "via": "single_tube",
    }
    s = state_of(person)
    assert s.status == "positive" and s.positive_sampled_at == T0 and s.controlled_in_place


def test_retest_resolves_the_task_and_lifts_control(world):
    people = world["people"][:5]
    make_tube("T-POOL", people, campaign=world["campaign"], capacity=10)
    apply(world, [row("T-POOL", "positive")])
    task = RetestTask.objects.get(person=people[0])
    # The door-to-door team samples the person in a single retest tube (the sampling service links the task).
    retest = make_tube("R-1", [people[0]], kind="retest", capacity=1, sampled_at=T0 + dt.timedelta(hours=3),
                       retest_of=task)
    RetestTask.objects.filter(pk=task.pk).update(status="sampled")
    report = apply(world, [row("R-1", "negative")])
    assert report.controls_lifted == 1 and report.tasks_resolved == 1
    task.refresh_from_db()
    assert task.status == "negative" and task.resolved_at == LATER and task.sample_id == retest.samples.get().pk
    s = state_of(people[0])
    assert s.status == "negative" and not s.controlled_in_place and s.controlled_since is None
    assert state_of(people[1]).status == "pool_positive"  # the others wait for their own retest


def test_retest_positive_is_an_individual_positive_via_retest(world):
    people = world["people"][:5]
    make_tube("T-POOL", people, campaign=world["campaign"], capacity=10)
    apply(world, [row("T-POOL", "positive")])
    task = RetestTask.objects.get(person=people[2])
    make_tube("R-2", [people[2]], kind="retest", capacity=1, sampled_at=T0 + dt.timedelta(hours=3), retest_of=task)
    apply(world, [row("R-2", "positive", ct={"N": 25})])
    (event,) = events("testing.individual_positive")
    assert event.payload["via"] == "retest" and event.subject_id == str(people[2].pk)
    task.refresh_from_db()
    assert task.status == "positive"
    assert state_of(people[2]).status == "positive"


def test_a_routine_negative_does_not_clear_a_pool_positive(world):
    person = world["people"][0]
    make_tube("T-POOL", [person] + world["people"][1:3], capacity=10)
    apply(world, [row("T-POOL", "positive")])
    make_tube("T-NEXT", [person] + world["people"][5:8], capacity=10, sampled_at=T0 + dt.timedelta(hours=2))
    apply(world, [row("T-NEXT", "negative")])
    s = state_of(person)
    assert s.status == "pool_positive" and s.controlled_in_place
    assert RetestTask.objects.get(person=person).status == "open"


def test_invalid_tube_orders_resampling(world):
    people = world["people"][:4]
    tube = make_tube("T-INV", people, capacity=10)
    report = apply(world, [row("T-INV", "invalid")])
    assert report.tubes_invalid == 1 and report.persons_resample == 4
    assert {s.status for s in PersonTestState.objects.filter(person__in=people)} == {"resample"}
    tasks = RetestTask.objects.filter(source_tube=tube)
    assert tasks.count() == 4 and {t.reason for t in tasks} == {"invalid_tube"}
    (event,) = events("testing.tube_invalid")
    assert event.payload["barcode"] == "T-INV" and event.payload["member_count"] == 4


def test_invalid_retest_reopens_the_task(world):
    person = world["people"][0]
    make_tube("T-POOL", [person, world["people"][1]], capacity=10)
    apply(world, [row("T-POOL", "positive")])
    task = RetestTask.objects.get(person=person)
    make_tube("R-3", [person], kind="retest", capacity=1, sampled_at=T0 + dt.timedelta(hours=2), retest_of=task)
    RetestTask.objects.filter(pk=task.pk).update(status="sampled")
    report = apply(world, [row("R-3", "invalid")])
    assert report.tasks_reopened == 1 and report.tasks_created == 0
    task.refresh_from_db()
    assert task.status == "open" and task.sample_id is None
    assert state_of(person).status == "pool_positive"


def test_row_errors_name_row_field_and_reason_and_good_rows_are_kept(world, regions):
    people = world["people"]
    make_tube("GOOD", people[:3])
    make_tube("EMPTY-TUBE", [])
    other = make_lab(regions["district"], "LAB2")
    make_tube("ELSEWHERE", people[3:5], lab=other, status="received", received_at=T0)
    make_tube("EARLY", people[5:6], sampled_at=LATER - dt.timedelta(hours=1))
    rows = [
        row("GOOD", "阴性", n=2),
        row("NOPE", "negative", n=3),
        row("", "negative", n=4),
        row("GOOD2", "maybe", n=5),
        row("ELSEWHERE", "negative", n=6),
        row("EMPTY-TUBE", "negative", n=7),
        row("GOOD3", "negative", n=8, ct={"N": 99}),
        row("EARLY", "negative", n=9, tested_at=T0),
        row("GOOD4", "negative", n=10, tested_at=LATER + dt.timedelta(hours=1)),
    ]
    report = apply(world, rows)
    assert report.accepted == 1
    by_row = {e.row: (e.field, e.reason) for e in report.errors}
    assert set(by_row) == {3, 4, 5, 6, 7, 8, 9, 10}
    assert by_row[3][0] == "tube" and "unknown tube NOPE" in by_row[3][1]
    assert by_row[4] == ("tube", "empty tube barcode")
    assert by_row[5][0] == "outcome" and "maybe" in by_row[5][1]
    assert by_row[6][0] == "tube" and "another lab" in by_row[6][1]
    assert by_row[7][0] == "tube" and "no swab" in by_row[7][1]
    assert by_row[8][0] == "ct_values.N" and "outside" in by_row[8][1]
    assert by_row[9][0] == "tested_at" and "before the tube's first swab" in by_row[9][1]
    assert by_row[10][0] == "tested_at" and "future" in by_row[10][1]
    assert Tube.objects.get(barcode="GOOD").outcome == "negative"
    assert Tube.objects.get(barcode="ELSEWHERE").outcome == ""


def test_a_conflicting_resend_is_reported_and_changes_nothing(world):
    people = world["people"][:3]
    make_tube("T1", people)
    apply(world, [row("T1", "negative", ct={"N": 35.1})])
    before = list(PersonTestState.objects.order_by("pk").values_list("person_id", "status", "updated_at"))
    report = apply(world, [row("T1", "positive", n=4, ct={"N": 35.1})])
    assert report.accepted == 0 and report.unchanged == 0
    (error,) = report.errors
    assert error.row == 4 and error.field == "outcome" and "conflicts" in error.reason and "negative ≠ positive" in error.reason
    result = TubeResult.objects.get(tube__barcode="T1")
    assert result.outcome == "negative" and result.ct_values == {"N": 35.1}
    assert list(PersonTestState.objects.order_by("pk").values_list("person_id", "status", "updated_at")) == before
    # Different Ct values are a conflict too; the identical re-send is unchanged.
    report = apply(world, [row("T1", "negative", n=5, ct={"N": 33}), row("T1", "negative", n=6, ct={"N": 35.1})])
    assert report.unchanged == 0 and {e.row for e in report.errors} == {5, 6}  # the file contradicts itself
    report = apply(world, [row("T1", "negative", n=7, ct={"N": 35.1})])
    assert (report.accepted, report.unchanged, report.errors) == (0, 1, [])


def test_duplicate_identical_rows_in_one_upload_count_once(world):
    make_tube("T1", world["people"][:2])
    report = apply(world, [row("T1", "negative", n=2), row("T1", "negative", n=3)])
    assert (report.accepted, report.unchanged, report.errors) == (1, 1, [])
    assert TubeResult.objects.count() == 1


def test_a_technician_may_enter_results_only_for_their_lab(world, regions):
    tech = make_user("tech_a", "lab_technician", regions["district"])
    stranger = make_user("tech_b", "lab_technician", regions["district"])
    world["lab"].technicians.add(tech)
    make_tube("T1", world["people"][:2])
    with pytest.raises(PermissionDenied):
        apply(world, [row("T1", "negative")], actor=stranger)
    assert not TubeResult.objects.exists()
    report = apply(world, [row("T1", "negative")], actor=tech)
    assert report.accepted == 1 and TubeResult.objects.get().entered_by == tech


def test_chunks_commit_separately_and_rerun_is_idempotent(world):
    people = world["people"]
    for i in range(6):
        make_tube(f"C{i}", people[i * 5:(i + 1) * 5])
    rows = [row(f"C{i}", "negative" if i != 3 else "positive", n=i + 2) for i in range(6)]
    report = apply(world, rows, chunk_size=2)
    assert report.accepted == 6 and report.tasks_created == 5
    again = apply(world, rows, chunk_size=4)
    assert (again.accepted, again.unchanged, again.errors) == (0, 6, [])
    assert RetestTask.objects.count() == 5 and PersonTestState.objects.count() == 30


def test_persons_in_two_tubes_of_one_upload(world):
    person = world["people"][0]
    make_tube("A", [person, world["people"][1]], capacity=10, sampled_at=T0)
    make_tube("B", [person, world["people"][2]], capacity=10, sampled_at=T0 + dt.timedelta(hours=1))
    report = apply(world, [row("A", "positive"), row("B", "negative")])
    assert report.accepted == 2
    s = state_of(person)
    assert s.status == "pool_positive" and s.last_sampled_at == T0 + dt.timedelta(hours=1)
    assert state_of(world["people"][2]).status == "negative"


def test_a_failure_inside_a_chunk_rolls_the_whole_chunk_back(world, monkeypatch):
    from jingkong.testing import results

    make_tube("T1", world["people"][:3])

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(results, "_deconvolve", boom)
    with pytest.raises(RuntimeError):
        apply(world, [row("T1", "negative")])
    assert not TubeResult.objects.exists() and Tube.objects.get(barcode="T1").outcome == ""
    monkeypatch.undo()
    assert apply(world, [row("T1", "negative")]).accepted == 1


def test_a_second_round_moves_negative_states_forward_and_a_late_older_result_changes_nothing(world, regions):
    people = world["people"][:3]
    make_tube("R1", people, sampled_at=T0 + dt.timedelta(hours=1))
    apply(world, [row("R1", "negative")])
    make_tube("R2", people, sampled_at=T0 + dt.timedelta(hours=3))
    report = apply(world, [row("R2", "negative")])
    assert report.persons_updated == 3
    s = state_of(people[0])
    assert s.status == "negative" and s.last_sampled_at == s.last_negative_sampled_at == T0 + dt.timedelta(hours=3)
    # A tube sampled earlier than both, resulted late: the states keep the newer swab.
    make_tube("R0", people, sampled_at=T0)
    before = list(PersonTestState.objects.order_by("pk").values_list("last_sampled_at", "updated_at"))
    report = apply(world, [row("R0", "negative")])
    assert report.accepted == 1 and report.persons_updated == 0
    assert list(PersonTestState.objects.order_by("pk").values_list("last_sampled_at", "updated_at")) == before


def test_swab_times_written_in_another_text_form_are_normalised(world):
    from django.db import connection

    people = world["people"][:2]
    tube = make_tube("ODD", people)
    if connection.vendor == "sqlite":  # a raw writer storing ISO text with an offset
        with connection.cursor() as c:
            c.execute("UPDATE testing_sample SET sampled_at = '2022-01-01T08:30:00+00:00' WHERE tube_id = %s",
                      [tube.pk])
    apply(world, [row("ODD", "negative")])
    s = state_of(people[0])
    assert s.last_sampled_at == T0 and s.last_negative_sampled_at == T0
    # Range queries over the written values work (SQLite compares the stored text).
    expected = 2 if connection.vendor == "sqlite" else 1  # both swabs were rewritten to T0 on SQLite only
    assert PersonTestState.objects.filter(last_sampled_at__gte=T0, last_sampled_at__lt=T0 + dt.timedelta(seconds=1)
                                          ).count() == expected


@pytest.mark.parametrize("order", [("A", "B", "R"), ("A", "R", "B"), ("B", "A", "R")])
def test_the_outcome_does_not_depend_on_the_order_results_arrive_in(world, order):
    """Regression: pool A (swab at 0 h) positive, the person's single-tube retest R (3 h) negative, and pool B (swab at
    2 h, before the retest) positive but resulted after the retest. The retest was taken after B's swab, so it clears
    B too; arriving last, B put the person back under control with a new open retest task."""
    person, others = world["people"][0], world["people"][1:5]
    make_tube("A", [person, others[0]], capacity=10, sampled_at=T0)
    make_tube("B", [person, others[1]], capacity=10, sampled_at=T0 + dt.timedelta(hours=2))
    for code in order:
        if code == "R":
            task = RetestTask.objects.get(person=person, source_tube__barcode="A")
            make_tube("R", [person], kind="retest", capacity=1, sampled_at=T0 + dt.timedelta(hours=3), retest_of=task)
            RetestTask.objects.filter(pk=task.pk).update(status="sampled")
        apply(world, [row(code, "negative" if code == "R" else "positive")])
    s = state_of(person)
    assert s.status == "negative" and not s.controlled_in_place
    assert s.last_negative_sampled_at == T0 + dt.timedelta(hours=3)
    retest_swab = Tube.objects.get(barcode="R").samples.get().pk
    assert {t.source_tube.barcode: (t.status, t.sample_id) for t in RetestTask.objects.filter(person=person)} == {
        "A": ("negative", retest_swab), "B": ("negative", retest_swab)}
    # The pool partners stay controlled until their own retest.
    assert {state_of(p).status for p in others[:2]} == {"pool_positive"}


def test_a_late_invalid_tube_after_a_newer_negative_orders_no_resampling(world):
    """Regression: an invalid tube whose swab is older than the person's negative from a later tube, resulted after
    it, opened a resampling task that nothing would ever resolve (the door-to-door team would swab again)."""
    person = world["people"][0]
    make_tube("OLD", [person, world["people"][1]], capacity=10, sampled_at=T0)
    make_tube("NEW", [person, world["people"][2]], capacity=10, sampled_at=T0 + dt.timedelta(hours=2))
    apply(world, [row("NEW", "negative")])
    report = apply(world, [row("OLD", "invalid")])
    assert report.persons_resample == 1  # the partner, who has no newer swab
    assert state_of(person).status == "negative" and state_of(world["people"][1]).status == "resample"
    tasks = {t.person_id: t for t in RetestTask.objects.filter(source_tube__barcode="OLD")}
    assert tasks[person.pk].status == "negative" and tasks[world["people"][1].pk].status == "open"
    assert tasks[person.pk].sample_id == Tube.objects.get(barcode="NEW").samples.get(person=person).pk


def test_a_result_for_a_tube_still_open_at_the_site_closes_it(world):
    """A pooled tube nobody sealed by hand reaches the lab: its result seals it (at its receipt, else at the test time,
    never after the result was recorded), so it takes no further swab and turnaround sees a closed tube."""
    people = world["people"]
    make_tube("OPEN-1", people[:3], capacity=10, status="open")
    make_tube("OPEN-2", people[3:5], capacity=10, status="open")
    make_tube("OPEN-3", people[5:7], capacity=10, status="open", lab=world["lab"], received_at=T0 + dt.timedelta(hours=2))
    tested = T0 + dt.timedelta(hours=5)
    report = apply(world, [row("OPEN-1", "negative", tested_at=tested), row("OPEN-2", "negative"),
                           row("OPEN-3", "negative", n=3, tested_at=tested)])
    assert report.accepted == 3
    tubes = {t.barcode: t for t in Tube.objects.filter(barcode__startswith="OPEN")}
    assert {t.status for t in tubes.values()} == {"resulted"}
    assert tubes["OPEN-1"].sealed_at == tested
    assert tubes["OPEN-2"].sealed_at == LATER  # no test time given: the time of the upload
    assert tubes["OPEN-3"].sealed_at == T0 + dt.timedelta(hours=2)  # received by the lab before it was tested
