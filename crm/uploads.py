"""Upload handling shared by every form: a hard cap on how much of an upload is received."""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload


class CappedUploadHandler(FileUploadHandler):
    """First in FILE_UPLOAD_HANDLERS: stops receiving a file past ``PARLEY_MAX_UPLOAD_BYTES`` and
    resets the connection, so a 2 GB upload never fills the disk. The view then finds no file
    and says why (it compares Content-Length with the same cap)."""

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        if start + len(raw_data) > settings.PARLEY_MAX_UPLOAD_BYTES:
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size: int):
        return None


def upload_too_large(request) -> bool:
    length = request.META.get("CONTENT_LENGTH") or ""
    return length.isascii() and length.isdigit() and int(length) > settings.PARLEY_MAX_UPLOAD_BYTES
