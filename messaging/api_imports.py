"""The API of imports (CSV or .xlsx) and exports: upload, mapping, preview, start, status, error
report, cancel; a streamed export of the filtered address book (CSV or .xlsx). Thin: validate, one
service call, serialize."""

from __future__ import annotations

import json

from django.core.files.storage import default_storage
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, parsers, renderers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from accounts.tenancy import TenantAPIMixin
from crm.api import StrictSerializer
from crm.uploads import accepts_uploads
from messaging.models import Contact, ImportJob
from messaging.selectors import contact_filters_from_params
from messaging.services import exports
from messaging.services import imports as services


class CsvRenderer(renderers.BaseRenderer):
    """Lets clients ask for ``text/csv``: the views stream the CSV themselves, and an error is the
    JSON error body (``crm.api.exception_handler`` answers it in JSON)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return json.dumps(data).encode() if data is not None else b""


class XlsxRenderer(CsvRenderer):
    """Lets clients ask for an Excel workbook (``?format=xlsx`` or the media type in Accept)."""

    media_type = exports.XLSX_CONTENT_TYPE
    format = "xlsx"
    charset = None


# --- Serializers --------------------------------------------------------------------------------


class ImportJobSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    has_error_report = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "state",
            "original_name",
            "size_bytes",
            "encoding",
            "delimiter",
            "headers",
            "mapping",
            "options",
            "total_rows",
            "processed_rows",
            "progress",
            "created_count",
            "updated_count",
            "error_count",
            "has_error_report",
            "failure",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_progress(self, obj) -> float | None:
        """Share of rows handled, 0–1 (null until the rows are counted)."""
        if obj.state == "done":
            return 1.0
        if not obj.total_rows:
            return None
        return round(min(1.0, obj.processed_rows / obj.total_rows), 4)

    def get_has_error_report(self, obj) -> bool:
        return bool(obj.error_report)


class UploadSerializer(StrictSerializer):
    file = serializers.FileField(allow_empty_file=False)
    encoding = serializers.CharField(required=False, allow_blank=True, max_length=20)


class OptionsSerializer(StrictSerializer):
    overwrite = serializers.BooleanField(required=False, default=False)
    add_tags = serializers.ListField(
        child=serializers.CharField(max_length=60), required=False, default=list, max_length=50
    )
    add_groups = serializers.ListField(
        child=serializers.CharField(max_length=120), required=False, default=list, max_length=50
    )


class MappingSerializer(StrictSerializer):
    mapping = serializers.DictField(child=serializers.CharField(allow_blank=True, max_length=100))
    options = OptionsSerializer(required=False)


# --- Views --------------------------------------------------------------------------------------


class ImportListView(TenantAPIMixin, GenericAPIView):
    """``GET`` the organization's imports, newest first; ``POST`` a CSV (multipart: ``file``,
    optional ``encoding``) to start a draft with a proposed mapping."""

    queryset = ImportJob.objects.all()
    serializer_class = ImportJobSerializer
    parser_classes = [parsers.MultiPartParser]  # this view only: the upload
    ordering = "-id"

    @extend_schema(operation_id="imports_list", responses=ImportJobSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ImportJobSerializer(page, many=True).data)

    @extend_schema(request=UploadSerializer, responses={201: ImportJobSerializer})
    @accepts_uploads("PARLEY_IMPORT_MAX_BYTES")
    def post(self, request):
        data = UploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        job = services.import_upload(
            organization=request.organization,
            actor=request.user,
            fileobj=upload,
            filename=upload.name,
            encoding=data.validated_data.get("encoding") or None,
        )
        return Response(ImportJobSerializer(job).data, status=status.HTTP_201_CREATED)


class ImportViewSet(
    TenantAPIMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """One import: its status, mapping, preview, start, error report; ``DELETE`` cancels a draft."""

    queryset = ImportJob.objects.all()
    serializer_class = ImportJobSerializer

    def perform_destroy(self, instance):
        services.import_cancel(organization=self.request.organization, job=instance)

    @extend_schema(request=MappingSerializer, responses={200: ImportJobSerializer})
    @action(detail=True, methods=["post"])
    def mapping(self, request, pk=None):
        """Which contact field each CSV column fills (``""`` skips it), and the options; drafts
        only. The organization's next file gets the same mapping proposed."""
        data = MappingSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = services.import_set_mapping(
            organization=request.organization,
            job=self.get_object(),
            mapping=data.validated_data["mapping"],
            options=data.validated_data.get("options") or {},
        )
        return Response(ImportJobSerializer(job).data)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def preview(self, request, pk=None):
        """The first rows as they would be imported with the current mapping, with each row's
        problems."""
        return Response(
            services.import_preview(organization=request.organization, job=self.get_object())
        )

    @extend_schema(request=None, responses={202: ImportJobSerializer})
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        """Run the draft in the background (its mapping must be valid); follow it on the import."""
        job = services.import_start(
            organization=request.organization, job=self.get_object(), actor=request.user
        )
        return Response(ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.BINARY, description="CSV")})
    @action(
        detail=True,
        methods=["get"],
        renderer_classes=[renderers.JSONRenderer, CsvRenderer],
    )
    def errors(self, request, pk=None):
        """The per-row error report: row, reason, then the row's original cells."""
        return error_report_response(request, self.get_object())


def error_report_response(request, job: ImportJob):
    """The stored report streamed; before there is one, just its header row."""
    filename = f"import-{job.pk}-errors.csv"
    if not job.error_report:
        return exports.csv_response(request, iter([["row", "reason", *job.headers]]), filename)
    stored = default_storage.open(job.error_report.name, "rb")
    response = exports.CsvStreamingResponse(
        stored.chunks() if hasattr(stored, "chunks") else iter(lambda: stored.read(65536), b""),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


class ContactExportView(TenantAPIMixin, GenericAPIView):
    """The contacts matching the contact list's filters (the same query parameters), streamed as
    a file: CSV by default (UTF-8 with a BOM; a cell a spreadsheet would run as a formula starts
    with `'`), or with `format=xlsx` an Excel workbook whose every cell is text. Both import back
    unchanged through `/imports/`."""

    queryset = Contact.objects.all()
    pagination_class = None

    renderer_classes = [renderers.JSONRenderer, CsvRenderer, XlsxRenderer]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "format", str, enum=["csv", "xlsx"], description="The file's format (csv)"
            )
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="The contacts"),
            (200, exports.XLSX_CONTENT_TYPE): OpenApiResponse(
                OpenApiTypes.BINARY, description="The contacts"
            ),
        },
    )
    def get(self, request):
        filters = contact_filters_from_params(request.query_params)
        rows = exports.contacts_export_rows(organization=request.organization, filters=filters)
        if getattr(request.accepted_renderer, "format", None) == "xlsx":
            return exports.xlsx_response(request, rows, "contacts.xlsx")
        return exports.csv_response(request, rows, "contacts.csv")


router = SimpleRouter(trailing_slash=True)
router.register("imports", ImportViewSet, basename="import")  # no list/create: ImportListView

urlpatterns = [
    path("contacts/export/", ContactExportView.as_view(), name="api-contacts-export"),
    path("imports/", ImportListView.as_view(), name="api-imports"),
    *router.urls,
]
