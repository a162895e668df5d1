"""The one in-process event dispatcher: lower apps announce, higher apps subscribe.

A lower app (``sessions_app``, ``messaging``) never imports a higher one. It calls
``publish("message.received", organization_id=..., message_id=...)``; apps above register handlers in
their ``AppConfig.ready()`` with ``subscribe``. ``publish_on_commit`` defers the announcement until the
surrounding transaction commits, so a subscriber never sees a row that is rolled back.

Inside ``coalesced()`` (the drainer wraps each batch in it) what ``publish_on_commit`` announces is
held until the block ends and published merged: one announcement per event and per set of plain
values, its id lists joined. So a batch of 500 webhooks from three sessions of one organization
makes one ``messages.applied`` for that organization, not 500.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    """``publish`` once the current transaction commits (at once outside one); inside
    ``coalesced()``, held until it ends. Work rolled back (a savepoint too) announces nothing."""

    def committed() -> None:
        held = getattr(_holding, "pending", None)
        if held is None:
            publish(event, **payload)
        else:
            held.append((event, payload))

    transaction.on_commit(committed)


_holding = threading.local()


@contextmanager
def coalesced() -> Iterator[None]:
    """Hold the announcements committed inside the block; publish them merged when it ends
    (``merged``). Put it outside the transaction (``with coalesced(), transaction.atomic():``)
    so the commit happens before the block ends. Nested blocks belong to the outermost."""
    if getattr(_holding, "pending", None) is not None:
        yield
        return
    _holding.pending = []
    try:
        yield
    finally:
        held, _holding.pending = _holding.pending, None
        for event, payload in merged(held):
            publish(event, **payload)


def merged(announcements: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """Announcements of one event whose plain values are equal become one, their list values
    joined in order without repeats; the first of each keeps its place."""
    out: dict[tuple, tuple[str, dict[str, Any]]] = {}
    for event, payload in announcements:
        plain = tuple(sorted((k, repr(v)) for k, v in payload.items() if not isinstance(v, list)))
        key = (event, plain)
        if key not in out:
            out[key] = (
                event,
                {k: list(v) if isinstance(v, list) else v for k, v in payload.items()},
            )
            continue
        into = out[key][1]
        for name, value in payload.items():
            if isinstance(value, list):
                into.setdefault(name, []).extend(value)
    for _event, payload in out.values():
        for name, value in payload.items():
            if isinstance(value, list) and all(isinstance(v, int | str) for v in value):
                payload[name] = list(dict.fromkeys(value))
    return list(out.values())
