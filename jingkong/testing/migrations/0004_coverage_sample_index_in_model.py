"""Coverage (应检尽检): the covering sample index moves into the model; the index it makes redundant goes.

``testing_sample_cov_cpt`` (campaign_id, person_id, tube_id) was created by ``testing.0002`` with plain SQL, outside
the model state. It is now declared in ``Sample.Meta.indexes``: this migration adds it to the state and, on the
database, only makes sure it exists (``CREATE INDEX IF NOT EXISTS``: a no-op wherever 0002 ran, which is everywhere
this migration runs). ``testing_sample_campaign_person`` (campaign_id, person_id) is a prefix of it: every lookup it
served — a person's swabs in a round — the covering index serves as well, so it is dropped and the sampling hot path
maintains one index fewer per swab.

Reversing restores ``testing_sample_campaign_person`` and takes the covering index out of the state again; the index
itself stays until ``testing.0002`` is reversed (its reverse drops it).
"""

from django.db import migrations, models

COVERING = "testing_sample_cov_cpt"


class Migration(migrations.Migration):
    dependencies = [
        ("testing", "0003_coverage_person_grid_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(
                    model_name="sample",
                    index=models.Index(fields=["campaign", "person", "tube"], name=COVERING),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=f"CREATE INDEX IF NOT EXISTS {COVERING} ON testing_sample (campaign_id, person_id, tube_id)",
                    reverse_sql=migrations.RunSQL.noop,
                ),
            ],
        ),
        migrations.RemoveIndex(model_name="sample", name="testing_sample_campaign_person"),
    ]
