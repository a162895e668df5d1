"""A real worker SIGKILLed in the middle of a send: once after claiming a message (before the
phone got it), once after the provider call (the phone got it, Parley never heard back). The
simulated phone counts what it received: at most one of each message on its own, exactly one of
all the others; the interrupted ones are visible, and one retry sends once more."""

from __future__ import annotations

import datetime as dt
import os
import signal

import pytest
from django.utils import timezone

from messaging.models import Message, MessageStatus
from messaging.services.outbox import LEASE, message_retry, message_send, outbox_tick
from sessions_app import services, simulation
from sessions_app.providers.simulator import times_received
from sessions_app.services import provider_for
from tests.support.celery_worker import CeleryWorkerProcess, wait_for


def received(message: Message) -> int:
    message = Message.objects.select_related("session", "chat").get(pk=message.pk)
    from messaging.services.outbox import _outgoing

    return times_received(str(message.session.uuid), _outgoing(message))


def kill(worker: CeleryWorkerProcess) -> None:
    os.killpg(worker.process.pid, signal.SIGKILL)
    worker.process.wait(10)


@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_never_makes_a_message_go_twice_on_its_own(cast):
    session = services.session_create(
        organization=cast.org_a, actor=cast.admin, data={"name": "Desk", "provider": "simulator"}
    )
    session.settings = {"messages_per_minute": 6000, "jitter_seconds": 0}
    session.save(update_fields=["settings"])

    def send(text: str) -> Message:
        return message_send(
            organization=cast.org_a,
            actor=cast.agent,
            session=session,
            phone="+85291234567",
            text=text,
        )

    worker = CeleryWorkerProcess().start()
    try:
        fine = [send(f"fine {n}") for n in range(3)]
        assert wait_for(
            lambda: Message.objects.filter(status=MessageStatus.SENT).count() == 3, timeout=30
        ), worker.log
        simulation.simulate_fault(session=session, fault="hang_after_send")
        after = send("the phone got this one")
        assert wait_for(lambda: received(after) == 1, timeout=30), (
            Message.objects.filter(pk=after.pk).values_list("status", "attempts").first(),
            Message.objects.get(pk=after.pk).session.settings,
        )
        kill(worker)
    finally:
        worker.stop()

    worker = CeleryWorkerProcess().start()
    try:
        simulation.simulate_fault(session=session, fault="hang_before_send")
        before = send("the phone never got this one")
        assert wait_for(
            lambda: Message.objects.get(pk=before.pk).status == MessageStatus.SENDING, timeout=30
        ), worker.log
        kill(worker)
    finally:
        worker.stop()

    simulation.simulate_fault(session=session, fault="none")
    interrupted, _due = outbox_tick(now=timezone.now() + LEASE + dt.timedelta(seconds=1))
    assert interrupted == 2
    for message in (after, before):
        message.refresh_from_db()
        assert message.status == MessageStatus.FAILED and message.error_code == "interrupted"
    assert [received(m) for m in fine] == [1, 1, 1]
    assert received(after) == 1 and received(before) == 0

    worker = CeleryWorkerProcess().start()
    try:
        for message in (after, before):
            message_retry(organization=cast.org_a, message=message, actor=cast.agent)
        assert wait_for(
            lambda: Message.objects.filter(status=MessageStatus.SENT).count() == 5, timeout=30
        ), worker.log
    finally:
        worker.stop()
    assert received(after) == 2 and received(before) == 1  # a person's retry: once more each
    assert [received(m) for m in fine] == [1, 1, 1]
    assert provider_for(session).name == "simulator"
