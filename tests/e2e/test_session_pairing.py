"""Pairing a simulator session in Chromium: the QR code arrives over the websocket and rotates,
and the phone's scan turns the badge to "Connected as +852 …" — no reload, no polling (a real
worker drains the queue; pushes go through the Redis channel layer)."""

from __future__ import annotations

import datetime as dt

import pytest

from sessions_app import services, simulation
from sessions_app.models import WhatsAppSession

pytestmark = pytest.mark.browser


def sign_in(page, user, password):
    page.goto("/login/")
    page.fill("#id_username", user.email)
    page.fill("#id_password", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/o/acme/")


def test_the_qr_code_rotates_live_and_a_scan_connects_without_a_reload(
    new_page, asgi_server, cast, password, celery_worker
):
    session = services.session_create(
        organization=cast.org_a, actor=cast.admin, data={"name": "Shop", "provider": "simulator"}
    )
    page = new_page()
    sign_in(page, cast.admin, password)
    page.goto(f"/o/acme/sessions/{session.uuid}/")
    assert page.get_attribute("#session-status", "data-status") == "disconnected"

    # When the admin connects it, a QR code appears
    page.click("#connect-button")
    page.wait_for_selector("#session-qr[src^='data:image/png']")
    first = page.get_attribute("#session-qr", "src")
    page.wait_for_function("window.parleySessionSynced >= 1")  # the socket is open and synced
    page.evaluate("window.__samePage = true")
    requests = []
    page.on("request", lambda request: requests.append(request.url))

    # When the code expires (the beat's tick), a new one arrives over the socket
    session.refresh_from_db()
    services.qr_expire(now=session.qr_expires_at + dt.timedelta(seconds=1))
    page.wait_for_function(
        f"document.getElementById('session-qr').src !== {first!r}", timeout=20_000
    )

    # When the phone scans it, the badge turns ready and shows the number
    simulation.simulate_scan(session=WhatsAppSession.objects.get(pk=session.pk))
    page.wait_for_function(
        "document.getElementById('session-status').dataset.status === 'ready'", timeout=20_000
    )
    session.refresh_from_db()
    assert page.is_visible("#session-connected-as")
    assert page.inner_text("#session-phone") == f"+{session.phone_number}"
    assert page.is_hidden("#pairing")
    assert page.is_hidden("#connect-button") and page.is_hidden("#scan-button")
    assert page.is_visible("button[value=disconnect]")
    assert page.evaluate("window.__samePage") is True
    assert page.evaluate("window.parleySessionFrames") >= 3  # qr, connecting, ready
    assert requests == []  # nothing fetched or reloaded: it all came over the socket


def test_an_agent_sees_the_status_but_not_the_qr_code(
    new_page, asgi_server, cast, password, celery_worker
):
    session = services.session_create(
        organization=cast.org_a, actor=cast.admin, data={"name": "Desk", "provider": "simulator"}
    )
    services.session_connect(organization=cast.org_a, session=session, actor=cast.admin)
    page = new_page()
    sign_in(page, cast.agent, password)
    page.goto(f"/o/acme/sessions/{session.uuid}/")
    assert page.get_attribute("#session-status", "data-status") == "qr"
    assert page.locator("#session-qr").count() == 0
    assert page.locator("#connect-button").count() == 0
