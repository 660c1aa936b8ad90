"""Coverage (应检尽检), PostgreSQL only: a narrow index ``people_person_cov_id_grid`` = ``people_person (id) INCLUDE
(grid_id)``.

**What it serves.** The whole-round coverage (``jingkong.analytics.coverage``, the command centre's district view)
reads every swab of the round in person order from ``testing_sample_cov_cpt`` and needs each swabbed person's
residence grid. With this index PostgreSQL merge-joins the swabs with the persons from two index-only scans; without
it, it reads the whole person table (~10 M wide rows) or fetches each person's heap row. Measured at 10 M persons on
a loaded 2-core machine: 22 s → 13.5 s (``benchmarks/bench_coverage.py``).

**Why PostgreSQL only.** SQLite looks a person up by rowid, which already gives ``grid_id`` cheaply, and has no
``INCLUDE``; nothing is created there (``create``/``drop`` check the vendor, so the migration is a no-op on SQLite,
forwards and backwards).

**Cost.** One more index entry per person insert (imports, provisional persons made at a scan — not the swab itself),
about 25 bytes per person (≈ 250 MB at 10 M). Person ids only grow, so the index is appended to, never reshuffled.

**Kept across bulk loads.** The first-load fast path (``jingkong.core.bulk.load_into_empty``) drops and rebuilds a
table's non-unique indexes from the catalog (``pg_get_indexdef``), so this index survives it; so does the benchmark's
builder.

**Ownership.** ``people_person`` belongs to the people app; the index lives here, as plain SQL outside the model
state, because only coverage needs it. It could move into ``Person.Meta.indexes`` as ``Index(fields=["id"],
include=["grid"], name=INDEX)`` if the people app takes it over (Django creates covering indexes only where the
database supports them: PostgreSQL). Reversing this migration drops it.
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
