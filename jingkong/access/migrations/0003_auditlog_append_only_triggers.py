"""Database triggers that make the audit log append-only, below the application.

PostgreSQL: a row trigger rejects UPDATE and DELETE. TRUNCATE (an owner-level maintenance statement, also what
Django's ``flush`` and the test runner use on PostgreSQL) is not blocked.
SQLite: a trigger rejects UPDATE. DELETE is left to the application's guards because Django's ``flush`` (and so the
test runner's transactional tests) empties SQLite tables with DELETE.
Note: on SQLite, a later migration that rebuilds ``access_auditlog`` (most AlterField operations) drops the trigger:
such a migration must re-create it (the test ``test_raw_update_is_rejected_by_the_database`` catches the loss).
"""

from django.db import migrations

PG_FORWARD = [
    """CREATE OR REPLACE FUNCTION access_auditlog_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = 'the audit log is append-only: ' || TG_OP || ' on access_auditlog is not allowed',
        ERRCODE = 'insufficient_privilege';
END
$$""",
    "DROP TRIGGER IF EXISTS access_auditlog_append_only ON access_auditlog",
    """CREATE TRIGGER access_auditlog_append_only BEFORE UPDATE OR DELETE ON access_auditlog
    FOR EACH ROW EXECUTE FUNCTION access_auditlog_append_only()""",
]
PG_REVERSE = [
    "DROP TRIGGER IF EXISTS access_auditlog_append_only ON access_auditlog",
    "DROP FUNCTION IF EXISTS access_auditlog_append_only()",
]
SQLITE_FORWARD = [
    "DROP TRIGGER IF EXISTS access_auditlog_no_update",
    """CREATE TRIGGER access_auditlog_no_update BEFORE UPDATE ON access_auditlog
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: UPDATE on access_auditlog is not allowed'); END""",
]
SQLITE_REVERSE = ["DROP TRIGGER IF EXISTS access_auditlog_no_update"]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        statements = statements_by_vendor.get(schema_editor.connection.vendor)
        if statements is None:
            return  # another database: the application's guards still apply
        for sql in statements:
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("access", "0002_auditlog_protect_user_action_index"),
    ]

    operations = [
        migrations.RunPython(
            _run({"postgresql": PG_FORWARD, "sqlite": SQLITE_FORWARD}),
            _run({"postgresql": PG_REVERSE, "sqlite": SQLITE_REVERSE}),
        ),
    ]
