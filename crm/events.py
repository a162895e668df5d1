"""The one in-process event dispatcher: lower apps announce, higher apps subscribe.

A lower app (``sessions_app``, ``messaging``) never imports a higher one. It calls
``publish("message.received", organization_id=..., message_id=...)``; apps above register handlers in
their ``AppConfig.ready()`` with ``subscribe``. ``publish_on_commit`` defers the announcement until the
surrounding transaction commits, so a subscriber never sees a row that is rolled back.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)
Handler = Callable[..., Any]
_handlers: dict[str, list[Handler]] = defaultdict(list)


def subscribe(event: str, handler: Handler) -> None:
    if handler not in _handlers[event]:
        _handlers[event].append(handler)


def unsubscribe(event: str, handler: Handler) -> None:
    if handler in _handlers[event]:
        _handlers[event].remove(handler)


def subscribers(event: str) -> list[Handler]:
    return list(_handlers[event])


def publish(event: str, **payload: Any) -> None:
    """Call every subscriber now. A failing subscriber is logged and does not stop the others."""
    for handler in list(_handlers[event]):
        try:
            handler(**payload)
        except Exception:
            logger.exception("subscriber %r of %s failed", handler, event)


def deliver(event: str, **payload: Any) -> None:
    """Call every subscriber now; a failure propagates (the caller keeps the work to retry it).
    For work that must not be lost, such as applying a provider's messages."""
    for handler in list(_handlers[event]):
        handler(**payload)


def publish_on_commit(event: str, **payload: Any) -> None:
    transaction.on_commit(lambda: publish(event, **payload))
