"""Dashboard: the import wizard (upload → mapping with preview → live job page) and the export.

Every view goes through ``OrgViewMixin`` (viewer to see, agent to write); the job's page reads its
state from the database, so it survives a reload, and follows ``import.progress`` pushes live.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from accounts.models import role_at_least
from accounts.tenancy import OrgViewMixin, scoped
from crm.errors import ApplicationError
from crm.uploads import accepts_uploads
from messaging.api_imports import error_report_response
from messaging.models import CustomField, ImportJob, JobState
from messaging.selectors import contact_filters_from_params
from messaging.services import exports
from messaging.services import imports as services

FIELD_LABELS = [
    ("", gettext_lazy("— skip this column —")),
    ("name", gettext_lazy("Name")),
    ("notify_name", gettext_lazy("WhatsApp name")),
    ("verified_name", gettext_lazy("Verified business name")),
    ("phone", gettext_lazy("Phone")),
    ("phone_2", gettext_lazy("Other phones")),
    ("email", gettext_lazy("Email")),
    ("aliases", gettext_lazy("Aliases")),
    ("tags", gettext_lazy("Tags")),
    ("groups", gettext_lazy("Groups")),
    ("favorite", gettext_lazy("Favorite")),
    ("status", gettext_lazy("Status")),
    ("opted_out", gettext_lazy("Opted out")),
]
ENCODINGS = [
    ("", gettext_lazy("Detect automatically")),
    ("utf-8", "UTF-8"),
    ("utf-16", "UTF-16"),
    ("big5", gettext_lazy("Big5 (Traditional Chinese)")),
    ("gb18030", gettext_lazy("GB18030 (Simplified Chinese)")),
    ("shift_jis", "Shift JIS"),
    ("cp1252", gettext_lazy("Windows-1252 (Western)")),
]


class ImportUploadView(OrgViewMixin, View):
    """Upload a CSV or an Excel workbook (and the recent imports of the organization)."""

    def get(self, request, org_slug):
        return self.render(error=None)

    def render(self, error: str | None, status: int = 200):
        recent = scoped(ImportJob, self.request.organization).select_related("created_by")[:10]
        return render(
            self.request,
            "messaging/imports/upload.html",
            {
                "recent": recent,
                "encodings": ENCODINGS,
                "error": error,
                "can_write": role_at_least(self.request.role, self.write_role),
                "max_mb": services.max_upload_bytes() // (1024 * 1024),
                "max_bytes": services.max_upload_bytes(),
            },
            status=status,
        )

    @accepts_uploads("PARLEY_IMPORT_MAX_BYTES")
    def post(self, request, org_slug):
        upload = request.FILES.get("file")
        if upload is None:
            return self.render(_("Choose a CSV or Excel (.xlsx) file to upload."), status=400)
        try:
            job = services.import_upload(
                organization=request.organization,
                actor=request.user,
                fileobj=upload,
                filename=upload.name,
                encoding=request.POST.get("encoding") or None,
            )
        except ApplicationError as exc:
            return self.render(exc.message, status=exc.status)
        return redirect("contacts-import-map", org_slug=org_slug, pk=job.pk)


class ImportMappingView(OrgViewMixin, View):
    """Map each header to a field (prefilled with the proposal), set options, see the preview,
    then start the job."""

    model = ImportJob

    def get(self, request, org_slug, pk):
        job = self.object
        if job.state != JobState.DRAFT:
            return redirect("contacts-import-job", org_slug=org_slug, pk=job.pk)
        return self.render(job, job.mapping, job.options, errors={})

    def render(self, job, mapping, options, errors, status=200):
        organization = self.request.organization
        fields = FIELD_LABELS + [
            (f"cf.{f.key}", f.label) for f in scoped(CustomField, organization).order_by("label")
        ]
        columns = [
            {
                "index": index,
                "header": header,
                "field": mapping.get(header, ""),
                "errors": errors.get(f"mapping.{header}", []),
            }
            for index, header in enumerate(job.headers)
        ]
        preview = None
        try:
            preview = services.import_preview(organization=organization, job=job)
        except (ApplicationError, OSError, UnicodeError) as exc:  # a broken file: say so, no 500
            errors = {**errors, "preview": [getattr(exc, "message", str(exc))]}
        preview_fields = [f for f in dict.fromkeys(mapping.values()) if f]
        labels = dict(fields)
        return render(
            self.request,
            "messaging/imports/mapping.html",
            {
                "job": job,
                "columns": columns,
                "fields": fields,
                "options": {
                    "overwrite": bool(options.get("overwrite")),
                    "add_tags": ", ".join(options.get("add_tags") or []),
                    "add_groups": ", ".join(options.get("add_groups") or []),
                },
                "errors": [
                    m for k, ms in errors.items() if not k.startswith("mapping.") for m in ms
                ],
                "preview": preview,
                "preview_columns": [(f, labels.get(f, f)) for f in preview_fields],
            },
            status=status,
        )

    def post(self, request, org_slug, pk):
        job = self.object
        if job.state != JobState.DRAFT:
            return redirect("contacts-import-job", org_slug=org_slug, pk=job.pk)
        mapping = {
            header: request.POST.get(f"map-{index}", "") for index, header in enumerate(job.headers)
        }
        options = {
            "overwrite": request.POST.get("overwrite") == "on",
            "add_tags": request.POST.get("add_tags", ""),
            "add_groups": request.POST.get("add_groups", ""),
        }
        try:
            services.import_set_mapping(
                organization=request.organization, job=job, mapping=mapping, options=options
            )
            if request.POST.get("action") == "start":
                services.import_start(
                    organization=request.organization, job=job, actor=request.user
                )
                return redirect("contacts-import-job", org_slug=org_slug, pk=job.pk)
        except ApplicationError as exc:
            fields = exc.fields or {"mapping": [exc.message]}
            return self.render(job, mapping, options, errors=fields, status=200)
        messages.success(request, _("Mapping saved. Check the preview, then start the import."))
        return redirect("contacts-import-map", org_slug=org_slug, pk=job.pk)


class ImportJobView(OrgViewMixin, View):
    """The job's page: state, counts and a progress bar that follows live pushes."""

    model = ImportJob

    def get(self, request, org_slug, pk):
        job = self.object
        if job.state == JobState.DRAFT:
            return redirect("contacts-import-map", org_slug=org_slug, pk=job.pk)
        return render(
            request,
            "messaging/imports/job.html",
            {
                "job": job,
                "progress": services.progress_data(job),
                "errors_url": reverse("contacts-import-errors", args=[org_slug, job.pk]),
            },
        )


class ImportErrorsView(OrgViewMixin, View):
    """The per-row error report as a CSV download."""

    model = ImportJob

    def get(self, request, org_slug, pk):
        return error_report_response(request, self.object)


class ContactExportView(OrgViewMixin, View):
    """The contacts matching the list's filters (the query string), streamed as CSV or .xlsx."""

    file_format = "csv"

    def get(self, request, org_slug):
        try:
            filters = contact_filters_from_params(request.GET)
            rows = exports.contacts_export_rows(organization=request.organization, filters=filters)
        except ApplicationError as exc:
            return HttpResponseBadRequest(exc.message)
        filename = f"{request.organization.slug}-contacts.{self.file_format}"
        if self.file_format == "xlsx":
            return exports.xlsx_response(request, rows, filename)
        return exports.csv_response(request, rows, filename)


urlpatterns = [
    path("contacts/import/", ImportUploadView.as_view(), name="contacts-import"),
    path("contacts/import/<int:pk>/", ImportMappingView.as_view(), name="contacts-import-map"),
    path("contacts/import/<int:pk>/job/", ImportJobView.as_view(), name="contacts-import-job"),
    path(
        "contacts/import/<int:pk>/errors.csv",
        ImportErrorsView.as_view(),
        name="contacts-import-errors",
    ),
    path("contacts/export.csv", ContactExportView.as_view(), name="contacts-export"),
    path(
        "contacts/export.xlsx",
        ContactExportView.as_view(file_format="xlsx"),
        name="contacts-export-xlsx",
    ),
]
