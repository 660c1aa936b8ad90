"""Chain of custody: packing, hand-over, receipt (with missing tubes), walk-in receipt, who may do what."""

from __future__ import annotations

import datetime as dt

import pytest

from jingkong.access.guard import EVERYTHING, scope_of
from jingkong.conftest import T0, make_user
from jingkong.core import clock
from jingkong.core.exceptions import Conflict, NotFound, PermissionDenied, ValidationFailed
from jingkong.testing import custody
from jingkong.testing.models import TransportBatch, Tube
from jingkong.testing.tests.labs_helpers import make_lab, make_persons, make_site, make_tube

pytestmark = pytest.mark.django_db
H = dt.timedelta(hours=1)


@pytest.fixture(autouse=True)
def _english():
    """The reasons are translated (the UI defaults to Chinese): these tests read the English source strings."""
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def world(regions):
    with clock.frozen(T0 + 4 * H):
        lab = make_lab(regions["district"])
        site = make_site(regions["grid_b1"], "S-B")
        people = make_persons(regions["grid_b1"], 12)
        for i in range(4):
            make_tube(f"T{i}", people[i * 3:(i + 1) * 3], capacity=3, site=site)
        make_tube("OPEN", [], capacity=10, site=site, status="open")
        yield {"lab": lab, "site": site, "people": people, "regions": regions}


def pack(world, barcodes, **kw):
    kw.setdefault("actor", None)
    kw.setdefault("scope", EVERYTHING)
    return custody.batch_pack(lab=world["lab"], barcodes=barcodes, site=kw.pop("site", world["site"]), **kw)


def test_the_full_journey_stamps_every_step(world):
    officer = make_user("officer_b", "street_officer", world["regions"]["street_b"])
    batch, out = pack(world, ["T0", "T1", "T2"], actor=officer, scope=scope_of(officer), at=T0 + H)
    assert out == {"added": ["T0", "T1", "T2"], "unchanged": []}
    assert batch.status == "packed" and batch.tube_count == 3 and batch.packed_by == officer
    assert batch.region_code == world["site"].region_code and batch.packed_at == T0 + H
    batch = custody.batch_hand_over(actor=officer, batch=batch, courier="顺丰 张师傅", at=T0 + 2 * H)
    assert batch.status == "handed_over" and batch.handed_over_at == T0 + 2 * H
    assert set(Tube.objects.filter(batch=batch).values_list("status", flat=True)) == {"in_transit"}
    tech = make_user("tech", "lab_technician", world["regions"]["district"])
    world["lab"].technicians.add(tech)
    report = custody.batch_receive(actor=tech, batch=batch, at=T0 + 3 * H)
    assert sorted(report.received) == ["T0", "T1", "T2"] and report.missing == []
    batch.refresh_from_db()
    assert batch.status == "received" and batch.received_at == T0 + 3 * H and batch.received_by == tech
    tube = Tube.objects.get(barcode="T0")
    assert (tube.status, tube.lab_id, tube.received_at) == ("received", world["lab"].pk, T0 + 3 * H)
    from jingkong.core.models import DomainEvent

    assert list(DomainEvent.objects.filter(subject_type="testing.transportbatch").order_by("id")
                .values_list("type", flat=True)) == ["testing.batch_packed", "testing.batch_handed_over",
                                                      "testing.batch_received"]
    # Receiving again changes nothing.
    again = custody.batch_receive(actor=tech, batch=batch)
    assert again.received == [] and sorted(again.unchanged) == ["T0", "T1", "T2"]


def test_packing_refuses_open_tubes_tubes_of_other_batches_and_unknown_ones_all_or_nothing(world):
    pack(world, ["T0"], code="BOX-1")
    with pytest.raises(ValidationFailed) as exc:
        pack(world, ["T1", "T0", "OPEN", "NOPE"], code="BOX-2")
    errors = {e["tube"]: e["reason"] for e in exc.value.extra["errors"]}
    assert set(errors) == {"T0", "OPEN", "NOPE"}
    assert "another batch" in errors["T0"] and "still open" in errors["OPEN"] and "unknown" in errors["NOPE"]
    assert Tube.objects.get(barcode="T1").batch_id is None and not TransportBatch.objects.filter(code="BOX-2").exists()


def test_packing_again_with_the_same_code_adds_tubes_until_handed_over(world):
    batch, _ = pack(world, ["T0"], code="BOX-1")
    batch, out = pack(world, ["T0", "T1"], code="BOX-1")
    assert out == {"added": ["T1"], "unchanged": ["T0"]} and batch.tube_count == 2
    custody.batch_hand_over(actor=None, batch=batch, courier="A")
    assert custody.batch_hand_over(actor=None, batch=batch, courier="A").status == "handed_over"  # idempotent
    with pytest.raises(Conflict):
        custody.batch_hand_over(actor=None, batch=batch, courier="B")
    with pytest.raises(Conflict):
        pack(world, ["T2"], code="BOX-1")


def test_receipt_reports_missing_and_unexpected_tubes(world):
    batch, _ = pack(world, ["T0", "T1", "T2"])
    custody.batch_hand_over(actor=None, batch=batch, courier="A")
    report = custody.batch_receive(actor=None, batch=batch, barcodes=["T0", "T2", "T3"])
    assert sorted(report.received) == ["T0", "T2"] and report.missing == ["T1"]
    assert [(e["tube"], e["field"]) for e in report.errors] == [("T3", "barcodes")]
    assert Tube.objects.get(barcode="T1").status == "in_transit"
    assert Tube.objects.get(barcode="T3").status == "sealed"
    # The missing tube turns up later: a walk-in receipt.
    late = custody.tubes_receive(actor=None, lab=world["lab"], barcodes=["T1"])
    assert late.received == ["T1"] and Tube.objects.get(barcode="T1").status == "received"


def test_walk_in_receipt(world, regions):
    make_tube("DOOR-1", world["people"][:1], capacity=1)  # a door-to-door tube never packed
    other = make_lab(regions["district"], "LAB2")
    elsewhere, _ = custody.batch_pack(actor=None, scope=EVERYTHING, lab=other, barcodes=["T3"], site=world["site"])
    report = custody.tubes_receive(actor=None, lab=world["lab"], barcodes=["DOOR-1", "T3", "NOPE", "OPEN", "DOOR-1"])
    assert report.received == ["DOOR-1"]
    reasons = {e["tube"]: e["reason"] for e in report.errors}
    assert "on its way to lab LAB2" in reasons["T3"] and "unknown" in reasons["NOPE"] and "no swab" in reasons["OPEN"]
    again = custody.tubes_receive(actor=None, lab=world["lab"], barcodes=["DOOR-1"])
    assert again.unchanged == ["DOOR-1"] and again.received == []
    other_lab = custody.tubes_receive(actor=None, lab=other, barcodes=["DOOR-1"])
    assert "another lab" in other_lab.errors[0]["reason"]


def test_a_technician_receives_only_for_their_labs(world, regions):
    batch, _ = pack(world, ["T0"])
    stranger = make_user("tech_x", "lab_technician", regions["district"])
    with pytest.raises(PermissionDenied):
        custody.batch_receive(actor=stranger, batch=batch)
    with pytest.raises(PermissionDenied):
        custody.tubes_receive(actor=stranger, lab=world["lab"], barcodes=["T1"])
    assert Tube.objects.get(barcode="T0").received_at is None
    world["lab"].technicians.add(stranger)
    assert custody.batch_receive(actor=stranger, batch=batch).received == ["T0"]


def test_a_technician_sees_batches_addressed_to_their_lab_whatever_their_region(world, regions):
    batch, _ = pack(world, ["T0"])
    tech = make_user("tech_a", "lab_technician", regions["street_a"])
    with pytest.raises(NotFound):
        custody.batch_get(scope=scope_of(tech), actor=tech, batch_id=batch.pk)
    world["lab"].technicians.add(tech)
    assert custody.batch_get(scope=scope_of(tech), actor=tech, batch_id=batch.pk) == batch
    assert list(custody.batch_list(scope=scope_of(tech), actor=tech)) == [batch]


def test_a_sampler_packs_only_at_their_site_and_only_its_tubes(world, regions):
    sampler = make_user("sampler_b", "sampler", regions["street_b"])
    with pytest.raises(PermissionDenied):
        pack(world, ["T0"], actor=sampler, scope=scope_of(sampler))
    with pytest.raises(ValidationFailed):
        pack(world, ["T0"], actor=sampler, scope=scope_of(sampler), site=None)
    world["site"].samplers.add(sampler)
    other_site = make_site(regions["grid_b2"], "S-B2")
    make_tube("X1", world["people"][:1], capacity=1, site=other_site)
    with pytest.raises(ValidationFailed) as exc:
        pack(world, ["T0", "X1"], actor=sampler, scope=scope_of(sampler))
    assert "another site" in exc.value.extra["errors"][0]["reason"]
    batch, _ = pack(world, ["T0"], actor=sampler, scope=scope_of(sampler))
    assert batch.packed_by == sampler


def test_tubes_outside_the_scope_are_unknown(world, regions):
    officer_a = make_user("officer_a", "street_officer", regions["street_a"])
    with pytest.raises((ValidationFailed, NotFound)):
        custody.batch_pack(actor=officer_a, scope=scope_of(officer_a), lab=world["lab"], barcodes=["T0"], site=None)
    assert Tube.objects.get(barcode="T0").batch_id is None


def test_times_must_be_in_order_and_not_in_the_future(world):
    batch, _ = pack(world, ["T0"], at=T0 + 2 * H)
    with pytest.raises(ValidationFailed):
        custody.batch_hand_over(actor=None, batch=batch, courier="A", at=T0 + H)
    with pytest.raises(ValidationFailed):
        custody.batch_hand_over(actor=None, batch=batch, courier="A", at=T0 + 9 * H)
    assert custody.batch_hand_over(actor=None, batch=batch, courier="A", at=T0 + 3 * H).handed_over_at == T0 + 3 * H


def test_an_inactive_lab_is_refused(world):
    world["lab"].active = False
    world["lab"].save()
    with pytest.raises(ValidationFailed):
        pack(world, ["T2"])


def test_a_receipt_before_the_hand_over_is_refused(world):
    """Regression: a batch handed to the courier at 3 h could be recorded as received at 2 h (the chain of custody
    and the turnaround's transit time went backwards)."""
    batch, _ = pack(world, ["T0"], at=T0 + H)
    custody.batch_hand_over(actor=None, batch=batch, courier="A", at=T0 + 3 * H)
    with pytest.raises(ValidationFailed) as exc:
        custody.batch_receive(actor=None, batch=batch, at=T0 + 2 * H)
    assert exc.value.extra["field"] == "at" and Tube.objects.get(barcode="T0").received_at is None
    assert custody.batch_receive(actor=None, batch=batch, at=T0 + 3 * H).received == ["T0"]


def test_a_commander_receives_other_streets_batches_addressed_to_a_lab_of_their_street(world, regions):
    """Regression: a street-A commander working street A's lab could not find (404) a batch sent from street B to it,
    so receiving it went only through the lab's technicians. Street A's officers still do not see it."""
    lab_a = make_lab(regions["street_a"], "LAB-A")
    batch, _ = custody.batch_pack(actor=None, scope=EVERYTHING, lab=lab_a, barcodes=["T0"], site=world["site"])
    custody.batch_hand_over(actor=None, batch=batch, courier="A")
    commander_a = make_user("cmd_a", "commander", regions["street_a"])
    officer_a = make_user("officer_a", "street_officer", regions["street_a"])
    with pytest.raises(NotFound):
        custody.batch_get(scope=scope_of(officer_a), actor=officer_a, batch_id=batch.pk)
    found = custody.batch_get(scope=scope_of(commander_a), actor=commander_a, batch_id=batch.pk)
    assert custody.batch_receive(actor=commander_a, batch=found).received == ["T0"]
    # A batch of street B addressed to the district lab stays out of the street-A commander's sight.
    other, _ = pack(world, ["T1"])
    with pytest.raises(NotFound):
        custody.batch_get(scope=scope_of(commander_a), actor=commander_a, batch_id=other.pk)
