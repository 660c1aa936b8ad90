"""Coverage (应检尽检): a covering index for each person's samples in a campaign with their tubes.

``(campaign_id, person_id, tube_id)`` lets coverage read every swab of a campaign in person order — and probe one
person's swabs — from the index alone, without visiting the sample rows (jingkong.analytics.coverage). It is created
here with plain SQL, outside the model state; ``testing.0004`` declares it in ``Sample.Meta.indexes`` (same name and
columns) and drops ``testing_sample_campaign_person`` (``campaign_id, person_id``), a prefix of it, so the sampling
hot path maintains one index, not two.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("testing", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(
            sql="CREATE INDEX IF NOT EXISTS testing_sample_cov_cpt ON testing_sample (campaign_id, person_id, tube_id)",
            reverse_sql="DROP INDEX IF EXISTS testing_sample_cov_cpt",
        ),
    ]
