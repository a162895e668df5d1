"""``/ws/o/<org>/inbox/``: the shared inbox's live feed (``messaging/live.py``), for members.

A page says which chat it has open (``{"type": "viewing", "chat": "<id>" or null}``); members'
inboxes are told who is viewing what (``messaging/presence.py``)."""

from __future__ import annotations

import uuid

from channels.db import database_sync_to_async

from accounts.tenancy import Tenant, TenantConsumer, scoped
from messaging import presence
from messaging.live import inbox_group
from messaging.models import Chat


class InboxConsumer(TenantConsumer):
    min_role = "viewer"
    viewing = None  # the Chat this socket's page has open

    def groups_for(self, tenant: Tenant) -> list[str]:
        return [inbox_group(tenant.organization.pk)]

    async def receive_json(self, content, **kwargs):
        if not isinstance(content, dict) or content.get("type") != "viewing":
            return
        await database_sync_to_async(self._view)(content.get("chat"))

    async def disconnect(self, code):
        if self.viewing is not None:
            await database_sync_to_async(self._view)(None)
        await super().disconnect(code)

    def _view(self, chat_id) -> None:
        organization = self.tenant.organization
        chat = None
        if chat_id:
            try:
                key = uuid.UUID(str(chat_id))
            except ValueError:
                return
            chat = scoped(Chat, organization).filter(uuid=key).only("id", "uuid").first()
        user = self.scope["user"]
        if self.viewing is not None and (chat is None or chat.pk != self.viewing.pk):
            presence.left(organization.pk, self.viewing, user)
        if chat is not None:
            presence.viewing(organization.pk, chat, user)
        self.viewing = chat
