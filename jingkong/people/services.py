"""Writes to the population baseline: one person at a time (bulk imports live in jingkong.people.importer)."""

from __future__ import annotations

from django.db import transaction

from jingkong.access import audit
from jingkong.access.guard import Scope
from jingkong.core import clock
from jingkong.core.events import emit
from jingkong.core.exceptions import Conflict, NotFound, ValidationFailed
from jingkong.geo.models import Building, Venue
from jingkong.people import idnumber
from jingkong.people.importer import INDUSTRY_VALUES, parse_vulnerable
from jingkong.people.models import Household, Person, Source

EDITABLE = ("name", "phone", "unit", "room", "registered_address", "is_registered_local", "employer", "needs_review")


def _building(scope: Scope, code: str) -> Building:
    building = Building.objects.select_related("grid").filter(code=code).first()
    if building is None or not scope.contains(building.grid.code):
        raise ValidationFailed("unknown building code", extra={"field": "building_code"})
    return building


def _household(scope: Scope, code: str, building: Building | None, unit: str, room: str) -> Household:
    household = Household.objects.select_related("grid").filter(code=code).first()
    if household is not None:
        if not scope.contains(household.grid.code):
            raise ValidationFailed("unknown household code", extra={"field": "household_code"})
        return household
    if building is None:
        raise ValidationFailed("unknown household code and no building to create it in",
                               extra={"field": "household_code"})
    return Household.objects.create(code=code, building=building, grid=building.grid, unit=unit, room=room)


def _flags(names: list[str]) -> int:
    try:
        return parse_vulnerable(";".join(names))
    except ValueError as exc:
        raise ValidationFailed(f"unknown vulnerable group {exc}", extra={"field": "vulnerable"}) from None


def _industry(value: str) -> str:
    if value.strip().lower() not in INDUSTRY_VALUES:
        raise ValidationFailed("unknown key industry", extra={"field": "industry"})
    return INDUSTRY_VALUES[value.strip().lower()]


def _workplace(code: str) -> Venue | None:
    if not code:
        return None
    venue = Venue.objects.filter(code=code).first()
    if venue is None:
        raise ValidationFailed("unknown venue code", extra={"field": "workplace_venue_code"})
    return venue


@transaction.atomic
def person_create(*, actor, scope: Scope, id_number: str, name: str, sex: str, birth_date=None, phone: str = "",
                  building_code: str = "", household_code: str = "", unit: str = "", room: str = "",
                  registered_address: str = "", is_registered_local: bool = True, vulnerable: list[str] | None = None,
                  industry: str = "", employer: str = "", workplace_venue_code: str = "",
                  source: str = Source.MANUAL, request=None) -> Person:
    """Create one person inside the actor's scope (ID number validated, stored only as hash + mask)."""
    try:
        number = idnumber.validate(id_number, today=clock.today())
    except idnumber.IdNumberError as exc:
        raise ValidationFailed(exc.reason, extra={"field": "id_number"}) from None
    born = idnumber.birth_date_of(number)
    if birth_date is not None and birth_date != born:
        raise ValidationFailed("the birth date disagrees with the ID number", extra={"field": "birth_date"})
    key = idnumber.id_hash(number)
    if Person.objects.filter(id_hash=key).exists():
        raise Conflict("a person with this ID number already exists")
    building = _building(scope, building_code) if building_code else None
    household = _household(scope, household_code, building, unit, room) if household_code else None
    if building is None and household is not None:
        building = household.building
    if building is None:
        raise ValidationFailed("give a building_code or an existing household_code", extra={"field": "building_code"})
    now = clock.now()
    person = Person(
        id_hash=key, id_masked=idnumber.id_mask(number), name=name, sex=sex, birth_date=born, phone=phone,
        household=household, building=building, grid_id=building.grid_id, unit=unit, room=room,
        registered_address=registered_address, is_registered_local=is_registered_local,
        vulnerable=_flags(vulnerable or []), industry=_industry(industry), employer=employer,
        workplace=_workplace(workplace_venue_code), source=source, created_at=now, updated_at=now,
    )
    person.full_clean(exclude=["household", "building", "grid", "workplace"])
    person.save()
    region = building.grid.code
    audit.record(actor=actor, action="person.create", object_type="people.person", object_id=person.pk,
                 region_code=region, request=request)
    emit("people.person_created", subject=person, region_code=region, actor=actor)
    return person


@transaction.atomic
def person_update(*, actor, scope: Scope, person: Person, request=None, **changes) -> Person:
    """Change a person's editable fields (the ID number, name-independent, never changes). Audits the changed fields."""
    changed: list[str] = []
    for field in EDITABLE:
        if changes.get(field) is not None and getattr(person, field) != changes[field]:
            setattr(person, field, changes[field])
            changed.append(field)
    if changes.get("vulnerable") is not None:
        person.vulnerable, changed = _flags(changes["vulnerable"]), [*changed, "vulnerable"]
    if changes.get("industry") is not None:
        person.industry, changed = _industry(changes["industry"]), [*changed, "industry"]
    if changes.get("workplace_venue_code") is not None:
        person.workplace, changed = _workplace(changes["workplace_venue_code"]), [*changed, "workplace"]
    if changes.get("building_code"):
        building = _building(scope, changes["building_code"])
        person.building, person.grid_id = building, building.grid_id
        changed.append("building")
    if changes.get("household_code") is not None:
        code = changes["household_code"]
        person.household = _household(scope, code, person.building, person.unit, person.room) if code else None
        changed.append("household")
    if not changed:
        return person
    person.updated_at = clock.now()
    person.full_clean(exclude=["household", "building", "grid", "workplace"])
    person.save()
    region = person.grid.code if person.grid_id else ""
    audit.record(actor=actor, action="person.update", object_type="people.person", object_id=person.pk,
                 region_code=region, request=request, detail={"fields": sorted(set(changed))})
    emit("people.person_updated", subject=person, region_code=region, actor=actor,
         payload={"fields": sorted(set(changed))})
    return person


def person_in_scope_or_404(scope: Scope, person: Person) -> None:
    if not scope.contains(person.grid.code if person.grid_id else None):
        raise NotFound("person not found")
