from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from jingkong.access import audit, selectors
from jingkong.access.models import AuditLog
from jingkong.core import clock


def _error_code(response) -> str:
    return response.context["form"].non_field_errors().as_data()[0].code

PASSWORD = "pw-officer_a-123"  # conftest.make_user's password for officer_a


@pytest.mark.django_db
def test_login_page_is_served_to_anonymous_visitors(officer_a):
    r = Client().get("/login/")
    assert r.status_code == 200
    assert b'name="csrfmiddlewaretoken"' in r.content and b'name="password"' in r.content


@pytest.mark.django_db
def test_posting_the_form_logs_in_and_records_the_login(officer_a):
    c = Client(enforce_csrf_checks=True)
    page = c.get("/login/")
    token = page.cookies["csrftoken"].value
    r = c.post("/login/", {"username": "officer_a", "password": PASSWORD, "csrfmiddlewaretoken": token})
    assert r.status_code == 302 and r["Location"] == "/"
    assert c.get("/api/v1/access/me").json()["username"] == "officer_a"
    row = AuditLog.objects.get(action=audit.LOGIN)
    assert (row.username, row.object_id, row.ip, row.region_code) == ("officer_a", "officer_a", "127.0.0.1", "330206002")


@pytest.mark.django_db
def test_login_without_csrf_token_is_refused(officer_a):
    c = Client(enforce_csrf_checks=True)
    r = c.post("/login/", {"username": "officer_a", "password": PASSWORD})
    assert r.status_code == 403
    assert "_auth_user_id" not in c.session


@pytest.mark.django_db
def test_wrong_password_shows_the_form_again_and_is_audited(officer_a):
    r = Client().post("/login/", {"username": "officer_a", "password": "wrong"})
    assert r.status_code == 200 and _error_code(r) == "invalid_login"
    assert AuditLog.objects.filter(action=audit.LOGIN_FAILED, object_id="officer_a").count() == 1


@pytest.mark.django_db
def test_repeated_failures_lock_the_username_for_a_while(officer_a):
    t0 = dt.datetime(2022, 1, 10, 9, 0, tzinfo=dt.UTC)
    with clock.frozen(t0):
        for _ in range(selectors.LOCKOUT_FAILURES):
            Client().post("/login/", {"username": "officer_a", "password": "wrong"})
        # given the lockout, even the right password is refused (without being checked)
        r = Client().post("/login/", {"username": "officer_a", "password": PASSWORD})
        assert r.status_code == 200 and _error_code(r) == "locked"
        assert "15" in r.content.decode()  # the message says how long
        assert AuditLog.objects.filter(action=audit.LOGIN_LOCKED).count() == 1
    with clock.frozen(t0 + selectors.LOCKOUT_WINDOW + dt.timedelta(seconds=1)):
        r = Client().post("/login/", {"username": "officer_a", "password": PASSWORD})
        assert r.status_code == 302


@pytest.mark.django_db
def test_a_successful_login_resets_the_failure_count(officer_a):
    t0 = dt.datetime(2022, 1, 10, 9, 0, tzinfo=dt.UTC)
    with clock.frozen(t0):
        for _ in range(selectors.LOCKOUT_FAILURES - 1):
            Client().post("/login/", {"username": "officer_a", "password": "wrong"})
    with clock.frozen(t0 + dt.timedelta(minutes=1)):
        assert Client().post("/login/", {"username": "officer_a", "password": PASSWORD}).status_code == 302
    with clock.frozen(t0 + dt.timedelta(minutes=2)):
        Client().post("/login/", {"username": "officer_a", "password": "wrong"})
        assert selectors.login_locked(username="officer_a", ip="127.0.0.1", now=clock.now()) is False


@pytest.mark.django_db
def test_logout_ends_the_session(officer_a, client_for):
    c = client_for(officer_a)
    assert c.post("/logout/").status_code == 302
    assert c.get("/api/v1/access/me").status_code == 401
    assert AuditLog.objects.filter(action=audit.LOGOUT, username="officer_a").exists()


@pytest.mark.django_db
def test_session_writes_to_the_api_need_the_csrf_token(officer_a):
    c = Client(enforce_csrf_checks=True)
    c.force_login(officer_a)
    refused = c.post("/api/v1/access/tokens", {"name": "phone"}, content_type="application/json")
    assert refused.status_code == 403
    token = "k" * 32  # a CSRF secret, as the cookie a page would have set
    c.cookies["csrftoken"] = token
    ok = c.post("/api/v1/access/tokens", {"name": "phone"}, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert ok.status_code == 201
    # reads need no token
    assert c.get("/api/v1/access/me").status_code == 200


@pytest.mark.django_db
def test_pages_redirect_anonymous_visitors_to_the_login(regions):
    r = Client().get("/")
    assert r.status_code == 302 and r["Location"].startswith("/login/?next=/")


@pytest.mark.django_db
def test_page_refusal_uses_the_error_page(regions, client_for):
    from django.test import RequestFactory

    from jingkong.access.guard import require
    from jingkong.access.roles import Perm
    from jingkong.conftest import make_user
    from jingkong.core.middleware import ApplicationErrorMiddleware

    @require(Perm.AUDIT_VIEW)
    def page(request):  # pragma: no cover - never reached
        raise AssertionError

    request = RequestFactory().get("/somewhere")
    request.user = make_user("vol", "service_volunteer", regions["street_a"])
    from jingkong.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied) as exc:
        page(request)
    response = ApplicationErrorMiddleware(lambda r: None).process_exception(request, exc.value)
    assert response.status_code == 403 and "audit.view" in response.content.decode()
