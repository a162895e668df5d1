"""The OpenAPI schema (/api/v1/schema/) says what the API answers, so a client generated from it
reads every response; and its descriptions are written for that client, not for our developers."""

from __future__ import annotations

import inspect
import io

import pytest
from drf_spectacular.generators import EndpointEnumerator, SchemaGenerator
from rest_framework import serializers

from accounts import services as account_services
from accounts.models import Organization
from messaging import presence
from messaging.services import contacts as contact_services
from messaging.services.imports import import_upload
from sessions_app import services as session_services
from tests.support.factories import a_chat
from tests.support.openapi import schema_disagreements

PROJECT = ("accounts.", "autoreply.", "campaigns.", "crm.", "messaging.", "sessions_app.")


@pytest.fixture
def session(cast):
    return session_services.session_create(
        organization=cast.org_a, actor=cast.owner, data={"name": "Desk", "provider": "simulator"}
    )


def agrees(response, method: str, path: str) -> None:
    assert 200 <= response.status_code < 300, response.content[:300]
    assert schema_disagreements(response, method, path) == []


# --- Responses as documented ---------------------------------------------------------------------


def test_the_imports_list_is_documented_as_the_page_it_is(cast, api):
    import_upload(
        organization=cast.org_a,
        actor=cast.owner,
        fileobj=io.BytesIO(b"name,phone\nAnn,+447700900123\n"),
        filename="people.csv",
    )
    response = api(cast.owner).get("/api/v1/imports/")
    assert len(response.json()["results"]) == 1
    agrees(response, "GET", "/api/v1/imports/")


def test_who_is_viewing_a_chat_is_documented_as_the_list_it_is(cast, api):
    chat = a_chat(cast)
    presence.viewing(cast.org_a.pk, chat, cast.admin)
    client = api(cast.owner)
    path = f"/api/v1/chats/{chat.uuid}/presence/"
    for method in ("GET", "POST", "DELETE"):
        response = client.generic(method, path)
        assert isinstance(response.json(), list)
        agrees(response, method, "/api/v1/chats/{uuid}/presence/")


def test_a_sessions_history_is_documented_as_the_list_it_is(cast, api, session):
    client = api(cast.owner)
    client.post(f"/api/v1/sessions/{session.uuid}/connect/")
    response = client.get(f"/api/v1/sessions/{session.uuid}/events/")
    assert [event["to_status"] for event in response.json()] == ["qr"]
    agrees(response, "GET", "/api/v1/sessions/{uuid}/events/")


def test_a_sessions_qr_code_is_documented_as_what_it_is(cast, api, session):
    client = api(cast.owner)
    path = f"/api/v1/sessions/{session.uuid}/qr/"
    nothing_to_scan = client.get(path)
    assert nothing_to_scan.json()["image"] is None
    agrees(nothing_to_scan, "GET", "/api/v1/sessions/{uuid}/qr/")
    client.post(f"/api/v1/sessions/{session.uuid}/connect/")
    waiting = client.get(path)
    assert waiting.json()["image"].startswith("data:image/png;base64,")
    agrees(waiting, "GET", "/api/v1/sessions/{uuid}/qr/")


def test_a_sessions_webhook_is_documented_as_what_it_is(cast, api, session):
    client = api(cast.owner)
    path = f"/api/v1/sessions/{session.uuid}/webhook/"
    for method in ("GET", "POST"):
        response = client.generic(method, path)
        assert set(response.json()) == {"url", "secret", "secret_header"}
        agrees(response, method, "/api/v1/sessions/{uuid}/webhook/")


def test_a_sessions_other_answers_are_documented_as_what_they_are(cast, api, session):
    client = api(cast.owner)
    base = f"/api/v1/sessions/{session.uuid}"
    code = client.post(f"{base}/pairing-code/", {"phone_number": "+85291234567"}, format="json")
    assert code.json()["pairing_code"]
    agrees(code, "POST", "/api/v1/sessions/{uuid}/pairing-code/")
    inbound = client.post(
        f"{base}/simulate/",
        {"action": "inbound", "phone": "85291234567", "text": "hi"},
        format="json",
    )
    assert inbound.status_code == 202 and inbound.json()["message_id"]
    agrees(inbound, "POST", "/api/v1/sessions/{uuid}/simulate/")
    client.post(f"{base}/connect/")
    scan = client.post(f"{base}/simulate/", {"action": "scan"}, format="json")
    assert scan.status_code == 202 and "message_id" not in scan.json()
    agrees(scan, "POST", "/api/v1/sessions/{uuid}/simulate/")
    agrees(client.get(f"{base}/stats/"), "GET", "/api/v1/sessions/{uuid}/stats/")


def test_a_contact_without_an_email_matches_the_schema(cast, api):
    contact = contact_services.contact_create(organization=cast.org_a, data={"name": "No Mail"})
    response = api(cast.owner).get(f"/api/v1/contacts/{contact.pk}/")
    assert response.json()["email"] == ""
    agrees(response, "GET", "/api/v1/contacts/{id}/")


def test_an_audit_event_made_without_a_key_matches_the_schema(cast, api):
    account_services.audit_record(
        organization=cast.org_a, action="test.signed_in", actor=cast.owner
    )
    response = api(cast.owner).get("/api/v1/audit-log/", {"action": "test."})
    assert [event["api_key"] for event in response.json()["results"]] == [None]
    agrees(response, "GET", "/api/v1/audit-log/")


def test_a_note_whose_author_left_matches_the_schema(cast, api):
    contact = contact_services.contact_create(organization=cast.org_a, data={"name": "Noted"})
    note = contact_services.note_add(
        organization=cast.org_a, contact=contact, text="hello", author=cast.viewer
    )
    cast.viewer.delete()
    response = api(cast.owner).get(f"/api/v1/notes/{note.pk}/")
    assert response.json()["author"] is None
    agrees(response, "GET", "/api/v1/notes/{id}/")


def test_an_error_is_the_json_error_body_also_to_a_client_asking_for_a_png_or_csv(
    cast, api, session
):
    client = api(cast.owner)
    png = client.get(f"/api/v1/sessions/{session.uuid}/qr/", {"format": "png"})
    csv = client.get("/api/v1/contacts/export/", {"cf.nope": "1"}, HTTP_ACCEPT="text/csv")
    for response, status, path in (
        (png, 404, "/api/v1/sessions/{uuid}/qr/"),
        (csv, 400, "/api/v1/contacts/export/"),
    ):
        assert response.status_code == status
        assert response["Content-Type"] == "application/json"
        assert set(response.json()["error"]) == {"code", "message", "fields"}
        assert schema_disagreements(response, "GET", path) == []


def test_an_owner_deletes_the_organization_as_the_schema_says(cast, api):
    operation = SchemaGenerator().get_schema(request=None, public=True)["paths"][
        "/api/v1/organization/"
    ]["delete"]
    asked = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "query"}
    assert asked["confirm"]["required"] is True  # a DELETE's body would not be documented
    client = api(cast.owner)
    assert client.delete("/api/v1/organization/?confirm=acm").status_code == 400
    deleted = client.delete("/api/v1/organization/?confirm=acme")
    assert deleted.status_code == 204
    assert not Organization.objects.filter(slug="acme").exists()
    assert schema_disagreements(deleted, "DELETE", "/api/v1/organization/") == []


def test_who_am_i_is_documented_as_what_it_is(cast, api):
    agrees(api(cast.agent).get("/api/v1/me/"), "GET", "/api/v1/me/")


@pytest.mark.parametrize(
    ("path", "count"), [("/api/v1/tags/", "contact_count"), ("/api/v1/groups/", "member_count")]
)
def test_a_new_tag_or_group_counts_zero_contacts(cast, api, path, count):
    client = api(cast.owner)
    created = client.post(path, {"name": "Fresh"}, format="json")
    assert created.status_code == 201 and created.json()[count] == 0
    agrees(created, "POST", path)
    renamed = client.patch(f"{path}{created.json()['id']}/", {"name": "Renamed"}, format="json")
    assert renamed.json()[count] == 0
    agrees(renamed, "PATCH", path + "{id}/")


# --- Descriptions ----------------------------------------------------------------------------------


def _project_classes_in_the_api() -> tuple[set[type], set[type]]:
    """(view classes of every API operation, every serializer class of the project)."""
    views = {callback.cls for _p, _r, _m, callback in EndpointEnumerator().get_api_endpoints()}
    found, todo = set(), [serializers.BaseSerializer]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith(PROJECT):
                found.add(sub)
    return views, found


def internal_docstrings(components: dict) -> dict[str, str]:
    """The first lines of the docstrings of our base classes that views and serializers inherit
    and that document no operation or component of their own: they are for our developers."""
    views, serializer_classes = _project_classes_in_the_api()

    def documented(cls: type) -> bool:
        name = cls.__name__.removesuffix("Serializer")
        return cls in views or name in components or f"{name}Request" in components

    phrases = {}
    for cls in views | serializer_classes:
        for base in cls.__mro__[1:]:
            if base.__module__.startswith(PROJECT) and base.__doc__ and not documented(base):
                phrases[base.__qualname__] = inspect.cleandoc(base.__doc__).splitlines()[0]
    return phrases


def _descriptions(schema: dict):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            yield f"{method.upper()} {path}", operation.get("description", "")
            for parameter in operation.get("parameters", []):
                yield (
                    f"{method.upper()} {path} ?{parameter['name']}",
                    parameter.get("description", ""),
                )
    for name, component in schema["components"]["schemas"].items():
        yield name, component.get("description", "")
        for field, spec in component.get("properties", {}).items():
            yield f"{name}.{field}", spec.get("description", "")


def test_no_description_in_the_schema_is_a_base_classs_docstring(db):
    schema = SchemaGenerator().get_schema(request=None, public=True)
    phrases = internal_docstrings(schema["components"]["schemas"])
    assert any(
        line.startswith("Base for DRF views") for line in phrases.values()
    )  # found, not listed
    assert any(line.startswith("Input serializer that refuses") for line in phrases.values())
    leaks = [
        (where, owner)
        for where, text in _descriptions(schema)
        for owner, line in phrases.items()
        if line in text
    ]
    assert leaks == []


def test_every_operation_is_described(db):
    schema = SchemaGenerator().get_schema(request=None, public=True)
    undescribed = [
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if not operation.get("description", "").strip()
    ]
    assert undescribed == []
