"""The sessions pages: create (with a provider's credentials), change settings, delete."""

from __future__ import annotations

import pytest
from django.utils.html import escape

from sessions_app import providers, services
from sessions_app.models import WhatsAppSession
from tests.support.factories import gateway_session

pytestmark = pytest.mark.django_db


def error_beside(html: str, field: str) -> str:
    """The error list Django renders right after a credential's input (``<ul id=…_error>``)."""
    return html.split(f'id="id_cred-{field}_error"', 1)[1].split("</ul>", 1)[0]


def test_an_admin_creates_a_cloud_api_session_from_the_form(cast, client):
    client.force_login(cast.admin)
    response = client.post(
        "/o/acme/sessions/",
        {
            "name": "Meta line",
            "provider": "cloud_api",
            "colour": "#2563eb",
            "cred-cloud_api-phone_number_id": "1234567890",
            "cred-cloud_api-waba_id": "42",
            "cred-cloud_api-access_token": "secret-token",
            "cred-cloud_api-app_secret": "app-secret",
            "cred-cloud_api-verify_token": "verify",
            "cred-gowa-password": "ignored: another provider's field",
        },
    )
    session = WhatsAppSession.objects.get(organization=cast.org_a, name="Meta line")
    assert response.status_code == 302 and str(session.uuid) in response["Location"]
    assert services.credentials_of(session)["access_token"] == "secret-token"
    assert session.colour == "#2563eb"


def test_a_bad_form_is_shown_again_with_each_error_beside_its_field(cast, client):
    client.force_login(cast.admin)
    response = client.post(
        "/o/acme/sessions/",
        {
            "name": "Meta",
            "provider": "cloud_api",
            "cred-cloud_api-phone_number_id": "12ab",
            "cred-cloud_api-access_token": "typed-token",
        },
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Phone number ID is digits only." in error_beside(html, "cloud_api-phone_number_id")
    assert "App secret is required." in error_beside(html, "cloud_api-app_secret")
    assert 'value="12ab"' in html  # what the person typed stays, except the secret
    assert "typed-token" not in html and "credentials.access_token" not in html
    assert not WhatsAppSession.objects.exists()


def test_settings_save_keep_unchanged_secrets_and_delete_needs_the_name(cast, client):
    session = gateway_session(cast, "gowa")
    client.force_login(cast.admin)
    page = f"/o/acme/sessions/{session.uuid}/"
    assert "kept-password" not in client.get(page).content.decode()
    saved = client.post(
        page,
        {
            "action": "settings",
            "name": "Gateway 2",
            "colour": "#0f766e",
            "cred-server_url": "http://127.0.0.1:10",
            "cred-password": "",
            "messages_per_minute": "20",
        },
    )
    assert saved.status_code == 302
    session.refresh_from_db()
    assert session.name == "Gateway 2" and session.settings == {"messages_per_minute": 20}
    stored = services.credentials_of(session)
    assert stored["server_url"] == "http://127.0.0.1:10" and stored["password"] == "kept-password"
    refused = client.post(page, {"action": "delete", "confirm": "Gateway"})
    assert refused.status_code == 400 and WhatsAppSession.objects.filter(pk=session.pk).exists()
    client.post(page, {"action": "delete", "confirm": "Gateway 2"})
    assert not WhatsAppSession.objects.filter(pk=session.pk).exists()


@pytest.mark.parametrize("provider", ["cloud_api", "evolution", "gowa"])
def test_the_api_and_the_form_refuse_missing_credentials_in_the_same_words(
    cast, api, client, provider
):
    required = [f for f in providers.get(provider).credential_fields if f.required]
    answer = api(cast.admin).post(
        "/api/v1/sessions/", {"name": "New", "provider": provider}, format="json"
    )
    assert answer.status_code == 400
    said = answer.json()["error"]["fields"]
    assert set(said) == {f"credentials.{f.name}" for f in required}

    client.force_login(cast.admin)
    html = client.post("/o/acme/sessions/", {"name": "New", "provider": provider}).content.decode()
    for field in required:
        (message,) = said[f"credentials.{field.name}"]
        assert escape(message) in error_beside(html, f"{provider}-{field.name}")
    assert not WhatsAppSession.objects.exists()


def test_a_refused_credential_in_the_settings_is_named_beside_its_field(cast, client):
    session = services.session_create(
        organization=cast.org_a,
        actor=cast.admin,
        data={
            "name": "Gateway",
            "provider": "gowa",
            "credentials": {
                "server_url": "http://127.0.0.1:9",
                "username": "u",
                "password": "kept-password",
                "webhook_secret": "a-real-secret-1",
            },
            "settings": {"messages_burst": 3},
        },
    )
    client.force_login(cast.admin)
    response = client.post(
        f"/o/acme/sessions/{session.uuid}/",
        {"action": "settings", "name": "Gateway", "cred-webhook_secret": "secret"},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "default webhook secret" in error_beside(html, "webhook_secret")
    assert "kept-password" not in html and "a-real-secret-1" not in html
    session.refresh_from_db()
    assert services.credentials_of(session)["webhook_secret"] == "a-real-secret-1"
    assert session.settings == {"messages_burst": 3}
