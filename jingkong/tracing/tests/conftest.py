from __future__ import annotations

import pytest

from jingkong.tracing.tests.helpers import NOW, World, activate


@pytest.fixture(autouse=True)
def _fresh_policy_cache():
    from jingkong.policy.selectors import active_profile_cache_clear

    active_profile_cache_clear()
    yield
    active_profile_cache_clear()


@pytest.fixture
def now():
    from jingkong.core import clock

    with clock.frozen(NOW) as at:
        yield at


@pytest.fixture
def world(regions, now):
    activate()
    return World(regions)


@pytest.fixture
def lake(tmp_path, settings):
    from jingkong.tracing.lake import CheckinLake

    settings.DATA_DIR = tmp_path
    return CheckinLake(tmp_path / "lake")


@pytest.fixture
def tracer_a(regions):
    from jingkong.conftest import make_user

    return make_user("tracer_a", "tracer", regions["street_a"])


@pytest.fixture
def tracer_b(regions):
    from jingkong.conftest import make_user

    return make_user("tracer_b", "tracer", regions["street_b"])
