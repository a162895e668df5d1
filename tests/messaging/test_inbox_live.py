"""The inbox socket: members see a new message, its status changes and a history sync's
progress as frames, without a reload; another organization's members never do."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import transaction
from websockets.exceptions import InvalidStatus

from crm.live import push_now
from messaging import ingest
from messaging.live import inbox_group
from messaging.models import Message
from sessions_app import services
from sessions_app.providers import events as ev
from tests.sessions_app.test_live import socket

T0 = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)


def frames(ws, until: str) -> list[dict]:
    seen = []
    while not seen or seen[-1]["event"] != until:
        seen.append(json.loads(ws.recv(timeout=10)))
    return seen


def listening(ws, organization_id: int) -> None:
    """Until the socket's subscription is live (the pub/sub layer subscribes as the socket
    opens, and a push sent before Redis has it reaches no one): probes until one comes back."""
    for attempt in range(40):
        push_now(inbox_group(organization_id), "probe", {"n": attempt})
        try:
            if json.loads(ws.recv(timeout=0.25))["event"] == "probe":
                return
        except TimeoutError:
            continue
    raise AssertionError("the inbox socket never received a probe")


def apply(session, *events):
    """As the drainer does: applied and announced, committed."""
    with transaction.atomic():
        ingest.handle(
            organization_id=session.organization_id,
            session_id=session.pk,
            webhook_event_id=0,
            events=list(events),
        )


def test_a_new_message_and_its_receipts_reach_an_open_inbox(asgi_server, cast):
    session = services.session_create(
        organization=cast.org_a, actor=cast.admin, data={"name": "Desk", "provider": "simulator"}
    )
    hello = ev.MessageUpserted(
        provider_message_id="IN1",
        chat_jid="85291234567@s.whatsapp.net",
        from_me=False,
        timestamp=T0,
        body="Hello?",
        sender=ev.Party(phone="85291234567", jid="85291234567@s.whatsapp.net", name="Ann"),
    )
    ours = ev.MessageUpserted(
        provider_message_id="OUT1",
        chat_jid="85291234567@s.whatsapp.net",
        from_me=True,
        timestamp=T0,
        body="Hi Ann",
    )
    with socket(asgi_server, "/ws/o/acme/inbox/", cast.viewer) as inbox:
        listening(inbox, cast.org_a.pk)
        apply(session, hello)
        received = frames(inbox, "message.received")[-1]["data"]["messages"]
        apply(session, ours)
        apply(
            session,
            ev.MessageStatusChanged(provider_message_id="OUT1", status="read", timestamp=T0),
        )
        status = frames(inbox, "message.status")[-1]["data"]["messages"]
        history = [
            ev.MessageUpserted(
                provider_message_id=f"H{n}",
                chat_jid="85291234567@s.whatsapp.net",
                from_me=False,
                timestamp=T0 - dt.timedelta(days=1, minutes=n),
                body=f"old {n}",
                sender=ev.Party(phone="85291234567", jid="85291234567@s.whatsapp.net"),
                history=True,
            )
            for n in range(300)
        ]
        apply(session, ev.HistoryBatch(messages=history, progress=100))
        sync = frames(inbox, "history.progress")

    message = Message.objects.get(provider_message_id="IN1")
    assert received == [
        {
            "id": str(message.uuid),
            "chat": str(message.chat.uuid),
            "direction": "in",
            "status": "received",
            "chat_unread": 1,
        }
    ]
    assert status[0]["status"] == "read" and status[0]["id"] == str(
        Message.objects.get(provider_message_id="OUT1").uuid
    )
    assert [f["event"] for f in sync] == ["history.progress"]  # one frame, not 300 messages
    assert sync[0]["data"] == {"session": str(session.uuid), "done": 300, "total": 300}


def test_another_organizations_member_cannot_open_the_inbox(asgi_server, cast):
    with pytest.raises(InvalidStatus), socket(asgi_server, "/ws/o/acme/inbox/", cast.b_member):
        pass
