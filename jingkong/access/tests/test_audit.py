from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.db.models import ProtectedError

from jingkong.access import audit
from jingkong.access.models import AuditLog, AuditLogImmutable
from jingkong.conftest import make_user
from jingkong.core import clock
from jingkong.core.exceptions import ValidationFailed

T0 = dt.datetime(2022, 1, 10, 1, 0, tzinfo=dt.UTC)  # 09:00 in Asia/Shanghai


def _seed(officer_a, officer_b):
    """Three reads on three days: A's person on the 10th and 11th, B's person on the 12th (local days)."""
    for day, actor, person, grid in ((0, officer_a, "1", "330206002001001"), (1, officer_a, "2", "330206002001002"),
                                     (2, officer_b, "3", "330206004001001")):
        with clock.frozen(T0 + dt.timedelta(days=day)):
            audit.record(actor=actor, action="person.read", object_type="people.person", object_id=person,
                         region_code=grid)
    with clock.frozen(T0):
        audit.record(actor=officer_a, action="person.update", object_type="people.person", object_id="1",
                     region_code="330206002001001", detail={"fields": ["phone"]})


@pytest.mark.django_db
def test_records_cannot_be_changed_or_deleted_through_the_orm(officer_a):
    row = audit.record(actor=officer_a, action="person.read", object_type="people.person", object_id=7)
    row.action = "person.nothing"
    with pytest.raises(AuditLogImmutable):
        row.save()
    with pytest.raises(AuditLogImmutable):
        row.delete()
    with pytest.raises(AuditLogImmutable):
        AuditLog.objects.filter(pk=row.pk).update(action="x")
    with pytest.raises(AuditLogImmutable):
        AuditLog.objects.filter(pk=row.pk).delete()
    assert AuditLog.objects.get(pk=row.pk).action == "person.read"


@pytest.mark.django_db
def test_raw_update_is_rejected_by_the_database(officer_a):
    row = audit.record(actor=officer_a, action="person.read", object_type="people.person", object_id=7)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE access_auditlog SET action = 'forged' WHERE id = %s", [row.pk])
    assert AuditLog.objects.get(pk=row.pk).action == "person.read"


@pytest.mark.django_db
def test_raw_delete_is_rejected_by_postgresql(officer_a):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite keeps DELETE for Django's flush; the application guards refuse it (test above)")
    row = audit.record(actor=officer_a, action="person.read", object_type="people.person", object_id=7)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM access_auditlog WHERE id = %s", [row.pk])
    assert AuditLog.objects.filter(pk=row.pk).exists()


@pytest.mark.django_db
def test_users_with_an_audit_history_are_deactivated_not_deleted(officer_a):
    audit.record(actor=officer_a, action="person.read", object_type="people.person", object_id=7)
    with pytest.raises(ProtectedError):
        officer_a.delete()


@pytest.mark.django_db
def test_the_admin_shows_the_log_read_only_even_to_superusers(officer_a, admin_user, client_for):
    row = audit.record(actor=officer_a, action="person.read", object_type="people.person", object_id=7)
    c = client_for(admin_user)
    assert admin_user.is_superuser
    assert c.get("/admin/access/auditlog/").status_code == 200
    assert c.get(f"/admin/access/auditlog/{row.pk}/change/").status_code == 200  # the view page
    assert c.post(f"/admin/access/auditlog/{row.pk}/change/", {"action": "forged"}).status_code == 403
    assert c.get("/admin/access/auditlog/add/").status_code == 403
    assert c.post(f"/admin/access/auditlog/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditLog.objects.get(pk=row.pk).action == "person.read"


@pytest.mark.django_db
def test_the_api_filters_by_user_action_object_and_time(commander, officer_a, officer_b, client_for):
    _seed(officer_a, officer_b)
    c = client_for(commander)

    def ids(**query):
        r = c.get("/api/v1/access/audit", query)
        assert r.status_code == 200, r.content
        return sorted(item["object_id"] + ":" + item["action"] for item in r.json()["items"])

    assert ids(user="officer_a", action="person.read") == ["1:person.read", "2:person.read"]
    assert ids(action="person.") == ["1:person.read", "1:person.update", "2:person.read", "3:person.read"]
    assert ids(object="people.person:3") == ["3:person.read"]
    # local days: from the 11th to the 11th (inclusive) is one day
    assert ids(**{"from": "2022-01-11", "to": "2022-01-11", "action": "person.read"}) == ["2:person.read"]
    assert ids(**{"from": "2022-01-11T09:00:00+08:00", "action": "person.read"}) == ["2:person.read", "3:person.read"]
    bad = c.get("/api/v1/access/audit", {"from": "11/01/2022"})
    assert bad.status_code == 422 and "YYYY-MM-DD" in bad.json()["message"]


@pytest.mark.django_db
def test_the_api_shows_only_records_inside_the_callers_scope(regions, officer_a, officer_b, client_for):
    _seed(officer_a, officer_b)
    audit.record(actor=None, action="auth.login_failed", object_type="access.login", object_id="x")  # no region
    street_admin = make_user("street_admin_b", "administrator", regions["street_b"])
    items = client_for(street_admin).get("/api/v1/access/audit").json()["items"]
    assert {i["region_code"] for i in items} == {"330206004001001"}


@pytest.mark.django_db
def test_csv_export_route_streams_the_filtered_log_and_is_audited(commander, officer_a, officer_b, client_for):
    _seed(officer_a, officer_b)
    r = client_for(commander).get("/api/v1/access/audit/export.csv", {"user": "officer_a", "action": "person.read"})
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert [(row["object_id"], row["username"]) for row in rows] == [("1", "officer_a"), ("2", "officer_a")]
    assert rows[0]["at"] == T0.isoformat()
    export = AuditLog.objects.get(action=audit.EXPORT)
    assert export.username == "commander" and export.detail["rows"] == 2


@pytest.mark.django_db
def test_export_command_writes_the_period(tmp_path, officer_a, officer_b):
    _seed(officer_a, officer_b)
    out = tmp_path / "audit.csv"
    call_command("audit_export", "--from", "2022-01-11", "--to", "2022-01-12", "--out", str(out),
                 stdout=io.StringIO())
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["object_id"] for r in rows] == ["2", "3"]
    assert list(rows[0]) == audit.COLUMNS
    assert AuditLog.objects.filter(action=audit.EXPORT, user_agent="cli").count() == 1


def test_export_command_rejects_a_bad_date():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="invalid date"):
        call_command("audit_export", "--from", "yesterday", "--out", "-", stdout=io.StringIO())


def test_csv_cells_cannot_smuggle_spreadsheet_formulas():
    row = AuditLog(pk=1, at=T0, username="=HYPERLINK(\"x\")", action="person.read", user_agent="+cmd", detail={})
    cells = audit.csv_row(row)
    assert cells[2] == "'=HYPERLINK(\"x\")" and cells[9] == "'+cmd"


def test_time_bounds_are_local_days_or_iso_times(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    assert audit.parse_time_bound("2022-01-11") == dt.datetime(2022, 1, 10, 16, 0, tzinfo=dt.UTC)
    assert audit.parse_time_bound("2022-01-11", end=True) == dt.datetime(2022, 1, 11, 16, 0, tzinfo=dt.UTC)
    assert audit.parse_time_bound("2022-01-11T08:00:00Z") == dt.datetime(2022, 1, 11, 8, 0, tzinfo=dt.UTC)
    assert audit.parse_time_bound("") is None
    with pytest.raises(ValidationFailed):
        audit.parse_time_bound("2022-13-01")


@pytest.mark.django_db
def test_record_many_writes_one_row_per_object(officer_a):
    n = audit.record_many(actor=officer_a, action="person.list", object_type="people.person",
                          items=((str(i), "330206002001001") for i in range(12)))
    assert n == 12 == AuditLog.objects.filter(action="person.list", username="officer_a").count()
