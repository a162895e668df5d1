"""Write paths of conversations: read state, archive, assignment, status, reactions we send, and
the idempotency keys of the send API."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Membership, Organization, User
from accounts.tenancy import scoped
from crm import events as bus
from crm.errors import ApplicationError, Conflict
from messaging.models import (
    Chat,
    ChatStatus,
    Direction,
    IdempotencyKey,
    Message,
    Reaction,
)

CHAT_CHANGED = "chat.changed"  # read state, status, assignee or archive; announced after commit
KEY_LIFETIME = dt.timedelta(hours=24)
ABANDONED = dt.timedelta(seconds=60)  # a key whose request died before it wrote its message


def chat_mark_read(*, organization: Organization, chat: Chat) -> list[str]:
    """Unread count to zero; returns the provider ids of the incoming messages to acknowledge
    (the caller's task sends the read receipt where the session's policy allows it)."""
    with transaction.atomic():
        if scoped(Chat, organization).filter(pk=chat.pk, unread_count__gt=0).update(unread_count=0):
            _changed(organization.pk, [chat.pk])
        ids = list(
            scoped(Message, organization)
            .filter(chat=chat, direction=Direction.IN, read_at__isnull=True)
            .exclude(provider_message_id=None)
            .order_by("-timestamp")
            .values_list("provider_message_id", flat=True)[:50]
        )
    session = chat.session
    if ids and (session.settings or {}).get("read_receipts", True):
        from messaging.tasks import send_read_receipts

        transaction.on_commit(lambda: send_read_receipts.delay(chat.pk, ids))
    return ids


def chat_mark_unread(*, organization: Organization, chat: Chat) -> None:
    """Back on the team's unread list (at least one unread); nothing is sent to the contact."""
    if scoped(Chat, organization).filter(pk=chat.pk, unread_count=0).update(unread_count=1):
        _changed(organization.pk, [chat.pk])


def _changed(organization_id: int, chat_ids: list[int]) -> None:
    bus.publish_on_commit(CHAT_CHANGED, organization_id=organization_id, chat_ids=chat_ids)


def chat_update(
    *,
    organization: Organization,
    chat: Chat,
    archived: bool | None = None,
    status: str | None = None,
    snoozed_until: dt.datetime | None = None,
    assignee_id: int | type[...] | None = ...,
) -> Chat:
    """Archive, open / resolve / snooze (until a time in the future), assign (a member of the
    organization, or nobody)."""
    chat = scoped(Chat, organization).select_for_update().get(pk=chat.pk)
    fields = []
    if archived is not None:
        chat.archived = archived
        fields.append("archived")
    if status is not None:
        if status not in ChatStatus.values:
            raise ApplicationError(_("Unknown status."), fields={"status": [", ".join(ChatStatus)]})
        if status == ChatStatus.SNOOZED and (not snoozed_until or snoozed_until <= timezone.now()):
            raise ApplicationError(
                _("Snooze until a time in the future."),
                fields={"snoozed_until": [_("Required, in the future.")]},
            )
        chat.status = status
        chat.snoozed_until = snoozed_until if status == ChatStatus.SNOOZED else None
        fields += ["status", "snoozed_until"]
    if assignee_id is not ...:
        if (
            assignee_id is not None
            and not scoped(Membership, organization)
            .filter(user_id=assignee_id, is_active=True)
            .exists()
        ):
            raise ApplicationError(
                _("Assign to a member of this organization."),
                fields={"assignee": [_("Not a member.")]},
            )
        chat.assignee_id = assignee_id
        fields.append("assignee")
    if fields:
        chat.save(update_fields=[*fields, "updated_at"])
        _changed(organization.pk, [chat.pk])
    return chat


WAKE_BATCH = 5000


def chats_wake(*, now: dt.datetime | None = None) -> int:
    """Beat: snoozed chats whose time has come are open again (and their inboxes told). Returns
    how many."""
    due = Chat.objects.filter(status=ChatStatus.SNOOZED, snoozed_until__lte=now or timezone.now())
    woken = 0
    while rows := list(due.values_list("pk", "organization_id")[:WAKE_BATCH]):
        with transaction.atomic():
            woken += due.filter(pk__in=[pk for pk, _org in rows]).update(
                status=ChatStatus.OPEN, snoozed_until=None
            )
            by_organization: dict[int, list[int]] = {}
            for pk, organization_id in rows:
                by_organization.setdefault(organization_id, []).append(pk)
            for organization_id, chat_ids in by_organization.items():
                _changed(organization_id, chat_ids)
        if len(rows) < WAKE_BATCH:
            break
    return woken


def reaction_send(
    *, organization: Organization, message: Message, emoji: str, actor: User | None
) -> Reaction:
    """Our reaction to a message ("" removes it): stored at once, sent by a task (a reaction is
    a state, so sending it again is harmless)."""
    if len(emoji) > 40 or "\x00" in emoji:
        raise ApplicationError(_("Send one emoji."), fields={"emoji": [_("Too long.")]})
    if not message.provider_message_id:
        raise Conflict(_("This message has not reached WhatsApp yet."), code="not_sent")
    now = timezone.now()
    reaction, _created = Reaction.objects.update_or_create(
        message=message,
        actor="me",
        defaults={"organization": organization, "emoji": emoji, "timestamp": now},
    )
    from messaging.tasks import send_reaction

    transaction.on_commit(lambda: send_reaction.delay(message.pk, emoji))
    return reaction


# --- Idempotency keys ----------------------------------------------------------------------------


def fingerprint(body: dict) -> str:
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


class KeyReused(ApplicationError):
    status = 422
    code = "idempotency_key_reused"


class KeyInFlight(Conflict):
    code = "idempotency_key_in_flight"


def idempotent(
    *, organization: Organization, key: str, body: dict, create: Callable[[], Message]
) -> tuple[Message, bool]:
    """``create()`` once per key: ``(message, replayed)``. The same key with another body is a
    422; while the first request with a key is still being handled, a second one is a 409."""
    if not key or len(key) > 200:
        raise ApplicationError(_("An Idempotency-Key is 1 to 200 characters."), code="invalid_key")
    print_ = fingerprint(body)
    now = timezone.now()
    scoped(IdempotencyKey, organization).filter(key=key, expires_at__lte=now).delete()
    scoped(IdempotencyKey, organization).filter(
        key=key, message__isnull=True, created_at__lte=now - ABANDONED
    ).delete()
    try:
        with transaction.atomic():  # committed on its own: a concurrent duplicate sees it
            row = IdempotencyKey.objects.create(
                organization=organization,
                key=key,
                fingerprint=print_,
                expires_at=now + KEY_LIFETIME,
            )
    except IntegrityError:
        existing = scoped(IdempotencyKey, organization).filter(key=key).first()
        if existing is None:  # expired and removed between the two statements
            return idempotent(organization=organization, key=key, body=body, create=create)
        if existing.fingerprint != print_:
            raise KeyReused(_("This Idempotency-Key was used for a different request.")) from None
        if existing.message_id is None:
            raise KeyInFlight(
                _("A request with this Idempotency-Key is still being handled.")
            ) from None
        return existing.message, True
    try:
        message = create()
    except Exception:
        row.delete()  # the request failed: the key may be used again
        raise
    IdempotencyKey.objects.filter(pk=row.pk).update(message=message)
    return message, False


# --- Merge and erase (called by the address book's contact_merge / contact_erase) ----------------


def chats_merge_contacts(*, organization: Organization, survivor_id: int, other_id: int) -> None:
    """``other``'s conversations become ``survivor``'s: per session, one direct chat (the
    messages of the other's chat move into the survivor's, counts and times combined); the
    messages and reactions they sent are attributed to the survivor."""
    from django.db.models import F

    mine = {
        chat.session_id: chat
        for chat in scoped(Chat, organization).filter(contact_id=survivor_id, kind="direct")
    }
    for chat in scoped(Chat, organization).select_for_update().filter(contact_id=other_id):
        keep = mine.get(chat.session_id) if chat.kind == "direct" else None
        if keep is None:
            Chat.objects.filter(pk=chat.pk).update(contact_id=survivor_id)
            continue
        Message.objects.filter(chat=chat).update(chat=keep)
        keep.unread_count = F("unread_count") + chat.unread_count
        for field in ("last_message_at", "last_incoming_at"):
            theirs, ours = getattr(chat, field), getattr(keep, field)
            if theirs and (not ours or theirs > ours):
                setattr(keep, field, theirs)
        keep.save(update_fields=["unread_count", "last_message_at", "last_incoming_at"])
        chat.delete()
    scoped(Message, organization).filter(sender_id=other_id).update(sender_id=survivor_id)
    scoped(Reaction, organization).filter(sender_id=other_id).update(sender_id=survivor_id)


def contact_messages_erase(*, organization: Organization, contact_id: int) -> list[str]:
    """Remove what a person wrote or received: their direct chats with every message, the
    messages they sent in groups, their reactions. Returns the storage keys of the media those
    messages held (the caller deletes them after commit)."""
    chats = scoped(Chat, organization).filter(contact_id=contact_id)
    messages = scoped(Message, organization).filter(Q(chat__in=chats) | Q(sender_id=contact_id))
    keys = [k for k in messages.exclude(media_key="").values_list("media_key", flat=True)]
    messages.delete()
    chats.delete()
    scoped(Reaction, organization).filter(sender_id=contact_id).delete()
    return keys


def media_delete_on_commit(keys: list[str]) -> None:
    from django.core.files.storage import default_storage

    def delete() -> None:
        for key in keys:
            default_storage.delete(key)

    if keys:
        transaction.on_commit(delete)
