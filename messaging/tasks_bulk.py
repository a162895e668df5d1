"""Celery tasks of bulk actions: thin wrappers that take a job id and call the service.

Named explicitly (``messaging.bulk.*``) and imported by ``MessagingConfig.ready()`` so the worker
registers them without ``messaging/tasks.py`` knowing about this module.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from messaging.services.bulk import bulk_run


@shared_task(
    name="messaging.bulk.run",
    ignore_result=True,
    time_limit=settings.PARLEY_LONG_TASK_TIME_LIMIT,
    soft_time_limit=settings.PARLEY_LONG_TASK_TIME_LIMIT - 30,
)
def bulk_run_task(job_id: int) -> None:
    """Run a queued bulk job. It may run past the visibility timeout: the job is claimed in the
    database, so a redelivered copy finds it taken and does nothing."""
    bulk_run(job_id)
