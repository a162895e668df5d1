"""Evolution API v2: a self-hosted gateway running a linked device (Baileys) per *instance*.

Act: ``connect`` creates the instance if it does not exist (with our webhook and its secret header),
then asks ``/instance/connect`` for a QR code; ``pairing_code`` asks the same with ``?number=``;
``status`` reads ``/instance/connectionState``; ``logout`` unpairs; ``send`` posts text, media or a
reaction. Every request carries the ``apikey`` header (the global key, or the instance's token: an
instance token cannot create instances, so a 401 from ``/instance/create`` is not fatal).

``disconnect`` does nothing at the gateway: Evolution has no "close but keep the pairing" call (its
``logout`` unpairs and ``DELETE /instance/delete`` destroys the instance), so the session is only
marked disconnected on our side and the pairing survives for the next connect.

Verify: Evolution does not sign webhooks; we configure a header ``x-parley-secret`` on the instance
and compare it in constant time. Its bodies carry the instance token in clear (``apikey``):
``scrub`` drops it before the body is stored.

Translate: the envelope is ``{event, instance, data, date_time, sender, server_url, apikey}``;
event names come as ``messages.upsert`` or ``MESSAGES_UPSERT`` (and, with ``byEvents``, as the URL
suffix ``/messages-upsert``). Messages are Baileys ``WAMessage`` objects; ``@lid`` addressing gives
the phone in ``key.senderPn`` / ``key.remoteJidAlt``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import mimetypes
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from sessions_app.providers import events as ev
from sessions_app.providers import http
from sessions_app.providers.base import (
    MAX_TEXT_LENGTH,
    REDACTED,
    Capability,
    CredentialField,
    Forged,
    InboundRequest,
    MediaRejected,
    MessageTooLong,
    NetworkError,
    NotAuthorized,
    OutgoingMessage,
    Pairing,
    Provider,
    ProviderError,
    RateLimited,
    RecipientNotFound,
    Sent,
    Status,
    Unsupported,
    secret_matches,
)

logger = logging.getLogger(__name__)

SECRET_HEADER = "x-parley-secret"  # noqa: S105 - a header name, not a secret
APIKEY_IN_TEXT = re.compile(r'("apikey"\s*:\s*")(?:[^"\\]|\\.)*', re.IGNORECASE)
QR_SECONDS = 40  # Baileys: about 60 s for the first code, 20 s for the next ones
WEBHOOK_EVENTS = [
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
    "MESSAGES_SET",  # the history's messages themselves (MESSAGING_HISTORY_SET carries counts)
]
STATES = {
    "open": ev.SessionState.READY,
    "connecting": ev.SessionState.CONNECTING,
    "close": ev.SessionState.DISCONNECTED,
    "refused": ev.SessionState.FAILED,
}
QR_LIMIT_REASON = "QR code limit reached"
# Baileys DisconnectReason (the statusReason of a close)
DISCONNECT_REASONS = {
    401: "Logged out from the phone (401 loggedOut): pair again.",
    403: "WhatsApp refused the session (403 forbidden), typically a ban.",
    408: "Connection lost or timed out (408).",
    411: "Multi-device mismatch (411): pair again.",
    428: "Connection closed (428).",
    440: "Connection replaced by another session (440).",
    500: "Bad session (500).",
    503: "WhatsApp unavailable (503).",
    515: "Restart required (515), normal right after pairing.",
}
LOGGED_OUT_CODES = {401, 403}
# WAProto WebMessageInfo.Status, as Evolution names them (renderStatus.ts) and as numbers.
DELIVERY = {
    "ERROR": ev.DeliveryStatus.FAILED,
    "PENDING": ev.DeliveryStatus.PENDING,
    "SERVER_ACK": ev.DeliveryStatus.SENT,
    "DELIVERY_ACK": ev.DeliveryStatus.DELIVERED,
    "READ": ev.DeliveryStatus.READ,
    "PLAYED": ev.DeliveryStatus.PLAYED,
}
DELIVERY_BY_NUMBER = dict(enumerate(DELIVERY.values()))
MEDIA_TYPES = {
    "imageMessage": ev.MessageType.IMAGE,
    "videoMessage": ev.MessageType.VIDEO,
    "ptvMessage": ev.MessageType.VIDEO,
    "audioMessage": ev.MessageType.AUDIO,
    "documentMessage": ev.MessageType.DOCUMENT,
    "stickerMessage": ev.MessageType.STICKER,
}
WRAPPERS = (
    "ephemeralMessage",
    "viewOnceMessage",
    "viewOnceMessageV2",
    "viewOnceMessageV2Extension",
    "documentWithCaptionMessage",
)
REVOKE = {0, "0", "REVOKE"}
MESSAGE_EDIT = {14, "14", "MESSAGE_EDIT"}


class EvolutionProvider(Provider):
    name = "evolution"
    label = "Evolution API (linked device)"
    capabilities = frozenset(
        {
            Capability.QR,
            Capability.PAIRING_CODE,
            Capability.MEDIA,
            Capability.GROUPS,
            Capability.READ_RECEIPTS,
            Capability.REACTIONS,
            Capability.LOGOUT,
        }
    )
    credential_fields = (
        CredentialField(
            "server_url",
            "Server URL",
            secret=False,
            help="The gateway's base URL, e.g. https://evolution.example.com",
        ),
        CredentialField(
            "api_key", "API key", help="The global API key, or the instance's own token."
        ),
        CredentialField(
            "instance_name",
            "Instance name",
            secret=False,
            help="Created on the gateway if it does not exist.",
        ),
    )
    webhook_help = (
        "Parley sets this webhook on the gateway when you press Connect. To set it by hand, "
        "use this URL and send the secret in an X-Parley-Secret header."
    )

    @classmethod
    def check_credentials(cls, credentials: Mapping[str, str]) -> dict[str, str]:
        errors = super().check_credentials(credentials)
        url = str(credentials.get("server_url") or "").strip()
        if url and urlsplit(url).scheme not in ("http", "https"):
            errors["server_url"] = "Server URL must start with http:// or https://."
        return errors

    # --- plumbing ---------------------------------------------------------------------------------
    @property
    def instance(self) -> str:
        return str(self.config.credentials.get("instance_name") or "").strip()

    def _url(self, path: str) -> str:
        base = self.base_url or str(self.config.credentials.get("server_url") or "").rstrip("/")
        return base + path.format(instance=quote(self.instance, safe=""))

    def _call(self, method: str, path: str, *, on_error: http.ErrorMapper | None = None, **kw):
        headers = {"apikey": str(self.config.credentials.get("api_key") or "")}
        return http.call(
            method,
            self._url(path),
            headers=headers,
            timeout=self.timeout,
            on_error=on_error or self._errors(),
            **kw,
        )

    def _errors(self, *, sending: bool = False, media: bool = False) -> http.ErrorMapper:
        def mapper(status: int, payload: Any) -> ProviderError | None:
            text = _error_text(payload)
            detail = f"HTTP {status}: {text}"[:300]
            if status == 401:
                return NotAuthorized("Evolution refused the API key.", detail=detail)
            if status == 404 and "instance" in text.lower() and "not exist" in text.lower():
                return NotAuthorized(
                    f'The Evolution instance "{self.instance}" is gone (deleted on the gateway); '
                    "connect again to create it.",
                    detail=detail,
                )
            if status == 403:
                return NotAuthorized("Evolution refused the request (403).", detail=detail)
            if status == 429:
                return RateLimited(
                    "Evolution is rate limiting this instance.",
                    retry_after=_retry_after(payload),
                    detail=detail,
                )
            if sending and _not_on_whatsapp(payload):
                return RecipientNotFound("That number is not on WhatsApp.", detail=detail)
            if sending and status == 404:
                return RecipientNotFound("Evolution could not find the recipient.", detail=detail)
            if status == 413:
                if media:
                    return MediaRejected("The media is too large for Evolution.", detail=detail)
                return MessageTooLong("Evolution refused the message as too long.", detail=detail)
            if media and status in (400, 415, 422):
                return MediaRejected("Evolution refused the media.", detail=detail)
            return None

        return mapper

    # --- act --------------------------------------------------------------------------------------
    def connect(self) -> Pairing:
        self._ensure_instance()
        return self._pairing(self._call("GET", "/instance/connect/{instance}"))

    def pairing_code(self, phone_number: str) -> Pairing:
        digits = _digits(phone_number)
        if not digits:
            raise ProviderError("A phone number is needed for a pairing code.")
        self._ensure_instance(number=digits)
        answer = self._call("GET", "/instance/connect/{instance}", params={"number": digits})
        pairing = self._pairing(answer)
        if pairing.state == ev.SessionState.READY:
            return pairing
        if not pairing.pairing_code:
            raise ProviderError(
                "Evolution returned no pairing code. WhatsApp Business accounts refuse pairing "
                "codes, and a gateway already showing a QR code ignores the number: scan the QR "
                "code instead, or try again once it has expired.",
                detail="no pairingCode in /instance/connect",
            )
        return pairing

    def status(self) -> Status:
        answer = _first(self._call("GET", "/instance/connectionState/{instance}"))
        nested = answer.get("instance") if isinstance(answer.get("instance"), dict) else answer
        raw_state = str(nested.get("state") or "")
        state = STATES.get(raw_state)
        if state is None:
            return Status(state="", reason=f"Unknown Evolution state {raw_state!r}.")
        if state == ev.SessionState.FAILED:
            return Status(state=state, reason=QR_LIMIT_REASON)
        if state == ev.SessionState.READY:
            return Status(state=state, **self._identity())
        return Status(state=state)

    def disconnect(self) -> None:
        """Nothing at the gateway: Evolution cannot close a connection and keep its pairing (its
        logout unpairs), so only our side marks the session disconnected."""
        return None

    def logout(self) -> None:
        def mapper(status: int, payload: Any) -> ProviderError | None:
            text = _error_text(payload).lower()
            if (status == 404 and "not exist" in text) or (
                status == 400 and "not connected" in text
            ):
                return _AlreadyDone()  # nothing paired any more: that is what we wanted
            return self._errors()(status, payload)

        try:
            self._call("DELETE", "/instance/logout/{instance}", on_error=mapper)
        except _AlreadyDone:
            return None

    def send(self, message: OutgoingMessage) -> Sent:
        if len(message.text) > MAX_TEXT_LENGTH or len(message.caption) > MAX_TEXT_LENGTH:
            raise MessageTooLong(f"Text longer than {MAX_TEXT_LENGTH} characters.")
        if message.template:
            raise Unsupported("Evolution (linked device) cannot send Cloud API templates.")
        number = _number(message.to)
        quoted = {"quoted": {"key": {"id": message.reply_to}}} if message.reply_to else {}
        if message.reaction_to:
            # The contract does not say whose message is reacted to: we assume theirs (the usual
            # case in a CRM), so ``fromMe`` is false and no group participant is named.
            path = "/message/sendReaction/{instance}"
            body: dict[str, Any] = {
                "key": {"remoteJid": _jid(message.to), "fromMe": False, "id": message.reaction_to},
                "reaction": message.emoji,
            }
            mapper = self._errors(sending=True)
        elif message.media_url or message.media_id or message.media_type:
            path, body = self._media_body(message, number)
            body.update(quoted)
            mapper = self._errors(sending=True, media=True)
        else:
            path = "/message/sendText/{instance}"
            body = {"number": number, "text": message.text, **quoted}
            mapper = self._errors(sending=True)
        answer = _first(self._call("POST", path, json_body=body, on_error=mapper))
        key = answer.get("key") if isinstance(answer.get("key"), dict) else {}
        if not key.get("id"):
            raise ProviderError(
                "Evolution answered without a message id.", detail=str(answer)[:300]
            )
        return Sent(
            provider_message_id=str(key["id"]), recipient_id=str(key.get("remoteJid") or "")
        )

    def _media_body(self, message: OutgoingMessage, number: str) -> tuple[str, dict[str, Any]]:
        if not message.media_url:
            raise Unsupported("Evolution sends media from a URL; it has no media ids.")
        kind = message.media_type or "document"
        if kind == "sticker":
            return "/message/sendSticker/{instance}", {
                "number": number,
                "sticker": message.media_url,
            }
        if kind not in ("image", "video", "audio", "document"):
            raise MediaRejected(f"Evolution cannot send {kind!r} media.")
        filename = message.filename or urlsplit(message.media_url).path.rsplit("/", 1)[-1]
        mime = message.mime_type or mimetypes.guess_type(filename)[0] or ""
        body = {
            "number": number,
            "mediatype": kind,
            "mimetype": mime,
            "caption": message.caption or message.text,
            "media": message.media_url,
            "fileName": filename,
        }
        return "/message/sendMedia/{instance}", body

    def mark_read(self, chat_jid: str, provider_message_ids: list[str]) -> None:
        if not provider_message_ids:
            return
        remote = _jid(chat_jid)
        body = {
            "readMessages": [
                {"remoteJid": remote, "fromMe": False, "id": message_id}
                for message_id in provider_message_ids
            ]
        }
        self._call("POST", "/chat/markMessageAsRead/{instance}", json_body=body)

    def download_media(self, media: Any) -> tuple[bytes, str]:
        """Evolution decrypts a received message's media by the message id (``Media.id``)."""
        message_id = getattr(media, "id", None)
        if not message_id:
            raise Unsupported("Evolution downloads media by message id; this media has none.")
        answer = self._call(
            "POST",
            "/chat/getBase64FromMediaMessage/{instance}",
            json_body={"message": {"key": {"id": message_id}}, "convertToMp4": False},
            max_bytes=http.MAX_MEDIA_BYTES * 4 // 3 + 65_536,
        )
        answer = _first(answer)
        try:
            content = base64.b64decode(str(answer.get("base64") or ""), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ProviderError("Evolution answered media that is not base64.") from exc
        if not content:
            raise ProviderError("Evolution answered no media for that message.")
        return content, str(answer.get("mimetype") or getattr(media, "mime_type", "") or "")

    # --- connect's helpers ------------------------------------------------------------------------
    def _ensure_instance(self, *, number: str = "") -> None:
        """Create the instance with our webhook; if it exists (or our key is the instance's own
        token, which cannot create), set the webhook on it instead."""
        if not self.instance:
            raise NotAuthorized("No Evolution instance name is configured.")
        body: dict[str, Any] = {
            "instanceName": self.instance,
            "integration": "WHATSAPP-BAILEYS",
            "qrcode": True,
        }
        if number:  # Evolution then asks WhatsApp for a pairing code along with each QR code
            body["number"] = number
        webhook = self._webhook()
        if webhook:
            body["webhook"] = webhook

        def mapper(status: int, payload: Any) -> ProviderError | None:
            if status in (403, 409) and "already in use" in _error_text(payload).lower():
                return _AlreadyDone()
            if status == 401:  # an instance token: it may still connect its own instance
                return _AlreadyDone()
            return self._errors()(status, payload)

        try:
            self._call("POST", "/instance/create", json_body=body, on_error=mapper)
            return
        except _AlreadyDone:
            pass
        if webhook:
            try:
                self._call("POST", "/webhook/set/{instance}", json_body={"webhook": webhook})
            except (NotAuthorized, NetworkError):
                raise
            except ProviderError as error:  # an older gateway with another shape: keep going
                logger.warning("evolution: could not set the webhook: %s", error.detail)

    def _webhook(self) -> dict[str, Any] | None:
        if not self.config.webhook_url:
            return None
        return {
            "enabled": True,
            "url": self.config.webhook_url,
            "byEvents": False,
            "base64": False,
            "headers": {SECRET_HEADER: self.config.webhook_secret},
            "events": list(WEBHOOK_EVENTS),
        }

    def _pairing(self, answer: Any) -> Pairing:
        answer = _first(answer)
        nested = answer.get("instance")
        if isinstance(nested, dict) and nested.get("state") == "open":
            return Pairing(state=ev.SessionState.READY, **self._identity())
        qrcode = answer.get("qrcode") if isinstance(answer.get("qrcode"), dict) else answer
        image = str(qrcode.get("base64") or "")
        if image and not image.startswith("data:"):
            image = "data:image/png;base64," + image
        return Pairing(
            state=ev.SessionState.QR,
            qr=str(qrcode.get("code") or ""),
            qr_image=image,
            pairing_code=_format_code(qrcode.get("pairingCode")),
            expires_in=QR_SECONDS,
        )

    def _identity(self) -> dict[str, Any]:
        """Phone, JID and profile name of a connected instance (best effort: {} on failure)."""
        try:
            answer = self._call(
                "GET", "/instance/fetchInstances", params={"instanceName": self.instance}
            )
        except ProviderError as error:
            logger.info("evolution: could not read the instance's identity: %s", error.code)
            return {}
        row = _first(answer)
        row = row.get("instance", row) if isinstance(row.get("instance"), dict) else row
        owner = str(row.get("ownerJid") or row.get("owner") or "")
        party = _party(owner)
        return {
            "phone_number": party.phone if party else None,
            "jid": party.jid if party else None,
            "name": str(row.get("profileName") or ""),
        }

    # --- verify -----------------------------------------------------------------------------------
    def verify(self, request: InboundRequest) -> None:
        if not secret_matches(self.config.webhook_secret, request.headers.get(SECRET_HEADER)):
            raise Forged("missing or wrong x-parley-secret")

    def scrub(self, payload: Any) -> Any:
        if isinstance(payload, dict) and "apikey" in payload:
            return {k: v for k, v in payload.items() if k != "apikey"}
        return payload

    def scrub_text(self, text: str) -> str:
        """Also the ``apikey`` value, whatever it is (an instance token Parley may never have
        been given), up to its closing quote or the end of a truncated body."""
        return APIKEY_IN_TEXT.sub(rf"\g<1>{REDACTED}", super().scrub_text(text))

    # --- translate --------------------------------------------------------------------------------
    def translate(self, payload: Any, *, suffix: str = "") -> list[ev.Event]:
        if not isinstance(payload, dict):
            return []
        name = _event_name(payload.get("event") or suffix.strip("/").rsplit("/", 1)[-1])
        handler = TRANSLATORS.get(name)
        if handler is None:
            return []
        data = payload.get("data") if "data" in payload else payload
        when = _parse_iso(payload.get("date_time")) or _now()
        try:
            return handler(data, when, payload)
        except (AttributeError, TypeError, ValueError, KeyError) as exc:
            logger.warning("evolution: could not translate %s: %s", name, type(exc).__name__)
            return []


class _AlreadyDone(ProviderError):
    """Internal: an error answer that means the thing is already as we want it."""


# --- translators ----------------------------------------------------------------------------------
Translator = Callable[[Any, dt.datetime, dict], list[ev.Event]]


def _qrcode_updated(data: Any, when: dt.datetime, envelope: dict) -> list[ev.Event]:
    if not isinstance(data, dict):
        return []
    if "qrcode" not in data and "limit" in str(data.get("message", "")).lower():
        return [ev.ConnectionChanged(state=ev.SessionState.FAILED, reason=QR_LIMIT_REASON)]
    qrcode = data.get("qrcode") if isinstance(data.get("qrcode"), dict) else data
    events: list[ev.Event] = []
    expires = when + dt.timedelta(seconds=QR_SECONDS)
    if qrcode.get("code"):
        image = str(qrcode.get("base64") or "")
        if image and not image.startswith("data:"):
            image = "data:image/png;base64," + image
        events.append(ev.QrUpdated(qr=str(qrcode["code"]), expires_at=expires, image=image))
    if qrcode.get("pairingCode"):
        events.append(
            ev.PairingCodeIssued(code=_format_code(qrcode["pairingCode"]), expires_at=expires)
        )
    return events


def _connection_update(data: Any, when: dt.datetime, envelope: dict) -> list[ev.Event]:
    if not isinstance(data, dict):
        return []
    raw_state = str(data.get("state") or data.get("connection") or "")
    state = STATES.get(raw_state)
    if state is None:
        return []
    code = _int(data.get("statusReason"))
    if state == ev.SessionState.READY:
        party = _party(str(data.get("wuid") or ""))
        return [
            ev.ConnectionChanged(
                state=state,
                phone_number=party.phone if party else None,
                jid=party.jid if party else None,
                name=str(data.get("profileName") or ""),
            )
        ]
    if state == ev.SessionState.FAILED:
        return [ev.ConnectionChanged(state=state, reason=QR_LIMIT_REASON)]
    if state == ev.SessionState.DISCONNECTED:
        if code in LOGGED_OUT_CODES:
            state = ev.SessionState.LOGGED_OUT
        reason = DISCONNECT_REASONS.get(code, f"Connection closed (code {code})." if code else "")
        if code == 200:
            reason = "Connection closed."
        return [ev.ConnectionChanged(state=state, reason=reason)]
    return [ev.ConnectionChanged(state=state)]


def _instance_gone(reason: str) -> Translator:
    def translate(data: Any, when: dt.datetime, envelope: dict) -> list[ev.Event]:
        return [ev.ConnectionChanged(state=ev.SessionState.LOGGED_OUT, reason=reason)]

    return translate


def _messages_upsert(data: Any, when: dt.datetime, envelope: dict) -> list[ev.Event]:
    items, history = _message_list(data)
    events: list[ev.Event] = []
    for item in items:
        events.extend(_message_events(item, when, history=history))
    return events


def _send_message(data: Any, when: dt.datetime, envelope: dict) -> list[ev.Event]:
    items, _ = _message_list(data)
    events: list[ev.Event] = []
    for item in items:
        if isinstance(item.get("key"), dict):
            item = {**item, "key": {**item["key"], "fromMe": True}}
        events.extend(_message_events(item, when, history=False))
    return events


def _history(data: Any, when: dt.datetime, envelope: dict) -> list[ev.Event]:
    items, _ = _message_list(data)
    messages = [
        event
        for item in items
        for event in _message_events(item, when, history=True)
        if isinstance(event, ev.MessageUpserted)
    ]
    progress = None
    for source in (data, envelope, envelope.get("extra")):
        if isinstance(source, dict) and source.get("progress") is not None:
            progress = _int(source.get("progress"))
            break
    if not messages and progress is None:
        return []
    return [ev.HistoryBatch(messages=messages, progress=progress)]


def _messages_update(data: Any, when: dt.datetime, envelope: dict) -> list[ev.Event]:
    events: list[ev.Event] = []
    for item in data if isinstance(data, list) else [data]:
        if not isinstance(item, dict):
            continue
        key = item.get("key") if isinstance(item.get("key"), dict) else item
        update = item.get("update") if isinstance(item.get("update"), dict) else item
        message_id = str(item.get("keyId") or key.get("id") or "")
        chat = str(key.get("remoteJid") or "")
        raw = update.get("status")
        if not message_id or raw is None or chat == "status@broadcast":
            continue
        stamp = _epoch(item.get("datetime")) or when
        if raw == "DELETED":
            events.append(ev.MessageRevoked(message_id, chat, stamp))
            continue
        status = DELIVERY.get(raw) if isinstance(raw, str) else DELIVERY_BY_NUMBER.get(raw)
        if status is None:
            continue  # an unknown value: ignored (statuses only move forward downstream)
        recipient = _party(
            *(str(key.get(n) or "") for n in ("participant", "participantAlt", "participantPn"))
        ) or _party(chat, str(key.get("remoteJidAlt") or ""))
        events.append(
            ev.MessageStatusChanged(
                provider_message_id=message_id,
                status=status,
                timestamp=stamp,
                chat_jid=chat,
                recipient=recipient if key.get("fromMe") else None,
                error_code="ERROR" if status == ev.DeliveryStatus.FAILED else "",
            )
        )
    return events


def _messages_edited(data: Any, when: dt.datetime, envelope: dict) -> list[ev.Event]:
    if not isinstance(data, dict):
        return []
    if isinstance(data.get("message"), dict):  # a whole WAMessage
        return _message_events(data, when, history=False)
    event = _protocol(data, "", when)
    return [event] if event else []


def _messages_delete(data: Any, when: dt.datetime, envelope: dict) -> list[ev.Event]:
    events: list[ev.Event] = []
    for item in data if isinstance(data, list) else [data]:
        if not isinstance(item, dict):
            continue
        key = item.get("key") if isinstance(item.get("key"), dict) else item
        if key.get("id"):
            events.append(ev.MessageRevoked(str(key["id"]), str(key.get("remoteJid") or ""), when))
    return events


def _contacts(data: Any, when: dt.datetime, envelope: dict) -> list[ev.Event]:
    contacts = []
    for item in data if isinstance(data, list) else [data]:
        if not isinstance(item, dict):
            continue
        jid = str(item.get("remoteJid") or item.get("id") or "")
        if not jid or jid.endswith("@g.us") or "broadcast" in jid or jid.endswith("@newsletter"):
            continue
        name = str(item.get("pushName") or item.get("name") or item.get("notify") or "")
        party = _party(jid, str(item.get("lid") or ""), str(item.get("phoneNumber") or ""))
        if party is None:
            continue
        if name in (jid.split("@")[0], party.phone):
            name = ""  # Evolution's fallback when it knows no name: the number itself
        contacts.append(_with_name(party, name))
    return [ev.ContactsUpserted(contacts=contacts)] if contacts else []


def _groups(data: Any, when: dt.datetime, envelope: dict) -> list[ev.Event]:
    groups = []
    for item in data if isinstance(data, list) else [data]:
        if not isinstance(item, dict) or not str(item.get("id") or "").endswith("@g.us"):
            continue
        if "subject" not in item and "participants" not in item:
            continue  # a partial update that says nothing we keep
        participants = []
        for member in item.get("participants") or []:
            if isinstance(member, dict):
                party = _party(
                    str(member.get("id") or ""),
                    str(member.get("lid") or ""),
                    str(member.get("phoneNumber") or member.get("jid") or ""),
                )
            else:
                party = _party(str(member))
            if party:
                participants.append(party)
        groups.append(
            ev.Group(
                jid=str(item["id"]), name=str(item.get("subject") or ""), participants=participants
            )
        )
    return [ev.GroupsUpdated(groups=groups)] if groups else []


TRANSLATORS: dict[str, Translator] = {
    "QRCODE_UPDATED": _qrcode_updated,
    "CONNECTION_UPDATE": _connection_update,
    "LOGOUT_INSTANCE": _instance_gone("Logged out at the gateway."),
    "REMOVE_INSTANCE": _instance_gone("The instance was deleted at the gateway."),
    "MESSAGES_UPSERT": _messages_upsert,
    "SEND_MESSAGE": _send_message,
    "MESSAGES_UPDATE": _messages_update,
    "MESSAGES_EDITED": _messages_edited,
    "MESSAGES_DELETE": _messages_delete,
    "CONTACTS_UPSERT": _contacts,
    "CONTACTS_UPDATE": _contacts,
    "GROUPS_UPSERT": _groups,
    "GROUPS_UPDATE": _groups,
    "MESSAGING_HISTORY_SET": _history,
    "MESSAGES_SET": _history,
}


# --- one message ----------------------------------------------------------------------------------
def _message_list(data: Any) -> tuple[list[dict], bool]:
    """The messages of an upsert and whether they are history: ``data`` is one message, a list
    of them, or Baileys' ``{messages: [...], type: "notify" | "append"}``."""
    if isinstance(data, list):
        return [m for m in data if isinstance(m, dict)], False
    if not isinstance(data, dict):
        return [], False
    history = data.get("type") == "append"
    if isinstance(data.get("messages"), list):
        return [m for m in data["messages"] if isinstance(m, dict)], history
    return ([data], history) if isinstance(data.get("key"), dict) else ([], False)


def _message_events(item: dict, when: dt.datetime, *, history: bool) -> list[ev.Event]:
    key = item.get("key")
    message = item.get("message")
    if not isinstance(key, dict) or not key.get("id") or not isinstance(message, dict):
        return []
    chat = str(key.get("remoteJid") or "")
    if not chat or chat == "status@broadcast":
        return []
    from_me = bool(key.get("fromMe"))
    stamp = _epoch(item.get("messageTimestamp")) or when
    message = _unwrap(message)
    sender = None if from_me else _sender(key, item, chat)

    if isinstance(message.get("protocolMessage"), dict):
        event = _protocol(message["protocolMessage"], chat, stamp)
        return [event] if event else []
    edited = message.get("editedMessage")
    if isinstance(edited, dict):
        inner = edited.get("message") if isinstance(edited.get("message"), dict) else edited
        protocol = inner.get("protocolMessage")
        event = _protocol(protocol, chat, stamp) if isinstance(protocol, dict) else None
        return [event] if event else []
    reaction = message.get("reactionMessage")
    if isinstance(reaction, dict):
        target = reaction.get("key") if isinstance(reaction.get("key"), dict) else {}
        return [
            ev.ReactionReceived(
                provider_message_id=str(target.get("id") or ""),
                chat_jid=chat,
                emoji=str(reaction.get("text") or ""),
                timestamp=_epoch(reaction.get("senderTimestampMs"), millis=True) or stamp,
                sender=sender,
                from_me=from_me,
            )
        ]

    fields = _content(message)
    if fields is None:
        return []
    return [
        ev.MessageUpserted(
            provider_message_id=str(key["id"]),
            chat_jid=chat,
            from_me=from_me,
            timestamp=stamp,
            sender=sender,
            chat_is_group=chat.endswith("@g.us"),
            history=history,
            raw=item,
            **fields,
        )
    ]


def _content(message: dict) -> dict[str, Any] | None:
    """The MessageUpserted fields of a (non-protocol, non-reaction) message body."""
    if "conversation" in message:
        return {"type": ev.MessageType.TEXT, "body": str(message.get("conversation") or "")}
    text = message.get("extendedTextMessage")
    if isinstance(text, dict):
        return {"type": ev.MessageType.TEXT, "body": str(text.get("text") or ""), **_context(text)}
    for name, kind in MEDIA_TYPES.items():
        media = message.get(name)
        if not isinstance(media, dict):
            continue
        if kind == ev.MessageType.AUDIO and media.get("ptt"):
            kind = ev.MessageType.VOICE
        return {
            "type": kind,
            "caption": str(media.get("caption") or ""),
            "media": ev.Media(
                url=str(message.get("mediaUrl") or media.get("url") or "") or None,
                mime_type=str(media.get("mimetype") or ""),
                filename=str(media.get("fileName") or ""),
                sha256=str(media.get("fileSha256") or ""),
                size=_int(media.get("fileLength")),
            ),
            **_context(media),
        }
    location = message.get("locationMessage") or message.get("liveLocationMessage")
    if isinstance(location, dict):
        return {
            "type": ev.MessageType.LOCATION,
            "location": {
                "latitude": location.get("degreesLatitude"),
                "longitude": location.get("degreesLongitude"),
                "name": str(location.get("name") or ""),
                "address": str(location.get("address") or ""),
            },
            **_context(location),
        }
    cards = []
    if isinstance(message.get("contactMessage"), dict):
        cards = [message["contactMessage"]]
    elif isinstance(message.get("contactsArrayMessage"), dict):
        cards = list(message["contactsArrayMessage"].get("contacts") or [])
    if cards:
        return {
            "type": ev.MessageType.CONTACT,
            "contacts": [
                {"name": str(c.get("displayName") or ""), "vcard": str(c.get("vcard") or "")}
                for c in cards
                if isinstance(c, dict)
            ],
        }
    interactive = _interactive(message)
    if interactive:
        return {
            "type": ev.MessageType.INTERACTIVE,
            "interactive": interactive,
            "body": interactive["title"],
        }
    if any(isinstance(v, dict) for k, v in message.items() if k != "messageContextInfo"):
        return {"type": ev.MessageType.OTHER}
    return None  # only metadata (a key-distribution stub): nothing to show


def _interactive(message: dict) -> dict | None:
    button = message.get("buttonsResponseMessage")
    if isinstance(button, dict):
        return {
            "type": "button",
            "id": str(button.get("selectedButtonId") or ""),
            "title": str(button.get("selectedDisplayText") or ""),
        }
    row = message.get("listResponseMessage")
    if isinstance(row, dict):
        reply = (
            row.get("singleSelectReply") if isinstance(row.get("singleSelectReply"), dict) else {}
        )
        return {
            "type": "list",
            "id": str(reply.get("selectedRowId") or ""),
            "title": str(row.get("title") or ""),
        }
    template = message.get("templateButtonReplyMessage")
    if isinstance(template, dict):
        return {
            "type": "button",
            "id": str(template.get("selectedId") or ""),
            "title": str(template.get("selectedDisplayText") or ""),
        }
    return None


def _context(part: dict) -> dict[str, Any]:
    info = part.get("contextInfo") if isinstance(part.get("contextInfo"), dict) else {}
    fields: dict[str, Any] = {}
    if info.get("stanzaId"):
        fields["quoted_id"] = str(info["stanzaId"])
    if info.get("isForwarded"):
        fields["forwarded"] = True
    return fields


def _protocol(protocol: dict, chat: str, when: dt.datetime) -> ev.Event | None:
    """A protocolMessage: a revoke or an edit of the message its ``key`` names."""
    target = protocol.get("key") if isinstance(protocol.get("key"), dict) else {}
    message_id = str(target.get("id") or "")
    chat = str(target.get("remoteJid") or chat)
    if not message_id:
        return None
    stamp = _epoch(protocol.get("timestampMs"), millis=True) or when
    kind = protocol.get("type")
    if kind in REVOKE:
        return ev.MessageRevoked(message_id, chat, stamp)
    edited = protocol.get("editedMessage")
    if kind in MESSAGE_EDIT or isinstance(edited, dict):
        body = _content(_unwrap(edited)) if isinstance(edited, dict) else None
        text = (body or {}).get("body") or (body or {}).get("caption") or ""
        return ev.MessageEdited(message_id, chat, str(text), stamp)
    return None


def _unwrap(message: dict) -> dict:
    for _ in range(3):
        for name in WRAPPERS:
            inner = message.get(name)
            if isinstance(inner, dict) and isinstance(inner.get("message"), dict):
                message = inner["message"]
                break
        else:
            return message
    return message


def _sender(key: dict, item: dict, chat: str) -> ev.Party | None:
    name = str(item.get("pushName") or "")
    if chat.endswith("@g.us"):  # the sender is the participant, under any of its addresses
        names = ("participant", "participantAlt", "participantPn", "senderPn", "participantLid")
        ids = [key.get(n) for n in names] + [item.get("participant"), key.get("senderLid")]
    else:
        ids = [chat, key.get("senderPn"), key.get("remoteJidAlt"), key.get("senderLid")]
    party = _party(*(str(value or "") for value in ids))
    return _with_name(party, name) if party else None


# --- small helpers --------------------------------------------------------------------------------
def _party(*ids: str) -> ev.Party | None:
    """A Party from any mix of a phone JID, a ``@lid`` and bare digits (first of each wins)."""
    jid = lid = phone = None
    for value in ids:
        value = (value or "").strip()
        if not value:
            continue
        user, _, server = value.partition("@")
        user = user.split(":", 1)[0]  # a device suffix ("8529…:12@s.whatsapp.net")
        if server == "lid":
            lid = lid or f"{user}@lid"
        elif server in ("s.whatsapp.net", "c.us"):
            jid = jid or f"{user}@s.whatsapp.net"
            phone = phone or (user if user.isdigit() else None)
        elif not server and _digits(user) == user.lstrip("+"):
            phone = phone or _digits(user)
            jid = jid or f"{phone}@s.whatsapp.net"
    if not (jid or lid or phone):
        return None
    return ev.Party(phone=phone, jid=jid, lid=lid)


def _with_name(party: ev.Party, name: str) -> ev.Party:
    return ev.Party(phone=party.phone, jid=party.jid, lid=party.lid, name=name)


def _event_name(value: Any) -> str:
    return re.sub(r"[.\-]", "_", str(value or "")).upper()


def _first(answer: Any) -> dict:
    """Evolution sometimes wraps an object in a list (issue #2197)."""
    if isinstance(answer, list):
        answer = answer[0] if answer else {}
    return answer if isinstance(answer, dict) else {}


def _digits(value: Any) -> str:
    return "".join(ch for ch in str(value or "") if ch.isdigit())


def _number(to: str) -> str:
    """What Evolution's ``number`` takes: a JID as is, else the digits."""
    return to.strip() if "@" in to else _digits(to)


def _jid(to: str) -> str:
    return to.strip() if "@" in to else f"{_digits(to)}@s.whatsapp.net"


def _format_code(code: Any) -> str:
    code = str(code or "").strip()
    return f"{code[:4]}-{code[4:]}" if len(code) == 8 and "-" not in code else code


def _int(value: Any) -> int | None:
    if isinstance(value, dict) and "low" in value:  # a protobuf Long serialized as JSON
        return (int(value.get("high") or 0) << 32) + (int(value["low"]) & 0xFFFFFFFF)
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _epoch(value: Any, *, millis: bool = False) -> dt.datetime | None:
    number = _int(value)
    if not number or number < 0:
        return None
    if millis or number > 10**11:  # milliseconds
        number = number // 1000
    try:
        return dt.datetime.fromtimestamp(number, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _parse_iso(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _now() -> dt.datetime:
    return dt.datetime.now(tz=dt.UTC)


def _error_text(payload: Any) -> str:
    """The words of an Evolution error body ``{status, error, response: {message: [...]}}``."""
    if not isinstance(payload, dict | list):
        return ""
    parts: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for name in ("message", "error", "response"):
                if name in value:
                    walk(value[name])

    walk(payload)
    return "; ".join(parts)


def _not_on_whatsapp(payload: Any) -> bool:
    """Evolution's answer for a number without WhatsApp: ``[{jid, exists: false, number}]``."""
    found = False

    def walk(value: Any) -> None:
        nonlocal found
        if isinstance(value, dict):
            if value.get("exists") is False:
                found = True
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(payload)
    return found or "not on whatsapp" in _error_text(payload).lower()


def _retry_after(payload: Any) -> float | None:
    if isinstance(payload, dict):
        for name in ("retryAfter", "retry_after"):
            number = _int(payload.get(name))
            if number is not None:
                return float(number)
    return None


PROVIDER = EvolutionProvider
