"""Jobs whose worker died: a claimed import or bulk action that never finished is marked failed.

A task claims its job (queued → running) so a redelivery is a no-op; if the worker is killed
mid-job, nothing would ever move it on. Beat runs ``jobs_fail_stale`` every few minutes: a job
running longer than ``PARLEY_JOB_STALE_SECONDS`` is failed as interrupted, saying which rows were
done, so a person can look and start it again (imports match by phone, so a rerun adds no doubles).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from messaging.models import BulkJob, ImportJob, JobState


def jobs_fail_stale() -> int:
    cutoff = timezone.now() - timedelta(seconds=settings.PARLEY_JOB_STALE_SECONDS)
    now = timezone.now()
    message = _(
        "Interrupted: the worker stopped before the job finished. Rows done so far are kept; run it again to finish."
    )
    imports = ImportJob.objects.filter(state=JobState.RUNNING).filter(
        Q(started_at__lt=cutoff) | Q(started_at__isnull=True, created_at__lt=cutoff)
    )
    bulk = BulkJob.objects.filter(state=JobState.RUNNING, created_at__lt=cutoff)
    failed = imports.update(state=JobState.FAILED, failure=message, finished_at=now)
    failed += bulk.update(state=JobState.FAILED, failure=message, finished_at=now)
    return failed
