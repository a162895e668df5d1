"""An open websocket follows its owner's access: it closes when the membership goes."""

from __future__ import annotations

import pytest
from django.test import Client
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from accounts import services
from accounts.models import Membership


def _socket(asgi_server, user):
    client = Client()
    client.force_login(user)
    return connect(
        asgi_server.ws_url + "/ws/o/acme/events/",
        additional_headers={
            "Cookie": f"sessionid={client.cookies['sessionid'].value}",
            "Origin": asgi_server.url,
        },
        open_timeout=5,
    )


@pytest.mark.parametrize("change", ["deactivate", "remove"])
def test_a_socket_closes_when_its_member_loses_access(asgi_server, cast, change):
    # Given an agent with the organization's live feed open
    with _socket(asgi_server, cast.agent) as socket:
        socket.ping().wait(5)
        membership = Membership.objects.get(organization=cast.org_a, user=cast.agent)

        # When an admin deactivates or removes them
        action = services.member_deactivate if change == "deactivate" else services.member_remove
        action(organization=cast.org_a, membership=membership, actor=cast.admin)

        # Then the server closes their socket (a deadline, not a sleep)
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=3)
        assert closed.value.rcvd.code == 4404


def test_a_socket_stays_open_for_a_member_who_keeps_access(asgi_server, cast):
    with _socket(asgi_server, cast.agent) as socket:
        socket.ping().wait(5)
        viewer = Membership.objects.get(organization=cast.org_a, user=cast.viewer)
        services.member_deactivate(organization=cast.org_a, membership=viewer, actor=cast.admin)
        agent = Membership.objects.get(organization=cast.org_a, user=cast.agent)
        services.member_set_role(
            organization=cast.org_a, membership=agent, role="viewer", actor=cast.admin
        )
        socket.ping().wait(5)  # still open: a viewer may watch the feed
