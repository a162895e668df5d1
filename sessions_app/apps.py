from django.apps import AppConfig


class SessionsAppConfig(AppConfig):
    name = "sessions_app"
    verbose_name = "WhatsApp sessions"

    def ready(self) -> None:
        import sessions_app.demo  # noqa: F401 - registers the demo step
