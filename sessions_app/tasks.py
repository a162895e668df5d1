"""Background work of sessions: thin wrappers that call a service."""

from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True)
def drain_webhooks() -> int:
    """Apply pending inbound webhooks (kicked after inserts; also the beat sweep)."""
    from sessions_app.queue import drain, next_due_in, replay_waiting

    handled = 0
    while True:
        batch = drain()
        handled += batch
        if batch < 200:
            break
    replay_waiting()
    # Rows held back a moment (the simulator's phone reads a message 3 s later): come back then,
    # rather than wait for the beat's sweep. Short countdowns only; the sweep covers the rest.
    due_in = next_due_in()
    if due_in is not None and due_in <= 60:
        drain_webhooks.apply_async(countdown=max(0.05, due_in))
    return handled


@shared_task(ignore_result=True)
def sessions_tick() -> None:
    """Beat, every few seconds: due reconnects, QR codes that expired, and rows waiting in the
    queue that no kick reached (a command run outside the server, a lost task)."""
    from sessions_app.queue import drain, next_due_in
    from sessions_app.services import qr_expire, reconnect_due

    qr_expire()
    reconnect_due()
    if next_due_in() == 0:
        drain()


@shared_task(ignore_result=True)
def sessions_check() -> int:
    """Beat: ask each connected session's provider how it really is."""
    from sessions_app.services import sessions_check_all

    return sessions_check_all()
