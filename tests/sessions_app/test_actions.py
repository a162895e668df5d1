"""What a person may do to a session in each state: one table (sessions_app/actions.py), used by
the session page (only those buttons show) and by the API (anything else is a 409 saying why)."""

from __future__ import annotations

import re

import pytest

from sessions_app import actions, providers, services
from sessions_app.models import WhatsAppSession

pytestmark = pytest.mark.django_db

LINKED_DEVICE = {
    "disconnected": {"connect", "pairing_code", "logout"},
    "qr": {"pairing_code", "disconnect"},
    "connecting": {"disconnect"},
    "ready": {"disconnect", "logout"},
    "logged_out": {"connect", "pairing_code"},
    "failed": {"connect", "pairing_code", "logout"},
}
EXPECTED = {
    "simulator": {
        "disconnected": {"connect", "pairing_code", "logout"},
        "qr": {"pairing_code", "scan", "disconnect"},
        "connecting": {"disconnect"},
        "ready": {"disconnect", "logout"},
        "logged_out": {"connect", "pairing_code"},
        "failed": {"connect", "pairing_code", "logout"},
    },
    "evolution": LINKED_DEVICE,
    "gowa": LINKED_DEVICE,
    "cloud_api": {
        "disconnected": {"connect"},
        "qr": {"disconnect"},
        "connecting": {"disconnect"},
        "ready": {"disconnect"},
        "logged_out": {"connect"},
        "failed": {"connect"},
    },
}
CREDENTIALS = {
    "simulator": {},
    "cloud_api": {
        "phone_number_id": "1234567890",
        "waba_id": "42",
        "access_token": "token",
        "app_secret": "app-secret",
        "verify_token": "verify",
    },
    "evolution": {
        "server_url": "http://127.0.0.1:9",
        "api_key": "key",
        "instance_name": "shop",
    },
    "gowa": {
        "server_url": "http://127.0.0.1:9",
        "username": "u",
        "password": "p",
        "webhook_secret": "a-long-random-secret",
    },
}
ACTION_BUTTON = re.compile(r'<form([^>]*)>(?:(?!</form>).)*?name="action" value="(\w+)"', re.S)


def session_in(cast, provider: str, status: str) -> WhatsAppSession:
    session = services.session_create(
        organization=cast.org_a,
        actor=cast.admin,
        data={
            "name": f"{provider} {status}",
            "provider": provider,
            "credentials": CREDENTIALS[provider],
        },
    )
    WhatsAppSession.objects.filter(pk=session.pk).update(status=status)
    session.refresh_from_db()
    return session


def buttons_shown(html: str) -> set[str]:
    """The action buttons of the session page a person sees (their form is not ``hidden``)."""
    block = html.split('id="session-actions"', 1)[1].split("</section>", 1)[0]
    return {action for attrs, action in ACTION_BUTTON.findall(block) if " hidden" not in attrs}


def test_the_table_of_state_to_actions_is_the_one_the_product_promises():
    assert {
        name: {status: set(actions.allowed(name, status)) for status in actions.ALLOWED}
        for name in providers.names()
    } == EXPECTED


@pytest.mark.parametrize("provider", sorted(EXPECTED))
def test_the_session_page_shows_only_the_buttons_of_its_state(cast, client, provider):
    client.force_login(cast.admin)
    for status, expected in EXPECTED[provider].items():
        session = session_in(cast, provider, status)
        html = client.get(f"/o/acme/sessions/{session.uuid}/").content.decode()
        assert buttons_shown(html) == expected, status


def test_waiting_for_a_scan_offers_no_connect_and_no_log_out(cast, client):
    client.force_login(cast.admin)
    session = session_in(cast, "simulator", "qr")
    html = client.get(f"/o/acme/sessions/{session.uuid}/").content.decode()
    assert buttons_shown(html) == {"pairing_code", "scan", "disconnect"}


def test_members_who_cannot_manage_sessions_see_no_buttons(cast, client):
    session = session_in(cast, "simulator", "disconnected")
    client.force_login(cast.agent)
    html = client.get(f"/o/acme/sessions/{session.uuid}/").content.decode()
    assert 'id="session-actions"' not in html and 'name="action"' not in html


def post_action(admin, session_id: str, action: str):
    base = f"/api/v1/sessions/{session_id}/"
    if action == "scan":
        return admin.post(f"{base}simulate/", {"action": "scan"}, format="json")
    if action == "pairing_code":
        return admin.post(f"{base}pairing-code/", {"phone_number": "+852 9123 4567"}, format="json")
    return admin.post(f"{base}{action}/")


def test_the_api_refuses_an_action_its_state_does_not_allow_with_a_409_saying_why(cast, api):
    admin = api(cast.admin)
    refused = []
    for status, allowed in EXPECTED["simulator"].items():
        session = session_in(cast, "simulator", status)
        for action in sorted({a.value for a in actions.Action} - allowed):
            answer = post_action(admin, str(session.uuid), action)
            assert answer.status_code == 409, (status, action, answer.content)
            error = answer.json()["error"]
            assert error["code"] == "action_not_allowed" and error["fields"] == {}
            session.refresh_from_db()
            assert session.status == status  # nothing happened
            refused.append((status, action, error["message"]))
    assert len(refused) == 6 * 5 - sum(len(a) for a in EXPECTED["simulator"].values())
    assert (
        "qr",
        "logout",
        "Log out is not possible while the session is “Waiting for a scan”. "
        "Possible now: Get a pairing code, Scan (simulated phone), Disconnect.",
    ) in refused


def test_the_api_does_what_the_state_allows(cast, api):
    admin = api(cast.admin)
    session = session_in(cast, "simulator", "qr")
    assert post_action(admin, str(session.uuid), "disconnect").status_code == 200
    assert post_action(admin, str(session.uuid), "connect").status_code == 200
    assert post_action(admin, str(session.uuid), "logout").status_code == 409  # qr again
    assert post_action(admin, str(session.uuid), "scan").status_code == 202


def test_a_provider_without_the_capability_is_told_so(cast, api):
    session = session_in(cast, "cloud_api", "ready")
    answer = post_action(api(cast.admin), str(session.uuid), "logout")
    assert answer.status_code == 409
    assert answer.json()["error"]["message"] == (
        "Log out: WhatsApp Cloud API (Meta) cannot do this."
    )
