"""CSV export: streamed, formulas neutralized, and export → import into another org is lossless."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging.models import Contact
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


def test_it_round_trips_through_csv_into_another_organization(cast, api):
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
    exported = body(api(cast.agent).get("/api/v1/contacts/export/"))
    job = import_upload(
        organization=cast.org_b,
        actor=cast.b_member,
        fileobj=io.BytesIO(exported.encode("utf-8-sig")),
        filename="export.csv",
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
    assert values["phone"] == "'+14155550100"
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
