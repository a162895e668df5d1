"""Media behind a tenant check: a message's file streamed (ranges) or redirected to a signed
storage URL, and the signed links providers fetch what we send from."""

from __future__ import annotations

import re

from django.core.files.storage import default_storage
from django.http import FileResponse, HttpResponse, HttpResponseRedirect, StreamingHttpResponse

from messaging.models import (
    Message,
)

# --- Media ---------------------------------------------------------------------------------------

RANGE = re.compile(r"bytes=(\d*)-(\d*)$")
SIGNED_URL_SECONDS = 300


def media_response(request, message: Message) -> HttpResponse:
    storage = default_storage
    filename = f"{message.provider_message_id or message.uuid}".replace('"', "")
    if hasattr(storage, "bucket_name"):  # S3: the bytes never pass through us
        url = storage.url(
            message.media_key,
            parameters={"ResponseContentType": message.media_mime or "application/octet-stream"},
            expire=SIGNED_URL_SECONDS,
        )
        response = HttpResponseRedirect(url)
        response["Cache-Control"] = "private, no-store"
        return response
    size = message.media_size if message.media_size is not None else storage.size(message.media_key)
    handle = storage.open(message.media_key, "rb")
    match = RANGE.match(request.headers.get("Range", "").strip())
    if match and (match.group(1) or match.group(2)):
        first, last = match.groups()
        if first:
            start, end = int(first), min(int(last) if last else size - 1, size - 1)
        else:
            start, end = max(size - int(last), 0), size - 1
        if start > end or start >= size:
            handle.close()
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
        handle.seek(start)
        response = StreamingHttpResponse(
            _chunks(handle, end - start + 1), status=206, content_type=message.media_mime
        )
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
    else:
        response = FileResponse(handle, content_type=message.media_mime or None)
        response["Content-Length"] = str(size)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, no-store"
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


def _chunks(handle, length: int, size: int = 64 * 1024):
    try:
        while length > 0:
            chunk = handle.read(min(size, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        handle.close()


def media_link_view(request, token: str) -> HttpResponse:
    """``/media/<signed token>/``: a provider fetching media we send (no login: the token is the
    authority, and it expires)."""
    from django.http import Http404

    from messaging.media import message_for_link

    message = message_for_link(token)
    if message is None or not message.media_key:
        raise Http404
    return media_response(request, message)
