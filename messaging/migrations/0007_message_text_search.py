"""PostgreSQL only: a GIN index over the words of message bodies and captions, for search.

The indexed expression is ``messaging.search.VECTOR``, spelled out here as it was when this
migration was written (a migration must not change with the code). SQLite has no such index;
``messaging.search`` falls back to substring matches there. The schema stays portable.
"""

from django.db import migrations

CREATE = (
    "CREATE INDEX IF NOT EXISTS message_text_search ON messaging_message USING gin "
    "(to_tsvector('simple'::regconfig, body || ' ' || caption))"
)
DROP = "DROP INDEX IF EXISTS message_text_search"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("messaging", "0006_chats_and_messages")]
    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
