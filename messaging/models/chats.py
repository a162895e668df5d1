"""Conversations: chats, messages, reactions, and the events that wait for their message.

A direct chat is keyed by (session, contact), so a phone JID and an ``@lid`` of one person never
split a conversation; a group chat by (session, group JID). A message is unique by (session,
provider message id): every repeated delivery of it is the same row. An outbound message is
written before the provider knows it (``provider_message_id`` empty until it is sent).

Like the address book's child rows, these carry a copy of their parent's organization with no
second database key to it (messaging/models/contacts.py explains why).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from accounts.models import Organization
from messaging.models.contacts import Contact
from sessions_app.models import WhatsAppSession


class ChatKind(models.TextChoices):
    DIRECT = "direct", _("Direct")
    GROUP = "group", _("Group")
    BROADCAST = "broadcast", _("Broadcast")


class ChatStatus(models.TextChoices):
    OPEN = "open", _("Open")
    RESOLVED = "resolved", _("Resolved")
    SNOOZED = "snoozed", _("Snoozed")


def _org_copy():
    return models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,  # every index starts with it
        db_constraint=False,  # a copy of the session's (module doc)
    )


class Chat(models.Model):
    organization = _org_copy()
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    session = models.ForeignKey(
        WhatsAppSession, on_delete=models.CASCADE, related_name="chats", db_index=False
    )
    kind = models.CharField(max_length=10, choices=ChatKind.choices, default=ChatKind.DIRECT)
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.CASCADE, related_name="chats"
    )
    # The address to send to: the contact's JID as last seen, or the group's JID.
    jid = models.CharField(max_length=128, blank=True)
    name = models.CharField(max_length=200, blank=True)  # a group's subject
    participants = models.JSONField(default=list, blank=True)  # a group's, as the provider said
    status = models.CharField(max_length=10, choices=ChatStatus.choices, default=ChatStatus.OPEN)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    needs_human = models.BooleanField(default=False)
    unread_count = models.PositiveIntegerField(default=0)
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_incoming_at = models.DateTimeField(null=True, blank=True)  # Cloud API's 24 h window
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("chat")
        verbose_name_plural = _("chats")
        ordering = ["-last_message_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "contact"],
                condition=Q(kind="direct"),
                name="chat_direct_per_session",
            ),
            models.UniqueConstraint(
                fields=["session", "jid"],
                condition=~Q(kind="direct"),
                name="chat_group_per_session",
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "-last_message_at", "-id"], name="chat_org_activity"
            ),
            models.Index(
                fields=["snoozed_until"],
                condition=Q(snoozed_until__isnull=False),
                name="chat_snoozed",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.jid or f"chat #{self.pk}"


class Direction(models.TextChoices):
    IN = "in", _("Incoming")
    OUT = "out", _("Outgoing")


class MessageStatus(models.TextChoices):
    """Outbound: pending → queued → sending → sent → delivered → read → played; ``failed`` is
    final for receipts. Incoming messages are ``received``."""

    PENDING = "pending", _("Pending")
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    READ = "read", _("Read")
    PLAYED = "played", _("Played")
    FAILED = "failed", _("Failed")
    RECEIVED = "received", _("Received")


# How far a message has gone: a receipt only ever raises it.
STATUS_RANK = {
    "pending": 0,
    "queued": 1,
    "sending": 2,
    "received": 3,
    "sent": 3,
    "delivered": 4,
    "read": 5,
    "played": 6,
}


class MediaState(models.TextChoices):
    NONE = "", _("No media")
    PENDING = "pending", _("Downloading")
    STORED = "stored", _("Stored")
    FAILED = "failed", _("Could not be downloaded")


class Message(models.Model):
    organization = _org_copy()
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    session = models.ForeignKey(
        WhatsAppSession, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    # No index of its own: ``message_chat_time`` starts with it (one index fewer for every write).
    chat = models.ForeignKey(
        Chat, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    provider_message_id = models.CharField(max_length=128, null=True, blank=True)
    direction = models.CharField(max_length=3, choices=Direction.choices)
    sender = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sender_jid = models.CharField(max_length=128, blank=True)
    push_name = models.CharField(max_length=200, blank=True)
    type = models.CharField(max_length=12, default="text")
    body = models.TextField(blank=True)
    caption = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)  # location, contact cards, buttons…
    media = models.JSONField(default=dict, blank=True)  # where the provider serves it
    media_state = models.CharField(
        max_length=8, choices=MediaState.choices, default=MediaState.NONE, blank=True
    )
    media_key = models.CharField(max_length=300, blank=True)  # in storage
    media_mime = models.CharField(max_length=100, blank=True)
    media_size = models.BigIntegerField(null=True, blank=True)
    quoted = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    quoted_provider_id = models.CharField(max_length=128, blank=True)
    edits = models.JSONField(default=list, blank=True)  # [{"body": previous, "at": iso}, …]
    revoked_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=MessageStatus.choices)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    played_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error_text = models.CharField(max_length=500, blank=True)
    timestamp = models.DateTimeField()  # when it was sent, by the provider's clock
    history = models.BooleanField(default=False)  # from a history sync
    created_at = models.DateTimeField(auto_now_add=True)
    # The outbox (outbound rows written by Parley): see messaging/services/outbox.py.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    # Set only while the row waits (pending, queued) and while it is claimed (sending): the
    # outbox's partial indexes are keyed on these, not on ``status``, so a receipt's status
    # change touches no indexed column and PostgreSQL can make it a HOT update (no new entry
    # in any index, the body's search index included).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["timestamp", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "provider_message_id"], name="message_per_session"
            )
        ]
        indexes = [
            models.Index(fields=["chat", "timestamp", "id"], name="message_chat_time"),
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(next_attempt_at__isnull=False),
                name="message_waiting",
            ),
            models.Index(
                fields=["lease_until"],
                condition=Q(lease_until__isnull=False),
                name="message_leased",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.type} #{self.pk}"


class Reaction(models.Model):
    """One person's reaction to a message (one per person: a new one replaces it; an empty
    emoji is a removed reaction, kept so a late older event cannot bring it back)."""

    organization = _org_copy()
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reactions")
    actor = models.CharField(max_length=140)  # "me" or the reacting person's JID / id
    sender = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    emoji = models.CharField(max_length=40, blank=True)
    timestamp = models.DateTimeField()

    class Meta:
        verbose_name = _("reaction")
        verbose_name_plural = _("reactions")
        constraints = [
            models.UniqueConstraint(fields=["message", "actor"], name="reaction_per_actor")
        ]

    def __str__(self) -> str:
        return f"{self.actor}: {self.emoji or '(removed)'}"


class WaitingEvent(models.Model):
    """A receipt, reaction, edit or revoke for a message not seen yet: applied (and deleted)
    when the message arrives."""

    organization = _org_copy()
    session = models.ForeignKey(
        WhatsAppSession, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    provider_message_id = models.CharField(max_length=128)
    key = models.CharField(max_length=64)  # a hash of the event: a repeat is the same row
    event = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("waiting event")
        verbose_name_plural = _("waiting events")
        constraints = [
            models.UniqueConstraint(
                fields=["session", "provider_message_id", "key"], name="waiting_event_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event.get('kind')} for {self.provider_message_id}"


class IdempotencyKey(models.Model):
    """A client's ``Idempotency-Key`` on a send: the same key answers with the same message for
    24 hours; the same key with another body is refused."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    key = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64)  # sha256 of the canonical request body
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    class Meta:
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")
        constraints = [
            models.UniqueConstraint(fields=["organization", "key"], name="idempotency_key_once")
        ]
        indexes = [models.Index(fields=["expires_at"], name="idempotency_key_expiry")]

    def __str__(self) -> str:
        return self.key
