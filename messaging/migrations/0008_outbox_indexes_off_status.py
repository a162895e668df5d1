"""The outbox's partial indexes keyed on ``next_attempt_at`` / ``lease_until`` instead of on
``status``, and room left in each message page (PostgreSQL).

With ``status`` in no index (predicates count), a receipt's update (status and a time) touches
no indexed column, so PostgreSQL can make it a HOT update, in the same page, adding nothing to
any index: the message table takes three receipts per outgoing message, and its body's GIN
search index (0007) would otherwise take the text again each time. ``fillfactor`` 85 leaves the
page room those updates need. The columns now say the state themselves: ``next_attempt_at`` is
set exactly while a row waits (pending, queued), ``lease_until`` exactly while it is claimed.
"""

from django.db import migrations, models
from django.db.models import Q


def only_while_waiting_or_claimed(apps, schema_editor):
    Message = apps.get_model("messaging", "Message")
    Message.objects.exclude(status__in=["pending", "queued"]).exclude(next_attempt_at=None).update(
        next_attempt_at=None
    )
    Message.objects.filter(status__in=["pending", "queued"], next_attempt_at=None).update(
        next_attempt_at=models.F("created_at")
    )
    Message.objects.exclude(status="sending").exclude(lease_until=None).update(lease_until=None)


def room_for_updates(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE messaging_message SET (fillfactor = 85)")


def no_room(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE messaging_message RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("messaging", "0007_message_text_search")]

    operations = [
        migrations.RunPython(
            only_while_waiting_or_claimed, migrations.RunPython.noop, elidable=False
        ),
        migrations.RemoveIndex(model_name="message", name="message_queued"),
        migrations.RemoveIndex(model_name="message", name="message_sending"),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=Q(next_attempt_at__isnull=False),
                fields=["next_attempt_at"],
                name="message_waiting",
            ),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=Q(lease_until__isnull=False),
                fields=["lease_until"],
                name="message_leased",
            ),
        ),
        migrations.RunPython(room_for_updates, no_room, elidable=False),
    ]
