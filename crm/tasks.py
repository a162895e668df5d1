"""Tasks of the composition root."""

from __future__ import annotations

import socket

from celery import shared_task
from django.db.models import F
from django.utils import timezone

from crm.models import WorkerHeartbeat


@shared_task(bind=True, ignore_result=True)
def heartbeat(self) -> None:
    """Record that a worker ran a beat-scheduled task (shown by /readyz and show_stats).

    One row per worker node (``celery@host``, ``embedded@host``): the name says which one ran it.
    Safe to redeliver: a second beat only moves the time forward.
    """
    hostname = (self.request.hostname or socket.gethostname())[:200]
    updated = WorkerHeartbeat.objects.filter(hostname=hostname).update(
        last_seen_at=timezone.now(), beats=F("beats") + 1
    )
    if not updated:
        WorkerHeartbeat.objects.get_or_create(
            hostname=hostname, defaults={"last_seen_at": timezone.now(), "beats": 1}
        )


@shared_task(ignore_result=True)
def live_ping(organization_id: int, text: str) -> None:
    """Push a message to an organization's open dashboards from a worker (used by tests and ops).
    Safe to redeliver: a repeated ping is harmless."""
    from crm.live import org_group, push_now

    push_now(org_group(organization_id), "ping", {"text": text})
