"""Media of messages: downloaded through the session's provider into storage, once.

Stored at ``{organization}/{session}/{message}.{ext}`` (the message's provider id, made safe for
a path; the extension from the MIME type), in the default storage: S3-compatible in production,
the data directory in the embedded mode. Never served by a public URL: ``messaging.api`` hands out
short-lived presigned URLs or streams with range support after a tenant check.
"""

from __future__ import annotations

import logging
import mimetypes
import re

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from messaging.models import MediaState, Message
from sessions_app.providers import events as ev
from sessions_app.providers.base import ProviderError
from sessions_app.services import provider_for

logger = logging.getLogger(__name__)

# What mimetypes guesses badly or not at all for WhatsApp's media.
EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "audio/ogg": "ogg",
    "audio/ogg; codecs=opus": "ogg",
    "audio/mpeg": "mp3",
    "audio/mp4": "m4a",
    "audio/aac": "aac",
    "video/mp4": "mp4",
    "video/3gpp": "3gp",
    "text/plain": "txt",
    "application/pdf": "pdf",
}
UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def extension_of(mime: str) -> str:
    base = (mime or "").split(";", 1)[0].strip().lower()
    return EXTENSIONS.get(mime.lower(), EXTENSIONS.get(base)) or (
        (mimetypes.guess_extension(base) or ".bin").lstrip(".")
    )


def media_key(message: Message, mime: str) -> str:
    name = UNSAFE.sub("_", message.provider_message_id or str(message.uuid))[:120]
    return f"{message.organization_id}/{message.session_id}/{name}.{extension_of(mime)}"


class TryAgain(Exception):
    """A transient failure: the task retries with backoff."""


def media_download(*, message_id: int) -> str:
    """Fetch a message's media into storage. Returns the media state afterwards. A message whose
    media is stored already is left alone (a redelivered task does nothing); a permanent refusal
    marks it failed with the provider's reason; a transient one raises ``TryAgain``."""
    message = (
        Message.objects.select_related("session")
        .filter(pk=message_id, media_state=MediaState.PENDING)
        .first()
    )
    if message is None:
        return "skipped"
    media = ev.Media(**{k: v for k, v in message.media.items() if k in ev.Media.__annotations__})
    try:
        content, mime = provider_for(message.session).download_media(media)
    except ProviderError as exc:
        if not exc.permanent:
            raise TryAgain(exc.code) from exc
        _fail(message, f"{exc.code}: {exc.message}")
        return MediaState.FAILED
    mime = mime or media.mime_type or "application/octet-stream"
    key = media_key(message, mime)
    if default_storage.exists(key):
        default_storage.delete(key)  # a half-written earlier attempt
    stored = default_storage.save(key, ContentFile(content))
    with transaction.atomic():
        updated = Message.objects.filter(pk=message.pk, media_state=MediaState.PENDING).update(
            media_state=MediaState.STORED,
            media_key=stored,
            media_mime=mime[:100],
            media_size=len(content),
        )
    if not updated:  # stored by another run meanwhile
        default_storage.delete(stored)
    return MediaState.STORED


def media_give_up(*, message_id: int, reason: str) -> None:
    message = Message.objects.filter(pk=message_id, media_state=MediaState.PENDING).first()
    if message is not None:
        _fail(message, reason)


def _fail(message: Message, reason: str) -> None:
    media = {**message.media, "error": reason[:300]}
    Message.objects.filter(pk=message.pk, media_state=MediaState.PENDING).update(
        media_state=MediaState.FAILED, media=media
    )
    logger.info("media of message %s not downloaded: %s", message.pk, reason)


# --- Links a provider fetches our media with -------------------------------------------------------

LINK_SECONDS = 3600
LINK_SALT = "parley.media-link"


def media_link(message: Message) -> str:
    """A URL the provider can fetch this message's stored media from, valid for an hour: a
    presigned URL on S3, else a signed link to Parley (``SITE_URL`` must reach it)."""
    from django.conf import settings
    from django.core import signing
    from django.urls import reverse

    if hasattr(default_storage, "bucket_name"):
        return default_storage.url(message.media_key, expire=LINK_SECONDS)
    token = signing.dumps(str(message.uuid), salt=LINK_SALT)
    return settings.SITE_URL.rstrip("/") + reverse("media-link", args=[token])


def message_for_link(token: str) -> Message | None:
    """The message a signed link names, while the link is valid."""
    from django.core import signing

    try:
        value = signing.loads(token, salt=LINK_SALT, max_age=LINK_SECONDS)
    except signing.BadSignature:
        return None
    return Message.objects.filter(uuid=value, media_state=MediaState.STORED).first()
