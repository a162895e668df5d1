"""What ``manage.py show_stats`` reports, as a registry of sections.

A section is a function of no arguments returning a dict::

    {
        "key": "organizations",          # its key in the --json output
        "title": "Organizations",        # its heading in the text output
        "rows": [{...}, ...],            # optional: a table, one dict per row, the same keys each
        "columns": [("slug", "Slug")],   # optional: which row keys the text table shows, in order
        "totals": {"members": 12},       # optional: one line of sums
        "values": {"hostname": "w1"},    # optional: single facts
    }

In ``--json`` a section appears under its key with ``rows``, ``totals`` and its ``values``
flattened. Another app adds its own with ``register_stats`` (as a decorator, or from its
``AppConfig.ready()``). A section reads with a constant number of queries, whatever the number of
organizations.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from accounts.models import ApiKey, AuditEvent, Invitation, Membership, Organization, User
from crm.models import WorkerHeartbeat

StatSection = Callable[[], dict[str, Any]]
STAT_SECTIONS: list[StatSection] = []


def register_stats(fn: StatSection) -> StatSection:
    """Add a section (once; registering the same function again changes nothing)."""
    if fn not in STAT_SECTIONS:
        STAT_SECTIONS.append(fn)
    return fn


def collect_stats() -> list[dict[str, Any]]:
    return [section() for section in STAT_SECTIONS]


def _count_by_organization(queryset) -> dict[int, int]:
    return dict(
        queryset.values("organization_id")
        .annotate(n=Count("id"))
        .values_list("organization_id", "n")
        .order_by()
    )


@register_stats
def organizations_section() -> dict[str, Any]:
    now = timezone.now()
    members = _count_by_organization(Membership.objects.filter(is_active=True))
    invitations = _count_by_organization(
        Invitation.objects.filter(
            accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
        )
    )
    api_keys = _count_by_organization(ApiKey.objects.filter(revoked_at__isnull=True))
    audit = _count_by_organization(
        AuditEvent.objects.filter(
            organization__isnull=False, created_at__gte=now - timedelta(hours=24)
        )
    )
    rows = [
        {
            "slug": org.slug,
            "name": org.name,
            "members": members.get(org.pk, 0),
            "invitations_pending": invitations.get(org.pk, 0),
            "api_keys_active": api_keys.get(org.pk, 0),
            "audit_events_24h": audit.get(org.pk, 0),
        }
        for org in Organization.objects.order_by("slug").only("pk", "slug", "name")
    ]
    counted = ("members", "invitations_pending", "api_keys_active", "audit_events_24h")
    totals: dict[str, Any] = {"organizations": len(rows)}
    totals.update({key: sum(row[key] for row in rows) for key in counted})
    totals["users"] = User.objects.aggregate(
        all=Count("id"), active=Count("id", filter=Q(is_active=True))
    )
    return {
        "key": "organizations",
        "title": "Organizations",
        "columns": [
            ("slug", "Slug"),
            ("name", "Name"),
            ("members", "Members"),
            ("invitations_pending", "Invitations pending"),
            ("api_keys_active", "API keys"),
            ("audit_events_24h", "Audit events (24h)"),
        ],
        "rows": rows,
        "totals": totals,
    }


@register_stats
def worker_section() -> dict[str, Any]:
    latest = WorkerHeartbeat.objects.order_by("-last_seen_at").first()
    if latest is None:
        return {
            "key": "worker",
            "title": "Worker",
            "values": {
                "last_heartbeat": None,
                "note": "no heartbeat yet: are beat and a worker running?",
            },
        }
    return {
        "key": "worker",
        "title": "Worker",
        "values": {
            "last_heartbeat": latest.last_seen_at,
            "hostname": latest.hostname,
            "seconds_ago": int((timezone.now() - latest.last_seen_at).total_seconds()),
            "workers_seen": WorkerHeartbeat.objects.count(),
        },
    }
