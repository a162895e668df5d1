"""Live session pages: ``/ws/o/<org>/sessions/`` (status of every session, for the list) and
``/ws/o/<org>/sessions/<uuid>/`` (one session's QR codes, pairing codes and status).

Authorized in ``connect`` (``TenantConsumer``: members only; the Origin is checked by the ASGI
stack); a session of another organization closes the socket (4404). QR and pairing codes go to
admins and owners only: other members receive the status alone.
"""

from __future__ import annotations

import uuid

from channels.db import database_sync_to_async

from accounts.models import role_at_least
from accounts.tenancy import Tenant, TenantConsumer, scoped
from sessions_app.models import WhatsAppSession
from sessions_app.services import session_group_name

PAIRING_ROLE = "admin"


class SessionListConsumer(TenantConsumer):
    min_role = "viewer"

    def groups_for(self, tenant: Tenant) -> list[str]:
        return [f"org-{tenant.organization.pk}.sessions"]


class SessionConsumer(TenantConsumer):
    min_role = "viewer"
    sweep_model = WhatsAppSession  # the cross-tenant sweep builds the URL from one
    sweep_field = "uuid"

    async def authorize(self, tenant: Tenant) -> bool:
        raw = self.scope["url_route"]["kwargs"].get("session_uuid", "")
        try:
            key = uuid.UUID(str(raw))
        except ValueError:
            return False
        self.session_pk = await database_sync_to_async(
            lambda: (
                scoped(WhatsAppSession, tenant.organization)
                .filter(uuid=key)
                .values_list("pk", flat=True)
                .first()
            )
        )()
        return self.session_pk is not None

    def groups_for(self, tenant: Tenant) -> list[str]:
        return [session_group_name(self.session_pk)]

    async def live_event(self, message):
        if message["event"] in ("qr", "pairing_code") and not role_at_least(
            self.tenant.role, PAIRING_ROLE
        ):
            return
        await super().live_event(message)
