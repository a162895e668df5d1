"""Sending: an outbox that never sends a message twice on its own.

``message_send`` writes a ``pending`` row; after commit it becomes ``queued`` and a task is asked
to deliver it. ``message_deliver`` (the task's body) asks the session's rate limiter, then claims
the row with a conditional update to ``sending`` with a lease, calls the provider once and records
the provider's id (``sent``). Not yet allowed: back to ``queued`` with ``next_attempt_at``, never
a sleep. A transient error: ``queued`` again with backoff, up to ``MAX_ATTEMPTS``; a permanent
one: ``failed`` with a code a person can read. A ``sending`` row whose lease ran out (the worker
died between claim and record) becomes ``failed`` / ``interrupted``: it may or may not have left,
so only a person's ``message_retry`` sends it again.

The provider's echo of our own send (Evolution's ``send.message``, a ``fromMe`` upsert) may be
stored by ingest before the send call returns: recording the id then takes that row over, so
there is one message either way.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Organization, User
from accounts.tenancy import scoped
from crm import events as bus
from crm.errors import ApplicationError, Conflict
from messaging import ingest, parties
from messaging.models import (
    STATUS_RANK,
    Chat,
    Contact,
    Direction,
    IdentityKind,
    Message,
    MessageStatus,
    Reaction,
)
from messaging.ratelimit import limiter, pace_for
from messaging.services.contacts import contact_get_or_create_by_identity
from messaging.text import InvalidPhone, normalize_phone
from sessions_app.models import SessionStatus, WhatsAppSession
from sessions_app.providers.base import MAX_TEXT_LENGTH, OutgoingMessage, ProviderError, RateLimited
from sessions_app.services import session_send

logger = logging.getLogger(__name__)

LEASE = dt.timedelta(seconds=120)  # longer than the provider timeout: a live call never expires
MAX_ATTEMPTS = 6  # transient failures: 10 s, 20 s, 40 s, 80 s, 160 s, then failed
SENT = "message.sent"  # announced after commit (ids), like ingest's announcements
MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")


# --- Writing -------------------------------------------------------------------------------------


def _target(
    organization: Organization,
    *,
    session: WhatsAppSession | None,
    chat: Chat | None,
    contact: Contact | None,
    phone: str,
) -> Chat:
    """The chat a send goes to: a chat; a contact or a phone number on a session."""
    if chat is not None:
        return chat
    if session is None:
        raise ApplicationError(
            _("Choose the WhatsApp number to send from."),
            fields={"session": [_("Required when sending to a contact or a phone number.")]},
        )
    if contact is None:
        if not phone:
            raise ApplicationError(
                _("Say who to send to: a chat, a contact or a phone number."),
                fields={"to": [_("Required.")]},
            )
        try:
            digits = normalize_phone(phone, default_country=organization.default_country)
        except InvalidPhone as exc:
            raise ApplicationError(exc.message, fields={"phone": [exc.message]}) from None
        contact, _created = contact_get_or_create_by_identity(
            organization=organization, kind=IdentityKind.PHONE, value=digits
        )
    address = contact.phone or ""
    if not address:
        identity = contact.identities.exclude(kind=IdentityKind.PHONE).first()
        address = identity.value if identity else ""
    if not address:
        raise ApplicationError(
            _("This contact has no WhatsApp number to send to."), code="no_address"
        )
    return parties.chats_for(session, {("direct", contact.pk): address})[("direct", contact.pk)]


def message_send(
    *,
    organization: Organization,
    actor: User | None,
    text: str = "",
    session: WhatsAppSession | None = None,
    chat: Chat | None = None,
    contact: Contact | None = None,
    phone: str = "",
    media_url: str = "",
    media_type: str = "",
    upload: UploadedFile | None = None,
    reply_to: Message | None = None,
) -> Message:
    """Write an outbound message and queue it (after commit). Media is a URL the provider
    fetches, or an ``upload`` kept in our storage (the provider gets a short-lived link to it).
    Refuses what cannot be sent: an empty message, a text over WhatsApp's limit, media over
    WhatsApp's size for its kind, a session that is logged out."""
    text = text or ""
    if upload is not None:
        media_type = media_type or media_type_of(upload.content_type or "")
        _check_size(upload, media_type)
    if "\x00" in text:
        raise ApplicationError(_("Text may not contain NUL characters."), fields={"text": ["NUL"]})
    if not text.strip() and not media_url and upload is None:
        raise ApplicationError(_("A message needs text or media."), fields={"text": [_("Empty.")]})
    if len(text) > MAX_TEXT_LENGTH:
        raise ApplicationError(
            _("WhatsApp takes at most %(n)s characters.") % {"n": MAX_TEXT_LENGTH},
            code="message-too-long",
            fields={"text": [_("Too long.")]},
        )
    if (media_url or upload is not None) and media_type not in MEDIA_TYPES:
        raise ApplicationError(
            _("Say what kind of media this is."),
            fields={"media_type": [", ".join(MEDIA_TYPES)]},
        )
    stored: list[str] = []  # files written, removed again if the message is not
    try:
        with transaction.atomic():
            # Everything named is looked up again inside the organization (and fresh: the status).
            session = scoped(WhatsAppSession, organization).get(pk=session.pk) if session else None
            chat = scoped(Chat, organization).get(pk=chat.pk) if chat else None
            contact = scoped(Contact, organization).get(pk=contact.pk) if contact else None
            chat = _target(organization, session=session, chat=chat, contact=contact, phone=phone)
            session = scoped(WhatsAppSession, organization).get(pk=chat.session_id)
            if session.status == SessionStatus.LOGGED_OUT:
                raise Conflict(
                    _("%(name)s is logged out of WhatsApp: pair it again to send.")
                    % {"name": session.name},
                    code="not-authorized",
                )
            if reply_to is not None and reply_to.chat_id != chat.pk:
                raise ApplicationError(
                    _("A reply must be in the same chat."),
                    fields={"reply_to": [_("Another chat.")]},
                )
            now = timezone.now()
            has_media = bool(media_url or upload is not None)
            message = Message.objects.create(
                organization=organization,
                session=session,
                chat=chat,
                direction=Direction.OUT,
                type=media_type or "text",
                body="" if has_media else text,
                caption=text if has_media else "",
                data={"media_url": media_url} if media_url else {},
                quoted=reply_to,
                quoted_provider_id=(reply_to.provider_message_id or "") if reply_to else "",
                status=MessageStatus.PENDING,
                timestamp=now,
                next_attempt_at=now,
                created_by=actor,
            )
            if upload is not None:
                stored.append(_store_upload(message, upload))
            Chat.objects.filter(pk=chat.pk).update(last_message_at=now)
            transaction.on_commit(lambda: message_enqueue(message_id=message.pk))
    except Exception:
        from django.core.files.storage import default_storage

        for key in stored:
            default_storage.delete(key)
        raise
    return message


# What WhatsApp accepts, per kind (bytes).
MEDIA_LIMITS = {
    "image": 5 * 1024 * 1024,
    "sticker": 500 * 1024,
    "audio": 16 * 1024 * 1024,
    "video": 16 * 1024 * 1024,
    "document": 100 * 1024 * 1024,
}


def media_type_of(mime: str) -> str:
    kind = mime.split("/", 1)[0].lower()
    return {"image": "image", "video": "video", "audio": "audio"}.get(kind, "document")


def _check_size(upload: UploadedFile, media_type: str) -> None:
    limit = MEDIA_LIMITS.get(media_type, MEDIA_LIMITS["document"])
    if upload.size is None or upload.size > limit:
        raise ApplicationError(
            _("WhatsApp takes %(kind)s files up to %(mb)s MB.")
            % {"kind": media_type, "mb": round(limit / 1024 / 1024, 1)},
            code="media-rejected",
            fields={"file": [_("Too large.")]},
        )
    if upload.size == 0:
        raise ApplicationError(_("The file is empty."), fields={"file": [_("Empty.")]})


def _store_upload(message: Message, upload: UploadedFile) -> str:
    """The file in storage under the message's key (returned)."""
    from django.core.files.storage import default_storage

    from messaging.media import media_key

    mime = (upload.content_type or "application/octet-stream")[:100]
    key = default_storage.save(
        media_key(message, mime).replace(f"/{message.uuid}.", f"/out-{message.uuid}."), upload
    )
    Message.objects.filter(pk=message.pk).update(
        media_key=key,
        media_mime=mime,
        media_size=upload.size,
        media_state="stored",
        media={"filename": (upload.name or "")[:200], "mime_type": mime},
    )
    message.media_key, message.media_mime = key, mime
    return key


def message_enqueue(*, message_id: int) -> None:
    """``pending`` → ``queued`` and a delivery task. If the broker is down the row stays queued
    and the beat's ``outbox_tick`` delivers it."""
    from messaging.tasks import deliver_message

    Message.objects.filter(pk=message_id, status=MessageStatus.PENDING).update(
        status=MessageStatus.QUEUED
    )
    try:
        deliver_message.delay(message_id)
    except Exception:
        logger.warning("could not queue message %s; the outbox tick will", message_id)


def message_retry(*, organization: Organization, message: Message, actor: User | None) -> Message:
    """A person's retry of a failed outbound message: one more attempt."""
    updated = (
        scoped(Message, organization)
        .filter(pk=message.pk, direction=Direction.OUT, status=MessageStatus.FAILED)
        .update(
            status=MessageStatus.PENDING,
            next_attempt_at=timezone.now(),
            error_code="",
            error_text="",
            failed_at=None,
            attempts=0,
        )
    )
    if not updated:
        raise Conflict(_("Only a failed message can be retried."), code="not_failed")
    transaction.on_commit(lambda: message_enqueue(message_id=message.pk))
    message.refresh_from_db()
    return message


# --- Delivering ----------------------------------------------------------------------------------


def message_deliver(*, message_id: int, now: dt.datetime | None = None) -> str:
    """Deliver one queued message (see the module doc). Returns what happened: ``sent``,
    ``paced``, ``retry``, ``failed`` or ``skipped`` (not due, or someone else has it)."""
    now = now or timezone.now()
    message = (
        Message.objects.select_related("session", "chat")
        .filter(pk=message_id, direction=Direction.OUT)
        .first()
    )
    waiting = (MessageStatus.PENDING, MessageStatus.QUEUED)
    if message is None or message.status not in waiting:
        return "skipped"
    if message.next_attempt_at and message.next_attempt_at > now:
        return "skipped"
    session = message.session
    wait = limiter().acquire(f"session:{session.uuid}", pace_of(session))
    if wait > 0:
        Message.objects.filter(pk=message.pk, status__in=waiting).update(
            status=MessageStatus.QUEUED, next_attempt_at=now + dt.timedelta(seconds=wait)
        )
        return "paced"
    claimed = Message.objects.filter(pk=message.pk, status__in=waiting).update(
        status=MessageStatus.SENDING,
        next_attempt_at=None,
        lease_until=now + LEASE,
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return "skipped"
    try:
        sent = session_send(session=session, message=_outgoing(message))
    except ProviderError as exc:
        return _failed_attempt(message, exc, now)
    _record_sent(message, sent.provider_message_id, timezone.now())
    return "sent"


def pace_of(session: WhatsAppSession):
    """The session's pacing settings (sessions_app's names) over its provider's default."""
    own = session.settings or {}
    per_minute = own.get("messages_per_minute")
    return pace_for(
        session.provider,
        {
            "rate": per_minute,
            "per": 60 if per_minute is not None else None,
            "burst": own.get("messages_burst"),
            "jitter": own.get("jitter_seconds"),
        },
    )


def _outgoing(message: Message) -> OutgoingMessage:
    media_url = message.data.get("media_url", "")
    if not media_url and message.media_key:
        from messaging.media import media_link

        media_url = media_link(message)
    return OutgoingMessage(
        to=message.chat.jid,
        text="" if media_url else message.body,
        media_type=message.type if media_url else "",
        media_url=media_url,
        mime_type=message.media_mime if message.media_key else "",
        filename=message.media.get("filename", "") if message.media_key else "",
        caption=message.caption,
        reply_to=message.quoted_provider_id,
    )


def _failed_attempt(message: Message, exc: ProviderError, now: dt.datetime) -> str:
    attempts = message.attempts + 1
    mine = Message.objects.filter(pk=message.pk, status=MessageStatus.SENDING)
    if exc.permanent or attempts >= MAX_ATTEMPTS:
        mine.update(
            status=MessageStatus.FAILED,
            failed_at=now,
            lease_until=None,
            error_code=exc.code[:40],
            error_text=(exc.message or exc.code)[:500],
        )
        logger.info("message %s failed: %s", message.pk, exc.code)
        return "failed"
    delay = 10 * 2 ** (attempts - 1)
    if isinstance(exc, RateLimited) and exc.retry_after:
        delay = max(delay, exc.retry_after)
    mine.update(
        status=MessageStatus.QUEUED,
        next_attempt_at=now + dt.timedelta(seconds=delay),
        lease_until=None,
        error_code=exc.code[:40],
        error_text=(exc.message or exc.code)[:500],
    )
    return "retry"


def _record_sent(message: Message, provider_message_id: str, now: dt.datetime) -> None:
    """``sent`` with the provider's id. If ingest stored the provider's echo of this send first,
    that row is merged into this one (its later status and reactions kept) and removed."""
    for attempt in range(2):
        try:
            with transaction.atomic():
                _take_over_echo(message, provider_message_id, now)
                applied = ingest.Applied()
                ingest.message_identified(message.session, provider_message_id, applied)
                bus.publish_on_commit(
                    SENT,
                    organization_id=message.organization_id,
                    session_id=message.session_id,
                    message_ids=[message.pk],
                )
            return
        except IntegrityError:  # the echo was being stored as we wrote: it is visible now
            if attempt:
                raise


def _take_over_echo(message: Message, provider_message_id: str, now: dt.datetime) -> None:
    values = {
        "status": MessageStatus.SENT,
        "provider_message_id": provider_message_id,
        "sent_at": now,
        "lease_until": None,
        "error_code": "",
        "error_text": "",
    }
    echo = (
        Message.objects.select_for_update()
        .filter(session_id=message.session_id, provider_message_id=provider_message_id)
        .exclude(pk=message.pk)
        .first()
    )
    if echo is not None:
        if STATUS_RANK.get(echo.status, 0) > STATUS_RANK["sent"]:
            values["status"] = echo.status
        for column in ("delivered_at", "read_at", "played_at"):
            if getattr(echo, column):
                values[column] = getattr(echo, column)
        Reaction.objects.filter(message=echo).update(message=message)
        Message.objects.filter(quoted=echo).update(quoted=message)
        echo.delete()
    Message.objects.filter(pk=message.pk, status=MessageStatus.SENDING).update(**values)


# --- The beat ------------------------------------------------------------------------------------


def outbox_tick(*, now: dt.datetime | None = None, limit: int = 500) -> tuple[int, list[int]]:
    """Fail ``sending`` rows whose lease expired (``interrupted``); return the ids of queued rows
    now due, for the caller to deliver. ``(interrupted, due ids)``."""
    now = now or timezone.now()
    interrupted = Message.objects.filter(status=MessageStatus.SENDING, lease_until__lt=now).update(
        status=MessageStatus.FAILED,
        failed_at=now,
        lease_until=None,
        error_code="interrupted",
        error_text=_(
            "Sending was interrupted; it may or may not have reached WhatsApp. Retry to send it "
            "again."
        ),
    )
    due = list(
        Message.objects.filter(
            next_attempt_at__lte=now,  # set on every pending and queued row (message_waiting)
            status__in=(MessageStatus.PENDING, MessageStatus.QUEUED),
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    return interrupted, due
