from django.apps import AppConfig


class AutoreplyConfig(AppConfig):
    name = "autoreply"
    verbose_name = "Auto-reply"
