"""Two commanders acting at the same moment (PostgreSQL: real concurrent transactions): the zones end up as if one had
acted after the other — the ring never holds the lockdown's residents, a zone never loses all its units."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from jingkong.zones import selectors, services
from jingkong.zones.models import Zone, ZoneResident

pytestmark = pytest.mark.django_db(transaction=True)


def _together(*fns):
    errors, out = [], []
    barrier = threading.Barrier(len(fns))

    def run(fn):
        try:
            barrier.wait()
            out.append(fn())
        except Exception as exc:  # noqa: BLE001 - returned to the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(fn,)) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out, errors


def test_lockdown_and_ring_approved_at_once(town, case, commander):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers")
    from jingkong.tracing.tests.helpers import NOW

    zones = {z.type: z for z in services.propose_from_case(case, actor=commander, at=NOW)}
    _out, errors = _together(lambda: services.zone_approve(zones["lockdown"], actor=commander, at=NOW),
                             lambda: services.zone_approve(zones["control"], actor=commander, at=NOW))
    assert not errors, errors
    p = town.people
    types = selectors.zone_types_for_people([x.pk for x in p.values()])
    assert types[p["甲"].pk] == ["lockdown"] and types[p["邻1"].pk] == ["control"]
    ctrl = Zone.objects.get(pk=zones["control"].pk)
    assert ctrl.people == 5 and ZoneResident.objects.filter(zone=ctrl).count() == 5


def test_two_edits_removing_the_other_unit_keep_one(town, case, commander):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers")
    from jingkong.core.exceptions import ValidationFailed
    from jingkong.tracing.tests.helpers import NOW

    lock = {z.type: z for z in services.propose_from_case(case, actor=commander, at=NOW)}["lockdown"]
    services.zone_edit(lock, actor=commander, scope=selectors.Scope(""), at=NOW,
                       add_units=[services.UnitIn(kind="building", building_id=town.buildings["BA2"].pk)])
    first, second = lock.units.order_by("pk").values_list("pk", flat=True)
    _out, errors = _together(
        lambda: services.zone_edit(lock, actor=commander, scope=selectors.Scope(""), remove_unit_ids=[first], at=NOW),
        lambda: services.zone_edit(lock, actor=commander, scope=selectors.Scope(""), remove_unit_ids=[second], at=NOW))
    assert len(errors) == 1 and isinstance(errors[0], ValidationFailed)
    assert lock.units.count() == 1
