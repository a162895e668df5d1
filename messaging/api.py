"""The address book API: contacts (search, merge, erase, opt-out), notes, identities, tags, groups,
custom fields. Thin: a strict serializer, one service call, a read serializer."""

from __future__ import annotations

from django.db.models import Count, Prefetch
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts.tenancy import TenantAPIMixin, scoped
from crm.api import StrictSerializer
from crm.errors import ApplicationError, NotFound
from messaging.models import (
    Contact,
    ContactGroup,
    ContactGroupMember,
    ContactIdentity,
    ContactNote,
    ContactStatus,
    ContactTag,
    CustomField,
    CustomFieldType,
    IdentityKind,
    Tag,
)
from messaging.selectors import contact_filters_from_params, contact_list
from messaging.services import contacts as services

# --- Serializers --------------------------------------------------------------------------------


class IdentitySerializer(serializers.ModelSerializer):
    class Meta:
        model = ContactIdentity
        fields = ["id", "contact", "kind", "value", "created_at"]
        read_only_fields = fields


class ContactSerializer(serializers.ModelSerializer):
    phone = serializers.SerializerMethodField()
    email = serializers.CharField(  # not an EmailField: "" is a contact without one
        read_only=True, help_text="An email address, or empty when none is known"
    )
    aliases = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField()
    groups = serializers.SerializerMethodField()
    identities = serializers.SerializerMethodField()

    class Meta:
        model = Contact
        fields = [
            "id",
            "display_name",
            "name",
            "notify_name",
            "verified_name",
            "phone",
            "email",
            "favorite",
            "status",
            "opted_out_at",
            "opted_out_source",
            "custom_fields",
            "aliases",
            "tags",
            "groups",
            "identities",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_phone(self, obj) -> str | None:
        return f"+{obj.phone}" if obj.phone else None

    def get_aliases(self, obj) -> list[str]:
        return [a.alias for a in obj.aliases.all()]

    def get_tags(self, obj) -> list[str]:
        return [ct.tag.name for ct in obj.contact_tags.all()]

    def get_groups(self, obj) -> list[dict]:
        return [{"id": m.group_id, "name": m.group.name} for m in obj.group_memberships.all()]

    def get_identities(self, obj) -> list[dict]:
        return [{"id": i.id, "kind": i.kind, "value": i.value} for i in obj.identities.all()]


class IdentityInputSerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=IdentityKind.choices)
    value = serializers.CharField(max_length=128)


class ContactWriteSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    notify_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    verified_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=40, required=False, allow_blank=True, allow_null=True)
    email = serializers.CharField(max_length=254, required=False, allow_blank=True)
    favorite = serializers.BooleanField(required=False)
    status = serializers.ChoiceField(choices=ContactStatus.choices, required=False)
    custom_fields = serializers.DictField(required=False)
    aliases = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, max_length=50
    )
    tags = serializers.ListField(
        child=serializers.CharField(max_length=60), required=False, max_length=100
    )
    groups = serializers.ListField(
        child=serializers.CharField(max_length=120), required=False, max_length=100
    )
    identities = IdentityInputSerializer(many=True, required=False)


class MergeSerializer(StrictSerializer):
    other_id = serializers.IntegerField(
        help_text="The contact merged into this one (it disappears)."
    )


class EraseSerializer(StrictSerializer):
    confirm = serializers.BooleanField(help_text="Must be true: erasure cannot be undone.")


class OptOutSerializer(StrictSerializer):
    source = serializers.CharField(max_length=40, default="api")


class NoteSerializer(serializers.ModelSerializer):
    author = serializers.EmailField(
        source="author.email", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = ContactNote
        fields = ["id", "contact", "text", "author", "created_at"]
        read_only_fields = fields


class NoteCreateSerializer(StrictSerializer):
    contact = serializers.IntegerField()
    text = serializers.CharField(max_length=10_000)


class IdentityCreateSerializer(StrictSerializer):
    contact = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=IdentityKind.choices)
    value = serializers.CharField(max_length=128)


class TagSerializer(serializers.ModelSerializer):
    contact_count = serializers.IntegerField(read_only=True, help_text="Contacts with this tag")

    class Meta:
        model = Tag
        fields = ["id", "name", "color", "contact_count", "created_at"]
        read_only_fields = fields


class TagWriteSerializer(StrictSerializer):
    name = serializers.CharField(max_length=60, required=False)
    color = serializers.RegexField(r"^#[0-9a-fA-F]{6}$", required=False)


class GroupSerializer(serializers.ModelSerializer):
    member_count = serializers.IntegerField(read_only=True, help_text="Contacts in this group")

    class Meta:
        model = ContactGroup
        fields = ["id", "name", "description", "member_count", "created_at"]
        read_only_fields = fields


class GroupWriteSerializer(StrictSerializer):
    name = serializers.CharField(max_length=120, required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class GroupMembersSerializer(StrictSerializer):
    contact_ids = serializers.ListField(child=serializers.IntegerField(), max_length=10_000)


class CustomFieldSerializer(serializers.ModelSerializer):
    class Meta:
        model = CustomField
        fields = ["id", "key", "label", "type", "choices", "created_at"]
        read_only_fields = fields


class CustomFieldCreateSerializer(StrictSerializer):
    key = serializers.SlugField(max_length=50)
    label = serializers.CharField(max_length=100)
    type = serializers.ChoiceField(choices=CustomFieldType.choices)
    choices = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, max_length=200
    )


class CustomFieldUpdateSerializer(StrictSerializer):
    label = serializers.CharField(max_length=100, required=False)
    choices = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, max_length=200
    )


# --- Views --------------------------------------------------------------------------------------


def _contact_queryset(queryset):
    return queryset.prefetch_related(
        "aliases",
        "identities",
        Prefetch("contact_tags", queryset=ContactTag.objects.select_related("tag")),
        Prefetch("group_memberships", queryset=ContactGroupMember.objects.select_related("group")),
    )


def contact_filters_from_query(request) -> dict:
    try:
        return contact_filters_from_params(request.query_params)
    except ApplicationError as exc:
        raise ValidationError(exc.fields) from None


CONTACT_FILTER_PARAMS = [
    OpenApiParameter(
        "q",
        str,
        description="Search by name, alias, phone (or its last 4+ digits), identity, email",
    ),
    OpenApiParameter("tag", int, many=True),
    OpenApiParameter("group", int, many=True),
    OpenApiParameter("favorite", bool),
    OpenApiParameter("status", str, enum=ContactStatus.values),
    OpenApiParameter("opted_out", bool),
]


class ContactViewSet(TenantAPIMixin, viewsets.ModelViewSet):
    """Contacts. ``?q=`` searches and ranks (exact number or identity, then name/alias prefix,
    then contains); results are cursor-paginated by rank or name."""

    queryset = Contact.objects.all()
    serializer_class = ContactSerializer
    write_role = "agent"
    action_roles = {"erase": "admin"}
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    @property
    def ordering(self):
        if self.action == "list" and self.request.query_params.get("q", "").strip():
            return ("rank", "display_name", "id")
        return ("display_name", "id")

    def get_queryset(self):
        if self.action == "list":
            return _contact_queryset(
                contact_list(
                    organization=self.request.organization,
                    **contact_filters_from_query(self.request),
                )
            )
        return _contact_queryset(scoped(Contact, self.request.organization))

    @extend_schema(parameters=CONTACT_FILTER_PARAMS)
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=ContactWriteSerializer, responses={201: ContactSerializer})
    def create(self, request):
        data = ContactWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        contact = services.contact_create(
            organization=request.organization, data=data.validated_data, actor=request.user
        )
        return Response(self.read_back(contact), status=status.HTTP_201_CREATED)

    @extend_schema(request=ContactWriteSerializer, responses=ContactSerializer)
    def partial_update(self, request, pk=None):
        data = ContactWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        contact = services.contact_update(
            organization=request.organization,
            contact=self.get_object(),
            data=data.validated_data,
            actor=request.user,
        )
        return Response(self.read_back(contact))

    def update(self, request, *args, **kwargs):
        return self.partial_update(request, *args, **kwargs)

    def perform_destroy(self, instance):
        services.contact_delete(
            organization=self.request.organization, contact=instance, actor=self.request.user
        )

    @extend_schema(request=MergeSerializer, responses=ContactSerializer)
    @action(detail=True, methods=["post"])
    def merge(self, request, pk=None):
        """Merge another contact into this one: its identities, aliases, tags, groups and notes move here."""
        data = MergeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        other = (
            scoped(Contact, request.organization).filter(pk=data.validated_data["other_id"]).first()
        )
        if other is None:
            raise NotFound("No such contact.", fields={"other_id": ["No such contact."]})
        contact = services.contact_merge(
            organization=request.organization,
            survivor=self.get_object(),
            other=other,
            actor=request.user,
        )
        return Response(self.read_back(contact))

    @extend_schema(request=EraseSerializer, responses={204: None})
    @action(detail=True, methods=["post"])
    def erase(self, request, pk=None):
        """Forget this person: the contact and everything about them; the audit log keeps only the fact."""
        data = EraseSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if request.data.get("confirm") is not True:  # the JSON value true, not "yes" or 1
            raise ValidationError({"confirm": ["Must be true."]})
        services.contact_erase(
            organization=request.organization, contact=self.get_object(), actor=request.user
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=OptOutSerializer, responses=ContactSerializer)
    @action(detail=True, methods=["post"], url_path="opt-out")
    def opt_out(self, request, pk=None):
        """The contact asked not to be messaged (``source`` says how): campaigns skip them."""
        data = OptOutSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        contact = services.contact_opt_out(
            organization=request.organization,
            contact=self.get_object(),
            source=data.validated_data["source"],
        )
        return Response(self.read_back(contact))

    @extend_schema(request=None, responses=ContactSerializer)
    @action(detail=True, methods=["post"], url_path="opt-in")
    def opt_in(self, request, pk=None):
        """Undo an opt-out: campaigns may message the contact again."""
        contact = services.contact_opt_in(
            organization=request.organization, contact=self.get_object()
        )
        return Response(self.read_back(contact))


def _contact_of(request, contact_id: int) -> Contact:
    contact = scoped(Contact, request.organization).filter(pk=contact_id).first()
    if contact is None:
        raise NotFound("No such contact.", fields={"contact": ["No such contact."]})
    return contact


class NoteViewSet(
    TenantAPIMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Notes on contacts (``?contact=<id>`` to list one contact's)."""

    queryset = ContactNote.objects.select_related("author")
    serializer_class = NoteSerializer
    filterset_fields = ["contact"]

    @extend_schema(request=NoteCreateSerializer, responses={201: NoteSerializer})
    def create(self, request):
        data = NoteCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        note = services.note_add(
            organization=request.organization,
            contact=_contact_of(request, data.validated_data["contact"]),
            text=data.validated_data["text"],
            author=request.user,
        )
        return Response(NoteSerializer(note).data, status=status.HTTP_201_CREATED)


class IdentityViewSet(
    TenantAPIMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The identities (phone, jid, lid, wa_id, bsuid) contacts are known by; unique per organization."""

    queryset = ContactIdentity.objects.all()
    serializer_class = IdentitySerializer
    filterset_fields = ["contact", "kind", "value"]

    @extend_schema(request=IdentityCreateSerializer, responses={201: IdentitySerializer})
    def create(self, request):
        data = IdentityCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        contact = _contact_of(request, data.validated_data["contact"])
        pair = {"kind": data.validated_data["kind"], "value": data.validated_data["value"]}
        services.contact_update(
            organization=request.organization,
            contact=contact,
            data={"identities": [pair]},
            actor=request.user,
        )
        identity = (
            scoped(ContactIdentity, request.organization)
            .filter(contact=contact)
            .order_by("-id")
            .first()
        )
        return Response(IdentitySerializer(identity).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        services.identity_remove(organization=self.request.organization, identity=instance)


class TagViewSet(TenantAPIMixin, viewsets.ModelViewSet):
    """Tags on contacts, with how many contacts carry each; tagging is done on the contact (or in
    bulk)."""

    queryset = Tag.objects.annotate(contact_count=Count("contact_tags"))
    serializer_class = TagSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    ordering = ("name", "id")

    @extend_schema(request=TagWriteSerializer, responses={201: TagSerializer})
    def create(self, request):
        data = TagWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if "name" not in data.validated_data:
            raise ValidationError({"name": ["This field is required."]})
        tag = services.tag_create(organization=request.organization, **data.validated_data)
        return Response(self.read_back(tag), status=status.HTTP_201_CREATED)

    @extend_schema(request=TagWriteSerializer, responses=TagSerializer)
    def partial_update(self, request, pk=None):
        data = TagWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        tag = services.tag_update(
            organization=request.organization, tag=self.get_object(), **data.validated_data
        )
        return Response(self.read_back(tag))

    def perform_destroy(self, instance):
        services.tag_delete(organization=self.request.organization, tag=instance)


class GroupViewSet(TenantAPIMixin, viewsets.ModelViewSet):
    """Contact groups; members are added and removed by id lists."""

    queryset = ContactGroup.objects.annotate(member_count=Count("members"))
    serializer_class = GroupSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    ordering = ("name", "id")

    @extend_schema(request=GroupWriteSerializer, responses={201: GroupSerializer})
    def create(self, request):
        data = GroupWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if "name" not in data.validated_data:
            raise ValidationError({"name": ["This field is required."]})
        group = services.group_create(organization=request.organization, **data.validated_data)
        return Response(self.read_back(group), status=status.HTTP_201_CREATED)

    @extend_schema(request=GroupWriteSerializer, responses=GroupSerializer)
    def partial_update(self, request, pk=None):
        data = GroupWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        group = services.group_update(
            organization=request.organization, group=self.get_object(), **data.validated_data
        )
        return Response(self.read_back(group))

    def perform_destroy(self, instance):
        services.group_delete(organization=self.request.organization, group=instance)

    @extend_schema(
        request=GroupMembersSerializer,
        responses=inline_serializer("GroupMembersAdded", {"added": serializers.IntegerField()}),
    )
    @action(detail=True, methods=["post"], url_path="add-members")
    def add_members(self, request, pk=None):
        """Add contacts by id; ``added`` counts those not already in the group (ids of unknown
        contacts are skipped)."""
        data = GroupMembersSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        added = services.group_add_contacts(
            organization=request.organization,
            group=self.get_object(),
            contact_ids=data.validated_data["contact_ids"],
        )
        return Response({"added": added})

    @extend_schema(
        request=GroupMembersSerializer,
        responses=inline_serializer("GroupMembersRemoved", {"removed": serializers.IntegerField()}),
    )
    @action(detail=True, methods=["post"], url_path="remove-members")
    def remove_members(self, request, pk=None):
        """Remove contacts by id; ``removed`` counts those that were in the group."""
        data = GroupMembersSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        removed = services.group_remove_contacts(
            organization=request.organization,
            group=self.get_object(),
            contact_ids=data.validated_data["contact_ids"],
        )
        return Response({"removed": removed})


class CustomFieldViewSet(TenantAPIMixin, viewsets.ModelViewSet):
    """Typed custom fields for contacts. Defining fields is an admin's job."""

    queryset = CustomField.objects.all()
    serializer_class = CustomFieldSerializer
    write_role = "admin"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    ordering = ("label", "id")

    @extend_schema(request=CustomFieldCreateSerializer, responses={201: CustomFieldSerializer})
    def create(self, request):
        data = CustomFieldCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        field = services.custom_field_define(
            organization=request.organization, **data.validated_data
        )
        return Response(CustomFieldSerializer(field).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=CustomFieldUpdateSerializer, responses=CustomFieldSerializer)
    def partial_update(self, request, pk=None):
        data = CustomFieldUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        field = services.custom_field_update(
            organization=request.organization, field=self.get_object(), **data.validated_data
        )
        return Response(CustomFieldSerializer(field).data)

    def perform_destroy(self, instance):
        services.custom_field_delete(organization=self.request.organization, field=instance)
