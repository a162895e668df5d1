"""Background work of the address book: thin wrappers that re-fetch by id and call a service."""

from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True, acks_late=True)
def run_import(job_id: int) -> None:
    """Run a queued CSV import. Redelivery is a no-op: ``import_run`` claims queued → running."""
    from messaging.services.imports import import_run

    import_run(job_id)


@shared_task(ignore_result=True)
def fail_stale_jobs() -> int:
    """Beat: fail imports and bulk actions whose worker died mid-job (messaging/services/watchdog.py)."""
    from messaging.services.watchdog import jobs_fail_stale

    return jobs_fail_stale()
