"""The bulk-actions API: start a job over ids or a filter, follow it, undo it.

``POST /api/v1/contacts/bulk/`` → 202 with the job; ``GET /api/v1/bulk-jobs/`` and
``/bulk-jobs/{id}/``; ``POST /api/v1/bulk-jobs/{id}/undo/``. Thin: a strict serializer, one service
call, a read serializer.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.tenancy import TenantAPIMixin
from crm.api import StrictSerializer
from messaging.models import BulkAction, BulkJob, ContactStatus
from messaging.services import bulk as services


@extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string"}]})
class IdOrNameField(serializers.Field):
    """A JSON number (an id) or a string (a name)."""

    def __init__(self, *, max_length: int, **kwargs):
        self.max_length = max_length
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, str)):
            raise serializers.ValidationError("Give an id (a number) or a name (text).")
        if isinstance(data, str) and not (0 < len(data.strip()) <= self.max_length):
            raise serializers.ValidationError(f"A name of 1 to {self.max_length} characters.")
        return data

    def to_representation(self, value):
        return value


class BulkParamsSerializer(StrictSerializer):
    tag = IdOrNameField(
        max_length=60, required=False, help_text="tag/untag: a tag id, or a name (tag creates it)"
    )
    group = IdOrNameField(
        max_length=120,
        required=False,
        help_text="group_add/group_remove: a group id, or a name (group_add creates it)",
    )
    status = serializers.ChoiceField(choices=ContactStatus.choices, required=False)
    source = serializers.CharField(max_length=40, required=False, help_text="opt_out: why")


class BulkStartSerializer(StrictSerializer):
    action = serializers.ChoiceField(choices=BulkAction.choices)
    params = BulkParamsSerializer(required=False)
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        max_length=services.MAX_IDS,
        help_text="Contacts to act on (ids of other organizations are ignored).",
    )
    filters = serializers.DictField(
        required=False,
        help_text="Or every contact matching the contacts-list filters: q, tag, group, favorite, "
        "status, opted_out, cf.<key>.",
    )


class BulkJobSerializer(serializers.ModelSerializer):
    created_by = serializers.EmailField(
        source="created_by.email", read_only=True, default=None, allow_null=True
    )
    selection = serializers.SerializerMethodField()
    undoable = serializers.SerializerMethodField()

    class Meta:
        model = BulkJob
        fields = [
            "id",
            "action",
            "params",
            "selection",
            "state",
            "total",
            "processed",
            "affected",
            "failure",
            "undoable",
            "created_by",
            "created_at",
            "finished_at",
            "undone_at",
        ]
        read_only_fields = fields

    def get_selection(self, obj) -> dict:
        """The filter, or how many ids were given (not the ids: they can be thousands)."""
        if "ids" in obj.selection:
            return {"ids": len(obj.selection["ids"])}
        return {"filters": obj.selection.get("filters", {})}

    def get_undoable(self, obj) -> bool:
        return services.bulk_undoable(obj)


class ContactBulkView(TenantAPIMixin, generics.GenericAPIView):
    """Start a bulk action over contacts chosen by ``ids`` or by ``filters``; runs in the background."""

    queryset = BulkJob.objects.all()
    serializer_class = BulkJobSerializer
    write_role = "agent"

    @extend_schema(request=BulkStartSerializer, responses={202: BulkJobSerializer})
    def post(self, request):
        data = BulkStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        given = data.validated_data
        filters = given.get("filters")
        job = services.bulk_start(
            organization=request.organization,
            actor=request.user,
            action=given["action"],
            params=given.get("params") or {},
            ids=given.get("ids"),
            filters=services.bulk_filters_clean(filters) if filters is not None else None,
        )
        return Response(BulkJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class BulkJobViewSet(
    TenantAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Bulk jobs, newest first: state, counts, and whether they can still be undone."""

    queryset = BulkJob.objects.select_related("created_by")
    serializer_class = BulkJobSerializer
    write_role = "agent"
    ordering = ("-created_at", "-id")

    @extend_schema(request=None, responses=BulkJobSerializer)
    @action(detail=True, methods=["post"])
    def undo(self, request, pk=None):
        """Reverse a finished tag/untag/group job, once: only the contacts it changed."""
        job = services.bulk_undo(
            organization=request.organization, job=self.get_object(), actor=request.user
        )
        return Response(BulkJobSerializer(job).data)


_jobs = BulkJobViewSet.as_view({"get": "list"})
_job = BulkJobViewSet.as_view({"get": "retrieve"})
_undo = BulkJobViewSet.as_view({"post": "undo"})

# Mounted in crm/api_urls.py before the router: ``contacts/bulk/`` would otherwise be read as the
# contact with id "bulk".
urlpatterns = [
    path("contacts/bulk/", ContactBulkView.as_view(), name="api-contacts-bulk"),
    path("bulk-jobs/", _jobs, name="bulk-job-list"),
    path("bulk-jobs/<str:pk>/", _job, name="bulk-job-detail"),
    path("bulk-jobs/<str:pk>/undo/", _undo, name="bulk-job-undo"),
]
