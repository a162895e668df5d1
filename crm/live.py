"""Pushes to browsers over Channels groups, always after the transaction commits.

Group names are derived here and only here (STYLE rule 10): consumers join the same names.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def org_group(organization_id: int, topic: str = "events") -> str:
    return f"org-{organization_id}.{topic}"


def push_now(group: str, event: str, data: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, {"type": "live.event", "event": event, "data": data})
    except Exception:  # a push is best effort: the page reloads state on reconnect
        logger.exception("live push to %s failed", group)


def push(group: str, event: str, data: dict[str, Any]) -> None:
    """Send ``event`` to every socket in ``group`` once the current transaction commits."""
    transaction.on_commit(lambda: push_now(group, event, data))


def member_group(organization_id: int, user_id: int) -> str:
    """Every socket one person has open in one organization (to re-check them when access changes)."""
    return f"org-{organization_id}.member-{user_id}"


def access_changed(organization_id: int, user_id: int | None = None) -> None:
    """After commit, make open sockets re-check access: one member's, or everyone's in the org."""
    group = (
        member_group(organization_id, user_id) if user_id else org_group(organization_id, "access")
    )

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            async_to_sync(layer.group_send)(group, {"type": "access.changed"})
        except Exception:
            logger.exception("access re-check to %s failed", group)

    transaction.on_commit(send)
