"""The accounts API: the current organization, members, invitations, API keys and the audit log.

Thin: validate with a strict serializer, call one service, serialize the result.
"""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from accounts import services
from accounts.models import ApiKey, AuditEvent, Invitation, Membership, Organization, Role
from accounts.tenancy import TenantAPIMixin, scoped
from crm.api import StrictSerializer
from crm.errors import NotFound

# --- Serializers --------------------------------------------------------------------------------


class OrganizationSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "timezone", "default_country", "created_at", "role"]
        read_only_fields = fields

    def get_role(self, obj) -> str:
        return self.context["request"].role


class OrganizationUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=120, required=False)
    timezone = serializers.CharField(max_length=64, required=False)
    default_country = serializers.CharField(min_length=2, max_length=2, required=False)


class OrganizationDeleteSerializer(StrictSerializer):
    confirm = serializers.CharField(help_text="The organization's slug, typed to confirm.")


class TransferSerializer(StrictSerializer):
    member_id = serializers.IntegerField()


class MemberSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)
    name = serializers.CharField(source="user.name", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "email", "name", "role", "is_active", "created_at"]
        read_only_fields = fields


class MemberUpdateSerializer(StrictSerializer):
    role = serializers.ChoiceField(choices=Role.choices)


class InvitationSerializer(serializers.ModelSerializer):
    state = serializers.CharField(read_only=True)
    invited_by = serializers.EmailField(
        source="invited_by.email", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = Invitation
        fields = [
            "id",
            "email",
            "role",
            "state",
            "invited_by",
            "created_at",
            "expires_at",
            "accepted_at",
        ]
        read_only_fields = fields


class InvitationCreateSerializer(StrictSerializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices, default=Role.AGENT)


class ApiKeySerializer(serializers.ModelSerializer):
    created_by = serializers.EmailField(
        source="created_by.email", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "role",
            "created_by",
            "created_at",
            "last_used_at",
            "revoked_at",
        ]
        read_only_fields = fields


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The raw key. Shown once, never again.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class ApiKeyCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100)
    role = serializers.ChoiceField(choices=Role.choices, default=Role.AGENT)


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label", read_only=True)
    api_key = serializers.CharField(
        source="api_key.prefix", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "action",
            "actor",
            "api_key",
            "target_type",
            "target_id",
            "target_label",
            "data",
            "ip_address",
            "created_at",
        ]
        read_only_fields = fields


# --- Views --------------------------------------------------------------------------------------


def _acting(request) -> dict:
    """Who acts: the person, and the key they act through (which bounds their role)."""
    return {"actor": request.user, "via_key": request.tenant.api_key}


class CurrentOrganizationView(TenantAPIMixin, GenericAPIView):
    """The organization this request acts in (the API key's, or the one named by X-Organization)."""

    serializer_class = OrganizationSerializer
    read_role = "viewer"
    write_role = "admin"

    def get_queryset(self):
        return Organization.objects.filter(pk=self.request.organization.pk)

    def get(self, request):
        return Response(
            OrganizationSerializer(request.organization, context={"request": request}).data
        )

    @extend_schema(request=OrganizationUpdateSerializer, responses=OrganizationSerializer)
    def patch(self, request):
        data = OrganizationUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        organization = services.organization_update(
            organization=request.organization, **_acting(request), data=data.validated_data
        )
        return Response(OrganizationSerializer(organization, context={"request": request}).data)

    @extend_schema(
        request=None,
        parameters=[
            OpenApiParameter("confirm", str, required=True, description="The organization's slug")
        ],
        responses={204: None},
    )
    def delete(self, request):
        """Delete the organization and all its data (owners only; confirm with its slug)."""
        # ?confirm= as documented (a DELETE's body is not portable); a JSON body still works
        query = request.query_params
        given = {"confirm": query["confirm"]} if "confirm" in query else request.data
        data = OrganizationDeleteSerializer(data=given)
        data.is_valid(raise_exception=True)
        services.organization_delete(
            organization=request.organization,
            **_acting(request),
            confirm=data.validated_data["confirm"],
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class TransferOwnershipView(TenantAPIMixin, GenericAPIView):
    """Make another active member the owner (owners only); the current owner becomes an admin."""

    serializer_class = TransferSerializer
    write_role = "owner"

    def get_queryset(self):
        return Organization.objects.none()

    @extend_schema(request=TransferSerializer, responses=MemberSerializer)
    def post(self, request):
        data = TransferSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = (
            scoped(Membership, request.organization)
            .filter(pk=data.validated_data["member_id"])
            .first()
        )
        if membership is None:
            raise NotFound("No such member.", fields={"member_id": ["No such member."]})
        membership = services.ownership_transfer(
            organization=request.organization, new_owner=membership, **_acting(request)
        )
        return Response(MemberSerializer(membership).data)


class MemberFilter(django_filters.FilterSet):
    class Meta:
        model = Membership
        fields = ["role", "is_active"]


class MemberViewSet(
    TenantAPIMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Members of the organization. Admins change roles, deactivate and remove members."""

    queryset = Membership.objects.select_related("user")
    serializer_class = MemberSerializer
    filterset_class = MemberFilter
    write_role = "admin"
    ordering = "id"

    @extend_schema(request=MemberUpdateSerializer, responses=MemberSerializer)
    def partial_update(self, request, pk=None):
        data = MemberUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.member_set_role(
            organization=request.organization,
            membership=self.get_object(),
            role=data.validated_data["role"],
            **_acting(request),
        )
        return Response(MemberSerializer(membership).data)

    def perform_destroy(self, instance):
        services.member_remove(
            organization=self.request.organization, membership=instance, **_acting(self.request)
        )

    @extend_schema(request=None, responses=MemberSerializer)
    @action(detail=True, methods=["post"])
    def deactivate(self, request, pk=None):
        """Suspend a member: they lose access to the organization and their API keys are revoked."""
        membership = services.member_deactivate(
            organization=request.organization, membership=self.get_object(), **_acting(request)
        )
        return Response(MemberSerializer(membership).data)

    @extend_schema(request=None, responses=MemberSerializer)
    @action(detail=True, methods=["post"])
    def reactivate(self, request, pk=None):
        """Give a suspended member access again (revoked keys stay revoked)."""
        membership = services.member_reactivate(
            organization=request.organization, membership=self.get_object(), **_acting(request)
        )
        return Response(MemberSerializer(membership).data)


class InvitationViewSet(
    TenantAPIMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Invitations by email. Deleting one revokes it (the row stays for the audit trail)."""

    queryset = Invitation.objects.select_related("invited_by")
    serializer_class = InvitationSerializer
    read_role = "admin"
    write_role = "admin"
    filterset_fields = ["email", "role"]

    @extend_schema(request=InvitationCreateSerializer, responses={201: InvitationSerializer})
    def create(self, request):
        data = InvitationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invitation, _token = services.invitation_create(
            organization=request.organization,
            **_acting(request),
            request_base=request.build_absolute_uri("/"),
            **data.validated_data,
        )
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, pk=None):
        services.invitation_revoke(
            organization=request.organization, invitation=self.get_object(), **_acting(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApiKeyViewSet(
    TenantAPIMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """API keys. The raw key is in the creation response only; deleting a key revokes it at once."""

    queryset = ApiKey.objects.select_related("created_by")
    serializer_class = ApiKeySerializer
    read_role = "admin"
    write_role = "admin"
    filterset_fields = ["role"]

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: ApiKeyCreatedSerializer})
    def create(self, request):
        data = ApiKeyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key, raw = services.api_key_create(
            organization=request.organization, **_acting(request), **data.validated_data
        )
        key.key = raw
        return Response(ApiKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, pk=None):
        services.api_key_revoke(
            organization=request.organization, api_key=self.get_object(), **_acting(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class AuditEventFilter(django_filters.FilterSet):
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    action = django_filters.CharFilter(field_name="action", lookup_expr="startswith")

    class Meta:
        model = AuditEvent
        fields = ["action", "since", "until"]


class AuditEventViewSet(TenantAPIMixin, viewsets.ReadOnlyModelViewSet):
    """The audit log: security-relevant actions, newest first. Admins only."""

    queryset = AuditEvent.objects.select_related("api_key")
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    read_role = "admin"


@extend_schema(
    responses=inline_serializer(
        "Me",
        {
            "email": serializers.EmailField(),
            "role": serializers.ChoiceField(choices=Role.choices),
            "organization": serializers.SlugField(help_text="The organization's slug"),
            "api_key": serializers.CharField(
                allow_null=True, help_text="The key's prefix; null when signed in"
            ),
        },
    )
)
class MeView(TenantAPIMixin, GenericAPIView):
    """Who is calling, and with which role (a key's role, or the member's)."""

    def get_queryset(self):
        return Organization.objects.none()

    def get(self, request):
        tenant = request.tenant
        return Response(
            {
                "email": request.user.email,
                "role": tenant.role,
                "organization": request.organization.slug,
                "api_key": tenant.api_key.prefix if tenant.api_key else None,
            }
        )
