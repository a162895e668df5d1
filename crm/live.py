"""Pushes to browsers over Channels groups, always after the transaction commits.

Group names are derived here and only here (STYLE rule 10): consumers join the same names.

Pushes from synchronous code (a drainer, a view, a task) run on one long-lived event loop per
process (``_Pusher``), not through ``async_to_sync``: that starts a thread and a new loop for each
call, and the Redis layer opens a connection per loop, so every push cost a thread and a
connection (a quarter of the drainer's time at issue 14).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)
TIMEOUT = 5.0  # seconds a push may take before it is given up (best effort)


class _Pusher:
    """One event loop in a daemon thread, started on first use (again after a fork: a Celery
    pool process does not inherit the parent's thread). ``run`` waits for the coroutine, so
    pushes from one thread arrive in the order they were made."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.pid = 0

    def _loop(self) -> asyncio.AbstractEventLoop:
        with self.lock:
            if self.loop is None or self.pid != os.getpid() or not self.thread.is_alive():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="parley-live-pusher", daemon=True
                )
                thread.start()
                self.loop, self.thread, self.pid = loop, thread, os.getpid()
            return self.loop

    def run(self, make: Callable[[], Awaitable[Any]], timeout: float = TIMEOUT) -> Any:
        loop = self._loop()
        if threading.current_thread() is self.thread:  # pragma: no cover - a misuse
            raise RuntimeError("push_now called on the pusher's own loop")

        async def call() -> Any:
            return await make()

        return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout)


pusher = _Pusher()


def org_group(organization_id: int, topic: str = "events") -> str:
    return f"org-{organization_id}.{topic}"


def _send(group: str, message: dict[str, Any], what: str) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        pusher.run(lambda: layer.group_send(group, message))
    except Exception:  # a push is best effort: the page reloads state on reconnect
        logger.exception("%s to %s failed", what, group)


def push_now(group: str, event: str, data: dict[str, Any]) -> None:
    _send(group, {"type": "live.event", "event": event, "data": data}, "live push")


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
    transaction.on_commit(lambda: _send(group, {"type": "access.changed"}, "access re-check"))
