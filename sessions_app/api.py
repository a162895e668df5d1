"""The sessions API: ``/api/v1/sessions/<uuid>/`` and its actions. Credentials are write-only:
responses say which are set, never their values. Admins manage sessions; QR codes and the webhook
secret are for admins too; everyone in the organization reads status and history."""

from __future__ import annotations

import base64
import uuid

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from accounts.tenancy import TenantAPIMixin, scoped
from crm.api import StrictSerializer
from sessions_app import providers, qr, services, simulation
from sessions_app.models import SessionEvent, WhatsAppSession


class PNGRenderer(BaseRenderer):
    """The QR code as an image: ``?format=png`` or ``Accept: image/png``."""

    media_type = "image/png"
    format = "png"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes) else b""


class SessionSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    provider_label = serializers.SerializerMethodField()
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    phone_number = serializers.SerializerMethodField()
    capabilities = serializers.SerializerMethodField()
    credentials = serializers.SerializerMethodField()
    webhook_url = serializers.SerializerMethodField()

    class Meta:
        model = WhatsAppSession
        fields = [
            "id",
            "name",
            "colour",
            "provider",
            "provider_label",
            "capabilities",
            "status",
            "status_label",
            "status_reason",
            "status_changed_at",
            "phone_number",
            "jid",
            "display_name",
            "last_seen_at",
            "settings",
            "default_assignee",
            "credentials",
            "webhook_url",
            "forged_requests",
            "created_at",
        ]
        read_only_fields = fields

    def get_provider_label(self, obj) -> str:
        return providers.get(obj.provider).label

    def get_phone_number(self, obj) -> str | None:
        return f"+{obj.phone_number}" if obj.phone_number else None

    def get_capabilities(self, obj) -> list[str]:
        return sorted(str(c) for c in providers.get(obj.provider).capabilities)

    def get_credentials(self, obj) -> dict[str, bool]:
        """Which credentials are set (values are write-only)."""
        stored = services.credentials_of(obj)
        return {
            f.name: bool(stored.get(f.name)) for f in providers.get(obj.provider).credential_fields
        }

    def get_webhook_url(self, obj) -> str:
        return services.webhook_url(obj)

    def to_representation(self, obj):
        data = super().to_representation(obj)
        data["settings"] = {k: v for k, v in obj.settings.items() if not k.startswith("simulator_")}
        return data


def _pacing_field(key: str, field_class, help_text: str):
    least, most, _whole = services.PACING_LIMITS[key]
    return field_class(
        min_value=least, max_value=most, required=False, allow_null=True, help_text=help_text
    )


class PacingSerializer(StrictSerializer):
    """How fast the session sends; a setting left out (or null) is the provider's default."""

    messages_per_minute = _pacing_field(
        "messages_per_minute", serializers.FloatField, "Sustained sends a minute"
    )
    messages_burst = _pacing_field(
        "messages_burst", serializers.IntegerField, "Sends allowed at once after a pause"
    )
    jitter_seconds = _pacing_field(
        "jitter_seconds", serializers.FloatField, "Up to this much random extra wait between sends"
    )


class SessionWriteSerializer(StrictSerializer):
    name = serializers.CharField(max_length=80)
    provider = serializers.ChoiceField(choices=providers.names())
    colour = serializers.CharField(max_length=7, required=False)
    credentials = serializers.DictField(
        child=serializers.CharField(allow_blank=True), required=False
    )
    settings = PacingSerializer(required=False)
    default_assignee = serializers.IntegerField(required=False, allow_null=True)


class SessionUpdateSerializer(SessionWriteSerializer):
    provider = None  # fixed once created

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False


class PairingCodeSerializer(StrictSerializer):
    phone_number = serializers.CharField(max_length=32)


class SimulateSerializer(StrictSerializer):
    action = serializers.ChoiceField(choices=["scan", "inbound", "fault"])
    phone = serializers.CharField(max_length=32, required=False)
    text = serializers.CharField(max_length=4096, required=False)
    name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    fault = serializers.ChoiceField(choices=simulation.PUBLIC_FAULTS, required=False)


class PairingCodeResultSerializer(SessionSerializer):
    pairing_code = serializers.CharField(read_only=True, help_text="Type it on the phone")

    class Meta(SessionSerializer.Meta):
        fields = [*SessionSerializer.Meta.fields, "pairing_code"]
        read_only_fields = fields


class SimulateResultSerializer(SessionSerializer):
    message_id = serializers.CharField(required=False, help_text="`inbound` only: its id")

    class Meta(SessionSerializer.Meta):
        fields = [*SessionSerializer.Meta.fields, "message_id"]


class QrSerializer(serializers.Serializer):
    session = serializers.UUIDField()
    status = serializers.CharField(required=False, help_text="Given when there is no code to scan")
    image = serializers.CharField(
        allow_null=True, help_text="A PNG data URI; null when the session is not waiting for a scan"
    )
    pairing_code = serializers.CharField(required=False, allow_blank=True)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class WebhookSerializer(serializers.Serializer):
    url = serializers.URLField(help_text="Where the provider sends events")
    secret = serializers.CharField(help_text="Sent by the provider in `secret_header`")
    secret_header = serializers.CharField()


class SessionEventSerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()

    class Meta:
        model = SessionEvent
        fields = ["from_status", "to_status", "reason", "actor", "created_at"]
        read_only_fields = fields

    def get_actor(self, obj) -> str | None:
        return obj.actor.email if obj.actor_id else None


@extend_schema_view(  # what each action does, here so the actions' code stays about the code
    connect=extend_schema(
        description="Start pairing: a QR code to scan (``qr``), or for an API provider, a check "
        "of its credentials. Follow ``status`` or the session's websocket."
    ),
    pairing_code=extend_schema(
        description="Pair by a code typed on the phone instead of a QR scan (providers that "
        "support it)."
    ),
    disconnect=extend_schema(
        description="Close the connection (no automatic reconnect); ``connect`` opens it again."
    ),
    logout=extend_schema(
        description="Unlink the number from the provider; pairing again needs a new scan."
    ),
    status=extend_schema(description="The session as ``GET /sessions/{uuid}/`` shows it."),
    history=extend_schema(
        description="Its status changes, newest first (the last 200): from, to, why, by whom."
    ),
)
class SessionViewSet(TenantAPIMixin, viewsets.ModelViewSet):
    """WhatsApp sessions: one connected number each. Admins create, pair, pace and remove them;
    everyone in the organization reads their status and history."""

    queryset = WhatsAppSession.objects.select_related("default_assignee")
    serializer_class = SessionSerializer
    lookup_field = "uuid"
    lookup_url_kwarg = "uuid"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    ordering = ("name", "id")
    write_role = "admin"
    action_roles = {"qr": "admin", "webhook": "admin", "status": "viewer", "history": "viewer"}

    def get_object_in_tenant(self, value):
        try:
            key = uuid.UUID(str(value))
        except ValueError:
            raise exceptions.NotFound() from None
        obj = self.get_queryset().filter(uuid=key).first()
        if obj is None:
            raise exceptions.NotFound()
        return obj

    def _done(self, session: WhatsAppSession, code: int = status.HTTP_200_OK) -> Response:
        session.refresh_from_db()
        return Response(SessionSerializer(session).data, status=code)

    @extend_schema(request=SessionWriteSerializer, responses={201: SessionSerializer})
    def create(self, request):
        data = SessionWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        session = services.session_create(
            organization=request.organization, actor=request.user, data=data.validated_data
        )
        return self._done(session, status.HTTP_201_CREATED)

    @extend_schema(request=SessionUpdateSerializer, responses=SessionSerializer)
    def partial_update(self, request, uuid=None):
        data = SessionUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        session = services.session_update(
            organization=request.organization,
            session=self.get_object(),
            actor=request.user,
            data=data.validated_data,
        )
        return self._done(session)

    def perform_destroy(self, instance):
        services.session_delete(
            organization=self.request.organization, session=instance, actor=self.request.user
        )

    @extend_schema(request=None, responses=SessionSerializer)
    @action(detail=True, methods=["post"])
    def connect(self, request, uuid=None):
        session = services.session_connect(
            organization=request.organization, session=self.get_object(), actor=request.user
        )
        return self._done(session)

    @extend_schema(request=PairingCodeSerializer, responses=PairingCodeResultSerializer)
    @action(detail=True, methods=["post"], url_path="pairing-code")
    def pairing_code(self, request, uuid=None):
        data = PairingCodeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        session = services.session_pairing_code(
            organization=request.organization,
            session=self.get_object(),
            actor=request.user,
            phone_number=data.validated_data["phone_number"],
        )
        return Response({**SessionSerializer(session).data, "pairing_code": session.pairing_code})

    @extend_schema(request=None, responses=SessionSerializer)
    @action(detail=True, methods=["post"])
    def disconnect(self, request, uuid=None):
        session = services.session_disconnect(
            organization=request.organization, session=self.get_object(), actor=request.user
        )
        return self._done(session)

    @extend_schema(request=None, responses=SessionSerializer)
    @action(detail=True, methods=["post"])
    def logout(self, request, uuid=None):
        session = services.session_logout(
            organization=request.organization, session=self.get_object(), actor=request.user
        )
        return self._done(session)

    @extend_schema(responses=SessionSerializer)
    @action(detail=True, methods=["get"])
    def status(self, request, uuid=None):
        return Response(SessionSerializer(self.get_object()).data)

    @extend_schema(responses=SessionEventSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="events", pagination_class=None)
    def history(self, request, uuid=None):
        session = self.get_object()
        rows = (
            scoped(SessionEvent, request.organization)
            .filter(session=session)
            .select_related("actor")[:200]
        )
        return Response(SessionEventSerializer(rows, many=True).data)

    @extend_schema(responses={(200, "application/json"): QrSerializer, (200, "image/png"): bytes})
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, PNGRenderer])
    def qr(self, request, uuid=None):
        """The QR code to scan: JSON (a PNG data URI and its expiry; ``image`` null when the
        session is not waiting for a scan) or, with ``?format=png``, the image (404 then)."""
        session = self.get_object()
        waiting = session.status == "qr" and bool(session.qr_text or session.qr_image)
        if not waiting:
            if request.accepted_renderer.format == "png":
                raise exceptions.NotFound("This session is not waiting for a scan.")
            return Response({"session": str(session.uuid), "status": session.status, "image": None})
        if request.accepted_renderer.format == "png":
            if session.qr_text:
                image = qr.png(session.qr_text)
            else:
                image = base64.b64decode(session.qr_image.split(",", 1)[-1])
            return Response(image, content_type="image/png")
        return Response(services.qr_data(session))

    @extend_schema(request=None, responses=WebhookSerializer)
    @action(detail=True, methods=["get", "post"])
    def webhook(self, request, uuid=None):
        """The URL and secret to paste into the provider; POST rotates the secret."""
        session = self.get_object()
        if request.method == "POST":
            secret = services.webhook_secret_rotate(
                organization=request.organization, session=session, actor=request.user
            )
        else:
            secret = services.webhook_secret_of(session)
        return Response(
            {
                "url": services.webhook_url(session),
                "secret": secret,
                "secret_header": "X-Parley-Secret",
            }
        )

    @extend_schema(request=SimulateSerializer, responses={202: SimulateResultSerializer})
    @action(detail=True, methods=["post"])
    def simulate(self, request, uuid=None):
        """Simulator sessions only: the phone scans, a message arrives, or a fault happens."""
        data = SimulateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        session = self.get_object()
        extra = {}
        if values["action"] == "scan":
            simulation.simulate_scan(session=session)
        elif values["action"] == "inbound":
            extra["message_id"] = simulation.simulate_inbound(
                session=session,
                phone=values.get("phone", ""),
                text=values.get("text", ""),
                name=values.get("name", ""),
            )
        else:
            simulation.simulate_fault(session=session, fault=values.get("fault") or "none")
        return Response(
            {**SessionSerializer(session).data, **extra}, status=status.HTTP_202_ACCEPTED
        )
