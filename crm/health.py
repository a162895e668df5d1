"""/healthz (the process answers) and /readyz (each dependency answers, with its latency; and, as
information, the worker's heartbeat and the inbound queue's backlog)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_cache() -> None:
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, "1", 10)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not return what was stored")
    cache.delete(key)


def check_broker() -> None:
    from crm.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        conn.default_channel  # noqa: B018 - opening a channel proves the broker speaks


def check_storage() -> None:
    name = default_storage.save(f"readyz/{uuid.uuid4().hex}.txt", ContentFile(b"ok"))
    try:
        with default_storage.open(name) as handle:
            if handle.read() != b"ok":
                raise RuntimeError("storage did not return what was stored")
    finally:
        default_storage.delete(name)


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "cache": check_cache,
    "broker": check_broker,
    "storage": check_storage,
}


def run_checks() -> dict[str, dict]:
    results = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            check()
            results[name] = {"status": "ok"}
        except Exception as exc:  # every failure is reported, none is raised
            results[name] = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:300]}
        results[name]["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return results


def worker_status() -> dict:
    from crm.models import WorkerHeartbeat

    beat = WorkerHeartbeat.objects.order_by("-last_seen_at").first()
    if beat is None:
        return {"status": "unknown", "last_seen_at": None}
    age = (timezone.now() - beat.last_seen_at).total_seconds()
    return {
        "status": "ok" if age < 90 else "stale",
        "last_seen_at": beat.last_seen_at.isoformat(),
        "age_s": round(age),
    }


def inbound_queue_status() -> dict:
    """The inbound webhook queue's depth and the age of its oldest due row (capped counts: two
    small index reads, whatever the backlog)."""
    from sessions_app.selectors import webhook_backlog

    return {"status": "ok", **webhook_backlog()}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks = run_checks()
    ok = all(item["status"] == "ok" for item in checks.values())
    try:
        worker = worker_status()
    except Exception as exc:
        worker = {"status": "error", "error": type(exc).__name__}
    try:
        inbound_queue = inbound_queue_status()
    except Exception as exc:
        inbound_queue = {"status": "error", "error": type(exc).__name__}
    body = {
        "status": "ok" if ok else "error",
        "mode": settings.PARLEY_ENV,
        "checks": checks,
        "worker": worker,  # informational: workers scale to zero without making web unready
        # Informational too: a backlog is work for the workers, not a reason to stop this
        # process taking requests (which would only add to it).
        "inbound_queue": inbound_queue,
    }
    return JsonResponse(body, status=200 if ok else 503)
