"""Websocket routes. Every route carries ``org_slug``; consumers authorize in ``connect``."""

from django.urls import path

from crm.consumers import OrganizationEventsConsumer

websocket_urlpatterns = [
    path(
        "ws/o/<slug:org_slug>/events/", OrganizationEventsConsumer.as_asgi(), name="ws-org-events"
    ),
]
