"""``/ws/o/<org>/inbox/``: the shared inbox's live feed (``messaging/live.py``), for members."""

from __future__ import annotations

from accounts.tenancy import Tenant, TenantConsumer
from messaging.live import inbox_group


class InboxConsumer(TenantConsumer):
    min_role = "viewer"

    def groups_for(self, tenant: Tenant) -> list[str]:
        return [inbox_group(tenant.organization.pk)]
