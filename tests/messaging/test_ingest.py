"""Ingest: every message, receipt and reaction stored once, whatever the order, the repeats and
the number of workers."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import threading
from pathlib import Path

import pytest
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from crm import events as bus
from messaging import ingest
from messaging.models import (
    Chat,
    Contact,
    ContactIdentity,
    Message,
    MessageStatus,
    Reaction,
    WaitingEvent,
)
from sessions_app import queue, services, simulation
from sessions_app.models import WebhookEvent, WebhookState
from sessions_app.providers import events as ev
from sessions_app.providers.base import SessionConfig
from sessions_app.providers.cloud_api import CloudApiProvider
from sessions_app.providers.gowa import GowaProvider
from tests.support.factories import gateway_session

SHARED = Path("/work/shared/fixtures")
T0 = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)


def make_session(cast, name="Inbox", organization=None):
    return services.session_create(
        organization=organization or cast.org_a,
        actor=cast.admin,
        data={"name": name, "provider": "simulator"},
    )


def text(n, *, phone="85291234567", name="Ann", at=None, chat=None, from_me=False):
    return ev.MessageUpserted(
        provider_message_id=f"M{n}",
        chat_jid=chat or f"{phone}@s.whatsapp.net",
        from_me=from_me,
        timestamp=at or T0 + dt.timedelta(minutes=n),
        body=f"message {n}",
        sender=None if from_me else ev.Party(phone=phone, jid=f"{phone}@s.whatsapp.net", name=name),
        chat_is_group=bool(chat and chat.endswith("@g.us")),
    )


def receipt(n, status, minutes=1):
    return ev.MessageStatusChanged(
        provider_message_id=f"M{n}", status=status, timestamp=T0 + dt.timedelta(minutes=n + minutes)
    )


def apply(session, *events):
    with transaction.atomic():
        return ingest.apply(session, events)


def test_it_stores_a_message_once_with_its_contact_and_chat(cast):
    session = make_session(cast)
    apply(session, text(1))
    apply(session, text(1))  # the provider delivers it again
    message = Message.objects.get()
    assert message.body == "message 1" and message.status == MessageStatus.RECEIVED
    assert message.sender.phone == "85291234567" and message.sender.display_name == "Ann"
    chat = message.chat
    assert chat.contact_id == message.sender_id and chat.unread_count == 1
    assert chat.last_message_at == T0 + dt.timedelta(minutes=1)
    assert Contact.objects.count() == 1 and Chat.objects.count() == 1


def test_a_known_contact_is_found_by_phone_and_keeps_its_own_name(cast):
    session = make_session(cast)
    mine = Contact.objects.create(organization=cast.org_a, name="Ann (VIP)", phone="85291234567")
    ContactIdentity.objects.create(
        organization=cast.org_a, contact=mine, kind="phone", value="85291234567"
    )
    apply(session, text(1, name="annie"))
    mine.refresh_from_db()
    assert Message.objects.get().sender_id == mine.pk
    assert mine.notify_name == "annie" and mine.display_name == "Ann (VIP)"


def test_an_lid_sender_with_its_phone_lands_on_the_phone_contact(cast):
    session = make_session(cast)
    apply(session, text(1))
    by_lid = ev.MessageUpserted(
        provider_message_id="L1",
        chat_jid="123456789@lid",
        from_me=False,
        timestamp=T0,
        body="from the lid",
        sender=ev.Party(phone="85291234567", lid="123456789@lid", name="Ann"),
    )
    apply(session, by_lid)
    assert Contact.objects.count() == 1 and Chat.objects.count() == 1
    assert set(ContactIdentity.objects.values_list("kind", flat=True)) == {"phone", "lid"}


def evolution_upsert(message_id: str, chat: str, key: dict, name: str = "Ann") -> dict:
    return {
        "event": "messages.upsert",
        "instance": "shop",
        "data": {
            "key": {"remoteJid": chat, "fromMe": False, "id": message_id, **key},
            "pushName": name,
            "message": {"conversation": f"text of {message_id}"},
            "messageType": "conversation",
            "messageTimestamp": 1793523600,
        },
    }


GROUP_BY_LID = evolution_upsert(
    "G1",
    "120363025246125888@g.us",
    {"participant": "207966123456789@lid", "senderPn": "85291234567@s.whatsapp.net"},
)
DIRECT_BY_PHONE = evolution_upsert("D1", "85291234567@s.whatsapp.net", {})


@pytest.mark.parametrize("order", ["group first", "direct first"])
def test_an_evolution_group_sender_named_by_lid_and_sender_pn_is_one_contact(cast, order):
    """Evolution names a group sender by its ``@lid`` and puts the phone in ``key.senderPn``:
    whichever arrives first, the person writing in the group and 1:1 is one contact."""
    session = gateway_session(cast, "evolution")
    provider = services.provider_for(session)
    payloads = [GROUP_BY_LID, DIRECT_BY_PHONE]
    for payload in payloads if order == "group first" else payloads[::-1]:
        apply(session, *provider.translate(payload))

    contact = Contact.objects.get()
    assert sorted(contact.identities.values_list("kind", "value")) == [
        ("lid", "207966123456789@lid"),
        ("phone", "85291234567"),
    ]
    assert {m.provider_message_id: m.sender_id for m in Message.objects.all()} == {
        "G1": contact.pk,
        "D1": contact.pk,
    }


def test_a_group_message_is_attributed_to_its_sender(cast):
    session = make_session(cast)
    group = "120363025246125888@g.us"
    apply(
        session,
        text(1, phone="85291111111", name="Bo", chat=group),
        text(2, phone="85292222222", name="Cy", chat=group),
    )
    chat = Chat.objects.get()
    assert chat.kind == "group" and chat.jid == group and chat.contact_id is None
    senders = list(Message.objects.order_by("id").values_list("sender__notify_name", flat=True))
    assert senders == ["Bo", "Cy"]


def test_receipts_only_move_forward_and_failed_is_final(cast):
    session = make_session(cast)
    apply(session, text(1, from_me=True), text(2, from_me=True))
    apply(session, receipt(1, "read", 3), receipt(1, "delivered", 2))  # out of order
    apply(session, receipt(2, "failed"), receipt(2, "delivered", 2))
    first, second = Message.objects.order_by("id")
    assert first.status == "read" and first.read_at == T0 + dt.timedelta(minutes=4)
    assert second.status == "failed" and second.delivered_at is None


def test_a_receipt_and_reaction_before_their_message_wait_and_then_apply(cast):
    session = make_session(cast)
    early = ev.ReactionReceived(
        provider_message_id="M1",
        chat_jid="85291234567@s.whatsapp.net",
        emoji="👍",
        timestamp=T0 + dt.timedelta(minutes=5),
        sender=ev.Party(phone="85291234567", jid="85291234567@s.whatsapp.net"),
    )
    apply(session, receipt(1, "delivered"), early)
    apply(session, receipt(1, "delivered"))  # repeated while waiting: still one row
    assert WaitingEvent.objects.count() == 2 and not Message.objects.exists()
    apply(session, text(1, from_me=True))
    message = Message.objects.get()
    assert message.status == "delivered"
    assert Reaction.objects.get(message=message).emoji == "👍"
    assert not WaitingEvent.objects.exists()


def test_the_newest_reaction_per_person_wins_whatever_the_order(cast):
    session = make_session(cast)
    apply(session, text(1, from_me=True))
    person = ev.Party(phone="85291234567", jid="85291234567@s.whatsapp.net")

    def react(emoji, minute):
        return ev.ReactionReceived(
            provider_message_id="M1",
            chat_jid=person.jid,
            emoji=emoji,
            timestamp=T0 + dt.timedelta(minutes=minute),
            sender=person,
        )

    apply(session, react("❤️", 10), react("👍", 5))  # the later one first
    apply(session, react("👍", 5))
    assert list(Reaction.objects.values_list("emoji", flat=True)) == ["❤️"]
    apply(session, react("", 11))  # removed
    assert list(Reaction.objects.values_list("emoji", flat=True)) == [""]


def test_edits_keep_their_history_and_revokes_mark_without_erasing(cast):
    session = make_session(cast)
    apply(session, text(1))
    edit = ev.MessageEdited(
        provider_message_id="M1",
        chat_jid="85291234567@s.whatsapp.net",
        body="fixed",
        timestamp=T0 + dt.timedelta(minutes=9),
    )
    apply(session, edit)
    apply(session, edit)
    revoke = ev.MessageRevoked(
        provider_message_id="M1",
        chat_jid="85291234567@s.whatsapp.net",
        timestamp=T0 + dt.timedelta(minutes=10),
    )
    apply(session, revoke)
    message = Message.objects.get()
    assert message.body == "fixed" and [e["body"] for e in message.edits] == ["message 1"]
    assert message.revoked_at == T0 + dt.timedelta(minutes=10)


def test_a_reply_keeps_its_quoted_message(cast):
    session = make_session(cast)
    apply(session, text(1))
    reply = ev.MessageUpserted(
        provider_message_id="R1",
        chat_jid="85291234567@s.whatsapp.net",
        from_me=True,
        timestamp=T0 + dt.timedelta(minutes=3),
        body="answer",
        quoted_id="M1",
    )
    apply(session, reply)
    assert Message.objects.get(provider_message_id="R1").quoted.body == "message 1"


def test_history_is_stored_without_unread_counts_or_received_announcements(cast):
    session = make_session(cast)
    announced = []

    def listen(**kw):
        announced.append(kw)

    bus.subscribe(ingest.RECEIVED, listen)
    try:
        batch = ev.HistoryBatch(messages=[text(n) for n in range(2500)])
        with transaction.atomic():
            ingest.handle(
                organization_id=cast.org_a.pk,
                session_id=session.pk,
                webhook_event_ids=[0],
                events=[batch],
            )
    finally:
        bus.unsubscribe(ingest.RECEIVED, listen)  # the others (the inbox's feed) stay
    assert Message.objects.filter(history=True).count() == 2500
    assert Chat.objects.get().unread_count == 0 and not announced


def test_a_simulated_inbound_message_goes_through_the_queue_into_the_inbox(cast):
    session = make_session(cast)
    simulation.simulate_inbound(session=session, phone="85291234567", text="Hi there", name="Ann")
    queue.drain(now=timezone.now() + dt.timedelta(seconds=60))
    assert WebhookEvent.objects.get().state == WebhookState.DONE
    assert Message.objects.get().body == "Hi there"


def test_rows_recorded_before_messaging_subscribed_are_applied_by_the_replay(cast):
    session = make_session(cast)
    handlers = bus.subscribers(queue.TOPIC)
    for handler in handlers:
        bus.unsubscribe(queue.TOPIC, handler)
    try:
        simulation.simulate_inbound(session=session, phone="85291234567", text="early", name="A")
        queue.drain(now=timezone.now() + dt.timedelta(seconds=60))
        assert WebhookEvent.objects.get().state == WebhookState.WAITING
    finally:
        for handler in handlers:
            bus.subscribe(queue.TOPIC, handler)
    assert queue.replay_waiting() == 1
    assert Message.objects.get().body == "early"


def test_a_failing_apply_keeps_the_row_for_a_retry(cast, monkeypatch):
    session = make_session(cast)
    simulation.simulate_inbound(session=session, phone="85291234567", text="retry me", name="A")

    def broken(*args, **kwargs):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(ingest, "apply", broken)
    queue.drain(now=timezone.now() + dt.timedelta(seconds=60))
    row = WebhookEvent.objects.get()
    assert row.state == WebhookState.PENDING and "hiccup" in row.error
    monkeypatch.undo()
    queue.drain(now=timezone.now() + dt.timedelta(seconds=120))
    assert WebhookEvent.objects.get().state == WebhookState.DONE
    assert Message.objects.get().body == "retry me"


def test_another_organizations_session_never_shares_contacts_or_chats(cast):
    mine, theirs = make_session(cast), make_session(cast, organization=cast.org_b)
    apply(mine, text(1))
    apply(theirs, text(1))
    assert Contact.objects.filter(organization=cast.org_a).count() == 1
    assert Contact.objects.filter(organization=cast.org_b).count() == 1
    assert Message.objects.filter(organization=cast.org_b).get().chat.organization_id == (
        cast.org_b.pk
    )


# --- Fixtures of every provider, shuffled, repeated and concurrent --------------------------------


def fixture_events() -> list[ev.Event]:
    """Every message-level event the providers' documented payloads translate to."""
    cloud = CloudApiProvider(
        SessionConfig(
            session_id="s",
            credentials={
                "phone_number_id": "1122334455667",
                "access_token": "t",
                "app_secret": "a",
            },
        )
    )
    gowa = GowaProvider(SessionConfig(session_id="s", credentials={}))
    events: list[ev.Event] = []
    for provider, folder in ((cloud, "meta_cloud"), (gowa, "gowa")):
        for path in sorted((SHARED / folder).glob("*webhook*.json")):
            payload = json.loads(path.read_text())
            events += [
                own_ids(e, path.stem)
                for e in provider.translate(payload)
                if not isinstance(e, ev.SESSION_EVENTS)
            ]
    return events + [later for e in events for later in follow_ups(e)]


def follow_ups(event: ev.Event) -> list[ev.Event]:
    """Receipts and two reactions (the later one must win) for each documented message."""
    if not isinstance(event, ev.MessageUpserted):
        return []
    person = ev.Party(phone="85290000001", jid="85290000001@s.whatsapp.net")
    at = event.timestamp
    return [
        ev.MessageStatusChanged(
            provider_message_id=event.provider_message_id,
            status=status,
            timestamp=at + dt.timedelta(seconds=n),
        )
        for n, status in enumerate(("sent", "delivered", "read"), start=1)
    ] + [
        ev.ReactionReceived(
            provider_message_id=event.provider_message_id,
            chat_jid=event.chat_jid,
            emoji=emoji,
            timestamp=at + dt.timedelta(seconds=n),
            sender=person,
        )
        for n, emoji in ((5, "👍"), (6, "🎉"))
    ]


def own_ids(event: ev.Event, prefix: str) -> ev.Event:
    """The documentation's examples reuse one id for unrelated messages (``wamid.xyzxyz`` is a
    text in one file and a failed send in another): each file gets its own ids."""
    changes = {}
    if getattr(event, "provider_message_id", None):
        changes["provider_message_id"] = f"{prefix}:{event.provider_message_id}"
    if getattr(event, "quoted_id", None):
        changes["quoted_id"] = f"{prefix}:{event.quoted_id}"
    return dataclasses.replace(event, **changes)


def state_of(session) -> dict:
    messages = Message.objects.filter(session=session)
    return {
        "messages": sorted(
            messages.values_list("provider_message_id", "status", "body", "type", "revoked_at")
        ),
        "reactions": sorted(
            Reaction.objects.filter(message__session=session).values_list(
                "message__provider_message_id", "actor", "emoji"
            )
        ),
        "waiting": sorted(
            WaitingEvent.objects.filter(session=session).values_list("provider_message_id", "key")
        ),
        "contacts": Contact.objects.filter(organization=session.organization).count(),
        "chats": Chat.objects.filter(session=session).count(),
    }


@pytest.mark.django_db(transaction=True)
def test_fixtures_shuffled_repeated_and_applied_by_four_workers_end_as_in_order(cast):
    events = fixture_events()
    assert len(events) >= 20
    in_order = make_session(cast, name="In order")
    for event in events:
        apply(in_order, event)
    expected = state_of(in_order)
    assert expected["messages"] and expected["reactions"]

    racing = make_session(cast, name="Racing", organization=cast.org_b)
    shuffled = [*events, *events, *events]
    random.Random(7).shuffle(shuffled)
    barrier = threading.Barrier(4)
    failures: list[BaseException] = []

    def worker(part: list[ev.Event]) -> None:
        try:
            barrier.wait()
            for event in part:
                for _attempt in range(5):  # a deadlock victim is retried, as the drainer does
                    try:
                        apply(racing, event)
                        break
                    except Exception as exc:
                        if "deadlock" not in str(exc):
                            raise
        except BaseException as exc:
            failures.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=worker, args=(shuffled[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    got = state_of(racing)
    assert got["messages"] == expected["messages"]
    assert got["reactions"] == expected["reactions"]
    assert got["contacts"] == expected["contacts"] and got["chats"] == expected["chats"]
    assert len(got["waiting"]) == len(expected["waiting"])


@pytest.mark.django_db(transaction=True)
def test_a_burst_from_one_new_person_on_four_workers_makes_one_contact_and_one_chat(cast):
    session = make_session(cast)
    barrier = threading.Barrier(4)
    failures: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            barrier.wait()
            apply(session, text(n, phone="85298765432", name="New"))
        except BaseException as exc:
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    assert Contact.objects.count() == 1 and Chat.objects.count() == 1
    assert Message.objects.count() == 4 and Chat.objects.get().unread_count == 4


def test_odd_messages_are_kept_not_dropped(cast):
    """No id, an unknown JID, no body, an unknown type: each stored once, visibly."""
    session = make_session(cast)
    no_id = dataclasses.replace(text(1), provider_message_id="")
    odd_jid = ev.MessageUpserted(
        provider_message_id="ODD1",
        chat_jid="status-bot@whatever",
        from_me=False,
        timestamp=T0,
        type="other",
        sender=ev.Party(jid="status-bot@whatever"),
    )
    apply(session, no_id, odd_jid)
    apply(session, no_id, odd_jid)  # delivered again
    assert Message.objects.count() == 2
    odd = Message.objects.get(provider_message_id="ODD1")
    assert odd.type == "other" and odd.body == "" and odd.chat.contact is not None
    assert Message.objects.filter(provider_message_id__startswith="parley:").count() == 1


@pytest.mark.parametrize("size", [1, 300])  # VALUES, and COPY
def test_a_nul_character_from_the_provider_is_kept_visibly_not_a_failed_delivery(cast, size):
    session = make_session(cast)
    nul = [
        dataclasses.replace(
            text(n),
            body=f"before\x00after {n}",
            location={"name": "a\x00b"} if n == 0 else None,
        )
        for n in range(size)
    ]
    apply(session, ev.HistoryBatch(messages=nul, progress=100))
    first = Message.objects.get(provider_message_id="M0")
    assert first.body == "before\ufffdafter 0"
    assert first.data == {"location": {"name": "a\ufffdb"}}
    assert Message.objects.count() == size


def test_a_receipt_for_an_unknown_status_changes_nothing(cast):
    session = make_session(cast)
    apply(session, text(1, from_me=True))
    apply(session, ev.MessageStatusChanged(provider_message_id="M1", status="??", timestamp=T0))
    assert Message.objects.get().status == MessageStatus.SENT
