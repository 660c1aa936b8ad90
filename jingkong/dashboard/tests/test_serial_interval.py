"""R(t) on the screen uses the serial interval of the profile in force when it carries one (the variant's), else the
documented default — and says which."""

from __future__ import annotations

import copy
import datetime as dt
from types import SimpleNamespace

from jingkong.dashboard import selectors
from jingkong.policy import selectors as policy_selectors
from jingkong.policy.schema import validate_rules
from jingkong.policy.services import builtin_documents

AT = dt.datetime(2022, 1, 10, 12, tzinfo=dt.UTC)


def _profile_with(**transmission):
    rules = copy.deepcopy(dict(builtin_documents())["cn-9th-2022.json"]["rules"])
    rules["transmission"].update(transmission)
    parsed, errors = validate_rules(rules)
    assert not errors
    return SimpleNamespace(rules=parsed)


def test_the_profiles_serial_interval_is_used(monkeypatch):
    monkeypatch.setattr(policy_selectors, "active_profile",
                        lambda **kw: _profile_with(serial_interval_mean_days=3.5, serial_interval_sd_days=2.4))
    assert selectors.serial_interval("330206", AT) == {"mean": 3.5, "sd": 2.4, "source": "profile"}


def test_without_it_the_documented_default_is_used_and_named(monkeypatch):
    from jingkong.analytics import rt

    monkeypatch.setattr(policy_selectors, "active_profile", lambda **kw: _profile_with())
    assert selectors.serial_interval("330206", AT) == {"mean": rt.DEFAULT_SI_MEAN, "sd": rt.DEFAULT_SI_SD,
                                                       "source": "default"}
