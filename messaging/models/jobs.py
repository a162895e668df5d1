"""Background work on the address book: CSV imports and bulk actions, with progress and undo."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Organization


class JobState(models.TextChoices):
    DRAFT = "draft", _("Draft")  # an import uploaded, being mapped and previewed
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")
    UNDONE = "undone", _("Undone")


def import_upload_path(instance: ImportJob, filename: str) -> str:
    return f"imports/{instance.organization_id}/{instance.token}.csv"


def import_report_path(instance: ImportJob, filename: str) -> str:
    return f"imports/{instance.organization_id}/{instance.token}-errors.csv"


class ImportJob(models.Model):
    """One CSV import: uploaded → mapped (header → field) → previewed → run in the background."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    token = models.CharField(max_length=32, unique=True)  # names the stored files; not guessable
    state = models.CharField(max_length=10, choices=JobState.choices, default=JobState.DRAFT)
    original_name = models.CharField(max_length=255, blank=True)
    upload = models.FileField(upload_to=import_upload_path, max_length=300)
    size_bytes = models.PositiveBigIntegerField(default=0)
    encoding = models.CharField(max_length=20, blank=True)
    delimiter = models.CharField(max_length=1, default=",")
    headers = models.JSONField(default=list, blank=True)
    mapping = models.JSONField(default=dict, blank=True)  # header → contact field ("" = skip)
    options = models.JSONField(default=dict, blank=True)  # overwrite, tags, groups
    total_rows = models.PositiveIntegerField(null=True, blank=True)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    error_report = models.FileField(upload_to=import_report_path, max_length=300, blank=True)
    failure = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("import job")
        verbose_name_plural = _("import jobs")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="importjob_org_created")
        ]

    def __str__(self) -> str:
        return f"import {self.original_name or self.token} ({self.state})"


class ImportColumnMemory(models.Model):
    """How an organization mapped a CSV header last time, offered again on the next upload."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    header = models.CharField(max_length=200)  # folded (messaging.text.fold)
    field = models.CharField(max_length=100)  # a contact field, "cf.<key>", or "" to skip
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("remembered import column")
        verbose_name_plural = _("remembered import columns")
        constraints = [
            models.UniqueConstraint(fields=["organization", "header"], name="import_memory_unique")
        ]

    def __str__(self) -> str:
        return f"{self.header} → {self.field or 'skip'}"


class BulkAction(models.TextChoices):
    TAG = "tag", _("Add tag")
    UNTAG = "untag", _("Remove tag")
    GROUP_ADD = "group_add", _("Add to group")
    GROUP_REMOVE = "group_remove", _("Remove from group")
    SET_STATUS = "set_status", _("Set status")
    OPT_OUT = "opt_out", _("Opt out")
    DELETE = "delete", _("Delete")


class BulkJob(models.Model):
    """One bulk action over a selection (ids) or a filter, run as a job; tag/group ones can be undone."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=16, choices=BulkAction.choices)
    params = models.JSONField(default=dict, blank=True)  # tag_id / group_id / status / source
    selection = models.JSONField(default=dict, blank=True)  # {"ids": [...]} or {"filters": {...}}
    state = models.CharField(max_length=10, choices=JobState.choices, default=JobState.QUEUED)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    affected = models.PositiveIntegerField(default=0)
    failure = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    undone_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("bulk job")
        verbose_name_plural = _("bulk jobs")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="bulkjob_org_created")]

    def __str__(self) -> str:
        return f"{self.action} ({self.state})"


class BulkJobItem(models.Model):
    """A contact a bulk job actually changed (for undo: only those are changed back)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    job = models.ForeignKey(BulkJob, on_delete=models.CASCADE, related_name="items")
    contact_id = models.BigIntegerField()

    class Meta:
        verbose_name = _("bulk job item")
        verbose_name_plural = _("bulk job items")
        indexes = [models.Index(fields=["organization", "job"], name="bulkitem_org_job")]

    def __str__(self) -> str:
        return f"{self.job_id}:{self.contact_id}"
