"""Who of the team has a chat open ("Ann is viewing"): kept in the cache for a minute at a time
(the page says so again every ``REFRESH`` seconds while the chat is open), told to the
organization's inboxes as ``presence`` frames.

Best effort by design: two members opening the same chat at the same instant may overwrite each
other's entry, and the next refresh puts it back.
"""

from __future__ import annotations

import datetime as dt
import time

from django.core.cache import cache

from crm.live import push_now
from messaging.live import inbox_group

TTL = 60
REFRESH = 25


def _key(organization_id: int, chat_id: int) -> str:
    return f"presence:{organization_id}:{chat_id}"


def _current(organization_id: int, chat_id: int) -> dict[str, dict]:
    now = time.time()
    entries = cache.get(_key(organization_id, chat_id)) or {}
    return {user: entry for user, entry in entries.items() if entry["until"] > now}


def _listed(entries: dict[str, dict]) -> list[dict]:
    return sorted(
        (
            {
                "id": int(user),
                "name": entry["name"],
                "until": dt.datetime.fromtimestamp(entry["until"], tz=dt.UTC),
            }
            for user, entry in entries.items()
        ),
        key=lambda viewer: viewer["name"].lower(),
    )


def viewers(organization_id: int, chat) -> list[dict]:
    return _listed(_current(organization_id, chat.pk))


def _store(organization_id: int, chat, entries: dict[str, dict]) -> list[dict]:
    cache.set(_key(organization_id, chat.pk), entries, TTL)
    listed = _listed(entries)
    push_now(
        inbox_group(organization_id),
        "presence",
        {
            "chat": str(chat.uuid),
            "viewers": [{"id": v["id"], "name": v["name"]} for v in listed],
        },
    )
    return listed


def viewing(organization_id: int, chat, user) -> list[dict]:
    """``user`` has ``chat`` open (for the next minute)."""
    entries = _current(organization_id, chat.pk)
    entries[str(user.pk)] = {"name": user.display_name, "until": time.time() + TTL}
    return _store(organization_id, chat, entries)


def left(organization_id: int, chat, user) -> list[dict]:
    entries = _current(organization_id, chat.pk)
    entries.pop(str(user.pk), None)
    return _store(organization_id, chat, entries)
