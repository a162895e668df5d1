"""The inbound queue: verify → one INSERT → answer; forged requests store nothing but a counter;
retries are deduplicated; bad bodies are kept for inspection; drainers never apply a row twice
and a killed drainer loses nothing."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from crm import events as bus
from messaging.models import Message
from sessions_app import queue, services
from sessions_app.models import WebhookEvent, WebhookState, WhatsAppSession
from tests.support.factories import gateway_session

ROOT = Path(__file__).resolve().parents[2]


def make_session(cast, name="Hooks") -> WhatsAppSession:
    return services.session_create(
        organization=cast.org_a, actor=cast.admin, data={"name": name, "provider": "simulator"}
    )


@pytest.fixture
def post(asgi_server):
    """POST to a session's webhook URL on the live ASGI server (``webhooks.Receiver``, the path
    deliveries take in production)."""

    def post(session, payload, *, secret=None, raw=None, path=None):
        body = raw if raw is not None else json.dumps(payload).encode()
        secret = services.webhook_secret_of(session) if secret is None else secret
        return httpx.post(
            asgi_server.url + (path or f"/webhooks/simulator/{session.uuid}/"),
            content=body,
            headers={"Content-Type": "application/json", "X-Parley-Secret": secret},
            timeout=30,
        )

    return post


def inbound(n: int) -> dict:
    return {"type": "message", "id": f"HOOK{n}", "from": "85291234567", "text": f"hi {n}"}


@pytest.mark.django_db(transaction=True)  # the view works in a thread of its own
def test_a_verified_webhook_is_stored_once_and_answered_200(cast, post):
    session = make_session(cast)
    assert post(session, inbound(1)).status_code == 200
    assert post(session, inbound(1)).status_code == 200  # the provider retries
    rows = WebhookEvent.objects.filter(session=session)
    assert rows.count() == 1 and rows.get().state == WebhookState.PENDING
    assert rows.get().organization_id == cast.org_a.pk


@pytest.mark.django_db(transaction=True)  # the view works in a thread of its own
def test_a_forged_webhook_stores_nothing_but_a_counter(cast, post):
    session = make_session(cast)
    assert post(session, inbound(1), secret="guessed").status_code == 401
    assert post(session, inbound(1), secret="").status_code == 401
    assert not WebhookEvent.objects.exists()
    session.refresh_from_db()
    assert session.forged_requests == 2


@pytest.mark.django_db(transaction=True)  # the view works in a thread of its own
def test_an_unparseable_body_is_kept_for_inspection_and_refused(cast, post):
    session = make_session(cast)
    response = post(session, None, raw=b"{not json")
    assert response.status_code == 400
    row = WebhookEvent.objects.get(session=session)
    assert row.state == WebhookState.INVALID and row.body == "{not json"


@pytest.mark.django_db(transaction=True)  # the view works in a thread of its own
@pytest.mark.parametrize("depth", [900, 100_000])
def test_a_signed_body_nested_too_deeply_is_kept_as_invalid_and_refused(cast, post, depth):
    session = make_session(cast)
    response = post(
        session, None, raw=b'{"type": "message", "x": ' + b"[" * depth + b"]" * depth + b"}"
    )
    assert response.status_code == 400
    assert response.text == "nested deeper than 64 levels"
    row = WebhookEvent.objects.get(session=session)
    assert row.state == WebhookState.INVALID and row.error == "nested deeper than 64 levels"


@pytest.mark.django_db(transaction=True)  # the view works in a thread of its own
def test_a_truncated_evolution_body_is_stored_without_the_secrets_in_it(cast, post):
    """Evolution puts the instance's token in its bodies (``apikey``): a body cut short, which
    cannot be parsed to drop that key, is stored with every secret cut out of its text."""
    session = gateway_session(cast, "evolution", api_key="GLOBAL-canary-7d31")
    secret = services.webhook_secret_of(session)
    bodies = [
        b'{"event":"messages.upsert","instance":"shop","apikey":"INSTANCE-canary-5e2a","data":{"ke',
        b'{"event":"send.message","apikey": "INSTANCE-canary-\\"5e2a',  # cut inside the value
        b'{"event":"x","note":"GLOBAL-canary-7d31 ' + secret.encode() + b'"',
    ]
    for body in bodies:
        response = post(session, None, raw=body, path=f"/webhooks/evolution/{session.uuid}/")
        assert response.status_code == 400
    stored = list(WebhookEvent.objects.filter(session=session).values_list("body", "state"))
    assert len(stored) == 3 and {state for _, state in stored} == {WebhookState.INVALID}
    text = "".join(body for body, _ in stored)
    assert "canary" not in text and secret not in text
    assert '"apikey":"[redacted]' in text and '"event":"messages.upsert"' in text


@pytest.mark.django_db(transaction=True)  # the view works in a thread of its own
def test_an_unknown_session_or_provider_is_404(cast, post):
    session = make_session(cast)
    unknown = "/webhooks/simulator/00000000-0000-4000-8000-000000000000/"
    assert post(session, {}, path=unknown).status_code == 404
    assert post(session, {}, path=f"/webhooks/gowa/{session.uuid}/").status_code == 404
    assert post(session, {}, path="/webhooks/nothing-here/").status_code == 404  # Django's page
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_replaced_credentials_count_at_once_in_a_process_that_kept_the_old(cast, post):
    session = make_session(cast)
    old = services.webhook_secret_of(session)
    assert post(session, inbound(1)).status_code == 200  # the receiver keeps the session
    services.webhook_secret_rotate(organization=cast.org_a, session=session, actor=cast.admin)
    session.refresh_from_db()
    new = services.webhook_secret_of(session)
    assert post(session, inbound(2), secret=new).status_code == 200
    assert post(session, inbound(3), secret=old).status_code == 401
    assert WebhookEvent.objects.filter(session=session).count() == 2
    session.refresh_from_db()
    assert session.forged_requests == 1


@pytest.mark.django_db(transaction=True)
def test_a_session_deleted_after_the_receiver_kept_it_is_404_not_500(cast, post):
    session = make_session(cast)
    assert post(session, inbound(1)).status_code == 200
    secret = services.webhook_secret_of(session)
    services.session_delete(organization=cast.org_a, session=session, actor=cast.admin)
    assert post(session, inbound(2), secret=secret).status_code == 404
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db(transaction=True)  # the view works in a thread of its own
@override_settings(PARLEY_WEBHOOK_MAX_BYTES=1000)
def test_a_body_over_the_limit_is_413_and_not_stored(cast, post):
    session = make_session(cast)
    big = {"type": "message", "text": "x" * 2000}
    assert post(session, big).status_code == 413
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db(transaction=True)  # the view works in a thread of its own
def test_a_large_history_body_is_accepted(cast, post):
    session = make_session(cast)
    big = {"type": "history", "messages": ["x" * 100] * 40_000}  # ~4 MB, over Django's form cap
    assert post(session, big).status_code == 200
    drain_now()
    assert WebhookEvent.objects.get(session=session).state == WebhookState.IGNORED


def drain_now():
    queue.drain(now=timezone.now() + dt.timedelta(seconds=60))


@pytest.mark.django_db(transaction=True)  # the view works in a thread of its own
def test_events_are_published_to_subscribers_once_they_exist(cast, post, no_subscribers):
    session = make_session(cast)
    post(session, inbound(1))
    drain_now()
    assert WebhookEvent.objects.get().state == WebhookState.WAITING
    session.refresh_from_db()
    assert session.last_seen_at is not None  # a message says the number is alive
    seen = []

    def handler(**kwargs):
        seen.append([e.provider_message_id for e in kwargs["events"]])

    bus.subscribe(queue.TOPIC, handler)
    try:
        post(session, inbound(2))
        drain_now()
        assert queue.replay_waiting() == 1
    finally:
        bus.unsubscribe(queue.TOPIC, handler)
    assert sorted(seen) == [["HOOK1"], ["HOOK2"]]
    assert set(WebhookEvent.objects.values_list("state", flat=True)) == {WebhookState.DONE}


@pytest.mark.django_db(transaction=True)
def test_two_drainers_never_apply_a_row_twice(cast, post):
    session = make_session(cast)
    for n in range(300):
        post(session, inbound(n))
    applied: list[str] = []
    lock = threading.Lock()

    def handler(**kwargs):
        with lock:
            applied.extend(e.provider_message_id for e in kwargs["events"])

    bus.subscribe(queue.TOPIC, handler)
    try:

        def work():
            try:
                while queue.drain(limit=20):
                    pass
            finally:
                connection.close()

        threads = [threading.Thread(target=work) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        bus.unsubscribe(queue.TOPIC, handler)
    assert len(applied) == 300 and len(set(applied)) == 300
    assert not WebhookEvent.objects.filter(state=WebhookState.PENDING).exists()


KILLABLE = """
import os, sys, time, django
sys.path.insert(0, {root!r})
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
django.setup()
from crm import events as bus
from messaging.models import Message
from sessions_app import queue

def slow(**kwargs):
    print("applying", flush=True)
    time.sleep(60)

bus.subscribe(queue.TOPIC, slow)
queue.drain(limit=50)
"""


@pytest.mark.django_db(transaction=True)
def test_a_killed_drainer_loses_nothing(cast, tmp_path, post):
    session = make_session(cast)
    for n in range(10):
        post(session, inbound(n))
    script = tmp_path / "drain.py"
    script.write_text(KILLABLE.format(root=str(ROOT)))
    env = {**os.environ, "TEST_DATABASE_NAME": connection.settings_dict["NAME"]}
    env["TEST_DATABASE_URL"] = (
        f"postgres://{connection.settings_dict['USER']}@{connection.settings_dict['HOST']}:"
        f"{connection.settings_dict['PORT']}/{connection.settings_dict['NAME']}"
    )
    child = subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert child.stdout.readline().strip() == "applying"  # it holds the batch, mid-apply
    assert WebhookEvent.objects.filter(state=WebhookState.PENDING).count() == 10
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    applied = []

    def record(**kw):
        applied.extend(e.provider_message_id for e in kw["events"])

    bus.subscribe(queue.TOPIC, record)
    try:
        deadline = time.monotonic() + 20
        while len(applied) < 10 and time.monotonic() < deadline:
            queue.drain()  # the sweep: the killed batch's locks are gone with its connection
    finally:
        bus.unsubscribe(queue.TOPIC, record)
    assert sorted(applied) == sorted(f"HOOK{n}" for n in range(10))
    # Applied by ingest once each: what the killed drainer had written went with it
    stored = list(
        Message.objects.filter(session=session).values_list("provider_message_id", flat=True)
    )
    assert sorted(stored) == sorted(f"HOOK{n}" for n in range(10))
