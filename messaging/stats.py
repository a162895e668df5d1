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


@register_stats
def conversations_section() -> dict[str, Any]:
    """Per session: the seeds' db-check (contacts, chats, messages, attachments)."""
    from messaging.models import Chat, Message

    messages = {
        r["session_id"]: r
        for r in Message.objects.values("session_id").annotate(
            messages=Count("id"),
            attachments=Count("id", filter=~Q(media_state="")),
            failed=Count("id", filter=Q(status="failed")),
        )
    }
    rows = []
    for r in (
        Chat.objects.values("session_id", "session__name", "organization__slug")
        .annotate(chats=Count("id"), contacts=Count("contact_id", distinct=True))
        .order_by("organization__slug", "session__name")
    ):
        counts = messages.get(r["session_id"], {})
        rows.append(
            {
                "slug": r["organization__slug"],
                "session": r["session__name"],
                "contacts": r["contacts"],
                "chats": r["chats"],
                "messages": counts.get("messages", 0),
                "attachments": counts.get("attachments", 0),
                "failed": counts.get("failed", 0),
            }
        )
    return {
        "key": "conversations",
        "title": "Conversations",
        "columns": [
            ("slug", "Organization"),
            ("session", "Session"),
            ("contacts", "Contacts"),
            ("chats", "Chats"),
            ("messages", "Messages"),
            ("attachments", "Attachments"),
            ("failed", "Failed sends"),
        ],
        "rows": rows,
        "totals": {
            "chats": sum(r["chats"] for r in rows),
            "messages": sum(r["messages"] for r in rows),
            "attachments": sum(r["attachments"] for r in rows),
        },
    }
