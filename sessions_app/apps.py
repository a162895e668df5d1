from django.apps import AppConfig


class SessionsAppConfig(AppConfig):
    name = "sessions_app"
    verbose_name = "WhatsApp sessions"

    def ready(self) -> None:
        # Registrations: the demo step and the show_stats section.
        import sessions_app.demo
        import sessions_app.stats  # noqa: F401
