"""The sessions API: CRUD with write-only credentials, the pairing actions, QR as JSON and PNG,
history, the webhook URL and secret, the simulator's actions, and who may do what."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from crm.errors import ApplicationError
from sessions_app import queue, services
from sessions_app.models import WhatsAppSession

pytestmark = pytest.mark.django_db

BASE = "/api/v1/sessions/"
CANARY = "CANARY-access-token-7f3e"


def drain():
    queue.drain(now=timezone.now() + dt.timedelta(seconds=60))


def create(client, **data):
    return client.post(BASE, {"name": "Sales", "provider": "simulator", **data}, format="json")


def test_it_creates_pairs_and_reports_a_simulator_session(cast, api):
    admin = api(cast.admin)
    created = create(admin)
    assert created.status_code == 201, created.content
    session_id = created.json()["id"]
    assert created.json()["status"] == "disconnected"
    assert "qr" in created.json()["capabilities"]

    connected = admin.post(f"{BASE}{session_id}/connect/")
    assert connected.status_code == 200 and connected.json()["status"] == "qr"

    qr = admin.get(f"{BASE}{session_id}/qr/")
    assert qr.status_code == 200 and qr.json()["image"].startswith("data:image/png;base64,")
    png = admin.get(f"{BASE}{session_id}/qr/", {"format": "png"})
    assert png["Content-Type"] == "image/png" and png.content.startswith(b"\x89PNG")

    assert (
        admin.post(f"{BASE}{session_id}/simulate/", {"action": "scan"}, format="json").status_code
        == 202
    )
    drain()
    status = admin.get(f"{BASE}{session_id}/status/").json()
    assert status["status"] == "ready" and status["phone_number"].startswith("+8529")

    history = admin.get(f"{BASE}{session_id}/events/").json()
    assert [h["to_status"] for h in history] == ["ready", "connecting", "qr"]
    assert history[-1]["actor"] == cast.admin.email

    assert admin.get(f"{BASE}{session_id}/qr/").json()["image"] is None  # nothing to scan now
    assert admin.get(f"{BASE}{session_id}/qr/", {"format": "png"}).status_code == 404


def test_credentials_are_write_only(cast, api):
    admin = api(cast.admin)
    created = create(
        admin,
        name="Meta",
        provider="cloud_api",
        credentials={
            "phone_number_id": "1234567890",
            "waba_id": "98765",
            "access_token": CANARY,
            "app_secret": "CANARY-app-secret",
            "verify_token": "CANARY-verify",
        },
    )
    assert created.status_code == 201, created.content
    assert CANARY not in created.content.decode()
    assert created.json()["credentials"]["access_token"] is True
    listed = admin.get(BASE)
    assert CANARY not in listed.content.decode() and "CANARY" not in listed.content.decode()
    stored = WhatsAppSession.objects.get(uuid=created.json()["id"])
    assert CANARY not in stored.credentials_encrypted


def test_an_agent_reads_sessions_but_cannot_manage_them_or_see_the_qr(cast, api):
    session_id = create(api(cast.admin)).json()["id"]
    api(cast.admin).post(f"{BASE}{session_id}/connect/")
    agent = api(cast.agent)
    assert agent.get(f"{BASE}{session_id}/").status_code == 200
    assert agent.get(f"{BASE}{session_id}/status/").status_code == 200
    assert agent.get(f"{BASE}{session_id}/qr/").status_code == 403
    assert agent.get(f"{BASE}{session_id}/webhook/").status_code == 403
    assert agent.post(f"{BASE}{session_id}/connect/").status_code == 403
    assert create(agent, name="Mine").status_code == 403


def test_bad_input_gets_field_errors_not_a_500(cast, api):
    admin = api(cast.admin)
    assert create(admin, provider="telegram").status_code == 400
    unknown = create(admin, credentials={"token": "x"})
    assert unknown.status_code == 400
    assert "credentials.token" in unknown.json()["error"]["fields"]
    create(admin)
    duplicate = create(admin, name="sales")
    assert duplicate.status_code == 400 and "name" in duplicate.json()["error"]["fields"]
    session_id = admin.get(BASE).json()["results"][0]["id"]
    wrong = admin.post(f"{BASE}{session_id}/simulate/", {"action": "explode"}, format="json")
    assert wrong.status_code == 400
    assert admin.get(f"{BASE}not-a-uuid/").status_code == 404


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("messages_burst", 2**70),
        ("messages_burst", 0),
        ("messages_burst", 2.5),
        ("messages_per_minute", 1e308),
        ("messages_per_minute", 0),
        ("messages_per_minute", -5),
        ("jitter_seconds", 86_400),
        ("jitter_seconds", "soon"),
    ],
)
def test_pacing_out_of_its_documented_range_is_refused_naming_the_setting(
    cast, api, setting, value
):
    admin = api(cast.admin)
    created = create(admin, settings={setting: value})
    assert created.status_code == 400, created.content
    assert list(created.json()["error"]["fields"]) == [f"settings.{setting}"]
    session_id = create(admin).json()["id"]
    changed = admin.patch(f"{BASE}{session_id}/", {"settings": {setting: value}}, format="json")
    assert changed.status_code == 400
    assert list(changed.json()["error"]["fields"]) == [f"settings.{setting}"]
    assert WhatsAppSession.objects.get(uuid=session_id).settings == {}


def test_pacing_within_its_range_is_kept(cast, api):
    pacing = {"messages_per_minute": 10_000, "messages_burst": 10_000, "jitter_seconds": 0}
    created = create(api(cast.admin), settings=pacing)
    assert created.status_code == 201, created.content
    assert created.json()["settings"] == pacing


def test_the_service_behind_the_dashboard_has_the_same_bounds(cast):
    session = services.session_create(
        organization=cast.org_a, actor=cast.admin, data={"name": "Desk", "provider": "simulator"}
    )
    with pytest.raises(ApplicationError) as refused:
        services.session_update(
            organization=cast.org_a,
            session=session,
            actor=cast.admin,
            data={"settings": {"messages_per_minute": 1e308}},
        )
    assert list(refused.value.fields) == ["settings.messages_per_minute"]


def test_an_illegal_move_is_a_409(cast, api):
    admin = api(cast.admin)
    session_id = create(admin).json()["id"]
    admin.post(f"{BASE}{session_id}/logout/")
    scan = admin.post(f"{BASE}{session_id}/simulate/", {"action": "scan"}, format="json")
    assert scan.status_code == 409 and scan.json()["error"]["code"] == "action_not_allowed"


def test_the_webhook_secret_is_shown_to_admins_and_can_be_rotated(cast, api):
    admin = api(cast.admin)
    session_id = create(admin).json()["id"]
    first = admin.get(f"{BASE}{session_id}/webhook/").json()
    assert first["url"].endswith(f"/webhooks/simulator/{session_id}/")
    rotated = admin.post(f"{BASE}{session_id}/webhook/").json()
    assert rotated["secret"] and rotated["secret"] != first["secret"]


def test_a_pairing_code_is_issued_for_a_phone(cast, api):
    admin = api(cast.admin)
    session_id = create(admin).json()["id"]
    answer = admin.post(
        f"{BASE}{session_id}/pairing-code/", {"phone_number": "+852 9123 4567"}, format="json"
    )
    assert answer.status_code == 200 and len(answer.json()["pairing_code"]) == 9
    bad = admin.post(
        f"{BASE}{session_id}/pairing-code/", {"phone_number": "call me"}, format="json"
    )
    assert bad.status_code == 400
