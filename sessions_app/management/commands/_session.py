"""Finding a session for the commands (by organization slug and name or uuid)."""

from __future__ import annotations

import uuid

from crm.errors import ApplicationError
from crm.management.base import organization_by_slug
from sessions_app.models import WhatsAppSession


def find_session(organization_slug: str, name_or_id: str) -> WhatsAppSession:
    organization = organization_by_slug(organization_slug)
    sessions = WhatsAppSession.objects.filter(organization=organization)
    try:
        found = sessions.filter(uuid=uuid.UUID(name_or_id)).first()
    except ValueError:
        found = sessions.filter(name__iexact=name_or_id).first()
    if found is None:
        raise ApplicationError(f"No session {name_or_id!r} in {organization.slug}.")
    return found
