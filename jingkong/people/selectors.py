"""Reads of the population baseline. Every function takes the caller's Scope; objects outside it are "not found"."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from jingkong.access.guard import Scope
from jingkong.core.exceptions import NotFound
from jingkong.people import idnumber
from jingkong.people.models import Household, Person


def person_list(*, scope: Scope, region: str = "", grid: str = "", building: str = "", household: str = "",
                vulnerable: int = 0, industry: str = "", q: str = "") -> QuerySet[Person]:
    """Persons in the scope (optionally under ``region``), filtered; ordered by id."""
    qs = Person.objects.filter(scope.q("grid__code")).select_related("grid", "building", "household", "workplace")
    if region:
        scope.check(region, "region")
        qs = qs.filter(grid__code__startswith=region)
    if grid:
        qs = qs.filter(grid__code=grid)
    if building:
        qs = qs.filter(building__code=building)
    if household:
        qs = qs.filter(household__code=household)
    if vulnerable:
        qs = qs.extra(where=["(people_person.vulnerable & %s) != 0"], params=[int(vulnerable)])  # noqa: S610
    if industry:
        qs = qs.filter(industry=industry).exclude(industry="")  # the exclude lets SQLite use the partial index
    if q:
        qs = qs.filter(Q(name__contains=q.strip()))
    return qs.order_by("id")


def person_get(*, scope: Scope, person_id: int) -> Person:
    person = Person.objects.select_related("grid", "building", "household", "workplace").filter(pk=person_id).first()
    if person is None or not scope.contains(person.grid.code if person.grid else None):
        raise NotFound("person not found")
    return person


def person_get_by_id_number(*, scope: Scope, number: str) -> Person:
    try:
        value = idnumber.validate(number)
    except idnumber.IdNumberError:
        raise NotFound("person not found") from None
    person = Person.objects.select_related("grid", "building", "household", "workplace").filter(
        id_hash=idnumber.id_hash(value)).first()
    if person is None or not scope.contains(person.grid.code if person.grid else None):
        raise NotFound("person not found")
    return person


def household_get(*, scope: Scope, household_id: int) -> Household:
    household = Household.objects.select_related("grid", "building").filter(pk=household_id).first()
    if household is None or not scope.contains(household.grid.code):
        raise NotFound("household not found")
    return household


def household_members(*, household: Household) -> list[Person]:
    return list(household.members.select_related("grid", "building", "workplace").order_by("birth_date", "id"))


def person_audit(*, scope: Scope, person_id: int) -> list:
    """Audit records that touched person ``person_id`` (newest first): those naming the person (reads, edits) and
    the import records whose id ranges (``detail["ids"]``) include the person. The person must be in the scope."""
    from jingkong.access.models import AuditLog
    from jingkong.people.importer import IMPORT_ACTION, in_ranges

    person = person_get(scope=scope, person_id=person_id)
    pid = person.pk
    named = Q(object_type="people.person", object_id=str(pid))
    ranged = Q(object_type="people.person", action=IMPORT_ACTION, object_id="", detail__first__lte=pid,
               detail__last__gte=pid)
    records = AuditLog.objects.filter(named | ranged).order_by("-at", "-id")
    return [a for a in records if a.object_id == str(pid) or in_ranges(pid, a.detail.get("ids", []))]
