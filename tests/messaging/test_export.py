"""Export: CSV (streamed, formulas neutralized, phone numbers as written) and Excel (.xlsx, every
cell text); export → import into another org is lossless in both."""

from __future__ import annotations

import csv
import datetime as dt
import io
import urllib.request
import zipfile

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from openpyxl import Workbook, load_workbook

from messaging.models import Contact, ImportJob
from messaging.services import contacts as contact_services
from messaging.services.exports import contacts_export_rows
from messaging.services.imports import import_run, import_set_mapping, import_start, import_upload

pytestmark = pytest.mark.django_db


def body(response) -> str:
    assert isinstance(response, StreamingHttpResponse)
    raw = b"".join(response.streaming_content)
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM, so Excel reads CJK
    return raw.decode("utf-8-sig")


def tricky_contacts(organization):
    for key, type_, choices in [
        ("visits", "number", None),
        ("vip", "boolean", None),
        ("since", "date", None),
        ("note", "text", None),
        ("tier", "choice", ["gold", "=bad"]),
    ]:
        contact_services.custom_field_define(
            organization=organization, key=key, label=key.title(), type=type_, choices=choices
        )
    people = [
        {
            "name": "陳大文",
            "phone": "+852 9718 8675",
            "aliases": ["大文", "Big Man"],
            "tags": ["vip", "香港"],
            "groups": ["Kowloon"],
            "favorite": True,
            "custom_fields": {"visits": 3, "vip": True, "since": "2024-02-29", "tier": "gold"},
        },
        {
            "name": 'Ann "the boss" O\'Neil, Jr.',
            "phone": "+447700900001",
            "email": "ann@x.example",
            "identities": [{"kind": "phone", "value": "+447700900002"}],
            "status": "blocked",
            "custom_fields": {"note": "=SUM(A1)", "visits": 2.5, "tier": "=bad"},
        },
        {
            "name": "=SUM(A1)",
            "notify_name": "@home",
            "verified_name": "-minus +plus",
            "phone": "+14155550100",
            "aliases": ["@alias", "'=quoted"],
            "tags": ["+tag"],
            "custom_fields": {"note": "'@already", "vip": False},
        },
    ]
    contacts = [contact_services.contact_create(organization=organization, data=p) for p in people]
    # A line break in a name can arrive from WhatsApp itself (not through the form's cleaning)
    Contact.objects.filter(pk=contacts[0].pk).update(notify_name="第一行\n第二行")
    contact_services.contact_opt_out(
        organization=organization,
        contact=contacts[1],
        source="reply",
        at=timezone.now().replace(microsecond=0),
    )
    return contacts


def snapshot(organization) -> list[dict]:
    out = []
    for c in Contact.objects.filter(organization=organization).order_by("phone"):
        out.append(
            {
                "name": c.name,
                "notify_name": c.notify_name,
                "verified_name": c.verified_name,
                "display_name": c.display_name,
                "phone": c.phone,
                "email": c.email,
                "favorite": c.favorite,
                "status": c.status,
                "opted_out_at": c.opted_out_at,
                "custom_fields": c.custom_fields,
                "phones": sorted(c.identities.values_list("value", flat=True)),
                "aliases": sorted(c.aliases.values_list("alias", flat=True)),
                "tags": sorted(c.contact_tags.values_list("tag__name", flat=True)),
                "groups": sorted(c.group_memberships.values_list("group__name", flat=True)),
            }
        )
    return out


def xlsx_body(response) -> bytes:
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    return b"".join(response.streaming_content)


def exported(api, user, file_format: str) -> bytes:
    if file_format == "xlsx":
        return xlsx_body(api(user).get("/api/v1/contacts/export/?format=xlsx"))
    return body(api(user).get("/api/v1/contacts/export/")).encode("utf-8-sig")


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_it_round_trips_into_another_organization(cast, api, file_format):
    # Given contacts with CJK names, quotes, line breaks, + phones and formula-like cells
    tricky_contacts(cast.org_a)
    for key, type_, choices in [
        ("visits", "number", None),
        ("vip", "boolean", None),
        ("since", "date", None),
        ("note", "text", None),
        ("tier", "choice", ["gold", "=bad"]),
    ]:
        contact_services.custom_field_define(
            organization=cast.org_b, key=key, label=key.title(), type=type_, choices=choices
        )

    # When organization A exports them and organization B imports the file
    job = import_upload(
        organization=cast.org_b,
        actor=cast.b_member,
        fileobj=io.BytesIO(exported(api, cast.agent, file_format)),
        filename=f"export.{file_format}",
    )
    assert set(job.mapping.values()) == {
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
        "cf.visits",
        "cf.vip",
        "cf.since",
        "cf.note",
        "cf.tier",
    }
    import_set_mapping(organization=cast.org_b, job=job, mapping=job.mapping, options={})
    import_start(organization=cast.org_b, job=job, actor=cast.b_member)
    job = import_run(job.pk)

    # Then B holds the same contacts, field by field
    assert (job.created_count, job.error_count) == (3, 0), job.failure
    a, b = snapshot(cast.org_a), snapshot(cast.org_b)
    for before, after in zip(a, b, strict=True):
        for key in ("opted_out_at",):
            assert (before[key] is None) == (after[key] is None)
            before.pop(key), after.pop(key)
        assert before == after


def test_it_neutralizes_formulas_and_streams(cast, api):
    tricky_contacts(cast.org_a)
    response = api(cast.viewer).get("/api/v1/contacts/export/?q=sum")
    rows = list(csv.reader(io.StringIO(body(response))))
    header, row = rows[0], rows[1]
    assert header[:4] == ["name", "notify_name", "verified_name", "phone"]
    values = dict(zip(header, row, strict=True))
    assert values["name"] == "'=SUM(A1)"
    assert values["notify_name"] == "'@home"
    assert values["verified_name"] == "'-minus +plus"
    assert values["phone"] == "+14155550100"  # a number, not a formula: no ' shown to people
    assert values["aliases"] == "'@alias; '=quoted"
    assert values["cf.note"] == "''@already"
    assert len(rows) == 2  # the filter applied: only the match


def test_it_exports_with_a_constant_number_of_queries(cast):
    tricky_contacts(cast.org_a)
    for i in range(30):
        contact_services.contact_create(
            organization=cast.org_a,
            data={"name": f"P{i}", "phone": f"+4477008{i:05d}", "tags": ["t"]},
        )
    with CaptureQueriesContext(connection) as queries:
        rows = list(contacts_export_rows(organization=cast.org_a, filters={}))
    assert len(rows) == 34
    assert len(queries) <= 7  # fields, contacts, and four bulk reads for the one chunk


def test_the_dashboard_export_uses_the_list_filters(cast, client):
    tricky_contacts(cast.org_a)
    client.force_login(cast.viewer)
    response = client.get("/o/acme/contacts/export.csv?favorite=true")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(body(response))))
    assert [r[0] for r in rows[1:]] == ["陳大文"]
    bad = client.get("/o/acme/contacts/export.csv?status=sleeping")
    assert bad.status_code == 400


def test_csv_writes_phone_numbers_as_they_are_and_still_neutralizes_the_rest(cast, api):
    tricky_contacts(cast.org_a)
    contact_services.contact_create(
        organization=cast.org_a,
        data={"name": "+1+1", "notify_name": "+85291234567", "phone": "+85291234567"},
    )

    rows = list(csv.reader(io.StringIO(body(api(cast.viewer).get("/api/v1/contacts/export/")))))

    values = {r[3]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    assert set(values) == {"+85297188675", "+447700900001", "+14155550100", "+85291234567"}
    assert values["+447700900001"]["other_phones"] == "+447700900002"
    # "+" and digits alone is a number wherever it is; arithmetic is a formula and stays inert
    assert values["+85291234567"]["notify_name"] == "+85291234567"
    assert values["+85291234567"]["name"] == "'+1+1"
    assert values["+447700900001"]["cf.note"] == "'=SUM(A1)"


def test_the_xlsx_export_types_every_cell_as_text_and_holds_no_formula(cast, api):
    tricky_contacts(cast.org_a)

    raw = xlsx_body(api(cast.viewer).get("/api/v1/contacts/export/?format=xlsx"))

    sheet = load_workbook(io.BytesIO(raw)).worksheets[0]
    cells = [cell for row in sheet.iter_rows() for cell in row if cell.value is not None]
    assert cells and {(c.data_type, c.number_format) for c in cells} == {("s", "@")}
    rows = [[c.value or "" for c in row] for row in sheet.iter_rows()]
    values = {r[3]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    sum_row = values["+14155550100"]  # as written: no ' before it, not a number
    assert sum_row["name"] == "=SUM(A1)" and sum_row["notify_name"] == "@home"
    assert sum_row["aliases"] == "@alias; '=quoted"
    assert values["+447700900001"]["other_phones"] == "+447700900002"
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml and "<f " not in xml  # nothing a spreadsheet would compute
    # columns wide enough to read their header, not the spreadsheet's narrow default
    assert sheet.column_dimensions["A"].width == 12
    assert sheet.column_dimensions["B"].width == len("notify_name") + 4


def test_the_dashboard_offers_both_formats_with_the_list_filters(cast, client):
    tricky_contacts(cast.org_a)
    client.force_login(cast.viewer)

    page = client.get("/o/acme/contacts/?favorite=true").content.decode()

    assert 'href="/o/acme/contacts/export.csv?favorite=true"' in page
    assert 'href="/o/acme/contacts/export.xlsx?favorite=true"' in page
    response = client.get("/o/acme/contacts/export.xlsx?favorite=true")
    assert response["Content-Disposition"] == 'attachment; filename="acme-contacts.xlsx"'
    sheet = load_workbook(io.BytesIO(xlsx_body(response))).worksheets[0]
    assert [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)] == ["陳大文"]
    assert client.get("/o/acme/contacts/export.xlsx?status=sleeping").status_code == 400


def a_workbook(rows: list[list]) -> bytes:
    """A workbook as a spreadsheet user saves one: numbers and dates typed as such."""
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def test_it_imports_a_workbook_a_person_typed(cast):
    raw = a_workbook(
        [
            ["Name", "Phone", "Email", "Opted out"],
            ["Mei", 85291234567, "mei@x.example", None],
            [None, None, None, None],  # a blank row in between is skipped, not an error
            ["Ann", "+44 7700 900001", None, dt.datetime(2024, 5, 1, 9, 30)],
            ["Bad", "not a phone", None, None],
        ]
    )

    job = import_upload(
        organization=cast.org_b, actor=cast.b_member, fileobj=io.BytesIO(raw), filename="c.xlsx"
    )
    assert (job.encoding, job.headers) == ("xlsx", ["Name", "Phone", "Email", "Opted out"])
    import_set_mapping(organization=cast.org_b, job=job, mapping=job.mapping, options={})
    import_start(organization=cast.org_b, job=job, actor=cast.b_member)
    job = import_run(job.pk)

    assert (job.created_count, job.error_count) == (2, 1)
    mei = Contact.objects.get(organization=cast.org_b, phone="85291234567")
    assert (mei.name, mei.email) == ("Mei", "mei@x.example")
    ann = Contact.objects.get(organization=cast.org_b, phone="447700900001")
    assert ann.opted_out_at is not None and ann.opted_out_at.date() == dt.date(2024, 5, 1)
    with default_storage.open(job.error_report.name) as report:
        errors = list(csv.reader(io.StringIO(report.read().decode("utf-8-sig"))))
    assert errors[1][0] == "5" and errors[1][2:] == ["Bad", "not a phone", "", ""]
    assert "Phone “not a phone” is not a number we can read." in errors[1][1]


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        (b"PK\x03\x04 not really a zip archive" * 10, "Save it as an Excel workbook"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512, "old Excel file (.xls)"),
    ],
    ids=["broken xlsx", "old xls"],
)
def test_a_workbook_it_cannot_read_is_a_clear_400(cast, api, raw, said):
    upload = io.BytesIO(raw)
    upload.name = "contacts.xlsx"

    response = api(cast.agent).post("/api/v1/imports/", {"file": upload}, format="multipart")

    assert response.status_code == 400, response.content
    assert said in response.json()["error"]["message"]
    assert not ImportJob.objects.filter(organization=cast.org_a).exists()


def test_the_xlsx_export_downloads_over_the_asgi_server(asgi_server, cast, api_key_for):
    tricky_contacts(cast.org_a)
    request = urllib.request.Request(
        f"{asgi_server.url}/api/v1/contacts/export/?format=xlsx",
        headers={"Authorization": f"Bearer {api_key_for(cast.viewer)}"},
    )

    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Disposition"] == 'attachment; filename="contacts.xlsx"'
        raw = response.read()

    sheet = load_workbook(io.BytesIO(raw), read_only=True).worksheets[0]
    phones = sorted(row[3] for row in sheet.iter_rows(min_row=2, values_only=True))
    assert phones == ["+14155550100", "+447700900001", "+85297188675"]
