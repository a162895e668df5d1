"""Chats and messages through the API, as an integration or the inbox would use them."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.test import TestCase
from django.test.utils import CaptureQueriesContext

from messaging import ingest
from messaging.models import Chat, IdempotencyKey, MediaState, Message, MessageStatus
from sessions_app import services
from sessions_app.providers import events as ev

T0 = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def session(cast):
    session = services.session_create(
        organization=cast.org_a, actor=cast.admin, data={"name": "Desk", "provider": "simulator"}
    )
    session.settings = {"messages_per_minute": 6000, "jitter_seconds": 0}
    session.save(update_fields=["settings"])
    return session


def incoming(session, n, *, phone="85291234567", name="Ann", **fields):
    message = ev.MessageUpserted(
        provider_message_id=f"IN{n}",
        chat_jid=f"{phone}@s.whatsapp.net",
        from_me=False,
        timestamp=T0 + dt.timedelta(minutes=n),
        sender=ev.Party(phone=phone, jid=f"{phone}@s.whatsapp.net", name=name),
        **{"body": f"message {n}", **fields},
    )
    with transaction.atomic():
        ingest.apply(session, [message])
    return Message.objects.get(session=session, provider_message_id=f"IN{n}")


def test_the_chat_list_shows_unread_conversations_newest_first(cast, api, session):
    incoming(session, 1, phone="85291111111", name="Bo")
    incoming(session, 2, phone="85292222222", name="Cy")
    agent = api(cast.agent)
    chats = agent.get("/api/v1/chats/").json()["results"]
    assert [c["contact"]["display_name"] for c in chats] == ["Cy", "Bo"]
    assert chats[0]["unread_count"] == 1 and chats[0]["session"] == str(session.uuid)
    assert agent.get("/api/v1/chats/", {"unread": "true", "assignee": "none"}).json()["results"]
    assert not agent.get("/api/v1/chats/", {"status": "resolved"}).json()["results"]
    assert agent.get("/api/v1/chats/", {"session": "nonsense"}).status_code == 400


def test_a_chat_in_the_list_shows_who_the_last_message_and_the_session(cast, api, session):
    incoming(session, 1, phone="85291111111", name="Mei Ling Chan")
    incoming(session, 2, phone="85291111111", name="Mei Ling Chan", body="x" * 300)
    incoming(session, 3, phone="85292222222", name="")

    chats = api(cast.viewer).get("/api/v1/chats/").json()["results"]

    nameless, mei = chats
    assert (mei["title"], mei["initials"]) == ("Mei Ling Chan", "MC")
    assert mei["session_colour"] == session.colour
    assert mei["last_message"]["preview"] == "x" * 120
    assert mei["last_message"]["direction"] == "in" and mei["last_message"]["type"] == "text"
    assert (nameless["title"], nameless["initials"]) == ("+85292222222", "8")
    assert nameless["last_message"]["preview"] == "message 3"
    detail = api(cast.viewer).get(f"/api/v1/chats/{mei['id']}/").json()
    assert detail["last_message"]["id"] == mei["last_message"]["id"]


def test_chats_filter_by_tag_and_needing_a_human_and_unread_totals(cast, api, session):
    from messaging.models import ContactTag, Tag

    incoming(session, 1, phone="85291111111", name="Bo")
    incoming(session, 2, phone="85291111111", name="Bo")
    incoming(session, 3, phone="85292222222", name="Cy")
    bo = Chat.objects.get(contact__phone="85291111111")
    Chat.objects.filter(pk=bo.pk).update(needs_human=True)
    vip = Tag.objects.create(organization=cast.org_a, name="VIP")
    ContactTag.objects.create(organization=cast.org_a, contact=bo.contact, tag=vip)
    agent = api(cast.agent)

    def titles(**params):
        return [c["title"] for c in agent.get("/api/v1/chats/", params).json()["results"]]

    assert titles(tag=vip.pk) == ["Bo"]
    assert titles(needs_human="true") == ["Bo"]
    assert agent.get("/api/v1/chats/", {"tag": "vip"}).status_code == 400
    assert agent.get("/api/v1/chats/unread/").json() == {"chats": 2, "messages": 3}
    agent.post(f"/api/v1/chats/{bo.uuid}/read/")
    assert agent.get("/api/v1/chats/unread/").json() == {"chats": 1, "messages": 1}


def test_the_chat_list_costs_the_same_queries_for_10_or_100_chats(cast, api, session):
    for n in range(30):
        incoming(session, n, phone=f"852911{n:05d}", name=f"P{n}")
    agent = api(cast.agent)
    agent.get("/api/v1/chats/")  # the key's first use of the day is recorded once
    with CaptureQueriesContext(connection) as small:
        assert len(agent.get("/api/v1/chats/", {"page_size": 10}).json()["results"]) == 10
    with CaptureQueriesContext(connection) as large:
        assert len(agent.get("/api/v1/chats/", {"page_size": 100}).json()["results"]) == 30
    assert len(small) == len(large)


def test_messages_page_backwards_from_the_newest_with_a_constant_query_count(cast, api, session):
    for n in range(25):
        incoming(session, n)
    chat = Chat.objects.get()
    agent = api(cast.agent)
    url = f"/api/v1/chats/{chat.uuid}/messages/"
    agent.get("/api/v1/chats/")  # the key's first use of the day is recorded once
    with CaptureQueriesContext(connection) as small:
        first = agent.get(url, {"page_size": 10}).json()
    with CaptureQueriesContext(connection) as large:
        agent.get(url, {"page_size": 25})
    assert len(small) == len(large)
    assert [m["body"] for m in first["results"][:2]] == ["message 24", "message 23"]
    older = agent.get(first["next"]).json()
    assert older["results"][0]["body"] == "message 14"


def test_marking_a_chat_read_clears_its_unread_count_and_unread_brings_it_back(cast, api, session):
    incoming(session, 1)
    chat = Chat.objects.get()
    with TestCase.captureOnCommitCallbacks(execute=False) as queued:
        answer = api(cast.agent).post(f"/api/v1/chats/{chat.uuid}/read/")
    assert answer.status_code == 200 and answer.json()["unread_count"] == 0
    # the read receipt, sent by a task after commit (beside the inbox's announcement)
    assert len([c for c in queued if "chat_mark_read" in c.__qualname__]) == 1
    with TestCase.captureOnCommitCallbacks(execute=False) as queued:
        again = api(cast.agent).post(f"/api/v1/chats/{chat.uuid}/unread/")
    assert again.status_code == 200 and again.json()["unread_count"] == 1
    assert not [c for c in queued if "chat_mark" in c.__qualname__]  # nothing goes to the contact
    assert api(cast.viewer).post(f"/api/v1/chats/{chat.uuid}/unread/").status_code == 403


def test_assigning_resolving_and_snoozing_a_chat(cast, api, session):
    incoming(session, 1)
    chat = Chat.objects.get()
    agent = api(cast.agent)
    url = f"/api/v1/chats/{chat.uuid}/"
    assert agent.patch(url, {"assignee": cast.agent.pk}, format="json").json()["assignee"] == (
        cast.agent.pk
    )
    assert agent.get("/api/v1/chats/", {"assignee": "me"}).json()["results"]
    outsider = agent.patch(url, {"assignee": cast.b_member.pk}, format="json")
    assert outsider.status_code == 400 and "assignee" in outsider.json()["error"]["fields"]
    assert agent.patch(url, {"status": "snoozed"}, format="json").status_code == 400
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).isoformat()
    snoozed = agent.patch(url, {"status": "snoozed", "snoozed_until": later}, format="json")
    assert snoozed.json()["status"] == "snoozed" and snoozed.json()["snoozed_until"]
    assert api(cast.viewer).patch(url, {"status": "resolved"}, format="json").status_code == 403


def test_a_snoozed_chat_reopens_when_its_time_comes_or_the_contact_writes(cast, api, session):
    from messaging.services.chats import chats_wake

    incoming(session, 1, phone="85291111111", name="Bo")
    incoming(session, 2, phone="85292222222", name="Cy")
    bo, cy = (
        Chat.objects.get(contact__phone="85291111111"),
        Chat.objects.get(contact__phone="85292222222"),
    )
    agent = api(cast.agent)
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).isoformat()
    for chat in (bo, cy):
        assert (
            agent.patch(
                f"/api/v1/chats/{chat.uuid}/",
                {"status": "snoozed", "snoozed_until": later},
                format="json",
            ).status_code
            == 200
        )

    assert chats_wake() == 0  # not yet
    history = ev.MessageUpserted(
        provider_message_id="OLD1",
        chat_jid="85291111111@s.whatsapp.net",
        from_me=False,
        timestamp=T0,
        body="from the history",
        sender=ev.Party(phone="85291111111", jid="85291111111@s.whatsapp.net"),
        history=True,
    )
    with transaction.atomic():
        ingest.apply(session, [ev.HistoryBatch(messages=[history], progress=100)])
    assert agent.get(f"/api/v1/chats/{bo.uuid}/").json()["status"] == "snoozed"  # not a reply

    incoming(session, 3, phone="85291111111", name="Bo")  # Bo writes again
    assert agent.get(f"/api/v1/chats/{bo.uuid}/").json()["status"] == "open"
    assert agent.get(f"/api/v1/chats/{cy.uuid}/").json()["status"] == "snoozed"

    assert chats_wake(now=dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)) == 1  # Cy's time came
    reopened = agent.get(f"/api/v1/chats/{cy.uuid}/").json()
    assert reopened["status"] == "open" and reopened["snoozed_until"] is None


def test_a_new_chat_goes_to_the_sessions_default_assignee(cast, api, session):
    incoming(session, 1, phone="85291111111", name="Bo")  # before a default was set
    session.default_assignee = cast.agent
    session.save(update_fields=["default_assignee"])
    incoming(session, 2, phone="85292222222", name="Cy")

    mine = api(cast.agent).get("/api/v1/chats/", {"assignee": "me"}).json()["results"]
    assert [c["title"] for c in mine] == ["Cy"]
    unassigned = api(cast.agent).get("/api/v1/chats/", {"assignee": "none"}).json()["results"]
    assert [c["title"] for c in unassigned] == ["Bo"]


def test_sending_through_the_api_is_queued_and_a_viewer_cannot_send(cast, api, session):
    body = {"session": str(session.uuid), "phone": "+852 9123 4567", "text": "Hello from the API"}
    with TestCase.captureOnCommitCallbacks(execute=True):
        sent = api(cast.agent).post("/api/v1/messages/", body, format="json")
    assert sent.status_code == 201, sent.content
    assert sent.json()["direction"] == "out" and sent.json()["status"] in ("pending", "queued")
    assert Message.objects.get().status == MessageStatus.QUEUED
    assert api(cast.viewer).post("/api/v1/messages/", body, format="json").status_code == 403
    empty = api(cast.agent).post("/api/v1/messages/", {**body, "text": ""}, format="json")
    assert empty.status_code == 400 and "text" in empty.json()["error"]["fields"]


def test_an_idempotency_key_gives_the_same_message_and_refuses_another_body(cast, api, session):
    agent = api(cast.agent)
    body = {"session": str(session.uuid), "phone": "+85291234567", "text": "Once"}
    headers = {"HTTP_IDEMPOTENCY_KEY": "order-42"}
    first = agent.post("/api/v1/messages/", body, format="json", **headers)
    again = agent.post("/api/v1/messages/", body, format="json", **headers)
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"] and Message.objects.count() == 1
    other = agent.post("/api/v1/messages/", {**body, "text": "Twice"}, format="json", **headers)
    assert other.status_code == 422 and Message.objects.count() == 1
    # Another organization may use the same key for its own message.
    theirs = services.session_create(
        organization=cast.org_b, actor=cast.b_member, data={"name": "B", "provider": "simulator"}
    )
    b_body = {**body, "session": str(theirs.uuid)}
    b_answer = api(cast.b_member, cast.org_b).post(
        "/api/v1/messages/", b_body, format="json", **headers
    )
    assert b_answer.status_code == 201 and b_answer.json()["id"] != first.json()["id"]


def test_a_duplicate_while_the_first_request_is_still_running_is_a_409(cast, api, session):
    from messaging.services.chats import fingerprint

    body = {"session": str(session.uuid), "phone": "+85291234567", "text": "Once"}
    IdempotencyKey.objects.create(  # the first request holds the key and has not finished
        organization=cast.org_a,
        key="in-flight",
        fingerprint=fingerprint(body),
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=24),
    )
    answer = api(cast.agent).post(
        "/api/v1/messages/", body, format="json", HTTP_IDEMPOTENCY_KEY="in-flight"
    )
    assert answer.status_code == 409 and not Message.objects.exists()


def test_a_failed_message_can_be_retried_and_a_sent_one_cannot(cast, api, session):
    incoming(session, 1)
    message = Message.objects.get()
    agent = api(cast.agent)
    assert agent.post(f"/api/v1/messages/{message.uuid}/retry/").status_code == 409
    Message.objects.filter(pk=message.pk).update(
        direction="out", status="failed", error_code="network-error"
    )
    retried = agent.post(f"/api/v1/messages/{message.uuid}/retry/")
    assert retried.status_code == 200 and retried.json()["status"] == "pending"
    assert retried.json()["error"] is None


def test_reacting_to_a_message_shows_our_reaction(cast, api, session):
    message = incoming(session, 1)
    answer = api(cast.agent).post(
        f"/api/v1/messages/{message.uuid}/react/", {"emoji": "👍"}, format="json"
    )
    assert answer.status_code == 200
    assert answer.json()["reactions"] == [
        {"actor": "me", "emoji": "👍", "timestamp": answer.json()["reactions"][0]["timestamp"]}
    ]


def stored_media(cast, session, content: bytes) -> Message:
    message = incoming(session, 1, type="image", media=ev.Media(id="m1", mime_type="image/jpeg"))
    key = default_storage.save(f"{cast.org_a.pk}/{session.pk}/IN1.jpg", ContentFile(content))
    Message.objects.filter(pk=message.pk).update(
        media_state=MediaState.STORED,
        media_key=key,
        media_mime="image/jpeg",
        media_size=len(content),
    )
    return message


def test_local_media_streams_with_range_support_to_members_only(cast, api, session):
    content = bytes(range(256)) * 40
    message = stored_media(cast, session, content)
    url = f"/api/v1/messages/{message.uuid}/media/"
    agent = api(cast.viewer)
    whole = agent.get(url)
    assert whole.status_code == 200 and b"".join(whole.streaming_content) == content
    part = agent.get(url, HTTP_RANGE="bytes=100-199")
    assert part.status_code == 206 and part["Content-Range"] == f"bytes 100-199/{len(content)}"
    assert b"".join(part.streaming_content) == content[100:200]
    assert agent.get(url, HTTP_RANGE="bytes=999999-").status_code == 416
    assert api(cast.b_member, cast.org_b).get(url).status_code == 404
    assert agent.get(f"/api/v1/messages/{message.uuid}/").json()["media"]["url"] == url


def test_s3_media_is_a_short_lived_signed_redirect(cast, api, session, s3_storage):
    content = b"\xff\xd8\xff" + b"x" * 1000
    message = stored_media(cast, session, content)
    answer = api(cast.agent).get(f"/api/v1/messages/{message.uuid}/media/")
    assert answer.status_code == 302
    location = answer["Location"]
    assert "Signature=" in location or "X-Amz-Signature=" in location
    assert httpx.get(location).content == content
    assert httpx.get(location.split("?")[0]).status_code == 403  # no public URL


def test_session_stats_count_what_it_holds(cast, api, session):
    incoming(session, 1, phone="85291111111")
    incoming(session, 2, phone="85292222222")
    stats = api(cast.viewer).get(f"/api/v1/sessions/{session.uuid}/stats/").json()
    assert stats["contacts"] == 2 and stats["chats"] == 2 and stats["messages"] == 2
    assert stats["incoming"] == 2 and stats["attachments"] == 0


def test_an_uploaded_image_is_sent_by_a_link_that_only_works_signed(cast, api, session, client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from messaging.services.outbox import _outgoing, message_deliver

    photo = SimpleUploadedFile("menu.jpg", b"\xff\xd8\xff" + b"m" * 2000, content_type="image/jpeg")
    form = {
        "session": str(session.uuid),
        "phone": "+85291234567",
        "text": "Our menu",
        "file": photo,
    }
    sent = api(cast.agent).post("/api/v1/messages/upload/", form, format="multipart")
    assert sent.status_code == 201, sent.content
    assert sent.json()["type"] == "image" and sent.json()["caption"] == "Our menu"
    message = Message.objects.get()
    assert default_storage.exists(message.media_key) and message.media_size == 2003
    link = _outgoing(message).media_url
    path = link.split("://", 1)[1].split("/", 1)[1]
    fetched = client.get("/" + path)
    assert fetched.status_code == 200 and b"".join(fetched.streaming_content).startswith(b"\xff")
    assert client.get("/" + path[:-3] + "xx/").status_code == 404  # a forged token
    assert message_deliver(message_id=message.pk) == "sent"


def test_an_image_over_whatsapps_limit_is_refused_and_nothing_is_kept(cast, api, session):
    from django.core.files.uploadedfile import SimpleUploadedFile

    big = SimpleUploadedFile("big.png", b"\x89PNG" + b"0" * (5 * 1024 * 1024), "image/png")
    form = {"session": str(session.uuid), "phone": "+85291234567", "file": big}
    refused = api(cast.agent).post("/api/v1/messages/upload/", form, format="multipart")
    assert refused.status_code == 400 and "file" in refused.json()["error"]["fields"]
    assert not Message.objects.exists()


def test_an_upload_on_s3_is_sent_by_a_presigned_link(cast, api, session, s3_storage):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from messaging.services.outbox import _outgoing

    doc = SimpleUploadedFile("terms.pdf", b"%PDF-1.7 terms", content_type="application/pdf")
    form = {"session": str(session.uuid), "phone": "+85291234567", "file": doc}
    sent = api(cast.agent).post("/api/v1/messages/upload/", form, format="multipart")
    assert sent.status_code == 201 and sent.json()["type"] == "document"
    link = _outgoing(Message.objects.get()).media_url
    assert link.startswith(s3_storage.endpoint_url) and httpx.get(link).content == b"%PDF-1.7 terms"
