"""A loopback GOWA (go-whatsapp-web-multidevice) gateway speaking its REST wire format.

State it keeps, guarded by ``server.lock``: the Basic auth user it accepts, whether a phone is
paired / the socket connected / the session logged in (``scan()``, ``drop()``), the QR PNGs it
issued (served at their ``qr_link``), pairing codes, numbers that are not on WhatsApp
(``unregistered``), media files it serves under ``/statics/media/``, and what it was asked to do:
``sent`` (text), ``uploads`` (multipart media sends, fields and files), ``reactions``, ``reads``.

Answers follow GOWA's ``{status, code, message, results}`` envelope; errors keep it with codes
such as ``ALREADY_LOGGED_IN``, ``VALIDATION_ERROR``, ``INVALID_JID`` and ``AUTHENTICATION_ERROR``
(GOWA's ``MustLogin`` answers 401 when the WhatsApp session is not logged in). A wrong Basic auth
user gets fiber's plain-text ``401 Unauthorized``.
"""

from __future__ import annotations

import base64
import email.policy
import hashlib
import hmac
import io
import json
import secrets
import uuid
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qs

import segno

from tests.support.provider_server import ProviderRequest, ProviderServer, Response

USERNAME = "parley"
PASSWORD = "gateway-password"
MEDIA_FIELDS = {
    "/send/image": "image",
    "/send/video": "video",
    "/send/file": "file",
    "/send/audio": "audio",
    "/send/sticker": "sticker",
}


def ok(results: Any, message: str = "Success") -> Response:
    return 200, {}, {"status": 200, "code": "SUCCESS", "message": message, "results": results}


def error(status: int, code: str, message: str) -> Response:
    return status, {}, {"status": status, "code": code, "message": message, "results": None}


def qr_png(text: str) -> bytes:
    """A real QR code PNG for ``text`` (what GOWA renders for its login)."""
    buffer = io.BytesIO()
    segno.make(text, error="l").save(buffer, kind="png", scale=4)
    return buffer.getvalue()


def parse_form(request: ProviderRequest) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    """``(fields, files)`` of a multipart, urlencoded or JSON body."""
    content_type = request.headers.get("Content-Type", "")
    fields: dict[str, str] = {}
    files: dict[str, tuple[str, bytes]] = {}
    if content_type.startswith("multipart/form-data"):
        head = f"Content-Type: {content_type}\r\n\r\n".encode()
        message = BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            content = part.get_payload(decode=True) or b""
            filename = part.get_filename()
            if filename is None:
                fields[name] = content.decode()
            else:
                files[name] = (filename, content)
    elif content_type.startswith("application/x-www-form-urlencoded"):
        fields = {k: v[-1] for k, v in parse_qs(request.body.decode()).items()}
    elif isinstance(request.json, dict):
        fields = {k: v for k, v in request.json.items() if isinstance(v, str)}
    return fields, files


class GowaServer(ProviderServer):
    routes = {
        ("GET", r"/app/login"): "login",
        ("GET", r"/app/login-with-code"): "login_with_code",
        ("GET", r"/app/status"): "status",
        ("GET", r"/app/reconnect"): "reconnect",
        ("GET", r"/app/logout"): "logout",
        ("GET", r"/statics/images/qrcode/(?P<name>scan-qr-[0-9a-f-]+\.png)"): "qr_image",
        ("GET", r"/statics/media/(?P<name>[^/]+)"): "media_file",
        ("POST", r"/send/message"): "send_message",
        ("POST", r"/send/(?:image|video|file|audio|sticker)"): "send_media",
        ("POST", r"/message/(?P<message_id>[^/]+)/reaction"): "react",
        ("POST", r"/message/(?P<message_id>[^/]+)/read"): "read",
    }

    def __init__(
        self,
        *,
        username: str = USERNAME,
        password: str = PASSWORD,
        phone: str = "628111222333",
        qr_duration: int = 30,
    ) -> None:
        super().__init__()
        self.username = username
        self.password = password
        self.phone = phone
        self.qr_duration = qr_duration
        self.link_host: str | None = None  # build qr_link with this host instead of Host
        self.paired = False
        self.connected = False
        self.logged_in = False
        self.qr_codes: dict[str, bytes] = {}
        self.pair_codes: list[tuple[str, str]] = []
        self.unregistered: set[str] = set()
        self.media: dict[str, tuple[bytes, str]] = {}
        self.sent: list[dict[str, Any]] = []
        self.uploads: list[dict[str, Any]] = []
        self.reactions: list[dict[str, Any]] = []
        self.reads: list[dict[str, Any]] = []

    # --- the phone's side ---------------------------------------------------------------------
    @property
    def device_jid(self) -> str:
        return f"{self.phone}:12@s.whatsapp.net" if self.paired else ""

    def scan(self) -> None:
        """The phone scans the QR (or enters the code): paired, connected, logged in."""
        with self.lock:
            self.paired = self.connected = self.logged_in = True

    def drop(self) -> None:
        """The WhatsApp socket goes down; the pairing stays."""
        with self.lock:
            self.connected = self.logged_in = False

    def serve_media(self, name: str, content: bytes, mime: str) -> str:
        """Serve ``content`` as GOWA's auto-download does; returns its ``statics/media`` path."""
        with self.lock:
            self.media[name] = (content, mime)
        return f"statics/media/{name}"

    # --- Basic auth on every route -----------------------------------------------------------
    def resolve(self, method: str, path: str):
        found = super().resolve(method, path)
        if found is None:
            return None
        key, handler, match = found
        return key, self._guarded(handler), match

    def _guarded(self, handler):
        def guarded(request: ProviderRequest) -> Response:
            if not self._authorized(request.headers.get("Authorization", "")):
                return 401, {"WWW-Authenticate": 'Basic realm="Restricted"'}, "Unauthorized"
            return handler(request)

        return guarded

    def _authorized(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(token).decode()
        except ValueError:
            return False
        return secrets.compare_digest(given, f"{self.username}:{self.password}")

    def _must_login(self) -> Response | None:
        if not self.connected:
            return error(
                401,
                "AUTHENTICATION_ERROR",
                "you are not connect to services server, please login",
            )
        if not self.logged_in:
            return error(
                401, "AUTHENTICATION_ERROR", "you are not login to services server, please login"
            )
        return None

    def _recipient(self, phone: str) -> Response | None:
        if not phone:
            return error(400, "VALIDATION_ERROR", "phone: cannot be blank.")
        user = phone.split("@")[0]
        if user in self.unregistered:
            return error(400, "INVALID_JID", "user is not registered")
        return None

    @staticmethod
    def _new_id() -> str:
        return "3EB0" + secrets.token_hex(9).upper()

    # --- app ----------------------------------------------------------------------------------
    def login(self, request: ProviderRequest) -> Response:
        with self.lock:
            if self.logged_in:
                return error(400, "ALREADY_LOGGED_IN", "You already logged in :)")
            name = f"scan-qr-{uuid.uuid4()}.png"
            self.qr_codes[name] = qr_png(f"2@{secrets.token_urlsafe(24)},{name}")
            self.connected = True  # the socket is open, waiting for the scan
        host = self.link_host or request.headers.get("Host", "")
        return ok(
            {
                "qr_link": f"http://{host}/statics/images/qrcode/{name}",
                "qr_duration": self.qr_duration,
            },
            "Login success",
        )

    def qr_image(self, request: ProviderRequest) -> Response:
        with self.lock:
            png = self.qr_codes.get(request.groups["name"])
        if png is None:
            return 404, {}, "Cannot GET " + request.path
        return 200, {"Content-Type": "image/png"}, png

    def login_with_code(self, request: ProviderRequest) -> Response:
        phone = (request.query.get("phone") or [""])[-1]
        with self.lock:
            if self.logged_in:
                return error(400, "ALREADY_LOGGED_IN", "You already logged in :)")
            if not phone.isdigit():
                return error(400, "VALIDATION_ERROR", "phone: must be a valid phone number.")
            code = f"{secrets.token_hex(2).upper()}-{secrets.token_hex(2).upper()}"
            self.pair_codes.append((phone, code))
            self.connected = True
        return ok({"pair_code": code}, "Login with code success")

    def status(self, request: ProviderRequest) -> Response:
        with self.lock:
            results = {
                "is_connected": self.connected,
                "is_logged_in": self.logged_in,
                "device_id": self.device_jid,
            }
        return ok(results, "Connection status retrieved")

    def reconnect(self, request: ProviderRequest) -> Response:
        with self.lock:
            self.connected = True
            self.logged_in = self.paired
        return ok(None, "Reconnect success")

    def logout(self, request: ProviderRequest) -> Response:
        with self.lock:
            self.paired = self.connected = self.logged_in = False
            self.qr_codes.clear()
        return ok(None, "Success logout")

    def media_file(self, request: ProviderRequest) -> Response:
        with self.lock:
            found = self.media.get(request.groups["name"])
        if found is None:
            return 404, {}, "Cannot GET " + request.path
        content, mime = found
        return 200, {"Content-Type": mime}, content

    # --- send ---------------------------------------------------------------------------------
    def send_message(self, request: ProviderRequest) -> Response:
        fields, _ = parse_form(request)
        phone, text = fields.get("phone", ""), fields.get("message", "")
        with self.lock:
            refusal = self._must_login() or self._recipient(phone)
            if refusal:
                return refusal
            if not text:
                return error(400, "VALIDATION_ERROR", "message: cannot be blank.")
            message_id = self._new_id()
            self.sent.append({**fields, "message_id": message_id})
        return ok(
            {"message_id": message_id, "status": f"Message sent to {phone} (server timestamp)"},
            f"Message sent to {phone}",
        )

    def send_media(self, request: ProviderRequest) -> Response:
        fields, files = parse_form(request)
        kind = MEDIA_FIELDS[request.path]
        url = fields.get(f"{kind}_url", "")
        with self.lock:
            refusal = self._must_login() or self._recipient(fields.get("phone", ""))
            if refusal:
                return refusal
            if kind not in files and not url:
                return error(400, "VALIDATION_ERROR", f"{kind}: {kind} or {kind}_url is required")
            if url and not url.startswith(("http://", "https://")):
                return error(400, "VALIDATION_ERROR", f"{kind}_url: must be a valid URL.")
            message_id = self._new_id()
            self.uploads.append(
                {
                    "route": request.path,
                    "content_type": request.headers.get("Content-Type", ""),
                    "fields": fields,
                    "files": files,
                    "message_id": message_id,
                }
            )
        return ok({"message_id": message_id, "status": "Message sent"}, "Message sent")

    def react(self, request: ProviderRequest) -> Response:
        body = request.json if isinstance(request.json, dict) else {}
        with self.lock:
            refusal = self._must_login() or self._recipient(str(body.get("phone") or ""))
            if refusal:
                return refusal
            message_id = self._new_id()
            self.reactions.append(
                {"target": request.groups["message_id"], **body, "message_id": message_id}
            )
        return ok({"message_id": message_id, "status": "Reaction sent"}, "Reaction sent")

    def read(self, request: ProviderRequest) -> Response:
        body = request.json if isinstance(request.json, dict) else {}
        with self.lock:
            refusal = self._must_login() or self._recipient(str(body.get("phone") or ""))
            if refusal:
                return refusal
            self.reads.append({"message_id": request.groups["message_id"], **body})
        return ok(
            {"message_id": request.groups["message_id"], "status": "Message marked as read"},
            "Message marked as read",
        )


def signed(body: Any, secret: str) -> tuple[bytes, str]:
    """``(raw body, X-Hub-Signature-256 value)`` as GOWA signs a webhook."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return raw, "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
