"""The sessions API: ``/api/v1/sessions/<uuid>/`` and its actions. Credentials are write-only:
responses say which are set, never their values. Admins manage sessions; QR codes and the webhook
secret are for admins too; everyone in the organization reads status and history."""

from __future__ import annotations

import base64
import uuid

from drf_spectacular.utils import extend_schema
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


class SessionWriteSerializer(StrictSerializer):
    name = serializers.CharField(max_length=80)
    provider = serializers.ChoiceField(choices=providers.names())
    colour = serializers.CharField(max_length=7, required=False)
    credentials = serializers.DictField(
        child=serializers.CharField(allow_blank=True), required=False
    )
    settings = serializers.DictField(required=False)
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


class SessionEventSerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()

    class Meta:
        model = SessionEvent
        fields = ["from_status", "to_status", "reason", "actor", "created_at"]
        read_only_fields = fields

    def get_actor(self, obj) -> str | None:
        return obj.actor.email if obj.actor_id else None


class SessionViewSet(TenantAPIMixin, viewsets.ModelViewSet):
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

    @extend_schema(request=PairingCodeSerializer, responses=SessionSerializer)
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
    @action(detail=True, methods=["get"], url_path="events")
    def history(self, request, uuid=None):
        session = self.get_object()
        rows = (
            scoped(SessionEvent, request.organization)
            .filter(session=session)
            .select_related("actor")[:200]
        )
        return Response(SessionEventSerializer(rows, many=True).data)

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

    @extend_schema(request=SimulateSerializer, responses=SessionSerializer)
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
