"""Coverage (应检尽检), PostgreSQL only: a narrow index ``people_person (id) INCLUDE (grid_id)``.

The whole-campaign coverage reads every swab of the round in person order and needs each person's residence grid:
with this index PostgreSQL merge-joins the swabs with persons from two index-only scans instead of reading the whole
person table (measured at 10 M persons: 22 s → 13.5 s on a loaded 2-core machine; benchmarks/bench_coverage.py).
Person ids only grow, so the index is appended to, never reshuffled. SQLite looks persons up by rowid, which is as
good there, so nothing is created on SQLite. Plain SQL outside the model state (people_person belongs to the people
app); ``people_person_cov_id_grid`` could move into ``Person.Meta.indexes`` if the people app takes it over.
"""

from django.db import migrations

INDEX = "people_person_cov_id_grid"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON people_person (id) INCLUDE (grid_id)")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("testing", "0002_coverage_indexes"),
        ("people", "0001_initial"),
    ]

    operations = [migrations.RunPython(create, drop, elidable=False)]
