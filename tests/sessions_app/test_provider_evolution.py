"""The Evolution API v2 adapter over real HTTP against a loopback Evolution gateway, and its webhook
side (the secret header, the scrubbed apikey, translation of every Evolution fixture and of a
hand-written payload for each event kind). No database."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from sessions_app.providers import events as ev
from sessions_app.providers import get as get_provider
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
from sessions_app.providers.evolution import PROVIDER, WEBHOOK_EVENTS, EvolutionProvider
from tests.support.evolution_server import GLOBAL_KEY, EvolutionServer

FIXTURES = Path("/work/shared/fixtures/evolution")
SECRET = "per-session-webhook-secret-9f2c"
WEBHOOK_URL = "https://parley.example/webhooks/evolution/0b7e6c52"
INSTANCE = "parley-hk-1"
PNG_DATA_URI = "data:image/png;base64,"
SEND_TEXT = r"/message/sendText/.*"


def make_provider(
    base_url: str = "", *, timeout: float = 5.0, **credentials: str
) -> EvolutionProvider:
    creds = {
        "server_url": "http://127.0.0.1:9",
        "api_key": GLOBAL_KEY,
        "instance_name": INSTANCE,
        **credentials,
    }
    config = SessionConfig(
        session_id="0b7e6c52-1d7f-4a53-9d57-4f3c2a1e9b10",
        credentials=creds,
        webhook_url=WEBHOOK_URL,
        webhook_secret=SECRET,
    )
    return EvolutionProvider(config, base_url=base_url, timeout=timeout)


@pytest.fixture
def evolution():
    with EvolutionServer() as server:
        yield server


@pytest.fixture
def provider(evolution) -> EvolutionProvider:
    return make_provider(evolution.url)


@pytest.fixture
def paired(evolution) -> EvolutionServer:
    evolution.add_instance(INSTANCE)
    evolution.scan(INSTANCE)
    return evolution


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def paths(server: EvolutionServer) -> list[str]:
    return [f"{r.method} {r.path}" for r in server.requests]


def summary(event: ev.Event) -> dict[str, Any]:
    """An event's kind and every field that differs from its default (``raw`` left out)."""
    out: dict[str, Any] = {"kind": event.kind}
    for f in dataclasses.fields(event):
        if f.name == "raw":
            continue
        value = getattr(event, f.name)
        if f.default is not dataclasses.MISSING and value == f.default:
            continue
        if f.default_factory is not dataclasses.MISSING and value == f.default_factory():
            continue
        out[f.name] = plain(value)
    return out


def plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, ev.Event):
        return summary(value)
    if dataclasses.is_dataclass(value):  # Party, Media, Group: only what is set
        fields = ((f.name, plain(getattr(value, f.name))) for f in dataclasses.fields(value))
        return {k: v for k, v in fields if v not in (None, "", [])}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def envelope(event: str | None, data: Any) -> dict[str, Any]:
    body = {
        "event": event,
        "instance": INSTANCE,
        "data": data,
        "destination": WEBHOOK_URL,
        "date_time": "2025-10-21T10:00:00.000Z",
        "sender": "85291234567@s.whatsapp.net",
        "server_url": "https://evolution.example",
        "apikey": "5A793D2C-EF7A-4AC5-86AE-5DE05F1CCC22",
    }
    if event is None:
        del body["event"]
    return body


# --- what it is ----------------------------------------------------------------------------------


def test_it_is_registered_as_evolution_with_linked_device_capabilities():
    assert get_provider("evolution") is EvolutionProvider is PROVIDER
    assert EvolutionProvider.name == "evolution"
    assert EvolutionProvider.label == "Evolution API (linked device)"
    assert EvolutionProvider.capabilities == {
        Capability.QR,
        Capability.PAIRING_CODE,
        Capability.MEDIA,
        Capability.GROUPS,
        Capability.READ_RECEIPTS,
        Capability.REACTIONS,
        Capability.LOGOUT,
    }
    fields = {f.name: f.secret for f in EvolutionProvider.credential_fields}
    assert fields == {"server_url": False, "api_key": True, "instance_name": False}


def test_it_asks_for_the_missing_credentials_and_an_http_server_url():
    complete = {"server_url": "https://evo.example", "api_key": "k", "instance_name": "i"}
    assert EvolutionProvider.check_credentials(complete) == {}
    assert set(EvolutionProvider.check_credentials({})) == {
        "server_url",
        "api_key",
        "instance_name",
    }
    errors = EvolutionProvider.check_credentials({**complete, "server_url": "evo.example"})
    assert set(errors) == {"server_url"}


# --- connect and pair ----------------------------------------------------------------------------


def test_it_creates_the_instance_with_our_webhook_and_secret_then_shows_its_qr(evolution, provider):
    pairing = provider.connect()

    assert pairing.state == "qr"
    assert pairing.qr == evolution.instances[INSTANCE].qr_codes[-1]
    assert pairing.qr.startswith("2@")
    assert pairing.qr_image.startswith(PNG_DATA_URI)
    assert pairing.expires_in == 40
    assert paths(evolution) == [
        "POST /instance/create",
        f"GET /instance/connect/{INSTANCE}",
    ]
    create = evolution.requests[0]
    assert create.headers["apikey"] == GLOBAL_KEY
    assert create.json == {
        "instanceName": INSTANCE,
        "integration": "WHATSAPP-BAILEYS",
        "qrcode": True,
        "webhook": {
            "enabled": True,
            "url": WEBHOOK_URL,
            "byEvents": False,
            "base64": False,
            "headers": {"x-parley-secret": SECRET},
            "events": [
                "QRCODE_UPDATED",
                "CONNECTION_UPDATE",
                "MESSAGES_UPSERT",
                "MESSAGES_UPDATE",
                "MESSAGES_EDITED",
                "MESSAGES_DELETE",
                "SEND_MESSAGE",
                "CONTACTS_UPSERT",
                "GROUPS_UPSERT",
                "MESSAGING_HISTORY_SET",
                "MESSAGES_SET",
            ],
        },
    }
    assert evolution.instances[INSTANCE].webhook["headers"] == {"x-parley-secret": SECRET}


def test_its_create_request_has_the_fields_of_a_real_v2_request_and_webhook_config(
    evolution, provider
):
    provider.connect()
    sent = evolution.requests[0].json
    real = fixture("instance_create_request_v2_issue1541.json")
    assert set(real) <= set(sent)
    assert (sent["qrcode"], sent["integration"]) == (real["qrcode"], real["integration"])
    real_webhook = fixture("webhook_config_in_instance_create_issue1340.json")["webhook"]
    assert set(real_webhook) == set(sent["webhook"])
    assert set(real_webhook["events"]) <= set(WEBHOOK_EVENTS)


def test_it_reuses_an_existing_instance_and_sets_our_webhook_on_it(evolution, provider):
    evolution.add_instance(INSTANCE)

    pairing = provider.connect()

    assert pairing.state == "qr" and pairing.qr
    assert paths(evolution) == [
        "POST /instance/create",
        f"POST /webhook/set/{INSTANCE}",
        f"GET /instance/connect/{INSTANCE}",
    ]
    webhook = evolution.instances[INSTANCE].webhook
    assert webhook["url"] == WEBHOOK_URL
    assert webhook["headers"] == {"x-parley-secret": SECRET}
    assert webhook["events"] == WEBHOOK_EVENTS


def test_it_connects_with_an_instance_token_that_may_not_create_instances(evolution):
    instance = evolution.add_instance(INSTANCE)
    provider = make_provider(evolution.url, api_key=instance.token)

    pairing = provider.connect()

    assert pairing.state == "qr" and pairing.qr
    assert [r.headers["apikey"] for r in evolution.requests] == [instance.token] * 3
    assert evolution.instances[INSTANCE].webhook["headers"] == {"x-parley-secret": SECRET}


def test_it_reaches_the_server_url_from_the_credentials_without_a_base_url(evolution):
    provider = make_provider(server_url=evolution.url + "/")
    assert provider.connect().state == "qr"
    assert len(evolution.requests) == 2


def test_it_reports_ready_with_the_phone_when_the_instance_is_already_open(paired, provider):
    pairing = provider.connect()

    assert pairing.state == "ready"
    assert pairing.qr == ""
    assert pairing.phone_number == "85291234567"
    assert pairing.jid == "85291234567@s.whatsapp.net"
    assert pairing.name == "Parley HK"


@pytest.mark.parametrize(
    "name", ["instance_create_response_openapi.json", "instance_create_response_v2_issue1541.json"]
)
def test_it_takes_either_create_answer_whatever_shape_its_hash_has(evolution, provider, name):
    evolution.inject("POST", r"/instance/create", status=201, body=fixture(name))
    evolution.add_instance(INSTANCE)  # what the canned answer says it created

    pairing = provider.connect()

    assert pairing.state == "qr" and pairing.qr.startswith("2@")
    assert f"POST /webhook/set/{INSTANCE}" not in paths(evolution)


@pytest.mark.parametrize(
    ("name", "qr", "image", "code"),
    [
        ("instance_connect_response_openapi.json", "2@y8eK+bjtEjUWy9/FOM...", "", "WZYE-H1YY"),
        (
            "instance_connect_response_truncated_issue2197.json",
            "2@friZvbL+GZxUgI",
            "data:image/png;base64,iVBOR",
            "FNPG-5AYK",
        ),
    ],
)
def test_it_reads_a_connect_answer_plain_or_wrapped_in_a_list(
    evolution, provider, name, qr, image, code
):
    evolution.inject("GET", r"/instance/connect/.*", status=200, body=fixture(name))

    pairing = provider.connect()

    assert (pairing.state, pairing.qr, pairing.qr_image, pairing.pairing_code) == (
        "qr",
        qr,
        image,
        code,
    )


def test_it_reads_the_live_gateways_connect_answer_wrapped_in_a_list(evolution, provider):
    evolution.wrap_connect = True
    pairing = provider.connect()
    assert pairing.qr == evolution.instances[INSTANCE].qr_codes[-1]
    assert pairing.qr_image.startswith(PNG_DATA_URI)


def test_it_asks_for_a_pairing_code_with_the_phone_as_digits(evolution, provider):
    pairing = provider.pairing_code("+852 9123 4567")

    issued = evolution.instances[INSTANCE].pairing_codes[-1]
    assert pairing.state == "qr"
    assert pairing.pairing_code == f"{issued[:4]}-{issued[4:]}"
    assert pairing.qr == evolution.instances[INSTANCE].qr_codes[-1]
    create, connect = evolution.requests
    assert create.json["number"] == "85291234567"
    assert connect.query == {"number": ["85291234567"]}


def test_it_explains_why_when_the_gateway_gives_no_pairing_code(evolution, provider):
    evolution.business = True

    with pytest.raises(ProviderError) as caught:
        provider.pairing_code("85291234567")

    assert "Business accounts refuse pairing codes" in caught.value.message


def test_it_answers_a_pairing_code_request_on_an_open_instance_with_ready(paired, provider):
    assert provider.pairing_code("85291234567").state == "ready"


@pytest.mark.parametrize(
    ("state", "expected", "reason"),
    [
        ("open", "ready", ""),
        ("connecting", "connecting", ""),
        ("close", "disconnected", ""),
        ("refused", "failed", "QR code limit reached"),
    ],
)
def test_it_maps_each_connection_state_of_the_instance(
    evolution, provider, state, expected, reason
):
    evolution.add_instance(INSTANCE, state=state)

    status = provider.status()

    assert (status.state, status.reason) == (expected, reason)
    assert f"GET /instance/connectionState/{INSTANCE}" in paths(evolution)


def test_it_reports_who_an_open_instance_is_paired_as(paired, provider):
    status = provider.status()
    assert (status.state, status.phone_number, status.jid, status.name) == (
        "ready",
        "85291234567",
        "85291234567@s.whatsapp.net",
        "Parley HK",
    )


def test_it_reads_the_openapi_connection_state_answer(evolution, provider):
    evolution.inject(
        "GET",
        r"/instance/connectionState/.*",
        status=200,
        body=fixture("connection_state_response_openapi.json"),
    )
    assert provider.status().state == "ready"


def test_it_says_not_authorized_when_the_instance_is_gone(evolution, provider):
    with pytest.raises(NotAuthorized) as caught:
        provider.status()
    assert "is gone" in caught.value.message


def test_it_logs_out_through_the_gateway_so_the_next_connect_needs_a_qr(paired, provider):
    provider.logout()

    assert paths(paired) == [f"DELETE /instance/logout/{INSTANCE}"]
    assert paired.instances[INSTANCE].state == "close"
    assert provider.connect().state == "qr"


@pytest.mark.parametrize("existing", [True, False])
def test_it_takes_a_logout_of_an_unpaired_or_missing_instance_as_done(
    evolution, provider, existing
):
    if existing:
        evolution.add_instance(INSTANCE, state="close")
    provider.logout()
    assert paths(evolution) == [f"DELETE /instance/logout/{INSTANCE}"]


def test_it_disconnects_without_unpairing_or_calling_the_gateway(paired, provider):
    provider.disconnect()
    assert paired.requests == []
    assert paired.instances[INSTANCE].state == "open"


# --- send ----------------------------------------------------------------------------------------


def test_it_sends_text_with_the_quoted_message_and_keeps_the_key_id(paired, provider):
    sent = provider.send(OutgoingMessage(to="+852 9876 5432", text="Hello 你好", reply_to="3EB0AA"))

    request = paired.requests[-1]
    assert f"{request.method} {request.path}" == f"POST /message/sendText/{INSTANCE}"
    assert request.headers["apikey"] == GLOBAL_KEY
    assert request.json == {
        "number": "85298765432",
        "text": "Hello 你好",
        "quoted": {"key": {"id": "3EB0AA"}},
    }
    answer = paired.sent[-1]["answer"]
    assert sent.provider_message_id == answer["key"]["id"]
    assert sent.recipient_id == "85298765432@s.whatsapp.net"


def test_it_keeps_a_group_jid_as_given(paired, provider):
    provider.send(OutgoingMessage(to="120363025246125888@g.us", text="hi all"))
    assert paired.requests[-1].json == {"number": "120363025246125888@g.us", "text": "hi all"}


def test_it_sends_an_image_by_url_with_its_caption_and_type(paired, provider):
    sent = provider.send(
        OutgoingMessage(
            to="85298765432",
            media_type="image",
            media_url="https://cdn.example/p/menu.png",
            caption="Our menu",
        )
    )

    request = paired.requests[-1]
    assert request.path == f"/message/sendMedia/{INSTANCE}"
    assert request.json == {
        "number": "85298765432",
        "mediatype": "image",
        "mimetype": "image/png",
        "caption": "Our menu",
        "media": "https://cdn.example/p/menu.png",
        "fileName": "menu.png",
    }
    assert sent.provider_message_id == paired.sent[-1]["answer"]["key"]["id"]


def test_it_sends_a_document_with_its_own_file_name_and_mime_type(paired, provider):
    provider.send(
        OutgoingMessage(
            to="85298765432",
            media_type="document",
            media_url="https://cdn.example/f/abc123",
            mime_type="application/pdf",
            filename="invoice.pdf",
        )
    )
    body = paired.requests[-1].json
    assert (body["mediatype"], body["mimetype"], body["fileName"]) == (
        "document",
        "application/pdf",
        "invoice.pdf",
    )


def test_it_sends_a_sticker_to_the_sticker_route(paired, provider):
    provider.send(
        OutgoingMessage(to="85298765432", media_type="sticker", media_url="https://c/s.webp")
    )
    request = paired.requests[-1]
    assert request.path == f"/message/sendSticker/{INSTANCE}"
    assert request.json == {"number": "85298765432", "sticker": "https://c/s.webp"}


def test_it_sends_a_reaction_keyed_by_the_reacted_message(paired, provider):
    sent = provider.send(OutgoingMessage(to="85298765432", reaction_to="3EB0AA", emoji="👍"))

    request = paired.requests[-1]
    assert request.path == f"/message/sendReaction/{INSTANCE}"
    assert request.json == {
        "key": {"remoteJid": "85298765432@s.whatsapp.net", "fromMe": False, "id": "3EB0AA"},
        "reaction": "👍",
    }
    assert sent.provider_message_id == paired.sent[-1]["answer"]["key"]["id"]


@pytest.mark.parametrize(
    ("name", "message_id", "recipient"),
    [
        ("sendText_response_openapi.json", "BAE594145F4C59B4", "553198296801@s.whatsapp.net"),
        ("sendMedia_response_openapi.json", "BAE5F5A632EAE722", "553198296801@s.whatsapp.net"),
    ],
)
def test_it_reads_the_message_id_of_the_documented_send_answers(
    paired, provider, name, message_id, recipient
):
    paired.inject("POST", r"/message/send.*", status=201, body=fixture(name))
    sent = provider.send(OutgoingMessage(to="553198296801", text="Olá!"))
    assert (sent.provider_message_id, sent.recipient_id) == (message_id, recipient)


@pytest.mark.parametrize(
    "message",
    [
        OutgoingMessage(to="85298765432", text="x" * (MAX_TEXT_LENGTH + 1)),
        OutgoingMessage(
            to="85298765432",
            media_type="image",
            media_url="https://c/i.png",
            caption="x" * (MAX_TEXT_LENGTH + 1),
        ),
    ],
)
def test_it_refuses_text_longer_than_the_limit_before_any_request(paired, provider, message):
    with pytest.raises(MessageTooLong):
        provider.send(message)
    assert paired.requests == []


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (OutgoingMessage(to="85298765432", template={"name": "hello"}), Unsupported),
        (OutgoingMessage(to="85298765432", media_type="image", media_id="123"), Unsupported),
        (
            OutgoingMessage(to="85298765432", media_type="gif", media_url="https://c/a"),
            MediaRejected,
        ),
    ],
)
def test_it_refuses_what_evolution_cannot_send_without_a_request(paired, provider, message, error):
    with pytest.raises(error):
        provider.send(message)
    assert paired.requests == []


def test_it_marks_messages_read_in_their_chat(paired, provider):
    provider.mark_read("85298765432@s.whatsapp.net", ["3EB0AA", "3EB0BB"])

    assert paths(paired) == [f"POST /chat/markMessageAsRead/{INSTANCE}"]
    assert paired.reads == [
        {"remoteJid": "85298765432@s.whatsapp.net", "fromMe": False, "id": "3EB0AA"},
        {"remoteJid": "85298765432@s.whatsapp.net", "fromMe": False, "id": "3EB0BB"},
    ]


def test_it_downloads_a_received_messages_media_by_its_message_id(paired, provider):
    paired.media["3EB0IMG"] = (b"\x89PNG\r\n\x1a\nfake", "image/png")

    content, mime = provider.download_media(ev.Media(id="3EB0IMG", mime_type="image/jpeg"))

    assert (content, mime) == (b"\x89PNG\r\n\x1a\nfake", "image/png")
    assert paired.requests[-1].json == {
        "message": {"key": {"id": "3EB0IMG"}},
        "convertToMp4": False,
    }


def test_it_cannot_download_media_without_a_message_id(paired, provider):
    with pytest.raises(Unsupported):
        provider.download_media(ev.Media(url="https://mmg.whatsapp.net/enc"))
    assert paired.requests == []


# --- errors --------------------------------------------------------------------------------------

NOT_ON_WHATSAPP = {
    "status": 400,
    "error": "Bad Request",
    "response": {
        "message": [{"jid": "85200000000@s.whatsapp.net", "exists": False, "number": "85200000000"}]
    },
}


@pytest.mark.parametrize(
    ("status", "body", "error", "words"),
    [
        (
            401,
            {"status": 401, "error": "Unauthorized", "response": {"message": "Unauthorized"}},
            NotAuthorized,
            "API key",
        ),
        (
            403,
            {"status": 403, "error": "Forbidden", "response": {"message": ["Forbidden"]}},
            NotAuthorized,
            "403",
        ),
        (404, "error_404_instance_not_found_openapi.json", NotAuthorized, "is gone"),
        (400, NOT_ON_WHATSAPP, RecipientNotFound, "not on WhatsApp"),
        (
            404,
            {"status": 404, "error": "Not Found", "response": {"message": ["Group not found"]}},
            RecipientNotFound,
            "recipient",
        ),
        (
            429,
            {"status": 429, "error": "Too Many Requests", "response": {"message": ["slow"]}},
            RateLimited,
            "rate limiting",
        ),
        (
            400,
            {"status": 400, "error": "Bad Request", "response": {"message": ["Text is bad"]}},
            ProviderError,
            "HTTP 400",
        ),
    ],
)
def test_it_maps_each_gateway_refusal_of_a_send_to_the_error_taxonomy(
    paired, provider, status, body, error, words
):
    if isinstance(body, str):
        body = fixture(body)
    paired.fail("POST", SEND_TEXT, status=status, body=body)

    with pytest.raises(ProviderError) as caught:
        provider.send(OutgoingMessage(to="85298765432", text="hi"))

    assert type(caught.value) is error
    assert words in caught.value.message


def test_it_maps_a_media_validation_error_on_a_media_send_to_media_rejected(paired, provider):
    paired.fail("POST", r"/message/sendMedia/.*", status=400, body={"status": 400})
    with pytest.raises(MediaRejected):
        provider.send(OutgoingMessage(to="85298765432", media_type="video", media_url="https://v"))


def test_it_says_recipient_not_found_for_a_number_not_on_whatsapp(paired, provider):
    paired.unregistered.add("85200000000")
    with pytest.raises(RecipientNotFound):
        provider.send(OutgoingMessage(to="85200000000", text="hi"))


def test_it_says_not_authorized_when_the_gateway_refuses_the_key(paired):
    provider = make_provider(paired.url, api_key="wrong")
    with pytest.raises(NotAuthorized):
        provider.send(OutgoingMessage(to="85298765432", text="hi"))
    with pytest.raises(NotAuthorized):
        provider.connect()


def test_it_says_not_authorized_when_the_instance_was_deleted_on_the_gateway(evolution, provider):
    with pytest.raises(NotAuthorized) as caught:
        provider.send(OutgoingMessage(to="85298765432", text="hi"))
    assert INSTANCE in caught.value.message and "is gone" in caught.value.message


def test_it_carries_the_retry_after_evolution_gives_with_a_rate_limit(paired, provider):
    paired.fail("POST", SEND_TEXT, status=429, body={"status": 429, "retryAfter": 30})
    with pytest.raises(RateLimited) as caught:
        provider.send(OutgoingMessage(to="85298765432", text="hi"))
    assert caught.value.retry_after == 30
    assert not caught.value.permanent


def test_it_turns_a_slow_gateway_into_a_transient_network_error(paired):
    provider = make_provider(paired.url, timeout=0.2)
    paired.delay("POST", SEND_TEXT, 1.0)

    with pytest.raises(NetworkError) as caught:
        provider.send(OutgoingMessage(to="85298765432", text="hi"))

    assert "in time" in caught.value.message
    assert not caught.value.permanent


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ({"status": 500}, "HTTP 500"),
        ({"status": 502}, "HTTP 502"),
        ({"malformed": True}, "not JSON"),
        ({"oversized": 6 * 1024 * 1024}, "too large"),
        ({"close": True}, "reach"),
    ],
)
def test_it_turns_a_broken_answer_into_a_network_error(paired, provider, fault, words):
    paired.inject("POST", SEND_TEXT, **fault)
    with pytest.raises(NetworkError) as caught:
        provider.send(OutgoingMessage(to="85298765432", text="hi"))
    assert words in caught.value.message


def test_it_turns_a_gateway_failing_during_connect_into_a_network_error(evolution, provider):
    evolution.fail("GET", r"/instance/connect/.*", status=503)
    with pytest.raises(NetworkError):
        provider.connect()


# --- verify and scrub ----------------------------------------------------------------------------


def inbound(headers: dict[str, str], suffix: str = "") -> InboundRequest:
    return InboundRequest(method="POST", headers=headers, body=b"{}", suffix=suffix)


def test_it_accepts_a_webhook_with_our_secret_header():
    make_provider().verify(inbound({"x-parley-secret": SECRET}))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-parley-secret": ""},
        {"x-parley-secret": SECRET + "x"},
        {"x-parley-secret": SECRET.upper()},
        {"apikey": SECRET},
    ],
)
def test_it_refuses_a_webhook_without_our_secret_header(headers):
    with pytest.raises(Forged):
        make_provider().verify(inbound(headers))


def test_it_scrubs_the_instance_token_from_a_stored_body_without_touching_the_original():
    payload = fixture("webhook_messages_upsert_text_v1.8.0_issue631.json")

    stored = make_provider().scrub(payload)

    assert "apikey" not in stored
    assert "izkp56kz4qs0or1m3m1c" not in json.dumps(stored)
    assert stored["data"] == payload["data"]
    assert payload["apikey"] == "izkp56kz4qs0or1m3m1c"


# --- translate -----------------------------------------------------------------------------------

FIXTURE_EVENTS: dict[str, list[dict[str, Any]]] = {
    "webhook_messages_upsert_text_v1.8.0_issue631.json": [
        {
            "kind": "message_upserted",
            "provider_message_id": "3A554E20ECABF3D45BB2",
            "chat_jid": "55119********@s.whatsapp.net",
            "from_me": False,
            "timestamp": "2024-06-05T17:10:20+00:00",
            # the number is masked in the fixture, so no phone can be read from it
            "sender": {"jid": "55119********@s.whatsapp.net", "name": "Giovanna Darcanovas"},
            "body": "Olá! Vim do Instagram da **** e gostaria de agendar uma Consulta Online.",
        }
    ],
    # a webhook *configuration* (not a delivery): nothing to translate
    "webhook_config_in_instance_create_issue1340.json": [],
}


@pytest.mark.parametrize(
    "name", sorted(p.name for p in FIXTURES.glob("webhook_*")) or ["(no fixtures found)"]
)
def test_it_translates_every_evolution_webhook_fixture_to_its_events(name):
    assert FIXTURES.is_dir(), f"{FIXTURES} is missing"
    events = make_provider().translate(fixture(name))
    assert [summary(e) for e in events] == FIXTURE_EVENTS[name]


def test_it_keeps_the_whole_message_as_raw():
    payload = fixture("webhook_messages_upsert_text_v1.8.0_issue631.json")
    (event,) = make_provider().translate(payload)
    assert event.raw == payload["data"]


T0 = "2025-10-21T10:00:00+00:00"  # the envelopes' date_time
T5 = "2025-10-21T10:00:05+00:00"  # the messages' own timestamp (1761040805)
QR_EXPIRES = "2025-10-21T10:00:40+00:00"
HK = "85291234567@s.whatsapp.net"
ALICE = "85298765432@s.whatsapp.net"
GROUP = "120363025246125888@g.us"
LID = "146032938057897@lid"


def message(key: dict, body: dict, **extra: Any) -> dict[str, Any]:
    return {
        "key": key,
        "pushName": "Alice Chan",
        "status": "DELIVERY_ACK",
        "message": body,
        "messageType": next(iter(body)),
        "messageTimestamp": 1761040805,
        "instanceId": "aa5485dc-28fc-4c36-b1fd-13fc58e276a0",
        "source": "android",
        **extra,
    }


def inbound_key(mid: str = "3EB0A1", chat: str = ALICE, **extra: Any) -> dict[str, Any]:
    return {"remoteJid": chat, "fromMe": False, "id": mid, **extra}


ALICE_PARTY = {"phone": "85298765432", "jid": ALICE, "name": "Alice Chan"}


def upserted(mid: str = "3EB0A1", **fields: Any) -> dict[str, Any]:
    return {
        "kind": "message_upserted",
        "provider_message_id": mid,
        "chat_jid": ALICE,
        "from_me": False,
        "timestamp": T5,
        "sender": ALICE_PARTY,
        **fields,
    }


def status_update(status: str) -> dict[str, Any]:
    return {
        "keyId": "BAE594145F4C59B4",
        "remoteJid": ALICE,
        "fromMe": True,
        "participant": None,
        "status": status,
        "instanceId": "aa5485dc-28fc-4c36-b1fd-13fc58e276a0",
        "messageId": "cm2a1b2c3d4e5f6",
    }


def status_event(status: str) -> list[dict[str, Any]]:
    return [
        {
            "kind": "message_status",
            "provider_message_id": "BAE594145F4C59B4",
            "status": status,
            "timestamp": T0,
            "chat_jid": ALICE,
            "recipient": {"phone": "85298765432", "jid": ALICE},
            **({"error_code": "ERROR"} if status == "failed" else {}),
        }
    ]


def test_a_receipt_from_an_lid_chat_names_the_recipient_by_lid_and_phone():
    update = {
        **status_update("READ"),
        "remoteJid": "207966123456789@lid",
        "remoteJidAlt": "85298765432@s.whatsapp.net",
    }
    (event,) = make_provider().translate(envelope("messages.update", update))
    assert (event.recipient.lid, event.recipient.phone) == ("207966123456789@lid", "85298765432")


CLOSE_REASONS = {
    401: ("logged_out", "Logged out from the phone (401 loggedOut): pair again."),
    403: ("logged_out", "WhatsApp refused the session (403 forbidden), typically a ban."),
    428: ("disconnected", "Connection closed (428)."),
    440: ("disconnected", "Connection replaced by another session (440)."),
    515: ("disconnected", "Restart required (515), normal right after pairing."),
}

PAYLOADS: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {
    "qrcode.updated": (
        envelope(
            "qrcode.updated",
            {
                "qrcode": {
                    "instance": INSTANCE,
                    "pairingCode": None,
                    "code": "2@abc,def,ghi",
                    "base64": "data:image/png;base64,iVBOR",
                }
            },
        ),
        [
            {
                "kind": "qr_updated",
                "qr": "2@abc,def,ghi",
                "expires_at": QR_EXPIRES,
                "image": "data:image/png;base64,iVBOR",
            }
        ],
    ),
    "qrcode.updated with a pairing code": (
        envelope(
            "QRCODE_UPDATED",
            {"qrcode": {"instance": INSTANCE, "pairingCode": "WZYEH1YY", "code": "2@x"}},
        ),
        [
            {"kind": "qr_updated", "qr": "2@x", "expires_at": QR_EXPIRES},
            {"kind": "pairing_code", "code": "WZYE-H1YY", "expires_at": QR_EXPIRES},
        ],
    ),
    "qrcode.updated: QR code limit reached": (
        envelope(
            "qrcode.updated",
            {"message": "QR code limit reached, please login again", "statusCode": 500},
        ),
        [{"kind": "connection_changed", "state": "failed", "reason": "QR code limit reached"}],
    ),
    "connection.update open": (
        envelope(
            "connection.update",
            {
                "instance": INSTANCE,
                "wuid": HK,
                "profileName": "Parley HK",
                "profilePictureUrl": None,
                "state": "open",
                "statusReason": 200,
            },
        ),
        [
            {
                "kind": "connection_changed",
                "state": "ready",
                "phone_number": "85291234567",
                "jid": HK,
                "name": "Parley HK",
            }
        ],
    ),
    "connection.update connecting": (
        envelope(
            "connection.update", {"instance": INSTANCE, "state": "connecting", "statusReason": 200}
        ),
        [{"kind": "connection_changed", "state": "connecting"}],
    ),
    "connection.update refused": (
        envelope(
            "CONNECTION_UPDATE", {"instance": INSTANCE, "state": "refused", "statusReason": 428}
        ),
        [{"kind": "connection_changed", "state": "failed", "reason": "QR code limit reached"}],
    ),
    **{
        f"connection.update close {code}": (
            envelope(
                "connection.update", {"instance": INSTANCE, "state": "close", "statusReason": code}
            ),
            [{"kind": "connection_changed", "state": state, "reason": reason}],
        )
        for code, (state, reason) in CLOSE_REASONS.items()
    },
    "messages.upsert notify: a text quoting another message": (
        envelope(
            "messages.upsert",
            message(
                inbound_key(),
                {
                    "extendedTextMessage": {
                        "text": "Yes please",
                        "contextInfo": {"stanzaId": "BAE5Q"},
                    }
                },
            ),
        ),
        [upserted(body="Yes please", quoted_id="BAE5Q")],
    ),
    "messages.upsert with a string timestamp": (
        envelope(
            "messages.upsert",
            message(inbound_key(), {"conversation": "hi"}, messageTimestamp="1761040805"),
        ),
        [upserted(body="hi")],
    ),
    "messages.upsert append (one message)": (
        envelope(
            "messages.upsert", {**message(inbound_key(), {"conversation": "old"}), "type": "append"}
        ),
        [upserted(body="old", history=True)],
    ),
    "messages.upsert append (Baileys' array)": (
        envelope(
            "messages.upsert",
            {
                "messages": [
                    message(inbound_key("3EB0A1"), {"conversation": "one"}),
                    message(inbound_key("3EB0A2"), {"conversation": "two"}),
                ],
                "type": "append",
            },
        ),
        [
            upserted("3EB0A1", body="one", history=True),
            upserted("3EB0A2", body="two", history=True),
        ],
    ),
    "messages.upsert notify (Baileys' array)": (
        envelope(
            "messages.upsert",
            {"messages": [message(inbound_key(), {"conversation": "live"})], "type": "notify"},
        ),
        [upserted(body="live")],
    ),
    "messages.upsert from a @lid chat with senderPn": (
        envelope(
            "messages.upsert",
            message(inbound_key(chat=LID, senderPn=ALICE), {"conversation": "via lid"}),
        ),
        [upserted(chat_jid=LID, body="via lid", sender={**ALICE_PARTY, "lid": LID})],
    ),
    "messages.upsert with the phone JID first and the @lid in remoteJidAlt": (
        envelope(
            "messages.upsert",
            message(
                inbound_key(remoteJidAlt=LID, addressingMode="pn"), {"conversation": "swapped"}
            ),
        ),
        [upserted(body="swapped", sender={**ALICE_PARTY, "lid": LID})],
    ),
    "messages.upsert in a group, from a participant": (
        envelope(
            "messages.upsert",
            message(inbound_key(chat=GROUP, participant=ALICE), {"conversation": "hello group"}),
        ),
        [upserted(chat_jid=GROUP, chat_is_group=True, body="hello group")],
    ),
    "messages.upsert in a group, from a @lid participant with its phone": (
        envelope(
            "messages.upsert",
            message(
                inbound_key(chat=GROUP, participant=LID, participantAlt=ALICE),
                {"conversation": "lid member"},
            ),
        ),
        [
            upserted(
                chat_jid=GROUP,
                chat_is_group=True,
                body="lid member",
                sender={**ALICE_PARTY, "lid": LID},
            )
        ],
    ),
    "messages.upsert sent from the phone (fromMe: no sender, no pushName)": (
        envelope(
            "messages.upsert",
            message(
                {"remoteJid": ALICE, "fromMe": True, "id": "3EB0ME"},
                {"conversation": "typed on the phone"},
                pushName=INSTANCE,
            ),
        ),
        [
            {
                "kind": "message_upserted",
                "provider_message_id": "3EB0ME",
                "chat_jid": ALICE,
                "from_me": True,
                "timestamp": T5,
                "body": "typed on the phone",
            }
        ],
    ),
    "messages.upsert image": (
        envelope(
            "messages.upsert",
            message(
                inbound_key(),
                {
                    "imageMessage": {
                        "url": "https://mmg.whatsapp.net/o1/v/t62.7118-24/f1/img",
                        "mimetype": "image/jpeg",
                        "caption": "our receipt",
                        "fileSha256": "VbCGkGBv5SZStLD5PHdkBWpQav",
                        "fileLength": "1305757",
                        "contextInfo": {"isForwarded": True},
                    }
                },
            ),
        ),
        [
            upserted(
                type="image",
                caption="our receipt",
                forwarded=True,
                media={
                    "url": "https://mmg.whatsapp.net/o1/v/t62.7118-24/f1/img",
                    "mime_type": "image/jpeg",
                    "sha256": "VbCGkGBv5SZStLD5PHdkBWpQav",
                    "size": 1305757,
                },
            )
        ],
    ),
    "messages.upsert voice note": (
        envelope(
            "messages.upsert",
            message(
                inbound_key(),
                {
                    "audioMessage": {
                        "url": "https://m/a",
                        "mimetype": "audio/ogg; codecs=opus",
                        "ptt": True,
                    }
                },
            ),
        ),
        [
            upserted(
                type="voice", media={"url": "https://m/a", "mime_type": "audio/ogg; codecs=opus"}
            )
        ],
    ),
    "messages.upsert audio file": (
        envelope(
            "messages.upsert",
            message(
                inbound_key(),
                {"audioMessage": {"url": "https://m/a", "mimetype": "audio/mpeg", "ptt": False}},
            ),
        ),
        [upserted(type="audio", media={"url": "https://m/a", "mime_type": "audio/mpeg"})],
    ),
    "messages.upsert video": (
        envelope(
            "messages.upsert",
            message(
                inbound_key(),
                {
                    "videoMessage": {
                        "url": "https://m/v",
                        "mimetype": "video/mp4",
                        "caption": "look",
                    }
                },
            ),
        ),
        [
            upserted(
                type="video", caption="look", media={"url": "https://m/v", "mime_type": "video/mp4"}
            )
        ],
    ),
    "messages.upsert document with caption (wrapped)": (
        envelope(
            "messages.upsert",
            message(
                inbound_key(),
                {
                    "documentWithCaptionMessage": {
                        "message": {
                            "documentMessage": {
                                "url": "https://m/d",
                                "mimetype": "application/pdf",
                                "fileName": "invoice.pdf",
                                "caption": "the invoice",
                            }
                        }
                    }
                },
            ),
        ),
        [
            upserted(
                type="document",
                caption="the invoice",
                media={
                    "url": "https://m/d",
                    "mime_type": "application/pdf",
                    "filename": "invoice.pdf",
                },
            )
        ],
    ),
    "messages.upsert sticker": (
        envelope(
            "messages.upsert",
            message(
                inbound_key(), {"stickerMessage": {"url": "https://m/s", "mimetype": "image/webp"}}
            ),
        ),
        [upserted(type="sticker", media={"url": "https://m/s", "mime_type": "image/webp"})],
    ),
    "messages.upsert location": (
        envelope(
            "messages.upsert",
            message(
                inbound_key(),
                {
                    "locationMessage": {
                        "degreesLatitude": 22.2819,
                        "degreesLongitude": 114.1582,
                        "name": "IFC",
                        "address": "8 Finance St",
                    }
                },
            ),
        ),
        [
            upserted(
                type="location",
                location={
                    "latitude": 22.2819,
                    "longitude": 114.1582,
                    "name": "IFC",
                    "address": "8 Finance St",
                },
            )
        ],
    ),
    "messages.upsert contact card": (
        envelope(
            "messages.upsert",
            message(
                inbound_key(),
                {"contactMessage": {"displayName": "Bob Lee", "vcard": "BEGIN:VCARD\nEND:VCARD"}},
            ),
        ),
        [
            upserted(
                type="contact", contacts=[{"name": "Bob Lee", "vcard": "BEGIN:VCARD\nEND:VCARD"}]
            )
        ],
    ),
    "messages.upsert reaction": (
        envelope(
            "messages.upsert",
            message(
                inbound_key("3EB0R1"),
                {
                    "reactionMessage": {
                        "key": {"remoteJid": ALICE, "fromMe": True, "id": "BAE5MINE"},
                        "text": "❤️",
                        "senderTimestampMs": "1761040806000",
                    }
                },
            ),
        ),
        [
            {
                "kind": "reaction",
                "provider_message_id": "BAE5MINE",
                "chat_jid": ALICE,
                "emoji": "❤️",
                "timestamp": "2025-10-21T10:00:06+00:00",
                "sender": ALICE_PARTY,
            }
        ],
    ),
    "messages.upsert reaction removed": (
        envelope(
            "messages.upsert",
            message(
                inbound_key("3EB0R2"),
                {
                    "reactionMessage": {
                        "key": {"remoteJid": ALICE, "fromMe": True, "id": "BAE5MINE"},
                        "text": "",
                    }
                },
            ),
        ),
        [
            {
                "kind": "reaction",
                "provider_message_id": "BAE5MINE",
                "chat_jid": ALICE,
                "emoji": "",
                "timestamp": T5,
                "sender": ALICE_PARTY,
            }
        ],
    ),
    "messages.upsert protocolMessage REVOKE": (
        envelope(
            "messages.upsert",
            message(
                inbound_key("3EB0P1"),
                {
                    "protocolMessage": {
                        "key": {"remoteJid": ALICE, "fromMe": False, "id": "3EB0A1"},
                        "type": "REVOKE",
                    }
                },
            ),
        ),
        [
            {
                "kind": "message_revoked",
                "provider_message_id": "3EB0A1",
                "chat_jid": ALICE,
                "timestamp": T5,
            }
        ],
    ),
    "messages.upsert editedMessage": (
        envelope(
            "messages.upsert",
            message(
                inbound_key("3EB0E1"),
                {
                    "editedMessage": {
                        "message": {
                            "protocolMessage": {
                                "key": {"remoteJid": ALICE, "fromMe": False, "id": "3EB0A1"},
                                "type": 14,
                                "editedMessage": {"conversation": "Yes please, two"},
                                "timestampMs": "1761040860000",
                            }
                        }
                    }
                },
            ),
        ),
        [
            {
                "kind": "message_edited",
                "provider_message_id": "3EB0A1",
                "chat_jid": ALICE,
                "body": "Yes please, two",
                "timestamp": "2025-10-21T10:01:00+00:00",
            }
        ],
    ),
    "messages.upsert status broadcast (a story): nothing": (
        envelope(
            "messages.upsert",
            message(inbound_key(chat="status@broadcast"), {"conversation": "story"}),
        ),
        [],
    ),
    "send.message (the documented sendText answer)": (
        envelope(
            "send.message",
            {
                "key": {
                    "remoteJid": "553198296801@s.whatsapp.net",
                    "fromMe": True,
                    "id": "BAE594145F4C59B4",
                },
                "message": {"extendedTextMessage": {"text": "Olá!"}},
                "messageTimestamp": "1717689097",
                "status": "PENDING",
            },
        ),
        [
            {
                "kind": "message_upserted",
                "provider_message_id": "BAE594145F4C59B4",
                "chat_jid": "553198296801@s.whatsapp.net",
                "from_me": True,
                "timestamp": "2024-06-06T15:51:37+00:00",
                "body": "Olá!",
            }
        ],
    ),
    **{
        f"messages.update {raw}": (
            envelope("messages.update", status_update(raw)),
            status_event(ours),
        )
        for raw, ours in [
            ("ERROR", "failed"),
            ("PENDING", "pending"),
            ("SERVER_ACK", "sent"),
            ("DELIVERY_ACK", "delivered"),
            ("READ", "read"),
            ("PLAYED", "played"),
        ]
    },
    "messages.update DELETED": (
        envelope("MESSAGES_UPDATE", status_update("DELETED")),
        [
            {
                "kind": "message_revoked",
                "provider_message_id": "BAE594145F4C59B4",
                "chat_jid": ALICE,
                "timestamp": T0,
            }
        ],
    ),
    "messages.update with an unknown status: nothing": (
        envelope("messages.update", status_update("EDITED")),
        [],
    ),
    "messages.edited": (
        envelope(
            "messages.edited",
            {
                "key": {"remoteJid": ALICE, "fromMe": False, "id": "3EB0A1"},
                "type": "MESSAGE_EDIT",
                "editedMessage": {"extendedTextMessage": {"text": "edited text"}},
                "timestampMs": "1761040860000",
            },
        ),
        [
            {
                "kind": "message_edited",
                "provider_message_id": "3EB0A1",
                "chat_jid": ALICE,
                "body": "edited text",
                "timestamp": "2025-10-21T10:01:00+00:00",
            }
        ],
    ),
    "messages.edited carrying a revoke": (
        envelope(
            "messages.edited",
            {"key": {"remoteJid": ALICE, "fromMe": False, "id": "3EB0A1"}, "type": 0},
        ),
        [
            {
                "kind": "message_revoked",
                "provider_message_id": "3EB0A1",
                "chat_jid": ALICE,
                "timestamp": T0,
            }
        ],
    ),
    "messages.delete": (
        envelope(
            "messages.delete",
            {"remoteJid": ALICE, "fromMe": False, "id": "3EB0A1", "status": "DELETED"},
        ),
        [
            {
                "kind": "message_revoked",
                "provider_message_id": "3EB0A1",
                "chat_jid": ALICE,
                "timestamp": T0,
            }
        ],
    ),
    "contacts.upsert": (
        envelope(
            "contacts.upsert",
            [
                {
                    "remoteJid": ALICE,
                    "pushName": "Alice Chan",
                    "profilePicUrl": None,
                    "instanceId": "i",
                },
                {
                    "remoteJid": "85261234567@s.whatsapp.net",
                    "pushName": "85261234567",
                    "profilePicUrl": None,
                },
                {"remoteJid": LID, "pushName": "Lid Person"},
                {"remoteJid": GROUP, "pushName": "A group"},
            ],
        ),
        [
            {
                "kind": "contacts_upserted",
                "contacts": [
                    ALICE_PARTY,
                    {"phone": "85261234567", "jid": "85261234567@s.whatsapp.net"},
                    {"lid": LID, "name": "Lid Person"},
                ],
            }
        ],
    ),
    "contacts.upsert of a single contact": (
        envelope(
            "CONTACTS_UPSERT", {"remoteJid": ALICE, "pushName": "Alice Chan", "profilePicUrl": None}
        ),
        [{"kind": "contacts_upserted", "contacts": [ALICE_PARTY]}],
    ),
    "groups.upsert": (
        envelope(
            "groups.upsert",
            [
                {
                    "id": GROUP,
                    "subject": "HK Team",
                    "owner": HK,
                    "creation": 1761040000,
                    "participants": [
                        {"id": HK, "admin": "superadmin"},
                        {"id": LID, "phoneNumber": ALICE, "admin": None},
                    ],
                }
            ],
        ),
        [
            {
                "kind": "groups_updated",
                "groups": [
                    {
                        "jid": GROUP,
                        "name": "HK Team",
                        "participants": [
                            {"phone": "85291234567", "jid": HK},
                            {"phone": "85298765432", "jid": ALICE, "lid": LID},
                        ],
                    }
                ],
            }
        ],
    ),
    "messaging-history.set with messages": (
        envelope(
            "messaging-history.set",
            {
                "messages": [
                    message(inbound_key("3EB0H1"), {"conversation": "last year"}),
                    message(
                        {"remoteJid": ALICE, "fromMe": True, "id": "3EB0H2"},
                        {"conversation": "reply"},
                    ),
                    message(
                        inbound_key("3EB0H3"),
                        {"reactionMessage": {"key": {"id": "3EB0H2"}, "text": "👍"}},
                    ),
                ],
                "progress": 42,
                "isLatest": False,
            },
        ),
        [
            {
                "kind": "history_batch",
                "messages": [
                    upserted("3EB0H1", body="last year", history=True),
                    {
                        "kind": "message_upserted",
                        "provider_message_id": "3EB0H2",
                        "chat_jid": ALICE,
                        "from_me": True,
                        "timestamp": T5,
                        "body": "reply",
                        "history": True,
                    },
                ],
                "progress": 42,
            }
        ],
    ),
    "messaging-history.set as Evolution's end-of-sync counts": (
        envelope(
            "MESSAGING_HISTORY_SET",
            {"messageCount": 1200, "chatCount": 40, "contactCount": 35, "progress": 100},
        ),
        [{"kind": "history_batch", "progress": 100}],
    ),
    "an event we do not use: nothing": (
        envelope(
            "presence.update",
            {"id": ALICE, "presences": {ALICE: {"lastKnownPresence": "composing"}}},
        ),
        [],
    ),
}


@pytest.mark.parametrize("case", list(PAYLOADS))
def test_it_translates_each_kind_of_evolution_payload_to_its_events(case):
    payload, expected = PAYLOADS[case]
    assert [summary(e) for e in make_provider().translate(payload)] == expected


@pytest.mark.parametrize(
    ("suffix", "data", "kind"),
    [
        (
            "/messages-upsert",
            message(inbound_key(), {"conversation": "by event"}),
            "message_upserted",
        ),
        ("/connection-update", {"instance": INSTANCE, "state": "connecting"}, "connection_changed"),
        ("/qrcode-updated", {"qrcode": {"code": "2@q"}}, "qr_updated"),
        ("messages-update", status_update("READ"), "message_status"),
    ],
)
def test_it_takes_the_event_from_the_by_events_url_suffix_when_the_body_has_none(
    suffix, data, kind
):
    events = make_provider().translate(envelope(None, data), suffix=suffix)
    assert [e.kind for e in events] == [kind]


def test_it_prefers_the_bodys_event_name_to_the_url_suffix():
    payload = envelope("connection.update", {"instance": INSTANCE, "state": "connecting"})
    events = make_provider().translate(payload, suffix="/messages-upsert")
    assert [e.kind for e in events] == ["connection_changed"]


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        "text",
        {},
        envelope("messages.upsert", None),
        envelope("messages.upsert", "x"),
        envelope("messages.upsert", {"key": "not a key"}),
        envelope("connection.update", []),
    ],
)
def test_it_translates_a_payload_it_cannot_read_to_nothing(payload):
    assert make_provider().translate(payload) == []


def test_its_events_survive_the_queues_json_round_trip():
    for payload, _ in PAYLOADS.values():
        for event in make_provider().translate(payload):
            assert ev.Event.from_dict(json.loads(json.dumps(event.to_dict()))) == event
