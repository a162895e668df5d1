"""PostgreSQL only: a trigram index for "contains" search over contact search terms.

SQLite has no pg_trgm; it scans the (small, embedded) table instead. The schema stays portable.
"""

from django.db import migrations

CREATE = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS searchterm_value_trgm ON messaging_contactsearchterm USING gin (value gin_trgm_ops)",
]
DROP = ["DROP INDEX IF EXISTS searchterm_value_trgm"]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in CREATE:
            schema_editor.execute(statement)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in DROP:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("messaging", "0001_address_book")]
    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
