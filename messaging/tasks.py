"""Background work of the address book: thin wrappers that re-fetch by id and call a service."""

from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True, acks_late=True)
def run_import(job_id: int) -> None:
    """Run a queued CSV import. Redelivery is a no-op: ``import_run`` claims queued → running."""
    from messaging.services.imports import import_run

    import_run(job_id)
