"""The API skeleton as a client sees it: auth, one error body, strict input, pages, the schema."""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts import services
from accounts.models import ApiKey, AuditEvent, Invitation
from tests.support.people import key_for


def assert_error_body(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    return body["error"]


# --- Authentication -----------------------------------------------------------------------------


def test_a_request_without_credentials_is_401(cast):
    assert_error_body(APIClient().get("/api/v1/members/"), 401, "not_authenticated")


def test_an_unknown_key_is_401(cast):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer prl_deadbeef_not-a-real-key")
    error = assert_error_body(client.get("/api/v1/members/"), 401)
    assert "key" in error["message"].lower()


def test_a_revoked_key_stops_working_at_once(cast, api):
    owner = api(cast.owner)
    created = owner.post(
        "/api/v1/api-keys/", {"name": "integration", "role": "agent"}, format="json"
    )
    assert created.status_code == 201
    raw = created.json()["key"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/me/").json()["role"] == "agent"

    assert owner.delete(f"/api/v1/api-keys/{created.json()['id']}/").status_code == 204
    assert_error_body(client.get("/api/v1/me/"), 401)
    assert AuditEvent.objects.filter(organization=cast.org_a, action="api_key.revoked").count() == 1


def test_the_raw_key_is_shown_once_and_stored_nowhere(cast, api):
    created = api(cast.owner).post(
        "/api/v1/api-keys/", {"name": "secret one", "role": "viewer"}, format="json"
    )
    raw = created.json()["key"]
    assert raw.startswith(created.json()["prefix"])
    listed = api(cast.owner).get("/api/v1/api-keys/")
    assert raw not in listed.content.decode()
    assert created.json()["prefix"] in listed.content.decode()

    secret_part = raw[len(created.json()["prefix"]) + 1 :]
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT t::text FROM "{table}" t')  # noqa: S608 - table names from the catalog
            for (row,) in cursor.fetchall():
                assert secret_part not in row, f"the raw key leaked into {table}"


def test_a_key_records_when_it_was_last_used(cast):
    raw = key_for(cast.owner, cast.org_a)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert ApiKey.objects.get(prefix=raw[:12]).last_used_at is None
    client.get("/api/v1/me/")
    assert ApiKey.objects.get(prefix=raw[:12]).last_used_at is not None


def test_a_signed_in_browser_uses_the_api_with_its_session_and_csrf(cast, client):
    client.force_login(cast.owner)
    assert client.get("/api/v1/organization/").json()["slug"] == "acme"
    strict = APIClient(enforce_csrf_checks=True)
    strict.force_login(cast.owner)
    response = strict.patch("/api/v1/organization/", {"name": "No token"}, format="json")
    assert response.status_code == 403  # CSRF is kept for session auth


def test_a_member_of_several_orgs_names_one_in_a_header(cast):
    services.organization_create(name="Second", owner=cast.b_member, slug="second")
    client = APIClient()
    client.force_login(cast.b_member)
    assert_error_body(client.get("/api/v1/organization/"), 400, "malformed")
    client.credentials(HTTP_X_ORGANIZATION="second")
    assert client.get("/api/v1/organization/").json()["slug"] == "second"
    client.credentials(HTTP_X_ORGANIZATION="acme")
    assert_error_body(client.get("/api/v1/organization/"), 404)


# --- Bad input ----------------------------------------------------------------------------------


def test_malformed_json_is_a_400_with_the_error_body(cast, api):
    response = api(cast.owner).generic(
        "PATCH", "/api/v1/organization/", "{not json", content_type="application/json"
    )
    assert_error_body(response, 400, "malformed")


def test_an_unknown_field_is_refused_not_ignored(cast, api):
    response = api(cast.owner).patch(
        "/api/v1/organization/", {"name": "X", "colour": "red"}, format="json"
    )
    error = assert_error_body(response, 400, "invalid")
    assert error["fields"] == {"colour": ["Unknown field."]}
    cast.org_a.refresh_from_db()
    assert cast.org_a.name == "Acme Trading"


@pytest.mark.parametrize(
    "path,body",
    [
        ("/api/v1/organization/", {"slug": "stolen"}),
        ("/api/v1/organization/", {"id": 999}),
        ("/api/v1/api-keys/", {"name": "k", "role": "agent", "organization": 1}),
        ("/api/v1/api-keys/", {"name": "k", "role": "agent", "created_by": 1}),
        ("/api/v1/invitations/", {"email": "x@a.example", "invited_by": 1}),
    ],
)
def test_mass_assignment_is_refused(cast, api, path, body):
    client = api(cast.owner)
    method = client.patch if path == "/api/v1/organization/" else client.post
    error = assert_error_body(method(path, body, format="json"), 400, "invalid")
    assert set(error["fields"]) & {"slug", "id", "organization", "created_by", "invited_by"}


def test_a_role_of_the_wrong_type_is_a_field_error(cast, api):
    error = assert_error_body(
        api(cast.owner).post(
            "/api/v1/invitations/", {"email": "x@a.example", "role": 5}, format="json"
        ),
        400,
    )
    assert "role" in error["fields"]
    error = assert_error_body(
        api(cast.owner).post("/api/v1/invitations/", [1, 2], format="json"), 400
    )
    assert error["fields"]


def test_an_oversize_body_is_a_413(cast, api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = json.dumps({"name": "x" * 20_000})
    response = api(cast.owner).generic(
        "PATCH", "/api/v1/organization/", body, content_type="application/json"
    )
    assert_error_body(response, 413, "too_large")


def test_a_form_body_is_415(cast, api):
    response = api(cast.owner).post("/api/v1/api-keys/", {"name": "k"})  # multipart
    assert_error_body(response, 415)


def test_a_wrong_method_is_405_and_an_unknown_path_404_with_the_error_body(cast, api):
    assert_error_body(api(cast.owner).delete("/api/v1/members/"), 405)
    assert_error_body(api(cast.owner).get("/api/v1/no-such-thing/"), 404)
    assert_error_body(api(cast.owner).get("/api/v1/members/not-a-number/"), 404)


def test_an_invalid_email_and_a_duplicate_member_are_explained(cast, api):
    client = api(cast.owner)
    error = assert_error_body(
        client.post("/api/v1/invitations/", {"email": "nope"}, format="json"), 400
    )
    assert "email" in error["fields"]
    error = assert_error_body(
        client.post("/api/v1/invitations/", {"email": cast.agent.email}, format="json"), 409
    )
    assert "email" in error["fields"]
    error = assert_error_body(
        client.patch("/api/v1/organization/", {"timezone": "Mars/Base"}, format="json"), 400
    )
    assert "timezone" in error["fields"]


# --- Invitations --------------------------------------------------------------------------------


def test_an_invitation_is_emailed_with_a_link_that_expires(
    cast, api, mailoutbox, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api(cast.admin).post(
            "/api/v1/invitations/", {"email": "New@Example.com", "role": "viewer"}, format="json"
        )
    assert response.status_code == 201
    assert response.json()["email"] == "new@example.com" and response.json()["state"] == "pending"
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["new@example.com"]
    link = re.search(r"https?://\S+/invitations/(\S+)/", mailoutbox[0].body)
    assert link, mailoutbox[0].body
    Invitation.objects.filter(pk=response.json()["id"]).update(expires_at="2000-01-01T00:00:00Z")
    page = client.get(f"/invitations/{link.group(1)}/")
    assert page.status_code == 410
    assert b"expired" in page.content


def test_reinviting_replaces_the_pending_invitation(cast, api):
    client = api(cast.owner)
    client.post("/api/v1/invitations/", {"email": "twice@example.com"}, format="json")
    client.post("/api/v1/invitations/", {"email": "twice@example.com"}, format="json")
    states = sorted(i.state for i in Invitation.objects.filter(email="twice@example.com"))
    assert states == ["pending", "revoked"]


# --- Pages, filters and the schema ---------------------------------------------------------------


def test_lists_are_cursor_paginated_without_duplicates(cast, api):
    for n in range(30):
        services.audit_record(organization=cast.org_a, action=f"test.event{n}", actor=cast.owner)
    client = api(cast.owner)
    seen, url = [], "/api/v1/audit-log/?page_size=7&action=test."
    while url:
        page = client.get(url).json()
        seen.extend(item["id"] for item in page["results"])
        url = page["next"]
    assert len(seen) == 30 == len(set(seen))
    assert seen == sorted(seen, reverse=True)


@pytest.mark.parametrize("size", ["abc", "-1", "0", "00", "", "1.5", "+5", "\u00b2"])
def test_a_page_size_that_is_not_a_whole_number_of_one_or_more_is_refused(cast, api, size):
    response = api(cast.owner).get("/api/v1/audit-log/", {"page_size": size})
    error = assert_error_body(response, 400, "invalid")
    assert list(error["fields"]) == ["page_size"]


def test_a_page_size_past_the_largest_gets_the_largest_page(cast, api):
    for _n in range(205):
        services.audit_record(organization=cast.org_a, action="many", actor=cast.owner)
    client = api(cast.owner)
    for size in ("201", "9" * 40):
        page = client.get("/api/v1/audit-log/", {"page_size": size, "action": "many"}).json()
        assert len(page["results"]) == 200 and page["next"]


def test_a_list_costs_the_same_queries_at_any_page_size(cast, api):
    for _n in range(120):
        services.audit_record(organization=cast.org_a, action="bulk", actor=cast.owner)
    client = api(cast.owner)
    counts = []
    for size in (10, 100):
        client.get("/api/v1/audit-log/?page_size=1")  # warm the key's last-used stamp
        with CaptureQueriesContext(connection) as queries:
            assert len(client.get(f"/api/v1/audit-log/?page_size={size}").json()["results"]) == size
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_members_can_be_filtered_by_role(cast, api):
    results = api(cast.owner).get("/api/v1/members/?role=viewer").json()["results"]
    assert [m["email"] for m in results] == [cast.viewer.email]


def test_the_schema_and_docs_are_served_without_a_cdn(cast, client):
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    assert "/api/v1/members/{id}/" in schema.json()["paths"]
    docs = client.get("/api/v1/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    external = re.findall(r'(?:src|href)="(https?://[^"]+)"', html)
    assert external == []
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert assets
    for asset in assets:
        assert client.get(asset).status_code == 200, asset


def test_a_session_with_its_csrf_token_may_write(cast):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(cast.owner)
    client.get("/o/acme/")  # the dashboard sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    response = client.patch(
        "/api/v1/organization/", {"name": "With token"}, format="json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 200
    assert response.json()["name"] == "With token"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/members/\u00b2/",  # a superscript two: a digit to str.isdigit, not to PostgreSQL
        "/api/v1/members/\u0661\u0662/",  # Arabic-Indic digits
        "/api/v1/members/99999999999999999999999/",
        "/api/v1/audit-log/?cursor=cD0yMDI2LTAxLTAx",  # a forged cursor: p=2026-01-01
    ],
)
def test_odd_ids_and_forged_cursors_are_client_errors(cast, api, path):
    response = api(cast.owner).get(path)
    assert 400 <= response.status_code < 500, response.content[:200]
    assert_error_body(response, response.status_code)


def test_nul_characters_are_refused_everywhere(cast, api, client):
    owner = api(cast.owner)
    assert_error_body(owner.get("/api/v1/audit-log/?action=%00"), 400, "malformed")
    body = json.dumps({"name": "bad\u0000name"})
    assert_error_body(
        owner.generic("PATCH", "/api/v1/organization/", body, content_type="application/json"), 400
    )
    session = APIClient()
    session.force_login(cast.owner)
    assert_error_body(session.get("/api/v1/organization/", HTTP_X_ORGANIZATION="ac\x00me"), 400)
    client.force_login(cast.owner)
    assert client.get("/o/acme/audit/?action=%00").status_code == 400
    form = {"name": "x\x00y", "timezone": "UTC", "default_country": "US"}
    encoded = urlencode(form)
    as_urlencoded = client.post(
        "/o/acme/settings/", encoded, content_type="application/x-www-form-urlencoded"
    )
    assert as_urlencoded.status_code == 400
    assert (
        client.post("/o/acme/settings/", form).status_code == 200
    )  # multipart: the form refuses it
    cast.org_a.refresh_from_db()
    assert cast.org_a.name == "Acme Trading"


def test_odd_dashboard_ids_are_not_errors(cast, client):
    client.force_login(cast.owner)
    assert client.post("/o/acme/settings/transfer/", {"member_id": "\u00b2"}).status_code == 302
    assert client.get("/o/acme/audit/?before=\u00b2").status_code == 200


def test_a_person_in_no_organization_is_told_so(cast):
    client = APIClient()
    client.force_login(cast.outsider)
    assert_error_body(client.get("/api/v1/organization/"), 403)
