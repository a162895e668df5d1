"""Pruning the inbound queue: a ``WebhookEvent`` row is kept only as long as it is worth reading.

A row applied (``done``) or with nothing in it we use (``ignored``) goes after its organization's
``webhook_retention_days``; one that failed or could not be read (``failed``, ``invalid``) is kept
longer, ``PARLEY_WEBHOOK_FAILED_RETENTION_DAYS`` (or the organization's retention, if that is
longer), for someone to find out why. A row still to be applied (``pending``, ``waiting``) is never
pruned, however old. A row's age counts from when it was processed, or from when it was received
if it never was (an unreadable body is stored as ``invalid`` and never drained).

Erasure (``sessions_app.queue.forget``) deletes a person's rows at once, whatever their age; this
is the same kind of delete on a schedule, so the two never conflict.
"""

from __future__ import annotations

import datetime as dt
import time

from django.conf import settings
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import WEBHOOK_RETENTION_DAYS, Organization
from sessions_app.models import WebhookEvent, WebhookState

APPLIED = (WebhookState.DONE, WebhookState.IGNORED)
KEPT_FOR_INSPECTION = (WebhookState.FAILED, WebhookState.INVALID)
BATCH = 5000


def webhooks_prune(
    *, now: dt.datetime | None = None, batch: int = BATCH, deadline: float | None = None
) -> int:
    """Delete the webhook rows past their retention (see the module); returns how many went.

    Organizations are taken a retention value at a time (there are few distinct values), so the
    work is a constant number of statements per ``batch`` rows, whatever the number of
    organizations. Each statement deletes at most ``batch`` rows (``DELETE … WHERE id IN (SELECT
    id … LIMIT batch)``), and outside a transaction each is its own, so no lock is held for long
    and the receivers and drainers inserting and updating other rows wait on none. The rows it
    deletes are ones nothing else writes (no drain claims them), and deleting them twice deletes
    nothing, so running it again, or twice at once, is harmless. No batch starts after
    ``deadline`` (a ``time.monotonic()`` value): a run stopped by it leaves the rest for the
    next."""
    now = now or timezone.now()
    failed_days = settings.PARLEY_WEBHOOK_FAILED_RETENTION_DAYS
    values = set(
        Organization.objects.order_by("webhook_retention_days")
        .values_list("webhook_retention_days", flat=True)
        .distinct()
    )
    deleted = 0
    for days in sorted(values):
        owners = Q(
            organization__in=Organization.objects.filter(webhook_retention_days=days).values("pk")
        )
        applied_until = now - dt.timedelta(days=days)
        deleted += _delete_in_batches(owners, APPLIED, applied_until, batch, deadline)
        kept_until = now - dt.timedelta(days=max(days, failed_days))
        deleted += _delete_in_batches(owners, KEPT_FOR_INSPECTION, kept_until, batch, deadline)
    # Rows of no organization (none are stored so today; kept for older rows): the default.
    orphans = Q(organization__isnull=True)
    applied_until = now - dt.timedelta(days=WEBHOOK_RETENTION_DAYS)
    deleted += _delete_in_batches(orphans, APPLIED, applied_until, batch, deadline)
    kept_until = now - dt.timedelta(days=max(WEBHOOK_RETENTION_DAYS, failed_days))
    deleted += _delete_in_batches(orphans, KEPT_FOR_INSPECTION, kept_until, batch, deadline)
    return deleted


def _delete_in_batches(
    owners: Q,
    states: tuple[str, ...],
    before: dt.datetime,
    batch: int,
    deadline: float | None,
) -> int:
    """Delete the rows of ``owners`` in ``states`` aged before ``before``, ``batch`` at a time,
    until a batch comes up short or ``deadline`` passes."""
    # Matches the webhook_event_prune index (state, organization, this expression), so each batch
    # reads only the rows it deletes.
    due = (
        WebhookEvent.objects.alias(aged=Coalesce("processed_at", "received_at"))
        .filter(owners, state__in=states, aged__lt=before)
        .order_by()  # any rows will do; an ORDER BY would make it find them all first
        .values("pk")
    )
    deleted = 0
    while deadline is None or time.monotonic() < deadline:
        # WebhookEvent has no relations pointing at it and no delete signals, so this is one
        # DELETE statement, no SELECT before it.
        count = WebhookEvent.objects.filter(pk__in=due[:batch]).delete()[0]
        deleted += count
        if count < batch:
            break
    return deleted
