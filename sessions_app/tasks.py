"""Background work of sessions: thin wrappers that call a service.

Every task here is safe to run twice (a broker redelivers a task a killed worker had claimed,
after ``visibility_timeout``): each says why in its docstring.
"""

from __future__ import annotations

import time

from celery import shared_task

DRAIN_BUDGET = 20.0  # seconds a drain task works before it hands over to a fresh one


@shared_task(ignore_result=True)
def drain_webhooks() -> int:
    """Apply pending inbound webhooks (kicked after inserts, single-flight; also the beat
    sweep). Safe to redeliver: rows are claimed in the database (``SKIP LOCKED`` and a drain
    lock per session), so a second copy takes other rows or none. Works at most
    ``DRAIN_BUDGET`` seconds, then queues a successor, well inside the time limit."""
    from sessions_app.kicker import kick
    from sessions_app.queue import BATCH, drain, next_due_in

    kick.started()
    deadline = time.monotonic() + DRAIN_BUDGET
    handled = 0
    # Until a claim finds nothing: rows stored while a batch was applied are claimed as soon
    # as it commits, without waiting for a kick to come round (bench/inbox_latency.py).
    while batch := drain(limit=BATCH):
        handled += batch
        if time.monotonic() > deadline:
            kick()  # more to do: a fresh task carries on
            return handled
    # Rows held back a moment (the simulator's phone reads a message 3 s later): come back then,
    # rather than wait for the beat's sweep. Short countdowns only; the sweep covers the rest.
    due_in = next_due_in()
    if due_in:  # 0: due rows another drainer holds; it carries on with them
        kick.at(due_in)
    return handled


@shared_task(ignore_result=True)
def sessions_tick() -> None:
    """Beat, every few seconds: due reconnects, QR codes that expired, and rows waiting in the
    queue that no kick reached (a command run outside the server, a lost task), and rows
    recorded while nothing subscribed (replayed here, not after every drain: a transaction
    each time, for rows that exist only before messaging is installed). Safe to redeliver:
    each step claims its rows in the database."""
    from sessions_app.queue import drain, next_due_in, replay_waiting
    from sessions_app.services import qr_expire, reconnect_due

    qr_expire()
    reconnect_due()
    if next_due_in() == 0:
        drain()
    replay_waiting()


@shared_task(ignore_result=True)
def sessions_check() -> int:
    """Beat: ask each connected session's provider how it really is. Safe to redeliver: it
    only reads the provider's state and records it."""
    from sessions_app.services import sessions_check_all

    return sessions_check_all()


PRUNE_BUDGET = 20.0  # seconds a prune task deletes before it hands over to a fresh one


@shared_task(ignore_result=True)
def prune_webhooks() -> int:
    """Beat, hourly: delete the inbound queue's rows past their retention
    (``sessions_app.retention``). Safe to run twice or to redeliver: it claims nothing and
    deletes, a batch per statement, only rows nothing writes any more, chosen afresh each time;
    a second copy deletes what the first left (nothing, or what aged since), and a copy killed
    midway loses its current statement, rolled back. Works at most ``PRUNE_BUDGET`` seconds (a
    first run on a table never pruned has millions of rows to delete), then queues a successor,
    well inside the time limit."""
    from sessions_app.retention import webhooks_prune

    deadline = time.monotonic() + PRUNE_BUDGET
    deleted = webhooks_prune(deadline=deadline)
    if time.monotonic() >= deadline:  # stopped for time, maybe with more to do: carry on
        prune_webhooks.delay()
    return deleted
