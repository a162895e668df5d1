"""A loopback Evolution API v2 gateway speaking its REST wire format.

State it keeps, guarded by ``server.lock``: the global ``apikey`` it accepts (``GLOBAL_KEY``) and,
per instance (``instances``), its token (also accepted for that instance's routes), its connection
state (``close`` / ``connecting`` / ``open`` / ``refused``), the webhook configured on it, the QR
codes and pairing codes it issued, and who it is paired as once ``scan()`` opened it. Numbers in
``unregistered`` are not on WhatsApp. What it was asked to do lands in ``sent`` (every message
send, with its route and body), ``reads`` and ``media`` (message id → content, mime type, which
``getBase64FromMediaMessage`` serves).

Shapes follow the fixtures in ``fixtures/evolution/``: ``/instance/create`` answers like the real
v2 response (``hash`` a string) or, with ``hash_style = "object"``, like the openapi example
(``hash: {apikey}``); ``/instance/connect`` answers ``{pairingCode, code, base64, count}``, wrapped
in a list when ``wrap_connect`` is set (issue #2197); errors are NestJS-shaped
``{status, error, response: {message: [...]}}``, a number without WhatsApp answering 400 with
``[{jid, exists: false, number}]``. ``business = True`` makes it refuse pairing codes (no
``pairingCode``), as WhatsApp Business accounts do.
"""

from __future__ import annotations

import base64
import io
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import segno

from tests.support.provider_server import ProviderRequest, ProviderServer, Response

GLOBAL_KEY = "evolution-global-key"
NAME = r"(?P<name>[^/]+)"
MEDIA_TYPES = {"image", "video", "audio", "document"}


@dataclass
class Instance:
    name: str
    token: str = field(default_factory=lambda: str(uuid.uuid4()).upper())
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    state: str = "close"
    webhook: dict[str, Any] | None = None
    number: str = ""
    qr_count: int = 0
    qr_codes: list[str] = field(default_factory=list)
    pairing_codes: list[str] = field(default_factory=list)
    owner_jid: str = ""
    profile_name: str = ""


def failure(status: int, error: str, message: Any) -> Response:
    messages = message if isinstance(message, list) else [message]
    return status, {}, {"status": status, "error": error, "response": {"message": messages}}


def qr_data_uri(text: str) -> str:
    buffer = io.BytesIO()
    segno.make(text, error="l").save(buffer, kind="png", scale=3)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def message_id() -> str:
    return "BAE5" + secrets.token_hex(6).upper()


class EvolutionServer(ProviderServer):
    routes = {
        ("POST", r"/instance/create"): "create",
        ("GET", rf"/instance/connect/{NAME}"): "connect",
        ("GET", rf"/instance/connectionState/{NAME}"): "connection_state",
        ("GET", r"/instance/fetchInstances"): "fetch_instances",
        ("DELETE", rf"/instance/logout/{NAME}"): "logout",
        ("POST", rf"/webhook/set/{NAME}"): "set_webhook",
        ("POST", rf"/message/sendText/{NAME}"): "send_text",
        ("POST", rf"/message/sendMedia/{NAME}"): "send_media",
        ("POST", rf"/message/sendSticker/{NAME}"): "send_sticker",
        ("POST", rf"/message/sendReaction/{NAME}"): "send_reaction",
        ("POST", rf"/chat/markMessageAsRead/{NAME}"): "mark_read",
        ("POST", rf"/chat/getBase64FromMediaMessage/{NAME}"): "media_base64",
    }

    def __init__(self, routes=None) -> None:
        super().__init__(routes)
        self.api_key = GLOBAL_KEY
        self.instances: dict[str, Instance] = {}
        self.unregistered: set[str] = set()
        self.sent: list[dict[str, Any]] = []
        self.reads: list[dict[str, Any]] = []
        self.media: dict[str, tuple[bytes, str]] = {}
        self.hash_style = "string"
        self.wrap_connect = False
        self.business = False

    # --- what a test does to the gateway ---------------------------------------------------------
    def add_instance(self, name: str, *, state: str = "close") -> Instance:
        with self.lock:
            instance = self.instances[name] = Instance(name=name, state=state)
            return instance

    def scan(self, name: str, *, phone: str = "85291234567", profile_name: str = "Parley HK"):
        """The phone scanned the QR code: the instance is open, paired as ``phone``."""
        with self.lock:
            instance = self.instances[name]
            instance.state = "open"
            instance.owner_jid = f"{phone}@s.whatsapp.net"
            instance.profile_name = profile_name

    # --- guards ---------------------------------------------------------------------------------
    def _instance(self, request: ProviderRequest) -> tuple[Instance | None, Response | None]:
        """Evolution checks that the instance exists before it checks the key."""
        name = unquote(request.groups["name"])
        with self.lock:
            instance = self.instances.get(name)
        if instance is None:
            return None, failure(404, "Not Found", f'The "{name}" instance does not exist')
        key = request.headers.get("apikey")
        if key not in (self.api_key, instance.token):
            return None, failure(401, "Unauthorized", "Unauthorized")
        return instance, None

    # --- instance -------------------------------------------------------------------------------
    def create(self, request: ProviderRequest) -> Response:
        if request.headers.get("apikey") != self.api_key:
            return failure(401, "Unauthorized", "Unauthorized")
        body = request.json or {}
        name = str(body.get("instanceName") or "")
        if not name:
            return failure(400, "Bad Request", "instanceName is required")
        if body.get("integration") not in ("WHATSAPP-BAILEYS", "WHATSAPP-BUSINESS", None):
            return failure(400, "Bad Request", "Invalid integration")
        with self.lock:
            if name in self.instances:
                return failure(403, "Forbidden", f'This name "{name}" is already in use.')
            instance = self.instances[name] = Instance(name=name, state="connecting")
            instance.webhook = body.get("webhook")
            instance.number = str(body.get("number") or "")
        answer: dict[str, Any] = {
            "instance": {
                "instanceName": name,
                "instanceId": instance.id,
                "integration": "WHATSAPP-BAILEYS",
                "webhookWaBusiness": None,
                "accessTokenWaBusiness": "",
                "status": "connecting",
            },
            "hash": instance.token if self.hash_style == "string" else {"apikey": instance.token},
            "webhook": instance.webhook or {},
            "websocket": {},
            "rabbitmq": {},
            "sqs": {},
            "settings": {
                "rejectCall": False,
                "msgCall": "",
                "groupsIgnore": False,
                "alwaysOnline": False,
                "readMessages": False,
                "readStatus": False,
                "syncFullHistory": False,
                "wavoipToken": "",
            },
            "qrcode": {"count": 0},
        }
        return 201, {}, answer

    def connect(self, request: ProviderRequest) -> Response:
        instance, refused = self._instance(request)
        if refused:
            return refused
        number = (request.query.get("number") or [""])[-1] or instance.number
        with self.lock:
            if instance.state == "open":
                return 200, {}, {"instance": {"instanceName": instance.name, "state": "open"}}
            instance.state = "connecting"
            instance.qr_count += 1
            code = f"2@{secrets.token_urlsafe(24)},{secrets.token_urlsafe(16)},{instance.id}"
            instance.qr_codes.append(code)
            pairing = None
            if number and not self.business:
                pairing = secrets.token_hex(4).upper()
                instance.pairing_codes.append(pairing)
            answer = {
                "pairingCode": pairing,
                "code": code,
                "base64": qr_data_uri(code),
                "count": instance.qr_count,
            }
        return 200, {}, [answer] if self.wrap_connect else answer

    def connection_state(self, request: ProviderRequest) -> Response:
        instance, refused = self._instance(request)
        if refused:
            return refused
        return 200, {}, {"instance": {"instanceName": instance.name, "state": instance.state}}

    def fetch_instances(self, request: ProviderRequest) -> Response:
        key = request.headers.get("apikey")
        wanted = (request.query.get("instanceName") or [""])[-1]
        with self.lock:
            rows = [
                {
                    "id": i.id,
                    "name": i.name,
                    "connectionStatus": i.state,
                    "ownerJid": i.owner_jid or None,
                    "profileName": i.profile_name or None,
                    "profilePicUrl": None,
                    "integration": "WHATSAPP-BAILEYS",
                    "number": i.number or None,
                    "token": i.token,
                }
                for i in self.instances.values()
                if (not wanted or i.name == wanted) and key in (self.api_key, i.token)
            ]
        if not rows and key != self.api_key:
            return failure(401, "Unauthorized", "Unauthorized")
        return 200, {}, rows

    def logout(self, request: ProviderRequest) -> Response:
        instance, refused = self._instance(request)
        if refused:
            return refused
        with self.lock:
            if instance.state == "close":
                return failure(
                    400, "Bad Request", f'The "{instance.name}" instance is not connected'
                )
            instance.state = "close"
            instance.owner_jid = instance.profile_name = ""
        return (
            200,
            {},
            {"status": "SUCCESS", "error": False, "response": {"message": "Instance logged out"}},
        )

    def set_webhook(self, request: ProviderRequest) -> Response:
        instance, refused = self._instance(request)
        if refused:
            return refused
        webhook = (request.json or {}).get("webhook")
        if not isinstance(webhook, dict) or not webhook.get("url"):
            return failure(400, "Bad Request", 'Invalid "url" property')
        with self.lock:
            instance.webhook = webhook
        return (
            201,
            {},
            {
                "id": str(uuid.uuid4()),
                "url": webhook["url"],
                "headers": webhook.get("headers") or {},
                "enabled": bool(webhook.get("enabled")),
                "events": webhook.get("events") or [],
                "webhookByEvents": bool(webhook.get("byEvents")),
                "webhookBase64": bool(webhook.get("base64")),
                "instanceId": instance.id,
            },
        )

    # --- messages -------------------------------------------------------------------------------
    def _recipient(self, number: str) -> tuple[str | None, Response | None]:
        """The JID Evolution would send to, or its 400 for a number not on WhatsApp."""
        if "@" in number:
            return number, None
        digits = "".join(ch for ch in number if ch.isdigit())
        jid = f"{digits}@s.whatsapp.net"
        if not digits or digits in self.unregistered:
            return None, failure(
                400, "Bad Request", [{"jid": jid, "exists": False, "number": number}]
            )
        return jid, None

    def _sent(self, request: ProviderRequest, jid: str, message: dict[str, Any]) -> Response:
        key = {"remoteJid": jid, "fromMe": True, "id": message_id()}
        answer = {
            "key": key,
            "pushName": "",
            "message": message,
            "messageTimestamp": str(int(time.time())),
            "status": "PENDING",
        }
        with self.lock:
            self.sent.append({"route": request.path, "body": request.json, "answer": answer})
        return 201, {}, answer

    def send_text(self, request: ProviderRequest) -> Response:
        _, refused = self._instance(request)
        if refused:
            return refused
        body = request.json or {}
        if not body.get("number") or not isinstance(body.get("text"), str) or not body["text"]:
            return failure(400, "Bad Request", "number and text are required")
        jid, refused = self._recipient(str(body["number"]))
        if refused:
            return refused
        return self._sent(request, jid, {"extendedTextMessage": {"text": body["text"]}})

    def send_media(self, request: ProviderRequest) -> Response:
        _, refused = self._instance(request)
        if refused:
            return refused
        body = request.json or {}
        if body.get("mediatype") not in MEDIA_TYPES:
            return failure(400, "Bad Request", "mediatype must be image, video, audio or document")
        if not body.get("media"):
            return failure(400, "Bad Request", "Owned media must be a url or base64")
        jid, refused = self._recipient(str(body.get("number") or ""))
        if refused:
            return refused
        part = {
            "url": "https://mmg.whatsapp.net/o1/v/t62.7118-24/f1/m232/up-oil",
            "mimetype": body.get("mimetype") or "application/octet-stream",
            "caption": body.get("caption") or "",
            "fileName": body.get("fileName") or "",
            "fileLength": "1305757",
        }
        return self._sent(request, jid, {f"{body['mediatype']}Message": part})

    def send_sticker(self, request: ProviderRequest) -> Response:
        _, refused = self._instance(request)
        if refused:
            return refused
        body = request.json or {}
        if not body.get("sticker"):
            return failure(400, "Bad Request", "sticker is required")
        jid, refused = self._recipient(str(body.get("number") or ""))
        if refused:
            return refused
        return self._sent(request, jid, {"stickerMessage": {"mimetype": "image/webp"}})

    def send_reaction(self, request: ProviderRequest) -> Response:
        _, refused = self._instance(request)
        if refused:
            return refused
        body = request.json or {}
        key = body.get("key")
        if not isinstance(key, dict) or not key.get("id") or not key.get("remoteJid"):
            return failure(400, "Bad Request", "key.id and key.remoteJid are required")
        if not isinstance(body.get("reaction"), str):
            return failure(400, "Bad Request", "reaction is required")
        return self._sent(
            request, key["remoteJid"], {"reactionMessage": {"key": key, "text": body["reaction"]}}
        )

    def mark_read(self, request: ProviderRequest) -> Response:
        _, refused = self._instance(request)
        if refused:
            return refused
        items = (request.json or {}).get("readMessages")
        if not isinstance(items, list) or not items:
            return failure(400, "Bad Request", "readMessages is required")
        with self.lock:
            self.reads.extend(items)
        return 201, {}, {"message": "Read messages", "read": "success"}

    def media_base64(self, request: ProviderRequest) -> Response:
        _, refused = self._instance(request)
        if refused:
            return refused
        key = ((request.json or {}).get("message") or {}).get("key") or {}
        with self.lock:
            stored = self.media.get(str(key.get("id") or ""))
        if stored is None:
            return failure(400, "Bad Request", "Message not found")
        content, mime = stored
        return (
            201,
            {},
            {
                "mediaType": "imageMessage",
                "fileName": "file",
                "caption": "",
                "size": {"fileLength": str(len(content))},
                "mimetype": mime,
                "base64": base64.b64encode(content).decode(),
                "buffer": None,
            },
        )
