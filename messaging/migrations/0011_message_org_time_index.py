"""PostgreSQL only: the organization's messages in time order, for a search matching many of them.

Search (``messaging.search``) asks for an organization's messages matching its words, newest
first, a page at a time. For a word in few messages the GIN index (0007) finds them all and
they are sorted. For a word in many, that is every matching row read from the heap, filtered
by organization and sorted to keep 51: ~350 ms for 100k matches in a 1.5M-message table
(bench/inbox_queries.py). With this index PostgreSQL walks the organization's messages newest
first instead and tests each until the page is full (~5 ms for the same search); it chooses
between the two by the word's frequency, from the statistics of 0007's expression.

Built ``CONCURRENTLY`` (so outside a transaction), as the message table takes writes all the
time; an index left invalid by a failed build is dropped first. SQLite has no such index; its
search is a substring match (``messaging.search``), and the model keeps its portable indexes.
"""

from django.db import migrations

NAME = "message_org_time"
CREATE = (
    f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {NAME} "
    'ON messaging_message (organization_id, "timestamp", id)'
)
INVALID = (
    "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
    "WHERE c.relname = %s AND NOT i.indisvalid"
)
DROP = f"DROP INDEX CONCURRENTLY IF EXISTS {NAME}"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(INVALID, [NAME])
        if cursor.fetchone():
            schema_editor.execute(DROP)
    schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction

    dependencies = [("messaging", "0010_chat_snoozed_index")]
    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
