from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        # Registrations: the address book's demo step and stats section, and the bulk tasks.
        import messaging.demo
        import messaging.stats
        import messaging.tasks_bulk  # noqa: F401

        # What sessions_app receives from WhatsApp is applied here (rows recorded before this
        # subscriber existed are replayed by the drainer).
        from crm import events
        from messaging import ingest
        from sessions_app.queue import TOPIC

        events.subscribe(TOPIC, ingest.handle)

        # The inbox's live feed: what ingest and the outbox announce, pushed to members' sockets.
        from messaging import live

        live.subscribe()
