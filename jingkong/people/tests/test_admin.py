import pytest

from jingkong.access.models import AuditLog
from jingkong.people.importer import import_persons
from jingkong.people.models import Person
from jingkong.people.tests.helpers import make_buildings, person_row, write_persons

pytestmark = pytest.mark.django_db


def test_the_back_office_shows_persons_masked_read_only_and_audited(regions, admin_user, client_for, tmp_path):
    make_buildings(regions)
    row = person_row(1, phone="13812345678")
    import_persons(write_persons(tmp_path / "p.csv", [row]))
    person = Person.objects.get()
    client = client_for(admin_user)
    page = client.get(f"/admin/people/person/{person.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert row["id_number"] not in html and "13812345678" not in html and "138****5678" in html
    assert AuditLog.objects.filter(action="person.view", object_id=str(person.pk), username="admin").count() == 1
    assert client.post(f"/admin/people/person/{person.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/people/person/add/").status_code == 403
    assert Person.objects.filter(pk=person.pk).exists()
