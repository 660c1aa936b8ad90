"""Review regressions of the isolation orders: what the health code makes of a release, day counting, races."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction

from jingkong.core import clock
from jingkong.core.events import emit_many
from jingkong.isolation import orders
from jingkong.isolation.models import IsolationOrder
from jingkong.isolation.tests import facilities_helpers as h
from jingkong.isolation.tests.facilities_helpers import at, fresh_policy_cache  # noqa: F401 - autouse fixture

pytestmark = pytest.mark.django_db
D = dt.date


def arrive(people, facility, when):
    with clock.frozen(when), transaction.atomic():
        emit_many([{"type": "isolation.arrived", "subject_type": "people.person", "subject_id": p.pk,
                    "region_code": p.grid.code, "at": when, "payload": {"transfer_id": None, "facility_id": facility.pk}}
                   for p in people])


def code_of(p):
    from jingkong.codes.models import HealthCode

    return HealthCode.objects.filter(person_id=p.pk).values_list("colour", "rule_id").first()


@pytest.mark.parametrize(("profile", "tests", "release_day"), [
    ("cn-8th-2021", (2, 5, 8, 15, 15), 15),  # 14 days central (双采双检 on day 14), then 7 days home monitoring
    ("cn-9th-2022", (2, 3, 4, 6, 8), 8),  # 7 days central, then 3 days home
])
def test_releasing_a_central_order_turns_the_code_from_red_to_yellow_at_once(regions, commander, profile, tests,
                                                                            release_day):
    h.activate(profile)
    f = h.facility(regions)
    p = h.person(regions)
    h.contact(p, last_exposure=at(1, 8))
    arrive([p], f, at(2, 9))
    assert code_of(p)[0] == "red"
    order = IsolationOrder.objects.get(person=p)
    for i, day in enumerate(tests):
        h.sample(p, at(day, 10 + i))
    release_at = at(release_day, 16)
    with clock.frozen(release_at):
        report = orders.orders_release([order], actor=commander, at=release_at)
    assert report.released == [order.pk]
    home = IsolationOrder.objects.get(previous=order)
    assert home.mode == "home_monitoring"
    assert code_of(p)[0] == "yellow", code_of(p)  # on the day of the release, not only from the next day
    assert home.starts_on == local(release_at)


def local(when):
    return orders.local_date(when)
