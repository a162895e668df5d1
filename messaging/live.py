"""The inbox's live feed: what ingest, the outbox and the chat services announce
(``crm/events.py``), pushed to ``/ws/o/<org>/inbox/`` (``messaging.consumers.InboxConsumer``).

Frames carry what the page shows, serialized as the API does, so an open inbox renders them
without fetching anything: a new, sent, edited or deleted message or a reaction with its chat's
row (``messages`` and ``chats``); a delivery status as small rows (a thousand receipts come in
one webhook); a chat's new read state, status, assignee or archive (``chats``); a private note;
who is viewing a chat (``presence``); a history sync's progress, one frame per batch, never its messages. A frame
about more than ``FULL`` messages carries their ids only (``"partial": true``): the page reloads
what it shows.
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
    from messaging.api_chats import ChatSerializer, last_messages

    chats = list(
        scoped(Chat, organization)
        .filter(pk__in=list(chat_ids))
        .select_related("session", "contact")
    )
    context = {"last_messages": last_messages(organization, chats)}
    return ChatSerializer(chats, many=True, context=context).data


def _messages_frame(event: str):
    def handler(*, organization_id: int, message_ids: list[int], **_payload) -> None:
        from messaging.api_chats import MessageSerializer, messages_queryset

        organization = Organization(pk=organization_id)
        if len(message_ids) > FULL:
            rows = (
                scoped(Message, organization)
                .filter(pk__in=message_ids)
                .values_list("uuid", "chat__uuid", "chat_id")
            )
            _push(
                organization_id,
                event,
                {
                    "partial": True,
                    "messages": [{"id": str(m), "chat": str(c)} for m, c, _pk in rows],
                    "chats": chat_rows(organization, {pk for _m, _c, pk in rows}),
                },
            )
            return
        messages = list(
            messages_queryset(scoped(Message, organization).filter(pk__in=message_ids)).order_by(
                "timestamp", "id"
            )
        )
        _push(
            organization_id,
            event,
            {
                "messages": MessageSerializer(messages, many=True).data,
                "chats": chat_rows(organization, {m.chat_id for m in messages}),
            },
        )

    return handler


def _statuses(*, organization_id: int, message_ids: list[int], **_payload) -> None:
    """Receipts: the ticks, small rows (a webhook may carry a thousand)."""
    rows = (
        scoped(Message, Organization(pk=organization_id))
        .filter(pk__in=message_ids)
        .values_list("uuid", "chat__uuid", "status", "error_code", "error_text")
    )
    _push(
        organization_id,
        ingest.STATUS_CHANGED,
        {
            "messages": [
                {
                    "id": str(message),
                    "chat": str(chat),
                    "status": status,
                    "error": {"code": code, "message": text} if code else None,
                }
                for message, chat, status, code, text in rows
            ]
        },
    )


def _chats_changed(*, organization_id: int, chat_ids: list[int], **_payload) -> None:
    _push(
        organization_id,
        chat_services.CHAT_CHANGED,
        {"chats": chat_rows(Organization(pk=organization_id), chat_ids)},
    )


def _note_added(*, organization_id: int, note_id: int, **_payload) -> None:
    from messaging.api_chats import ChatNoteSerializer

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
    **{
        event: _messages_frame(event)
        for event in (ingest.RECEIVED, ingest.REACTED, ingest.CHANGED, outbox.SENT)
    },
    ingest.STATUS_CHANGED: _statuses,
    chat_services.CHAT_CHANGED: _chats_changed,
    inbox.NOTE_ADDED: _note_added,
    ingest.HISTORY_PROGRESS: _history_progress,
}
