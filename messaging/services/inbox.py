"""Private notes on chats and canned replies: writing them, and filling a reply in for a chat.

Canned replies are the organization's settings (admins write them, everyone uses them): each write
is in the audit log."""

from __future__ import annotations

import re

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from accounts.models import Organization, User
from accounts.services import audit_record
from accounts.tenancy import scoped
from crm import events as bus
from crm.errors import ApplicationError, Conflict
from messaging.models import CannedReply, Chat, ChatNote, Contact
from messaging.text import format_phone

NOTE_ADDED = "chat.note"  # announced after commit (the note's id)
MAX_TEXT = 4096  # what WhatsApp takes in one text message
SHORTCUT = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
VARIABLE = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


def _contact_values(contact: Contact | None) -> dict[str, str]:
    name = contact.display_name if contact else ""
    return {
        "name": name,
        "first_name": name.split()[0] if name.split() else "",
        "phone": format_phone(contact.phone) if contact and contact.phone else "",
        "email": contact.email if contact else "",
    }


VARIABLES = sorted(_contact_values(None))


def _text(value: str, *, limit: int) -> str:
    text = (value or "").strip()
    if not text:
        raise ApplicationError(_("Write some text."), fields={"text": [_("Required.")]})
    if "\x00" in text:
        raise ApplicationError(_("Text may not contain NUL characters."), fields={"text": ["NUL"]})
    if len(text) > limit:
        raise ApplicationError(
            _("That text is too long."),
            fields={"text": [_("At most %(n)s characters.") % {"n": f"{limit:,}"}]},
        )
    return text


def chat_note_add(
    *, organization: Organization, chat: Chat, text: str, author: User | None
) -> ChatNote:
    """A private note in the chat, for the team: never sent."""
    note = ChatNote.objects.create(
        organization=organization, chat=chat, author=author, text=_text(text, limit=10_000)
    )
    bus.publish_on_commit(NOTE_ADDED, organization_id=organization.pk, note_id=note.pk)
    return note


def _reply_values(shortcut: str, text: str) -> dict:
    shortcut = (shortcut or "").strip().lstrip("/").lower()
    if not SHORTCUT.fullmatch(shortcut):
        raise ApplicationError(
            _("A shortcut is a short word."),
            fields={"shortcut": [_("Letters, digits, - and _; up to 40, no spaces.")]},
        )
    text = _text(text, limit=MAX_TEXT)
    unknown = sorted({v for v in VARIABLE.findall(text) if v not in VARIABLES})
    if unknown:
        raise ApplicationError(
            _("The text names details a contact does not have."),
            fields={
                "text": [
                    _("Unknown: %(unknown)s. Known: %(known)s.")
                    % {"unknown": ", ".join(unknown), "known": ", ".join(VARIABLES)}
                ]
            },
        )
    return {"shortcut": shortcut, "text": text}


def canned_reply_create(
    *, organization: Organization, shortcut: str, text: str, actor: User | None
) -> CannedReply:
    values = _reply_values(shortcut, text)
    try:
        with transaction.atomic():
            reply = CannedReply.objects.create(
                organization=organization, created_by=actor, **values
            )
            audit_record(
                organization=organization, action="canned_reply.created", actor=actor, target=reply
            )
    except IntegrityError:
        raise _taken(values["shortcut"]) from None
    return reply


def canned_reply_update(
    *,
    organization: Organization,
    reply: CannedReply,
    shortcut: str | None,
    text: str | None,
    actor: User | None,
) -> CannedReply:
    values = _reply_values(
        reply.shortcut if shortcut is None else shortcut, reply.text if text is None else text
    )
    before = reply.shortcut
    for name, value in values.items():
        setattr(reply, name, value)
    try:
        with transaction.atomic():
            reply.save(update_fields=["shortcut", "text", "updated_at"])
            audit_record(
                organization=organization,
                action="canned_reply.updated",
                actor=actor,
                target=reply,
                data={"shortcut": [before, reply.shortcut]} if before != reply.shortcut else {},
            )
    except IntegrityError:
        reply.shortcut = before
        raise _taken(values["shortcut"]) from None
    return reply


@transaction.atomic
def canned_reply_delete(
    *, organization: Organization, reply: CannedReply, actor: User | None
) -> None:
    audit_record(
        organization=organization,
        action="canned_reply.deleted",
        actor=actor,
        target=reply,
        data={"shortcut": reply.shortcut},
    )
    scoped(CannedReply, organization).filter(pk=reply.pk).delete()


def _taken(shortcut: str) -> Conflict:
    return Conflict(
        _("Another reply has that shortcut."),
        fields={"shortcut": [_("/%(s)s is taken.") % {"s": shortcut}]},
    )


def canned_reply_render(reply: CannedReply, chat: Chat | None) -> str:
    """The reply's text with the chat's contact filled in (empty where it has no such detail)."""
    values = _contact_values(chat.contact if chat else None)
    return VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), reply.text)
