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


@shared_task(ignore_result=True, bind=True, max_retries=6)
def download_media(self, message_id: int) -> None:
    """Fetch one message's media into storage; transient failures retry (10 s, 20 s … ~5 min),
    then the media is marked failed."""
    from messaging.media import TryAgain, media_download, media_give_up

    try:
        media_download(message_id=message_id)
    except TryAgain as exc:
        if self.request.retries >= self.max_retries:
            media_give_up(message_id=message_id, reason=f"{exc}: gave up after retries")
            return
        raise self.retry(countdown=10 * 2**self.request.retries) from exc
