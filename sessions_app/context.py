"""Template context: sessions that need pairing again (logged out or banned), for the banner
every dashboard page shows admins and owners."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts.models import role_at_least
from accounts.tenancy import scoped
from sessions_app.models import SessionStatus, WhatsAppSession


def needs_pairing(request: HttpRequest) -> dict:
    organization = getattr(request, "organization", None)
    if organization is None or not role_at_least(getattr(request, "role", None), "admin"):
        return {}
    return {
        "sessions_needing_pairing": SimpleLazyObject(
            lambda: list(
                scoped(WhatsAppSession, organization)
                .filter(status=SessionStatus.LOGGED_OUT)
                .only("name", "uuid", "status_reason")[:5]
            )
        )
    }
