"""The provider contract: act, verify, translate.

A provider is one module and the only code that knows its wire format. It is built from a
``SessionConfig`` (plain values: decrypted credentials, settings, the webhook URL and secret) and
never touches models or the database: ``sessions_app.services`` turns what it returns or raises
into session state, and the queue hands its ``translate`` the payloads it verified.

- **act**: ``connect`` (start pairing or check the credentials), ``pairing_code``, ``status``,
  ``disconnect``, ``logout``, ``send``, ``mark_read``, ``download_media``.
- **verify**: ``verify`` checks an inbound request (signature, secret header) in constant time and
  raises ``Forged``; ``challenge`` answers a subscription handshake (Meta's GET).
- **translate**: a verified payload → a list of ``events.Event`` (empty: nothing we use).

Errors come from one taxonomy (``ProviderError`` and its kinds), each transient or permanent, with
a ``code`` a user can read. Capabilities say what a provider can do, so the API and dashboard hide
the rest.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sessions_app.providers.events import Event

# --- Errors --------------------------------------------------------------------------------------


class ProviderError(Exception):
    """Something a provider refused or could not do. ``permanent``: retrying will not help."""

    code: ClassVar[str] = "provider-error"
    permanent: ClassVar[bool] = False

    def __init__(self, message: str = "", *, detail: str = ""):
        super().__init__(message or self.code)
        self.message = message or self.code
        self.detail = detail  # the provider's own words (error code, title), never a credential


class NotAuthorized(ProviderError):
    """Credentials refused, session logged out, banned or token revoked: the session must be
    paired (or its credentials replaced) again."""

    code = "not-authorized"
    permanent = True


class RecipientNotFound(ProviderError):
    code = "recipient-not-found"
    permanent = True


class RateLimited(ProviderError):
    code = "rate-limit-exceeded"
    permanent = False

    def __init__(self, message: str = "", *, retry_after: float | None = None, detail: str = ""):
        super().__init__(message, detail=detail)
        self.retry_after = retry_after


class OutsideWindow(ProviderError):
    """Cloud API: more than 24 h since the person last wrote; only a template may be sent."""

    code = "outside-window"
    permanent = True


class MessageTooLong(ProviderError):
    code = "message-too-long"
    permanent = True


class MediaRejected(ProviderError):
    code = "media-rejected"
    permanent = True


class NetworkError(ProviderError):
    """Could not reach the provider, it timed out, or it answered 5xx or garbage."""

    code = "network-error"
    permanent = False


class Unsupported(ProviderError):
    """The provider cannot do this (see its capabilities)."""

    code = "unsupported"
    permanent = True


class Forged(Exception):
    """An inbound request whose signature or secret does not check out."""


MAX_TEXT_LENGTH = 65_536


# --- Capabilities and configuration --------------------------------------------------------------


class Capability(enum.StrEnum):
    QR = "qr"
    PAIRING_CODE = "pairing_code"
    MEDIA = "media"
    TEMPLATES = "templates"
    GROUPS = "groups"
    READ_RECEIPTS = "read_receipts"
    INTERACTIVE = "interactive"
    REACTIONS = "reactions"
    LOGOUT = "logout"


REDACTED = "[redacted]"


@dataclass(frozen=True)
class CredentialField:
    """One credential a provider needs, for the API's validation and the dashboard's form."""

    name: str
    label: str
    secret: bool = True  # shown once, write-only
    required: bool = True
    help: str = ""


@dataclass(frozen=True)
class SessionConfig:
    """What a provider knows of a session. ``credentials`` are decrypted: never log this."""

    session_id: str  # the session's public UUID
    credentials: Mapping[str, str] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    webhook_url: str = ""  # where the provider must post (ours, absolute)
    webhook_secret: str = ""  # per-session secret for providers that do not sign with their own
    phone_number: str = ""

    def __repr__(self) -> str:  # never print credentials
        return f"SessionConfig(session_id={self.session_id!r})"


@dataclass(frozen=True)
class InboundRequest:
    """An inbound webhook as the view received it. ``headers`` keys are lower-case; ``suffix`` is
    what followed the session's URL (Evolution's ``byEvents`` adds ``/messages-upsert`` ...)."""

    method: str
    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)
    suffix: str = ""


# --- What acting returns -------------------------------------------------------------------------


@dataclass(frozen=True)
class Pairing:
    """The answer to ``connect`` / ``pairing_code``: what to show the person pairing, or the state
    the session is already in (Cloud API: ``ready`` once the credentials check out)."""

    state: str  # a SessionState
    qr: str = ""  # text to encode as a QR code
    qr_image: str = ""  # a data: URI when the provider renders the QR itself
    pairing_code: str = ""
    expires_in: float | None = None  # seconds
    phone_number: str | None = None
    jid: str | None = None
    name: str = ""


@dataclass(frozen=True)
class Status:
    state: str  # a SessionState
    reason: str = ""
    phone_number: str | None = None
    jid: str | None = None
    name: str = ""


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to send. ``to`` is E.164 digits or a JID (group JIDs included). Exactly one of
    ``text``, ``media_url`` / ``media_id``, ``template``, ``reaction_to`` is the point of it."""

    to: str
    text: str = ""
    media_type: str = ""  # image | video | audio | document | sticker
    media_url: str = ""
    media_id: str = ""  # an id the provider gave an upload (Cloud API)
    mime_type: str = ""
    filename: str = ""
    caption: str = ""
    reply_to: str = ""  # provider message id being answered
    template: Mapping[str, Any] | None = None  # {name, language, components}
    reaction_to: str = ""  # provider message id reacted to
    emoji: str = ""  # "" removes the reaction


@dataclass(frozen=True)
class Sent:
    provider_message_id: str
    recipient_id: str = ""  # the provider's canonical id for the recipient (Meta's wa_id)


# --- The contract --------------------------------------------------------------------------------


class Provider(ABC):
    name: ClassVar[str]
    label: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    credential_fields: ClassVar[tuple[CredentialField, ...]] = ()
    # For the session page's webhook section: how the provider learns where to post, and the
    # credential holding the secret its deliveries are checked with ("" = Parley's own
    # per-session secret, which the provider sends in the X-Parley-Secret header).
    webhook_help: ClassVar[str] = ""
    webhook_secret_credential: ClassVar[str] = ""

    def __init__(self, config: SessionConfig, *, base_url: str = "", timeout: float = 15.0):
        self.config = config
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    @classmethod
    def check_credentials(cls, credentials: Mapping[str, str]) -> dict[str, str]:
        """Field errors of a credentials form (``{field: message}``; empty when usable). The
        default asks for every required field; providers add their own rules."""
        return {
            f.name: f"{f.label} is required."
            for f in cls.credential_fields
            if f.required and not str(credentials.get(f.name) or "").strip()
        }

    # act
    @abstractmethod
    def connect(self) -> Pairing: ...

    def pairing_code(self, phone_number: str) -> Pairing:
        raise Unsupported("This provider pairs by QR code only.")

    @abstractmethod
    def status(self) -> Status: ...

    def disconnect(self) -> None:  # noqa: B027 - optional: stateless APIs have nothing to close
        """Close the connection, keeping the pairing."""

    def logout(self) -> None:
        """Unpair the device: the next connect needs a new QR code."""
        raise Unsupported("This provider cannot log out.")

    @abstractmethod
    def send(self, message: OutgoingMessage) -> Sent: ...

    def mark_read(self, chat_jid: str, provider_message_ids: list[str]) -> None:
        raise Unsupported("This provider cannot mark messages read.")

    def download_media(self, media: Any) -> tuple[bytes, str]:
        """``(content, mime type)`` of an ``events.Media``."""
        raise Unsupported("This provider cannot download media.")

    # verify
    @abstractmethod
    def verify(self, request: InboundRequest) -> None:
        """Raise ``Forged`` unless the request comes from this session's provider."""

    def challenge(self, request: InboundRequest) -> str | None:
        """The body answering a subscription handshake (GET), or None if this is not one. Raise
        ``Forged`` for a handshake with the wrong token."""
        return None

    def scrub(self, payload: Any) -> Any:
        """The payload as it may be stored: secrets a provider puts in bodies removed."""
        return payload

    def scrub_text(self, text: str) -> str:
        """A body that did not parse (truncated, not JSON), as it may be stored: every secret
        this session holds replaced by ``REDACTED``. Providers that put secrets of their own in
        bodies cut those out too."""
        secrets = [
            str(self.config.credentials.get(f.name) or "")
            for f in self.credential_fields
            if f.secret
        ]
        for secret in sorted({*secrets, self.config.webhook_secret}, key=len, reverse=True):
            if len(secret) >= 4:  # never a fragment so short it would mangle the body
                text = text.replace(secret, REDACTED)
        return text

    # translate
    @abstractmethod
    def translate(self, payload: Any, *, suffix: str = "") -> list[Event]:
        """The normalized events of one verified payload (parsed JSON). Unknown kinds: []."""


def hmac_sha256_matches(secret: str, body: bytes, header: str | None, *, prefix: str = "") -> bool:
    """Constant-time check of ``<prefix><hex HMAC-SHA256(body, secret)>``."""
    if not secret or not header:
        return False
    expected = prefix + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode())


def secret_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a shared secret (a header we configured on the gateway)."""
    if not expected or given is None:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
