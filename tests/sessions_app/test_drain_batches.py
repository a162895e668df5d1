"""The drainer applies a claim's webhook rows as a batch: each organization's messages land in
it, a receipt finds its message in the same batch, one bad row fails alone, two drainers never
apply a row twice nor reorder a session, and what a batch changed is announced once per
organization."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import F
from django.utils import timezone

from crm import events as bus
from messaging import ingest
from messaging.models import Message, Reaction, WaitingEvent
from sessions_app import kicker, queue, services
from sessions_app.models import WebhookEvent, WebhookState, WhatsAppSession

pytestmark = pytest.mark.django_db(transaction=True)  # the drainer's own commits and announcements
T0 = 1_790_000_000  # a Unix time: the simulator's payloads carry their own


def desk(organization, actor, name="Desk"):
    return services.session_create(
        organization=organization, actor=actor, data={"name": name, "provider": "simulator"}
    )


def said(session, n: int, *, phone: str = "85291234567", at: int = 0) -> None:
    queue.enqueue(
        session=session,
        payload={
            "type": "message",
            "id": f"M{n}",
            "from": phone,
            "text": f"m{n}",
            "timestamp": T0 + at,
        },
    )


def drain_all() -> int:
    handled = 0
    while batch := queue.drain(now=timezone.now() + dt.timedelta(seconds=60)):
        handled += batch
    return handled


@pytest.fixture
def announced():
    """Every ``messages.applied`` published, as (organization, received ids)."""
    seen: list[tuple[int, list[int]]] = []

    def record(*, organization_id, received, **_rest):
        seen.append((organization_id, received))

    bus.subscribe(ingest.APPLIED, record)
    yield seen
    bus.unsubscribe(ingest.APPLIED, record)


def test_a_batch_mixing_sessions_and_organizations_lands_each_in_its_own(cast, announced):
    a1, a2 = desk(cast.org_a, cast.admin, "A1"), desk(cast.org_a, cast.admin, "A2")
    b1 = desk(cast.org_b, cast.b_member, "B1")
    for n in range(30):  # interleaved, as they arrive
        said((a1, a2, b1)[n % 3], n, phone=f"8529{n % 5:07d}", at=n)

    assert queue.drain(limit=500) == 30  # one claim

    in_a = set(Message.objects.filter(organization=cast.org_a).values_list("body", flat=True))
    in_b = set(Message.objects.filter(organization=cast.org_b).values_list("body", flat=True))
    assert in_b == {f"m{n}" for n in range(2, 30, 3)}
    assert in_a == {f"m{n}" for n in range(30) if n % 3 != 2}
    assert not Message.objects.exclude(organization_id=F("session__organization_id")).exists()
    # One announcement per organization for the whole batch, each naming only its own
    assert sorted((org, len(ids)) for org, ids in announced) == sorted(
        [(cast.org_a.pk, 20), (cast.org_b.pk, 10)]
    )
    ours = {org: set(ids) for org, ids in announced}
    assert ours[cast.org_b.pk] == set(
        Message.objects.filter(organization=cast.org_b).values_list("pk", flat=True)
    )
    assert set(WebhookEvent.objects.values_list("state", flat=True)) == {WebhookState.DONE}


def test_a_receipt_finds_its_message_in_the_same_batch(cast):
    session = desk(cast.org_a, cast.admin)
    said(session, 1)
    queue.enqueue(
        session=session,
        payload={"type": "status", "id": "M1", "status": "read", "timestamp": T0 + 5},
    )

    assert drain_all() == 2

    message = Message.objects.get(provider_message_id="M1")
    assert message.body == "m1" and message.status == "read"
    assert not WaitingEvent.objects.exists()  # it never had to wait


def test_a_reaction_before_its_message_waits_for_it_across_batches(cast):
    session = desk(cast.org_a, cast.admin)
    queue.enqueue(
        session=session,
        payload={
            "type": "reaction",
            "id": "M1",
            "from": "85291234567",
            "emoji": "👍",
            "timestamp": T0 + 5,
        },
    )
    drain_all()
    assert not Reaction.objects.exists()  # nothing to react to yet: it waits

    said(session, 1)
    drain_all()

    [reaction] = Reaction.objects.all()
    assert (reaction.message.provider_message_id, reaction.emoji) == ("M1", "👍")


def test_two_drainers_at_once_apply_each_row_once_and_keep_each_session_in_order(cast):
    sessions = [desk(cast.org_a, cast.admin, "A1"), desk(cast.org_b, cast.b_member, "B1")]
    for n in range(400):
        said(sessions[n % 2], n, phone=f"8529{n % 7:07d}", at=n)
    errors: list[BaseException] = []

    def work():
        try:
            while queue.drain(limit=60, now=timezone.now() + dt.timedelta(seconds=60)):
                pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert not errors
    assert drain_all() == 0
    ids = list(Message.objects.values_list("provider_message_id", flat=True))
    assert len(ids) == 400 and len(set(ids)) == 400  # none twice, none lost
    for session in sessions:  # stored in the order received: ids rise with the webhooks
        stored = Message.objects.filter(session=session).order_by("pk")
        numbers = [int(pid[1:]) for pid in stored.values_list("provider_message_id", flat=True)]
        assert numbers == sorted(numbers)
    assert not WebhookEvent.objects.exclude(state=WebhookState.DONE).exists()


def test_a_malformed_row_fails_alone_and_keeps_its_reason(cast):
    session = desk(cast.org_a, cast.admin)
    for n in range(1000):
        if n == 500:
            queue.enqueue(
                session=session, payload={"type": "message", "id": "BAD", "timestamp": 1e20}
            )
        else:
            said(session, n, phone=f"8529{n % 50:07d}", at=n)

    assert drain_all() == 1000

    assert Message.objects.count() == 999
    failed = WebhookEvent.objects.get(state=WebhookState.FAILED)
    assert "BAD" in failed.body and failed.error
    assert WebhookEvent.objects.filter(state=WebhookState.DONE).count() == 999


def test_rows_of_a_session_whose_credentials_cannot_be_read_wait_instead_of_failing(cast):
    """A secret key gone from the install is its fault, not the rows': they are kept."""
    session = desk(cast.org_a, cast.admin)
    said(session, 1)
    WhatsAppSession.objects.filter(pk=session.pk).update(credentials_encrypted="not-a-token")

    queue.drain()

    row = WebhookEvent.objects.get()
    assert row.state == WebhookState.PENDING and row.attempts == 0
    assert "cannot be built" in row.error and row.available_at > timezone.now()


def test_a_row_its_subscriber_cannot_apply_is_retried_alone_while_the_rest_land(cast):
    session = desk(cast.org_a, cast.admin)
    for n in range(20):
        said(session, n, at=n)

    def refuse(*, events, **_rest):
        if any(getattr(e, "provider_message_id", "") == "M7" for e in events):
            raise RuntimeError("M7 cannot be applied")

    bus.subscribe(queue.TOPIC, refuse)
    try:
        queue.drain(limit=500)
    finally:
        bus.unsubscribe(queue.TOPIC, refuse)

    assert (
        Message.objects.count() == 19
        and not Message.objects.filter(provider_message_id="M7").exists()
    )
    kept = WebhookEvent.objects.get(body__contains='"M7"')
    assert kept.state == WebhookState.PENDING and "M7 cannot be applied" in kept.error
    assert kept.available_at > timezone.now()  # retried later, with backoff
    drain_all()  # the subscriber is fixed
    assert Message.objects.filter(provider_message_id="M7").count() == 1


def test_a_burst_of_kicks_queues_one_drain(cast):
    """Single-flight: however many webhooks arrive, the broker holds one waiting drain."""
    import redis

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    name = settings.CELERY_TASK_DEFAULT_QUEUE
    broker.delete(name)
    kicker.kick.started()  # no drain queued
    try:
        for _ in range(50):
            kicker.kick.last = -1e9  # each as if from a process of its own
            kicker.kick()
        assert broker.llen(name) == 1
        kicker.kick.started()  # the drain starts: a row stored now needs another
        kicker.kick.last = -1e9
        kicker.kick()
        assert broker.llen(name) == 2
    finally:
        broker.delete(name)
        kicker.kick.started()


def test_every_task_finishes_before_the_broker_would_hand_it_out_again():
    """A task still running after the visibility timeout is delivered a second time; those
    allowed to run longer claim their work in the database and say so."""
    from crm.celery import app

    app.loader.import_default_modules()
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert visibility <= 90 and visibility / 2 > settings.PARLEY_MAX_COUNTDOWN
    ours = {n: t for n, t in app.tasks.items() if not n.startswith("celery.")}
    assert {"sessions_app.tasks.drain_webhooks", "messaging.tasks.download_media"} <= set(ours)
    for name, task in ours.items():
        limit = task.time_limit or app.conf.task_time_limit
        doc = task.__doc__ or ""
        assert "redeliver" in doc, f"{name} does not say why a redelivery is safe"
        assert limit < visibility or "claimed in the database" in " ".join(doc.split()), name
