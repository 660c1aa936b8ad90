"""The sample table's indexes after the migrations: coverage's covering index is there, the redundant prefix index
(campaign, person) is not (the sampling hot path would maintain both), and the models agree with the migrations."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection


def _indexes(table: str) -> dict[str, list[str]]:
    with connection.cursor() as c:
        constraints = connection.introspection.get_constraints(c, table)
    return {name: info["columns"] for name, info in constraints.items() if info["index"] and not info["unique"]
            and not info["primary_key"]}


@pytest.mark.django_db
def test_one_sample_index_serves_coverage_and_the_hot_path():
    indexes = _indexes("testing_sample")
    assert indexes.get("testing_sample_cov_cpt") == ["campaign_id", "person_id", "tube_id"]
    starting_with_campaign = [cols for cols in indexes.values() if cols[:1] == ["campaign_id"]]
    assert starting_with_campaign == [["campaign_id", "person_id", "tube_id"]]


@pytest.mark.django_db
def test_postgresql_has_the_narrow_person_grid_index():
    names = _indexes("people_person")
    if connection.vendor == "postgresql":
        with connection.cursor() as c:
            c.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'people_person_cov_id_grid'")
            [(definition,)] = c.fetchall()
        assert "(id) INCLUDE (grid_id)" in definition
    else:
        assert "people_person_cov_id_grid" not in names


@pytest.mark.django_db
def test_models_and_migrations_agree():
    out = io.StringIO()
    call_command("makemigrations", "testing", "--check", "--dry-run", stdout=out)  # exits non-zero on a change
    assert "No changes detected" in out.getvalue()
