"""What a team adds to its conversations: private notes on a chat, and canned replies."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Organization
from messaging.models.chats import Chat


class ChatNote(models.Model):
    """A private note in a conversation: shown to the team beside the messages, never sent."""

    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,  # a copy of the chat's, whose own key is enforced
    )
    # No index of its own: ``chat_note_time`` starts with it.
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="notes", db_index=False)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField(_("note"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("chat note")
        verbose_name_plural = _("chat notes")
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["chat", "created_at", "id"], name="chat_note_time")]

    def __str__(self) -> str:
        return self.text[:60]


class CannedReply(models.Model):
    """A reply the team types by its shortcut (``/price``), with the contact's details filled
    in where the text names them (``{{first_name}}``)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    shortcut = models.CharField(_("shortcut"), max_length=40)
    text = models.TextField(_("text"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("canned reply")
        ordering = ["shortcut", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "shortcut"], name="canned_reply_shortcut_once"
            )
        ]
        verbose_name_plural = _("canned replies")

    def __str__(self) -> str:
        return f"/{self.shortcut}"
