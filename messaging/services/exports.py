"""Export of a filtered address book, streamed: a constant number of queries per 2000 contacts.

Two formats, the same columns (``contacts_export_rows``):

- **CSV**, UTF-8 with a BOM so Excel reads CJK names. A cell a spreadsheet would run as a formula
  (starting with = + - @, tab or CR) gets a leading ``'``; the importer strips exactly that prefix
  (messaging/services/imports.py ``unneutralize``), so export → import is lossless. Phone numbers
  are written as they are (``+85291234567``, or a list ``+852…; +852…``): a ``+`` followed only by
  digits, spaces and ``;`` names no function and no cell, so a spreadsheet can at worst read it as
  a number, never run anything; a ``'`` before it was shown to every user. (A spreadsheet still
  turns ``+85291234567`` into 85291234567: the .xlsx keeps it as written.)
- **Excel (.xlsx)**, written with openpyxl: every cell is a text cell (type ``s``, number format
  ``@``), so numbers stay as written and nothing is a formula, with no prefix at all. The sheet is
  streamed to a temporary file as rows are read (openpyxl's write-only mode), then sent in chunks.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import tempfile
from collections.abc import Iterable, Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.utils import get_column_letter

from accounts.models import Organization
from accounts.tenancy import scoped
from messaging.models import (
    Contact,
    ContactAlias,
    ContactGroupMember,
    ContactIdentity,
    ContactTag,
    CustomField,
    IdentityKind,
)
from messaging.selectors import contact_list
from messaging.services.imports import neutralize

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CHUNK = 2000
BASE_COLUMNS = [
    "name",
    "notify_name",
    "verified_name",
    "phone",
    "other_phones",
    "email",
    "aliases",
    "tags",
    "groups",
    "favorite",
    "status",
    "opted_out_at",
]


def contacts_export_rows(*, organization: Organization, filters: dict) -> Iterator[list[str]]:
    """The header, then one row per contact matching ``filters`` (``contact_list`` keywords), as
    plain text: each format's writer makes them safe for spreadsheets.

    The query is built here, eagerly, so a bad filter raises ApplicationError before a response
    starts streaming; the rows are read lazily with a server-side cursor in chunks, and aliases,
    tags, groups and identities of each chunk are fetched in bulk (four queries per chunk)."""
    fields = list(scoped(CustomField, organization).order_by("key"))
    contacts = contact_list(organization=organization, **filters).only(
        "id",
        "name",
        "notify_name",
        "verified_name",
        "phone",
        "email",
        "favorite",
        "status",
        "opted_out_at",
        "custom_fields",
        "display_name",
    )
    return _export_rows(organization, fields, contacts)


def _export_rows(
    organization: Organization, fields: list[CustomField], contacts
) -> Iterator[list[str]]:
    yield [*BASE_COLUMNS, *(f"cf.{f.key}" for f in fields)]
    chunk: list[Contact] = []
    for contact in contacts.iterator(chunk_size=CHUNK):
        chunk.append(contact)
        if len(chunk) >= CHUNK:
            yield from _chunk_rows(organization, chunk, fields)
            chunk = []
    if chunk:
        yield from _chunk_rows(organization, chunk, fields)


def _grouped(pairs: Iterable[tuple[int, str]]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for contact_id, value in pairs:
        out.setdefault(contact_id, []).append(value)
    return out


def _chunk_rows(
    organization: Organization, chunk: list[Contact], fields: list[CustomField]
) -> Iterator[list[str]]:
    ids = [c.pk for c in chunk]
    aliases = _grouped(
        scoped(ContactAlias, organization)
        .filter(contact_id__in=ids)
        .order_by("contact_id", "id")
        .values_list("contact_id", "alias")
    )
    tags = _grouped(
        scoped(ContactTag, organization)
        .filter(contact_id__in=ids)
        .order_by("contact_id", "tag__name")
        .values_list("contact_id", "tag__name")
    )
    groups = _grouped(
        scoped(ContactGroupMember, organization)
        .filter(contact_id__in=ids)
        .order_by("contact_id", "group__name")
        .values_list("contact_id", "group__name")
    )
    phones = _grouped(
        scoped(ContactIdentity, organization)
        .filter(contact_id__in=ids, kind=IdentityKind.PHONE)
        .order_by("contact_id", "created_at", "id")
        .values_list("contact_id", "value")
    )
    for contact in chunk:
        others = [p for p in phones.get(contact.pk, []) if p != contact.phone]
        row = [
            contact.name,
            contact.notify_name,
            contact.verified_name,
            f"+{contact.phone}" if contact.phone else "",
            "; ".join(f"+{p}" for p in others),
            contact.email,
            "; ".join(aliases.get(contact.pk, [])),
            "; ".join(tags.get(contact.pk, [])),
            "; ".join(groups.get(contact.pk, [])),
            "yes" if contact.favorite else "no",
            contact.status,
            contact.opted_out_at.astimezone(dt.UTC).isoformat() if contact.opted_out_at else "",
            *(_custom(contact.custom_fields.get(f.key)) for f in fields),
        ]
        yield row


def _custom(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def csv_chunks(rows: Iterable[list[str]], rows_per_chunk: int = 500) -> Iterator[bytes]:
    """Rows → UTF-8 bytes (BOM first) in chunks of a few hundred rows, formula cells neutralized."""
    yield codecs.BOM_UTF8
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    count = 0
    for row in rows:
        writer.writerow([neutralize(cell) for cell in row])
        count += 1
        if count >= rows_per_chunk:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
            count = 0
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")


def xlsx_chunks(
    rows: Iterable[list[str]], sheet: str = "Contacts", chunk_size: int = 64 * 1024
) -> Iterator[bytes]:
    """Rows → an .xlsx workbook of one sheet whose every cell is text, in chunks.

    The rows are read when the first chunk is asked for (like the CSV's), written to a temporary
    file by openpyxl's write-only mode (constant memory: inline strings, no shared-string table),
    and the finished file is sent in ``chunk_size`` pieces. Characters XML cannot hold (control
    characters other than tab and line breaks) are dropped."""
    workbook = Workbook(write_only=True)
    worksheet = workbook.create_sheet(sheet)
    with tempfile.TemporaryFile() as file:
        for number, row in enumerate(rows):
            if number == 0:  # the header: widths must be set before the first row is written
                for index, value in enumerate(row, start=1):
                    width = max(12, min(40, len(str(value)) + 4))
                    worksheet.column_dimensions[get_column_letter(index)].width = width
            worksheet.append([_text_cell(worksheet, value) for value in row])
        workbook.save(file)
        file.seek(0)
        while chunk := file.read(chunk_size):
            yield chunk


def _text_cell(worksheet, value: str) -> WriteOnlyCell | None:
    if not value:
        return None  # no cell at all: nothing to type, and most cells of an address book
    cell = WriteOnlyCell(worksheet, value=ILLEGAL_CHARACTERS_RE.sub("", value))
    # openpyxl makes "=…" a formula and "#N/A" an error: in this file every cell is text.
    cell.data_type = "s"
    cell.number_format = "@"
    return cell


class CsvStreamingResponse(StreamingHttpResponse):
    """A streamed download (CSV or .xlsx).

    ``content`` reads the whole stream (the test client and tools that expect a body); served
    responses are never read that way.
    """

    @property
    def content(self) -> bytes:
        return b"".join(self.streaming_content)


async def _async_chunks(chunks: Iterator[bytes]):
    """Pull a sync generator chunk by chunk on the same thread (its server-side cursor lives on
    that thread's connection). Django under ASGI would otherwise read a sync iterator whole."""
    pull = sync_to_async(next, thread_sensitive=True)
    while True:
        chunk = await pull(chunks, None)
        if chunk is None:
            return
        yield chunk


def download_response(
    request, chunks: Iterator[bytes], *, content_type: str, filename: str
) -> CsvStreamingResponse:
    request = getattr(request, "_request", request)  # DRF's Request wraps Django's
    content = _async_chunks(chunks) if isinstance(request, ASGIRequest) else chunks
    response = CsvStreamingResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


def csv_response(request, rows: Iterable[list[str]], filename: str) -> CsvStreamingResponse:
    return download_response(
        request, csv_chunks(rows), content_type="text/csv; charset=utf-8", filename=filename
    )


def xlsx_response(request, rows: Iterable[list[str]], filename: str) -> CsvStreamingResponse:
    return download_response(
        request, xlsx_chunks(rows), content_type=XLSX_CONTENT_TYPE, filename=filename
    )
