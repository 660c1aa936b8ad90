from __future__ import annotations

import datetime as dt

from ninja import Schema
from pydantic import Field

from jingkong.people import idnumber
from jingkong.people.models import Person, Vulnerable


class PersonOut(Schema):
    id: int
    id_masked: str
    name: str
    sex: str
    birth_date: dt.date
    phone: str
    household: str | None
    building: str | None
    grid: str | None
    unit: str
    room: str
    registered_address: str
    is_registered_local: bool
    vulnerable: list[str]
    industry: str
    employer: str
    workplace: str | None
    source: str
    needs_review: bool


def person_out(person: Person, *, show_phone: bool) -> dict:
    return {
        "id": person.pk, "id_masked": person.id_masked, "name": person.name, "sex": person.sex,
        "birth_date": person.birth_date,
        "phone": person.phone if show_phone else idnumber.phone_mask(person.phone),
        "household": person.household.code if person.household_id else None,
        "building": person.building.code if person.building_id else None,
        "grid": person.grid.code if person.grid_id else None,
        "unit": person.unit, "room": person.room, "registered_address": person.registered_address,
        "is_registered_local": person.is_registered_local,
        "vulnerable": [Vulnerable(f).name.lower() for f in person.vulnerable_groups],
        "industry": person.industry, "employer": person.employer,
        "workplace": person.workplace.code if person.workplace_id else None,
        "source": person.source, "needs_review": person.needs_review,
    }


class PersonPage(Schema):
    count: int
    page: int
    page_size: int
    items: list[PersonOut]


class HouseholdOut(Schema):
    id: int
    code: str
    building: str
    grid: str
    unit: str
    room: str
    size: int
    members: list[PersonOut]


class LookupIn(Schema):
    id_number: str = Field(min_length=15, max_length=18)


class PersonCreateIn(Schema):
    id_number: str = Field(min_length=15, max_length=18)
    name: str = Field(min_length=1, max_length=64)
    sex: str = Field(pattern="^[MF]$")
    birth_date: dt.date | None = None
    phone: str = Field(default="", max_length=20)
    building_code: str = ""
    household_code: str = ""
    unit: str = Field(default="", max_length=16)
    room: str = Field(default="", max_length=16)
    registered_address: str = Field(default="", max_length=255)
    is_registered_local: bool = True
    vulnerable: list[str] = []
    industry: str = ""
    employer: str = Field(default="", max_length=255)
    workplace_venue_code: str = ""


class PersonUpdateIn(Schema):
    name: str | None = Field(default=None, min_length=1, max_length=64)
    phone: str | None = Field(default=None, max_length=20)
    building_code: str | None = None
    household_code: str | None = None
    unit: str | None = Field(default=None, max_length=16)
    room: str | None = Field(default=None, max_length=16)
    registered_address: str | None = Field(default=None, max_length=255)
    is_registered_local: bool | None = None
    vulnerable: list[str] | None = None
    industry: str | None = None
    employer: str | None = Field(default=None, max_length=255)
    workplace_venue_code: str | None = None
    needs_review: bool | None = None
