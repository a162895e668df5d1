"""GOWA: an aldinokemal/go-whatsapp-web-multidevice gateway (whatsmeow underneath).

Wire format (PROVIDERS.md section 4, ``fixtures/gowa/``):

- **REST** with HTTP Basic auth; ``X-Device-Id`` picks the device on a multi-device gateway. Every
  answer is ``{status, code, message, results}``; an error keeps the shape with ``code`` set to
  ``ALREADY_LOGGED_IN``, ``INVALID_JID``, ``AUTHENTICATION_ERROR``, ``WA_REACHOUT_TIMELOCK`` ...
- **Pairing**: ``GET /app/login`` → ``results {qr_link, qr_duration}``; the QR is a PNG the
  gateway serves at ``qr_link``, which we fetch (from the gateway's own origin only) and hand back
  as a ``data:image/png`` URI. ``GET /app/login-with-code?phone=<digits>`` → ``results.pair_code``.
- **Status**: ``GET /app/status`` → ``results {is_connected, is_logged_in, device_id}``, where
  ``device_id`` is the paired device's JID (``628…:12@s.whatsapp.net``) once paired, else "".
  whatsmeow only reports ``is_logged_in`` on an open, authenticated socket, so:

  ============  ============  ========  ==============================================
  is_connected  is_logged_in  paired    state
  ============  ============  ========  ==============================================
  yes           yes           –         ready
  no            yes           –         connecting (the socket dropped; it reconnects)
  yes           no            yes       connecting (authenticating)
  yes           no            no        qr (a login is waiting for its scan)
  no            no            yes       disconnected (paired; ``connect`` reconnects)
  no            no            no        logged_out (pair again)
  ============  ============  ========  ==============================================

- **Send**: ``POST /send/message {phone, message, reply_message_id?}`` (JSON); media as multipart
  ``POST /send/image|video|file|audio|sticker`` with ``<kind>_url`` (``file_url`` for documents)
  and ``caption``; reactions ``POST /message/{id}/reaction {phone, emoji}``; read receipts
  ``POST /message/{id}/read {phone}``. Answer: ``results {message_id, status}``.
- **Webhooks**: ``{event, device_id, timestamp?, payload{…}}`` signed
  ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(body, secret)>``. GOWA's default secret is the
  public word ``secret``: this adapter refuses to run with it (``check_credentials`` says so,
  ``connect`` raises ``NotAuthorized``, ``verify`` raises ``Forged``).

Choices worth knowing:

- ``disconnect`` does nothing on the gateway: GOWA has no "close but stay paired" call
  (``/app/reconnect`` drops and reopens; ``/app/logout`` unpairs), so Parley simply stops using it.
- A media message's text is its ``caption`` (``body`` stays empty); GOWA repeats the caption in
  ``payload.body``, which we only use when the media object carries none.
- GOWA's documentation examples put the *device's own* JID in ``chat_id`` of incoming 1:1
  messages; when an incoming, non-group event names our own device as its chat, the chat is the
  sender's JID instead (a real incoming 1:1 message is never in the chat with ourselves).
- ``group.participants`` gives one action per event: ``join`` lists the members it adds, the other
  actions (leave, promote, demote) only name the group, since ``events.Group`` cannot say
  "removed". Participants are therefore additions, never the full member list.
- Media with auto-download off comes as a ``url`` on WhatsApp's CDN, where it is encrypted with a
  key the webhook does not carry: ``download_media`` refuses those (``Unsupported``) and asks for
  ``WHATSAPP_AUTO_DOWNLOAD_MEDIA``; credentials are only ever sent to the gateway's own origin.
"""

from __future__ import annotations

import base64
import datetime as dt
import mimetypes
import posixpath
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
    hmac_sha256_matches,
)

# GOWA's out-of-the-box value: public, so never accepted (a value we refuse, not one we use)
DEFAULT_WEBHOOK_SECRET = "secret"  # noqa: S105
WEBHOOK_KEY_IS_DEFAULT = (
    'GOWA\'s default webhook secret "secret" is public, so anyone could forge its webhooks. '
    "Set WHATSAPP_WEBHOOK_SECRET (or --webhook-secret) on the GOWA server to a long random value "
    "and enter the same value here."
)
WEBHOOK_KEY_MISSING = (
    "Webhook secret is required: set WHATSAPP_WEBHOOK_SECRET (or --webhook-secret) on the GOWA "
    "server to a long random value and enter the same value here."
)
SIGNATURE_HEADER = "x-hub-signature-256"
PHONE_SUFFIX = "@s.whatsapp.net"
GROUP_SUFFIX = "@g.us"
LID_SUFFIX = "@lid"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
WHATSAPP_CDN = "whatsapp.net"

# media_type → (route, URL field, takes a caption)
MEDIA_ROUTES: dict[str, tuple[str, str, bool]] = {
    "image": ("/send/image", "image_url", True),
    "video": ("/send/video", "video_url", True),
    "document": ("/send/file", "file_url", True),
    "audio": ("/send/audio", "audio_url", False),
    "sticker": ("/send/sticker", "sticker_url", False),
}
# webhook media keys, in the order GOWA fills them, and what they are
MEDIA_KEYS: tuple[tuple[str, str], ...] = (
    ("image", ev.MessageType.IMAGE),
    ("video", ev.MessageType.VIDEO),
    ("video_note", ev.MessageType.VIDEO),
    ("audio", ev.MessageType.AUDIO),
    ("document", ev.MessageType.DOCUMENT),
    ("sticker", ev.MessageType.STICKER),
)
RECEIPTS = {
    "": ev.DeliveryStatus.DELIVERED,  # whatsmeow's empty type; GOWA renames it "delivered"
    "delivered": ev.DeliveryStatus.DELIVERED,
    "read": ev.DeliveryStatus.READ,
    "read-self": ev.DeliveryStatus.READ,
    "played": ev.DeliveryStatus.PLAYED,
    "played-self": ev.DeliveryStatus.PLAYED,
    # "sender" (our other devices got it) and "retry" (decryption failed) change nothing
}
RECIPIENT_PHRASES = (
    "not on whatsapp",
    "not registered",
    "invalid phone",
    "invalid jid",
    "not a valid phone",
)
MEDIA_PHRASES = ("media", "image", "video", "file", "url", "mime", "size", "too large", "format")


class _AlreadyLoggedIn(ProviderError):
    """GOWA's ``ALREADY_LOGGED_IN`` answer to a login: not a failure, the session is ready."""

    code = "already-logged-in"
    permanent = True


class GowaProvider(Provider):
    name = "gowa"
    label = "GOWA (go-whatsapp-web-multidevice)"
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
            help="Where Parley reaches the GOWA REST API, e.g. http://gowa:3000",
        ),
        CredentialField(
            "username", "Username", secret=False, help="A user of GOWA's --basic-auth list."
        ),
        CredentialField("password", "Password", help="That user's Basic auth password."),
        CredentialField(
            "device_id",
            "Device ID",
            secret=False,
            required=False,
            help="Only for a gateway holding several devices (sent as X-Device-Id).",
        ),
        CredentialField(
            "webhook_secret",
            "Webhook secret",
            help="The gateway's WHATSAPP_WEBHOOK_SECRET (--webhook-secret); never the default.",
        ),
    )
    webhook_help = (
        "Start GOWA with this URL as WHATSAPP_WEBHOOK (--webhook) and the webhook secret entered "
        "here as WHATSAPP_WEBHOOK_SECRET (--webhook-secret): GOWA signs every delivery with it."
    )
    webhook_secret_credential = "webhook_secret"  # noqa: S105 - a field name, not a secret

    @classmethod
    def check_credentials(cls, credentials: Mapping[str, str]) -> dict[str, str]:
        errors = super().check_credentials(credentials)
        url = str(credentials.get("server_url") or "").strip()
        if url:
            parts = urlsplit(url)
            if parts.scheme not in {"http", "https"} or not parts.netloc:
                errors["server_url"] = "Server URL must be an http:// or https:// address."
        secret = str(credentials.get("webhook_secret") or "").strip()
        if not secret:
            errors["webhook_secret"] = WEBHOOK_KEY_MISSING
        elif secret == DEFAULT_WEBHOOK_SECRET:
            errors["webhook_secret"] = WEBHOOK_KEY_IS_DEFAULT
        return errors

    # --- plumbing ----------------------------------------------------------------------------
    @property
    def _credentials(self) -> Mapping[str, str]:
        return self.config.credentials or {}

    @property
    def _base(self) -> str:
        base = (self.base_url or str(self._credentials.get("server_url") or "")).strip()
        if not base:
            raise NotAuthorized("No GOWA server URL is configured for this session.")
        return base.rstrip("/")

    @property
    def _secret(self) -> str:
        return str(self._credentials.get("webhook_secret") or "")

    def _uses_default_secret(self) -> bool:
        return self._secret.strip() in {"", DEFAULT_WEBHOOK_SECRET}

    def _refuse_default_secret(self) -> None:
        if self._secret.strip() == DEFAULT_WEBHOOK_SECRET:
            raise NotAuthorized(WEBHOOK_KEY_IS_DEFAULT)
        if not self._secret.strip():
            raise NotAuthorized(WEBHOOK_KEY_MISSING)

    def _auth(self) -> tuple[str, str]:
        return (
            str(self._credentials.get("username") or ""),
            str(self._credentials.get("password") or ""),
        )

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        device = str(self._credentials.get("device_id") or "").strip()
        if device:
            headers["X-Device-Id"] = device
        return headers

    def _call(self, method: str, path: str, *, media: bool = False, **kwargs: Any) -> Any:
        return http.call(
            method,
            self._base + path,
            headers=self._headers(),
            auth=self._auth(),
            timeout=self.timeout,
            on_error=_error_mapper(media=media),
            **kwargs,
        )

    def _on_gateway(self, url: str) -> str:
        """``url`` moved onto the gateway's own origin: credentials go nowhere else, and a
        gateway that builds links from a Host header we cannot resolve still works."""
        base = urlsplit(self._base)
        target = urlsplit(url)
        path = target.path if target.path.startswith("/") else "/" + target.path
        query = f"?{target.query}" if target.query else ""
        return f"{base.scheme}://{base.netloc}{path}{query}"

    # --- act ---------------------------------------------------------------------------------
    def connect(self) -> Pairing:
        """Ready if the gateway is logged in; connecting if it is (or, paired but idle, is told
        to reconnect); otherwise a new login and its QR code."""
        self._refuse_default_secret()
        current = self.status()
        if current.state == ev.SessionState.READY:
            return _ready(current)
        if current.state in {ev.SessionState.DISCONNECTED, ev.SessionState.CONNECTING}:
            if current.state == ev.SessionState.DISCONNECTED:
                self._call("GET", "/app/reconnect")
            return Pairing(
                state=ev.SessionState.CONNECTING, jid=current.jid, phone_number=current.phone_number
            )
        try:
            answer = self._call("GET", "/app/login")
        except _AlreadyLoggedIn:
            return self._ready_now()
        results = _results(answer)
        link = str(results.get("qr_link") or "")
        if not link:
            raise ProviderError("GOWA started a login without a QR code link.")
        return Pairing(
            state=ev.SessionState.QR,
            qr_image=self._fetch_qr(link),
            expires_in=_number(results.get("qr_duration")),
        )

    def _fetch_qr(self, link: str) -> str:
        content, content_type = self._get_raw(link)
        mime = content_type.split(";")[0].strip().lower()
        if content.startswith(PNG_MAGIC):
            mime = "image/png"
        elif not mime.startswith("image/"):
            raise ProviderError("GOWA's QR code link did not return an image.")
        return f"data:{mime};base64,{base64.b64encode(content).decode()}"

    def _get_raw(self, url: str, *, media_file: bool = False) -> tuple[bytes, str]:
        """A file the gateway serves (a QR PNG, or a received media file)."""
        return http.call(
            "GET",
            self._on_gateway(url),
            headers=self._headers(),
            auth=self._auth(),
            timeout=self.timeout,
            raw=True,
            max_bytes=http.MAX_MEDIA_BYTES if media_file else http.MAX_RESPONSE_BYTES,
            on_error=_error_mapper(media=True, media_file=media_file),
        )

    def _ready_now(self) -> Pairing:
        try:
            return _ready(self.status())
        except ProviderError:
            return Pairing(state=ev.SessionState.READY)

    def pairing_code(self, phone_number: str) -> Pairing:
        self._refuse_default_secret()
        digits = _digits(phone_number)
        if not digits:
            raise ProviderError("Enter the phone number to pair, with its country code.")
        try:
            answer = self._call("GET", "/app/login-with-code", params={"phone": digits})
        except _AlreadyLoggedIn:
            return self._ready_now()
        code = str(_results(answer).get("pair_code") or "")
        if not code:
            raise ProviderError("GOWA did not return a pairing code.")
        return Pairing(state=ev.SessionState.QR, pairing_code=code, phone_number=digits)

    def status(self) -> Status:
        results = _results(self._call("GET", "/app/status"))
        connected = bool(results.get("is_connected"))
        logged_in = bool(results.get("is_logged_in"))
        jid, phone = _own_jid(str(results.get("device_id") or ""))
        paired = jid is not None
        if logged_in and connected:
            return Status(ev.SessionState.READY, phone_number=phone, jid=jid)
        if logged_in or (connected and paired):
            return Status(
                ev.SessionState.CONNECTING,
                reason="The gateway is connecting to WhatsApp.",
                phone_number=phone,
                jid=jid,
            )
        if connected:
            return Status(ev.SessionState.QR, reason="Waiting for the QR code to be scanned.")
        if paired:
            return Status(
                ev.SessionState.DISCONNECTED,
                reason="Paired, but the gateway is not connected to WhatsApp.",
                phone_number=phone,
                jid=jid,
            )
        return Status(ev.SessionState.LOGGED_OUT, reason="The gateway is not paired with a phone.")

    def disconnect(self) -> None:
        """Nothing to do on the gateway: GOWA cannot close a session and keep it paired
        (``/app/reconnect`` reopens it at once, ``/app/logout`` unpairs). Parley stops using it."""
        return None

    def logout(self) -> None:
        self._call("GET", "/app/logout")

    def send(self, message: OutgoingMessage) -> Sent:
        if len(message.text) > MAX_TEXT_LENGTH or len(message.caption) > MAX_TEXT_LENGTH:
            raise MessageTooLong(f"Text longer than {MAX_TEXT_LENGTH} characters.")
        phone = _recipient(message.to)
        if message.template is not None:
            raise Unsupported("GOWA cannot send templates.")
        if message.reaction_to:
            answer = self._call(
                "POST",
                f"/message/{quote(message.reaction_to, safe='')}/reaction",
                json_body={"phone": phone, "emoji": message.emoji},
            )
        elif message.media_url or message.media_type or message.media_id:
            answer = self._send_media(phone, message)
        elif message.text:
            body: dict[str, Any] = {"phone": phone, "message": message.text}
            if message.reply_to:
                body["reply_message_id"] = message.reply_to
            answer = self._call("POST", "/send/message", json_body=body)
        else:
            raise Unsupported("Nothing to send: no text, media or reaction.")
        message_id = str(_results(answer).get("message_id") or "")
        if not message_id:
            raise ProviderError("GOWA accepted the message but returned no message id.")
        return Sent(provider_message_id=message_id, recipient_id=phone)

    def _send_media(self, phone: str, message: OutgoingMessage) -> Any:
        if not message.media_url:
            raise Unsupported("GOWA sends media by URL only (no uploaded media ids).")
        kind = message.media_type or "document"
        if kind not in MEDIA_ROUTES:
            raise MediaRejected(f"GOWA cannot send {kind} media.")
        route, url_field, captioned = MEDIA_ROUTES[kind]
        fields = {"phone": phone, url_field: message.media_url}
        caption = message.caption or message.text
        if captioned and caption:
            fields["caption"] = caption
        # (None, value) parts: multipart/form-data without a file, as GOWA's forms expect
        parts = [(name, (None, value)) for name, value in fields.items()]
        return self._call("POST", route, files=parts, media=True)

    def mark_read(self, chat_jid: str, provider_message_ids: list[str]) -> None:
        phone = _recipient(chat_jid)
        for message_id in provider_message_ids:
            self._call(
                "POST",
                f"/message/{quote(message_id, safe='')}/read",
                json_body={"phone": phone},
            )

    def download_media(self, media: Any) -> tuple[bytes, str]:
        path = _field(media, "path")
        url = _field(media, "url")
        if path:
            clean = posixpath.normpath("/" + path.lstrip("/"))
            if "://" in path or ".." in path.split("/") or clean == "/":
                raise MediaRejected("The media path is not a file on the gateway.")
            content, content_type = self._get_raw(self._base + quote(clean), media_file=True)
        elif url:
            host = (urlsplit(url).hostname or "").lower()
            if host == WHATSAPP_CDN or host.endswith("." + WHATSAPP_CDN):
                raise Unsupported(
                    "This media is still encrypted on WhatsApp's servers. Turn on "
                    "WHATSAPP_AUTO_DOWNLOAD_MEDIA on the GOWA server so it keeps a copy."
                )
            content, content_type = self._download(url)
        else:
            raise MediaRejected("The message names no media to download.")
        return content, _mime(content_type, _field(media, "mime_type"), path or url)

    def _download(self, url: str) -> tuple[bytes, str]:
        parts, base = urlsplit(url), urlsplit(self._base)
        if (parts.scheme, parts.netloc) == (base.scheme, base.netloc):
            return self._get_raw(url, media_file=True)
        if parts.scheme not in {"http", "https"}:
            raise MediaRejected("The media URL is not an http(s) address.")
        # another origin: no gateway credentials, no device header, and its refusals say
        # nothing about our session (a 401 there must not log the session out)
        return http.call(
            "GET",
            url,
            timeout=self.timeout,
            raw=True,
            max_bytes=http.MAX_MEDIA_BYTES,
            on_error=_foreign_error,
        )

    # --- verify ------------------------------------------------------------------------------
    def verify(self, request: InboundRequest) -> None:
        if self._uses_default_secret():
            raise Forged("GOWA webhooks signed with the default or an empty secret are refused.")
        header = request.headers.get(SIGNATURE_HEADER)
        if not hmac_sha256_matches(self._secret, request.body, header, prefix="sha256="):
            raise Forged("bad GOWA webhook signature")

    # --- translate ---------------------------------------------------------------------------
    def translate(self, payload: Any, *, suffix: str = "") -> list[ev.Event]:
        if not isinstance(payload, dict) or not isinstance(payload.get("payload"), dict):
            return []
        kind = str(payload.get("event") or "").lower()
        body: dict[str, Any] = payload["payload"]
        when = _time(body.get("timestamp"), _time(payload.get("timestamp"), None))
        device = str(payload.get("device_id") or "")
        if kind == "message":
            action = body.get("action")
            if action == "message_revoked":
                return _revoked(body, device, when)
            if action == "message_edited":
                return _edited(body, device, when)
            return _message(body, device, when)
        if kind == "message.reaction":
            return _reaction(body, device, when)
        if kind in {"message.revoked", "message.deleted"}:
            return _revoked(body, device, when)
        if kind == "message.edited":
            return _edited(body, device, when)
        if kind == "message.ack":
            return _receipts(body, when)
        if kind == "group.participants":
            return _participants(body)
        if kind == "group.joined":
            return _joined(body)
        return []  # call.offer, chat_presence, label.*, newsletter.*: nothing we keep


PROVIDER = GowaProvider


# --- errors ----------------------------------------------------------------------------------


def _error_mapper(*, media: bool, media_file: bool = False) -> http.ErrorMapper:
    """GOWA's refusals in our taxonomy. ``media``: a media send or fetch; ``media_file``: a
    received file the gateway serves, which a 404 says is gone for good."""

    def on_error(status: int, payload: Any) -> ProviderError | None:
        code, text = _problem(payload)
        detail = f"{code}: {text}"[:300] if code else text[:300]
        words = f"{code} {text}".lower()
        if media_file and status in {404, 410}:
            return MediaRejected("The media file is no longer on the gateway.", detail=detail)
        if code == "ALREADY_LOGGED_IN":
            return _AlreadyLoggedIn("GOWA is already logged in.", detail=detail)
        if status == 401 or code == "AUTHENTICATION_ERROR":
            return NotAuthorized(
                "GOWA refused the credentials, or its WhatsApp session is logged out.",
                detail=detail,
            )
        if status == 429 or code == "WA_REACHOUT_TIMELOCK":
            return RateLimited(
                "WhatsApp is limiting this number's sending.", retry_after=None, detail=detail
            )
        if status in {413, 415}:
            return MediaRejected("GOWA rejected the media.", detail=detail)
        if status in {400, 404} and (
            code == "INVALID_JID" or any(p in words for p in RECIPIENT_PHRASES)
        ):
            return RecipientNotFound("That number is not on WhatsApp.", detail=detail)
        if media and status == 400 and any(p in words for p in MEDIA_PHRASES):
            return MediaRejected("GOWA rejected the media.", detail=detail)
        return ProviderError(f"GOWA refused the request (HTTP {status}).", detail=detail)

    return on_error


def _foreign_error(status: int, payload: Any) -> ProviderError:
    """A media URL on another origin refused us."""
    if status == 429:
        return RateLimited("The media server is rate limiting downloads.")
    return MediaRejected(f"The media URL answered HTTP {status}.")


def _problem(payload: Any) -> tuple[str, str]:
    """``(code, message)`` of a GOWA error body (``{status, code, message, results}``)."""
    if not isinstance(payload, dict):
        return "", ""
    error = payload.get("error")
    if isinstance(error, dict):
        return str(error.get("code") or ""), str(error.get("message") or "")
    return str(payload.get("code") or ""), str(payload.get("message") or error or "")


# --- small helpers ---------------------------------------------------------------------------


def _results(answer: Any) -> dict[str, Any]:
    results = answer.get("results") if isinstance(answer, dict) else None
    return results if isinstance(results, dict) else {}


def _ready(status: Status) -> Pairing:
    return Pairing(
        state=ev.SessionState.READY,
        jid=status.jid,
        phone_number=status.phone_number,
        name=status.name,
    )


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value or "")


def _number(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _recipient(to: str) -> str:
    """GOWA's ``phone``: a JID as given (groups, ``@lid``), or digits made a phone JID."""
    to = (to or "").strip()
    if "@" in to:
        return to
    digits = _digits(to)
    if not digits:
        raise RecipientNotFound("No phone number to send to.")
    return digits + PHONE_SUFFIX


def _own_jid(device_id: str) -> tuple[str | None, str | None]:
    """``(jid, phone)`` of the paired device from ``628…:12@s.whatsapp.net``; none if unpaired."""
    if not device_id.endswith(PHONE_SUFFIX):
        return None, None
    user = device_id[: -len(PHONE_SUFFIX)].split(":")[0].split(".")[0]
    return user + PHONE_SUFFIX, (user if user.isdigit() else None)


def _field(media: Any, name: str) -> str:
    value = media.get(name) if isinstance(media, Mapping) else getattr(media, name, None)
    return str(value or "")


def _mime(content_type: str, declared: str, name: str) -> str:
    mime = content_type.split(";")[0].strip().lower()
    if mime and mime not in {"application/octet-stream", "binary/octet-stream"}:
        return mime
    guessed = mimetypes.guess_type(urlsplit(name).path)[0] if name else None
    return declared or guessed or mime or "application/octet-stream"


def _time(value: Any, fallback: dt.datetime | None) -> dt.datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, tz=dt.UTC)
    if isinstance(value, str) and value:
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return fallback or dt.datetime.now(tz=dt.UTC)


def _bare(jid: str) -> str:
    """A JID without the " in <group>" tail of older payloads and without a device suffix."""
    jid = jid.split(" in ")[0].strip()
    if "@" not in jid:
        return jid
    user, server = jid.split("@", 1)
    return f"{user.split(':')[0]}@{server}"


def _party(jid: str, *, lid: str = "", name: str = "") -> ev.Party:
    jid = _bare(jid or "")
    party_jid = party_lid = phone = None
    if jid.endswith(LID_SUFFIX):
        party_lid = jid
    elif jid.endswith(PHONE_SUFFIX):
        party_jid = jid
        user = jid[: -len(PHONE_SUFFIX)]
        phone = user if user.isdigit() else None
    elif jid.isdigit():
        phone, party_jid = jid, jid + PHONE_SUFFIX
    if lid and lid.endswith(LID_SUFFIX):
        party_lid = lid
    return ev.Party(phone=phone, jid=party_jid, lid=party_lid, name=name)


def _sender(body: dict[str, Any]) -> ev.Party:
    name = str(
        body.get("from_name") or body.get("pushname") or body.get("sender_display_name") or ""
    )
    return _party(str(body.get("from") or ""), lid=str(body.get("from_lid") or ""), name=name)


def _chat(body: dict[str, Any], device: str, *, from_me: bool, key: str = "chat_id") -> str:
    chat = str(body.get(key) or body.get("chat_id") or "").strip()
    sender = str(body.get("from") or "")
    if chat and "@" not in chat:  # older payloads: the chat's user part only
        group = sender.split(" in ")[1].strip() if " in " in sender else ""
        chat = group or chat + PHONE_SUFFIX
    if (
        not from_me
        and sender
        and not chat.endswith(GROUP_SUFFIX)
        and (not chat or (device and _bare(chat) == _bare(device)))
    ):
        return _bare(sender)  # the docs' incoming 1:1 examples name our own device as the chat
    return chat


def _message(body: dict[str, Any], device: str, when: dt.datetime) -> list[ev.Event]:
    nested = body.get("message") if isinstance(body.get("message"), dict) else {}
    message_id = str(body.get("id") or nested.get("id") or "")
    if not message_id:
        return []
    from_me = bool(body.get("is_from_me"))
    chat = _chat(body, device, from_me=from_me)
    text = str(body.get("body") or nested.get("text") or "")
    kind, media, caption = ev.MessageType.TEXT if text else ev.MessageType.OTHER, None, ""
    location, contacts = None, []
    for key, media_kind in MEDIA_KEYS:
        if body.get(key):
            media, caption = _media(body[key])
            kind, caption, text = media_kind, caption or text, ""
            break
    else:
        place = body.get("location") or body.get("live_location")
        if isinstance(place, dict):
            kind, location = ev.MessageType.LOCATION, _location(place)
        elif isinstance(body.get("contact"), dict) or isinstance(body.get("contacts_array"), list):
            cards = body.get("contacts_array") or [body.get("contact")]
            kind, contacts = (
                ev.MessageType.CONTACT,
                [_card(c) for c in cards if isinstance(c, dict)],
            )
    quoted = body.get("replied_to_id") or body.get("quoted_message_id") or nested.get("replied_id")
    if isinstance(body.get("quoted"), dict):
        quoted = quoted or body["quoted"].get("id")
    return [
        ev.MessageUpserted(
            provider_message_id=message_id,
            chat_jid=chat,
            from_me=from_me,
            timestamp=when,
            type=kind,
            sender=None if from_me else _sender(body),
            chat_is_group=chat.endswith(GROUP_SUFFIX),
            body=text,
            caption=caption,
            media=media,
            quoted_id=str(quoted) if quoted else None,
            forwarded=bool(body.get("forwarded")),
            location=location,
            contacts=contacts,
            raw=body,
        )
    ]


def _media(value: Any) -> tuple[ev.Media | None, str]:
    """The three shapes: ``"statics/media/x.jpg"``, ``{path, caption}``, ``{url, caption}``."""
    if isinstance(value, str):
        value = {"path": value}
    if not isinstance(value, dict):
        return None, ""
    path = str(value.get("path") or "") or None
    url = str(value.get("url") or "") or None
    filename = str(value.get("filename") or value.get("file_name") or "")
    if not filename and path:
        filename = posixpath.basename(path)
    mime = str(value.get("mime_type") or value.get("mimetype") or "")
    if not mime and (path or filename):
        mime = mimetypes.guess_type(path or filename)[0] or ""
    size = value.get("file_length") or value.get("size")
    media = ev.Media(
        url=url,
        path=path,
        mime_type=mime,
        filename=filename,
        size=int(size) if isinstance(size, int | float) else None,
    )
    return media, str(value.get("caption") or "")


def _location(place: dict[str, Any]) -> dict[str, Any]:
    return {
        "latitude": place.get("degreesLatitude", place.get("latitude")),
        "longitude": place.get("degreesLongitude", place.get("longitude")),
        "name": str(place.get("name") or ""),
        "address": str(place.get("address") or ""),
    }


def _card(contact: dict[str, Any]) -> dict[str, Any]:
    vcard = str(contact.get("vcard") or "")
    phones = []
    for line in vcard.splitlines():
        if not line.upper().startswith(("TEL", "ITEM1.TEL")):
            continue
        waid = re.search(r"waid=(\d+)", line)
        number = waid.group(1) if waid else _digits(line.split(":", 1)[-1])
        if number:
            phones.append(number)
    name = str(contact.get("displayName") or contact.get("display_name") or "")
    return {"name": name, "phones": phones, "vcard": vcard}


def _reaction(body: dict[str, Any], device: str, when: dt.datetime) -> list[ev.Event]:
    target = str(body.get("reacted_message_id") or "")
    if not target:
        return []
    from_me = bool(body.get("is_from_me"))
    return [
        ev.ReactionReceived(
            provider_message_id=target,
            chat_jid=_chat(body, device, from_me=from_me),
            emoji=str(body.get("reaction") or ""),
            timestamp=when,
            sender=None if from_me else _sender(body),
            from_me=from_me,
        )
    ]


def _revoked(body: dict[str, Any], device: str, when: dt.datetime) -> list[ev.Event]:
    target = str(body.get("revoked_message_id") or body.get("deleted_message_id") or "")
    if not target:
        return []
    from_me = bool(body.get("is_from_me") or body.get("was_from_me"))
    key = "revoked_chat" if body.get("revoked_chat") else "chat_id"
    return [
        ev.MessageRevoked(
            provider_message_id=target,
            chat_jid=_chat(body, device, from_me=from_me, key=key),
            timestamp=when,
        )
    ]


def _edited(body: dict[str, Any], device: str, when: dt.datetime) -> list[ev.Event]:
    target = str(body.get("original_message_id") or "")
    if not target:
        return []
    return [
        ev.MessageEdited(
            provider_message_id=target,
            chat_jid=_chat(body, device, from_me=bool(body.get("is_from_me"))),
            body=str(body.get("body") or body.get("edited_text") or ""),
            timestamp=when,
        )
    ]


def _receipts(body: dict[str, Any], when: dt.datetime) -> list[ev.Event]:
    status = RECEIPTS.get(str(body.get("receipt_type") or "").lower())
    ids = body.get("ids") or ([body["id"]] if body.get("id") else [])
    if status is None or not isinstance(ids, list):
        return []
    chat = str(body.get("chat_id") or "")
    reader = _party(
        str(body.get("from") or ""),
        lid=str(body.get("from_lid") or ""),
        name=str(body.get("sender_display_name") or body.get("from_name") or ""),
    )
    return [
        ev.MessageStatusChanged(
            provider_message_id=str(message_id),
            status=status,
            timestamp=when,
            chat_jid=chat,
            recipient=reader,
        )
        for message_id in ids
        if message_id
    ]


def _participants(body: dict[str, Any]) -> list[ev.Event]:
    chat = str(body.get("chat_id") or "")
    if not chat:
        return []
    jids = body.get("jids") if body.get("type") == "join" else []
    members = [_party(str(j)) for j in jids or [] if j]
    return [ev.GroupsUpdated(groups=[ev.Group(jid=chat, participants=members)])]


def _joined(body: dict[str, Any]) -> list[ev.Event]:
    """``group.joined`` (we were added): its shape is not in GOWA's docs, so read it loosely."""
    chat = str(body.get("chat_id") or body.get("group_id") or body.get("jid") or "")
    if not chat.endswith(GROUP_SUFFIX):
        return []
    name = str(body.get("name") or body.get("group_name") or body.get("subject") or "")
    members = []
    for member in body.get("participants") or body.get("jids") or []:
        if isinstance(member, str):
            members.append(_party(member))
        elif isinstance(member, dict):
            members.append(
                _party(
                    str(member.get("jid") or member.get("phone_number") or ""),
                    lid=str(member.get("lid") or ""),
                    name=str(member.get("display_name") or member.get("name") or ""),
                )
            )
    return [ev.GroupsUpdated(groups=[ev.Group(jid=chat, name=name, participants=members)])]
