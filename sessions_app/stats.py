"""The inbound queue's section of ``manage.py show_stats``: its depth and how far behind it is."""

from __future__ import annotations

from typing import Any

from crm.stats import register_stats
from sessions_app.selectors import webhook_backlog


@register_stats
def inbound_queue_section() -> dict[str, Any]:
    backlog = webhook_backlog(most=None)  # an operator's command: exact counts
    return {
        "key": "inbound_queue",
        "title": "Inbound webhook queue",
        "values": {
            "pending": backlog["pending"],
            "waiting": backlog["waiting"],
            "oldest_due_age_s": backlog["oldest_due_age_s"],
        },
    }
