"""Route-walk registrations of the five-stage clock: a case with an overdue investigation and an unlocated contact in
street B (tracer name marked), so the list check proves the summary and overdue list of street A show none of it.

Loaded by jingkong/access/tests/test_route_guard.py. The clock routes have no path parameters and no writes.
"""

from __future__ import annotations

import datetime as dt
import itertools

from jingkong.access.tests.test_route_guard import SEEDS

_serial = itertools.count(1)


@SEEDS.append
def _clock_case_in_b(ctx):
    from jingkong.access.models import User
    from jingkong.core import clock
    from jingkong.people.models import Person
    from jingkong.tracing.models import Case, Contact

    now = clock.now()
    n = next(_serial)
    tracer = User.objects.create_user(username=ctx.mark(f"clock-tracer-b{n}"), password="pw-clock-b-123",
                                      role="tracer", region=ctx.street)
    people = [Person.objects.create(id_hash=f"clock-oos-b{n}-{i}".ljust(64, "0"), id_masked="3302**********0000",
                                    name=ctx.mark(f"越界时钟{n}{i}"), sex="F", birth_date=dt.date(1980, 1, 1),
                                    grid=ctx.grid, created_at=now, updated_at=now) for i in range(2)]
    Case.objects.create(ref=ctx.mark(f"CLOCK-B{n}"), person=people[0], region_code=ctx.grid.code, tracer=tracer,
                        created_at=now - dt.timedelta(hours=30), updated_at=now)
    Contact.objects.create(person=people[1], tier="close", region_code=ctx.grid.code, queue_region_code=ctx.grid.code,
                           first_identified_at=now - dt.timedelta(hours=30), created_at=now, updated_at=now)
