"""The team's additions to conversations through the API: private notes on a chat (never sent)
and canned replies filled in with the chat's contact."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction

from accounts.models import AuditEvent
from messaging import ingest
from messaging.models import CannedReply, Chat, Message
from sessions_app import services
from sessions_app.providers import events as ev

T0 = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)
REPLIES = "/api/v1/canned-replies/"


@pytest.fixture
def chat(cast):
    session = services.session_create(
        organization=cast.org_a, actor=cast.admin, data={"name": "Desk", "provider": "simulator"}
    )
    with transaction.atomic():
        ingest.apply(
            session,
            [
                ev.MessageUpserted(
                    provider_message_id="IN1",
                    chat_jid="85291234567@s.whatsapp.net",
                    from_me=False,
                    timestamp=T0,
                    body="Do you deliver to Kowloon?",
                    sender=ev.Party(
                        phone="85291234567", jid="85291234567@s.whatsapp.net", name="Mei Ling Chan"
                    ),
                )
            ],
        )
    return Chat.objects.get(session=session)


def test_a_private_note_is_kept_in_the_chat_and_never_sent(cast, api, chat):
    url = f"/api/v1/chats/{chat.uuid}/notes/"
    agent = api(cast.agent)

    first = agent.post(url, {"text": "VIP: always offer free delivery"}, format="json")
    second = agent.post(url, {"text": "Called her back at 3pm"}, format="json")

    assert first.status_code == second.status_code == 201
    assert first.json()["author"] == cast.agent.email
    notes = api(cast.viewer).get(url).json()["results"]
    assert [n["text"] for n in notes] == [
        "VIP: always offer free delivery",
        "Called her back at 3pm",
    ]
    assert all(n["chat"] == str(chat.uuid) for n in notes)
    assert Message.objects.filter(chat=chat).count() == 1  # nothing was sent or stored as one


@pytest.mark.parametrize("text", ["", "   ", "x" * 10_001, "bad\x00text"])
def test_a_note_without_usable_text_is_a_clear_400(cast, api, chat, text):
    response = api(cast.agent).post(
        f"/api/v1/chats/{chat.uuid}/notes/", {"text": text}, format="json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert "text" in error["fields"] or "NUL" in error["message"]  # the parser refuses NUL


def test_a_viewer_reads_notes_but_cannot_write_one(cast, api, chat):
    url = f"/api/v1/chats/{chat.uuid}/notes/"
    assert api(cast.viewer).post(url, {"text": "mine"}, format="json").status_code == 403
    assert api(cast.viewer).get(url).status_code == 200


def test_a_canned_reply_is_filled_in_with_the_chats_contact(cast, api, chat):
    admin, agent = api(cast.admin), api(cast.agent)
    created = admin.post(
        REPLIES,
        {
            "shortcut": "/Kowloon",
            "text": "Hi {{first_name}}! Yes, we deliver to Kowloon ({{ phone }}).",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    reply = created.json()
    assert reply["shortcut"] == "kowloon"

    rendered = agent.get(f"{REPLIES}{reply['id']}/render/", {"chat": str(chat.uuid)}).json()
    assert rendered["text"] == "Hi Mei! Yes, we deliver to Kowloon (+852 9123 4567)."
    bare = agent.get(f"{REPLIES}{reply['id']}/render/").json()
    assert bare["text"] == "Hi ! Yes, we deliver to Kowloon ()."

    changed = admin.patch(f"{REPLIES}{reply['id']}/", {"text": "Bye {{name}}"}, format="json")
    assert changed.json()["text"] == "Bye {{name}}" and changed.json()["shortcut"] == "kowloon"
    assert [r["shortcut"] for r in api(cast.viewer).get(REPLIES).json()["results"]] == ["kowloon"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"shortcut": "two words", "text": "Hi"}, "shortcut"),
        ({"shortcut": "", "text": "Hi"}, "shortcut"),
        ({"shortcut": "hi", "text": "Hi {{surname}}"}, "text"),
        ({"shortcut": "hi", "text": "x" * 4097}, "text"),
        ({"shortcut": "hi", "text": " "}, "text"),
    ],
)
def test_a_canned_reply_that_cannot_work_is_refused_with_the_reason(cast, api, body, field):
    response = api(cast.admin).post(REPLIES, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]


def test_a_shortcut_is_one_reply_per_organization(cast, api):
    body = {"shortcut": "price", "text": "Our prices: …"}
    assert api(cast.admin).post(REPLIES, body, format="json").status_code == 201
    again = api(cast.admin).post(REPLIES, {**body, "shortcut": "PRICE"}, format="json")
    assert again.status_code == 409 and "shortcut" in again.json()["error"]["fields"]
    theirs = api(cast.b_member, cast.org_b).post(REPLIES, body, format="json")
    assert theirs.status_code == 201  # another organization's shortcuts are its own


def test_canned_replies_are_read_by_everyone_and_written_by_admins_and_owners(cast, api):
    # The organization's settings, as on the dashboard: viewers and agents use, admins write
    made = api(cast.owner).post(REPLIES, {"shortcut": "hi", "text": "Hi!"}, format="json")
    assert made.status_code == 201
    url = f"{REPLIES}{made.json()['id']}/"
    for role in ("viewer", "agent"):
        client = api(cast.user(role))
        assert client.get(REPLIES).json()["results"][0]["shortcut"] == "hi"
        assert client.get(f"{url}render/").status_code == 200
        attempts = [
            client.post(REPLIES, {"shortcut": role, "text": "Mine"}, format="json"),
            client.patch(url, {"text": "Changed"}, format="json"),
            client.delete(url),
        ]
        assert [r.status_code for r in attempts] == [403, 403, 403], role
    assert api(cast.admin).delete(url).status_code == 204
    assert not CannedReply.objects.filter(organization=cast.org_a).exists()
    assert list(
        AuditEvent.objects.filter(organization=cast.org_a, action__startswith="canned_reply.")
        .order_by("id")
        .values_list("action", "actor__email")
    ) == [("canned_reply.created", cast.owner.email), ("canned_reply.deleted", cast.admin.email)]


def test_rendering_for_another_organizations_chat_is_refused(cast, api, chat):
    reply = api(cast.b_member, cast.org_b).post(
        REPLIES, {"shortcut": "hi", "text": "Hi {{name}}"}, format="json"
    )
    response = api(cast.b_member, cast.org_b).get(
        f"{REPLIES}{reply.json()['id']}/render/", {"chat": str(chat.uuid)}
    )
    assert response.status_code == 400 and "chat" in response.json()["error"]["fields"]
    assert "Mei" not in response.content.decode()


def _long_chat(chat, n):
    """``n`` more messages in the chat, a minute apart after the first (two share a second)."""
    for i in range(n):
        Message.objects.create(
            organization=chat.organization,
            session=chat.session,
            chat=chat,
            provider_message_id=f"M{i}",
            direction="in",
            type="text",
            body=f"message {i}",
            status="received",
            timestamp=T0 + dt.timedelta(minutes=1 + i // 2 * 2),
        )
    return list(Message.objects.filter(chat=chat).order_by("-timestamp", "-id"))


def test_a_message_opens_in_the_middle_of_its_page_and_pages_go_both_ways(cast, api, chat):
    """Search jumps to a message: its page, then older (next) and newer (previous) pages that
    meet exactly, ties on the same second included."""
    newest_first = _long_chat(chat, 30)
    target = newest_first[15]
    client = api(cast.viewer)
    url = f"/api/v1/chats/{chat.uuid}/messages/"

    page = client.get(url, {"around": str(target.uuid), "page_size": 10}).json()
    ids = [m["id"] for m in page["results"]]
    assert ids == [str(m.uuid) for m in newest_first[10:20]]  # 5 newer, it, 4 older
    older = client.get(page["next"]).json()
    newer = client.get(page["previous"]).json()
    assert [m["id"] for m in older["results"]] == [str(m.uuid) for m in newest_first[20:30]]
    assert [m["id"] for m in newer["results"]] == [str(m.uuid) for m in newest_first[0:10]]
    assert newer["previous"] is None  # that was the newest: the live end
    last = client.get(older["next"]).json()
    assert [m["id"] for m in last["results"]] == [str(newest_first[30].uuid)]
    assert last["next"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"around": "nope"}, "around"),
        ({"before": "6f1c3a52-0000-4000-8000-000000000000"}, "before"),
        ({"around": "6f1c3a52-0000-4000-8000-000000000000", "after": "x"}, "after"),
    ],
)
def test_paging_from_a_message_not_in_the_chat_is_a_clear_400(cast, api, chat, params, field):
    response = api(cast.viewer).get(f"/api/v1/chats/{chat.uuid}/messages/", params)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_a_page_around_a_message_refuses_a_page_size_that_is_no_size(cast, api, chat):
    target = _long_chat(chat, 3)[1]
    response = api(cast.viewer).get(
        f"/api/v1/chats/{chat.uuid}/messages/", {"around": str(target.uuid), "page_size": "-1"}
    )
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["page_size"]


def test_presence_says_who_is_viewing_a_chat(cast, api, chat):
    url = f"/api/v1/chats/{chat.uuid}/presence/"
    assert api(cast.viewer).get(url).json() == []

    api(cast.agent).post(url)
    viewers = api(cast.admin).post(url).json()

    assert {v["id"] for v in viewers} == {cast.agent.pk, cast.admin.pk}
    assert {v["name"] for v in viewers} == {cast.agent.display_name, cast.admin.display_name}
    api(cast.agent).delete(url)
    assert [v["id"] for v in api(cast.viewer).get(url).json()] == [cast.admin.pk]
