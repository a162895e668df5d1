"""The session socket: members receive status frames; only admins and owners receive QR codes;
another organization's session (or member) is refused."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from sessions_app import services


def socket(asgi_server, path, user):
    client = Client()
    client.force_login(user)
    return connect(
        asgi_server.ws_url + path,
        additional_headers={
            "Cookie": f"sessionid={client.cookies['sessionid'].value}",
            "Origin": asgi_server.url,
        },
        open_timeout=5,
    )


def frames_until_status(ws, status):
    seen = []
    while True:
        frame = json.loads(ws.recv(timeout=10))
        seen.append(frame["event"])
        if frame["event"] == "status" and frame["data"]["status"] == status:
            return seen


def frames_until_event(ws, event):
    seen = []
    while event not in seen:
        seen.append(json.loads(ws.recv(timeout=10))["event"])
    return seen


def test_a_viewer_gets_the_status_but_never_the_qr_code(asgi_server, cast):
    session = services.session_create(
        organization=cast.org_a, actor=cast.admin, data={"name": "Live", "provider": "simulator"}
    )
    path = f"/ws/o/acme/sessions/{session.uuid}/"
    with (
        socket(asgi_server, path, cast.viewer) as viewer,
        socket(asgi_server, path, cast.admin) as admin,
    ):
        services.session_connect(organization=cast.org_a, session=session, actor=cast.admin)
        admin_saw = frames_until_event(admin, "qr")
        viewer_saw = frames_until_status(viewer, "qr")
        services.session_disconnect(organization=cast.org_a, session=session, actor=cast.admin)
        viewer_saw += frames_until_status(viewer, "disconnected")
    assert "qr" in admin_saw
    assert "qr" not in viewer_saw and viewer_saw[-1] == "status"


def test_another_organizations_session_socket_is_refused(asgi_server, cast):
    session = services.session_create(
        organization=cast.org_a, actor=cast.admin, data={"name": "Live", "provider": "simulator"}
    )
    with pytest.raises(InvalidStatus):
        socket(asgi_server, f"/ws/o/bravo/sessions/{session.uuid}/", cast.b_member)
    with pytest.raises(InvalidStatus):
        socket(asgi_server, "/ws/o/acme/sessions/not-a-uuid/", cast.owner)
