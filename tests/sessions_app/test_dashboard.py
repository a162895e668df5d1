"""The sessions pages: create (with a provider's credentials), change settings, delete."""

from __future__ import annotations

import pytest

from sessions_app import services
from sessions_app.models import WhatsAppSession

pytestmark = pytest.mark.django_db


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


def test_a_bad_form_is_shown_again_with_its_error(cast, client):
    client.force_login(cast.admin)
    response = client.post("/o/acme/sessions/", {"name": "Meta", "provider": "cloud_api"})
    assert response.status_code == 400
    assert "credentials.access_token" in response.content.decode()
    assert not WhatsAppSession.objects.exists()


def test_settings_save_keep_unchanged_secrets_and_delete_needs_the_name(cast, client):
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
        },
    )
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
