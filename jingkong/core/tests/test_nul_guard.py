"""A NUL character that reaches the database gives a clear 422/400, never a 500 (PostgreSQL cannot store one)."""

from __future__ import annotations

import pytest
from django.db import DataError
from django.test import RequestFactory

from jingkong.core.middleware import NulCharacterMiddleware

NUL_ERROR = DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")


def _middleware():
    return NulCharacterMiddleware(lambda request: None)


def test_api_nul_error_becomes_422_in_the_api_error_shape():
    response = _middleware().process_exception(RequestFactory().post("/api/v1/people/persons"), NUL_ERROR)
    assert response.status_code == 422
    import json

    assert json.loads(response.content)["code"] == "validation_failed"


@pytest.mark.django_db
def test_page_nul_error_becomes_400_page():
    response = _middleware().process_exception(RequestFactory().post("/testing/"), NUL_ERROR)
    assert response.status_code == 400


def test_other_errors_are_left_alone():
    assert _middleware().process_exception(RequestFactory().get("/api/v1/x"), DataError("value too long")) is None
    assert _middleware().process_exception(RequestFactory().get("/api/v1/x"), KeyError("NUL")) is None


@pytest.mark.django_db
def test_a_nul_in_a_person_search_never_answers_500(regions, officer_a, client_for):
    r = client_for(officer_a).get("/api/v1/people/persons?q=a%00b")
    assert r.status_code in (200, 422)
