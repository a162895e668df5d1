"""Import of the address book from a CSV or an Excel workbook (.xlsx): upload → mapping
(remembered) → preview → background run.

The stored file is streamed at every step (never read whole into memory): ``import_upload`` copies
the upload into ``default_storage`` with a size cap, ``import_preview`` parses the first rows and
``import_run`` (called by ``messaging.tasks.run_import``) walks the file in batches of
``BATCH_SIZE`` rows, each batch one transaction of bulk statements: phones normalized with the
organization's default country, existing contacts matched by phone identity (one query per batch),
new contacts created with ``bulk_create``, matches merged (incoming values win only with
``overwrite``; tags, groups and aliases are unioned), search text rebuilt in bulk. Bad rows go to a
per-row error report (the original cells + row number + reason). Progress is pushed to the
organization's dashboards after each batch commits.

Row numbers are those of a spreadsheet: the header is row 1, the first data row is row 2 (a record
with a quoted line break still counts as one row).

A workbook is read through the same pipeline (``_Rows``): the first worksheet, streamed by
openpyxl's read-only mode, each cell as text (cached values of formulas, never evaluated; whole
numbers without ``.0``; dates in ISO 8601); rows with no value at all are skipped. Its ``encoding``
is recorded as ``xlsx``.
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import csv
import datetime as dt
import io
import json
import logging
import queue
import re
import secrets
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from openpyxl import load_workbook

from accounts.models import Organization, User
from accounts.tenancy import scoped
from crm.collector import collector_paused
from crm.errors import ApplicationError, Conflict
from crm.live import org_group, push
from messaging.models import (
    Contact,
    ContactAlias,
    ContactGroupMember,
    ContactIdentity,
    ContactStatus,
    ContactTag,
    CustomField,
    IdentityKind,
    ImportColumnMemory,
    ImportJob,
    JobState,
)
from messaging.services.contacts import (
    coerce_custom_value,
    groups_get_or_create,
    search_text_rebuild,
    tags_get_or_create,
)
from messaging.text import InvalidPhone, fold, normalize_phone, search_text

logger = logging.getLogger(__name__)

BATCH_SIZE = 5000
SAMPLE_BYTES = 64 * 1024
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
MAX_HEADERS = 200
FIELD_SIZE_LIMIT = 100_000  # one cell; a runaway quote is a row error, not the rest of the file

# Target fields of a mapping ("" = skip the column; "cf.<key>" = a custom field).
FIELDS = (
    "name",
    "notify_name",
    "verified_name",
    "phone",
    "phone_2",
    "email",
    "aliases",
    "tags",
    "groups",
    "favorite",
    "status",
    "opted_out",
)
MULTI_FIELDS = {"phone_2", "aliases", "tags", "groups"}  # several columns may feed them
LIST_SPLIT = re.compile(r"[;|]")
TAG_SPLIT = re.compile(r"[;|,]")
ENCODING_CHOICES = ("utf-8", "utf-16", "big5", "gb18030", "shift_jis", "cp1252", "latin-1")
XLSX = "xlsx"  # ImportJob.encoding of a workbook
ZIP_MAGIC = b"PK\x03\x04"  # an .xlsx is a zip archive
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # the old binary .xls
# What a workbook may expand to: its parts are parsed as streams, except the table of shared
# strings, which openpyxl holds in memory. Far above any honest address book; a zip bomb stops here.
XLSX_MAX_EXPANDED = 4 * 1024**3
XLSX_MAX_SHARED_STRINGS = 256 * 1024**2

# Folded header (see ``_header_key``) → field.
HEADER_GUESSES: dict[str, str] = {
    **dict.fromkeys(
        [
            "name",
            "full name",
            "fullname",
            "contact name",
            "contact",
            "display name",
            "姓名",
            "名稱",
            "名字",
            "名称",
        ],
        "name",
    ),
    **dict.fromkeys(
        ["notify", "notify name", "push name", "pushname", "whatsapp name", "wa name"],
        "notify_name",
    ),
    **dict.fromkeys(["verified name", "business name", "verified business name"], "verified_name"),
    **dict.fromkeys(
        [
            "phone",
            "phone number",
            "phonenumber",
            "mobile",
            "mobile number",
            "mobile phone",
            "cell",
            "cell phone",
            "whatsapp",
            "whatsapp number",
            "number",
            "msisdn",
            "tel",
            "telephone",
            "jid",
            "wa id",
            "電話",
            "手機",
            "电话",
            "手机",
        ],
        "phone",
    ),
    **dict.fromkeys(
        [
            "other phones",
            "other phone",
            "phone 2",
            "phone2",
            "secondary phone",
            "alternate phone",
            "alternative phone",
            "mobile 2",
            "phones",
        ],
        "phone_2",
    ),
    **dict.fromkeys(["email", "e mail", "email address", "mail"], "email"),
    **dict.fromkeys(["alias", "aliases", "nickname", "nicknames", "nick", "aka"], "aliases"),
    **dict.fromkeys(["tag", "tags", "label", "labels"], "tags"),
    **dict.fromkeys(["group", "groups", "list", "lists"], "groups"),
    **dict.fromkeys(["favorite", "favourite", "starred", "fav", "star"], "favorite"),
    **dict.fromkeys(["status", "contact status"], "status"),
    **dict.fromkeys(
        ["opted out", "opted out at", "opt out", "optout", "unsubscribed", "do not contact"],
        "opted_out",
    ),
}

TRUE_WORDS = {"true", "yes", "y", "1", "x", "on", "是"}
FALSE_WORDS = {"false", "no", "n", "0", "off", "否", ""}
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


class UploadTooLarge(ApplicationError):
    status = 413
    code = "too_large"


def max_upload_bytes() -> int:
    return int(getattr(settings, "PARLEY_IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES))


def _too_large() -> UploadTooLarge:
    limit_mb = max_upload_bytes() // (1024 * 1024)
    return UploadTooLarge(
        _("That file is too large: imports take files up to %(mb)d MB.") % {"mb": limit_mb},
        fields={"file": [_("At most %(mb)d MB.") % {"mb": limit_mb}]},
    )


# --- Cells --------------------------------------------------------------------------------------


# A phone number as the export writes it, or a list of them: "+" and digits name no function
# and no cell, so a spreadsheet cannot run them (at worst it reads a number).
PHONE_CELL = re.compile(r"\+\d{1,15}(?:; \+\d{1,15})*")


def neutralize(cell: str) -> str:
    """Export side: a cell a spreadsheet would run as a formula gets one leading ``'``.

    Phone numbers (``PHONE_CELL``) are written as they are: they start with ``+`` but are not
    formulas, and a ``'`` before them shows in every spreadsheet. Cells already starting with
    ``'`` before a trigger get one more, so ``unneutralize`` is the exact inverse and
    export → import is lossless.
    """
    if cell and cell.lstrip("'").startswith(FORMULA_TRIGGERS) and not PHONE_CELL.fullmatch(cell):
        return "'" + cell
    return cell


def unneutralize(cell: str) -> str:
    """Import side: strip exactly one leading ``'`` when what follows starts with = + - @."""
    if cell.startswith("'") and cell.lstrip("'").startswith(FORMULA_TRIGGERS):
        return cell[1:]
    return cell


def _header_key(header: str) -> str:
    text = fold(header)
    if text.startswith("cf."):
        return text
    return " ".join(re.sub(r"[_\-./:]+", " ", text).split())


# --- Encoding, delimiter, header -----------------------------------------------------------------


def _plausible_big5(text: str) -> bool:
    """Decoded text whose non-ASCII characters are (nearly) all CJK: Big5, not a Latin encoding."""
    others = [ch for ch in text if ord(ch) > 127]
    if not others:
        return False
    cjk = sum(
        1
        for ch in others
        if "\u4e00" <= ch <= "\u9fff"
        or "\u3400" <= ch <= "\u4dbf"
        or "\u3000" <= ch <= "\u303f"
        or "\uff00" <= ch <= "\uffef"
    )
    return cjk / len(others) >= 0.95


def _decodes(sample: bytes, encoding: str) -> str | None:
    try:
        return codecs.getincrementaldecoder(encoding)().decode(sample, final=False)
    except (UnicodeDecodeError, LookupError):
        return None


def detect_encoding(sample: bytes) -> str:
    """BOM → utf-8-sig / utf-16; else UTF-8 if the sample decodes; else Big5 if it decodes to CJK;
    else cp1252 (latin-1 when even cp1252 refuses a byte)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    head = sample[:2000]
    if len(head) >= 4 and head[1::2].count(0) > len(head) // 4 and head[0::2].count(0) == 0:
        return "utf-16-le"
    if len(head) >= 4 and head[0::2].count(0) > len(head) // 4 and head[1::2].count(0) == 0:
        return "utf-16-be"
    if _decodes(sample, "utf-8") is not None:
        return "utf-8"
    text = _decodes(sample, "big5")
    if text is not None and _plausible_big5(text):
        return "big5"
    if _decodes(sample, "cp1252") is not None:
        return "cp1252"
    return "latin-1"


def _chosen_encoding(choice: str, sample: bytes) -> str:
    choice = (choice or "").strip().lower()
    allowed = {codecs.lookup(c).name for c in ENCODING_CHOICES}
    try:
        name = codecs.lookup(choice).name
        if name not in allowed:
            raise LookupError(choice)
    except LookupError:
        raise ApplicationError(
            _("Unknown encoding."),
            fields={"encoding": [_("Choose one of: %(c)s.") % {"c": ", ".join(ENCODING_CHOICES)}]},
        ) from None
    if name == "utf-8" and sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if name.startswith("utf-16"):
        if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        # No byte-order mark: ASCII text has its zero bytes second (LE) or first (BE).
        even_zeros, odd_zeros = sample[0::2].count(0), sample[1::2].count(0)
        return "utf-16-be" if even_zeros > odd_zeros else "utf-16-le"
    return name


def detect_delimiter(text: str) -> str:
    lines = text.splitlines()[:20]
    try:
        return csv.Sniffer().sniff("\n".join(lines)[:16384], delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _unique_headers(raw: list[str], *, neutralized: bool = True) -> list[str]:
    headers, seen = [], {}
    for index, cell in enumerate(raw[:MAX_HEADERS], start=1):
        cell = cell.replace("\x00", "")
        header = " ".join((unneutralize(cell) if neutralized else cell).split())[:200] or _(
            "column %(n)d"
        ) % {"n": index}
        if header in seen:
            seen[header] += 1
            header = f"{header} ({seen[header]})"
        else:
            seen[header] = 1
        headers.append(header)
    return headers


# --- Upload and mapping --------------------------------------------------------------------------


class _CappedFile(File):
    """Passes reads through, counting bytes; past the cap it raises (the storage write stops)."""

    def __init__(self, fileobj, limit: int):
        super().__init__(fileobj)
        self.limit = limit
        self.count = 0
        self.sample = b""

    def read(self, size: int = -1) -> bytes:
        data = self.file.read(size)
        self.count += len(data)
        if self.count > self.limit:
            raise _too_large()
        if len(self.sample) < SAMPLE_BYTES:
            self.sample += data[: SAMPLE_BYTES - len(self.sample)]
        return data

    def chunks(self, chunk_size: int | None = None):
        while True:
            data = self.read(chunk_size or self.DEFAULT_CHUNK_SIZE)
            if not data:
                return
            yield data

    @property
    def size(self) -> int:  # storage backends may ask; the real size is known only at the end
        return self.count


def import_upload(
    *,
    organization: Organization,
    actor: User | None,
    fileobj,
    filename: str,
    encoding: str | None = None,
) -> ImportJob:
    """Store an uploaded CSV (streamed, capped at ``PARLEY_IMPORT_MAX_BYTES``), detect its encoding
    and delimiter, read its header row and propose a mapping. Returns a draft ImportJob."""
    declared = getattr(fileobj, "size", None)
    if isinstance(declared, int) and declared > max_upload_bytes():
        raise _too_large()
    if hasattr(fileobj, "seek"):
        with contextlib.suppress(OSError, ValueError):
            fileobj.seek(0)
    job = ImportJob(
        organization=organization,
        created_by=actor,
        token=secrets.token_hex(16),
        original_name=(filename or "contacts.csv")[:255],
    )
    capped = _CappedFile(fileobj, max_upload_bytes())
    name = job.upload.field.generate_filename(job, job.original_name)
    try:
        stored = default_storage.save(name, capped)
    except UploadTooLarge:
        _delete_quietly(name)
        raise
    job.upload.name = stored
    job.size_bytes = capped.count
    try:
        _inspect(job, capped.sample, encoding)
        job.mapping = _propose_mapping(organization, job.headers)
        job.save()
    except BaseException:
        _delete_quietly(stored)
        raise
    return job


def _delete_quietly(name: str) -> None:
    try:
        default_storage.delete(name)
    except Exception:  # a leftover partial file is harmless; the upload error is what matters
        logger.warning("could not delete %s", name, exc_info=True)


def _inspect(job: ImportJob, sample: bytes, encoding: str | None) -> None:
    if not sample.strip(b"\x00\r\n\t \xef\xbb\xbf\xff\xfe"):
        raise ApplicationError(
            _("That file is empty."), code="empty_file", fields={"file": [_("The file is empty.")]}
        )
    if sample.startswith(OLE_MAGIC):
        raise _unreadable_workbook(_("This is an old Excel file (.xls)."))
    if sample.startswith(ZIP_MAGIC):
        job.encoding, job.delimiter = XLSX, ","
    else:
        job.encoding = _chosen_encoding(encoding, sample) if encoding else detect_encoding(sample)
        text = codecs.getincrementaldecoder(job.encoding)(errors="replace").decode(sample)
        job.delimiter = detect_delimiter(text)
    with _open_rows(job) as rows:
        first = next(rows, None)
    if first is None or first[1] is None or not any(c.strip() for c in first[1]):
        raise ApplicationError(
            _("The first row must name the columns."),
            code="no_header",
            fields={"file": [_("No header row found.")]},
        )
    job.headers = _unique_headers(first[1], neutralized=job.encoding != XLSX)


def _propose_mapping(organization: Organization, headers: list[str]) -> dict[str, str]:
    keys = {header: _header_key(header) for header in headers}
    remembered = dict(
        scoped(ImportColumnMemory, organization)
        .filter(header__in=[k[:200] for k in keys.values()])
        .values_list("header", "field")
    )
    custom = {}
    for definition in scoped(CustomField, organization).only("key", "label"):
        target = f"cf.{definition.key}"
        custom[_header_key(definition.key)] = target
        custom[_header_key(definition.label)] = target
        custom[f"cf.{definition.key.lower()}"] = target
    valid = set(FIELDS) | set(custom.values()) | {""}
    mapping, taken = {}, set()
    for header, key in keys.items():
        if key[:200] in remembered and remembered[key[:200]] in valid:
            guess = remembered[key[:200]]
        else:
            guess = HEADER_GUESSES.get(key) or custom.get(key, "")
        if guess and guess not in MULTI_FIELDS and guess in taken:
            guess = ""
        taken.add(guess)
        mapping[header] = guess
    return mapping


def _valid_fields(organization: Organization) -> set[str]:
    keys = scoped(CustomField, organization).values_list("key", flat=True)
    return set(FIELDS) | {f"cf.{k}" for k in keys} | {""}


def _clean_mapping(organization: Organization, job: ImportJob, mapping) -> dict[str, str]:
    if not isinstance(mapping, dict):
        raise ApplicationError(
            _("The mapping must be an object."), fields={"mapping": [_("Expected an object.")]}
        )
    valid = _valid_fields(organization)
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, str] = {}
    for header, target in mapping.items():
        target = target or ""
        if header not in job.headers:
            errors[f"mapping.{header}"] = [_("No such column in the file.")]
        elif not isinstance(target, str) or target not in valid:
            errors[f"mapping.{header}"] = [_("Unknown field.")]
        else:
            cleaned[header] = target
    counts: dict[str, int] = {}
    for target in cleaned.values():
        counts[target] = counts.get(target, 0) + 1
    for header, target in cleaned.items():
        if target and target not in MULTI_FIELDS and counts[target] > 1:
            errors[f"mapping.{header}"] = [_("Another column is mapped to this field too.")]
    if not errors and "phone" not in cleaned.values():
        errors["mapping"] = [_("Map one column to the phone number: contacts are matched by it.")]
    if errors:
        raise ApplicationError(_("The mapping is not valid."), fields=errors)
    return {header: cleaned.get(header, "") for header in job.headers}


def _clean_options(organization: Organization, options) -> dict:
    options = options or {}
    if not isinstance(options, dict):
        raise ApplicationError(
            _("The options must be an object."), fields={"options": [_("Expected an object.")]}
        )
    unknown = set(options) - {"overwrite", "add_tags", "add_groups"}
    if unknown:
        raise ApplicationError(
            _("Unknown options."), fields={f"options.{k}": [_("Unknown option.")] for k in unknown}
        )

    def names(key: str) -> list[str]:
        value = options.get(key) or []
        if isinstance(value, str):
            value = TAG_SPLIT.split(value)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ApplicationError(
                _("The options are not valid."), fields={f"options.{key}": [_("A list of names.")]}
            )
        cleaned = [" ".join(v.split()) for v in value if v.strip()]
        if any(len(v) > 60 for v in cleaned):
            raise ApplicationError(
                _("The options are not valid."),
                fields={f"options.{key}": [_("At most 60 characters each.")]},
            )
        return cleaned

    return {
        "overwrite": bool(options.get("overwrite", False)),
        "add_tags": names("add_tags"),
        "add_groups": names("add_groups"),
    }


@transaction.atomic
def import_set_mapping(
    *, organization: Organization, job: ImportJob, mapping: dict, options: dict | None = None
) -> ImportJob:
    """Validate and store the mapping (header → field) and options (overwrite, add_tags,
    add_groups) of a draft import; remember each header's field for the organization's next file."""
    if job.state != JobState.DRAFT:
        raise ApplicationError(
            _("This import has started; its mapping cannot change."), code="not_draft"
        )
    job.mapping = _clean_mapping(organization, job, mapping)
    job.options = _clean_options(organization, options)
    job.save(update_fields=["mapping", "options"])
    now = timezone.now()
    remembered: dict[str, str] = {}  # one row per folded header: 'Phone' and 'phone' share one
    for header, target in job.mapping.items():
        key = _header_key(header)[:200]
        if key and (target or key not in remembered):
            remembered[key] = target
    ImportColumnMemory.objects.bulk_create(
        [
            ImportColumnMemory(organization=organization, header=key, field=target, updated_at=now)
            for key, target in remembered.items()
        ],
        update_conflicts=True,
        unique_fields=["organization", "header"],
        update_fields=["field", "updated_at"],
    )
    return job


# --- Reading rows --------------------------------------------------------------------------------


class _Rows:
    """Context manager over ``(row_number, cells | None, error | None)`` of the stored file."""

    def __init__(self, job: ImportJob):
        self.job = job
        self.text = self.workbook = None

    def __enter__(self) -> Iterator[tuple[int, list[str] | None, str | None]]:
        self.raw = default_storage.open(self.job.upload.name, "rb")
        if self.job.encoding == XLSX:
            try:
                self.workbook = _open_workbook(self.raw)
            except BaseException:
                self.raw.close()
                raise
            return _workbook_rows(self.workbook)
        self.text = io.TextIOWrapper(
            _Readable(self.raw), encoding=self.job.encoding, errors="replace", newline=""
        )
        return self._iterate()

    def __exit__(self, *exc) -> None:
        if self.workbook is not None:
            self.workbook.close()
        if self.text is not None:
            self.text.close()
        self.raw.close()

    def _iterate(self):
        reader = csv.reader(self.text, delimiter=self.job.delimiter or ",", strict=False)
        number = 0
        while True:
            number += 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield number, None, _("Broken CSV (%(error)s).") % {"error": exc}
                continue
            yield number, cells, None


class _Readable(io.RawIOBase):
    """A storage file as a raw stream TextIOWrapper can buffer (S3 files are not io objects)."""

    def __init__(self, fileobj):
        self.fileobj = fileobj

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.fileobj.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _unreadable_workbook(reason: str = "") -> ApplicationError:
    return ApplicationError(
        " ".join(
            [reason, _("Save it as an Excel workbook (.xlsx) or as CSV and upload that.")]
        ).strip(),
        code="unreadable_file",
        fields={"file": [_("Not a workbook Parley can read.")]},
    )


def _open_workbook(fileobj):
    """The stored .xlsx, opened read-only (cells streamed), after checking what it expands to."""
    try:
        with zipfile.ZipFile(fileobj) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise _unreadable_workbook() from None
    shared = sum(p.file_size for p in parts if p.filename.lower().endswith("sharedstrings.xml"))
    if sum(p.file_size for p in parts) > XLSX_MAX_EXPANDED or shared > XLSX_MAX_SHARED_STRINGS:
        raise _unreadable_workbook(_("This workbook expands to more than an address book holds."))
    fileobj.seek(0)
    try:
        workbook = load_workbook(fileobj, read_only=True, data_only=True)
    except Exception:  # openpyxl has no one error type for a broken workbook (zip, XML, keys)
        logger.info("unreadable workbook", exc_info=True)
        raise _unreadable_workbook() from None
    if not workbook.worksheets:
        workbook.close()
        raise _unreadable_workbook(_("This workbook has no worksheet."))
    return workbook


def _workbook_rows(workbook) -> Iterator[tuple[int, list[str] | None, str | None]]:
    """The first worksheet's rows as text cells, numbered as the spreadsheet numbers them; a row
    with no value is skipped, and each data row is as wide as the header row."""
    sheet = workbook.worksheets[0]
    sheet.reset_dimensions()  # some writers record a wrong size; read every row there is
    width = None
    try:
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = [_cell_text(value) for value in values]
            while cells and cells[-1] == "":
                cells.pop()
            if not cells:
                continue
            if width is None:
                width = len(cells)  # the header row
            elif len(cells) < width:
                cells.extend([""] * (width - len(cells)))
            yield number, cells, None
    except ApplicationError:
        raise
    except Exception:  # a part that breaks only when read (the sheet's XML)
        logger.info("unreadable worksheet", exc_info=True)
        raise _unreadable_workbook() from None


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone typed as a number: 85291234567, not 85291234567.0
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _open_rows(job: ImportJob) -> _Rows:
    csv.field_size_limit(FIELD_SIZE_LIMIT)
    return _Rows(job)


class ParsedRow:
    """One data row as the import understood it. A file holds many: a slotted class whose
    optional lists are only created when filled keeps each row small (fewer objects for the
    garbage collector to walk)."""

    __slots__ = (
        "aliases",
        "cells",
        "custom",
        "groups",
        "new",
        "number",
        "opted_out_at",
        "phones",
        "problems",
        "stage",
        "tags",
        "values",
    )

    def __init__(self, number: int, cells: list[str]):
        self.number, self.cells = number, cells
        self.values: dict = {}  # scalars: name, notify_name, ..., status, favorite
        self.phones: list[str] | tuple = []  # primary first
        self.aliases: list[str] | tuple = ()
        self.tags: list[str] | tuple = ()
        self.groups: list[str] | tuple = ()
        self.custom: dict = _NO_CUSTOM
        self.opted_out_at: dt.datetime | None = None
        self.problems: list[str] | tuple = ()
        # Prepared off the writer's path (``_BatchReader``): the contact this row would create
        # and, on PostgreSQL, its staged values.
        self.new: _NewContact | None = None
        self.stage: tuple | None = None

    def problem(self, text: str) -> None:
        if not self.problems:
            self.problems = []
        self.problems.append(text)

    def add(self, name: str, value: str) -> None:
        """Append to ``aliases``, ``tags`` or ``groups``."""
        values = getattr(self, name)
        if not values:
            values = []
            setattr(self, name, values)
        values.append(value)


_NO_CUSTOM: dict = {}  # shared by rows without custom values: never written to


class RowParser:
    """Turns the cells of one row into a ParsedRow (no database access: definitions are loaded
    once)."""

    def __init__(self, organization: Organization, job: ImportJob):
        self.country = organization.default_country
        self.columns = [(i, job.mapping.get(h, "")) for i, h in enumerate(job.headers)]
        self.columns = [(i, target) for i, target in self.columns if target]
        self.width = len(job.headers)
        self.definitions = {f.key: f for f in scoped(CustomField, organization)}
        self.now = timezone.now()
        # A CSV's formula cells may carry the export's leading ' (stripped here); a workbook's
        # cells are typed, and a ' in one is part of its value.
        self.neutralized = job.encoding != XLSX

    def parse(self, number: int, cells: list[str]) -> ParsedRow:
        row = ParsedRow(number=number, cells=cells)
        joined = "\n".join(cells)  # a cell is blank / holds U+FFFD iff the joined text does
        if not cells or not joined.strip():
            row.problem(_("Empty row."))
            return row
        if len(cells) != self.width and not (
            len(cells) > self.width and not any(c.strip() for c in cells[self.width :])
        ):
            row.problem(
                _("Expected %(want)d columns, found %(got)d.")
                % {"want": self.width, "got": len(cells)}
            )
            return row
        if "\ufffd" in joined:
            row.problem(_("Some bytes are not valid in the file's encoding."))
            return row
        if "\x00" in joined:
            row.problem(_("A cell contains a NUL character."))
            return row
        for index, target in self.columns:
            raw = cells[index].strip() if index < len(cells) else ""
            if self.neutralized:
                raw = unneutralize(raw).strip()
            if raw:
                self._apply(row, target, raw)
        if not row.phones:
            row.problem(_("No phone number."))
        # Tuples of strings drop out of the collector's sight: a batch of rows costs it little.
        row.phones = tuple(dict.fromkeys(row.phones))
        if row.aliases:
            row.aliases = tuple(row.aliases)
        if row.tags:
            row.tags = tuple(row.tags)
        if row.groups:
            row.groups = tuple(row.groups)
        row.cells = tuple(cells)
        return row

    def _apply(self, row: ParsedRow, target: str, raw: str) -> None:
        if target in {"name", "notify_name", "verified_name"}:
            if len(raw) > 200:
                row.problem(_("%(field)s: at most 200 characters.") % {"field": target})
            else:
                row.values[target] = raw
        elif target == "phone":
            self._phone(row, raw, primary=True)
        elif target == "phone_2":
            for part in LIST_SPLIT.split(raw):
                if part.strip():
                    self._phone(row, part.strip(), primary=False)
        elif target == "email":
            email = raw.lower()
            if not email_plainly_valid(email):
                try:
                    validate_email(email)
                except ValidationError:
                    row.problem(_("Email “%(v)s” is not valid.") % {"v": raw})
                    return
            row.values["email"] = email
        elif target == "aliases":
            for part in LIST_SPLIT.split(raw):
                alias = " ".join(part.strip().split())[:100]
                if alias:
                    row.add("aliases", alias)
        elif target in {"tags", "groups"}:
            limit = 60 if target == "tags" else 120
            for part in TAG_SPLIT.split(raw):
                name = " ".join(part.strip().split())
                if len(name) > limit:
                    row.problem(
                        _("%(field)s: “%(v)s” is longer than %(n)d characters.")
                        % {"field": target, "v": name[:30], "n": limit}
                    )
                elif name:
                    row.add(target, name)
        elif target == "favorite":
            flag = _boolean(raw)
            if flag is None:
                row.problem(_("Favorite: enter yes or no, not “%(v)s”.") % {"v": raw})
            else:
                row.values["favorite"] = flag
        elif target == "status":
            status = raw.lower()
            if status not in ContactStatus.values:
                row.problem(
                    _("Status “%(v)s” is unknown (active, blocked or invalid).") % {"v": raw}
                )
            else:
                row.values["status"] = status
        elif target == "opted_out":
            try:
                when = parse_datetime(raw) if not raw.isdigit() else None
            except ValueError:
                when = None
            if when is not None:
                row.opted_out_at = when if timezone.is_aware(when) else timezone.make_aware(when)
            else:
                flag = _boolean(raw)
                if flag is None:
                    row.problem(
                        _("Opted out: enter yes, no or a date and time, not “%(v)s”.") % {"v": raw}
                    )
                elif flag:
                    row.opted_out_at = self.now
        elif target.startswith("cf."):
            key = target[3:]
            definition = self.definitions.get(key)
            if definition is None:
                row.problem(_("Unknown custom field “%(k)s”.") % {"k": key})
                return
            try:
                value = coerce_custom_value(definition, raw)
                if row.custom is _NO_CUSTOM:
                    row.custom = {}
                row.custom[key] = value
            except ValueError as exc:
                row.problem(f"{definition.label}: {exc}")

    def _phone(self, row: ParsedRow, raw: str, *, primary: bool) -> None:
        try:
            value = normalize_phone(raw, default_country=self.country)
        except InvalidPhone:
            row.problem(_("Phone “%(v)s” is not a number we can read.") % {"v": raw})
            return
        if primary:
            row.phones.insert(0, value)
        else:
            row.phones.append(value)


# The common shape of an address, a strict subset of what Django's validator accepts (a test keeps
# it so): most rows pass here, the rest go through ``validate_email``.
PLAIN_EMAIL = re.compile(
    r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)


def email_plainly_valid(email: str) -> bool:
    return len(email) <= 254 and PLAIN_EMAIL.fullmatch(email) is not None


def _boolean(raw: str) -> bool | None:
    text = raw.strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    return None


# --- Preview -------------------------------------------------------------------------------------


def import_preview(*, organization: Organization, job: ImportJob, rows: int = 20) -> dict:
    """The first ``rows`` rows as they would be imported, with the problems of each. ``Conflict``
    once the uploaded file is gone (a cancelled import's is deleted)."""
    if job.state == JobState.CANCELLED:
        raise Conflict(
            _("This import was cancelled: its file is no longer kept."), code="cancelled"
        )
    parser = RowParser(organization, job)
    parsed: list[ParsedRow] = []
    try:
        with _open_rows(job) as reader:
            next(reader, None)  # the header
            for number, cells, error in reader:
                row = parser.parse(number, cells) if cells is not None else ParsedRow(number, [])
                if error:
                    row.problem(error)
                parsed.append(row)
                if len(parsed) >= rows:
                    break
    except FileNotFoundError:
        raise Conflict(
            _("The uploaded file of this import is no longer kept: upload it again."),
            code="file_gone",
        ) from None
    phones = {p for row in parsed for p in row.phones}
    holders = dict(
        scoped(ContactIdentity, organization)
        .filter(kind=IdentityKind.PHONE, value__in=phones)
        .values_list("value", "contact_id")
    )
    seen: dict[str, int] = {}
    out = []
    for row in parsed:
        problems = list(row.problems)
        for phone in row.phones:
            if phone in seen:
                problems.append(
                    _("Phone +%(p)s repeats row %(n)d.") % {"p": phone, "n": seen[phone]}
                )
            seen.setdefault(phone, row.number)
        matches = sorted({holders[p] for p in row.phones if p in holders})
        if len(matches) > 1:
            problems.append(_("Its phones belong to different contacts."))
        values = {
            **row.values,
            "phone": f"+{row.phones[0]}" if row.phones else "",
            "phone_2": "; ".join(f"+{p}" for p in row.phones[1:]),
            "aliases": "; ".join(row.aliases),
            "tags": "; ".join(row.tags),
            "groups": "; ".join(row.groups),
            **{f"cf.{k}": v for k, v in row.custom.items()},
        }
        if row.opted_out_at:
            values["opted_out"] = row.opted_out_at.isoformat()
        out.append(
            {
                "row": row.number,
                "values": values,
                "problems": problems,
                "action": "skip" if problems else ("update" if matches else "create"),
                "contact_id": matches[0] if len(matches) == 1 else None,
                "notes": [_("Would update existing contact #%(id)d.") % {"id": matches[0]}]
                if len(matches) == 1 and not problems
                else [],
            }
        )
    return {"headers": job.headers, "mapping": job.mapping, "rows": out}


# --- Start and run -------------------------------------------------------------------------------


@transaction.atomic
def import_start(*, organization: Organization, job: ImportJob, actor: User | None) -> ImportJob:
    """Queue a draft import (its mapping must be valid) and enqueue the run after commit."""
    from messaging.tasks import run_import

    if job.state != JobState.DRAFT:
        raise ApplicationError(_("This import has already started."), code="not_draft")
    _clean_mapping(organization, job, job.mapping)
    claimed = ImportJob.objects.filter(
        pk=job.pk, organization=organization, state=JobState.DRAFT
    ).update(state=JobState.QUEUED)
    if not claimed:
        raise ApplicationError(_("This import has already started."), code="not_draft")
    job.state = JobState.QUEUED
    job_id = job.pk
    transaction.on_commit(lambda: run_import.delay(job_id))
    _push_progress(job)
    return job


@transaction.atomic
def import_cancel(*, organization: Organization, job: ImportJob) -> None:
    """Cancel a draft: its stored file goes; the row stays as a record."""
    if not ImportJob.objects.filter(
        pk=job.pk, organization=organization, state=JobState.DRAFT
    ).update(state=JobState.CANCELLED, finished_at=timezone.now()):
        raise ApplicationError(
            _("Only an import that has not started can be cancelled."), code="not_draft"
        )
    name = job.upload.name
    transaction.on_commit(lambda: _delete_quietly(name))
    job.state = JobState.CANCELLED


def progress_data(job: ImportJob) -> dict:
    return {
        "id": job.pk,
        "state": job.state,
        "total_rows": job.total_rows,
        "processed_rows": job.processed_rows,
        "created_count": job.created_count,
        "updated_count": job.updated_count,
        "error_count": job.error_count,
        "has_error_report": bool(job.error_report),
        "failure": job.failure,
    }


def _push_progress(job: ImportJob) -> None:
    push(org_group(job.organization_id), "import.progress", progress_data(job))


def import_run(job_id: int) -> ImportJob | None:
    """Run a queued import to the end. A second call (a redelivered task) finds it claimed and
    does nothing. Each batch commits on its own; on an unexpected error the job fails with a
    ``failure`` saying how far it got (the committed rows stay, the report lists the bad ones)."""
    if not ImportJob.objects.filter(pk=job_id, state=JobState.QUEUED).update(
        state=JobState.RUNNING, started_at=timezone.now()
    ):
        return None
    job = ImportJob.objects.select_related("organization").get(pk=job_id)
    runner = _Runner(job)
    try:
        runner.run()
    except Exception as exc:
        logger.exception("import %s failed", job_id)
        job.state = JobState.FAILED
        done = job.processed_rows
        job.failure = _(
            "Stopped after %(done)d of the file's rows (rows 2 to %(last)d were handled and stay "
            "imported): %(error)s"
        ) % {"done": done, "last": done + 1, "error": str(exc)[:500] or type(exc).__name__}
        try:
            runner.save_report()
        except Exception:
            logger.exception("import %s: the error report could not be saved", job_id)
    else:
        job.state = JobState.DONE
    finally:
        runner.close()
    job.finished_at = timezone.now()
    with transaction.atomic():
        job.save(
            update_fields=[
                "state",
                "failure",
                "finished_at",
                "error_report",
                "total_rows",
                "processed_rows",
                "created_count",
                "updated_count",
                "error_count",
            ]
        )
        _push_progress(job)
    return job


class _NewContact:
    """A contact the batch creates, as plain values (no model instance: the import's hot path)."""

    __slots__ = (
        "custom_fields",
        "display_name",
        "email",
        "favorite",
        "name",
        "notify_name",
        "opted_out_at",
        "opted_out_source",
        "phone",
        "pk",
        "search_text",
        "status",
        "verified_name",
    )

    def __init__(self, row: ParsedRow):
        values = row.values
        self.pk = None
        self.name = values.get("name", "")
        self.notify_name = values.get("notify_name", "")
        self.verified_name = values.get("verified_name", "")
        self.email = values.get("email", "")
        self.favorite = values.get("favorite", False)
        self.status = values.get("status", ContactStatus.ACTIVE.value)
        self.phone = row.phones[0]
        self.custom_fields = row.custom
        if row.opted_out_at:
            self.opted_out_at, self.opted_out_source = row.opted_out_at, "import"
        else:
            self.opted_out_at, self.opted_out_source = None, ""
        self.display_name = Contact.compute_display_name(self)
        self.search_text = search_text(_row_terms(row, self))

    def stage_row(self, row: ParsedRow) -> tuple:
        """The row's values for ``_STAGE`` up to its tag and group ids (which only the writer
        knows)."""
        return (
            self.name,
            self.notify_name,
            self.verified_name,
            self.display_name,
            self.phone,
            self.email,
            self.favorite,
            self.status,
            self.opted_out_at,
            self.opted_out_source,
            json.dumps(self.custom_fields) if self.custom_fields else "{}",
            self.search_text,
            "\x1f".join(row.phones),
            "\x1f".join(row.aliases) if row.aliases else None,
        )


_CONTACT_COLUMNS = [  # of the portable path
    "id",
    "organization_id",
    "name",
    "notify_name",
    "verified_name",
    "display_name",
    "phone",
    "email",
    "favorite",
    "status",
    "opted_out_at",
    "opted_out_source",
    "custom_fields",
    "search_text",
    "created_at",
    "updated_at",
]


def _insert_contacts(organization: Organization, contacts: list[_NewContact], now) -> None:
    """Insert new contacts with ``bulk_create``, giving each its ``pk`` (the portable path;
    PostgreSQL takes ``_create_staged``)."""
    objects = [
        Contact(
            organization=organization,
            **{c: getattr(n, c) for c in _CONTACT_COLUMNS[2:-2] if c != "custom_fields"},
            custom_fields=dict(n.custom_fields),
            created_at=now,
            updated_at=now,
        )
        for n in contacts
    ]
    Contact.objects.bulk_create(objects, batch_size=BATCH_SIZE)
    for new, obj in zip(contacts, objects, strict=True):
        new.pk = obj.pk


# PostgreSQL: a batch's new contacts are COPYed into a session's temporary table (no WAL, no
# index), then one statement inserts the contacts and their identities, aliases, tags and group
# memberships from it — no row built in Python for any table but this one. Lists travel as text
# joined with U+001F, which parsed cells never hold (their whitespace is collapsed).
_STAGE = "parley_import_stage"
_STAGE_COLUMNS = (
    "name, notify_name, verified_name, display_name, phone, email, favorite, status, "
    "opted_out_at, opted_out_source, custom_fields, search_text, phones, aliases, tag_ids, "
    "group_ids"
)
_STAGE_TABLE = f"""
CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} (
    id bigint NOT NULL DEFAULT nextval('{{sequence}}'::regclass),
    name text, notify_name text, verified_name text, display_name text, phone text, email text,
    favorite boolean, status text, opted_out_at timestamptz, opted_out_source text,
    custom_fields text, search_text text, phones text, aliases text, tag_ids text, group_ids text
) ON COMMIT DELETE ROWS
"""
_SEQUENCES: dict[str, str] = {}  # database → the contact table's id sequence


def _stage_table(cursor) -> str:
    """The DDL of ``_STAGE``, its ids drawn from the contact sequence (named as a constant: looked
    up on every row it would cost more than ``nextval``)."""
    database = connection.settings_dict["NAME"]
    if database not in _SEQUENCES:
        cursor.execute("SELECT pg_get_serial_sequence('messaging_contact', 'id')")
        _SEQUENCES[database] = cursor.fetchone()[0]
    return _STAGE_TABLE.replace("{sequence}", _SEQUENCES[database].replace("'", "''"))


_STAGE_INSERT = """
WITH staged AS (DELETE FROM parley_import_stage RETURNING *),
contacts AS (
    INSERT INTO messaging_contact (
        id, organization_id, name, notify_name, verified_name, display_name, phone, email,
        favorite, status, opted_out_at, opted_out_source, custom_fields, search_text, created_at,
        updated_at
    )
    SELECT id, %(org)s, name, notify_name, verified_name, display_name, phone, email, favorite,
        status, opted_out_at, opted_out_source, custom_fields::jsonb, search_text, %(now)s, %(now)s
    FROM staged
),
identities AS (
    INSERT INTO messaging_contactidentity (organization_id, contact_id, kind, value, created_at)
    SELECT %(org)s, s.id, 'phone', p.value, %(now)s
    FROM staged s CROSS JOIN LATERAL unnest(string_to_array(s.phones, %(sep)s)) AS p(value)
),
aliases AS (
    INSERT INTO messaging_contactalias (organization_id, contact_id, alias)
    SELECT DISTINCT ON (s.id, lower(a.alias)) %(org)s, s.id, a.alias
    FROM staged s
    CROSS JOIN LATERAL unnest(string_to_array(s.aliases, %(sep)s)) WITH ORDINALITY AS a(alias, n)
    ORDER BY s.id, lower(a.alias), a.n
),
tags AS (
    INSERT INTO messaging_contacttag (organization_id, contact_id, tag_id, created_at)
    SELECT DISTINCT %(org)s, s.id, t.id::bigint, %(now)s::timestamptz
    FROM staged s CROSS JOIN LATERAL unnest(string_to_array(s.tag_ids, ',')) AS t(id)
)
INSERT INTO messaging_contactgroupmember (organization_id, group_id, contact_id, created_at)
SELECT DISTINCT %(org)s, g.id::bigint, s.id, %(now)s::timestamptz
FROM staged s CROSS JOIN LATERAL unnest(string_to_array(s.group_ids, ',')) AS g(id)
"""


def _phone_holders(organization: Organization, phones: list[str]) -> dict[str, int]:
    """Phone → id of the contact holding that phone identity (one query)."""
    if not phones:
        return {}
    if connection.vendor != "postgresql":
        return dict(
            scoped(ContactIdentity, organization)
            .filter(kind=IdentityKind.PHONE, value__in=phones)
            .values_list("value", "contact_id")
        )
    # One parameter instead of thousands of IN placeholders (phones are digits: no commas).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT value, contact_id FROM messaging_contactidentity "
            "WHERE organization_id = %s AND kind = %s "
            "AND value = ANY(string_to_array(%s, ','))",
            [organization.pk, IdentityKind.PHONE.value, ",".join(phones)],
        )
        return dict(cursor.fetchall())


class _BatchReader:
    """Reads and parses the stored file in a worker thread, one batch ahead of the writer.

    ``next()`` returns ``(broken, batch, final)``: the records that could not be read (``(row
    number, error)``) since the previous batch, then up to ``BATCH_SIZE`` parsed rows; ``final``
    on the last one. Parsing touches no database; the thread uses the caller's language and time
    zone. At most two batches wait parsed (memory stays bounded). An error in the thread is
    raised by ``next()``."""

    def __init__(self, job: ImportJob, parser: RowParser):
        self.job, self.parser = job, parser
        self.staged = connection.vendor == "postgresql"
        self.queue: queue.Queue = queue.Queue(maxsize=1)
        self.stop = threading.Event()
        self.language = translation.get_language()
        self.zone = timezone.get_current_timezone()
        self.thread = threading.Thread(target=self._produce, name="import-reader", daemon=True)
        self.thread.start()

    def next(self) -> tuple[list[tuple[int, str]], list[ParsedRow], bool]:
        ok, item = self.queue.get()
        if not ok:
            raise item
        return item

    def close(self) -> None:
        self.stop.set()
        with contextlib.suppress(queue.Empty):  # unblock a waiting put
            self.queue.get_nowait()
        self.thread.join()

    def _put(self, item) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            with translation.override(self.language), timezone.override(self.zone):
                parse, staged = self.parser.parse, self.staged
                broken: list[tuple[int, str]] = []
                batch: list[ParsedRow] = []
                with _open_rows(self.job) as reader:
                    next(reader, None)
                    for number, cells, error in reader:
                        if cells is None:
                            broken.append((number, error))
                            continue
                        row = parse(number, cells)
                        if not row.problems:
                            if staged:  # plain values only: nothing for the collector
                                row.stage = _NewContact(row).stage_row(row)
                            else:
                                row.new = _NewContact(row)
                        batch.append(row)
                        if len(batch) >= BATCH_SIZE:
                            if not self._put((True, (broken, batch, False))):
                                return
                            broken, batch = [], []
                self._put((True, (broken, batch, True)))
        except BaseException as exc:  # handed to the writer, which fails the job with it
            self._put((False, exc))


def _copy(model, columns: list[str], rows) -> None:
    """Insert plain rows (values in ``columns`` order, attnames; no JSON columns): one ``COPY``
    on PostgreSQL (no model instances, no SQL compilation), ``bulk_create`` elsewhere. A unique
    violation surfaces as Django's IntegrityError either way."""
    if isinstance(rows, list) and not rows:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create(
            [model(**dict(zip(columns, row, strict=True))) for row in rows], batch_size=BATCH_SIZE
        )
        return
    import psycopg

    names = ", ".join(connection.ops.quote_name(model._meta.get_field(c).column) for c in columns)
    sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({names}) FROM STDIN"
    connection.ensure_connection()
    try:
        with connection.connection.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
    except psycopg.errors.IntegrityError as exc:
        raise IntegrityError(str(exc)) from exc


def _row_terms(row: ParsedRow, contact: _NewContact):
    """Search terms ``(kind, value)`` of the contact a row creates, as
    ``messaging.services.contacts.contact_search_terms`` lists them (a test keeps them equal)."""
    yield from (("name", v) for v in (contact.name, contact.notify_name, contact.verified_name))
    yield "email", contact.email
    yield from (("alias", a) for a in row.aliases)
    yield from (("phone", p) for p in row.phones)


@dataclass
class _Step:
    """One batch on its way to the database: its screened rows, how many rows of the file it
    stands for (bad and broken ones included), how many of them were already rejected."""

    good: list[ParsedRow]
    size: int
    errors: int
    final: bool


class _Aborted(Exception):
    """An earlier batch failed, so this one (committed only after it) rolled back."""


@dataclass
class _InFlight:
    index: int
    step: _Step
    done: threading.Event = field(default_factory=threading.Event)
    result: tuple | None = None
    error: BaseException | None = None


class _Writers:
    """Writes batches that only create contacts on ``PARLEY_IMPORT_WRITERS`` threads, each with
    its own database connection, so PostgreSQL works on two batches at once while the reader
    parses the next. Commits happen in file order (a writer waits for its turn before adding its
    counts), so what is committed is always the file's first N batches, as on the serial path.

    The runner's thread keeps everything else: it screens, looks phones up (a batch matching
    existing contacts is written serially, after those in flight settle), creates the batch's
    tags and groups (so writers only insert rows and never wait on each other's locks), reports
    and pushes progress. A batch whose parallel write fails is written again serially, with the
    ones after it (they rolled back), with the serial path's retry."""

    def __init__(self, runner: _Runner):
        self.runner = runner
        self.count = int(getattr(settings, "PARLEY_IMPORT_WRITERS", 2))
        self.tasks: queue.Queue = queue.Queue()
        self.in_flight: collections.deque[_InFlight] = collections.deque()
        self.turn_changed = threading.Condition()
        self.turn = 0  # index of the batch that commits next
        self.failed: int | None = None  # index of the first batch that failed
        self.next_index = 0
        self.language = translation.get_language()
        self.zone = timezone.get_current_timezone()
        self.threads = [
            threading.Thread(target=self._loop, name=f"import-writer-{n}", daemon=True)
            for n in range(self.count)
        ]
        for thread in self.threads:
            thread.start()

    @staticmethod
    def usable() -> bool:
        """Parallel writers need PostgreSQL, more than one writer and no caller's transaction
        (their own connections could not see what it has not committed)."""
        return (
            connection.vendor == "postgresql"
            and int(getattr(settings, "PARLEY_IMPORT_WRITERS", 2)) > 1
            and not connection.in_atomic_block
        )

    def take(self, step: _Step) -> bool:
        """Queue ``step`` for a writer if it only creates contacts; False: write it serially."""
        runner = self.runner
        if not step.good:
            return False
        if _phone_holders(runner.organization, [p for r in step.good for p in r.phones]):
            return False
        runner._resolve(
            {n for row in step.good for n in row.tags} | set(runner.add_tags),
            {n for row in step.good for n in row.groups} | set(runner.add_groups),
        )
        while len(self.in_flight) >= self.count:
            self._settle_first()
        item = _InFlight(self.next_index, step)
        self.next_index += 1
        self.in_flight.append(item)
        self.tasks.put(item)
        return True

    def settle(self) -> None:
        """Wait for every batch in flight and account for it, in order."""
        while self.in_flight:
            self._settle_first()

    def stop(self) -> None:
        """After the last batch, or when the run failed: batches still in flight roll back
        (those already committing are counted), then the threads end."""
        with self.turn_changed:
            self.failed = -1
            self.turn_changed.notify_all()
        while self.in_flight:
            item = self.in_flight.popleft()
            item.done.wait()
            if item.error is None:
                self.runner._settled(item.step, item.result)
        for _thread in self.threads:
            self.tasks.put(None)
        for thread in self.threads:
            thread.join()

    def _settle_first(self) -> None:
        item = self.in_flight.popleft()
        item.done.wait()
        if item.error is None:
            self.runner._settled(item.step, item.result)
            return
        if not isinstance(item.error, (IntegrityError, _Aborted)):
            raise item.error
        # Write it and every batch after it again, serially, in order.
        logger.info("import %s: batch %d rewritten serially", self.runner.job.pk, item.index)
        rest = [item, *self.in_flight]
        self.in_flight.clear()
        for other in rest:
            other.done.wait()
        with self.turn_changed:
            self.turn, self.failed = self.next_index, None
        for other in rest:
            if other.error is None:  # cannot happen: it commits only after the failed one
                self.runner._settled(other.step, other.result)
            else:
                self.runner._commit(other.step)

    def _loop(self) -> None:
        try:
            with translation.override(self.language), timezone.override(self.zone):
                while (item := self.tasks.get()) is not None:
                    try:
                        item.result = self._write(item)
                    except BaseException as exc:
                        item.error = exc
                    item.done.set()
        finally:
            connection.close()

    def _write(self, item: _InFlight) -> tuple:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:  # checked as rows go in, not at commit
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                result = self.runner._write(item.step.good, holders={})
                with self.turn_changed:
                    while self.turn != item.index and (
                        self.failed is None or self.failed > item.index
                    ):
                        self.turn_changed.wait()
                    if self.turn != item.index:
                        raise _Aborted()
                self.runner._count_in_database(item.step, result)
        except BaseException:
            with self.turn_changed:
                self.failed = item.index if self.failed is None else min(self.failed, item.index)
                self.turn_changed.notify_all()
            raise
        with self.turn_changed:
            self.turn = item.index + 1
            self.turn_changed.notify_all()
        return result


class _Runner:
    def __init__(self, job: ImportJob):
        self.job = job
        self.organization = job.organization
        self.parser = RowParser(self.organization, job)
        self.overwrite = bool(job.options.get("overwrite"))
        self.add_tags = list(job.options.get("add_tags") or [])
        self.add_groups = list(job.options.get("add_groups") or [])
        self.seen: dict[str, int] = {}  # phone → first row holding it (duplicates within the file)
        self.tag_ids: dict[str, int] = {}
        self.group_ids: dict[str, int] = {}
        self.report_file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self.report = io.TextIOWrapper(self.report_file, encoding="utf-8-sig", newline="")
        self.report_writer = csv.writer(self.report)
        self.report_writer.writerow([_("row"), _("reason"), *self.job.headers])

    def run(self) -> None:
        self.job.total_rows = self._count_rows()
        self.job.save(update_fields=["total_rows"])
        # Reading and parsing (pure Python, no database) run one batch ahead in a thread, so the
        # next batch is parsed while the database writes this one. Batches are screened here in
        # file order, exactly as if read inline: a broken record is reported (and counted) with
        # the batch it was read with. On PostgreSQL, batches that only create contacts are written
        # by parallel writers (``_Writers``), committed in file order.
        with collector_paused():
            self._run()
        self.save_report()

    def _run(self) -> None:
        reader = _BatchReader(self.job, self.parser)
        writers = _Writers(self) if _Writers.usable() else None
        try:
            while True:
                broken, batch, final = reader.next()
                errors = self.job.error_count
                for number, error in broken:
                    self._reject(ParsedRow(number=number, cells=[]), [error])
                good = self._screen(batch)
                step = _Step(good, len(broken) + len(batch), self.job.error_count - errors, final)
                if writers is None or not writers.take(step):
                    if writers is not None:
                        writers.settle()
                    self._commit(step)
                if final:
                    break
            if writers is not None:
                writers.settle()
        finally:
            reader.close()
            if writers is not None:
                writers.stop()

    def _count_rows(self) -> int:
        with _open_rows(self.job) as reader:
            return max(0, sum(1 for _row in reader) - 1)

    def _reject(self, row: ParsedRow, problems: list[str]) -> None:
        """One line of the error report: the row's cells as the import read them, each
        neutralized again, so a formula in one member's file never runs in the spreadsheet of
        whoever opens the report (and the report, fixed, imports the same values)."""
        self.job.error_count += 1
        read = (unneutralize(c) for c in row.cells) if self.job.encoding != XLSX else row.cells
        self.report_writer.writerow(
            [row.number, " ".join(problems), *(neutralize(c) for c in read)]
        )

    def close(self) -> None:
        self.report.close()

    def save_report(self) -> None:
        """Store the report of bad rows (spooled on disk while the job ran; never in memory)."""
        if not self.job.error_count or self.job.error_report:
            return
        self.report.flush()
        self.report_file.seek(0)
        self.job.error_report.save("errors.csv", File(self.report_file), save=False)

    def _commit(self, step: _Step) -> None:
        """One batch in one transaction; a race on an identity (someone created it meanwhile)
        rolls the batch back and retries it, matching that contact this time."""
        for attempt in range(3):
            try:
                with transaction.atomic():
                    result = self._write(step.good) if step.good else (0, 0, [])
                    self._count_in_database(step, result)
                break
            except IntegrityError:
                if attempt == 2:
                    raise
                logger.info("import %s: identity race, retrying the batch", self.job.pk)
                self.tag_ids.clear()  # ids created in the rolled-back transaction are gone
                self.group_ids.clear()
        self._settled(step, result)

    def _count_in_database(self, step: _Step, result: tuple) -> None:
        """Add the batch to the job's counts, in the batch's transaction (they commit together)."""
        created, updated, rejected = result
        ImportJob.objects.filter(pk=self.job.pk).update(
            processed_rows=F("processed_rows") + step.size,
            created_count=F("created_count") + created,
            updated_count=F("updated_count") + updated,
            error_count=F("error_count") + step.errors + len(rejected),
        )

    def _settled(self, step: _Step, result: tuple) -> None:
        """A batch committed: report its late rejections, count it, tell the dashboards."""
        created, updated, rejected = result
        for row, reason in rejected:
            self._reject(row, [reason])
        self.job.processed_rows += step.size
        self.job.created_count += created
        self.job.updated_count += updated
        if not step.final:  # the final state is pushed by ``import_run``
            _push_progress(self.job)

    def _screen(self, batch: list[ParsedRow]) -> list[ParsedRow]:
        """Drop (and report) rows with problems or with a phone an earlier row of the file has."""
        good = []
        for row in batch:
            problems = list(row.problems)
            if not problems:
                for phone in row.phones:
                    first = self.seen.get(phone)
                    if first is not None:
                        problems.append(
                            _("Phone +%(p)s repeats row %(n)d.") % {"p": phone, "n": first}
                        )
            if problems:
                self._reject(row, problems)
                continue
            for phone in row.phones:
                self.seen[phone] = row.number
            good.append(row)
        return good

    def _write(
        self, rows: list[ParsedRow], holders: dict[str, int] | None = None
    ) -> tuple[int, int, list[tuple[ParsedRow, str]]]:
        """Write one batch of screened rows: ``(created, updated, rejected rows)``. ``holders``
        (phone → contact) is looked up here unless the caller already did."""
        organization = self.organization
        if holders is None:
            holders = _phone_holders(organization, [p for row in rows for p in row.phones])
        now = timezone.now()
        to_create: list[tuple[ParsedRow, _NewContact]] = []
        to_update: dict[int, list[ParsedRow]] = {}
        rejected: list[tuple[ParsedRow, str]] = []
        for row in rows:
            matches = {holders[p] for p in row.phones if p in holders}
            if len(matches) > 1:
                ids = ", ".join(f"#{i}" for i in sorted(matches))
                rejected.append(
                    (row, _("Its phones belong to different contacts (%(ids)s).") % {"ids": ids})
                )
                continue
            if matches:
                to_update.setdefault(matches.pop(), []).append(row)
            else:
                to_create.append((row, row.new))

        staged = connection.vendor == "postgresql"
        if staged:
            self._create_staged([row for row, _new in to_create], now)
        else:
            to_create = [(row, new or _NewContact(row)) for row, new in to_create]
            _insert_contacts(organization, [contact for _row, contact in to_create], now)
        existing = (
            scoped(Contact, organization)
            .filter(pk__in=list(to_update))
            .only(
                "id",
                "name",
                "notify_name",
                "verified_name",
                "phone",
                "email",
                "favorite",
                "status",
                "opted_out_at",
                "opted_out_source",
                "custom_fields",
                "display_name",
            )
        )
        updated: list[Contact] = []
        touched: list[tuple[ParsedRow, Contact | _NewContact]] = [] if staged else list(to_create)
        for contact in existing:
            for row in to_update[contact.pk]:
                self._merge(contact, row)
                touched.append((row, contact))
            contact.display_name = contact.compute_display_name()
            contact.updated_at = timezone.now()
            updated.append(contact)
        if updated:
            Contact.objects.bulk_update(
                updated,
                [
                    "name",
                    "notify_name",
                    "verified_name",
                    "phone",
                    "email",
                    "favorite",
                    "status",
                    "opted_out_at",
                    "opted_out_source",
                    "custom_fields",
                    "display_name",
                    "updated_at",
                ],
                batch_size=BATCH_SIZE,
            )
        fresh = set() if staged else {contact.pk for _row, contact in to_create}
        self._link(touched, holders, fresh, now)
        search_text_rebuild(organization=organization, contact_ids=[c.pk for c in updated])
        return len(to_create), len(updated), rejected

    def _create_staged(self, created: list[ParsedRow], now) -> None:
        """PostgreSQL: the batch's new contacts with all their rows, through ``_STAGE``."""
        if not created:
            return
        self._resolve(
            {n for row in created for n in row.tags} | set(self.add_tags),
            {n for row in created for n in row.groups} | set(self.add_groups),
        )
        tag_ids, group_ids = self.tag_ids, self.group_ids
        add_tags = [str(tag_ids[n.lower()]) for n in self.add_tags]
        add_groups = [str(group_ids[n.lower()]) for n in self.add_groups]
        import psycopg

        try:
            with connection.cursor() as cursor:
                cursor.execute(_stage_table(cursor))
                with cursor.cursor.copy(f"COPY {_STAGE} ({_STAGE_COLUMNS}) FROM STDIN") as copy:
                    for row in created:
                        tags = [str(tag_ids[n.lower()]) for n in row.tags] if row.tags else []
                        groups = (
                            [str(group_ids[n.lower()]) for n in row.groups] if row.groups else []
                        )
                        copy.write_row(
                            (
                                *(row.stage or _NewContact(row).stage_row(row)),
                                ",".join(tags + add_tags) if tags or add_tags else None,
                                ",".join(groups + add_groups) if groups or add_groups else None,
                            )
                        )
                cursor.execute(
                    _STAGE_INSERT, {"org": self.organization.pk, "now": now, "sep": "\x1f"}
                )
        except psycopg.errors.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc

    def _merge(self, contact: Contact, row: ParsedRow) -> None:
        """Non-empty incoming values win with ``overwrite``; otherwise they only fill blanks. An
        import never opts a contact back in."""
        for name in ("name", "notify_name", "verified_name", "email"):
            incoming = row.values.get(name)
            if incoming and (self.overwrite or not getattr(contact, name)):
                setattr(contact, name, incoming)
        if "favorite" in row.values and (self.overwrite or not contact.favorite):
            contact.favorite = row.values["favorite"]
        if "status" in row.values and self.overwrite:
            contact.status = row.values["status"]
        if row.custom:
            if self.overwrite:
                contact.custom_fields = {**contact.custom_fields, **row.custom}
            else:
                contact.custom_fields = {**row.custom, **contact.custom_fields}
        if row.opted_out_at and contact.opted_out_at is None:
            contact.opted_out_at, contact.opted_out_source = row.opted_out_at, "import"
        if not contact.phone:
            contact.phone = row.phones[0]

    def _link(
        self,
        touched: list[tuple[ParsedRow, Contact | _NewContact]],
        holders: dict[str, int],
        fresh: set[int],
        now: dt.datetime,
    ) -> None:
        """Identities, aliases, tags and groups of the batch's contacts, as plain rows."""
        org_id = self.organization.pk
        identities, aliases, tags, members = [], [], [], []
        tag_names = {n for row, _c in touched for n in row.tags} | set(self.add_tags)
        group_names = {n for row, _c in touched for n in row.groups} | set(self.add_groups)
        self._resolve(tag_names, group_names)
        tag_ids, group_ids = self.tag_ids, self.group_ids
        add_tags, add_groups = self.add_tags, self.add_groups
        phone_kind = IdentityKind.PHONE.value
        for row, contact in touched:
            pk = contact.pk
            for phone in row.phones:
                if phone not in holders:
                    holders[phone] = pk
                    identities.append((org_id, pk, phone_kind, phone, now))
            if row.aliases:
                seen_aliases = set()
                for alias in row.aliases:
                    if alias.lower() not in seen_aliases:
                        seen_aliases.add(alias.lower())
                        aliases.append((org_id, pk, alias))
            names = [*row.tags, *add_tags] if add_tags else row.tags
            if names:
                for tag_id in {tag_ids[n.lower()] for n in names}:
                    tags.append((org_id, pk, tag_id, now))
            names = [*row.groups, *add_groups] if add_groups else row.groups
            if names:
                for group_id in {group_ids[n.lower()] for n in names}:
                    members.append((org_id, group_id, pk, now))
        # Identities must not ignore conflicts: a clash means a race, and the batch is retried.
        _copy(
            ContactIdentity,
            ["organization_id", "contact_id", "kind", "value", "created_at"],
            identities,
        )
        for model, columns, rows, at in (
            (ContactAlias, ["organization_id", "contact_id", "alias"], aliases, 1),
            (ContactTag, ["organization_id", "contact_id", "tag_id", "created_at"], tags, 1),
            (
                ContactGroupMember,
                ["organization_id", "group_id", "contact_id", "created_at"],
                members,
                2,
            ),
        ):
            old = [r for r in rows if r[at] not in fresh]
            _copy(model, columns, [r for r in rows if r[at] in fresh] if old else rows)  # new
            if old:  # rows of existing contacts may already be there
                model.objects.bulk_create(
                    [model(**dict(zip(columns, r, strict=True))) for r in old],
                    batch_size=BATCH_SIZE,
                    ignore_conflicts=True,
                )

    def _resolve(self, tag_names: set[str], group_names: set[str]) -> None:
        missing = [n for n in tag_names if n.lower() not in self.tag_ids]
        if missing:
            for tag in tags_get_or_create(organization=self.organization, names=missing):
                self.tag_ids[tag.name.lower()] = tag.pk
        missing = [n for n in group_names if n.lower() not in self.group_ids]
        if missing:
            for group in groups_get_or_create(organization=self.organization, names=missing):
                self.group_ids[group.name.lower()] = group.pk
