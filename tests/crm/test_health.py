"""/healthz and /readyz against the real test services, and a Redis that goes away."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest
import redis

from crm.celery import app

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
