"""Celery tasks of bulk actions: thin wrappers that take a job id and call the service.

Named explicitly (``messaging.bulk.*``) and imported by ``MessagingConfig.ready()`` so the worker
registers them without ``messaging/tasks.py`` knowing about this module.
"""

from __future__ import annotations

from celery import shared_task

from messaging.services.bulk import bulk_run


@shared_task(name="messaging.bulk.run", ignore_result=True)
def bulk_run_task(job_id: int) -> None:
    """Run a queued bulk job; a redelivery finds it claimed and does nothing."""
    bulk_run(job_id)
