from __future__ import annotations

import pytest

from jingkong.policy.selectors import active_profile_cache_clear


@pytest.fixture(autouse=True)
def _fresh_policy_cache():
    active_profile_cache_clear()
    yield
    active_profile_cache_clear()


@pytest.fixture
def installed(db):
    """The shipped profiles, installed: {code: PolicyProfile}."""
    from jingkong.policy.models import PolicyProfile
    from jingkong.policy.services import profile_install_builtin

    profile_install_builtin()
    return {p.code: p for p in PolicyProfile.objects.all()}
