from __future__ import annotations

from types import SimpleNamespace

import pytest

from jingkong.tracing.tests.helpers import NOW, World, activate, at, make_cases, write_checkins


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


@pytest.fixture
def outbreak(world, lake):
    """甲 (street A) and 乙 are cases; 顾客 (street B) met both at a supermarket; see the module tests below."""
    w = world
    jia = w.person("甲", household="H1", workplace="W1")
    w.person("妻", household="H1")
    w.person("同事", workplace="W1")
    yi = w.person("乙", household="H3")
    customer = w.person("顾客", side="b", household="H2")
    w.person("顾客子", side="b", household="H2")
    w.person("路人")
    w.person("店员", side="b")
    w.person("旧客")
    s1, s2 = w.venue("S1"), w.venue("S2", side="b")
    write_checkins(lake.root, [
        (jia, s1, at(2, 10), at(2, 11)),
        (customer, s1, at(2, 10, 20), at(2, 10, 50)),  # 30 min with 甲
        (w["路人"], s1, at(2, 10, 50), at(2, 11, 10)),  # 10 min: under the 15-minute rule
        (yi, s1, at(2, 10, 30), at(2, 10, 45)),  # 15 min with 顾客, 15 with 甲 (乙 is a case: not a contact)
        (customer, s2, at(3, 18), at(3, 18, 40)),  # after his exposure: 店员 becomes a secondary contact
        (w["店员"], s2, at(3, 18, 10), at(3, 18, 30)),
        (w["旧客"], s1, at(1, 8), at(1, 8, 30)),  # before 甲's window (day 1 09:00)
    ])
    cases = make_cases((jia, at(3, 9)), (yi, at(3, 15)))
    return SimpleNamespace(w=w, jia=cases[0], yi=cases[1], lake=lake)
