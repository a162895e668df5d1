"""Reads of sessions' state for operators (``/readyz``, ``manage.py show_stats``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, Min
from django.utils import timezone

from sessions_app.models import WebhookEvent, WebhookState

COUNTED_UP_TO = 10_000


def webhook_backlog(
    *, now: dt.datetime | None = None, most: int | None = COUNTED_UP_TO
) -> dict[str, Any]:
    """The inbound queue's back-pressure, across organizations: how many rows wait to be
    applied (``pending``: due now or held back; ``waiting``: recorded while nothing subscribed)
    and for how many seconds the oldest due pending row has been due (``oldest_due_age_s``; None
    when nothing is due). A drain that keeps up keeps that age near zero.

    Each count stops at ``most`` (None: counts all), so a deep backlog costs a probe no more
    than ``most`` index entries: a count equal to ``counted_up_to`` means at least that many.
    Two queries, each on an index that holds only what it reads (pending rows and their oldest on
    ``webhook_event_pending``, read in its order; waiting ones on ``webhook_event_prune``, which
    starts with the state), never the table's millions of applied rows."""
    now = now or timezone.now()
    pending = WebhookEvent.objects.filter(state=WebhookState.PENDING).order_by("available_at", "id")
    waiting = WebhookEvent.objects.filter(state=WebhookState.WAITING).order_by()
    if most is not None:
        # The first ``most`` in due order: their count is capped, their earliest is still the
        # queue's earliest.
        pending, waiting = pending[:most], waiting[:most]
    head = pending.aggregate(n=Count("*"), earliest=Min("available_at"))
    earliest = head["earliest"]
    return {
        "pending": head["n"],
        "waiting": waiting.count(),
        "oldest_due_age_s": (
            round((now - earliest).total_seconds(), 1)
            if earliest is not None and earliest <= now
            else None
        ),
        "counted_up_to": most,
    }
