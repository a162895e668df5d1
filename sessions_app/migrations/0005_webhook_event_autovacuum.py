"""The inbound queue's table is vacuumed and analyzed every few thousand changes, not at a tenth
of its size: every applied row leaves a dead entry in the pending index, and a claim scanning
thousands of them (and planning with statistics from when the table was empty) grew from a
millisecond to tens (bench/inbox_latency.py). PostgreSQL only."""

from django.db import migrations

TABLE = "sessions_app_webhookevent"
OPTIONS = (
    "autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000, "
    "autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 5000"
)


def tune(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {TABLE} SET ({OPTIONS})")


def untune(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        names = ", ".join(option.split(" = ")[0] for option in OPTIONS.split(", "))
        schema_editor.execute(f"ALTER TABLE {TABLE} RESET ({names})")


class Migration(migrations.Migration):
    dependencies = [("sessions_app", "0004_webhook_event_prune_index")]

    operations = [migrations.RunPython(tune, untune)]
