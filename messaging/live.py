"""The inbox's live feed: what ingest and the outbox announce (``crm/events.py``), pushed to
``/ws/o/<org>/inbox/`` (``messaging.consumers.InboxConsumer``) as small frames of ids the page
then shows: a new or sent message with its chat, a status, a reaction, history-sync progress.
A history sync pushes one progress frame per batch, never its thousands of messages."""

from __future__ import annotations

from accounts.models import Organization
from accounts.tenancy import scoped
from crm import events
from crm.live import org_group, push_now
from messaging import ingest
from messaging.models import Message
from messaging.services import outbox
from sessions_app.models import WhatsAppSession

INBOX = "inbox"


def inbox_group(organization_id: int) -> str:
    return org_group(organization_id, INBOX)


def _messages_frame(event: str):
    def handler(*, organization_id: int, message_ids: list[int], **_payload) -> None:
        organization = Organization(pk=organization_id)
        rows = (
            scoped(Message, organization)
            .filter(pk__in=message_ids)
            .values_list("uuid", "chat__uuid", "direction", "status", "chat__unread_count")
        )
        push_now(
            inbox_group(organization_id),
            event,
            {
                "messages": [
                    {
                        "id": str(message),
                        "chat": str(chat),
                        "direction": direction,
                        "status": status,
                        "chat_unread": unread,
                    }
                    for message, chat, direction, status, unread in rows
                ]
            },
        )

    return handler


def _history_progress(*, organization_id: int, session_id: int, done: int, total: int, **_p):
    session = scoped(WhatsAppSession, Organization(pk=organization_id)).filter(pk=session_id)
    push_now(
        inbox_group(organization_id),
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
    events.subscribe(ingest.HISTORY_PROGRESS, _history_progress)


_HANDLERS = {
    event: _messages_frame(event)
    for event in (ingest.RECEIVED, ingest.STATUS_CHANGED, ingest.REACTED, outbox.SENT)
}
