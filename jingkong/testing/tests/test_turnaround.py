"""Turnaround percentiles and overdue tubes (jingkong.analytics.turnaround), both databases."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from jingkong.access.guard import EVERYTHING, Scope
from jingkong.analytics.turnaround import overdue, turnaround
from jingkong.conftest import T0
from jingkong.testing.models import TransportBatch
from jingkong.testing.tests.labs_helpers import make_campaign, make_lab, make_persons, make_site, make_tube

pytestmark = pytest.mark.django_db
H = dt.timedelta(hours=1)


@pytest.fixture
def world(regions):
    lab1 = make_lab(regions["district"], "LAB1", target_hours=12)
    lab2 = make_lab(regions["district"], "LAB2", target_hours=6)
    site_a = make_site(regions["grid_a1"], "SA")
    site_b = make_site(regions["grid_b1"], "SB")
    campaign = make_campaign(regions["district"])
    people = make_persons(regions["grid_a1"], 40)
    return {"lab1": lab1, "lab2": lab2, "site_a": site_a, "site_b": site_b, "campaign": campaign, "people": people,
            "regions": regions}


def _resulted(world, barcode, person, *, site, lab, receipt_h, result_h, campaign=None):
    from jingkong.testing.models import Tube

    tube = make_tube(barcode, [person], capacity=1, site=site, campaign=campaign, status="resulted")
    Tube.objects.filter(pk=tube.pk).update(lab=lab, received_at=T0 + receipt_h * H,
                                           resulted_at=T0 + result_h * H if result_h is not None else None,
                                           status="resulted" if result_h is not None else "received")
    return tube


def test_percentiles_overall_per_site_and_per_lab(world):
    p = world["people"]
    receipts = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    for i, r in enumerate(receipts):  # site A, lab 1: receipt after r hours, result 2 hours later
        _resulted(world, f"A{i}", p[i], site=world["site_a"], lab=world["lab1"], receipt_h=r, result_h=r + 2,
                  campaign=world["campaign"])
    for i in range(4):  # site B, lab 2: received, not resulted yet
        _resulted(world, f"B{i}", p[20 + i], site=world["site_b"], lab=world["lab2"], receipt_h=1, result_h=None)
    out = turnaround(scope=EVERYTHING)
    assert out["tubes"] == 14
    s2r = out["overall"]["sample_to_result"]
    assert s2r["n"] == 10
    expected = np.percentile(np.array(receipts, dtype=float) + 2, [50, 90, 95])
    assert (s2r["p50"], s2r["p90"], s2r["p95"]) == tuple(round(float(v), 2) for v in expected)
    assert out["overall"]["sample_to_receipt"]["n"] == 14
    assert out["overall"]["receipt_to_result"]["p50"] == 2.0
    by_site = {s["code"]: s for s in out["by_site"]}
    assert by_site["SA"]["sample_to_result"]["n"] == 10 and by_site["SB"]["sample_to_result"]["n"] == 0
    assert by_site["SB"]["sample_to_receipt"]["p95"] == 1.0
    by_lab = {x["code"]: x for x in out["by_lab"]}
    assert by_lab["LAB1"]["target_hours"] == 12 and by_lab["LAB1"]["sample_to_result"]["p50"] == 7.5
    # Filters: the campaign, a window by first swab, the scope.
    assert turnaround(scope=EVERYTHING, campaign_id=world["campaign"].pk)["tubes"] == 10
    assert turnaround(scope=EVERYTHING, since=T0 + H)["tubes"] == 0
    assert turnaround(scope=Scope(world["regions"]["street_b"].code))["tubes"] == 4
    assert turnaround(scope=EVERYTHING, lab_id=world["lab2"].pk)["overall"]["sample_to_result"]["p50"] is None


def test_empty_turnaround(world):
    out = turnaround(scope=EVERYTHING)
    assert out["tubes"] == 0 and out["overall"]["sample_to_result"] == {"n": 0, "p50": None, "p90": None,
                                                                        "p95": None, "mean": None, "max": None}


def test_overdue_tubes(world):
    from jingkong.policy.services import profile_activate, profile_install_builtin

    p = world["people"]
    now = T0 + 10 * H
    # Received at lab 2 (target 6 h) and not resulted: overdue after 6 h.
    make_tube("LATE", [p[0]], capacity=1, site=world["site_b"], lab=world["lab2"], status="received",
              received_at=T0 + H)
    # Received at lab 1 (target 12 h): not overdue yet.
    make_tube("FINE", [p[1]], capacity=1, site=world["site_b"], lab=world["lab1"], status="received",
              received_at=T0 + H)
    # In transit to lab 1 since T0+5h: 5 hours > 4-hour transit limit.
    batch = TransportBatch.objects.create(code="B1", lab=world["lab1"], site=world["site_b"], region_code="330206004",
                                          status="handed_over", packed_at=T0 + 4 * H, handed_over_at=T0 + 5 * H,
                                          courier="张师傅")
    make_tube("STUCK", [p[2]], capacity=1, site=world["site_b"], batch=batch, status="in_transit",
              sampled_at=T0 + 3 * H)
    # Sealed at the site, never packed, sampled 10 h ago: judged by the policy's testing target (12 h): not yet.
    make_tube("WAITING", [p[3]], capacity=1, site=world["site_b"])
    # Resulted tubes are never overdue.
    make_tube("DONE", [p[4]], capacity=1, site=world["site_b"], lab=world["lab2"], status="resulted")
    out = overdue(scope=EVERYTHING, now=now)
    assert [i["barcode"] for i in out["items"]] == ["LATE", "STUCK"]
    by_code = {i["barcode"]: i for i in out["items"]}
    assert by_code["LATE"]["reasons"] == ["result_overdue"] and by_code["LATE"]["target_hours"] == 6
    assert by_code["STUCK"]["reasons"] == ["in_transit_too_long"] and by_code["STUCK"]["lab"] == "LAB1"
    assert by_code["STUCK"]["courier"] == "张师傅"
    assert out["counts"] == {"result_overdue": 1, "in_transit_too_long": 1} and out["default_target_hours"] is None
    # The unpacked tube becomes overdue by the policy target once a profile is in force and the target has passed.
    from jingkong.policy.selectors import profile_get

    profile_install_builtin()
    profile_activate(profile=profile_get(code="cn-9th-2022"), region=world["regions"]["district"], actor=None,
                     reason="test", at=T0 - H)
    later = overdue(scope=EVERYTHING, now=T0 + 13 * H)
    assert later["default_target_hours"] == 12
    assert {i["barcode"] for i in later["items"]} == {"LATE", "STUCK", "WAITING", "FINE"}
    # Scope and lab filters.
    assert overdue(scope=Scope(world["regions"]["street_a"].code), now=now)["total"] == 0
    assert [i["barcode"] for i in overdue(scope=EVERYTHING, now=now, lab_id=world["lab1"].pk)["items"]] == ["STUCK"]
    assert overdue(scope=EVERYTHING, now=now, transit_hours=6)["counts"]["in_transit_too_long"] == 0


def test_overdue_counts_per_lab_cover_every_tube_not_only_the_listed_ones(world):
    """Regression: the labs overview counted a lab's overdue tubes from the first 100 listed, so a lab with 150
    overdue tubes showed 100 (and another lab's could show 0)."""
    p = world["people"]
    for i in range(5):
        make_tube(f"L1-{i}", [p[i]], capacity=1, site=world["site_a"], lab=world["lab1"], status="received",
                  received_at=T0 + H)
    for i in range(3):
        make_tube(f"L2-{i}", [p[10 + i]], capacity=1, site=world["site_a"], lab=world["lab2"], status="received",
                  received_at=T0 + H, sampled_at=T0 + H)
    out = overdue(scope=EVERYTHING, now=T0 + 20 * H, limit=2)
    assert len(out["items"]) == 2 and out["total"] == 8
    assert out["by_lab"] == {"LAB1": 5, "LAB2": 3}
