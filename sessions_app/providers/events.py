"""Normalized events: what a provider's payload means, whoever sent it.

A provider's ``translate`` turns one inbound payload into a list of these. They are plain, frozen
values (no models, no I/O): ``sessions_app`` applies the session events (``QrUpdated``,
``PairingCodeIssued``, ``ConnectionChanged``) and publishes every event through ``crm/events.py``
for the apps above it. ``to_dict`` / ``from_dict`` give a JSON form for the queue and for tests.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, ClassVar


class SessionState:
    """The session states a provider can report (``sessions_app.models.SessionStatus`` values)."""

    DISCONNECTED = "disconnected"
    QR = "qr"
    CONNECTING = "connecting"
    READY = "ready"
    LOGGED_OUT = "logged_out"
    FAILED = "failed"


class MessageType:
    TEXT = "text"
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    VOICE = "voice"
    STICKER = "sticker"
    DOCUMENT = "document"
    LOCATION = "location"
    CONTACT = "contact"
    REACTION = "reaction"
    INTERACTIVE = "interactive"
    SYSTEM = "system"
    OTHER = "other"


class DeliveryStatus:
    """Forward order: pending < sent < delivered < read < played; ``failed`` is final."""

    PENDING = "pending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    PLAYED = "played"
    FAILED = "failed"

    ORDER: ClassVar[dict[str, int]] = {
        "pending": 0,
        "sent": 1,
        "delivered": 2,
        "read": 3,
        "played": 4,
    }


@dataclass(frozen=True)
class Party:
    """A person (or group) as a provider names them. Any of the ids may be missing: a Cloud API
    user may come with only a ``bsuid``, a linked-device ``@lid`` sender with or without its phone.

    ``phone`` is E.164 digits without '+'; ``jid`` a phone JID (``…@s.whatsapp.net``); ``lid`` a
    linked-device id (``…@lid``); ``wa_id`` Meta's id; ``bsuid`` Meta's business-scoped user id."""

    phone: str | None = None
    jid: str | None = None
    lid: str | None = None
    wa_id: str | None = None
    bsuid: str | None = None
    name: str = ""  # push / profile name, as the person set it
    verified_name: str = ""


@dataclass(frozen=True)
class Media:
    """Where a message's media can be fetched by the provider's ``download_media``."""

    id: str | None = None  # provider media id (Cloud API)
    url: str | None = None  # a URL the provider serves (gateways)
    path: str | None = None  # a path on the gateway's disk (GOWA with auto-download)
    mime_type: str = ""
    filename: str = ""
    sha256: str = ""
    size: int | None = None


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **_plain(dataclasses.asdict(self))}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Event:
        cls = EVENT_TYPES[data["kind"]]
        return _build(cls, {k: v for k, v in data.items() if k != "kind"})


@dataclass(frozen=True)
class QrUpdated(Event):
    kind: ClassVar[str] = "qr_updated"
    qr: str  # the text the QR code encodes (we render it)
    expires_at: dt.datetime | None = None
    image: str = ""  # a data: URI when the provider renders one itself


@dataclass(frozen=True)
class PairingCodeIssued(Event):
    kind: ClassVar[str] = "pairing_code"
    code: str
    expires_at: dt.datetime | None = None


@dataclass(frozen=True)
class ConnectionChanged(Event):
    kind: ClassVar[str] = "connection_changed"
    state: str  # a SessionState
    reason: str = ""
    phone_number: str | None = None
    jid: str | None = None
    name: str = ""


@dataclass(frozen=True)
class MessageUpserted(Event):
    kind: ClassVar[str] = "message_upserted"
    provider_message_id: str
    chat_jid: str  # the conversation: the other party's JID / wa_id, or a group JID
    from_me: bool
    timestamp: dt.datetime
    type: str = MessageType.TEXT
    sender: Party | None = None  # None when from_me
    chat_is_group: bool = False
    body: str = ""
    caption: str = ""
    media: Media | None = None
    quoted_id: str | None = None
    forwarded: bool = False
    location: dict | None = None  # {latitude, longitude, name, address}
    contacts: list[dict] = field(default_factory=list)  # shared contact cards
    interactive: dict | None = None  # {type, id, title} of a button or list reply
    history: bool = False  # from a history sync or own-device append, not a live message
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MessageEdited(Event):
    kind: ClassVar[str] = "message_edited"
    provider_message_id: str
    chat_jid: str
    body: str
    timestamp: dt.datetime


@dataclass(frozen=True)
class MessageRevoked(Event):
    kind: ClassVar[str] = "message_revoked"
    provider_message_id: str
    chat_jid: str
    timestamp: dt.datetime


@dataclass(frozen=True)
class MessageStatusChanged(Event):
    kind: ClassVar[str] = "message_status"
    provider_message_id: str
    status: str  # a DeliveryStatus
    timestamp: dt.datetime
    chat_jid: str = ""
    recipient: Party | None = None
    error_code: str = ""
    error_text: str = ""


@dataclass(frozen=True)
class ReactionReceived(Event):
    kind: ClassVar[str] = "reaction"
    provider_message_id: str  # the message reacted to
    chat_jid: str
    emoji: str  # "" = reaction removed
    timestamp: dt.datetime
    sender: Party | None = None
    from_me: bool = False


@dataclass(frozen=True)
class ContactsUpserted(Event):
    kind: ClassVar[str] = "contacts_upserted"
    contacts: list[Party] = field(default_factory=list)


@dataclass(frozen=True)
class Group:
    jid: str
    name: str = ""
    participants: list[Party] = field(default_factory=list)


@dataclass(frozen=True)
class GroupsUpdated(Event):
    kind: ClassVar[str] = "groups_updated"
    groups: list[Group] = field(default_factory=list)


@dataclass(frozen=True)
class HistoryBatch(Event):
    kind: ClassVar[str] = "history_batch"
    messages: list[MessageUpserted] = field(default_factory=list)
    progress: int | None = None  # percent, when the provider says


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        QrUpdated,
        PairingCodeIssued,
        ConnectionChanged,
        MessageUpserted,
        MessageEdited,
        MessageRevoked,
        MessageStatusChanged,
        ReactionReceived,
        ContactsUpserted,
        GroupsUpdated,
        HistoryBatch,
    )
}
SESSION_EVENTS = (QrUpdated, PairingCodeIssued, ConnectionChanged)


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


_NESTED = {"sender": Party, "recipient": Party, "media": Media}


def _build(cls: type, data: dict[str, Any]) -> Any:
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        if value is not None and f.name in _NESTED:
            value = _NESTED[f.name](**value)
        elif f.name == "contacts" and cls is ContactsUpserted:
            value = [Party(**v) for v in value]
        elif f.name == "groups":
            value = [
                Group(g["jid"], g.get("name", ""), [Party(**p) for p in g.get("participants", [])])
                for g in value
            ]
        elif f.name == "messages":
            value = [_build(MessageUpserted, m) for m in value]
        elif f.name in {"timestamp", "expires_at"} and isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        kwargs[f.name] = value
    return cls(**kwargs)
