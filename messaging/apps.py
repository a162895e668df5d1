from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        # Registrations: the address book's demo step and stats section, and the bulk tasks.
        import messaging.demo
        import messaging.stats
        import messaging.tasks_bulk  # noqa: F401
