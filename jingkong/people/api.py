"""The population baseline API (/api/v1/people/). ID numbers are always masked; every person read is audited."""

from __future__ import annotations

import csv
import io
import uuid

from django.conf import settings
from django.http import HttpResponse
from ninja import File, Router, Status
from ninja.files import UploadedFile

from jingkong.access import audit
from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.access.schemas import AuditOut
from jingkong.core import jobs
from jingkong.core.exceptions import PermissionDenied, ValidationFailed
from jingkong.core.schemas import JobOut
from jingkong.people import selectors, services
from jingkong.people.importer import parse_vulnerable
from jingkong.people.models import Vulnerable
from jingkong.people.schemas import (
    HouseholdOut,
    LookupIn,
    PersonCreateIn,
    PersonOut,
    PersonPage,
    PersonUpdateIn,
    person_out,
)

router = Router(tags=["people"])
EXPORT_COLUMNS = ["id", "id_masked", "name", "sex", "birth_date", "phone", "household", "building", "grid", "unit",
                  "room", "vulnerable", "industry", "employer", "workplace"]


def _show_phone(request) -> bool:
    return request.jk_user.has_role_perm(Perm.PERSON_VIEW_PHONE)


def _vulnerable(value: str) -> int:
    if not value:
        return 0
    if value.isdigit():
        flags = int(value)
        if flags >= 1 << len(Vulnerable):
            raise ValidationFailed(f"vulnerable: {value} is not a combination of the known groups",
                                   extra={"field": "vulnerable"})
        return flags
    try:
        return parse_vulnerable(value)
    except ValueError as exc:
        raise ValidationFailed(f"unknown vulnerable group {exc}", extra={"field": "vulnerable"}) from None


def _filters(region, grid, building, household, vulnerable, industry, q) -> dict:
    return {k: v for k, v in dict(region=region, grid=grid, building=building, household=household,
                                  vulnerable=_vulnerable(vulnerable), industry=industry, q=q).items() if v}


@router.get("/persons", response=PersonPage)
@require(Perm.PERSON_VIEW)
def persons_list(request, region: str = "", grid: str = "", building: str = "", household: str = "",
                 vulnerable: str = "", industry: str = "", q: str = "", page: int = 1, page_size: int = 50):
    """Persons in the caller's region (or a sub-region), filtered and paginated. One audit record per read."""
    filters = _filters(region, grid, building, household, vulnerable, industry, q)
    qs = selectors.person_list(scope=request.scope, **filters)
    page, page_size = max(1, page), max(1, min(page_size, 500))
    count = qs.count()
    items = list(qs[(page - 1) * page_size: page * page_size])
    audit.record(actor=request.jk_user, action="person.list", object_type="people.person",
                 region_code=region or request.scope.prefix or "", request=request,
                 detail={"filters": {k: str(v) for k, v in filters.items()}, "count": count, "page": page,
                         "returned": len(items)})
    show = _show_phone(request)
    return {"count": count, "page": page, "page_size": page_size, "items": [person_out(p, show_phone=show) for p in items]}


@router.get("/persons/export.csv")
@require(Perm.PERSON_VIEW)
def persons_export(request, region: str = "", grid: str = "", building: str = "", household: str = "",
                   vulnerable: str = "", industry: str = "", q: str = ""):
    """The filtered persons of a region as CSV (ID numbers masked; phones masked unless the role may see them)."""
    filters = _filters(region, grid, building, household, vulnerable, industry, q)
    qs = selectors.person_list(scope=request.scope, **filters)
    show = _show_phone(request)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for person in qs.iterator(chunk_size=5000):
        row = person_out(person, show_phone=show)
        row["vulnerable"] = ";".join(row["vulnerable"])
        writer.writerow([row[c] for c in EXPORT_COLUMNS])
        count += 1
    audit.record(actor=request.jk_user, action="person.export", object_type="people.person",
                 region_code=region or request.scope.prefix or "", request=request,
                 detail={"filters": {k: str(v) for k, v in filters.items()}, "count": count})
    response = HttpResponse("\ufeff" + buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="persons-{region or "all"}.csv"'
    return response


def _detail(request, person) -> dict:
    audit.record(actor=request.jk_user, action="person.view", object_type="people.person", object_id=person.pk,
                 region_code=person.grid.code if person.grid_id else "", request=request)
    return person_out(person, show_phone=_show_phone(request))


@router.post("/persons/lookup", response=PersonOut)
@require(Perm.PERSON_VIEW)
def persons_lookup(request, payload: LookupIn):
    """Find a person by ID number (sent in the body, never in the URL; matched by its keyed hash). Audited."""
    return _detail(request, selectors.person_get_by_id_number(scope=request.scope, number=payload.id_number))


@router.get("/persons/{person_id}", response=PersonOut)
@require(Perm.PERSON_VIEW)
def persons_get(request, person_id: int):
    """One person (audited)."""
    return _detail(request, selectors.person_get(scope=request.scope, person_id=person_id))


@router.get("/persons/{person_id}/audit", response=list[AuditOut])
@require(Perm.AUDIT_VIEW)
def persons_audit(request, person_id: int):
    """Who read or changed this person, and when: direct records and the import runs that wrote them."""
    return selectors.person_audit(scope=request.scope, person_id=person_id)


@router.post("/persons", response={201: PersonOut})
@require(Perm.PERSON_EDIT)
def persons_create(request, payload: PersonCreateIn):
    """Register one person in the caller's region."""
    person = services.person_create(actor=request.jk_user, scope=request.scope, request=request, **payload.dict())
    return Status(201, person_out(person, show_phone=_show_phone(request)))


@router.patch("/persons/{person_id}", response=PersonOut)
@require(Perm.PERSON_EDIT)
def persons_update(request, person_id: int, payload: PersonUpdateIn):
    """Change a person's editable fields."""
    person = selectors.person_get(scope=request.scope, person_id=person_id)
    person = services.person_update(actor=request.jk_user, scope=request.scope, person=person, request=request,
                                    **payload.dict(exclude_unset=True))
    return person_out(person, show_phone=_show_phone(request))


@router.get("/households/{household_id}", response=HouseholdOut)
@require(Perm.PERSON_VIEW)
def households_get(request, household_id: int):
    """A household with its members (each member's read is audited)."""
    household = selectors.household_get(scope=request.scope, household_id=household_id)
    members = selectors.household_members(household=household)
    audit.record_many(actor=request.jk_user, action="person.view", object_type="people.person", request=request,
                      items=[(p.pk, household.grid.code) for p in members], detail={"household": household.code})
    show = _show_phone(request)
    return {"id": household.pk, "code": household.code, "building": household.building.code,
            "grid": household.grid.code, "unit": household.unit, "room": household.room, "size": len(members),
            "members": [person_out(p, show_phone=show) for p in members]}


@router.post("/imports", response={202: JobOut})
@require(Perm.PERSON_EDIT)
def imports_create(request, file: UploadedFile = File(...), dry_run: bool = False):  # noqa: B008
    """Upload a persons CSV; it is imported by a background job (rows limited to the caller's region).

    The upload is deleted once imported (it holds ID numbers in clear); rejected rows go to an error file with
    masked ID numbers, named in the job's result."""
    if request.scope.prefix is None:  # a user without a region may not import anything (never "everything")
        raise PermissionDenied("your account has no region: ask an administrator to set one")
    folder = settings.DATA_DIR / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"persons-{uuid.uuid4().hex}.csv"
    with open(path, "wb") as fh:
        for chunk in file.chunks():
            fh.write(chunk)
    scope = request.scope.prefix
    job = jobs.enqueue("people.import_persons", {"path": str(path), "dry_run": dry_run, "scope_prefix": scope,
                                                "delete_after": True},
                       actor=request.jk_user, region_code=scope)
    return Status(202, job)
