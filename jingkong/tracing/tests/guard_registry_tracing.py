"""Route-walk registrations of the tracing API: objects in street B for every path parameter, bodies for writes.

Loaded by jingkong/access/tests/test_route_guard.py (factories, bodies) and test_scope_writes.py (WRITES_NAMING_B).
"""

from __future__ import annotations

import datetime as dt
import itertools

from jingkong.access.roles import Role
from jingkong.access.tests.test_route_guard import BODIES, factory

_serial = itertools.count(1)
T = dt.datetime(2022, 1, 3, 1, 0, tzinfo=dt.UTC)


def _person(ctx, name: str):
    from jingkong.core import clock
    from jingkong.people.models import Person

    now = clock.now()
    return Person.objects.create(id_hash=f"tracing-b{next(_serial):054d}", id_masked="3302**********0000",
                                 name=ctx.mark(name), sex="M", birth_date=dt.date(1980, 1, 1), grid=ctx.grid,
                                 created_at=now, updated_at=now)


def _case(ctx):
    from jingkong.core import clock
    from jingkong.tracing.models import Case

    if "_tracing_case" not in ctx.values:
        now = clock.now()
        ctx.values["_tracing_case"] = Case.objects.create(
            ref=ctx.mark(f"OOS-2022-{next(_serial):04d}"), person=_person(ctx, f"越界病例{next(_serial)}"),
            first_positive_at=T, region_code=ctx.grid.code, note=ctx.mark("out-of-scope-case-note"),
            created_at=now, updated_at=now)
    return ctx.values["_tracing_case"]


def _contact(ctx):
    from jingkong.core import clock
    from jingkong.tracing.models import Contact, ContactReason

    if "_tracing_contact" not in ctx.values:
        now = clock.now()
        contact = Contact.objects.create(person=_person(ctx, f"越界密接{next(_serial)}"), tier="close",
                                         region_code=ctx.grid.code, queue_region_code=ctx.street.code,
                                         last_exposure_at=T, first_identified_at=now, created_at=now, updated_at=now)
        ContactReason.objects.create(contact=contact, case=_case(ctx), tier="close", kind="household",
                                     evidence={"marker": ctx.mark("out-of-scope-evidence")}, key="k",
                                     created_at=now)
        ctx.values["_tracing_contact"] = contact
    return ctx.values["_tracing_contact"]


factory("case_id")(lambda ctx: _case(ctx).pk)
factory("contact_id")(lambda ctx: _contact(ctx).pk)


@factory("stay_id")
def _stay_in_b(ctx):
    from jingkong.core import clock
    from jingkong.tracing.models import Stay

    now = clock.now()
    return Stay.objects.create(case=_case(ctx), kind="other", place=ctx.mark("越界地点"), start=T,
                               end=T + dt.timedelta(hours=1), source="interview", created_at=now, updated_at=now).pk


@factory("handoff_id")
def _handoff_in_b(ctx):
    from jingkong.core import clock
    from jingkong.tracing.models import Handoff

    # Sent from the district office to street B's queue: street A neither sent nor receives it.
    return Handoff.objects.create(contact=_contact(ctx), case=_case(ctx), from_region_code=ctx.street.code[:6] + "999",
                                  to_region_code=ctx.street.code, requested_at=clock.now()).pk


@factory("link_id")
def _link_in_b(ctx):
    from jingkong.core import clock
    from jingkong.tracing.models import Case, Link

    now = clock.now()
    other = Case.objects.create(ref=ctx.mark(f"OOS-2022-{next(_serial):04d}"), person=_person(ctx, "越界病例乙"),
                                first_positive_at=T + dt.timedelta(days=2), region_code=ctx.grid.code,
                                created_at=now, updated_at=now)
    return Link.objects.create(infector=_case(ctx), infectee=other, confidence="high", kind="household",
                               evidence=[{"kind": "household", "marker": ctx.mark("out-of-scope-link")}],
                               suggested_at=now).pk


@factory("cluster_id")
def _cluster_in_b(ctx):
    from jingkong.core import clock
    from jingkong.tracing.models import Cluster, ClusterMember, Link

    now = clock.now()
    link = Link.objects.get(pk=ctx.value("link_id"))
    cluster = Cluster.objects.create(name=ctx.mark("越界聚集"), setting="household", region_code=ctx.grid.code,
                                     created_at=now, updated_at=now)
    for case_id in (link.infector_id, link.infectee_id):
        ClusterMember.objects.get_or_create(case_id=case_id, defaults={"cluster": cluster, "joined_at": now})
    return cluster.pk


BODIES.update({
    "POST /api/v1/tracing/cases/{case_id}/stays": lambda ctx: {
        "kind": "other", "place": "x", "start": "2022-01-02T10:00:00+08:00", "end": "2022-01-02T11:00:00+08:00"},
    "POST /api/v1/tracing/contacts/{contact_id}/status": lambda ctx: {"status": "notified"},
})


def _resident_b(w):
    from jingkong.people.idnumber import id_hash
    from jingkong.people.models import Person

    return Person.objects.get(id_hash=id_hash(w["resident_b"]["id_number"]))


def _link_to_a_case_in_b(w):
    from jingkong.core import clock
    from jingkong.tracing.models import Case

    now = clock.now()
    resident = _resident_b(w)
    infectee = Case.objects.create(ref="WB-2022-0001", person=resident, first_positive_at=T,
                                   region_code=resident.grid.code, created_at=now, updated_at=now)
    return {"infector_ref": "WB-2021-0001", "infectee_ref": infectee.ref}


WRITES_NAMING_B = {
    "POST /api/v1/tracing/cases": (Role.TRACER, lambda w: {"person_id": _resident_b(w).pk,
                                                           "first_positive_at": "2022-01-01T08:00:00+08:00"}),
    "POST /api/v1/tracing/links": (Role.TRACER, _link_to_a_case_in_b),
}
