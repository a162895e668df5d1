"""The Cloud API adapter over real HTTP against a loopback Graph API, and its webhook side
(signature, handshake, per-number split, translation of every pywa fixture). No database."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from pathlib import Path

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
    OutsideWindow,
    ProviderError,
    RateLimited,
    RecipientNotFound,
    SessionConfig,
    Unsupported,
)
from sessions_app.providers.cloud_api import PROVIDER, CloudApiProvider, Refused
from tests.support.cloud_api_server import CloudApiServer, error_body

FIXTURES = Path("/work/shared/fixtures/meta_cloud")
TOKEN = "EAAG-test-token-do-not-leak"
APP_SECRET = "app-secret-123"
VERIFY_TOKEN = "verify-me-please"
PHONE_NUMBER_ID = "106540352242922"
FIXTURE_NUMBER_ID = "1122334455667"  # the phone_number_id in every pywa fixture
MESSAGES = r"/v21\.0/\d+/messages"


def make_provider(
    base_url: str = "http://127.0.0.1:9", *, timeout: float = 5.0, **credentials: str
) -> CloudApiProvider:
    creds = {
        "phone_number_id": PHONE_NUMBER_ID,
        "waba_id": "102290129340398",
        "access_token": TOKEN,
        "app_secret": APP_SECRET,
        "verify_token": VERIFY_TOKEN,
        **credentials,
    }
    config = SessionConfig(session_id="5f0c9a52-8a4b-4c43-9b1e-0e4f2f9d1c11", credentials=creds)
    return CloudApiProvider(config, base_url=base_url, timeout=timeout)


@pytest.fixture
def server():
    with CloudApiServer(access_token=TOKEN, phone_number_id=PHONE_NUMBER_ID) as running:
        yield running


@pytest.fixture
def provider(server) -> CloudApiProvider:
    return make_provider(server.base_url)


def signed(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


# --- what it is ----------------------------------------------------------------------------------


def test_it_is_registered_as_cloud_api_with_official_capabilities_only():
    assert get_provider("cloud_api") is CloudApiProvider is PROVIDER
    assert CloudApiProvider.label == "WhatsApp Cloud API (Meta)"
    assert CloudApiProvider.capabilities == {
        Capability.MEDIA,
        Capability.TEMPLATES,
        Capability.READ_RECEIPTS,
        Capability.INTERACTIVE,
        Capability.REACTIONS,
    }
    fields = {f.name: f.secret for f in CloudApiProvider.credential_fields}
    assert fields == {
        "phone_number_id": False,
        "waba_id": False,
        "access_token": True,
        "app_secret": True,
        "verify_token": True,
    }


def test_it_asks_for_every_credential_and_digits_for_the_phone_number_id():
    assert set(CloudApiProvider.check_credentials({})) == {
        "phone_number_id",
        "waba_id",
        "access_token",
        "app_secret",
        "verify_token",
    }
    errors = CloudApiProvider.check_credentials(
        {
            "phone_number_id": "+1 555 0100",
            "waba_id": "102290129340398",
            "access_token": "t",
            "app_secret": "s",
            "verify_token": "v",
        }
    )
    assert list(errors) == ["phone_number_id"]
    good = {"phone_number_id": "106540352242922", "waba_id": "1", "access_token": "t"}
    assert (
        CloudApiProvider.check_credentials({**good, "app_secret": "s", "verify_token": "v"}) == {}
    )


def test_it_cannot_pair_by_code_or_log_out():
    with pytest.raises(Unsupported):
        make_provider().pairing_code("85291234567")
    with pytest.raises(Unsupported):
        make_provider().logout()


# --- connect and status --------------------------------------------------------------------------


def test_it_connects_by_checking_the_phone_number_and_is_ready_at_once(server, provider):
    pairing = provider.connect()

    assert pairing.state == ev.SessionState.READY
    assert pairing.phone_number == "15550100199"
    assert pairing.name == "Parley Test Shop"
    assert pairing.qr == "" and pairing.pairing_code == ""
    (request,) = server.requests
    assert request.path == f"/v21.0/{PHONE_NUMBER_ID}"
    assert request.query["fields"] == ["display_phone_number,verified_name"]
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_it_reports_a_ready_status_from_the_same_check(provider):
    status = provider.status()

    assert status.state == ev.SessionState.READY
    assert status.phone_number == "15550100199"
    assert status.name == "Parley Test Shop"


def test_it_calls_a_refused_access_token_not_authorized_without_repeating_it(server):
    provider = make_provider(server.base_url, access_token="EAAG-revoked-token")

    with pytest.raises(NotAuthorized) as caught:
        provider.connect()

    assert "190" in caught.value.detail
    assert "EAAG-revoked-token" not in caught.value.detail + str(caught.value)
    with pytest.raises(NotAuthorized):
        provider.status()


def test_it_calls_an_unknown_phone_number_id_not_authorized(server):
    with pytest.raises(NotAuthorized) as caught:
        make_provider(server.base_url, phone_number_id="999").connect()

    assert "code 100/33" in caught.value.detail


def test_it_refuses_missing_credentials_before_any_http(server):
    with pytest.raises(NotAuthorized):
        make_provider(server.base_url, access_token="").connect()
    with pytest.raises(NotAuthorized):
        make_provider(server.base_url, phone_number_id="").send(OutgoingMessage(to="1", text="x"))
    assert server.requests == []


# --- send ----------------------------------------------------------------------------------------


def test_it_sends_a_text_and_returns_the_message_id_and_the_wa_id_meta_resolved(server, provider):
    sent = provider.send(OutgoingMessage(to="+1 (650) 555-5555", text="Hello there"))

    (request,) = server.requests_to("POST", MESSAGES)
    assert request.json == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "16505555555",
        "type": "text",
        "text": {"body": "Hello there"},
    }
    assert sent.provider_message_id == server.sent[0]["id"]
    assert sent.provider_message_id.startswith("wamid.")
    assert sent.recipient_id == "16505555555"


@pytest.mark.parametrize(
    ("text", "preview"),
    [
        ("Here's the info you requested! https://www.meta.com/quest/quest-3/", True),
        ("see http://example.org", True),
        ("no link, just https or www words", None),
    ],
)
def test_it_asks_for_a_link_preview_only_when_the_text_holds_a_url(server, provider, text, preview):
    provider.send(OutgoingMessage(to="16505555555", text=text))

    assert server.sent[0]["text"].get("preview_url") is preview


def test_it_sends_to_a_phone_jid_as_digits(server, provider):
    provider.send(OutgoingMessage(to="85291234567@s.whatsapp.net", text="hi"))

    assert server.sent[0]["to"] == "85291234567"


def test_it_sends_to_a_business_scoped_user_id_as_meta_recipient(server, provider):
    sent = provider.send(OutgoingMessage(to="US.13491208655302741918", text="hi"))

    assert "to" not in server.sent[0]
    assert server.sent[0]["recipient"] == "US.13491208655302741918"
    assert sent.recipient_id == "US.13491208655302741918"


@pytest.mark.parametrize(
    ("message", "kind", "payload"),
    [
        (
            OutgoingMessage(
                to="1", media_type="image", media_url="https://x.test/a.jpg", caption="Look"
            ),
            "image",
            {"link": "https://x.test/a.jpg", "caption": "Look"},
        ),
        (
            OutgoingMessage(to="1", media_type="video", media_id="1166846181421424", caption="V"),
            "video",
            {"id": "1166846181421424", "caption": "V"},
        ),
        (
            OutgoingMessage(to="1", media_type="audio", media_id="42", caption="dropped"),
            "audio",
            {"id": "42"},
        ),
        (
            OutgoingMessage(
                to="1",
                media_type="document",
                media_url="https://x.test/q.pdf",
                filename="quote.pdf",
                caption="Your quote",
            ),
            "document",
            {"link": "https://x.test/q.pdf", "caption": "Your quote", "filename": "quote.pdf"},
        ),
        (
            OutgoingMessage(to="1", media_type="sticker", media_id="77"),
            "sticker",
            {"id": "77"},
        ),
        (
            OutgoingMessage(to="1", media_url="https://x.test/p.png", mime_type="image/png"),
            "image",
            {"link": "https://x.test/p.png"},
        ),
    ],
)
def test_it_sends_media_by_link_or_id_with_caption_and_filename(
    server, provider, message, kind, payload
):
    sent = provider.send(message)

    body = server.sent[0]
    assert body["type"] == kind
    assert body[kind] == payload
    assert sent.provider_message_id == body["id"]


def test_it_refuses_a_caption_over_metas_limit_before_any_http(server, provider):
    message = OutgoingMessage(to="1", media_type="image", media_id="1", caption="c" * 1025)

    with pytest.raises(MessageTooLong):
        provider.send(message)
    assert server.requests == []


def test_it_sends_a_template_with_its_components(server, provider):
    template = fixture("template_object_partial_whatsapp_nodejs_sdk.json")

    provider.send(OutgoingMessage(to="16505555555", template=template))

    assert server.sent[0]["type"] == "template"
    assert server.sent[0]["template"] == template


def test_it_sends_a_template_named_by_a_plain_language_code(server, provider):
    provider.send(OutgoingMessage(to="1", template={"name": "hello_world", "language": "en_US"}))

    assert server.sent[0]["template"] == {
        "name": "hello_world",
        "language": {"policy": "deterministic", "code": "en_US"},
    }


def test_it_refuses_a_template_without_a_language(server, provider):
    with pytest.raises(Refused) as caught:
        provider.send(OutgoingMessage(to="1", template={"name": "hello_world"}))

    assert caught.value.permanent
    assert server.requests == []


@pytest.mark.parametrize("emoji", ["👍", ""])
def test_it_sends_a_reaction_and_an_empty_emoji_removes_it(server, provider, emoji):
    provider.send(
        OutgoingMessage(to="16505555555", reaction_to="wamid.abc", emoji=emoji, reply_to="x")
    )

    body = server.sent[0]
    assert body["type"] == "reaction"
    assert body["reaction"] == {"message_id": "wamid.abc", "emoji": emoji}
    assert "context" not in body


def test_it_sends_a_reply_with_the_quoted_message_as_context(server, provider):
    provider.send(OutgoingMessage(to="1", text="Yes", reply_to="wamid.HBgLMTY1MDUwNzY1MjA="))

    assert server.sent[0]["context"] == {"message_id": "wamid.HBgLMTY1MDUwNzY1MjA="}


@pytest.mark.parametrize("length", [4097, MAX_TEXT_LENGTH + 1])
def test_it_refuses_a_too_long_text_before_any_http(server, provider, length):
    with pytest.raises(MessageTooLong):
        provider.send(OutgoingMessage(to="1", text="a" * length))

    assert server.requests == []


@pytest.mark.parametrize("to", ["120363025246125486@g.us", "178917298123@lid"])
def test_it_cannot_send_to_a_group_or_a_linked_device_id(server, provider, to):
    with pytest.raises(Unsupported):
        provider.send(OutgoingMessage(to=to, text="hi"))

    assert server.requests == []


def test_it_refuses_an_empty_message_before_any_http(server, provider):
    with pytest.raises(Refused):
        provider.send(OutgoingMessage(to="1"))

    assert server.requests == []


def test_it_calls_a_send_answer_without_a_message_id_a_network_error(server, provider):
    server.fail("POST", MESSAGES, status=200, body={"messaging_product": "whatsapp"}, times=1)

    with pytest.raises(NetworkError):
        provider.send(OutgoingMessage(to="1", text="hi"))


# --- mark read and media -------------------------------------------------------------------------


def test_it_marks_each_message_read_with_one_status_call(server, provider):
    provider.mark_read("16505555555", ["wamid.one", "wamid.two"])

    assert server.read == ["wamid.one", "wamid.two"]
    bodies = [r.json for r in server.requests_to("POST", MESSAGES)]
    assert bodies[0] == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.one",
    }


def test_it_downloads_media_in_two_steps_with_the_bearer_token(server, provider):
    media_id = server.add_media(b"\x89PNG fake bytes", "image/png")

    content, mime = provider.download_media(ev.Media(id=media_id, mime_type="image/jpeg"))

    assert (content, mime) == (b"\x89PNG fake bytes", "image/png")
    lookup, fetch = server.requests
    assert lookup.path == f"/v21.0/{media_id}"
    assert fetch.path == f"/media/{media_id}"
    assert fetch.headers["Authorization"] == f"Bearer {TOKEN}"


def test_it_downloads_media_from_a_dict_as_the_queue_gives_it(server, provider):
    media_id = server.add_media(b"%PDF-1.7", "application/pdf")

    assert provider.download_media({"id": media_id}) == (b"%PDF-1.7", "application/pdf")


def test_it_calls_unknown_media_rejected(server, provider):
    with pytest.raises(MediaRejected):
        provider.download_media(ev.Media(id="123456"))


def test_it_calls_media_whose_url_is_gone_rejected(server, provider):
    media_id = server.add_media(b"x", "image/jpeg")
    server.fail("GET", rf"/media/{media_id}", status=404, body=b"<html>gone</html>", times=1)

    with pytest.raises(MediaRejected):
        provider.download_media(ev.Media(id=media_id))


def test_it_never_sends_the_token_to_a_plain_http_url_elsewhere(server, provider):
    with pytest.raises(Refused):
        provider.download_media(ev.Media(url="http://evil.test/steal"))

    assert server.requests == []


# --- Meta's errors -------------------------------------------------------------------------------

ERROR_TABLE = [
    (400, error_body(130429, "(#130429) Rate limit hit"), RateLimited),
    (
        400,
        error_body(131056, "(#131056) (Business Account, Consumer Account) pair rate limit hit"),
        RateLimited,
    ),
    (400, error_body(80007, "(#80007) Rate limit issues"), RateLimited),
    (400, error_body(131048, "(#131048) Spam rate limit hit"), RateLimited),
    (400, error_body(4, "(#4) Application request limit reached"), RateLimited),
    (400, error_body(80004, "(#80004) There have been too many calls"), RateLimited),
    (429, error_body(613, "Calls to this api have exceeded the rate limit."), RateLimited),
    (400, error_body(131047, "(#131047) Re-engagement message"), OutsideWindow),
    (400, error_body(131026, "(#131026) Message Undeliverable."), RecipientNotFound),
    (
        400,
        error_body(131030, "(#131030) Recipient phone number not in allowed list"),
        RecipientNotFound,
    ),
    (401, error_body(190, "Error validating access token: Session has expired"), NotAuthorized),
    (401, error_body(102, "Session key invalid or no longer valid"), NotAuthorized),
    (
        403,
        error_body(10, "(#10) Application does not have permission for this action"),
        NotAuthorized,
    ),
    (403, error_body(200, "(#200) Requires whatsapp_business_messaging permission"), NotAuthorized),
    (403, error_body(299, "(#299) Permission error"), NotAuthorized),
    (400, error_body(131051, "(#131051) Unsupported message type"), MediaRejected),
    (400, error_body(131052, "(#131052) Media download error"), MediaRejected),
    (400, error_body(131053, "(#131053) Media upload error"), MediaRejected),
    (
        400,
        error_body(
            100,
            "(#100) Invalid parameter",
            details="Param text['body'] must be at most 4096 characters long.",
        ),
        MessageTooLong,
    ),
    (
        400,
        error_body(
            131009, "(#131009) Parameter value is not valid", details="Caption text is too long"
        ),
        MessageTooLong,
    ),
    (400, error_body(100, "(#100) Invalid parameter", details="Param to is not valid"), Refused),
    (400, error_body(131009, "(#131009) Parameter value is not valid"), Refused),
    (400, error_body(132001, "(#132001) Template name does not exist in the translation"), Refused),
    (400, error_body(131000, "(#131000) Something went wrong"), ProviderError),
    (404, b"<html>no such page</html>", Refused),
]


@pytest.mark.parametrize(("status", "body", "expected"), ERROR_TABLE)
def test_it_maps_each_meta_error_code_to_its_kind(server, provider, status, body, expected):
    server.fail("POST", MESSAGES, status=status, body=body, times=1)

    with pytest.raises(ProviderError) as caught:
        provider.send(OutgoingMessage(to="16505555555", text="hello"))

    assert type(caught.value) is expected
    assert caught.value.permanent is (expected.permanent or expected is Refused)
    assert f"HTTP {status}" in caught.value.detail
    if isinstance(body, dict):
        assert f"code {body['error']['code']}" in caught.value.detail
        assert body["error"]["fbtrace_id"] in caught.value.detail
    assert TOKEN not in caught.value.detail


def test_it_keeps_metas_words_but_never_the_token_in_the_detail(server, provider):
    echo = error_body(190, f"Malformed access token {TOKEN}", subcode=463)
    server.fail("POST", MESSAGES, status=401, body=echo, times=1)

    with pytest.raises(NotAuthorized) as caught:
        provider.send(OutgoingMessage(to="1", text="hi"))

    assert "code 190/463" in caught.value.detail
    assert "Malformed access token [redacted]" in caught.value.detail
    assert TOKEN not in caught.value.detail + caught.value.message


# --- transport faults ----------------------------------------------------------------------------

ACTS = {
    "connect": (rf"/v21\.0/{PHONE_NUMBER_ID}", "GET", lambda p: p.connect()),
    "send": (MESSAGES, "POST", lambda p: p.send(OutgoingMessage(to="1", text="hi"))),
}


@pytest.mark.parametrize("act", list(ACTS))
@pytest.mark.parametrize("fault", ["status_503", "malformed", "oversized", "closed"])
def test_it_calls_every_transport_failure_a_network_error(server, provider, act, fault):
    pattern, method, run = ACTS[act]
    if fault == "status_503":
        server.fail(method, pattern, status=503)
    elif fault == "malformed":
        server.malformed(method, pattern)
    elif fault == "oversized":
        server.oversized(method, pattern, size=http.MAX_RESPONSE_BYTES + 1024)
    else:
        server.close_connection(method, pattern)

    with pytest.raises(NetworkError) as caught:
        run(provider)

    assert not caught.value.permanent
    assert server.requests_to(method, pattern)


@pytest.mark.parametrize("act", list(ACTS))
def test_it_gives_up_on_a_slow_provider_as_a_network_error(server, act):
    pattern, method, run = ACTS[act]
    server.delay(method, pattern, 3.0)
    provider = make_provider(server.base_url, timeout=0.3)

    with pytest.raises(NetworkError) as caught:
        run(provider)

    assert "in time" in caught.value.message


def test_it_calls_an_unreachable_provider_a_network_error():
    with pytest.raises(NetworkError):
        make_provider("http://127.0.0.1:9/v21.0", timeout=1).connect()


# --- verify and challenge ------------------------------------------------------------------------

BODY = json.dumps(fixture("pywa_webhook_message_text.json")).encode()


def inbound(body: bytes = BODY, **headers: str) -> InboundRequest:
    return InboundRequest(method="POST", headers=headers, body=body)


def test_it_accepts_a_body_signed_with_the_app_secret():
    make_provider().verify(inbound(**{"x-hub-signature-256": signed(BODY)}))


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"x-hub-signature-256": signed(BODY + b" ")}, id="tampered-body"),
        pytest.param({"x-hub-signature-256": signed(BODY, "other-secret")}, id="wrong-secret"),
        pytest.param({"x-hub-signature-256": signed(BODY)[len("sha256=") :]}, id="no-prefix"),
        pytest.param({"x-hub-signature": signed(BODY)}, id="sha1-header-only"),
        pytest.param({}, id="missing"),
    ],
)
def test_it_rejects_a_body_not_signed_with_the_app_secret_as_forged(headers):
    with pytest.raises(Forged):
        make_provider().verify(inbound(**headers))


def test_it_rejects_every_body_when_no_app_secret_is_set():
    with pytest.raises(Forged):
        make_provider(app_secret="").verify(inbound(**{"x-hub-signature-256": signed(BODY, "")}))


def test_it_checks_an_app_wide_signature_without_a_session():
    request = inbound(**{"x-hub-signature-256": signed(BODY)})

    CloudApiProvider.verify_app_signature(APP_SECRET, request)
    with pytest.raises(Forged):
        CloudApiProvider.verify_app_signature("another-app", request)


def handshake(**query: str) -> InboundRequest:
    return InboundRequest(method="GET", headers={}, body=b"", query=query)


def test_it_answers_metas_handshake_with_the_challenge_when_the_token_matches():
    request = handshake(
        **{"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    )

    assert make_provider().challenge(request) == "1158201444"


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
    ],
)
def test_it_calls_a_handshake_with_a_wrong_token_forged(query):
    with pytest.raises(Forged):
        make_provider().challenge(handshake(**query))


def test_it_sees_no_handshake_in_a_plain_get_or_a_post():
    assert make_provider().challenge(handshake()) is None
    assert make_provider().challenge(inbound()) is None


# --- the app-wide webhook ------------------------------------------------------------------------


def test_it_splits_an_app_wide_post_into_one_envelope_per_phone_number():
    text = fixture("pywa_webhook_message_text.json")
    status = fixture("pywa_webhook_status_read.json")
    other = json.loads(json.dumps(status["entry"][0]["changes"][0]))
    other["value"]["metadata"]["phone_number_id"] = "2233445566778"
    template_update = {"field": "message_template_status_update", "value": {"event": "APPROVED"}}
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            text["entry"][0],
            {"id": "5467539754836534", "changes": [status["entry"][0]["changes"][0], other]},
            {"id": "5467539754836534", "changes": [template_update]},
        ],
    }

    split = CloudApiProvider.split_by_phone_number_id(payload)

    assert set(split) == {FIXTURE_NUMBER_ID, "2233445566778"}
    mine = split[FIXTURE_NUMBER_ID]
    assert mine["object"] == "whatsapp_business_account"
    assert [entry["id"] for entry in mine["entry"]] == ["1234567890987654321", "5467539754836534"]
    assert [len(entry["changes"]) for entry in mine["entry"]] == [1, 1]
    assert split["2233445566778"]["entry"] == [{"id": "5467539754836534", "changes": [other]}]

    first = make_provider(phone_number_id=FIXTURE_NUMBER_ID).translate(mine)
    second = make_provider(phone_number_id="2233445566778").translate(split["2233445566778"])
    assert [(e.kind, e.provider_message_id) for e in first] == [
        ("message_upserted", "wamid.xyzxyz"),
        ("message_status", "wamid.xyzxyz"),
    ]
    assert [(e.kind, getattr(e, "status", "")) for e in second] == [("message_status", "read")]


def test_it_splits_nothing_out_of_something_that_is_not_an_envelope():
    assert CloudApiProvider.split_by_phone_number_id([]) == {}
    assert CloudApiProvider.split_by_phone_number_id({"object": "page", "entry": "x"}) == {}


# --- translate -----------------------------------------------------------------------------------

PERSON = {"wa_id": "972987654321", "bsuid": "US.13491208655302741918", "name": "Test Name"}


def message(id, type, *, body="", caption="", quoted=None, forwarded=False, sender=PERSON, **more):
    return {
        "kind": "message_upserted",
        "provider_message_id": id,
        "chat_jid": "972987654321",
        "type": type,
        "body": body,
        "caption": caption,
        "quoted_id": quoted,
        "forwarded": forwarded,
        "sender": sender,
        "media": more.pop("media", None),
        "interactive": more.pop("interactive", None),
        **more,
    }


def status(state, *, error_code="", error_text=""):
    return {
        "kind": "message_status",
        "provider_message_id": "wamid.xyzxyz",
        "chat_jid": "972987654321",
        "status": state,
        "recipient": "972987654321",
        "error_code": error_code,
        "error_text": error_text,
    }


def reaction(emoji):
    return {
        "kind": "reaction",
        "provider_message_id": "wamid.yzxyzx=",
        "chat_jid": "972987654321",
        "emoji": emoji,
        "sender": PERSON,
    }


def image(url=None):
    return {
        "id": "65463453",
        "mime_type": "image/jpeg",
        "sha256": "4654+8g=",
        "filename": "",
        "url": url,
    }


EXPECTED = {
    "pywa_webhook_button_quick_reply_template.json": [
        message(
            "wamid.xsidjw",
            "interactive",
            body="title",
            quoted="wamid.xyzxyz==",
            interactive={"type": "button", "id": "callback_data", "title": "title"},
        )
    ],
    "pywa_webhook_interactive_button_reply.json": [
        message(
            "wamid.xyzxyz",
            "interactive",
            body="title",
            quoted="wamid.xyzxyz",
            interactive={"type": "button_reply", "id": "callback_data", "title": "title"},
        )
    ],
    "pywa_webhook_interactive_list_reply.json": [
        message(
            "wamid.zyzxyz",
            "interactive",
            body="title",
            quoted="wamid.xyzxyz",
            interactive={"type": "list_reply", "id": "callback_data", "title": "title"},
        )
    ],
    "pywa_webhook_message_document.json": [
        message(
            "wamid.xyzxyz",
            "document",
            caption="caption",
            forwarded=True,
            media={
                "id": "1234567890987654321",
                "mime_type": "application/pdf",
                "sha256": "grwfwe/ZPx0wAbdfbdeFUNItPZ0RylL8gGUvdt3YFqc18SY=",
                "filename": "filename.pdf",
                "url": None,
            },
        )
    ],
    "pywa_webhook_message_image.json": [message("wamid.xyzxyz", "image", media=image())],
    "pywa_webhook_message_image_with_url.json": [
        message(
            "wamid.xyzxyz",
            "image",
            media=image(
                "https://lookaside.fbsbx.com/whatsapp_business/attachments/"
                "?mid=65463453&source=webhook&ext=487r9re&hash=heiwchueowbcew-dnedcw"
            ),
        )
    ],
    # type "interactive" with no interactive object; the value-level error gives no event.
    "pywa_webhook_message_interactive_error.json": [
        message("wamid.wegrchytvwcggt=", "other", quoted="wamid.gvwegfretge==")
    ],
    "pywa_webhook_message_reaction.json": [reaction("\N{FACE WITH OPEN MOUTH}")],
    "pywa_webhook_message_referral_ctwa.json": [message("wamid.ID", "text", body="BODY")],
    "pywa_webhook_message_reply_context.json": [
        message("wamid.xyzxyz", "text", body="replied text", quoted="wamid.xyzxyz==")
    ],
    "pywa_webhook_message_text.json": [message("wamid.xyzxyz", "text", body="Body Text")],
    "pywa_webhook_message_unreaction_empty.json": [reaction("")],
    "pywa_webhook_message_unsupported.json": [message("wamid.xyzxyz", "other")],
    "pywa_webhook_status_delivered.json": [status("delivered")],
    "pywa_webhook_status_failed_130472.json": [
        status(
            "failed",
            error_code="130472",
            error_text="User's number is part of an experiment: Failed to send message because "
            "this user's phone number is part of an experiment",
        )
    ],
    "pywa_webhook_status_played.json": [status("played")],
    "pywa_webhook_status_read.json": [status("read")],
    "pywa_webhook_status_sent.json": [status("sent")],
    "pywa_webhook_system_identity_change.json": [
        message(
            "wamid.xyzxyz",
            "system",
            body="User identity changed",
            sender={"wa_id": "972987654321", "bsuid": None, "name": "User A"},
        )
    ],
}


def summary(event: ev.Event) -> dict:
    """The key fields of an event, as plain values."""
    party = lambda p: p and {"wa_id": p.wa_id, "bsuid": p.bsuid, "name": p.name}  # noqa: E731
    if isinstance(event, ev.MessageUpserted):
        media = event.media
        return {
            "kind": event.kind,
            "provider_message_id": event.provider_message_id,
            "chat_jid": event.chat_jid,
            "type": event.type,
            "body": event.body,
            "caption": event.caption,
            "quoted_id": event.quoted_id,
            "forwarded": event.forwarded,
            "sender": party(event.sender),
            "media": media
            and {
                "id": media.id,
                "mime_type": media.mime_type,
                "sha256": media.sha256,
                "filename": media.filename,
                "url": media.url,
            },
            "interactive": event.interactive,
        }
    if isinstance(event, ev.ReactionReceived):
        return {
            "kind": event.kind,
            "provider_message_id": event.provider_message_id,
            "chat_jid": event.chat_jid,
            "emoji": event.emoji,
            "sender": party(event.sender),
        }
    if isinstance(event, ev.MessageStatusChanged):
        return {
            "kind": event.kind,
            "provider_message_id": event.provider_message_id,
            "chat_jid": event.chat_jid,
            "status": event.status,
            "recipient": event.recipient and event.recipient.wa_id,
            "error_code": event.error_code,
            "error_text": event.error_text,
        }
    return {"kind": event.kind}


def test_it_has_an_expectation_for_every_pywa_fixture():
    assert sorted(p.name for p in FIXTURES.glob("pywa_webhook_*")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_it_translates_each_pywa_fixture_to_the_expected_events(name):
    events = make_provider(phone_number_id=FIXTURE_NUMBER_ID).translate(fixture(name))

    assert [summary(e) for e in events] == EXPECTED[name]
    for event in events:
        assert event.timestamp.tzinfo is dt.UTC
        assert ev.Event.from_dict(json.loads(json.dumps(event.to_dict()))) == event
        if isinstance(event, ev.MessageUpserted):
            assert event.raw == fixture(name)["entry"][0]["changes"][0]["value"]["messages"][0]
            assert event.from_me is False


def test_it_reads_unix_second_strings_as_aware_utc_times():
    provider = make_provider(phone_number_id=FIXTURE_NUMBER_ID)
    (text,) = provider.translate(fixture("pywa_webhook_message_text.json"))
    (status_event,) = provider.translate(fixture("pywa_webhook_status_failed_130472.json"))

    assert text.timestamp == dt.datetime(2023, 10, 11, 16, 53, 43, tzinfo=dt.UTC)
    assert status_event.timestamp == dt.datetime(2023, 7, 15, 0, 20, 58, tzinfo=dt.UTC)
    assert status_event.recipient == ev.Party(phone="972987654321", wa_id="972987654321")


def envelope(value: dict, number: str = PHONE_NUMBER_ID, field: str = "messages") -> dict:
    value = {"messaging_product": "whatsapp", "metadata": {"phone_number_id": number}, **value}
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": field, "value": value}]}],
    }


def inbound_message(**message) -> dict:
    return envelope(
        {
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": "85291234567"}],
            "messages": [
                {"from": "85291234567", "id": "wamid.M1", "timestamp": "1700000000", **message}
            ],
        }
    )


def test_it_translates_a_voice_note_apart_from_an_audio_file():
    voice = {"id": "5", "mime_type": "audio/ogg; codecs=opus", "voice": True}
    (note,) = make_provider().translate(inbound_message(type="audio", audio=voice))
    (song,) = make_provider().translate(inbound_message(type="audio", audio={"id": "6"}))

    assert (note.type, note.media.id, note.media.mime_type) == (
        "voice",
        "5",
        "audio/ogg; codecs=opus",
    )
    assert song.type == "audio"


def test_it_translates_a_location_and_shared_contacts():
    place = {"latitude": 22.28, "longitude": 114.16, "name": "IFC", "address": "8 Finance St"}
    cards = [{"name": {"formatted_name": "Bo"}, "phones": [{"phone": "+85290000000"}]}]

    (where,) = make_provider().translate(inbound_message(type="location", location=place))
    (who,) = make_provider().translate(inbound_message(type="contacts", contacts=cards))

    assert (where.type, where.location) == ("location", place)
    assert (who.type, who.contacts) == ("contact", cards)


def test_it_translates_a_missing_reaction_emoji_as_removed():
    (removed,) = make_provider().translate(
        inbound_message(type="reaction", reaction={"message_id": "wamid.R"})
    )

    assert (removed.kind, removed.provider_message_id, removed.emoji) == ("reaction", "wamid.R", "")


def test_it_translates_an_order_as_other():
    (order,) = make_provider().translate(inbound_message(type="order", order={"catalog_id": "1"}))

    assert order.type == "other"


def test_it_uses_the_business_scoped_id_as_the_chat_when_there_is_no_wa_id():
    payload = envelope(
        {
            "contacts": [{"profile": {"name": "Lee"}, "user_id": "HK.8812"}],
            "messages": [
                {
                    "from_user_id": "HK.8812",
                    "id": "wamid.B",
                    "timestamp": "1700000000",
                    "type": "text",
                    "text": {"body": "hi"},
                }
            ],
            "statuses": [
                {
                    "id": "wamid.S",
                    "status": "read",
                    "timestamp": "1",
                    "recipient_user_id": "HK.8812",
                }
            ],
        }
    )

    message_event, status_event = make_provider().translate(payload)

    assert message_event.chat_jid == "HK.8812"
    assert message_event.sender == ev.Party(bsuid="HK.8812", name="Lee")
    assert status_event.chat_jid == "HK.8812"
    assert status_event.recipient == ev.Party(bsuid="HK.8812")


def test_it_translates_every_message_and_status_of_a_batched_post():
    text = fixture("pywa_webhook_message_text.json")
    sent = fixture("pywa_webhook_status_sent.json")
    read = fixture("pywa_webhook_status_read.json")
    value = text["entry"][0]["changes"][0]["value"]
    value["messages"].append({**value["messages"][0], "id": "wamid.second"})
    text["entry"].append(sent["entry"][0])
    text["entry"][1]["changes"].append(read["entry"][0]["changes"][0])

    events = make_provider(phone_number_id=FIXTURE_NUMBER_ID).translate(text)

    assert [(e.kind, e.provider_message_id, getattr(e, "status", "")) for e in events] == [
        ("message_upserted", "wamid.xyzxyz", ""),
        ("message_upserted", "wamid.second", ""),
        ("message_status", "wamid.xyzxyz", "sent"),
        ("message_status", "wamid.xyzxyz", "read"),
    ]


def test_it_ignores_changes_addressed_to_another_phone_number():
    payload = fixture("pywa_webhook_message_text.json")

    assert make_provider(phone_number_id="999").translate(payload) == []


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        "text",
        {"object": "whatsapp_business_account"},
        envelope({"errors": [{"code": 130429, "title": "Rate limit hit"}]}),
        envelope({"event": "APPROVED"}, field="message_template_status_update"),
        envelope({"statuses": [{"id": "wamid.x", "status": "deleted", "timestamp": "1"}]}),
    ],
)
def test_it_translates_what_it_does_not_use_to_nothing(payload):
    assert make_provider().translate(payload) == []
