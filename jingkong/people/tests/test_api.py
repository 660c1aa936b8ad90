import pytest

from jingkong.access.models import AuditLog
from jingkong.people.importer import import_persons
from jingkong.people.models import Household, Person
from jingkong.people.tests.helpers import make_buildings, person_row, write_persons

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(regions, tmp_path):
    make_buildings(regions)
    rows = [person_row(i) for i in range(1, 7)]  # odd → street A (B-a1-1), even → street B (B-b1-1)
    import_persons(write_persons(tmp_path / "p.csv", rows))
    return rows


def _person(rows, i):
    from jingkong.people.idnumber import id_hash

    return Person.objects.get(id_hash=id_hash(rows[i - 1]["id_number"]))


def test_list_is_scoped_to_the_callers_region(people, officer_a, officer_b, commander, client_for):
    a = client_for(officer_a).get("/api/v1/people/persons").json()
    assert a["count"] == 3 and {p["grid"] for p in a["items"]} == {"330206002001001"}
    assert client_for(commander).get("/api/v1/people/persons").json()["count"] == 6
    assert client_for(officer_b).get("/api/v1/people/persons?region=330206002").status_code == 404
    log = AuditLog.objects.filter(action="person.list", username="officer_a").get()
    assert log.detail["count"] == 3


def test_list_filters(people, commander, client_for):
    c = client_for(commander)
    assert c.get("/api/v1/people/persons?grid=330206004001001").json()["count"] == 3
    assert c.get("/api/v1/people/persons?q=居民1").json()["count"] == 1
    assert c.get("/api/v1/people/persons?building=B-a1-1&page_size=2").json()["items"].__len__() == 2
    assert c.get("/api/v1/people/persons?household=H00000").json()["count"] == 2


def test_detail_outside_scope_is_not_found(people, officer_b, officer_a, client_for):
    person = _person(people, 1)  # street A
    assert client_for(officer_b).get(f"/api/v1/people/persons/{person.pk}").status_code == 404
    assert client_for(officer_a).get(f"/api/v1/people/persons/{person.pk}").status_code == 200
    lookup = client_for(officer_b).post("/api/v1/people/persons/lookup", {"id_number": people[0]["id_number"]},
                                        content_type="application/json")
    assert lookup.status_code == 404


def test_detail_reads_are_audited_and_ids_masked(people, officer_a, client_for):
    person = _person(people, 1)
    body = client_for(officer_a).post("/api/v1/people/persons/lookup", {"id_number": people[0]["id_number"]},
                                      content_type="application/json").json()
    assert body["id"] == person.pk and body["id_masked"] == people[0]["id_number"][:6] + "********" + people[0]["id_number"][-4:]
    assert people[0]["id_number"] not in str(body)
    client_for(officer_a).get(f"/api/v1/people/persons/{person.pk}")
    reads = AuditLog.objects.filter(action="person.view", object_id=str(person.pk), username="officer_a")
    assert reads.count() == 2


def test_phone_is_masked_for_roles_without_the_phone_permission(people, officer_a, grid_worker_a, client_for):
    # Since the access change "full phone numbers only for roles that call residents": grid workers see them,
    # street officers see the masked form.
    person = _person(people, 1)
    assert client_for(grid_worker_a).get(f"/api/v1/people/persons/{person.pk}").json()["phone"] == person.phone
    masked = client_for(officer_a).get(f"/api/v1/people/persons/{person.pk}").json()["phone"]
    assert masked == person.phone[:3] + "****" + person.phone[-4:]


def test_volunteers_cannot_read_persons(people, volunteer_a, client_for):
    assert client_for(volunteer_a).get("/api/v1/people/persons").status_code == 403


def test_household_detail_lists_members_and_audits_each(people, officer_a, officer_b, client_for):
    household = Household.objects.get(code="H00000")  # persons 1, 2 (street A and B buildings); household in A
    body = client_for(officer_a).get(f"/api/v1/people/households/{household.pk}").json()
    assert body["code"] == "H00000" and len(body["members"]) == body["size"] == household.members.count()
    assert AuditLog.objects.filter(action="person.view", username="officer_a").count() == household.members.count()
    other = Household.objects.exclude(grid__code__startswith="330206002").first()
    assert client_for(officer_a).get(f"/api/v1/people/households/{other.pk}").status_code == 404


def test_export_is_scoped_and_audited(people, officer_a, client_for):
    response = client_for(officer_a).get("/api/v1/people/persons/export.csv?region=330206002")
    lines = response.content.decode("utf-8-sig").strip().splitlines()
    assert response.status_code == 200 and len(lines) == 4
    assert AuditLog.objects.get(action="person.export").detail["count"] == 3


def test_create_and_update_persons(regions, officer_a, client_for):
    from jingkong.people.tests.helpers import make_id

    make_buildings(regions)
    import datetime as dt

    number = make_id(dt.date(1980, 5, 6), 11)
    c = client_for(officer_a)
    created = c.post("/api/v1/people/persons", {"id_number": number, "name": "新人", "sex": "M",
                                                "building_code": "B-a1-1", "household_code": "HX1",
                                                "vulnerable": ["chronic"]}, content_type="application/json")
    assert created.status_code == 201, created.content
    pid = created.json()["id"]
    assert Household.objects.get(code="HX1").members.count() == 1
    again = c.post("/api/v1/people/persons", {"id_number": number, "name": "x", "sex": "M",
                                              "building_code": "B-a1-1"}, content_type="application/json")
    assert again.status_code == 409
    outside = c.post("/api/v1/people/persons", {"id_number": make_id(dt.date(1981, 1, 1), 13), "name": "x",
                                                "sex": "M", "building_code": "B-b1-1"}, content_type="application/json")
    assert outside.status_code == 422
    updated = c.patch(f"/api/v1/people/persons/{pid}", {"phone": "13900000000", "industry": "port"},
                      content_type="application/json")
    assert updated.json()["industry"] == "port"
    assert AuditLog.objects.filter(action__in=["person.create", "person.update"], object_id=str(pid)).count() == 2


def test_upload_queues_an_import_job_limited_to_the_region(regions, officer_a, client_for, tmp_path, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from jingkong.core import jobs

    settings.DATA_DIR = tmp_path
    make_buildings(regions)
    data = write_persons(tmp_path / "p.csv", [person_row(1), person_row(2)]).read_bytes()
    response = client_for(officer_a).post("/api/v1/people/imports",
                                          {"file": SimpleUploadedFile("p.csv", data, "text/csv")})
    assert response.status_code == 202 and response.json()["kind"] == "people.import_persons"
    assert jobs.work(once=True) == 1
    assert list(Person.objects.values_list("grid__code", flat=True)) == ["330206002001001"]
    uploads = tmp_path / "uploads"
    assert [p.name for p in uploads.iterdir() if not p.name.endswith(".errors.csv")] == []  # clear IDs gone


def test_a_persons_audit_trail_shows_the_import_and_each_read(people, officer_a, commander, client_for):
    person = _person(people, 1)
    client_for(officer_a).get(f"/api/v1/people/persons/{person.pk}")
    assert client_for(officer_a).get(f"/api/v1/people/persons/{person.pk}/audit").status_code == 403  # no AUDIT_VIEW
    trail = client_for(commander).get(f"/api/v1/people/persons/{person.pk}/audit")
    assert trail.status_code == 200
    actions = [(r["action"], r["username"]) for r in trail.json()]
    assert ("person.view", "officer_a") in actions
    assert any(a == "person.import" for a, _ in actions)
    other = _person(people, 2)  # street B: its reads are not in person 1's trail
    client_for(commander).get(f"/api/v1/people/persons/{other.pk}")
    again = client_for(commander).get(f"/api/v1/people/persons/{person.pk}/audit").json()
    assert all(r["object_id"] in ("", str(person.pk)) for r in again)
