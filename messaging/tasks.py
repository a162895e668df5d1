"""Background work of the address book: thin wrappers that re-fetch by id and call a service.

Every task here is safe to run twice (the broker redelivers a task still unacknowledged after
``visibility_timeout``, a minute): each docstring says why. Retries count down at most
``PARLEY_MAX_COUNTDOWN`` seconds (settings: longer waits belong in the database).
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings


def _countdown(seconds: float) -> float:
    return min(seconds, settings.PARLEY_MAX_COUNTDOWN)


@shared_task(
    ignore_result=True,
    acks_late=True,
    time_limit=settings.PARLEY_LONG_TASK_TIME_LIMIT,
    soft_time_limit=settings.PARLEY_LONG_TASK_TIME_LIMIT - 30,
)
def run_import(job_id: int) -> None:
    """Run a queued CSV import. It may run for minutes, past the visibility timeout: the job is
    claimed in the database (``import_run`` moves it queued → running), so a redelivered copy
    finds it taken and returns; a worker that died mid-job is found by ``fail_stale_jobs``."""
    from messaging.services.imports import import_run

    import_run(job_id)


@shared_task(ignore_result=True)
def fail_stale_jobs() -> int:
    """Beat: fail imports and bulk actions whose worker died mid-job (messaging/services/watchdog.py).
    Safe to redeliver: a job already failed is not stale."""
    from messaging.services.watchdog import jobs_fail_stale

    return jobs_fail_stale()


@shared_task(ignore_result=True, bind=True, max_retries=10)
def download_media(self, message_id: int) -> None:
    """Fetch one message's media into storage; transient failures retry (5 s, 10 s, 20 s, then
    every 25 s: about 3.5 min in all), then the media is marked failed. Safe to redeliver: the
    media is written under one key and the message's state moves forward only."""
    from messaging.media import TryAgain, media_download, media_give_up

    try:
        media_download(message_id=message_id)
    except TryAgain as exc:
        if self.request.retries >= self.max_retries:
            media_give_up(message_id=message_id, reason=f"{exc}: gave up after retries")
            return
        raise self.retry(countdown=_countdown(5 * 2**self.request.retries)) from exc


@shared_task(ignore_result=True)
def deliver_message(message_id: int) -> str:
    """Deliver one queued outbound message (messaging/services/outbox.py). Safe to redeliver:
    the message is claimed in the database (queued → sending), so a repeat is a no-op."""
    from messaging.services.outbox import message_deliver

    result = message_deliver(message_id=message_id)
    if result in ("paced", "retry"):
        _come_back(message_id)
    return result


def _come_back(message_id: int) -> None:
    """A short wait is a countdown; a long one is left to the beat's ``outbox_tick``."""
    from messaging.models import Message

    due = Message.objects.filter(pk=message_id).values_list("next_attempt_at", flat=True).first()
    if due is not None:
        from django.utils import timezone

        seconds = (due - timezone.now()).total_seconds()
        if seconds <= settings.PARLEY_MAX_COUNTDOWN:
            deliver_message.apply_async((message_id,), countdown=max(0.05, seconds))


@shared_task(ignore_result=True)
def outbox_tick() -> int:
    """Beat: interrupted sends marked, due queued messages delivered, expired idempotency keys
    removed (kept 24 h), snoozed chats whose time came reopened. Safe to redeliver: each step
    claims its rows in the database."""
    from django.utils import timezone

    from messaging.models import IdempotencyKey
    from messaging.services.chats import chats_wake
    from messaging.services.outbox import outbox_tick as tick

    IdempotencyKey.objects.filter(expires_at__lte=timezone.now()).delete()
    chats_wake()
    _interrupted, due = tick()
    for message_id in due:
        deliver_message.delay(message_id)
    return len(due)


@shared_task(ignore_result=True, bind=True, max_retries=3)
def send_read_receipts(self, chat_id: int, provider_message_ids: list[str]) -> None:
    """Blue ticks for a chat a person opened; transient failures retry, others are dropped (a
    read receipt is a courtesy, not a message). Safe to redeliver: a read receipt sent twice
    changes nothing."""
    from messaging.models import Chat
    from sessions_app.providers.base import ProviderError
    from sessions_app.services import session_mark_read

    chat = Chat.objects.select_related("session").filter(pk=chat_id).first()
    if chat is None:
        return
    try:
        session_mark_read(
            session=chat.session, chat_jid=chat.jid, provider_message_ids=provider_message_ids
        )
    except ProviderError as exc:
        if not exc.permanent and self.request.retries < self.max_retries:
            raise self.retry(countdown=_countdown(30)) from exc


@shared_task(ignore_result=True, bind=True, max_retries=5)
def send_reaction(self, message_id: int, emoji: str) -> None:
    """Our reaction, sent; retries count down 15 s, then 25 s. Safe to redeliver: sending it
    twice is harmless (a reaction is a state)."""
    from messaging.models import Message
    from sessions_app.providers.base import OutgoingMessage, ProviderError
    from sessions_app.services import session_send

    message = Message.objects.select_related("session", "chat").filter(pk=message_id).first()
    if message is None or not message.provider_message_id:
        return
    outgoing = OutgoingMessage(
        to=message.chat.jid, reaction_to=message.provider_message_id, emoji=emoji
    )
    try:
        session_send(session=message.session, message=outgoing)
    except ProviderError as exc:
        if not exc.permanent and self.request.retries < self.max_retries:
            raise self.retry(countdown=_countdown(15 * 2**self.request.retries)) from exc
