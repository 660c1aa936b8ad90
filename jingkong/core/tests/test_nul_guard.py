"""A NUL character anywhere in a request is refused before any view runs (PostgreSQL cannot store one)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_api_json_body_with_nul_is_422_naming_the_body(regions, officer_a, client_for):
    from jingkong.people.models import Person

    before = Person.objects.count()
    r = client_for(officer_a).post("/api/v1/people/persons", data='{"name": "a\\u0000b"}',
                                   content_type="application/json")
    assert r.status_code == 422
    assert r.json()["extra"]["fields"][0]["field"] == "body"
    assert Person.objects.count() == before


def test_api_query_with_nul_is_422(regions, officer_a, client_for):
    r = client_for(officer_a).get("/api/v1/people/persons?q=a%00b")
    assert r.status_code == 422
    assert r.json()["extra"]["fields"][0]["field"] == "query"


def test_page_form_with_nul_is_400(regions, officer_a, client_for):
    r = client_for(officer_a).post("/i18n/setlang/", data="language=en%00", content_type="application/x-www-form-urlencoded")
    assert r.status_code == 400


def test_ordinary_requests_pass(regions, officer_a, client_for):
    assert client_for(officer_a).get("/api/v1/people/persons?q=%E5%BC%A0").status_code == 200
