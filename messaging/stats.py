"""The address book's section of ``manage.py show_stats``."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q

from crm.stats import register_stats
from messaging.models import Contact, ImportJob


@register_stats
def address_book_section() -> dict[str, Any]:
    per_org = (
        Contact.objects.values("organization__slug")
        .annotate(
            contacts=Count("id"),
            opted_out=Count("id", filter=Q(opted_out_at__isnull=False)),
            blocked=Count("id", filter=Q(status="blocked")),
        )
        .order_by("organization__slug")
    )
    rows = [
        {
            "slug": r["organization__slug"],
            "contacts": r["contacts"],
            "opted_out": r["opted_out"],
            "blocked": r["blocked"],
        }
        for r in per_org
    ]
    return {
        "key": "address_book",
        "title": "Address book",
        "columns": [
            ("slug", "Organization"),
            ("contacts", "Contacts"),
            ("opted_out", "Opted out"),
            ("blocked", "Blocked"),
        ],
        "rows": rows,
        "totals": {
            "contacts": sum(r["contacts"] for r in rows),
            "imports_running": ImportJob.objects.filter(state__in=["queued", "running"]).count(),
        },
    }
