from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from jingkong.tracing.tests.helpers import NOW, activate, at  # noqa: F401 - re-exported for the tests


@pytest.fixture(autouse=True)
def _fresh_policy_cache():
    from jingkong.policy.selectors import active_profile_cache_clear

    active_profile_cache_clear()
    yield
    active_profile_cache_clear()


@pytest.fixture
def now():
    from jingkong.core import clock

    with clock.frozen(NOW) as moment:
        yield moment


def _person(name, household=None, building=None, grid=None, vulnerable=0, unit=""):
    from jingkong.core import clock
    from jingkong.people.models import Person

    n = _person.counter = getattr(_person, "counter", 0) + 1
    moment = clock.now()
    return Person.objects.create(id_hash=f"zones-test-{n:022d}", id_masked="3302**********0000", name=name, sex="M",
                                 birth_date=dt.date(1950 if vulnerable else 1980, 1, 1), grid=grid or building.grid,
                                 building=building, household=household, vulnerable=vulnerable, unit=unit,
                                 created_at=moment, updated_at=moment)


@pytest.fixture
def town(regions, now):
    """Street A: 明州花园 1幢 (entrances 1 and 2) and 2幢 in grid a1, 长江路5号 in grid a2; street B: one building.

    H1 (entrance 1 of 1幢): 甲 (the case), 妻, 老人 (elderly); H2 (entrance 2): 2 people; H3 (2幢): 2; H4 (长江路): 1;
    H5 (street B): 2. The 2021 profile is in force.
    """
    from jingkong.geo.models import Building
    from jingkong.people.models import Household

    activate()
    a1, a2, b1 = regions["grid_a1"], regions["grid_a2"], regions["grid_b1"]
    ba1 = Building.objects.create(code="BA1", grid=a1, address="北仑区新碶街道明州花园1幢", lon=121.803, lat=29.903,
                                  units=2)
    ba2 = Building.objects.create(code="BA2", grid=a1, address="北仑区新碶街道明州花园2幢", lon=121.806, lat=29.906)
    ba3 = Building.objects.create(code="BA3", grid=a2, address="北仑区新碶街道长江路5号", lon=121.815, lat=29.905)
    bb1 = Building.objects.create(code="BB1", grid=b1, address="北仑区大碶街道银杏苑3幢", lon=121.825, lat=29.905)
    hh = {}
    for code, building, unit in (("H1", ba1, "1"), ("H2", ba1, "2"), ("H3", ba2, "1"), ("H4", ba3, "1"),
                                 ("H5", bb1, "1")):
        hh[code] = Household.objects.create(code=code, building=building, grid=building.grid, unit=unit, room="101")
    people = {
        "甲": _person("甲", hh["H1"], ba1), "妻": _person("妻", hh["H1"], ba1),
        "老人": _person("老人", hh["H1"], ba1, vulnerable=1),
        "邻1": _person("邻1", hh["H2"], ba1), "邻2": _person("邻2", hh["H2"], ba1),
        "楼1": _person("楼1", hh["H3"], ba2), "楼2": _person("楼2", hh["H3"], ba2),
        "路1": _person("路1", hh["H4"], ba3),
        "乙1": _person("乙1", hh["H5"], bb1), "乙2": _person("乙2", hh["H5"], bb1),
    }
    return SimpleNamespace(regions=regions, buildings={"BA1": ba1, "BA2": ba2, "BA3": ba3, "BB1": bb1},
                           households=hh, people=people)


@pytest.fixture
def case(town):
    from jingkong.tracing.tests.helpers import make_cases

    return make_cases((town.people["甲"], at(4, 9)))[0]
