"""`jingkong zones review` and `jingkong zones import-risk-areas FILE`."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from jingkong.zones import services
from jingkong.zones.models import RiskArea

pytestmark = pytest.mark.django_db


def _run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_review_lists_zones_ready_to_lift(town, case, commander):
    from jingkong.core import clock
    from jingkong.testing.models import PersonTestState
    from jingkong.tracing.tests.helpers import at

    zones = {z.type: z for z in services.propose_from_case(case, actor=commander)}
    lock = services.zone_approve(zones["lockdown"], actor=commander)
    assert _run("zones_review").startswith("1 zone(s) in force reviewed: 0 ready, 1 blocked")
    later = at(19, 9)
    for name in ("甲", "妻", "老人"):
        PersonTestState.objects.create(person=town.people[name], region_code=lock.region_code, status="negative",
                                       last_negative_sampled_at=at(18, 9), updated_at=later)
    with clock.frozen(later):
        text = _run("zones_review")
        body = json.loads(_run("zones_review", "--json"))
    assert "1 ready" in text and lock.ref in text
    assert body["ready"][0]["ref"] == lock.ref and body["ready"][0]["action"] == "lift"


def test_import_risk_areas_exit_3_on_rejected_rows_and_idempotent(tmp_path, db, now):
    path = tmp_path / "外地.csv"
    path.write_bytes("code,name,level\n310115,浦东新区,高\n31011,短码,high\n".encode("gb18030"))
    with pytest.raises(SystemExit) as exc:
        _run("zones_import_risk_areas", str(path))
    assert exc.value.code == 3
    assert RiskArea.objects.get().list_name == "外地"
    errors = (tmp_path / "外地.csv.errors.csv").read_text(encoding="utf-8")
    assert "3,code," in errors
    good = tmp_path / "good.csv"
    good.write_text("code,name,level\n310115,浦东新区,high\n", encoding="utf-8")
    text = _run("zones_import_risk_areas", str(good), "--list", "沪")
    assert "0 new" in text and "1 unchanged" in text
    with pytest.raises(CommandError):
        _run("zones_import_risk_areas", str(tmp_path / "missing.csv"))


def test_review_residents_rebuilds_people_changed_without_an_event(town, case, commander):
    from jingkong.people.models import Person
    from jingkong.zones import selectors

    zones = {z.type: z for z in services.propose_from_case(case, actor=commander)}
    services.zone_approve(zones["lockdown"], actor=commander)
    wife = town.people["妻"]
    Person.objects.filter(pk=wife.pk).update(building=town.buildings["BB1"], household=town.households["H5"],
                                             grid=town.buildings["BB1"].grid)  # a direct fix: no event
    assert selectors.zone_types_for_people([wife.pk]) == {wife.pk: ["lockdown"]}
    _run("zones_review", "--residents")
    assert selectors.zone_types_for_people([wife.pk]) == {}
    zones["lockdown"].refresh_from_db()
    assert zones["lockdown"].people == 2
