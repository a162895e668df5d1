"""WhatsApp sessions (a connected number), their status history, and the inbound webhook queue.

Credentials and the per-session webhook secret are stored encrypted (``crm.crypto``: Fernet with
rotation) and only decrypted to build a provider (``sessions_app.services.provider_for``); no
field holding them is shown by the admin, the API or the dashboard.
"""

from __future__ import annotations

import uuid

from django.conf import settings as conf
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce, Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Organization


class SessionStatus(models.TextChoices):
    DISCONNECTED = "disconnected", _("Disconnected")
    QR = "qr", _("Waiting for a scan")
    CONNECTING = "connecting", _("Connecting")
    READY = "ready", _("Connected")
    LOGGED_OUT = "logged_out", _("Logged out")
    FAILED = "failed", _("Failed")


class ProviderName(models.TextChoices):
    SIMULATOR = "simulator", _("Simulator (demo)")
    CLOUD_API = "cloud_api", _("WhatsApp Cloud API (Meta)")
    EVOLUTION = "evolution", _("Evolution API")
    GOWA = "gowa", _("GOWA (go-whatsapp-web-multidevice)")


class WhatsAppSession(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    # The public id: in webhook URLs and the API. The integer id never leaves the server.
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=80)
    colour = models.CharField(_("label colour"), max_length=7, default="#0f766e")
    provider = models.CharField(_("provider"), max_length=20, choices=ProviderName.choices)
    status = models.CharField(
        _("status"),
        max_length=12,
        choices=SessionStatus.choices,
        default=SessionStatus.DISCONNECTED,
    )
    status_reason = models.CharField(_("reason"), max_length=300, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    phone_number = models.CharField(_("phone number"), max_length=20, blank=True)  # E.164 digits
    jid = models.CharField(max_length=128, blank=True)
    display_name = models.CharField(_("WhatsApp name"), max_length=200, blank=True)
    # The provider's own id for the number, where it routes webhooks by it (Cloud API's
    # phone_number_id; not a secret). Kept from the credentials by the services.
    external_id = models.CharField(max_length=64, blank=True, editable=False)
    credentials_encrypted = models.TextField(blank=True, editable=False)
    webhook_secret_encrypted = models.TextField(blank=True, editable=False)
    # Pairing: the QR text (we render it) or the provider's image, and a pairing code.
    qr_text = models.TextField(blank=True, editable=False)
    qr_image = models.TextField(blank=True, editable=False)
    qr_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    qr_rotations = models.PositiveIntegerField(default=0, editable=False)
    pairing_code = models.CharField(max_length=16, blank=True, editable=False)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    reconnect_attempts = models.PositiveIntegerField(default=0, editable=False)
    next_reconnect_at = models.DateTimeField(null=True, blank=True, editable=False)
    forged_requests = models.PositiveIntegerField(default=0, editable=False)
    settings = models.JSONField(_("settings"), default=dict, blank=True)  # pacing
    default_assignee = models.ForeignKey(
        conf.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("default assignee"),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("WhatsApp session")
        verbose_name_plural = _("WhatsApp sessions")
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                "organization", Lower("name"), name="session_name_unique_per_org"
            )
        ]
        indexes = [
            models.Index(fields=["organization", "status"], name="session_org_status"),
            models.Index(fields=["provider", "external_id"], name="session_external_id"),
            models.Index(
                fields=["next_reconnect_at"],
                condition=Q(next_reconnect_at__isnull=False),
                name="session_reconnect_due",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class SessionEvent(models.Model):
    """One status transition: from, to, why, by whom (None: the provider or the system)."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    session = models.ForeignKey(WhatsAppSession, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=12, choices=SessionStatus.choices)
    to_status = models.CharField(max_length=12, choices=SessionStatus.choices)
    reason = models.CharField(max_length=300, blank=True)
    actor = models.ForeignKey(
        conf.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("session event")
        verbose_name_plural = _("session events")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["organization", "session", "-created_at"], name="sessionevent_org_session"
            )
        ]

    def __str__(self) -> str:
        return f"{self.from_status} → {self.to_status}"


class WebhookState(models.TextChoices):
    PENDING = "pending", _("Pending")
    DONE = "done", _("Applied")
    WAITING = "waiting", _("Recorded, waiting for a subscriber")
    IGNORED = "ignored", _("Ignored (nothing we use)")
    INVALID = "invalid", _("Unparseable")
    FAILED = "failed", _("Failed")


class WebhookEvent(models.Model):
    """The inbound queue: one verified delivery, stored before anything is done with it.

    Drained with ``SELECT … FOR UPDATE SKIP LOCKED`` (``sessions_app.queue``). ``dedupe_key`` (a
    hash of the body) makes a provider's retry of the same delivery a no-op. ``available_at``
    holds back events the simulator schedules (its phone reads a message a moment later).
    """

    organization = models.ForeignKey(
        Organization, null=True, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    session = models.ForeignKey(  # indexed by webhook_event_dedupe, which starts with it
        WhatsAppSession,
        null=True,
        on_delete=models.CASCADE,
        related_name="webhook_events",
        db_index=False,
    )
    provider = models.CharField(max_length=20, choices=ProviderName.choices)
    headers = models.JSONField(default=dict, blank=True)  # a selection, never a secret
    suffix = models.CharField(max_length=100, blank=True)
    body = models.TextField(blank=True)
    dedupe_key = models.CharField(max_length=64)
    state = models.CharField(
        max_length=8, choices=WebhookState.choices, default=WebhookState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    available_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["session", "dedupe_key"], name="webhook_event_dedupe")
        ]
        indexes = [
            models.Index(
                fields=["available_at", "id"],
                condition=Q(state="pending"),
                name="webhook_event_pending",
            ),
            # Pruning (sessions_app.retention): an organization's rows in a state, by age; and
            # the count of rows in a state (sessions_app.selectors.webhook_backlog).
            models.Index(
                F("state"),
                F("organization"),
                Coalesce("processed_at", "received_at"),
                name="webhook_event_prune",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} #{self.pk} ({self.state})"
