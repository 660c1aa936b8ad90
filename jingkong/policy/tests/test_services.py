"""Installing, versioning and activating profiles; which rules are in force when."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jingkong.access.models import AuditLog
from jingkong.core import clock
from jingkong.core.exceptions import Conflict, ValidationFailed
from jingkong.core.models import DomainEvent
from jingkong.policy.models import ImmutableRecord, PolicyActivation, PolicyProfile
from jingkong.policy.selectors import PolicyNotActive, active_profile
from jingkong.policy.services import (
    DEMO_ACTIVATED_AT,
    builtin_documents,
    demo_activate,
    profile_activate,
    profile_create,
    profile_ensure_active,
    profile_install_builtin,
)

CST = dt.timezone(dt.timedelta(hours=8))
JAN_2022 = dt.datetime(2022, 1, 1, tzinfo=CST)
NINTH_FROM = dt.datetime(2022, 6, 28, tzinfo=CST)


def test_install_is_idempotent(db):
    first = profile_install_builtin()
    assert sorted((o.code, o.version, o.created) for o in first) == [
        ("cn-8th-2021", 1, True), ("cn-9th-2022", 1, True)
    ]
    again = profile_install_builtin()
    assert all(not o.created for o in again)
    assert PolicyProfile.objects.count() == 2
    assert PolicyProfile.objects.filter(origin="builtin").count() == 2


def test_install_stores_a_changed_file_as_a_new_version(db):
    profile_install_builtin()
    docs = builtin_documents()
    changed = copy.deepcopy(dict(docs)["cn-8th-2021.json"])
    changed["rules"]["quarantine"]["transfer_deadline_hours"]["close_contact"] = 8
    outcomes = profile_install_builtin(documents=[("cn-8th-2021.json", changed)])
    assert [(o.code, o.version, o.created) for o in outcomes] == [("cn-8th-2021", 2, True)]
    v2 = PolicyProfile.objects.get(code="cn-8th-2021", version=2)
    assert v2.based_on.version == 1
    assert v2.rules["quarantine"]["transfer_deadline_hours"]["close_contact"] == 8
    # the original file again: it is version 1, nothing new
    assert [o.created for o in profile_install_builtin(documents=docs)] == [False, False]


def test_install_refuses_an_invalid_shipped_file(db):
    doc = copy.deepcopy(dict(builtin_documents())["cn-9th-2022.json"])
    doc["rules"]["quarantine"]["close_contact"]["central_days"] = -7
    with pytest.raises(ValidationFailed) as exc:
        profile_install_builtin(documents=[("cn-9th-2022.json", doc)])
    assert exc.value.extra["errors"][0]["path"] == "rules.quarantine.close_contact.central_days"
    assert not PolicyProfile.objects.exists()


def test_profile_create_makes_the_next_version_and_keeps_provenance(installed, commander):
    base = installed["cn-8th-2021"]
    rules = copy.deepcopy(base.rules)
    rules["quarantine"]["close_contact"]["home_days"] = 14
    rules["quarantine"]["close_contact"]["home_test_days"] = [2, 7, 14]
    v2 = profile_create(code="cn-8th-2021", rules=rules, actor=commander, note="Ningbo 14+14 for this outbreak")
    assert (v2.version, v2.based_on_id, v2.name_en, v2.created_by) == (2, base.pk, base.name_en, commander)
    assert v2.sources["quarantine.close_contact.home_days"]["status"] == "local"
    assert v2.sources["quarantine.close_contact.central_days"]["status"] == "S"  # unchanged: kept
    assert AuditLog.objects.filter(action="policy.profile_create", object_id=str(v2.pk), user=commander).exists()
    assert DomainEvent.objects.filter(type="policy.profile_created", subject_id=str(v2.pk)).exists()


def test_profile_create_rejects_invalid_and_unchanged_rule_sets(installed, commander):
    base = installed["cn-9th-2022"]
    bad = copy.deepcopy(base.rules)
    bad["quarantine"]["close_contact"]["central_test_days"] = [1, 9]
    with pytest.raises(ValidationFailed) as exc:
        profile_create(code=base.code, rules=bad, actor=commander)
    assert exc.value.extra["errors"] == [{
        "path": "rules.quarantine.close_contact.central_test_days",
        "reason": "test day 9 is after the end of the 7-day central quarantine",
    }]
    with pytest.raises(Conflict):
        profile_create(code=base.code, rules=copy.deepcopy(base.rules), actor=commander)
    assert PolicyProfile.objects.filter(code=base.code).count() == 1


def test_a_new_code_needs_its_header(installed, commander):
    rules = copy.deepcopy(installed["cn-9th-2022"].rules)
    with pytest.raises(ValidationFailed) as exc:
        profile_create(code="beilun-local-2022", rules=rules, actor=commander)
    paths = {e["path"] for e in exc.value.extra["errors"]}
    assert {"edition", "name", "issued_on", "valid_from"} <= paths
    row = profile_create(code="beilun-local-2022", rules=rules, actor=commander, edition="local",
                         name_zh="北仑本地规则", name_en="Beilun local rules", issued_on=dt.date(2022, 7, 1),
                         valid_from=dt.date(2022, 7, 1))
    assert row.version == 1


def test_profile_versions_and_activations_are_immutable(installed, regions):
    profile = installed["cn-8th-2021"]
    profile.rules["contacts"]["lookback_days"] = 3
    with pytest.raises(ImmutableRecord):
        profile.save()
    with pytest.raises(ImmutableRecord):
        profile.delete()
    activation = profile_activate(profile=profile, region=regions["district"], actor=None, reason="test")
    activation.reason = "rewritten"
    with pytest.raises(ImmutableRecord):
        activation.save()
    with pytest.raises(ImmutableRecord):
        activation.delete()
    profile.refresh_from_db()
    assert profile.rules["contacts"]["lookback_days"] == 2


def test_activation_is_audited_and_evented(installed, regions, commander, frozen_clock):
    district = regions["district"]
    first = profile_activate(profile=installed["cn-8th-2021"], region=district, actor=commander, reason="8th edition")
    second = profile_activate(profile=installed["cn-9th-2022"], region=district, actor=commander,
                              reason="9th edition issued", at=frozen_clock + dt.timedelta(hours=1))
    audit = AuditLog.objects.get(action="policy.activate", object_id=str(second.pk))
    assert (audit.user, audit.region_code) == (commander, "330206")
    assert audit.detail["previous"]["code"] == "cn-8th-2021"
    assert audit.detail["profile"] == {"id": installed["cn-9th-2022"].pk, "code": "cn-9th-2022", "version": 1}
    event = DomainEvent.objects.get(type="policy.activated", subject_id=str(second.pk))
    assert (event.region_code, event.actor, event.payload["reason"]) == ("330206", commander, "9th edition issued")
    assert event.occurred_at == frozen_clock + dt.timedelta(hours=1)
    assert first.activated_at == frozen_clock


def test_activation_needs_a_reason(installed, regions):
    with pytest.raises(ValidationFailed):
        profile_activate(profile=installed["cn-8th-2021"], region=regions["district"], actor=None, reason="  ")
    assert not PolicyActivation.objects.exists()


def test_active_profile_follows_the_activation_history(installed, regions):
    district = regions["district"]
    profile_activate(profile=installed["cn-8th-2021"], region=district, actor=None, reason="8th", at=JAN_2022)
    profile_activate(profile=installed["cn-9th-2022"], region=district, actor=None, reason="9th", at=NINTH_FROM)
    grid = regions["grid_b2"].code
    with pytest.raises(PolicyNotActive):
        active_profile(region_code=grid, at=JAN_2022 - dt.timedelta(seconds=1))
    assert active_profile(region_code=grid, at=JAN_2022).profile.code == "cn-8th-2021"
    in_march = active_profile(region_code=grid, at=dt.datetime(2022, 3, 1, tzinfo=CST))
    assert in_march.profile.code == "cn-8th-2021"
    assert in_march.rules.quarantine.close_contact.central_days == 14
    in_july = active_profile(at=dt.datetime(2022, 7, 1, tzinfo=CST))  # the district as a whole
    assert in_july.profile.code == "cn-9th-2022"
    assert in_july.rules.zones.scheme == "risk_areas"
    with clock.frozen(dt.datetime(2022, 7, 2, tzinfo=dt.UTC)):
        assert active_profile(region_code=grid).profile.code == "cn-9th-2022"


def test_a_street_activation_applies_to_that_street_until_the_district_changes_again(installed, regions):
    district, street_a = regions["district"], regions["street_a"]
    eighth, ninth = installed["cn-8th-2021"], installed["cn-9th-2022"]
    profile_activate(profile=eighth, region=district, actor=None, reason="district", at=JAN_2022)
    profile_activate(profile=ninth, region=street_a, actor=None, reason="street pilot",
                     at=JAN_2022 + dt.timedelta(days=10))
    later = JAN_2022 + dt.timedelta(days=20)
    assert active_profile(region_code=regions["grid_a1"].code, at=later).profile == ninth
    assert active_profile(region_code=regions["grid_b1"].code, at=later).profile == eighth
    assert active_profile(at=later).profile == eighth  # the district as a whole
    profile_activate(profile=eighth, region=district, actor=None, reason="back to one rule set",
                     at=JAN_2022 + dt.timedelta(days=30))
    assert active_profile(region_code=regions["grid_a1"].code, at=later + dt.timedelta(days=20)).profile == eighth


def test_the_cache_sees_activations_from_this_and_other_processes(installed, regions):
    district = regions["district"]
    profile_activate(profile=installed["cn-8th-2021"], region=district, actor=None, reason="8th", at=JAN_2022)
    at = JAN_2022 + dt.timedelta(days=1)
    assert active_profile(at=at).profile.code == "cn-8th-2021"
    with CaptureQueriesContext(connection) as queries:
        again = active_profile(at=at)
    assert again.profile.code == "cn-8th-2021"
    assert len(queries) == 1  # only the fingerprint check; the timeline and parsed rules are cached
    # another process writes an activation: the fingerprint changes and the cache is re-read
    PolicyActivation(region=district, profile=installed["cn-9th-2022"], activated_at=JAN_2022 + dt.timedelta(hours=1),
                     reason="other process", recorded_at=JAN_2022).save()
    assert active_profile(at=at).profile.code == "cn-9th-2022"


def test_ensure_active_does_nothing_when_the_version_is_in_force(installed, regions):
    district = regions["district"]
    first = profile_ensure_active(profile=installed["cn-8th-2021"], region=district, actor=None, reason="x", at=JAN_2022)
    assert first is not None
    assert profile_ensure_active(profile=installed["cn-8th-2021"], region=district, actor=None, reason="x",
                                 at=JAN_2022) is None
    assert PolicyActivation.objects.count() == 1


def test_demo_activation_puts_the_8th_edition_in_force_for_beilun_in_january_2022(regions):
    activation = demo_activate()
    assert activation.activated_at == DEMO_ACTIVATED_AT
    assert demo_activate() is None  # idempotent
    found = active_profile(region_code=regions["grid_a1"].code, at=dt.datetime(2022, 1, 4, 12, tzinfo=CST))
    assert (found.profile.code, found.profile.version) == ("cn-8th-2021", 1)
    assert found.rules.zones.types == ["lockdown", "control", "prevention"]
