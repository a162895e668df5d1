"""Apply what sessions_app publishes (``whatsapp.events``): every message, receipt and reaction
stored once.

``handle`` is the subscriber. It runs inside the drainer's transaction for one webhook row; if it
raises, that row's work is rolled back and retried later, so nothing is half-applied or lost.

- Messages are inserted with ``ON CONFLICT (session, provider_message_id) DO NOTHING``: a
  repeated delivery is the same row and changes nothing.
- Receipts only move a status forward (``STATUS_RANK``); ``failed`` is final. Reactions keep the
  newest per person. A receipt, reaction, edit or revoke for a message not stored yet waits in
  ``WaitingEvent`` and is applied when the message arrives.
- A batch of messages costs a constant number of statements, whatever its size (history syncs
  bring thousands; ``messaging.parties`` resolves people and chats the same way).
- After commit, ``message.received`` / ``message.status`` / ``message.reaction`` /
  ``message.changed`` / ``history.progress`` are announced through ``crm/events.py`` with id
  lists, and ``messages.applied`` with all of them at once for the organization (the inbox's live
  feed makes one frame of it; the drainer coalesces a batch's into one per organization).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from crm import events as bus
from crm.collector import collector_paused
from crm.text import has_nul, nul_replaced
from messaging import parties
from messaging.message_store import DEFAULTS, insert_made, link_quotes, touch_chats
from messaging.models import (
    STATUS_RANK,
    Chat,
    Direction,
    MediaState,
    Message,
    MessageStatus,
    Reaction,
    WaitingEvent,
)
from sessions_app.models import WhatsAppSession
from sessions_app.providers import events as ev

logger = logging.getLogger(__name__)

BATCH = 10_000  # messages per statement group in a history sync
RECEIVED = "message.received"
STATUS_CHANGED = "message.status"
REACTED = "message.reaction"
CHANGED = "message.changed"  # edited or deleted by its sender
HISTORY_PROGRESS = "history.progress"
APPLIED = "messages.applied"  # all of the above of one organization, together
STATUS_AT = {
    "sent": "sent_at",
    "delivered": "delivered_at",
    "read": "read_at",
    "played": "played_at",
    "failed": "failed_at",
}


@dataclass
class Applied:
    """What one call changed (for announcements and tests)."""

    lock: str = ""  # the session lock held: "", "shared" or "exclusive" (``_lock``)
    received: list[int] = field(default_factory=list)  # new incoming live messages
    live: list[int] = field(default_factory=list)  # new live messages, ours (an echo) too
    stored: list[int] = field(default_factory=list)  # every new message
    statuses: list[int] = field(default_factory=list)
    reactions: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)  # edited or revoked
    waiting: int = 0


def handle(*, organization_id: int, session_id: int, webhook_event_ids: list[int], events) -> None:
    """The ``whatsapp.events`` subscriber (see the module doc): the events of one or more
    webhook rows of one session, in the order they were received, applied together."""
    session = WhatsAppSession.objects.get(pk=session_id, organization_id=organization_id)
    applied = apply(session, events)
    _announce(session, applied)


def apply(session: WhatsAppSession, events: Iterable[ev.Event]) -> Applied:
    """Apply ``events`` of ``session`` in the current transaction. Messages and people first, so
    a receipt in the same delivery finds its message."""
    applied = Applied()
    events = list(events)
    has_messages = any(isinstance(e, ev.MessageUpserted | ev.HistoryBatch) for e in events)
    has_later = any(_is_later(e) for e in events)
    if has_messages:
        _lock(session, applied, exclusive=has_later)
    people = [e for e in events if isinstance(e, ev.ContactsUpserted)]
    if people:
        parties.contacts_for(session.organization, [p for e in people for p in e.contacts])
    for event in events:
        if isinstance(event, ev.GroupsUpdated):
            _groups(session, event.groups)
    live = [e for e in events if isinstance(e, ev.MessageUpserted)]
    if live:
        _messages(session, live, applied)
    for event in events:
        if isinstance(event, ev.HistoryBatch):
            history = [m for m in event.messages if isinstance(m, ev.MessageUpserted)]
            for start in range(0, len(history), BATCH):
                with collector_paused():  # thousands of short-lived rows (crm/collector.py)
                    _messages(session, history[start : start + BATCH], applied, history=True)
                bus.publish_on_commit(
                    HISTORY_PROGRESS,
                    organization_id=session.organization_id,
                    session_id=session.pk,
                    done=min(start + BATCH, len(history)),
                    total=len(history),
                    progress=event.progress,
                )
    _later_events(session, [e for e in events if _is_later(e)], applied)
    return applied


def _is_later(event) -> bool:
    return isinstance(
        event,
        ev.MessageStatusChanged | ev.ReactionReceived | ev.MessageEdited | ev.MessageRevoked,
    )


# --- Messages -------------------------------------------------------------------------------------


def party_of_jid(jid: str) -> ev.Party | None:
    """The other person of a direct chat, from the chat's JID (for our own messages, which
    carry no sender): a phone JID, an ``@lid``, or the bare digits Cloud API uses."""
    user, _, server = (jid or "").partition("@")
    user = user.split(":", 1)[0]
    if server == "lid":
        return ev.Party(lid=f"{user}@lid")
    if server in ("s.whatsapp.net", "c.us", "") and user.isdigit():
        return ev.Party(phone=user, jid=f"{user}@s.whatsapp.net")
    # Anything else (a JID we do not understand) is still someone: keyed by the JID itself, so
    # the message is kept rather than dropped.
    return ev.Party(jid=jid.strip()[:128]) if jid and jid.strip() else None


def _with_id(message: ev.MessageUpserted) -> ev.MessageUpserted:
    """A message the provider gave no id still gets a stable one (from what it says), so it is
    stored, and stored once however often it is delivered."""
    if message.provider_message_id:
        return message
    seen = "\x1f".join(
        [message.chat_jid, message.timestamp.isoformat(), str(message.from_me), message.body]
    )
    digest = hashlib.sha256(seen.encode()).hexdigest()[:32]
    return dataclasses.replace(message, provider_message_id=f"parley:{digest}")


def _is_group(message: ev.MessageUpserted) -> bool:
    return message.chat_is_group or message.chat_jid.endswith(("@g.us", "@broadcast"))


def _messages(
    session: WhatsAppSession,
    messages: list[ev.MessageUpserted],
    applied: Applied,
    *,
    history: bool = False,
) -> None:
    messages = [_with_id(m) for m in messages if m.chat_jid]
    messages = list({m.provider_message_id: m for m in messages}.values())  # a repeat in one batch
    if not messages:
        return
    # Who: the other person of each direct chat, and each message's sender.
    chat_party: dict[str, ev.Party | None] = {}
    for m in messages:
        if not _is_group(m) and m.chat_jid not in chat_party:
            chat_party[m.chat_jid] = (
                m.sender if (m.sender and not m.from_me) else party_of_jid(m.chat_jid)
            )
    senders = [m.sender for m in messages if m.sender and not m.from_me]
    known = parties.contacts_for(
        session.organization, [*senders, *(p for p in chat_party.values() if p)]
    )
    # Where: each message's chat.
    keys: dict[parties.ChatKey, str] = {}
    key_of: dict[str, parties.ChatKey] = {}
    for m in messages:
        if _is_group(m):
            key = ("group", m.chat_jid[:128])
        else:
            party = chat_party[m.chat_jid]
            contact_id = known.get(party) if party else None
            if contact_id is None:
                logger.warning("message %s: no usable chat JID", m.provider_message_id)
                continue
            key = ("direct", contact_id)
        keys.setdefault(key, m.chat_jid)
        key_of[m.provider_message_id] = key
    chats = parties.chat_ids_for(session, keys)
    now = timezone.now()

    organization_id, session_id = session.organization_id, session.pk

    def row_of(m: ev.MessageUpserted) -> dict:
        chat_id = chats[key_of[m.provider_message_id]]
        return _row(organization_id, session_id, m, chat_id, known, history, now)

    def keys_of(m: ev.MessageUpserted) -> tuple[int, str, str]:
        return session_id, m.provider_message_id[:128], (m.quoted_id or "")[:128]

    fresh = insert_made([m for m in messages if m.provider_message_id in key_of], row_of, keys_of)
    if not fresh:
        return
    new = {row["provider_message_id"]: row["id"] for row in fresh}
    link_quotes(
        session,
        [
            new[r["provider_message_id"]]
            for r in fresh
            if r["quoted_provider_id"] and not r.get("quoted_id")
        ],
    )
    touch_chats(fresh)
    ids = list(new.values())
    applied.stored.extend(ids)
    if not history:
        applied.live.extend(new[r["provider_message_id"]] for r in fresh if not r["history"])
        applied.received.extend(
            new[r["provider_message_id"]] for r in fresh if r["direction"] == Direction.IN
        )
    _waiting_now_due(session, list(new), applied)
    media = [new[r["provider_message_id"]] for r in fresh if r["media_state"]]
    if media:
        from messaging.tasks import download_media

        for message_id in media:
            transaction.on_commit(lambda pk=message_id: download_media.delay(pk))


def _row(
    organization_id: int,
    session_id: int,
    m: ev.MessageUpserted,
    chat_id: int,
    known: dict[ev.Party, int],
    history: bool,
    now: dt.datetime,
) -> dict:
    data = {}
    if m.location:
        data["location"] = m.location
    if m.contacts:
        data["contacts"] = m.contacts
    if m.interactive:
        data["interactive"] = m.interactive
    if m.forwarded:
        data["forwarded"] = True
    media = {k: v for k, v in vars(m.media).items() if v} if m.media else {}
    out = m.from_me
    sender = None if out else m.sender
    return _without_nul(
        {
            "organization_id": organization_id,
            "uuid": uuid.uuid4(),
            "session_id": session_id,
            "chat_id": chat_id,
            "provider_message_id": m.provider_message_id[:128],
            "direction": _OUT if out else _IN,
            "sender_id": known.get(sender) if sender else None,
            "sender_jid": ((sender.jid or sender.lid or sender.wa_id or "") if sender else "")[
                :128
            ],
            "push_name": (sender.name if sender else "")[:200],
            "type": m.type[:12],
            "body": m.body,
            "caption": m.caption,
            "data": data,
            "media": media,
            "media_state": _MEDIA_PENDING if media else _NO_MEDIA,
            "quoted_provider_id": (m.quoted_id or "")[:128],
            "status": _SENT if out else _RECEIVED,
            "sent_at": m.timestamp if out else None,
            "timestamp": m.timestamp,
            "history": history or m.history,
            "created_at": now,
            **DEFAULTS,
        }
    )


_IN, _OUT = Direction.IN, Direction.OUT
_SENT, _RECEIVED = MessageStatus.SENT, MessageStatus.RECEIVED
_MEDIA_PENDING, _NO_MEDIA = MediaState.PENDING, MediaState.NONE


def _without_nul(row: dict) -> dict:
    """PostgreSQL stores no NUL character in text or JSON: one a provider sent becomes U+FFFD
    (visible, and the message kept) instead of failing the whole delivery."""
    if (
        "\x00" in row["body"]
        or "\x00" in row["caption"]
        or "\x00" in row["push_name"]
        or "\x00" in row["sender_jid"]
        or (row["data"] and has_nul(row["data"]))
        or (row["media"] and has_nul(row["media"]))
    ):
        for name in ("body", "caption", "push_name", "sender_jid", "data", "media"):
            row[name] = nul_replaced(row[name])
    return row


def _groups(session: WhatsAppSession, groups: list[ev.Group]) -> None:
    groups = [g for g in groups if g.jid]
    if not groups:
        return
    people = parties.contacts_for(session.organization, [p for g in groups for p in g.participants])
    chats = parties.chats_for(session, {("group", g.jid[:128]): g.jid for g in groups})
    changed = []
    for group in groups:
        chat = chats[("group", group.jid[:128])]
        participants = [
            {"jid": p.jid or p.lid or "", "contact_id": people.get(p)} for p in group.participants
        ]
        name = group.name[:200] or chat.name
        if name != chat.name or (participants and participants != chat.participants):
            chat.name = name
            chat.participants = participants or chat.participants
            changed.append(chat)
    if changed:
        Chat.objects.bulk_update(changed, ["name", "participants"])


# --- Receipts, reactions, edits, revokes ------------------------------------------------------------


def _lock(session: WhatsAppSession, applied: Applied, *, exclusive: bool) -> None:
    """The session's ingest lock, to the end of the transaction (PostgreSQL; SQLite has one
    writer at a time anyway). Storing messages takes it shared; keeping an event waiting takes
    it exclusive, after which it looks for the message again. So a message and an event waiting
    for it never commit unseen by each other: either the event finds the message, or the
    message's writer finds the event (``_waiting_now_due``). Never upgraded from shared (two
    upgraders would deadlock): ``apply`` takes it exclusive up front when it may need to."""
    if applied.lock == "exclusive" or (applied.lock == "shared" and not exclusive):
        return
    assert not applied.lock, "the ingest lock is never upgraded"
    applied.lock = "exclusive" if exclusive else "shared"
    if connection.vendor == "postgresql":
        function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {function}(hashtextextended(%s, 0))", [f"parley.ingest:{session.pk}"]
            )


def _messages_by_id(session: WhatsAppSession, ids: Iterable[str]) -> dict[str, Message]:
    ids = sorted(set(ids))
    found: dict[str, Message] = {}
    for start in range(0, len(ids), 1000):
        for message in Message.objects.filter(
            session_id=session.pk, provider_message_id__in=ids[start : start + 1000]
        ).only("id", "provider_message_id", "status", "body", "edits", "revoked_at"):
            found[message.provider_message_id] = message
    return found


def _later_events(session: WhatsAppSession, events: list, applied: Applied) -> None:
    """Apply each event to its message, or keep it waiting for the message."""
    events = [e for e in events if e.provider_message_id]
    if not events:
        return
    messages = _messages_by_id(session, (e.provider_message_id for e in events))
    missing = {e.provider_message_id for e in events} - set(messages)
    if missing and applied.lock != "exclusive":
        _lock(session, applied, exclusive=True)
        messages.update(_messages_by_id(session, missing))  # stored meanwhile?
    waiting = []
    statuses: dict[str, list[tuple[Message, ev.MessageStatusChanged]]] = {}
    for event in events:
        message = messages.get(event.provider_message_id)
        if message is None:
            waiting.append(event)
            continue
        if isinstance(event, ev.MessageStatusChanged):
            statuses.setdefault(event.status, []).append((message, event))
        elif isinstance(event, ev.ReactionReceived):
            if _react(session, message, event):
                applied.reactions.append(message.pk)
        elif isinstance(event, ev.MessageEdited):
            if _edit(message, event):
                applied.changed.append(message.pk)
        elif isinstance(event, ev.MessageRevoked) and _revoke(message, event):
            applied.changed.append(message.pk)
    for status, pairs in statuses.items():
        applied.statuses.extend(_advance(status, pairs))
    _wait(session, waiting)
    applied.waiting += len(waiting)


def _advance(status: str, pairs: list[tuple[Message, ev.MessageStatusChanged]]) -> list[int]:
    """Move these messages to ``status`` where that is forward (one statement per thousand);
    returns the ids that moved. A repeated or late receipt matches no row and writes nothing."""
    if status == ev.DeliveryStatus.FAILED:
        allowed = [s for s in STATUS_RANK if STATUS_RANK[s] < STATUS_RANK["read"]]
    elif status in STATUS_RANK:
        allowed = [s for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[status]]
    else:
        return []
    ops = connection.ops
    table = ops.quote_name(Message._meta.db_table)
    column = ops.quote_name(STATUS_AT[status])
    failed = status == ev.DeliveryStatus.FAILED
    extra = ", error_code = v.code, error_text = v.text" if failed else ""
    moved: list[int] = []
    with connection.cursor() as cursor:
        for start in range(0, len(pairs), 1000):
            chunk = pairs[start : start + 1000]
            params: list = []
            for message, event in chunk:
                params += [message.pk, ops.adapt_datetimefield_value(event.timestamp)]
                if failed:
                    params += [event.error_code[:40], event.error_text[:500]]
            width = 4 if failed else 2
            values = ", ".join(["(" + ", ".join(["%s"] * width) + ")"] * len(chunk))
            names = "id, at, code, text" if failed else "id, at"
            cursor.execute(
                f"WITH v({names}) AS (VALUES {values}) "  # noqa: S608 - names from the model
                f"UPDATE {table} SET status = %s, {column} = v.at{extra} FROM v "
                f"WHERE {table}.id = v.id AND {table}.status IN "
                f"({', '.join(['%s'] * len(allowed))}) RETURNING {table}.id",
                [*params, status, *allowed],
            )
            moved += [row[0] for row in cursor.fetchall()]
    return moved


def _react(session: WhatsAppSession, message: Message, event: ev.ReactionReceived) -> bool:
    """Keep the newest reaction per person. True if it changed something."""
    sender = event.sender
    actor = (
        "me"
        if event.from_me
        else (sender.jid or sender.lid or sender.wa_id or "")
        if sender
        else ""
    )
    if not actor:
        return False
    contact_id = None
    if sender and not event.from_me:
        contact_id = parties.contacts_for(session.organization, [sender]).get(sender)
    current = Reaction.objects.filter(message=message, actor=actor[:140]).first()
    if current is None:
        Reaction.objects.bulk_create(
            [
                Reaction(
                    organization_id=session.organization_id,
                    message=message,
                    actor=actor[:140],
                    sender_id=contact_id,
                    emoji=event.emoji[:40],
                    timestamp=event.timestamp,
                )
            ],
            ignore_conflicts=True,
        )
        return True
    if current.timestamp >= event.timestamp:
        return False  # an older or repeated reaction
    return bool(
        Reaction.objects.filter(pk=current.pk, timestamp__lt=event.timestamp).update(
            emoji=event.emoji[:40], timestamp=event.timestamp
        )
    )


def _edit(message: Message, event: ev.MessageEdited) -> bool:
    """The new text, the old one kept in ``edits``; False when it was applied already."""
    at = event.timestamp.isoformat()
    locked = Message.objects.select_for_update().only("id", "body", "edits").get(pk=message.pk)
    if any(edit.get("at") == at for edit in locked.edits) or locked.body == event.body:
        return False
    locked.edits = [*locked.edits, {"body": locked.body, "at": at}]
    locked.body = event.body
    locked.save(update_fields=["body", "edits"])
    return True


def _revoke(message: Message, event: ev.MessageRevoked) -> bool:
    return bool(
        Message.objects.filter(pk=message.pk, revoked_at__isnull=True).update(
            revoked_at=event.timestamp
        )
    )


def _wait(session: WhatsAppSession, events: list) -> None:
    if not events:
        return
    WaitingEvent.objects.bulk_create(
        [
            WaitingEvent(
                organization_id=session.organization_id,
                session=session,
                provider_message_id=e.provider_message_id[:128],
                key=hashlib.sha256(json.dumps(e.to_dict(), sort_keys=True).encode()).hexdigest(),
                event=e.to_dict(),
            )
            for e in events
        ],
        ignore_conflicts=True,
        batch_size=1000,
    )


def _waiting_now_due(session: WhatsAppSession, provider_ids: list[str], applied: Applied) -> None:
    """Events that waited for these (just stored) messages: applied now, then deleted."""
    # Under the ingest lock, held shared at least: an event starts waiting only under it held
    # exclusive, so what this sees cannot change before the commit. Usually nothing waits.
    waiting = WaitingEvent.objects.filter(session=session)
    if not provider_ids or not waiting.exists():
        return
    due = []
    for start in range(0, len(provider_ids), 1000):
        due.extend(
            waiting.filter(provider_message_id__in=provider_ids[start : start + 1000]).order_by(
                "id"
            )
        )
    if not due:
        return
    events = sorted((ev.Event.from_dict(w.event) for w in due), key=lambda e: e.timestamp)
    WaitingEvent.objects.filter(pk__in=[w.pk for w in due]).delete()
    _later_events(session, events, applied)


def message_identified(
    session: WhatsAppSession, provider_message_id: str, applied: Applied
) -> None:
    """A message of ours just got its provider id (the send path): receipts and reactions that
    arrived for that id before it was known are applied now."""
    _lock(session, applied, exclusive=False)
    _waiting_now_due(session, [provider_message_id], applied)
    _announce(session, applied)


# --- Announcements -------------------------------------------------------------------------------


def _announce(session: WhatsAppSession, applied: Applied) -> None:
    common = {"organization_id": session.organization_id, "session_id": session.pk}
    if applied.received:
        bus.publish_on_commit(RECEIVED, message_ids=applied.received, **common)
    if applied.statuses:
        bus.publish_on_commit(STATUS_CHANGED, message_ids=applied.statuses, **common)
    if applied.reactions:
        bus.publish_on_commit(REACTED, message_ids=applied.reactions, **common)
    if applied.changed:
        bus.publish_on_commit(CHANGED, message_ids=applied.changed, **common)
    if applied.live or applied.statuses or applied.reactions or applied.changed:
        bus.publish_on_commit(
            APPLIED,
            organization_id=session.organization_id,
            live=applied.live,
            received=applied.received,
            statuses=applied.statuses,
            reactions=applied.reactions,
            changed=applied.changed,
        )
