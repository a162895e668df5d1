"""Websocket routes. Every route carries ``org_slug``; consumers authorize in ``connect``."""

from django.urls import path

from crm.consumers import OrganizationEventsConsumer
from messaging.consumers import InboxConsumer
from sessions_app.consumers import SessionConsumer, SessionListConsumer

websocket_urlpatterns = [
    path(
        "ws/o/<slug:org_slug>/events/", OrganizationEventsConsumer.as_asgi(), name="ws-org-events"
    ),
    path("ws/o/<slug:org_slug>/sessions/", SessionListConsumer.as_asgi(), name="ws-sessions"),
    path("ws/o/<slug:org_slug>/inbox/", InboxConsumer.as_asgi(), name="ws-inbox"),
    path(
        "ws/o/<slug:org_slug>/sessions/<str:session_uuid>/",
        SessionConsumer.as_asgi(),
        name="ws-session",
    ),
]
