"""Per-session message statistics for the API."""

from __future__ import annotations

from django.db.models import (
    Count,
    Q,
)
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.tenancy import TenantAPIMixin, scoped
from messaging.api_chats import by_uuid
from messaging.models import (
    Chat,
    Contact,
    Direction,
    MediaState,
    Message,
)
from sessions_app.models import WhatsAppSession

# --- Stats ---------------------------------------------------------------------------------------


class SessionStatsSerializer(serializers.Serializer):
    session = serializers.UUIDField()
    contacts = serializers.IntegerField()
    chats = serializers.IntegerField()
    groups = serializers.IntegerField(help_text="Group and broadcast chats")
    messages = serializers.IntegerField()
    incoming = serializers.IntegerField()
    outgoing = serializers.IntegerField()
    attachments = serializers.IntegerField()
    attachments_by_type = serializers.DictField(child=serializers.IntegerField())
    media_failed = serializers.IntegerField()


class SessionStatsView(TenantAPIMixin, APIView):
    """What a session holds: contacts, chats, messages, attachments by type (the seeds' db-check)."""

    model = WhatsAppSession  # for the cross-tenant sweep: the object named in the URL
    lookup_field = lookup_url_kwarg = "uuid"

    def get_queryset(self):
        return scoped(WhatsAppSession, self.request.organization)

    def get_object_in_tenant(self, value):
        return by_uuid(self.get_queryset(), value)

    @extend_schema(responses=SessionStatsSerializer)
    def get(self, request, uuid=None):
        session = self._tenant_object
        messages = scoped(Message, request.organization).filter(session=session)
        totals = messages.aggregate(
            messages=Count("id"),
            incoming=Count("id", filter=Q(direction=Direction.IN)),
            outgoing=Count("id", filter=Q(direction=Direction.OUT)),
        )
        attachments = dict(
            messages.exclude(media_state="")
            .values_list("type")
            .annotate(n=Count("id"))
            .values_list("type", "n")
        )
        chats = scoped(Chat, request.organization).filter(session=session)
        contacts = (
            scoped(Contact, request.organization)
            .filter(Q(chats__session=session) | Q(pk__in=messages.values("sender_id")))
            .distinct()
            .count()
        )
        return Response(
            {
                "session": str(session.uuid),
                "contacts": contacts,
                "chats": chats.count(),
                "groups": chats.exclude(kind="direct").count(),
                **totals,
                "attachments": sum(attachments.values()),
                "attachments_by_type": attachments,
                "media_failed": messages.filter(media_state=MediaState.FAILED).count(),
            }
        )
