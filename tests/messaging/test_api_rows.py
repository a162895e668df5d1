"""The hot read serializers write their rows by hand (messaging/api_chats.py,
messaging/api_rows.py), from the lists' ``Row``s or from instances: each row is the one DRF's
generic ``Serializer.to_representation`` makes from the declared fields of the instance read
whole, value for value and key for key, in the same order."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework import serializers

from accounts.tenancy import scoped
from messaging import ingest, search
from messaging.api_chats import CHAT_SHOWN, CHAT_VALUES
from messaging.api_rows import rows
from messaging.chat_serializers import (
    NEWEST,
    ChatSerializer,
    MessageSerializer,
    SearchResultSerializer,
    last_messages,
    message_rows,
    messages_queryset,
    newest_message,
)
from messaging.models import Chat, MediaState, Message, MessageStatus, Reaction
from sessions_app import services
from sessions_app.providers import events as ev

T0 = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)


def generic(serializer, instance) -> dict:
    """The row as DRF writes it field by field."""
    return serializers.Serializer.to_representation(serializer, instance)


@pytest.fixture
def world(cast):
    """Org A's chats in every shape the inbox shows: a contact's, a group's, an unnamed one;
    messages with and without a sender, media stored and failed, a quote, reactions (one taken
    back), an error, edits, data and a revoke."""
    session = services.session_create(
        organization=cast.org_a, actor=cast.admin, data={"name": "Desk", "provider": "simulator"}
    )

    def arrive(n: int, chat_jid: str, **fields) -> Message:
        sender = fields.pop("sender", ev.Party(phone="85291234567", name="Mei Ling Chan"))
        event = ev.MessageUpserted(
            provider_message_id=f"M{n}",
            chat_jid=chat_jid,
            from_me=fields.pop("from_me", False),
            timestamp=T0 + dt.timedelta(minutes=n),
            sender=sender,
            **{"body": f"message {n} about quillwort", **fields},
        )
        with transaction.atomic():
            ingest.apply(session, [event])
        return Message.objects.get(session=session, provider_message_id=f"M{n}")

    first = arrive(1, "85291234567@s.whatsapp.net")
    arrive(2, "85291234567@s.whatsapp.net", type="image", caption="quillwort photo", body="")
    arrive(3, "120363000000000001@g.us", sender=ev.Party(phone="85299999999", name=""))
    arrive(4, "85298888888@s.whatsapp.net", sender=ev.Party(phone="85298888888", name=""))
    mine = arrive(5, "85291234567@s.whatsapp.net", from_me=True, sender=None)
    Message.objects.filter(provider_message_id="M2").update(
        media_state=MediaState.STORED, media_mime="image/jpeg", media_size=1234
    )
    Message.objects.filter(provider_message_id="M4").update(
        media_state=MediaState.FAILED,
        media={"mime_type": "audio/ogg", "filename": "voice.ogg", "error": "gone"},
        data={"buttons": ["Yes", "No"]},
        edits=[{"body": "earlier", "at": "2026-11-01T09:00:00Z"}],
        revoked_at=T0,
    )
    Message.objects.filter(pk=mine.pk).update(
        quoted=first,
        quoted_provider_id="M1",
        status=MessageStatus.FAILED,
        failed_at=T0 + dt.timedelta(seconds=1, microseconds=5),
        error_code="131047",
        error_text="Re-engagement message",
    )
    for actor, emoji in (("me", "👍"), ("85291234567@s.whatsapp.net", ""), ("x", "❤️")):
        Reaction.objects.create(
            organization=cast.org_a, message=first, actor=actor, emoji=emoji, timestamp=T0
        )
    Chat.objects.filter(organization=cast.org_a, jid__startswith="85298888888").update(
        snoozed_until=T0, assignee=cast.agent, needs_human=True, status="snoozed"
    )
    return cast.org_a


def whole(model, organization) -> list:
    """Every row of ``model`` in ``organization`` as an instance read whole, by id."""
    return list(scoped(model, organization).order_by("id"))


@pytest.mark.parametrize("read", ["as the list reads them", "as live frames read them"])
def test_it_writes_a_chat_row_as_drf_does(world, read):
    chats = scoped(Chat, world).order_by("id")
    if read == "as the list reads them":
        chats = rows(chats.values(*CHAT_VALUES, **CHAT_SHOWN, **{NEWEST: newest_message(world)}))
    else:
        chats = list(chats.select_related("session", "contact"))
    serializer = ChatSerializer(context={"last_messages": last_messages(world, chats)})

    written = ChatSerializer(chats, many=True, context=serializer.context).data

    expected = [generic(serializer, chat) for chat in whole(Chat, world)]
    assert len(written) == 3 and any(row["contact"] is None for row in written)
    assert written == expected
    assert [list(row) for row in written] == [ChatSerializer.Meta.fields] * 3


@pytest.mark.parametrize("read", ["as the lists read them", "as live frames read them"])
def test_it_writes_a_message_row_as_drf_does_in_another_time_zone_too(world, read):
    messages = scoped(Message, world).order_by("id")
    if read == "as the lists read them":
        messages = rows(message_rows(messages))
    else:
        messages = list(messages_queryset(messages))

    with timezone.override("Asia/Hong_Kong"):
        with CaptureQueriesContext(connection) as reading_reactions:
            written = MessageSerializer(messages, many=True).data
        expected = [generic(MessageSerializer(), m) for m in whole(Message, world)]
        assert written == expected

    assert len(reading_reactions) == 1  # for all the messages
    assert written[0]["timestamp"] == "2026-11-01T17:01:00+08:00"
    assert written[0]["reactions"] and written[4]["quoted"] == written[0]["id"]
    assert [list(row) for row in written] == [MessageSerializer.Meta.fields] * 5


@pytest.mark.parametrize("related", [True, False])
def test_it_writes_a_message_read_whole_as_drf_does(world, related):
    messages = scoped(Message, world).order_by("id")
    if related:
        messages = messages.select_related("chat", "session", "sender", "quoted")
    messages = list(messages)

    serializer = MessageSerializer()

    assert [serializer.to_representation(m) for m in messages] == [
        generic(serializer, m) for m in messages
    ]


def test_it_writes_a_search_result_as_drf_does(world):
    found = search.message_search(organization=world, query="quillw")
    serializer = SearchResultSerializer(context={"words": search.words_of("quillw")})

    written = SearchResultSerializer(
        rows(message_rows(found)), many=True, context=serializer.context
    )

    expected = [generic(serializer, message) for message in found]
    assert len(written.data) == 5 and "<mark>quillw</mark>ort" in written.data[0]["highlight"]
    assert written.data == expected
    assert list(written.data[0]) == SearchResultSerializer.Meta.fields
