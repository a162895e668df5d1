"""A loopback Graph API that speaks the WhatsApp Cloud API's wire format, for transport tests.

Routes (``/vXX.Y`` is any version; use ``server.base_url`` as the provider's base URL):

- ``GET  /vXX.Y/{phone_number_id}?fields=…``: the number's ``display_phone_number`` and
  ``verified_name`` (only the fields asked for, plus ``id``, as the Graph API does).
- ``POST /vXX.Y/{phone_number_id}/messages``: a send (answers ``contacts`` + ``messages`` with a
  fresh ``wamid``) or a read receipt (``{"status": "read"}`` → ``{"success": true}``).
- ``GET  /vXX.Y/{media_id}``: the media's short-lived ``url``, ``mime_type``, ``sha256``, size.
- ``GET  /media/{media_id}``: the bytes, with the same bearer token (as lookaside.fbsbx.com).

Every route wants ``Authorization: Bearer <access_token>``; anything else gets Meta's 190 error
body with HTTP 401. State (sent messages, receipts, media) lives on the server under its lock.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import secrets
import sys
from typing import Any

from tests.support.provider_server import ProviderRequest, ProviderServer, Response

VERSION = "v21.0"
ACCESS_TOKEN = "EAAG-test-token"
TEXT_LIMIT = 4096
SEND_TYPES = {
    "text",
    "image",
    "video",
    "audio",
    "document",
    "sticker",
    "template",
    "reaction",
    "interactive",
    "location",
    "contacts",
}


def error_body(
    code: int,
    message: str = "",
    *,
    subcode: int | None = None,
    title: str = "",
    details: str = "",
    type: str = "OAuthException",
) -> dict[str, Any]:
    """Meta's error envelope, as the Graph API sends it."""
    error: dict[str, Any] = {
        "message": message or f"(#{code}) error {code}",
        "type": type,
        "code": code,
        "fbtrace_id": "A" + secrets.token_hex(8),
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    if title:
        error["error_user_title"] = title
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return {"error": error}


def invalid_parameter(details: str) -> Response:
    return 400, {}, error_body(100, "(#100) Invalid parameter", details=details)


class CloudApiServer(ProviderServer):
    routes = {
        ("GET", r"/v\d+\.\d+/(?P<node>[^/]+)"): "get_node",
        ("POST", r"/v\d+\.\d+/(?P<phone_number_id>[^/]+)/messages"): "post_message",
        ("GET", r"/media/(?P<media_id>[^/]+)"): "get_media_bytes",
    }

    def __init__(
        self,
        *,
        access_token: str = ACCESS_TOKEN,
        phone_number_id: str = "106540352242922",
        display_phone_number: str = "+1 555-010-0199",
        verified_name: str = "Parley Test Shop",
    ) -> None:
        super().__init__()
        self.access_token = access_token
        self.phone_number_id = phone_number_id
        self.display_phone_number = display_phone_number
        self.verified_name = verified_name
        self.sent: list[dict[str, Any]] = []  # the send bodies accepted, with their "id"
        self.read: list[str] = []  # message ids marked read
        self.media: dict[str, tuple[bytes, str]] = {}
        self._ids = itertools.count(1)

    def start(self) -> CloudApiServer:
        super().start()
        assert self._httpd is not None
        report = self._httpd.handle_error

        def handle_error(request, client_address) -> None:
            # A client that gave up (timeout, oversized answer) is what the test wanted.
            if not isinstance(sys.exc_info()[1], ConnectionError):
                report(request, client_address)

        self._httpd.handle_error = handle_error  # type: ignore[method-assign]
        return self

    @property
    def base_url(self) -> str:
        return f"{self.url}/{VERSION}"

    def add_media(self, content: bytes, mime_type: str) -> str:
        """Store media as if a person had sent it; returns its media id."""
        with self.lock:
            media_id = str(900000000000000 + next(self._ids))
            self.media[media_id] = (content, mime_type)
        return media_id

    # --- handlers -----------------------------------------------------------------------------
    def _unauthorized(self, request: ProviderRequest) -> Response | None:
        header = request.headers.get("Authorization") or ""
        if header == f"Bearer {self.access_token}":
            return None
        message = (
            "Invalid OAuth access token - Cannot parse access token"
            if header.startswith("Bearer ")
            else "An active access token must be used to query information about the current user."
        )
        return (
            401,
            {"WWW-Authenticate": 'OAuth "Facebook Platform" "invalid_token"'},
            (error_body(190, message)),
        )

    def get_node(self, request: ProviderRequest) -> Response:
        if refused := self._unauthorized(request):
            return refused
        node = request.groups["node"]
        if node == self.phone_number_id:
            known = {
                "display_phone_number": self.display_phone_number,
                "verified_name": self.verified_name,
                "quality_rating": "GREEN",
                "code_verification_status": "VERIFIED",
            }
            asked = (request.query.get("fields") or ["display_phone_number,verified_name"])[0]
            body = {k: known[k] for k in asked.split(",") if k in known}
            return 200, {}, {**body, "id": node}
        with self.lock:
            media = self.media.get(node)
        if media is not None:
            content, mime_type = media
            return (
                200,
                {},
                {
                    "messaging_product": "whatsapp",
                    "url": f"{self.url}/media/{node}?ext={secrets.token_hex(4)}",
                    "mime_type": mime_type,
                    "sha256": hashlib.sha256(content).hexdigest(),
                    "file_size": len(content),
                    "id": node,
                },
            )
        return (
            400,
            {},
            error_body(
                100,
                f"Unsupported get request. Object with ID '{node}' does not exist, cannot be "
                "loaded due to missing permissions, or does not support this operation.",
                subcode=33,
                type="GraphMethodException",
            ),
        )

    def post_message(self, request: ProviderRequest) -> Response:
        if refused := self._unauthorized(request):
            return refused
        if request.groups["phone_number_id"] != self.phone_number_id:
            return 400, {}, error_body(100, "(#100) Object does not exist", subcode=33)
        body = request.json
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            return invalid_parameter("The parameter messaging_product is required.")
        if body.get("status") == "read":
            if not body.get("message_id"):
                return invalid_parameter("The parameter message_id is required.")
            with self.lock:
                self.read.append(body["message_id"])
            return 200, {}, {"success": True}
        kind = body.get("type")
        if kind not in SEND_TYPES or not isinstance(body.get(kind), dict):
            return invalid_parameter(f"Param type must be one of {sorted(SEND_TYPES)}.")
        if kind == "text" and len(body["text"].get("body") or "") > TEXT_LIMIT:
            return invalid_parameter(
                f"Param text['body'] must be at most {TEXT_LIMIT} characters long."
            )
        to, bsuid = body.get("to"), body.get("recipient")
        if to:
            contact = {"input": to, "wa_id": re.sub(r"\D", "", str(to))}
        elif bsuid:
            contact = {"input": bsuid, "user_id": bsuid}
        else:
            return invalid_parameter("The parameter to is required.")
        with self.lock:
            message_id = f"wamid.HBgL{next(self._ids):06d}{secrets.token_hex(6).upper()}"
            self.sent.append({**body, "id": message_id})
        return (
            200,
            {},
            {
                "messaging_product": "whatsapp",
                "contacts": [contact],
                "messages": [{"id": message_id}],
            },
        )

    def get_media_bytes(self, request: ProviderRequest) -> Response:
        if refused := self._unauthorized(request):
            return refused
        with self.lock:
            media = self.media.get(request.groups["media_id"])
        if media is None:
            return 404, {"Content-Type": "text/html"}, b"<html>Not found</html>"
        content, mime_type = media
        return 200, {"Content-Type": mime_type}, content
