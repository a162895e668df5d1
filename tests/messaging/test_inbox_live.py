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
from messaging.services.chats import chats_wake
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
            webhook_event_ids=[0],
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
        received = frames(inbox, "inbox.update")[-1]["data"]
        apply(session, ours)
        apply(
            session,
            ev.MessageStatusChanged(provider_message_id="OUT1", status="read", timestamp=T0),
        )
        frames(inbox, "inbox.update")  # our message, sent
        status = frames(inbox, "inbox.update")[-1]["data"]["statuses"]
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
    # The frame holds what the page shows: the message, and its chat's row for the list
    [shown] = received["messages"]
    assert (shown["id"], shown["chat"], shown["direction"], shown["body"]) == (
        str(message.uuid),
        str(message.chat.uuid),
        "in",
        "Hello?",
    )
    assert received["received"] == [str(message.uuid)]  # new and incoming: counts as unread
    [row] = received["chats"]
    assert (row["id"], row["title"], row["unread_count"]) == (str(message.chat.uuid), "Ann", 1)
    assert row["last_message"]["preview"] == "Hello?"
    assert status[0]["status"] == "read" and status[0]["id"] == str(
        Message.objects.get(provider_message_id="OUT1").uuid
    )
    assert [f["event"] for f in sync] == ["history.progress"]  # one frame, not 300 messages
    assert sync[0]["data"] == {"session": str(session.uuid), "done": 300, "total": 300}


def test_another_organizations_member_cannot_open_the_inbox(asgi_server, cast):
    with pytest.raises(InvalidStatus), socket(asgi_server, "/ws/o/acme/inbox/", cast.b_member):
        pass


def test_assignment_status_read_state_and_notes_reach_every_open_inbox(asgi_server, cast, api):
    chat = chat_with(cast.org_a, cast.admin, "Hello?")
    agent, url = api(cast.agent), f"/api/v1/chats/{chat.uuid}/"
    with socket(asgi_server, "/ws/o/acme/inbox/", cast.viewer) as inbox:
        listening(inbox, cast.org_a.pk)
        agent.patch(url, {"assignee": cast.agent.pk}, format="json")
        assigned = frames(inbox, "chat.changed")[-1]["data"]["chats"]
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        agent.patch(url, {"status": "snoozed", "snoozed_until": later.isoformat()}, format="json")
        snoozed = frames(inbox, "chat.changed")[-1]["data"]["chats"]
        chats_wake(now=later + dt.timedelta(seconds=1))
        woken = frames(inbox, "chat.changed")[-1]["data"]["chats"]
        agent.post(f"{url}read/")
        read = frames(inbox, "chat.changed")[-1]["data"]["chats"]
        agent.post(f"{url}notes/", {"text": "VIP"}, format="json")
        note = frames(inbox, "chat.note")[-1]["data"]

    assert [(c["id"], c["assignee"]) for c in assigned] == [(str(chat.uuid), cast.agent.pk)]
    assert snoozed[0]["status"] == "snoozed"
    assert (woken[0]["status"], woken[0]["snoozed_until"]) == ("open", None)
    assert read[0]["unread_count"] == 0
    assert (note["chat"], note["text"], note["author_name"]) == (
        str(chat.uuid),
        "VIP",
        cast.agent.display_name,
    )


def test_an_edit_and_a_deletion_reach_an_open_inbox(asgi_server, cast):
    session = chat_with(cast.org_a, cast.admin, "See you at 5").session
    with socket(asgi_server, "/ws/o/acme/inbox/", cast.viewer) as inbox:
        listening(inbox, cast.org_a.pk)
        apply(
            session,
            ev.MessageEdited(
                provider_message_id="IN1",
                chat_jid="85291234567@s.whatsapp.net",
                body="See you at 6",
                timestamp=T0 + dt.timedelta(minutes=1),
            ),
        )
        edited = frames(inbox, "inbox.update")[-1]["data"]["messages"]
        apply(
            session,
            ev.MessageRevoked(
                provider_message_id="IN1",
                chat_jid="85291234567@s.whatsapp.net",
                timestamp=T0 + dt.timedelta(minutes=2),
            ),
        )
        revoked = frames(inbox, "inbox.update")[-1]["data"]["messages"]

    assert edited[0]["body"] == "See you at 6" and edited[0]["edits"][0]["body"] == "See you at 5"
    assert revoked[0]["revoked_at"]


def test_members_see_who_is_viewing_a_chat_until_they_leave(asgi_server, cast):
    chat = chat_with(cast.org_a, cast.admin, "Hello?")
    with socket(asgi_server, "/ws/o/acme/inbox/", cast.viewer) as watcher:
        listening(watcher, cast.org_a.pk)
        with socket(asgi_server, "/ws/o/acme/inbox/", cast.agent) as agent:
            agent.send(json.dumps({"type": "viewing", "chat": str(chat.uuid)}))
            viewing = frames(watcher, "presence")[-1]["data"]
            frames(agent, "presence")  # read before closing (no close while a frame is in flight)
        gone = frames(watcher, "presence")[-1]["data"]  # the agent's page closed

    assert viewing == {
        "chat": str(chat.uuid),
        "viewers": [{"id": cast.agent.pk, "name": cast.agent.display_name}],
    }
    assert gone == {"chat": str(chat.uuid), "viewers": []}


def test_a_socket_cannot_announce_viewing_another_organizations_chat(asgi_server, cast):
    theirs = chat_with(cast.org_b, cast.b_member, "Hello?")
    with socket(asgi_server, "/ws/o/acme/inbox/", cast.agent) as agent:
        listening(agent, cast.org_a.pk)
        agent.send(json.dumps({"type": "viewing", "chat": str(theirs.uuid)}))
        agent.send(json.dumps({"type": "viewing", "chat": "not-a-uuid"}))
        push_now(inbox_group(cast.org_a.pk), "probe", {"n": "after"})
        seen = frames(agent, "probe")
    assert [f["event"] for f in seen] == ["probe"]  # no presence frame: nothing was announced


def chat_with(organization, actor, text: str):
    """A simulator session of ``organization`` with one message from Ann in it: her chat."""
    session = services.session_create(
        organization=organization, actor=actor, data={"name": "Desk", "provider": "simulator"}
    )
    apply(session, _incoming("IN1", text))
    return Message.objects.get(provider_message_id="IN1").chat


def _incoming(provider_id: str, body: str):
    return ev.MessageUpserted(
        provider_message_id=provider_id,
        chat_jid="85291234567@s.whatsapp.net",
        from_me=False,
        timestamp=T0,
        body=body,
        sender=ev.Party(phone="85291234567", jid="85291234567@s.whatsapp.net", name="Ann"),
    )


def _from(n: int, provider_id: str, body: str):
    phone = f"8529{n:07d}"
    return ev.MessageUpserted(
        provider_message_id=provider_id,
        chat_jid=f"{phone}@s.whatsapp.net",
        from_me=False,
        timestamp=T0 + dt.timedelta(seconds=n),
        body=body,
        sender=ev.Party(phone=phone, jid=f"{phone}@s.whatsapp.net", name=f"Person {n}"),
    )


@pytest.mark.django_db(transaction=True)
def test_a_batch_becomes_one_frame_whose_queries_do_not_grow_with_it(cast):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from messaging import live

    session = services.session_create(
        organization=cast.org_a, actor=cast.admin, data={"name": "Desk", "provider": "simulator"}
    )
    pushed = []
    sizes = {}
    for size in (3, 60):
        with transaction.atomic():
            applied = ingest.apply(
                session, [_from(n, f"S{size}-{n}", f"hello {n}") for n in range(size)]
            )
        with CaptureQueriesContext(connection) as queries:
            live._update(cast.org_a.pk, full=applied.live, received=applied.received)
        sizes[size] = len(queries)
    original, live._push = live._push, lambda org, event, data: pushed.append((event, data))
    try:
        with transaction.atomic():
            many = ingest.apply(session, [_from(n, f"P-{n}", "again") for n in range(150)])
        live._update(cast.org_a.pk, full=many.live, received=many.received)
    finally:
        live._push = original

    assert sizes[3] == sizes[60] <= 6  # 60 messages in 60 chats cost what 3 do
    [(event, frame)] = pushed  # 150 messages: one frame, ids and chats only
    assert event == "inbox.update" and frame["partial"] is True
    assert len(frame["messages"]) == 150 and set(frame["messages"][0]) == {"id", "chat"}
    assert frame["chats"] == [] and len(frame["received"]) == 150
