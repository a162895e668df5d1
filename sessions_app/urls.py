"""Dashboard routes of sessions, mounted under /o/<org_slug>/."""

from sessions_app.views import urlpatterns

__all__ = ["urlpatterns"]
