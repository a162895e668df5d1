"""The GOWA adapter over real HTTP against a loopback go-whatsapp-web-multidevice gateway, and its
webhook side (signature, the refused default secret, translation of every GOWA fixture).
No database."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from sessions_app.providers import events as ev
from sessions_app.providers import get as get_provider
from sessions_app.providers import http
from sessions_app.providers.base import (
    MAX_TEXT_LENGTH,
    Capability,
    Forged,
    InboundRequest,
    MediaRejected,
    MessageTooLong,
    NetworkError,
    NotAuthorized,
    OutgoingMessage,
    ProviderError,
    RateLimited,
    RecipientNotFound,
    SessionConfig,
    Unsupported,
)
from sessions_app.providers.gowa import PROVIDER, GowaProvider
from tests.support.gowa_server import PASSWORD, USERNAME, GowaServer, signed
from tests.support.provider_server import ProviderServer

FIXTURES = Path("/work/shared/fixtures/gowa")
SECRET = "kq3-long-random-WHATSAPP_WEBHOOK_SECRET"
PNG_DATA_URI = "data:image/png;base64,"


def make_provider(base_url: str = "", *, timeout: float = 5.0, **credentials: str) -> GowaProvider:
    creds = {
        "server_url": "http://127.0.0.1:9",
        "username": USERNAME,
        "password": PASSWORD,
        "webhook_secret": SECRET,
        **credentials,
    }
    config = SessionConfig(session_id="0b7e6c52-1d7f-4a53-9d57-4f3c2a1e9b10", credentials=creds)
    return GowaProvider(config, base_url=base_url, timeout=timeout)


@pytest.fixture
def gowa():
    with GowaServer() as server:
        yield server


@pytest.fixture
def provider(gowa) -> GowaProvider:
    return make_provider(gowa.url)


@pytest.fixture
def paired(gowa) -> GowaServer:
    gowa.scan()
    return gowa


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def paths(server: GowaServer) -> list[str]:
    return [f"{r.method} {r.path}" for r in server.requests]


# --- what it is ----------------------------------------------------------------------------------


def test_it_is_registered_as_gowa_with_linked_device_capabilities():
    assert get_provider("gowa") is GowaProvider is PROVIDER
    assert GowaProvider.label == "GOWA (go-whatsapp-web-multidevice)"
    assert GowaProvider.capabilities == {
        Capability.QR,
        Capability.PAIRING_CODE,
        Capability.MEDIA,
        Capability.GROUPS,
        Capability.READ_RECEIPTS,
        Capability.REACTIONS,
        Capability.LOGOUT,
    }
    fields = {f.name: (f.secret, f.required) for f in GowaProvider.credential_fields}
    assert fields == {
        "server_url": (False, True),
        "username": (False, True),
        "password": (True, True),
        "device_id": (False, False),
        "webhook_secret": (True, True),
    }


def test_it_accepts_complete_credentials_and_asks_for_the_missing_ones():
    good = {
        "server_url": "https://gowa.example.com",
        "username": "u",
        "password": "p",
        "webhook_secret": SECRET,
    }
    assert GowaProvider.check_credentials(good) == {}
    assert set(GowaProvider.check_credentials({})) == {
        "server_url",
        "username",
        "password",
        "webhook_secret",
    }
    assert "WHATSAPP_WEBHOOK_SECRET" in GowaProvider.check_credentials({})["webhook_secret"]
    assert list(GowaProvider.check_credentials({**good, "server_url": "gowa:3000"})) == [
        "server_url"
    ]


# --- the default secret is refused everywhere -----------------------------------------------------


@pytest.mark.parametrize("secret", ["secret", " secret "])
def test_it_rejects_gowas_default_webhook_secret_in_the_credentials_form(secret):
    errors = GowaProvider.check_credentials(
        {
            "server_url": "http://gowa:3000",
            "username": "u",
            "password": "p",
            "webhook_secret": secret,
        }
    )
    assert list(errors) == ["webhook_secret"]
    assert "default" in errors["webhook_secret"]
    assert "WHATSAPP_WEBHOOK_SECRET" in errors["webhook_secret"]


def test_it_refuses_a_correctly_signed_webhook_when_the_secret_is_the_default():
    provider = make_provider(webhook_secret="secret")
    body, signature = signed(fixture("webhook_message_text.json"), "secret")
    request = InboundRequest("POST", {"x-hub-signature-256": signature}, body)
    with pytest.raises(Forged):
        provider.verify(request)


def test_it_refuses_to_connect_or_pair_with_the_default_secret_before_calling_the_gateway(gowa):
    provider = make_provider(gowa.url, webhook_secret="secret")
    with pytest.raises(NotAuthorized, match="WHATSAPP_WEBHOOK_SECRET"):
        provider.connect()
    with pytest.raises(NotAuthorized, match="WHATSAPP_WEBHOOK_SECRET"):
        provider.pairing_code("6281234567890")
    assert gowa.requests == []


# --- pairing --------------------------------------------------------------------------------------


def test_it_shows_the_gateways_login_qr_as_a_png_data_uri(gowa, provider):
    pairing = provider.connect()

    assert pairing.state == ev.SessionState.QR
    assert pairing.qr_image.startswith(PNG_DATA_URI)
    (png,) = gowa.qr_codes.values()
    assert base64.b64decode(pairing.qr_image.removeprefix(PNG_DATA_URI)) == png
    assert pairing.expires_in == 30.0
    assert paths(gowa)[:2] == ["GET /app/status", "GET /app/login"]
    assert paths(gowa)[2].startswith("GET /statics/images/qrcode/scan-qr-")
    assert all(r.headers.get("Authorization", "").startswith("Basic ") for r in gowa.requests)


def test_it_fetches_the_qr_from_the_gateway_it_talks_to_whatever_host_the_link_names(
    gowa, provider
):
    gowa.link_host = "gowa.internal:3000"  # GOWA builds qr_link from the Host it was asked for

    pairing = provider.connect()

    assert pairing.qr_image.startswith(PNG_DATA_URI)
    assert len(gowa.requests_to("GET", r"/statics/images/qrcode/.*")) == 1


def test_it_reports_ready_without_a_new_login_when_the_gateway_is_logged_in(paired, provider):
    pairing = provider.connect()

    assert pairing.state == ev.SessionState.READY
    assert pairing.jid == "628111222333@s.whatsapp.net"
    assert pairing.phone_number == "628111222333"
    assert paths(paired) == ["GET /app/status"]


def test_it_takes_gowas_already_logged_in_answer_to_a_login_as_ready(paired, provider):
    paired.inject(
        "GET",
        r"/app/status",
        status=200,
        body={"code": "SUCCESS", "results": {"is_connected": False, "is_logged_in": False}},
        times=1,
    )

    pairing = provider.connect()

    assert pairing.state == ev.SessionState.READY
    assert pairing.jid == "628111222333@s.whatsapp.net"
    assert paths(paired) == ["GET /app/status", "GET /app/login", "GET /app/status"]


def test_it_reconnects_a_paired_but_idle_gateway_instead_of_showing_a_qr(paired, provider):
    paired.drop()

    pairing = provider.connect()

    assert pairing.state == ev.SessionState.CONNECTING
    assert paths(paired) == ["GET /app/status", "GET /app/reconnect"]
    assert paired.logged_in


def test_it_asks_for_a_pairing_code_with_the_phone_as_digits(gowa, provider):
    pairing = provider.pairing_code("+62 812-3456-7890")

    assert pairing.state == ev.SessionState.QR
    assert gowa.pair_codes == [("6281234567890", pairing.pairing_code)]
    (request,) = gowa.requests_to("GET", r"/app/login-with-code")
    assert request.query == {"phone": ["6281234567890"]}


def test_it_answers_a_pairing_code_request_on_a_logged_in_gateway_with_ready(paired, provider):
    assert provider.pairing_code("6281234567890").state == ev.SessionState.READY


# --- status ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("paired_", "connected", "logged_in", "state"),
    [
        (True, True, True, ev.SessionState.READY),
        (True, False, True, ev.SessionState.CONNECTING),
        (True, True, False, ev.SessionState.CONNECTING),
        (False, True, False, ev.SessionState.QR),
        (True, False, False, ev.SessionState.DISCONNECTED),
        (False, False, False, ev.SessionState.LOGGED_OUT),
    ],
)
def test_it_maps_the_gateways_connection_flags_to_session_states(
    gowa, provider, paired_, connected, logged_in, state
):
    gowa.paired, gowa.connected, gowa.logged_in = paired_, connected, logged_in

    status = provider.status()

    assert status.state == state
    assert status.jid == ("628111222333@s.whatsapp.net" if paired_ else None)
    assert status.phone_number == ("628111222333" if paired_ else None)


def test_it_logs_out_through_the_gateway(paired, provider):
    provider.logout()

    assert paths(paired) == ["GET /app/logout"]
    assert not paired.paired
    assert provider.status().state == ev.SessionState.LOGGED_OUT


def test_it_disconnects_without_unpairing_or_calling_the_gateway(paired, provider):
    provider.disconnect()

    assert paired.requests == []
    assert paired.paired


def test_it_sends_the_device_header_only_when_a_device_id_is_configured(paired):
    make_provider(paired.url, device_id="dev-1").status()
    make_provider(paired.url).status()

    with_device, without = paired.requests
    assert with_device.headers.get("X-Device-Id") == "dev-1"
    assert without.headers.get("X-Device-Id") is None


def test_it_reaches_the_server_url_from_the_credentials_without_a_base_url(paired):
    provider = make_provider(server_url=paired.url + "/")

    assert provider.status().state == ev.SessionState.READY


# --- sending --------------------------------------------------------------------------------------


def test_it_sends_text_to_a_phone_jid_with_the_reply(paired, provider):
    sent = provider.send(
        OutgoingMessage(to="+62 812-3456-7890", text="Hello", reply_to="3EB0C127D7BACC83D6A1")
    )

    assert paired.sent == [
        {
            "phone": "6281234567890@s.whatsapp.net",
            "message": "Hello",
            "reply_message_id": "3EB0C127D7BACC83D6A1",
            "message_id": sent.provider_message_id,
        }
    ]
    assert sent.provider_message_id.startswith("3EB0")
    assert sent.recipient_id == "6281234567890@s.whatsapp.net"


def test_it_keeps_a_group_jid_as_given(paired, provider):
    provider.send(OutgoingMessage(to="120363402106123456@g.us", text="Hi all"))

    assert paired.sent[0]["phone"] == "120363402106123456@g.us"
    assert "reply_message_id" not in paired.sent[0]


def test_it_sends_an_image_by_url_as_a_multipart_form(paired, provider):
    sent = provider.send(
        OutgoingMessage(
            to="6281234567890",
            media_type="image",
            media_url="https://cdn.example.com/cat.jpg",
            caption="Look",
        )
    )

    (upload,) = paired.uploads
    assert upload["route"] == "/send/image"
    assert upload["content_type"].startswith("multipart/form-data; boundary=")
    assert upload["fields"] == {
        "phone": "6281234567890@s.whatsapp.net",
        "image_url": "https://cdn.example.com/cat.jpg",
        "caption": "Look",
    }
    assert upload["files"] == {}
    assert sent.provider_message_id == upload["message_id"]


@pytest.mark.parametrize(
    ("media_type", "route", "fields"),
    [
        ("video", "/send/video", {"video_url": "https://x.test/m", "caption": "Watch"}),
        ("document", "/send/file", {"file_url": "https://x.test/m", "caption": "Watch"}),
        ("audio", "/send/audio", {"audio_url": "https://x.test/m"}),
        ("sticker", "/send/sticker", {"sticker_url": "https://x.test/m"}),
    ],
)
def test_it_sends_each_kind_of_media_to_its_route(paired, provider, media_type, route, fields):
    provider.send(
        OutgoingMessage(
            to="6281234567890", media_type=media_type, media_url="https://x.test/m", caption="Watch"
        )
    )

    (upload,) = paired.uploads
    assert upload["route"] == route
    assert upload["fields"] == {"phone": "6281234567890@s.whatsapp.net", **fields}


def test_it_sends_a_reaction_to_the_reacted_messages_route(paired, provider):
    sent = provider.send(
        OutgoingMessage(to="6281234567890", reaction_to="3EB0C127D7BACC83D6A1", emoji="👍")
    )

    assert paired.reactions == [
        {
            "target": "3EB0C127D7BACC83D6A1",
            "phone": "6281234567890@s.whatsapp.net",
            "emoji": "👍",
            "message_id": sent.provider_message_id,
        }
    ]


def test_it_refuses_text_longer_than_the_limit_before_any_request(paired, provider):
    with pytest.raises(MessageTooLong):
        provider.send(OutgoingMessage(to="6281234567890", text="x" * (MAX_TEXT_LENGTH + 1)))

    assert paired.requests == []


@pytest.mark.parametrize(
    "message",
    [
        OutgoingMessage(to="6281234567890", template={"name": "hello", "language": "en"}),
        OutgoingMessage(to="6281234567890", media_type="image", media_id="1234"),
        OutgoingMessage(to="6281234567890"),
    ],
    ids=["template", "uploaded-media-id", "nothing"],
)
def test_it_refuses_what_gowa_cannot_send_without_a_request(paired, provider, message):
    with pytest.raises(Unsupported):
        provider.send(message)

    assert paired.requests == []


def test_it_marks_each_message_read_in_its_chat(paired, provider):
    provider.mark_read("6281234567890@s.whatsapp.net", ["3EB0AAA", "3EB0BBB"])

    assert paired.reads == [
        {"message_id": "3EB0AAA", "phone": "6281234567890@s.whatsapp.net"},
        {"message_id": "3EB0BBB", "phone": "6281234567890@s.whatsapp.net"},
    ]


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, "Unauthorized", NotAuthorized),
        (401, {"code": "AUTHENTICATION_ERROR", "message": "you are not login"}, NotAuthorized),
        (400, {"code": "INVALID_JID", "message": "user is not registered"}, RecipientNotFound),
        (400, {"code": "BAD_REQUEST", "message": "phone is not on WhatsApp"}, RecipientNotFound),
        (400, {"code": "VALIDATION_ERROR", "message": "invalid phone number"}, RecipientNotFound),
        (429, {"code": "WA_REACHOUT_TIMELOCK", "message": "error 463"}, RateLimited),
        (413, "Request Entity Too Large", MediaRejected),
        (400, {"code": "VALIDATION_ERROR", "message": "message: cannot be blank."}, ProviderError),
        (404, "Cannot POST /send/message", ProviderError),
    ],
)
def test_it_maps_each_gateway_refusal_to_the_error_taxonomy(
    paired, provider, status, body, expected
):
    paired.fail("POST", r"/send/message", status=status, body=body)

    with pytest.raises(ProviderError) as caught:
        provider.send(OutgoingMessage(to="6281234567890", text="Hello"))

    assert type(caught.value) is expected
    if isinstance(body, dict):
        assert body["code"] in caught.value.detail


def test_it_maps_a_media_validation_error_on_a_media_send_to_media_rejected(paired, provider):
    with pytest.raises(MediaRejected):
        provider.send(
            OutgoingMessage(to="6281234567890", media_type="image", media_url="ftp://x.test/a")
        )


def test_it_says_not_authorized_when_the_gateway_refuses_the_password(paired):
    with pytest.raises(NotAuthorized):
        make_provider(paired.url, password="wrong").status()


def test_it_says_not_authorized_when_the_gateways_whatsapp_session_is_logged_out(gowa, provider):
    with pytest.raises(NotAuthorized):
        provider.send(OutgoingMessage(to="6281234567890", text="Hello"))


def test_it_says_recipient_not_found_for_a_number_not_on_whatsapp(paired, provider):
    paired.unregistered.add("6281234567890")

    with pytest.raises(RecipientNotFound) as caught:
        provider.send(OutgoingMessage(to="6281234567890", text="Hello"))

    assert caught.value.permanent


def test_it_turns_a_slow_gateway_into_a_transient_network_error(paired):
    paired.delay("GET", r"/app/status", 2.0)
    provider = make_provider(paired.url, timeout=0.2)

    with pytest.raises(NetworkError) as caught:
        provider.status()

    assert not caught.value.permanent


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 503, "body": {"code": "INTERNAL_SERVER_ERROR", "message": "boom"}},
        {"malformed": True},
        {"oversized": http.MAX_RESPONSE_BYTES + 1024},
        {"close": True},
    ],
    ids=["5xx", "malformed", "oversized", "connection-closed"],
)
def test_it_turns_a_broken_answer_into_a_network_error(paired, provider, fault):
    paired.inject("GET", r"/app/status", **fault)

    with pytest.raises(NetworkError):
        provider.status()


# --- media ----------------------------------------------------------------------------------------


def test_it_downloads_auto_downloaded_media_from_the_gateways_statics(paired, provider):
    path = paired.serve_media("a.jpeg", b"\xff\xd8\xff jpeg", "image/jpeg")

    content, mime = provider.download_media(ev.Media(path=path))

    assert (content, mime) == (b"\xff\xd8\xff jpeg", "image/jpeg")
    (request,) = paired.requests
    assert request.path == "/statics/media/a.jpeg"
    assert request.headers.get("Authorization", "").startswith("Basic ")


def test_it_guesses_the_mime_type_when_the_gateway_says_octet_stream(paired, provider):
    path = paired.serve_media("report.pdf", b"%PDF-1.7", "application/octet-stream")

    assert provider.download_media(ev.Media(path=path)) == (b"%PDF-1.7", "application/pdf")


def test_it_downloads_a_media_url_on_the_gateway_with_its_credentials(paired, provider):
    paired.serve_media("v.ogg", b"OggS", "audio/ogg")

    assert provider.download_media(ev.Media(url=f"{paired.url}/statics/media/v.ogg")) == (
        b"OggS",
        "audio/ogg",
    )


def test_it_never_sends_the_gateway_credentials_to_another_origin(provider):
    files = ProviderServer(
        {("GET", r"/f\.png"): lambda request: (200, {"Content-Type": "image/png"}, b"\x89PNG")}
    )
    with files:
        content, mime = provider.download_media(ev.Media(url=f"{files.url}/f.png"))

    assert (content, mime) == (b"\x89PNG", "image/png")
    assert files.requests[0].headers.get("Authorization") is None


def test_it_says_media_rejected_when_the_gateway_no_longer_has_the_file(paired, provider):
    with pytest.raises(MediaRejected) as caught:
        provider.download_media(ev.Media(path="statics/media/gone.jpeg"))

    assert caught.value.permanent


def test_it_does_not_take_another_origins_401_for_a_logged_out_session(provider):
    files = ProviderServer({("GET", r"/f\.png"): lambda request: (401, {}, "Unauthorized")})
    with files, pytest.raises(MediaRejected):
        provider.download_media(ev.Media(url=f"{files.url}/f.png"))


def test_it_refuses_media_still_encrypted_on_whatsapps_cdn(paired, provider):
    with pytest.raises(Unsupported, match="WHATSAPP_AUTO_DOWNLOAD_MEDIA"):
        provider.download_media(ev.Media(url="https://mmg.whatsapp.net/v/t62/abc.enc"))

    assert paired.requests == []


@pytest.mark.parametrize("path", ["../../etc/passwd", "statics/../../secret", "http://evil/x", ""])
def test_it_refuses_a_media_path_that_is_not_a_file_on_the_gateway(paired, provider, path):
    with pytest.raises(MediaRejected):
        provider.download_media(ev.Media(path=path))

    assert paired.requests == []


# --- verify ---------------------------------------------------------------------------------------


def test_it_accepts_a_webhook_signed_with_the_gateways_secret():
    body, signature = signed(fixture("webhook_message_text.json"), SECRET)

    make_provider().verify(InboundRequest("POST", {"x-hub-signature-256": signature}, body))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-hub-signature-256": ""},
        {"x-hub-signature-256": "sha256=" + "0" * 64},
        {"x-hub-signature-256": signed(b"{}", SECRET)[1]},  # another body's signature
        {"x-hub-signature-256": signed(b"{}", SECRET)[1].removeprefix("sha256=")},
    ],
    ids=["missing", "empty", "zeros", "tampered-body", "no-prefix"],
)
def test_it_refuses_a_webhook_whose_signature_does_not_check_out(headers):
    body = json.dumps(fixture("webhook_message_text.json")).encode()

    with pytest.raises(Forged):
        make_provider().verify(InboundRequest("POST", headers, body))


def test_it_refuses_a_webhook_signed_with_another_secret():
    body, signature = signed(fixture("webhook_message_text.json"), "another-secret")

    with pytest.raises(Forged):
        make_provider().verify(InboundRequest("POST", {"x-hub-signature-256": signature}, body))


# --- translate ------------------------------------------------------------------------------------

JOHN = {"phone": "628123456789", "jid": "628123456789@s.whatsapp.net", "name": "John Doe"}
JOHN_CHAT = "628123456789@s.whatsapp.net"  # the docs name our own device as chat_id: the sender's
GROUP = "120363402106XXXXX@g.us"
IMAGE_PATH = "statics/media/1752404751-ad9e37ac-c658-4fe5-8d25-ba4a3f4d58fd.jpeg"

EXPECTED: dict[str, list[dict[str, Any]]] = {
    "webhook_call_offer.json": [],
    "webhook_group_participants_join.json": [
        {
            "kind": "groups_updated",
            "groups": [
                {
                    "jid": GROUP,
                    "participants": [
                        {"jid": "6289685XXXXXX@s.whatsapp.net", "phone": None},
                        {"jid": "6289686YYYYYY@s.whatsapp.net", "phone": None},
                    ],
                }
            ],
        }
    ],
    "webhook_message_ack_delivered.json": [
        {
            "kind": "message_status",
            "provider_message_id": "3EB00106E8BE0F407E88EC",
            "status": "delivered",
            "chat_jid": GROUP,
            "timestamp": "2025-07-18T22:44:20+00:00",
            "recipient": {
                "jid": "6289685XXXXXX@s.whatsapp.net",
                "lid": "251556368777322@lid",
                "name": "Saved Contact",
            },
        }
    ],
    "webhook_message_ack_read.json": [
        {
            "kind": "message_status",
            "provider_message_id": "3EB00106E8BE0F407E88EC",
            "status": "read",
            "chat_jid": GROUP,
            "timestamp": "2025-07-18T22:44:44+00:00",
            "recipient": {"jid": "6289685XXXXXX@s.whatsapp.net", "lid": None},
        }
    ],
    "webhook_message_audio.json": [
        {
            "kind": "message_upserted",
            "provider_message_id": "3EB0C127D7BACC83D6A5",
            "chat_jid": JOHN_CHAT,
            "type": "audio",
            "from_me": False,
            "chat_is_group": False,
            "body": "",
            "caption": "",
            "timestamp": "2023-10-15T10:55:00+00:00",
            "media": {
                "path": "statics/media/1752404905-b9393cd1-8546-4df9-8a60-ee3276036aba.ogg",
                "url": None,
                "mime_type": "audio/ogg",
            },
            "sender": JOHN,
            "quoted_id": None,
        }
    ],
    "webhook_message_deleted.json": [
        {
            "kind": "message_revoked",
            "provider_message_id": "3EB0C127D7BACC83D6A1",
            "chat_jid": "628987654321@s.whatsapp.net",
            "timestamp": "2025-07-13T11:12:00+00:00",
        }
    ],
    "webhook_message_document.json": [
        {
            "kind": "message_upserted",
            "provider_message_id": "3EB0C127D7BACC83D6A6",
            "chat_jid": JOHN_CHAT,
            "type": "document",
            "body": "",
            "caption": "Monthly report",
            "media": {
                "path": "statics/media/1752404965-document.pdf",
                "url": None,
                "mime_type": "application/pdf",
                "filename": "1752404965-document.pdf",
            },
            "sender": JOHN,
        }
    ],
    "webhook_message_edited.json": [
        {
            "kind": "message_edited",
            "provider_message_id": "94D13237B4D7F33EE4A63228BBD79EC0",
            "chat_jid": JOHN_CHAT,
            "body": "Updated message text",
            "timestamp": "2025-07-13T11:14:19+00:00",
        }
    ],
    "webhook_message_image_autodownload_caption.json": [
        {
            "kind": "message_upserted",
            "provider_message_id": "3EB0C127D7BACC83D6A3",
            "chat_jid": JOHN_CHAT,
            "type": "image",
            "body": "",
            "caption": "Check this out!",
            "media": {"path": IMAGE_PATH, "url": None, "mime_type": "image/jpeg"},
            "sender": JOHN,
            "timestamp": "2025-07-13T11:05:51+00:00",
        }
    ],
    "webhook_message_image_autodownload_nocaption.json": [
        {
            "kind": "message_upserted",
            "provider_message_id": "3EB0C127D7BACC83D6A3",
            "chat_jid": JOHN_CHAT,
            "type": "image",
            "body": "",
            "caption": "",
            "media": {"path": IMAGE_PATH, "url": None, "mime_type": "image/jpeg"},
            "sender": JOHN,
        }
    ],
    "webhook_message_image_url_no_autodownload.json": [
        {
            "kind": "message_upserted",
            "provider_message_id": "3EB0C127D7BACC83D6A3",
            "chat_jid": JOHN_CHAT,
            "type": "image",
            "body": "",
            "caption": "Check this out!",
            "media": {"path": None, "url": "https://mmg.whatsapp.net/..."},
            "sender": JOHN,
        }
    ],
    "webhook_message_location.json": [
        {
            "kind": "message_upserted",
            "provider_message_id": "3EB0C127D7BACC83D6A9",
            "chat_jid": JOHN_CHAT,
            "type": "location",
            "body": "",
            "media": None,
            "location": {
                "latitude": -6.2088,
                "longitude": 106.8456,
                "name": "Jakarta, Indonesia",
                "address": "Central Jakarta, DKI Jakarta, Indonesia",
            },
            "sender": JOHN,
        }
    ],
    "webhook_message_reaction.json": [
        {
            "kind": "reaction",
            "provider_message_id": "3EB0C127D7BACC83D6A1",
            "chat_jid": JOHN_CHAT,
            "emoji": "👍",
            "from_me": False,
            "sender": JOHN,
            "timestamp": "2023-10-15T10:40:00+00:00",
        }
    ],
    "webhook_message_reply.json": [
        {
            "kind": "message_upserted",
            "provider_message_id": "3EB0C127D7BACC83D6A2",
            "chat_jid": JOHN_CHAT,
            "type": "text",
            "body": "I'm doing great, thanks!",
            "quoted_id": "3EB0C127D7BACC83D6A1",
            "sender": JOHN,  # the push name (from_name) over our address book's name
        }
    ],
    "webhook_message_revoked.json": [
        {
            "kind": "message_revoked",
            "provider_message_id": "94D13237B4D7F33EE4A63228BBD79EC0",
            "chat_jid": "628987654321@s.whatsapp.net",  # ours, revoked in that chat
            "timestamp": "2025-07-13T11:13:30+00:00",
        }
    ],
    "webhook_message_text.json": [
        {
            "kind": "message_upserted",
            "provider_message_id": "3EB0C127D7BACC83D6A1",
            "chat_jid": JOHN_CHAT,
            "type": "text",
            "from_me": False,
            "chat_is_group": False,
            "body": "Hello, how are you?",
            "caption": "",
            "media": None,
            "quoted_id": None,
            "timestamp": "2023-10-15T10:30:00+00:00",
            "sender": {**JOHN, "lid": "251556368777322@lid"},
        }
    ],
}


def assert_subset(actual: Any, expected: Any, where: str = "") -> None:
    """Every key ``expected`` names matches ``actual`` (recursively); other keys are free."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        for key, value in expected.items():
            assert key in actual, f"{where}.{key} missing"
            assert_subset(actual[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: {actual!r}"
        for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
            assert_subset(got, want, f"{where}[{index}]")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def test_it_has_an_expectation_for_every_gowa_fixture():
    assert sorted(p.name for p in FIXTURES.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_it_translates_each_gowa_fixture_to_its_events(name):
    events = make_provider().translate(fixture(name))

    assert_subset([e.to_dict() for e in events], EXPECTED[name], name)
    for event in events:  # and each survives the queue's JSON form
        assert ev.Event.from_dict(json.loads(json.dumps(event.to_dict()))) == event


def test_it_gives_one_status_per_id_of_a_batched_receipt():
    payload = fixture("webhook_message_ack_read.json")
    payload["payload"]["ids"] = ["3EB0AAA", "3EB0BBB", "3EB0CCC"]
    payload["payload"]["receipt_type"] = "played"

    events = make_provider().translate(payload)

    assert [(e.provider_message_id, e.status) for e in events] == [
        ("3EB0AAA", "played"),
        ("3EB0BBB", "played"),
        ("3EB0CCC", "played"),
    ]
    assert {e.chat_jid for e in events} == {GROUP}


@pytest.mark.parametrize(
    ("receipt_type", "status"),
    [
        ("delivered", "delivered"),
        ("", "delivered"),
        ("read", "read"),
        ("read-self", "read"),
        ("played", "played"),
        ("played-self", "played"),
        ("sender", None),
        ("retry", None),
        ("something-new", None),
    ],
)
def test_it_maps_each_receipt_type_to_a_status_or_to_nothing(receipt_type, status):
    payload = fixture("webhook_message_ack_delivered.json")
    payload["payload"]["receipt_type"] = receipt_type

    events = make_provider().translate(payload)

    assert [e.status for e in events] == ([status] if status else [])


def test_it_names_only_the_group_when_members_leave():
    payload = fixture("webhook_group_participants_join.json")
    payload["payload"]["type"] = "leave"

    (event,) = make_provider().translate(payload)

    assert event.groups == [ev.Group(jid=GROUP, participants=[])]


def test_it_reads_a_group_message_with_its_participant_as_sender():
    payload = fixture("webhook_message_text.json")
    payload["payload"]["chat_id"] = "120363402106123456@g.us"

    (event,) = make_provider().translate(payload)

    assert event.chat_jid == "120363402106123456@g.us"
    assert event.chat_is_group
    assert event.sender.jid == "628123456789@s.whatsapp.net"


def test_it_leaves_out_the_sender_of_our_own_messages():
    payload = fixture("webhook_message_text.json")
    payload["payload"]["is_from_me"] = True

    (event,) = make_provider().translate(payload)

    assert event.from_me
    assert event.sender is None
    assert event.chat_jid == "628987654321@s.whatsapp.net"


def test_it_translates_a_shared_contact_card():
    payload = fixture("webhook_message_text.json")
    del payload["payload"]["body"]
    payload["payload"]["contact"] = {
        "displayName": "3Care",
        "vcard": "BEGIN:VCARD\nVERSION:3.0\nFN:3Care\nTEL;type=Mobile;waid=62132:+62 132\nEND:VCARD",
    }

    (event,) = make_provider().translate(payload)

    assert event.type == ev.MessageType.CONTACT
    assert event.contacts[0]["name"] == "3Care"
    assert event.contacts[0]["phones"] == ["62132"]


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        {"event": "message"},
        {"event": "chat_presence", "payload": {"chat_id": "x"}},
        {"event": "newsletter.joined", "payload": {"newsletter_id": "1@newsletter"}},
        {"event": "message", "payload": {"chat_id": "628123456789@s.whatsapp.net"}},
    ],
    ids=["none", "list", "no-payload", "presence", "newsletter", "message-without-id"],
)
def test_it_ignores_what_it_does_not_use(payload):
    assert make_provider().translate(payload) == []
