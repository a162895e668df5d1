"""/healthz and /readyz against the real test services, and a Redis that goes away; the inbound
queue's backlog in /readyz, as information."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from crm.celery import app
from sessions_app.models import WebhookEvent
from sessions_app.selectors import webhook_backlog

pytestmark = pytest.mark.django_db


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def own_redis():
    """A throwaway ``redis-server`` on a free port (no persistence), killed by the test or here."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_timeout=1)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)
    process.url = url
    yield process
    if process.poll() is None:
        process.kill()
    process.wait(5)


def statuses(body: dict) -> dict[str, str]:
    return {name: check["status"] for name, check in body["checks"].items()}


def test_it_answers_healthz(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_it_is_ready_when_every_test_service_answers(client):
    response = client.get("/readyz")

    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert statuses(body) == {"database": "ok", "cache": "ok", "broker": "ok", "storage": "ok"}
    assert all(check["latency_ms"] >= 0 for check in body["checks"].values())


def test_it_reports_a_stopped_redis_as_down(client, settings, own_redis):
    # Given cache and broker on our own Redis
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": own_redis.url,
        }
    }
    settings.CELERY_BROKER_URL = own_redis.url
    assert app.conf.broker_url == own_redis.url  # the Celery app reads Django's settings live
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()

    # When that Redis dies
    own_redis.kill()
    own_redis.wait(5)

    # Then /readyz is 503 and names cache and broker
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "error"
    assert statuses(body) == {
        "database": "ok",
        "cache": "error",
        "broker": "error",
        "storage": "ok",
    }
    assert "Connection" in body["checks"]["cache"]["error"]


def test_it_checks_s3_storage(client, s3_storage):
    response = client.get("/readyz")

    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["storage"]["status"] == "ok"
    assert s3_storage.keys("readyz/") == []  # the probe file was deleted


def test_it_reports_a_missing_bucket_as_a_storage_error(client, settings, s3_storage):
    broken = s3_storage.storage_setting()
    broken["OPTIONS"]["bucket_name"] = "no-such-bucket"
    settings.STORAGES = {**settings.STORAGES, "default": broken}

    response = client.get("/readyz")

    assert response.status_code == 503
    assert statuses(response.json()) == {
        "database": "ok",
        "cache": "ok",
        "broker": "ok",
        "storage": "error",
    }


def queued(cast, state: str, *, due_seconds_ago: float) -> WebhookEvent:
    """A row of org A's inbound queue in ``state``, due that long ago (negative: later)."""
    at = timezone.now() - timedelta(seconds=due_seconds_ago)
    return WebhookEvent.objects.create(
        organization=cast.org_a,
        provider="simulator",
        body="{}",
        dedupe_key=f"{state}-{due_seconds_ago}",
        state=state,
        received_at=at,
        available_at=at,
    )


def test_it_reports_an_empty_inbound_queue(client):
    body = client.get("/readyz").json()

    assert body["inbound_queue"] == {
        "status": "ok",
        "pending": 0,
        "waiting": 0,
        "oldest_due_age_s": None,
        "counted_up_to": 10_000,
    }


def test_it_reports_the_inbound_backlog_as_information_not_as_unready(cast, client):
    # Given a backlog: a row due 10 minutes ago, one due now, one held back, one waiting
    queued(cast, "pending", due_seconds_ago=600)
    queued(cast, "pending", due_seconds_ago=0)
    queued(cast, "pending", due_seconds_ago=-60)
    queued(cast, "waiting", due_seconds_ago=900)
    queued(cast, "done", due_seconds_ago=3600)  # applied: not in the backlog

    response = client.get("/readyz")

    # Then it is counted and aged, and readyz still says ready
    body = response.json()
    assert response.status_code == 200 and body["status"] == "ok"
    backlog = body["inbound_queue"]
    assert (backlog["pending"], backlog["waiting"]) == (3, 1)
    assert 600 <= backlog["oldest_due_age_s"] < 660


def test_it_reads_the_backlog_in_two_queries_and_stops_counting_at_its_limit(
    cast, django_assert_num_queries
):
    for n in range(3):
        queued(cast, "pending", due_seconds_ago=n)

    with django_assert_num_queries(2):
        backlog = webhook_backlog(most=2)

    assert backlog["pending"] == 2 and backlog["counted_up_to"] == 2
    assert 2 <= backlog["oldest_due_age_s"] < 60  # the earliest, though the count stopped
