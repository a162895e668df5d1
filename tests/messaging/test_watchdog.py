"""A job whose worker died is failed and says so, instead of running forever."""

from datetime import timedelta

from django.utils import timezone

from messaging.models import BulkJob, ImportJob, JobState
from messaging.tasks import fail_stale_jobs


def test_it_fails_jobs_whose_worker_died_and_leaves_live_ones(cast):
    old = timezone.now() - timedelta(hours=3)
    stale_import = ImportJob.objects.create(
        organization=cast.org_a,
        token="stale",
        state=JobState.RUNNING,
        started_at=old,
        processed_rows=400,
    )
    live_import = ImportJob.objects.create(
        organization=cast.org_a, token="live", state=JobState.RUNNING, started_at=timezone.now()
    )
    stale_bulk = BulkJob.objects.create(
        organization=cast.org_a, action="tag", state=JobState.RUNNING
    )
    BulkJob.objects.filter(pk=stale_bulk.pk).update(created_at=old)
    done = ImportJob.objects.create(
        organization=cast.org_a, token="done", state=JobState.DONE, started_at=old
    )

    assert fail_stale_jobs() == 2

    stale_import.refresh_from_db()
    assert stale_import.state == JobState.FAILED and "Interrupted" in stale_import.failure
    assert stale_import.processed_rows == 400  # what was done stays visible
    assert BulkJob.objects.get(pk=stale_bulk.pk).state == JobState.FAILED
    assert ImportJob.objects.get(pk=live_import.pk).state == JobState.RUNNING
    assert ImportJob.objects.get(pk=done.pk).state == JobState.DONE
