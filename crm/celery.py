"""The Celery application: configured from Django settings (namespace CELERY_)."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")

app = Celery("parley")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _connections_back_to_the_pool(task=None, **_kwargs) -> None:
    """As Django does around a request: a connection that is broken or past its age goes (to
    the psycopg pool, which keeps it open). Celery's own fixup would close the whole pool after
    every task (a new PostgreSQL connection per task); ``CELERY_DB_REUSE_MAX`` tells it not to,
    and this keeps what it skips."""
    from django.db import close_old_connections

    if task is not None and getattr(task.request, "is_eager", False):
        return  # run in the caller's thread, perhaps inside its transaction
    close_old_connections()
