import pytest

from jingkong.access.models import AuditLog, User
from jingkong.core.models import DomainEvent

pytestmark = pytest.mark.django_db


def _form(user, **changes):
    data = {"username": user.username, "role": user.role, "region": user.region_id or "", "display_name": "",
            "is_active": "on", "last_login_0": "", "last_login_1": "", "date_joined_0": "2022-01-01",
            "date_joined_1": "08:00:00"}
    data.update(changes)
    return data


def test_role_and_scope_changes_in_the_back_office_are_validated_audited_and_evented(admin_user, officer_a, regions,
                                                                                     client_for):
    client = client_for(admin_user)
    url = f"/admin/access/user/{officer_a.pk}/change/"
    refused = client.post(url, _form(officer_a, region=""), HTTP_ACCEPT_LANGUAGE="en")
    assert refused.status_code == 200 and "Only administrators may have no region" in refused.content.decode()
    officer_a.refresh_from_db()
    assert officer_a.region_id == regions["street_a"].pk

    moved = client.post(url, _form(officer_a, region=regions["street_b"].pk))
    assert moved.status_code == 302, moved.content.decode()[:2000]
    officer_a.refresh_from_db()
    assert officer_a.region == regions["street_b"]
    record = AuditLog.objects.get(action="user.change", object_id=str(officer_a.pk))
    assert record.username == "admin" and "region" in record.detail["fields"]
    assert DomainEvent.objects.filter(type="access.user_changed", subject_id=str(officer_a.pk)).exists()
    assert User.objects.filter(username="officer_a").count() == 1
