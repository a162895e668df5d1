"""The inbox's live feed: what ingest, the outbox and the chat services announce
(``crm/events.py``), pushed to ``/ws/o/<org>/inbox/`` (``messaging.consumers.InboxConsumer``).

Frames carry what the page shows, serialized as the API does, so an open inbox renders them
without fetching anything. ``inbox.update`` is what ingest applied or the outbox sent, one frame
per organization per drained batch (``messages.applied``, coalesced by the drainer): new, sent,
edited or deleted messages and reactions, serialized (``messages``; ``received``: the ids of the
new incoming ones), delivery statuses as small rows (``statuses``; a thousand receipts come in one
webhook) and the rows of the chats those messages are in (``chats``); every part names its chat.
It is built with a constant number of queries, whatever the batch holds. Also: a chat's new read
state, status, assignee or archive (``chat.changed``); a private note; who is viewing a chat
(``presence``); a history sync's progress, one frame per batch, never its messages. A frame
about more than ``FULL`` messages carries their ids and chats only, no chat rows (``"partial":
true``): the page reloads what it shows.
"""

from __future__ import annotations

import json

from rest_framework.utils.encoders import JSONEncoder

from accounts.models import Organization
from accounts.tenancy import scoped
from crm import events
from crm.live import org_group, push_now
from messaging import ingest
from messaging.models import Chat, ChatNote, Message
from messaging.services import chats as chat_services
from messaging.services import inbox, outbox
from sessions_app.models import WhatsAppSession

INBOX = "inbox"
FULL = 100  # messages in one frame, serialized; more: ids only


def inbox_group(organization_id: int) -> str:
    return org_group(organization_id, INBOX)


def _push(organization_id: int, event: str, data) -> None:
    """As the API renders it (times as ISO 8601 text, ids as text)."""
    push_now(inbox_group(organization_id), event, json.loads(json.dumps(data, cls=JSONEncoder)))


def chat_rows(organization: Organization, chat_ids) -> list[dict]:
    from messaging.chat_serializers import ChatSerializer, last_messages

    chats = list(
        scoped(Chat, organization)
        .filter(pk__in=list(chat_ids))
        .select_related("session", "contact")
    )
    context = {"last_messages": last_messages(organization, chats)}
    return ChatSerializer(chats, many=True, context=context).data


UPDATE = "inbox.update"


def _update(
    organization_id: int,
    *,
    full: list[int],
    received: list[int] = (),
    statuses: list[int] = (),
) -> None:
    """One ``inbox.update`` frame: ``full`` messages serialized (ids only past ``FULL``) with
    their chats' rows, ``statuses`` as small rows. Six queries at most."""
    from messaging.chat_serializers import MessageSerializer, messages_queryset

    organization = Organization(pk=organization_id)
    data: dict = {"messages": [], "received": [], "statuses": [], "chats": []}
    if full:
        if len(full) > FULL:
            rows = list(
                scoped(Message, organization)
                .filter(pk__in=full)
                .order_by("timestamp", "id")
                .values_list("pk", "uuid", "chat__uuid", "chat_id")
            )
            data["partial"] = True  # the page reloads its list and the open chat
            data["messages"] = [{"id": str(m), "chat": str(c)} for _pk, m, c, _chat in rows]
            chat_ids = ()
            uuids = {pk: str(m) for pk, m, _c, _chat in rows}
        else:
            messages = list(
                messages_queryset(scoped(Message, organization).filter(pk__in=full)).order_by(
                    "timestamp", "id"
                )
            )
            data["messages"] = MessageSerializer(messages, many=True).data
            chat_ids = {m.chat_id for m in messages}
            uuids = {m.pk: str(m.uuid) for m in messages}
        data["received"] = [uuids[pk] for pk in received if pk in uuids]
        data["chats"] = chat_rows(organization, chat_ids) if chat_ids else []
    if statuses:
        data["statuses"] = [
            {
                "id": str(message),
                "chat": str(chat),
                "status": status,
                "error": {"code": code, "message": text} if code else None,
            }
            for message, chat, status, code, text in scoped(Message, organization)
            .filter(pk__in=statuses)
            .values_list("uuid", "chat__uuid", "status", "error_code", "error_text")
        ]
    if data["messages"] or data["statuses"]:
        _push(organization_id, UPDATE, data)


def _applied(
    *,
    organization_id: int,
    live: list[int],
    received: list[int],
    statuses: list[int],
    reactions: list[int],
    changed: list[int],
    **_payload,
) -> None:
    full = list(dict.fromkeys([*live, *reactions, *changed]))
    _update(organization_id, full=full, received=received, statuses=statuses)


def _sent(*, organization_id: int, message_ids: list[int], **_payload) -> None:
    _update(organization_id, full=message_ids)


def _chats_changed(*, organization_id: int, chat_ids: list[int], **_payload) -> None:
    _push(
        organization_id,
        chat_services.CHAT_CHANGED,
        {"chats": chat_rows(Organization(pk=organization_id), chat_ids)},
    )


def _note_added(*, organization_id: int, note_id: int, **_payload) -> None:
    from messaging.chat_serializers import ChatNoteSerializer

    note = (
        scoped(ChatNote, Organization(pk=organization_id))
        .select_related("chat", "author")
        .filter(pk=note_id)
        .first()
    )
    if note is not None:
        _push(organization_id, inbox.NOTE_ADDED, ChatNoteSerializer(note).data)


def _history_progress(*, organization_id: int, session_id: int, done: int, total: int, **_p):
    session = scoped(WhatsAppSession, Organization(pk=organization_id)).filter(pk=session_id)
    _push(
        organization_id,
        "history.progress",
        {
            "session": str(session.values_list("uuid", flat=True).first()),
            "done": done,
            "total": total,
        },
    )


def subscribe() -> None:
    for event, handler in _HANDLERS.items():
        events.subscribe(event, handler)


_HANDLERS = {
    ingest.APPLIED: _applied,
    outbox.SENT: _sent,
    chat_services.CHAT_CHANGED: _chats_changed,
    inbox.NOTE_ADDED: _note_added,
    ingest.HISTORY_PROGRESS: _history_progress,
}
