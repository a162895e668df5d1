"""Sessions: the state machine, the simulator's pairing through the queue, credentials at rest."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core import mail
from django.utils import timezone

from crm.errors import ApplicationError, Conflict
from sessions_app import queue, services, simulation
from sessions_app.models import (
    SessionEvent,
    SessionStatus,
    WebhookEvent,
    WebhookState,
    WhatsAppSession,
)
from sessions_app.services import TRANSITIONS

pytestmark = pytest.mark.django_db
S = SessionStatus


def make(cast, name="Sales", provider="simulator", **data):
    return services.session_create(
        organization=cast.org_a, actor=cast.admin, data={"name": name, "provider": provider, **data}
    )


def drained(session):
    queue.drain(now=timezone.now() + dt.timedelta(seconds=60))
    session.refresh_from_db()
    return session


def test_it_pairs_a_simulator_session_by_qr_then_scan(cast):
    # Given a new simulator session
    session = make(cast)
    assert session.status == S.DISCONNECTED
    # When an admin connects it
    session = services.session_connect(organization=cast.org_a, session=session, actor=cast.admin)
    # Then it waits for a scan, with a QR code that expires
    assert session.status == S.QR and session.qr_text.startswith("2@")
    assert session.qr_expires_at > timezone.now()
    # When the phone scans it and the queue is drained
    simulation.simulate_scan(session=session)
    session = drained(session)
    # Then it is ready, with the phone's number and JID, and the history says how it got there
    assert session.status == S.READY
    assert session.phone_number.startswith("8529") and session.jid.endswith("@s.whatsapp.net")
    assert session.qr_text == ""
    steps = list(
        SessionEvent.objects.filter(session=session)
        .order_by("created_at", "id")
        .values_list("from_status", "to_status")
    )
    assert steps == [("disconnected", "qr"), ("qr", "connecting"), ("connecting", "ready")]


def test_the_transitions_are_the_ones_the_design_lists():
    assert {
        "disconnected": {"qr", "connecting", "ready", "failed", "logged_out"},
        "qr": {"qr", "connecting", "ready", "disconnected", "failed", "logged_out"},
        "connecting": {"qr", "ready", "disconnected", "failed", "logged_out"},
        "ready": {"connecting", "disconnected", "failed", "logged_out"},
        "logged_out": {"qr", "connecting", "ready", "disconnected"},
        "failed": {"qr", "connecting", "ready", "disconnected", "logged_out"},
    } == TRANSITIONS


def test_an_illegal_transition_is_refused_and_changes_nothing(cast):
    session = make(cast)
    services.session_logout(organization=cast.org_a, session=session, actor=cast.admin)
    session.refresh_from_db()
    with pytest.raises(Conflict):
        services.transition(session, S.FAILED, reason="nope")
    session.refresh_from_db()
    assert session.status == S.LOGGED_OUT
    assert not SessionEvent.objects.filter(to_status=S.FAILED).exists()


def test_a_ban_logs_the_session_out_keeps_it_and_emails_the_admins(
    cast, django_capture_on_commit_callbacks
):
    session = make(cast)
    services.session_connect(organization=cast.org_a, session=session, actor=cast.admin)
    simulation.simulate_scan(session=session)
    session = drained(session)
    with django_capture_on_commit_callbacks(execute=True):
        simulation.simulate_fault(session=session, fault="banned")
        session = drained(session)
    assert session.status == S.LOGGED_OUT and "banned" in session.status_reason
    assert session.next_reconnect_at is None
    assert len(mail.outbox) == 1 and cast.admin.email in mail.outbox[0].to
    assert "Sales" in mail.outbox[0].subject


def test_a_lost_connection_schedules_a_reconnect_with_growing_backoff(cast):
    session = make(cast)
    services.session_connect(organization=cast.org_a, session=session, actor=cast.admin)
    simulation.simulate_scan(session=session)
    drained(session)
    simulation.simulate_fault(session=session, fault="network_error")
    session = drained(session)
    assert session.status == S.DISCONNECTED and session.reconnect_attempts == 1
    first = session.next_reconnect_at
    # When the reconnect is due, it reconnects (the simulator shows a new QR code)
    services.reconnect_due(now=first + dt.timedelta(seconds=1))
    session.refresh_from_db()
    assert session.status == S.QR


def test_an_unscanned_qr_rotates_then_stops(cast):
    session = make(cast)
    session = services.session_connect(organization=cast.org_a, session=session, actor=cast.admin)
    seen = {session.qr_text}
    for _ in range(services.QR_MAX_ROTATIONS - 1):
        services.qr_expire(now=session.qr_expires_at + dt.timedelta(seconds=1))
        session = drained(session)
        seen.add(session.qr_text)
    assert session.status == S.QR and len(seen) == services.QR_MAX_ROTATIONS
    services.qr_expire(now=session.qr_expires_at + dt.timedelta(seconds=1))
    session.refresh_from_db()
    assert session.status == S.DISCONNECTED and "scanned" in session.status_reason


def test_credentials_are_encrypted_at_rest(cast):
    session = make(
        cast,
        name="Meta",
        provider="cloud_api",
        credentials={
            "phone_number_id": "1234567890",
            "waba_id": "555",
            "access_token": "CANARY-token-9c1f",
            "app_secret": "CANARY-secret-77ab",
            "verify_token": "CANARY-verify-31",
        },
    )
    session.refresh_from_db()
    assert "CANARY" not in session.credentials_encrypted
    assert services.credentials_of(session)["access_token"] == "CANARY-token-9c1f"
    assert session.external_id == "1234567890"


def test_it_refuses_missing_or_unknown_credentials(cast):
    with pytest.raises(ApplicationError) as missing:
        make(cast, name="Meta", provider="cloud_api", credentials={"phone_number_id": "1"})
    assert "credentials.access_token" in missing.value.fields
    with pytest.raises(ApplicationError) as unknown:
        make(cast, name="Sim", credentials={"token": "x"})
    assert "credentials.token" in unknown.value.fields


def test_an_inbound_message_waits_until_something_subscribes(cast, no_subscribers):
    session = make(cast)
    simulation.simulate_inbound(session=session, phone="85291234567", text="Hello", name="Ann")
    drained(session)
    row = WebhookEvent.objects.get(session=session)
    assert row.state == WebhookState.WAITING
    assert json.loads(row.body)["text"] == "Hello"


def test_admins_see_a_banner_on_every_page_while_a_session_needs_pairing(cast, client):
    session = make(cast, name="Front desk")
    services.session_logout(organization=cast.org_a, session=session, actor=cast.admin)
    client.force_login(cast.admin)
    page = client.get("/o/acme/contacts/").content.decode()
    assert "Front desk" in page and "needs pairing again" in page
    client.force_login(cast.agent)
    assert "needs pairing again" not in client.get("/o/acme/contacts/").content.decode()


def test_rotate_credentials_re_encrypts_under_the_newest_key(cast, settings):
    from cryptography.fernet import Fernet
    from django.core.management import call_command

    from crm import crypto

    session = make(cast, name="Old key")
    before = WhatsAppSession.objects.get(pk=session.pk).webhook_secret_encrypted
    secret = services.webhook_secret_of(session)
    settings.FERNET_KEYS = [Fernet.generate_key().decode(), *settings.FERNET_KEYS]
    call_command("rotate_credentials")
    after = WhatsAppSession.objects.get(pk=session.pk)
    assert after.webhook_secret_encrypted != before
    settings.FERNET_KEYS = settings.FERNET_KEYS[:1]  # only the new key now
    assert crypto.decrypt(after.webhook_secret_encrypted) == secret


def test_the_status_check_corrects_a_status_that_lies(cast):
    from tests.support.gowa_server import GowaServer

    server = GowaServer().start()
    try:
        session = make(
            cast,
            name="Gateway",
            provider="gowa",
            credentials={
                "server_url": server.url,
                "username": server.username,
                "password": server.password,
                "webhook_secret": "a-real-secret-1",
            },
        )
        WhatsAppSession.objects.filter(pk=session.pk).update(status=S.READY)
        session.refresh_from_db()
        services.session_check(session=session)  # the gateway says: not paired any more
        session.refresh_from_db()
        assert session.status != S.READY
        assert SessionEvent.objects.filter(session=session, from_status=S.READY).exists()
    finally:
        server.stop()
