"""Meta's WhatsApp Business Cloud API (the Graph API), the official provider.

Nothing to pair: a session is a business phone number (``phone_number_id``) plus a system-user
``access_token``; ``connect`` checks them with ``GET /{phone_number_id}`` and the session is ready.
Sends go to ``POST /{phone_number_id}/messages``; inbound media is fetched in two steps
(``GET /{media_id}`` gives a short-lived URL that must be fetched with the same bearer token).

Webhooks come from Meta, signed with the *app* secret (``X-Hub-Signature-256``), and are set up
with a GET handshake answered with ``hub.challenge`` when ``hub.verify_token`` matches. One POST
may carry several entries, changes, messages and statuses, and (on the app-wide URL) several
phone numbers: ``split_by_phone_number_id`` cuts it into one envelope per number, and
``translate`` ignores changes addressed to another number than the session's.

Identities: ``wa_id`` is the phone number Meta resolved (store it, not what was typed); since 2026
a person may come with only a business-scoped user id (``user_id``, "US.1349…", our ``bsuid``),
which is then also the chat id and the send target (Meta's ``recipient`` field).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from sessions_app.providers import events as ev
from sessions_app.providers import http
from sessions_app.providers.base import (
    MAX_TEXT_LENGTH,
    Capability,
    CredentialField,
    Forged,
    InboundRequest,
    MediaRejected,
    MessageTooLong,
    NetworkError,
    NotAuthorized,
    OutgoingMessage,
    OutsideWindow,
    Pairing,
    Provider,
    ProviderError,
    RateLimited,
    RecipientNotFound,
    Sent,
    Status,
    Unsupported,
    hmac_sha256_matches,
    secret_matches,
)

logger = logging.getLogger(__name__)

#: Meta's own limits (characters): a text body, a media caption.
TEXT_LIMIT = min(4096, MAX_TEXT_LENGTH)
CAPTION_LIMIT = 1024
MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
CAPTIONED = frozenset({"image", "video", "document"})
USER_AGENT = "Parley/1.0 (WhatsApp Cloud API)"

# Meta error codes (developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes).
RATE_LIMIT_CODES = frozenset({4, 80004, 80007, 130429, 131048, 131056})
OUTSIDE_WINDOW_CODES = frozenset({131047})
RECIPIENT_CODES = frozenset({131026, 131030})
# 190 token, 3 capability, 10 + 200-299 permission, 368 blocked for policy violations,
# 131031 account locked, 133010 number not registered: the session must be set up again.
AUTH_CODES = frozenset({190, 3, 10, 368, 131031, 133010, *range(200, 300)})
MEDIA_CODES = frozenset({131051, 131052, 131053})
LENGTH_CODES = frozenset({100, 131009})
# "Something went wrong" / "service unavailable": worth another try even on a 4xx.
TRANSIENT_CODES = frozenset({1, 2, 131000, 131016, 133004})
TOO_LONG = re.compile(
    r"too long|at most \d+ char|characters? long|max(imum)? length|length .{0,40}exceed|exceeds? .{0,40}length",
    re.IGNORECASE,
)
URL = re.compile(r"https?://\S", re.IGNORECASE)
BSUID = re.compile(r"[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]+")
STATUSES = {
    "sent": ev.DeliveryStatus.SENT,
    "delivered": ev.DeliveryStatus.DELIVERED,
    "read": ev.DeliveryStatus.READ,
    "played": ev.DeliveryStatus.PLAYED,
    "failed": ev.DeliveryStatus.FAILED,
}


class Refused(ProviderError):
    """A request Meta (or we, before asking) refused for good: a 4xx without a kind of its own.
    The contract's ``ProviderError`` is transient; this one is permanent, same code."""

    permanent = True


class CloudApiProvider(Provider):
    name = "cloud_api"
    label = "WhatsApp Cloud API (Meta)"
    capabilities = frozenset(
        {
            Capability.MEDIA,
            Capability.TEMPLATES,
            Capability.READ_RECEIPTS,
            Capability.INTERACTIVE,
            Capability.REACTIONS,
        }
    )
    credential_fields = (
        CredentialField(
            "phone_number_id",
            "Phone number ID",
            secret=False,
            help="WhatsApp Manager → API setup: the ID of the business phone number (digits).",
        ),
        CredentialField(
            "waba_id",
            "WhatsApp Business Account ID",
            secret=False,
            help="The WABA that owns the phone number (digits).",
        ),
        CredentialField(
            "access_token",
            "Access token",
            help="A system-user token with whatsapp_business_messaging permission.",
        ),
        CredentialField(
            "app_secret",
            "App secret",
            help="Meta app → Settings → Basic: signs the webhooks Meta sends.",
        ),
        CredentialField(
            "verify_token",
            "Webhook verify token",
            help="Any string; type the same one in the app's webhook settings.",
        ),
    )
    webhook_help = (
        "In the Meta app, WhatsApp → Configuration: paste this URL as the Callback URL and the "
        "webhook verify token entered here as the Verify token, then subscribe to the messages "
        "field. Meta signs every delivery with the app secret."
    )
    webhook_secret_credential = "verify_token"  # noqa: S105 - a field name, not a secret

    @classmethod
    def check_credentials(cls, credentials: Mapping[str, str]) -> dict[str, str]:
        errors = super().check_credentials(credentials)
        for name, label in (("phone_number_id", "Phone number ID"), ("waba_id", "WABA ID")):
            value = str(credentials.get(name) or "").strip()
            if value and not value.isdigit():
                errors[name] = f"{label} is digits only."
        return errors

    # --- act ----------------------------------------------------------------------------------

    def connect(self) -> Pairing:
        phone, name = self._check()
        return Pairing(state=ev.SessionState.READY, phone_number=phone, name=name)

    def status(self) -> Status:
        phone, name = self._check()
        return Status(state=ev.SessionState.READY, phone_number=phone, name=name)

    def send(self, message: OutgoingMessage) -> Sent:
        body = self._message_body(message)
        answer = self._call("POST", f"/{self._phone_number_id()}/messages", json_body=body)
        messages = answer.get("messages") if isinstance(answer, dict) else None
        if not (isinstance(messages, list) and messages and isinstance(messages[0], dict)):
            raise NetworkError("The Cloud API answered a send without a message id.")
        message_id = str(messages[0].get("id") or "")
        if not message_id:
            raise NetworkError("The Cloud API answered a send without a message id.")
        contacts = answer.get("contacts") or []
        contact = contacts[0] if contacts and isinstance(contacts[0], dict) else {}
        recipient = str(contact.get("wa_id") or contact.get("user_id") or "")
        return Sent(provider_message_id=message_id, recipient_id=recipient)

    def mark_read(self, chat_jid: str, provider_message_ids: list[str]) -> None:
        path = f"/{self._phone_number_id()}/messages"
        for message_id in provider_message_ids:
            self._call(
                "POST",
                path,
                json_body={
                    "messaging_product": "whatsapp",
                    "status": "read",
                    "message_id": message_id,
                },
            )

    def download_media(self, media: Any) -> tuple[bytes, str]:
        media_id = _field(media, "id")
        url = _field(media, "url")
        mime = _field(media, "mime_type")
        if media_id:
            info = self._call("GET", f"/{quote(media_id, safe='')}", act="media")
            if not isinstance(info, dict) or not info.get("url"):
                raise MediaRejected("The Cloud API gave no URL for this media.")
            url = str(info["url"])
            mime = str(info.get("mime_type") or mime)
        if not url:
            raise MediaRejected("This media has neither a Cloud API id nor a URL.")
        if not self._may_carry_token(url):
            raise Refused(
                "Refusing to send the access token to a media URL that is not HTTPS.",
                detail=urlsplit(url).netloc,
            )
        content, content_type = http.call(
            "GET",
            url,
            headers=self._headers(),
            timeout=self.timeout,
            raw=True,
            max_bytes=http.MAX_MEDIA_BYTES,
            on_error=self._on_error("media"),
        )
        return content, mime or content_type.split(";")[0].strip() or "application/octet-stream"

    # --- verify -------------------------------------------------------------------------------

    @classmethod
    def verify_app_signature(cls, app_secret: str, request: InboundRequest) -> None:
        """Raise ``Forged`` unless ``X-Hub-Signature-256`` signs the raw body with the app
        secret. For the installation-wide URL, which has no session until the body is read."""
        header = request.headers.get("x-hub-signature-256")
        if not hmac_sha256_matches(app_secret, request.body, header, prefix="sha256="):
            raise Forged("bad or missing X-Hub-Signature-256")

    def verify(self, request: InboundRequest) -> None:
        self.verify_app_signature(self._credential("app_secret"), request)

    def challenge(self, request: InboundRequest) -> str | None:
        if request.method.upper() != "GET" or "hub.mode" not in request.query:
            return None
        mode = request.query.get("hub.mode")
        token = request.query.get("hub.verify_token")
        if mode != "subscribe" or not secret_matches(self._credential("verify_token"), token):
            raise Forged("webhook handshake with a wrong verify token")
        return str(request.query.get("hub.challenge") or "")

    @staticmethod
    def split_by_phone_number_id(payload: Any) -> dict[str, dict]:
        """One envelope per ``metadata.phone_number_id``, each holding only that number's
        changes (entries kept apart, their ``id``/``time`` copied). Changes without a phone
        number (WABA-level fields: template status, account updates) belong to no session and
        are left out."""
        if not isinstance(payload, dict):
            return {}
        split: dict[str, dict] = {}
        for entry in _dicts(payload.get("entry")):
            per_number: dict[str, list[dict]] = {}
            for change in _dicts(entry.get("changes")):
                value = change.get("value")
                metadata = value.get("metadata") if isinstance(value, dict) else None
                number = str((metadata or {}).get("phone_number_id") or "")
                if number:
                    per_number.setdefault(number, []).append(change)
            for number, changes in per_number.items():
                envelope = split.setdefault(
                    number, {"object": payload.get("object", "whatsapp_business_account")}
                )
                head = {k: v for k, v in entry.items() if k != "changes"}
                envelope.setdefault("entry", []).append({**head, "changes": changes})
        return split

    # --- translate ----------------------------------------------------------------------------

    def translate(self, payload: Any, *, suffix: str = "") -> list[ev.Event]:
        if not isinstance(payload, dict):
            return []
        own_number = self._credential("phone_number_id")
        events: list[ev.Event] = []
        for entry in _dicts(payload.get("entry")):
            for change in _dicts(entry.get("changes")):
                if change.get("field", "messages") != "messages":
                    continue
                value = change.get("value")
                if not isinstance(value, dict):
                    continue
                number = str((value.get("metadata") or {}).get("phone_number_id") or "")
                if own_number and number and number != own_number:
                    logger.warning("Cloud API change for another phone number ignored")
                    continue
                contacts = list(_dicts(value.get("contacts")))
                for message in _dicts(value.get("messages")):
                    event = _message_event(message, contacts)
                    if event is not None:
                        events.append(event)
                for status in _dicts(value.get("statuses")):
                    event = _status_event(status)
                    if event is not None:
                        events.append(event)
                # value["errors"]: app-level errors (e.g. 130429), nothing for a conversation.
        return events

    # --- the wire -----------------------------------------------------------------------------

    def _credential(self, name: str) -> str:
        return str((self.config.credentials or {}).get(name) or "").strip()

    def _phone_number_id(self) -> str:
        number = self._credential("phone_number_id")
        if not number:
            raise NotAuthorized("The Cloud API phone number ID is missing.")
        return quote(number, safe="")

    def _headers(self) -> dict[str, str]:
        token = self._credential("access_token")
        if not token:
            raise NotAuthorized("The Cloud API access token is missing.")
        return {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        act: str = "",
    ) -> Any:
        answer = http.call(
            method,
            self.base_url + path,
            headers=self._headers(),
            params=params,
            json_body=json_body,
            timeout=self.timeout,
            on_error=self._on_error(act),
        )
        if not isinstance(answer, dict):
            raise NetworkError("The Cloud API answered something that is not a JSON object.")
        return answer

    def _check(self) -> tuple[str | None, str]:
        info = self._call(
            "GET",
            f"/{self._phone_number_id()}",
            params={"fields": "display_phone_number,verified_name"},
            act="check",
        )
        phone = re.sub(r"\D", "", str(info.get("display_phone_number") or "")) or None
        return phone, str(info.get("verified_name") or "")

    def _may_carry_token(self, url: str) -> bool:
        target, base = urlsplit(url), urlsplit(self.base_url)
        if target.scheme == "https" and target.netloc:
            return True
        return (target.scheme, target.netloc) == (base.scheme, base.netloc)

    def _on_error(self, act: str) -> http.ErrorMapper:
        secrets = [self._credential("access_token"), self._credential("app_secret")]

        def on_error(status: int, payload: Any) -> ProviderError:
            return meta_error(status, payload, act=act, secrets=secrets)

        return on_error

    def _message_body(self, message: OutgoingMessage) -> dict[str, Any]:
        body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual"}
        body.update(_recipient(message.to))
        if message.reaction_to:
            body["type"] = "reaction"
            body["reaction"] = {"message_id": message.reaction_to, "emoji": message.emoji or ""}
            return body  # a reaction carries no reply context
        if message.template:
            body["type"] = "template"
            body["template"] = _template(message.template)
        elif message.media_url or message.media_id:
            kind = message.media_type or _media_type(message.mime_type)
            if kind not in MEDIA_TYPES:
                raise Unsupported(f"The Cloud API cannot send {kind or 'this'} media.")
            media: dict[str, Any] = (
                {"id": message.media_id} if message.media_id else {"link": message.media_url}
            )
            if message.caption and kind in CAPTIONED:
                if len(message.caption) > CAPTION_LIMIT:
                    raise MessageTooLong(
                        f"A Cloud API caption is at most {CAPTION_LIMIT} characters."
                    )
                media["caption"] = message.caption
            if kind == "document" and message.filename:
                media["filename"] = message.filename
            body["type"] = kind
            body[kind] = media
        elif message.text:
            if len(message.text) > TEXT_LIMIT:
                raise MessageTooLong(f"A Cloud API text is at most {TEXT_LIMIT} characters.")
            text: dict[str, Any] = {"body": message.text}
            if URL.search(message.text):
                text["preview_url"] = True
            body["type"] = "text"
            body["text"] = text
        else:
            raise Refused("Nothing to send: no text, media, template or reaction.")
        if message.reply_to:
            body["context"] = {"message_id": message.reply_to}
        return body


# --- errors --------------------------------------------------------------------------------------


def meta_error(
    status: int, payload: Any, *, act: str = "", secrets: list[str] | tuple[str, ...] = ()
) -> ProviderError:
    """The taxonomy error of a Graph API 4xx (``{"error": {code, message, error_subcode,
    error_data, type, fbtrace_id}}``). ``act`` is ``check`` (the credentials check) or ``media``
    (a download), where an unknown object means bad credentials or gone media."""
    error = payload.get("error") if isinstance(payload, dict) else None
    error = error if isinstance(error, dict) else {}
    code = _int(error.get("code"))
    subcode = _int(error.get("error_subcode"))
    message = str(error.get("message") or error.get("error_user_msg") or "")
    title = str(error.get("title") or error.get("error_user_title") or "")
    data = error.get("error_data")
    details = str(data.get("details") or "") if isinstance(data, dict) else str(data or "")
    parts = [f"HTTP {status}"]
    if code is not None:
        parts.append(f"code {code}" + (f"/{subcode}" if subcode is not None else ""))
    parts += [p for p in (str(error.get("type") or ""), title, message, details) if p]
    if error.get("fbtrace_id"):
        parts.append(f"fbtrace_id {error['fbtrace_id']}")
    detail = "; ".join(dict.fromkeys(parts))
    for secret in secrets:
        if secret:
            detail = detail.replace(secret, "[redacted]")
    detail = detail[:500]
    said = f" ({code})" if code is not None else f" (HTTP {status})"

    if code in RATE_LIMIT_CODES or status == 429:
        return RateLimited(f"WhatsApp rate limit reached{said}.", detail=detail)
    if code in OUTSIDE_WINDOW_CODES:
        return OutsideWindow(
            "More than 24 hours since this person last wrote: only a template can be sent.",
            detail=detail,
        )
    if code in RECIPIENT_CODES:
        return RecipientNotFound(f"WhatsApp cannot deliver to this recipient{said}.", detail=detail)
    if code in AUTH_CODES or status == 401:
        return NotAuthorized(f"Meta refused the credentials{said}.", detail=detail)
    if code in MEDIA_CODES:
        return MediaRejected(f"WhatsApp refused the media{said}.", detail=detail)
    if code in LENGTH_CODES and TOO_LONG.search(f"{message} {details}"):
        return MessageTooLong(f"WhatsApp says the message is too long{said}.", detail=detail)
    if code == 100 and subcode == 33 and act == "check":
        return NotAuthorized("No phone number with this ID for this access token.", detail=detail)
    if act == "media" and (status == 404 or (code == 100 and subcode == 33)):
        return MediaRejected("This media is gone (expired or unknown).", detail=detail)
    if code in TRANSIENT_CODES:
        return ProviderError(f"The Cloud API failed for now{said}.", detail=detail)
    return Refused(f"The Cloud API refused the request{said}.", detail=detail)


# --- translate helpers ---------------------------------------------------------------------------


def _message_event(message: dict, contacts: list[dict]) -> ev.Event | None:
    message_id = str(message.get("id") or "")
    sender_id = str(message.get("from") or message.get("from_user_id") or "")
    if not message_id or not sender_id:
        return None
    sender = _sender(sender_id, message, contacts)
    chat_jid = sender.wa_id or sender.bsuid or sender_id
    when = _time(message.get("timestamp"))
    kind = str(message.get("type") or "")
    if kind == "reaction":
        reaction = message.get("reaction") if isinstance(message.get("reaction"), dict) else {}
        return ev.ReactionReceived(
            provider_message_id=str(reaction.get("message_id") or ""),
            chat_jid=chat_jid,
            emoji=str(reaction.get("emoji") or ""),
            timestamp=when,
            sender=sender,
        )
    context = message.get("context") if isinstance(message.get("context"), dict) else {}
    fields: dict[str, Any] = {"type": ev.MessageType.OTHER}
    content = message.get(kind) if isinstance(message.get(kind), dict) else {}
    if kind == "text":
        fields.update(type=ev.MessageType.TEXT, body=str(content.get("body") or ""))
    elif kind in MEDIA_TYPES:
        voice = kind == "audio" and bool(content.get("voice"))
        fields.update(
            type=ev.MessageType.VOICE if voice else kind,
            caption=str(content.get("caption") or ""),
            media=ev.Media(
                id=str(content["id"]) if content.get("id") else None,
                url=str(content["url"]) if content.get("url") else None,
                mime_type=str(content.get("mime_type") or ""),
                filename=str(content.get("filename") or ""),
                sha256=str(content.get("sha256") or ""),
            ),
        )
    elif kind == "location":
        fields.update(
            type=ev.MessageType.LOCATION,
            location={
                "latitude": content.get("latitude"),
                "longitude": content.get("longitude"),
                "name": content.get("name") or "",
                "address": content.get("address") or "",
            },
        )
    elif kind == "contacts":
        cards = [c for c in message.get("contacts") or [] if isinstance(c, dict)]
        fields.update(type=ev.MessageType.CONTACT, contacts=cards)
    elif kind == "interactive" and content:
        reply_type = str(content.get("type") or "")
        reply = content.get(reply_type) if isinstance(content.get(reply_type), dict) else {}
        title = str(reply.get("title") or reply.get("name") or reply.get("body") or "")
        fields.update(
            type=ev.MessageType.INTERACTIVE,
            body=title,
            interactive={"type": reply_type, "id": str(reply.get("id") or ""), "title": title},
        )
    elif kind == "button":
        title = str(content.get("text") or "")
        fields.update(
            type=ev.MessageType.INTERACTIVE,
            body=title,
            interactive={"type": "button", "id": str(content.get("payload") or ""), "title": title},
        )
    elif kind == "system":
        fields.update(type=ev.MessageType.SYSTEM, body=str(content.get("body") or ""))
    # unsupported, order, request_welcome, an interactive without content, anything new: other.
    return ev.MessageUpserted(
        provider_message_id=message_id,
        chat_jid=chat_jid,
        from_me=False,
        timestamp=when,
        sender=sender,
        quoted_id=str(context["id"]) if context.get("id") else None,
        forwarded=bool(context.get("forwarded") or context.get("frequently_forwarded")),
        raw=message,
        **fields,
    )


def _status_event(status: dict) -> ev.Event | None:
    message_id = str(status.get("id") or "")
    state = STATUSES.get(str(status.get("status") or ""))
    if not message_id or state is None:
        if message_id:
            logger.info("Cloud API status %r ignored", status.get("status"))
        return None
    wa_id = str(status.get("recipient_id") or "")
    bsuid = str(status.get("recipient_user_id") or "")
    if BSUID.fullmatch(wa_id):
        wa_id, bsuid = "", bsuid or wa_id
    recipient = ev.Party(
        phone=wa_id if wa_id.isdigit() else None, wa_id=wa_id or None, bsuid=bsuid or None
    )
    errors = list(_dicts(status.get("errors")))
    error = errors[0] if errors else {}
    data = error.get("error_data") if isinstance(error.get("error_data"), dict) else {}
    words = [str(error.get("title") or error.get("message") or ""), str(data.get("details") or "")]
    return ev.MessageStatusChanged(
        provider_message_id=message_id,
        status=state,
        timestamp=_time(status.get("timestamp")),
        chat_jid=wa_id or bsuid,
        recipient=recipient,
        error_code=str(error.get("code") or ""),
        error_text=": ".join(w for w in dict.fromkeys(words) if w),
    )


def _sender(sender_id: str, message: dict, contacts: list[dict]) -> ev.Party:
    match = next((c for c in contacts if sender_id in (c.get("wa_id"), c.get("user_id"))), {})
    wa_id = str(match.get("wa_id") or "")
    bsuid = str(match.get("user_id") or message.get("from_user_id") or "")
    if not wa_id and not BSUID.fullmatch(sender_id):
        wa_id = sender_id
    if not bsuid and BSUID.fullmatch(sender_id):
        bsuid = sender_id
    profile = match.get("profile") if isinstance(match.get("profile"), dict) else {}
    return ev.Party(
        phone=wa_id if wa_id.isdigit() else None,
        wa_id=wa_id or None,
        bsuid=bsuid or None,
        name=str(profile.get("name") or ""),
    )


# --- small helpers -------------------------------------------------------------------------------


def _recipient(to: str) -> dict[str, str]:
    """Meta's addressing of ``to``: ``{"to": digits}`` or ``{"recipient": bsuid}``."""
    target = (to or "").strip()
    if "@" in target:
        local, _, server = target.partition("@")
        if server not in ("s.whatsapp.net", "c.us"):
            raise Unsupported("The Cloud API sends to people only, not to groups or @lid ids.")
        target = local.split(":")[0]
    if BSUID.fullmatch(target):
        return {"recipient": target}
    digits = re.sub(r"[\s\-().+]", "", target)
    if not digits.isdigit():
        raise RecipientNotFound("Not a phone number or WhatsApp user id.", detail=target[:40])
    return {"to": digits}


def _template(template: Mapping[str, Any]) -> dict[str, Any]:
    name = str(template.get("name") or "")
    language = template.get("language")
    if isinstance(language, str):
        language = {"policy": "deterministic", "code": language}
    if not name or not isinstance(language, Mapping) or not language.get("code"):
        raise Refused("A template needs a name and a language code.")
    body: dict[str, Any] = {"name": name, "language": dict(language)}
    if template.get("components"):
        body["components"] = list(template["components"])
    return body


def _media_type(mime_type: str) -> str:
    major = (mime_type or "").split("/")[0]
    if mime_type == "image/webp":
        return "sticker"
    return major if major in ("image", "video", "audio") else "document"


def _field(obj: Any, name: str) -> str:
    value = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
    return str(value or "")


def _dicts(value: Any):
    return (item for item in value if isinstance(item, dict)) if isinstance(value, list) else ()


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _time(value: Any) -> dt.datetime:
    try:
        return dt.datetime.fromtimestamp(int(value), tz=dt.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return dt.datetime.now(tz=dt.UTC)


PROVIDER = CloudApiProvider
