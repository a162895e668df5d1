"""A task queued by the web process is run by a real Celery worker process (not eagerly)."""

from __future__ import annotations

from django.conf import settings

from crm.celery import app
from crm.models import WorkerHeartbeat
from crm.tasks import heartbeat
from tests.support.celery_worker import wait_for


def test_it_runs_a_queued_task_in_the_worker_process(celery_worker):
    # Given a worker process on the test queue, and tasks that are not run eagerly
    assert getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False) is False
    assert app.conf.task_always_eager is False
    assert not WorkerHeartbeat.objects.exists()

    # When a task that writes to the database is queued
    heartbeat.delay()

    # Then the worker process writes the row, under its own node name (an eager run has none)
    row = wait_for(lambda: WorkerHeartbeat.objects.first(), timeout=15)
    assert row is not None, "the worker did not run the task:\n" + celery_worker.log
    assert row.hostname == celery_worker.nodename
    assert "Task crm.tasks.heartbeat[" in celery_worker.log
    assert celery_worker.process.poll() is None  # a separate, still running process
