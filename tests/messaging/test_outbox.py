"""The outbox: written, queued, claimed with a lease, sent once; paced, retried, failed readably;
never sent twice on its own; the provider's echo reconciled with the row the send path wrote."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.test import TestCase
from django.utils import timezone

from crm.errors import ApplicationError, Conflict
from messaging import ingest
from messaging.models import Chat, Contact, Message, MessageStatus, Reaction
from messaging.services.outbox import message_deliver, message_retry, message_send, outbox_tick
from sessions_app import queue, services, simulation
from sessions_app.models import SessionStatus
from sessions_app.providers import events as ev
from tests.messaging.test_outbox_crash import received
from tests.sessions_app.test_cloud_api_flow import cloud_session, graph  # noqa: F401 - fixture


def make_session(cast, **settings):
    session = services.session_create(
        organization=cast.org_a, actor=cast.admin, data={"name": "Desk", "provider": "simulator"}
    )
    session.settings = {"messages_per_minute": 6000, "jitter_seconds": 0, **settings}
    session.save(update_fields=["settings"])
    return session


def send(cast, session, text="Hello!", **kwargs):
    with TestCase.captureOnCommitCallbacks(execute=True), transaction.atomic():
        message = message_send(
            organization=cast.org_a,
            actor=cast.agent,
            session=session,
            phone=kwargs.pop("phone", "+852 9123 4567"),
            text=text,
            **kwargs,
        )
    return Message.objects.get(pk=message.pk)


def later(seconds):
    return timezone.now() + dt.timedelta(seconds=seconds)


def test_it_writes_queues_and_sends_once_then_the_phone_delivers_and_reads(cast):
    session = make_session(cast)
    message = send(cast, session)
    assert message.status == MessageStatus.QUEUED  # enqueued after commit
    assert message.chat.contact.phone == "85291234567"
    assert message_deliver(message_id=message.pk) == "sent"
    assert message_deliver(message_id=message.pk) == "skipped"  # a redelivered task
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT and message.provider_message_id.startswith("SIM")
    assert message.attempts == 1
    queue.drain(now=later(10))  # the simulated phone's receipts, 1 s and 3 s later
    message.refresh_from_db()
    assert message.status == MessageStatus.READ and message.delivered_at and message.read_at


def test_a_reply_carries_the_quoted_message(cast):
    session = make_session(cast)
    first = send(cast, session)
    message_deliver(message_id=first.pk)
    first.refresh_from_db()
    reply = send(cast, session, text="And another thing", reply_to=first)
    assert reply.quoted_id == first.pk and reply.quoted_provider_id == first.provider_message_id


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"text": "   "}, "text"),
        ({"text": "x" * 65_537}, "text"),
        ({"text": "bad\x00"}, "text"),
        ({"phone": "not a phone"}, "phone"),
    ],
)
def test_what_cannot_be_sent_is_refused_before_anything_is_written(cast, kwargs, field):
    session = make_session(cast)
    with pytest.raises(ApplicationError) as refused:
        send(cast, session, **kwargs)
    assert field in refused.value.fields
    assert not Message.objects.exists()


def test_a_logged_out_session_refuses_with_a_readable_code(cast):
    session = make_session(cast)
    services.session_logout(organization=cast.org_a, session=session, actor=cast.admin)
    with pytest.raises(Conflict) as refused:
        send(cast, session)
    assert refused.value.code == "not-authorized" and not Message.objects.exists()


def test_a_transient_error_retries_with_backoff_and_a_permanent_one_fails(cast):
    session = make_session(cast)
    simulation.simulate_fault(session=session, fault="rate_limited")  # says: again in 30 s
    message = send(cast, session)
    assert message_deliver(message_id=message.pk) == "retry"
    message.refresh_from_db()
    assert message.status == MessageStatus.QUEUED and message.error_code == "rate-limit-exceeded"
    assert message.next_attempt_at > timezone.now() + dt.timedelta(seconds=25)
    assert message_deliver(message_id=message.pk) == "skipped"  # not due yet
    simulation.simulate_fault(session=session, fault="recipient_not_found")
    assert message_deliver(message_id=message.pk, now=later(31)) == "failed"
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert message.error_code == "recipient-not-found" and message.error_text


@pytest.mark.parametrize(
    ("fault", "outcome", "code"),
    [
        ("rate_limited", "retry", "rate-limit-exceeded"),
        ("recipient_not_found", "failed", "recipient-not-found"),
        ("outside_window", "failed", "outside-window"),
        ("message_too_long", "failed", "message-too-long"),
        ("media_rejected", "failed", "media-rejected"),
        ("not_authorized", "failed", "not-authorized"),
    ],
)
def test_each_provider_error_on_send_leaves_a_readable_state(cast, fault, outcome, code):
    """Transient errors keep the message queued for a later attempt, permanent ones fail it;
    either way with the provider's reason in words and its code, which the API shows. (A
    network error: ``test_a_provider_that_is_down_is_a_network_error_tried_again``.)"""
    session = make_session(cast)
    simulation.simulate_fault(session=session, fault=fault)
    message = send(cast, session)

    assert message_deliver(message_id=message.pk) == outcome
    message.refresh_from_db()
    assert message.error_code == code and message.error_text
    if outcome == "retry":
        assert message.status == MessageStatus.QUEUED
        assert message.next_attempt_at > timezone.now() and message.attempts == 1
    else:
        assert message.status == MessageStatus.FAILED and message.failed_at is not None
    assert received(message) == 0  # the phone never got it


def test_a_refused_session_fails_the_message_and_logs_the_session_out(cast):
    session = make_session(cast)
    simulation.simulate_fault(session=session, fault="not_authorized")
    message = send(cast, session)
    assert message_deliver(message_id=message.pk) == "failed"
    message.refresh_from_db()
    session.refresh_from_db()
    assert message.error_code == "not-authorized"
    assert session.status == SessionStatus.LOGGED_OUT


def test_pacing_leaves_the_next_message_queued_for_later(cast):
    session = make_session(cast, messages_per_minute=1, messages_burst=1)
    first, second = send(cast, session), send(cast, session, text="Again")
    assert message_deliver(message_id=first.pk) == "sent"
    assert message_deliver(message_id=second.pk) == "paced"
    second.refresh_from_db()
    assert second.status == MessageStatus.QUEUED
    assert second.next_attempt_at > timezone.now() + dt.timedelta(seconds=30)


def test_an_expired_lease_is_interrupted_and_only_a_persons_retry_sends_again(cast):
    session = make_session(cast)
    message = send(cast, session)
    Message.objects.filter(pk=message.pk).update(
        status=MessageStatus.SENDING, lease_until=later(-1)
    )  # a worker claimed it and died
    interrupted, due = outbox_tick()
    assert interrupted == 1 and message.pk not in due
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED and message.error_code == "interrupted"
    assert message_deliver(message_id=message.pk) == "skipped"  # never on its own
    message_retry(organization=cast.org_a, message=message, actor=cast.agent)
    assert message_deliver(message_id=message.pk) == "sent"
    with pytest.raises(Conflict):
        message_retry(organization=cast.org_a, message=message, actor=cast.agent)


def test_the_echo_stored_before_the_send_returned_becomes_the_sent_message(cast, monkeypatch):
    session = make_session(cast)
    message = send(cast, session)
    chat_jid = message.chat.jid

    def echo_first(*, session, message):
        """The gateway's webhook for our own send lands before its HTTP answer."""
        sent = real_send(session=session, message=message)
        echo = ev.MessageUpserted(
            provider_message_id=sent.provider_message_id,
            chat_jid=chat_jid,
            from_me=True,
            timestamp=timezone.now(),
            body=message.text,
        )
        receipt = ev.MessageStatusChanged(
            provider_message_id=sent.provider_message_id,
            status="delivered",
            timestamp=timezone.now(),
        )
        with transaction.atomic():
            ingest.apply(session, [echo, receipt])
        return sent

    from messaging.services import outbox

    real_send = outbox.session_send
    monkeypatch.setattr(outbox, "session_send", echo_first)
    assert message_deliver(message_id=message.pk) == "sent"
    assert Message.objects.count() == 1
    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED and message.body == "Hello!"


def test_a_receipt_before_the_send_returned_waits_and_is_applied(cast, monkeypatch):
    session = make_session(cast)
    message = send(cast, session)

    def receipt_first(*, session, message):
        sent = real_send(session=session, message=message)
        read = ev.MessageStatusChanged(
            provider_message_id=sent.provider_message_id, status="read", timestamp=timezone.now()
        )
        with transaction.atomic():
            ingest.apply(session, [read])
        return sent

    from messaging.services import outbox

    real_send = outbox.session_send
    monkeypatch.setattr(outbox, "session_send", receipt_first)
    message_deliver(message_id=message.pk)
    message.refresh_from_db()
    assert message.status == MessageStatus.READ


def test_sending_to_a_chat_or_a_contact_uses_the_same_conversation(cast):
    session = make_session(cast)
    first = send(cast, session)
    chat = Chat.objects.get()
    with transaction.atomic():
        by_chat = message_send(organization=cast.org_a, actor=None, chat=chat, text="via chat")
        by_contact = message_send(
            organization=cast.org_a,
            actor=None,
            session=session,
            contact=Contact.objects.get(),
            text="via contact",
        )
    assert {first.chat_id, by_chat.chat_id, by_contact.chat_id} == {chat.pk}
    assert not Reaction.objects.exists()


# --- Over real HTTP: Meta's Cloud API on loopback ------------------------------------------------


def cloud_send(cast, session, text):
    with TestCase.captureOnCommitCallbacks(execute=True), transaction.atomic():
        return message_send(
            organization=cast.org_a, actor=None, session=session, phone="+85291234567", text=text
        )


def test_a_cloud_api_send_records_metas_id(cast, graph):  # noqa: F811
    session = cloud_session(cast.org_a, cast.admin)
    message = cloud_send(cast, session, "Hello from the Cloud API")
    assert message_deliver(message_id=message.pk) == "sent"
    message.refresh_from_db()
    assert message.provider_message_id.startswith("wamid.")
    assert graph.sent[-1]["text"]["body"] == "Hello from the Cloud API"


def test_cloud_api_refusals_fail_the_message_with_metas_reason(cast, graph):  # noqa: F811
    session = cloud_session(cast.org_a, cast.admin)
    too_long = cloud_send(cast, session, "x" * 5000)  # Meta takes 4096 characters of text
    assert message_deliver(message_id=too_long.pk) == "failed"
    too_long.refresh_from_db()
    assert too_long.error_code == "message-too-long"
    graph.access_token = "rotated-elsewhere"  # the token was revoked in Meta's dashboard
    refused = cloud_send(cast, session, "Anyone there?")
    assert message_deliver(message_id=refused.pk) == "failed"
    refused.refresh_from_db()
    session.refresh_from_db()
    assert refused.error_code == "not-authorized" and session.status == SessionStatus.LOGGED_OUT
    assert len(graph.sent) == 0


def test_a_provider_that_is_down_is_a_network_error_tried_again(cast, graph):  # noqa: F811
    session = cloud_session(cast.org_a, cast.admin)
    graph.fail("POST", r".*/messages", status=503)
    message = cloud_send(cast, session, "Are you there?")
    assert message_deliver(message_id=message.pk) == "retry"
    message.refresh_from_db()
    assert message.status == MessageStatus.QUEUED and message.error_code == "network-error"
    assert message.next_attempt_at > timezone.now() and len(graph.sent) == 0
