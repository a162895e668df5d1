"""Odd input to the address book is a clear field error (or a literal match), never a 500."""

from __future__ import annotations

import json

import pytest

from messaging.models import Contact, ContactGroup, Tag
from messaging.services import contacts as svc


@pytest.fixture
def org(cast):
    svc.custom_field_define(organization=cast.org_a, key="size", label="Size", type="number")
    svc.custom_field_define(organization=cast.org_a, key="vip", label="VIP", type="boolean")
    svc.custom_field_define(organization=cast.org_a, key="note", label="Note", type="text")
    svc.custom_field_define(organization=cast.org_a, key="born", label="Born", type="date")
    return cast.org_a


@pytest.mark.parametrize(
    "custom",
    [
        {"size": "1e100000"},
        {"size": "1" + "0" * 400 + ".5"},
        {"size": "1e-400"},
        {"size": True},
        {"note": {"a": {"b": 1}}},
        {"note": ["x"]},
        {"note": "\udfff"},
        {"note": "a\u0000b"},
        {"born": 20240101},
    ],
)
def test_an_ill_typed_custom_value_is_a_field_error(cast, org, api, custom):
    body = json.dumps({"name": "X", "custom_fields": custom}, ensure_ascii=True)
    response = api(cast.agent).generic(
        "POST", "/api/v1/contacts/", body, content_type="application/json"
    )
    assert response.status_code == 400, response.content[:300]
    assert not Contact.objects.exists()


def test_custom_filters_are_typed_and_only_for_defined_fields(cast, org, api):
    svc.contact_create(
        organization=org, data={"name": "Alice", "custom_fields": {"size": 42, "vip": True}}
    )
    svc.contact_create(organization=org, data={"name": "Bob", "custom_fields": {"size": 7}})
    client = api(cast.agent)
    assert [c["name"] for c in client.get("/api/v1/contacts/?cf.size=42").json()["results"]] == [
        "Alice"
    ]
    assert [c["name"] for c in client.get("/api/v1/contacts/?cf.vip=true").json()["results"]] == [
        "Alice"
    ]
    for bad in ("cf.size__range=1", "cf.size__regex=(", "cf.shoe=1", "cf.size=lots"):
        response = client.get(f"/api/v1/contacts/?{bad}")
        assert response.status_code == 400, (bad, response.content[:200])
        export = client.get(f"/api/v1/contacts/export/?{bad}")
        assert export.status_code == 400, bad
        bulk = client.post(
            "/api/v1/contacts/bulk/",
            {"action": "tag", "params": {"tag": "x"}, "filters": dict([bad.split("=", 1)])},
            format="json",
        )
        assert bulk.status_code == 400, (bad, bulk.content[:200])


def test_names_equal_under_the_databases_case_rules_are_one(cast, org, api):
    # 'İstanbul' and 'istanbul' may or may not be equal under the database's LOWER; either way the
    # answer agrees with what is stored, and is never a 500.
    client = api(cast.agent)
    assert client.post("/api/v1/groups/", {"name": "İstanbul"}, format="json").status_code == 201
    second = client.post("/api/v1/groups/", {"name": "istanbul"}, format="json").status_code
    assert second in (201, 409)
    assert ContactGroup.objects.filter(organization=org).count() == (2 if second == 201 else 1)
    assert client.post("/api/v1/groups/", {"name": "ISTANBUL"}, format="json").status_code == 409
    assert client.post("/api/v1/tags/", {}, format="json").status_code == 400
    contact = svc.contact_create(
        organization=org, data={"name": "T", "tags": ["Izmir", "izmir", "IZMIR"]}
    )
    assert Tag.objects.filter(organization=org).count() == 1
    assert contact.contact_tags.count() == 1


def test_a_phone_with_letters_is_refused(cast, org, api):
    response = api(cast.agent).post(
        "/api/v1/contacts/", {"phone": "+44 7957 18969x"}, format="json"
    )
    assert response.status_code == 400 and "phone" in response.json()["error"]["fields"]


def test_erasure_needs_the_json_value_true(cast, org, api):
    contact = svc.contact_create(organization=org, data={"name": "E"})
    admin = api(cast.admin)
    for confirm in ("yes", 1, "true"):
        assert (
            admin.post(
                f"/api/v1/contacts/{contact.pk}/erase/", {"confirm": confirm}, format="json"
            ).status_code
            == 400
        )
    assert Contact.objects.filter(pk=contact.pk).exists()


def test_a_choice_field_keeps_at_least_one_choice_and_keys_avoid_lookups(cast, org, api):
    admin = api(cast.admin)
    field = admin.post(
        "/api/v1/custom-fields/",
        {"key": "tier", "label": "Tier", "type": "choice", "choices": ["gold"]},
        format="json",
    ).json()
    assert (
        admin.patch(
            f"/api/v1/custom-fields/{field['id']}/", {"choices": []}, format="json"
        ).status_code
        == 400
    )
    assert (
        admin.post(
            "/api/v1/custom-fields/", {"key": "a__b", "label": "AB", "type": "text"}, format="json"
        ).status_code
        == 400
    )


def _upload(client, content: bytes, **extra):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(
        "/api/v1/imports/",
        {"file": SimpleUploadedFile("c.csv", content, content_type="text/csv"), **extra},
        format="multipart",
    )


def test_odd_import_files_are_explained_not_crashed_on(cast, api):
    client = api(cast.agent)
    assert _upload(client, bytes(range(256)) * 40).status_code in (201, 400)
    for encoding in ("rot13", "hex", "zlib", "unicode_escape"):
        assert (
            _upload(client, b"name,phone\nA,+447700900123\n", encoding=encoding).status_code == 400
        ), encoding
    utf16 = "name,phone\nLi,+85291234567\n".encode("utf-16-le")
    assert _upload(client, utf16, encoding="utf-16").status_code == 201
    job = _upload(client, b"phone,phone,Phone\n+447700900123,,\n").json()
    mapped = client.post(
        f"/api/v1/imports/{job['id']}/mapping/",
        {"mapping": {"phone": "phone", "phone (2)": "", "Phone": ""}},
        format="json",
    )
    assert mapped.status_code == 200, mapped.content[:300]


def test_one_bad_row_never_sinks_the_rest_of_an_import(cast, org):
    import io

    from messaging.models import ImportJob
    from messaging.services import imports

    content = "name,phone,size\nGood1,+447700900001,1\nHuge,+447700900002,1e100000\nA\x00B,+447700900003,2\nGood2,+447700900004,3\n"
    job = imports.import_upload(
        organization=org, actor=cast.agent, fileobj=io.BytesIO(content.encode()), filename="x.csv"
    )
    imports.import_set_mapping(
        organization=org,
        job=job,
        mapping={"name": "name", "phone": "phone", "size": "cf.size"},
        options={},
    )
    imports.import_start(organization=org, job=job, actor=cast.agent)
    imports.import_run(job.pk)
    job = ImportJob.objects.get(pk=job.pk)
    assert job.state == "done", job.failure
    assert (job.created_count, job.error_count) == (2, 2)
    assert sorted(Contact.objects.filter(organization=org).values_list("name", flat=True)) == [
        "Good1",
        "Good2",
    ]


@pytest.mark.parametrize("depth", [65, 900, 100_000])
def test_deeply_nested_json_is_malformed_not_a_server_error(cast, org, api, depth):
    body = '{"name": "X", "custom_fields": ' + "[" * depth + "]" * depth + "}"
    response = api(cast.agent).generic(
        "POST", "/api/v1/contacts/", body, content_type="application/json"
    )
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"]["code"] == "malformed"
    assert "nested deeper than 64 levels" in response.json()["error"]["message"]
    assert not Contact.objects.exists()


def test_json_as_deep_as_the_limit_is_read(cast, org, api):
    svc.custom_field_define(organization=org, key="deep", label="Deep", type="text")
    body = '{"name": "X", "custom_fields": {"deep": ' + "[" * 62 + "]" * 62 + "}}"
    response = api(cast.agent).generic(
        "POST", "/api/v1/contacts/", body, content_type="application/json"
    )
    assert response.status_code == 400, response.content  # read, then a field error
    assert response.json()["error"]["fields"].keys() == {"custom_fields.deep"}
